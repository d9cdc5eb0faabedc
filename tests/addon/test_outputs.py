"""Import takes the newest outputs of the last run: from the run manifest when there is one,
else per person the most downstream TRC that is not older than its inputs. Real outputs: a
synthetic scene run through the engine's triangulation, filtering and augmentation stages."""
import json
import os
import shutil
import time

import bpy
import numpy as np
import pytest

from addon_helpers import addon  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """A synthetic trial after triangulation → filtering (butterworth) → augmentation."""
    from openkin.cli import run_stages
    from openkin.synth import build_scene

    root = tmp_path_factory.mktemp("runs") / "trial"
    build_scene(root, "clean", n_frames=60, seed=0)
    run_stages(root, ["triangulation", "filtering", "augmentation"], progress_bars=False)
    return root


def _copy(src, dst):
    return shutil.copytree(src, dst, copy_function=shutil.copy2)   # keeps the mtimes


def test_after_a_full_run_the_augmented_markers(processed):
    from blender_addon.core.capture import latest_outputs

    files = latest_outputs(processed)
    assert [p.name for p in files.people] == ["P0"]
    assert files.people[0].trc.name == "trial_0-59_filt_butterworth_LSTM.trc"


def test_refiltering_makes_the_augmented_file_stale(processed, tmp_path):
    """Filtering again (another filter) after augmentation: the augmented TRC was made from the
    older filtered file, so the import takes the new filtered one (it took the stale LSTM file)."""
    from blender_addon.core.capture import latest_outputs
    from openkin.cli import run_stages

    root = _copy(processed, tmp_path / "trial")
    time.sleep(0.05)
    run_stages(root, ["filtering"], overrides={"filtering": {"type": "kalman"}}, progress_bars=False)
    assert latest_outputs(root).people[0].trc.name == "trial_0-59_filt_kalman.trc"


def test_manifest_decides(processed, tmp_path):
    """With openkin/manifest.json the import takes what the last run wrote, even when other
    (newer, more downstream) files lie around."""
    from blender_addon.core.capture import latest_outputs

    root = _copy(processed, tmp_path / "trial")
    (root / "openkin").mkdir(exist_ok=True)
    def done(*files):  # a record as openkin.manifest writes it
        return {"status": "done", "run": "r1", "outputs": [{"path": f, "role": "trc"} for f in files]}

    (root / "openkin" / "manifest.json").write_text(json.dumps({"version": 1, "stages": {
        "triangulation": done("pose-3d/trial_0-59.trc", "pose-3d/trial_0-59.c3d"),
        "filtering": done("pose-3d/trial_0-59_filt_butterworth.trc"),
        "augmentation": {"status": "outdated", "run": "r0",
                         "outputs": [{"path": "pose-3d/trial_0-59_filt_butterworth_LSTM.trc"}]}}}))
    newer = time.time() + 10
    os.utime(root / "pose-3d" / "trial_0-59_filt_butterworth_LSTM.trc", (newer, newer))
    assert latest_outputs(root).people[0].trc.name == "trial_0-59_filt_butterworth.trc"


def test_bad_manifest_is_a_clear_error(processed, tmp_path):
    from blender_addon.core.capture import latest_outputs
    from openkin.errors import OpenKinError

    root = _copy(processed, tmp_path / "trial")
    (root / "openkin").mkdir(exist_ok=True)
    (root / "openkin" / "manifest.json").write_text('{"stages": [1, 2]')
    with pytest.raises(OpenKinError, match="run manifest") as e:
        latest_outputs(root)
    assert e.value.path == root / "openkin" / "manifest.json" and e.value.fix


def test_import_shows_the_refiltered_markers(addon, processed, tmp_path):
    """In Blender: after re-filtering, the markers are the new filtered file's (read independently)."""
    from openkin.cli import run_stages
    from openkin.formats.trc import read_trc, yup_to_zup

    root = _copy(processed, tmp_path / "trial")
    time.sleep(0.05)
    run_stages(root, ["filtering"], overrides={"filtering": {"type": "gaussian"}}, progress_bars=False)
    assert bpy.ops.openkin.import_project(directory=str(root)) == {"FINISHED"}, bpy.context.scene.openkin.last_error
    trc = read_trc(root / "pose-3d" / "trial_0-59_filt_gaussian.trc")
    scene = bpy.context.scene
    objs = [o for o in scene.objects if "openkin_marker" in o]
    assert len(objs) == len(trc.marker_names) == 26   # the LSTM file would have 26 + 43 markers
    scene.frame_set(21)                                # TRC row 20 (frame = row + 1)
    m = trc.marker_names.index("RKnee")
    assert np.allclose(np.array(scene.objects["P0 RKnee"].matrix_world.translation), yup_to_zup(trc.xyz[20, m]), atol=1e-5)

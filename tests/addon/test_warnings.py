"""Import warns (operator report + a list kept in the panel) when videos are missing, a TRC is
shorter than its header says, or a person's body jumps (an identity switch); a clean capture
gives no warning."""
import shutil

import bpy
import numpy as np
import pytest

from addon_helpers import SYNTH_FRAMES, addon, demo_project, synth_project  # noqa: F401  (fixtures)


def _import(root):
    assert bpy.ops.openkin.import_project(directory=str(root)) == {"FINISHED"}, bpy.context.scene.openkin.last_error
    return [w.text for w in bpy.context.scene.openkin.import_warnings]


def test_clean_capture_has_no_warning(addon, demo_project):
    assert _import(demo_project) == []


def test_missing_video(addon, demo_project, tmp_path, capsys):
    root = shutil.copytree(demo_project, tmp_path / "trial")
    (root / "videos" / "cam03.mp4").unlink()
    warnings = _import(root)
    assert len(warnings) == 1 and "no video for camera cam03" in warnings[0]
    assert "Warning: no video for camera cam03" in capsys.readouterr().out   # the operator's report
    assert len([o for o in bpy.context.scene.objects if o.type == "CAMERA"]) == 4
    assert not bpy.context.scene.objects["cam03"].data.background_images


def test_no_videos_at_all(addon, synth_project):
    warnings = _import(synth_project)
    assert len(warnings) == 1 and "no videos in" in warnings[0]


def test_trc_shorter_than_its_header(addon, synth_project, tmp_path):
    root = shutil.copytree(synth_project, tmp_path / "trial")
    shutil.rmtree(root / "kinematics")
    trc = next((root / "pose-3d").glob("*.trc"))
    lines = trc.read_text().splitlines(keepends=True)
    trc.write_text("".join(lines[:-10]))            # a run stopped while writing: 10 rows lost
    warnings = _import(root)
    assert any(f"has {SYNTH_FRAMES - 10} frames but its header says {SYNTH_FRAMES}" in w for w in warnings), warnings


def test_identity_switch(addon, tmp_path):
    """Two people (synth 'multi'); from frame 15 on, person 1's track takes person 2's points:
    the jump is reported for that frame only, and person 2's own track gives no warning."""
    from openkin.formats.trc import Trc, read_trc, write_trc
    from openkin.synth import build_scene

    root = tmp_path / "duo"
    build_scene(root, "multi", n_frames=30, seed=1)
    (root / "pose-3d").mkdir()
    a, b = read_trc(root / "truth" / "keypoints.trc"), read_trc(root / "truth" / "keypoints_P2.trc")
    gap = np.linalg.norm(np.nanmedian(a.xyz[15] - b.xyz[15], axis=0))
    assert gap > 0.5   # the two people are apart
    switched = a.xyz.copy()
    switched[15:] = b.xyz[15:]
    write_trc(root / "pose-3d" / "duo_P1_0-30.trc", Trc(a.marker_names, a.rate, switched, a.frame_numbers))
    shutil.copy(root / "truth" / "keypoints_P2.trc", root / "pose-3d" / "duo_P2_0-30.trc")
    warnings = _import(root)
    jumps = [w for w in warnings if "identity switch" in w]
    assert len(jumps) == 1 and jumps[0].startswith("P1: the marker set jumps"), warnings
    assert "between frames 15 and 16" in jumps[0]   # TRC rows 14 → 15 are scene frames 15 → 16


def test_body_jumps_thresholds():
    """A walk at 1.4 m/s with a 5 cm marker glitch gives nothing; a 0.6 m jump at 60 fps does."""
    from blender_addon.core.checks import body_jumps

    frames = np.arange(1, 121)
    walk = np.zeros((120, 5, 3))
    walk[:, :, 0] = (frames[:, None] / 60.0) * 1.4 + np.arange(5) * 0.1
    glitch = walk.copy()
    glitch[50, 2] += 0.05
    glitch[70, 1] = np.nan
    assert body_jumps(glitch, frames, 60.0) == []
    jump = walk.copy()
    jump[80:, :, 1] += 0.6
    found = body_jumps(jump, frames, 60.0)
    assert [(j.frame_before, j.frame) for j in found] == [(80, 81)]
    assert found[0].distance == pytest.approx(np.hypot(0.6, 1.4 / 60), rel=1e-6)

"""Shared fixtures of the add-on tests (imported by the test modules; pytest loads no
conftest here). Real data only: a synthetic ground-truth scene from ``openkin.synth``
(OpenSim forward kinematics through the demo calibration) laid out as pipeline
outputs, and Pose2Sim's demo videos from ``openkin.assets``."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402

SYNTH_FRAMES = 90
GENERIC_MODEL = "OpenSim_Setup/Model_Pose2Sim_simple.osim"


def fresh_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def as_pipeline_outputs(root: Path) -> Path:
    """Lay a synth scene's truth out as the pipeline writes results (pose-3d/, kinematics/)."""
    from openkin.assets import asset_path

    (root / "pose-3d").mkdir(exist_ok=True)
    (root / "kinematics").mkdir(exist_ok=True)
    trial = root.name
    shutil.copy(root / "truth" / "keypoints.trc", root / "pose-3d" / f"{trial}_0-{SYNTH_FRAMES}.trc")
    shutil.copy(root / "truth" / "angles.mot", root / "kinematics" / f"{trial}_0-{SYNTH_FRAMES}.mot")
    shutil.copy(asset_path(GENERIC_MODEL), root / "kinematics" / f"{trial}_0-{SYNTH_FRAMES}_scaled.osim")
    return root


@pytest.fixture(scope="session")
def synth_project(tmp_path_factory) -> Path:
    """A clean synthetic capture of one person (90 frames, 4 demo cameras) with its 2D
    detections, 3D keypoints (pose-3d) and joint angles + model (kinematics)."""
    from openkin.synth import build_scene

    root = tmp_path_factory.mktemp("synth") / "trial"
    build_scene(root, "clean", n_frames=SYNTH_FRAMES, seed=0)
    return as_pipeline_outputs(root)


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory, synth_project) -> Path:
    """Pose2Sim's demo (videos) with its Qualisys calibration converted to TOML, and the
    synthetic person (seen through the same calibration) as results."""
    from openkin.assets import demo_project as copy_demo
    from openkin.formats.calib_converters import convert_calibration
    from openkin.formats.calibration import write_calibration

    root = copy_demo(tmp_path_factory.mktemp("demo") / "Demo_SinglePerson")
    cams = convert_calibration(root / "calibration" / "Calib.qca.txt", "qualisys")
    write_calibration(root / "calibration" / "Calib_qualisys.toml", cams)
    for sub in ("pose-3d", "kinematics"):
        shutil.copytree(synth_project / sub, root / sub)
    # as the synchronization stage writes it: cam02's frame k is reference frame k - 1
    (root / "pose-sync").mkdir()
    (root / "pose-sync" / "offsets.toml").write_text(
        'reference = "cam01"\n[cameras.cam01]\nshift_frames = 0\n[cameras.cam02]\nshift_frames = -1\n')
    return root


@pytest.fixture()
def scene():
    fresh_scene()
    yield bpy.context.scene


@pytest.fixture()
def addon():
    """The add-on registered for one test (unregistered afterwards)."""
    import blender_addon

    fresh_scene()
    blender_addon.register()
    yield blender_addon
    blender_addon.unregister()


def scene_snapshot() -> dict:
    """Names of every datablock and the scene settings an import may change."""
    s = bpy.context.scene
    data = {name: sorted(b.name for b in getattr(bpy.data, name))
            for name in ("objects", "meshes", "cameras", "armatures", "materials", "images", "actions", "collections")}
    data["settings"] = (s.frame_start, s.frame_end, s.render.fps, s.render.fps_base, s.render.resolution_x,
                        s.render.resolution_y, s.camera.name if s.camera else None)
    return data

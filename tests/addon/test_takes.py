"""A session imported as takes: one armature and one set of markers, one skeleton and one markers
action per take and person named after the trial, and a switcher that puts a take's motion and
frame range on them. Truth: each trial's own files (its TRC, its MOT through OpenSim's forward
kinematics), read independently of the importer."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import bpy
import numpy as np
import pytest

from addon_helpers import GENERIC_MODEL, addon  # noqa: F401  (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from batch_session import make_session  # noqa: E402

FRAMES = {"P01/T01": 40, "P01/T02": 70}


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """Two synth trials of different motions and lengths, laid out as pipeline results (pose-3d/ and
    kinematics/ from their truth), calibration shared from the session."""
    from openkin.assets import asset_path

    root = make_session(tmp_path_factory.mktemp("takes") / "S01", n_trials=2, frames=list(FRAMES.values()))
    for name, n in FRAMES.items():
        trial = root / name
        stem = f"{trial.name}_0-{n - 1}"
        (trial / "pose-3d").mkdir()
        (trial / "kinematics").mkdir()
        shutil.copy(trial / "truth" / "keypoints.trc", trial / "pose-3d" / f"{stem}.trc")
        shutil.copy(trial / "truth" / "angles.mot", trial / "kinematics" / f"{stem}.mot")
        shutil.copy(asset_path(GENERIC_MODEL), trial / "kinematics" / f"{stem}_scaled.osim")
    return root


def _markers_at(trial: Path, frame: int) -> dict[str, np.ndarray]:
    from openkin.formats.trc import read_trc, yup_to_zup

    trc = read_trc(next((trial / "pose-3d").glob("*.trc")))
    return {m: yup_to_zup(trc.xyz[frame, i]) for i, m in enumerate(trc.marker_names)}


def _bodies_at(trial: Path, row: int):
    from blender_addon.core import axes, osim_model
    from openkin.formats.mot import read_mot

    model = osim_model.load_model(next((trial / "kinematics").glob("*.osim")))
    mot = read_mot(next((trial / "kinematics").glob("*.mot")))
    q = osim_model.motion_to_q(model, mot.names, mot.values[[row]], mot.in_degrees)
    return model, axes.yup_to_zup_transforms(osim_model.body_frames(model, q))[0], \
        axes.yup_to_zup_transforms(model.rest), int(round(mot.times[row] * 60)) + 1


def _check_take(session: Path, name: str, frame: int) -> None:
    """Markers and bones of the scene at TRC/MOT row ``frame`` are the trial's own."""
    scene = bpy.context.scene
    trial = session / name
    model, truth, rest, scene_frame = _bodies_at(trial, frame)
    scene.frame_set(scene_frame)
    expected = _markers_at(trial, frame)
    markers = [o for o in scene.objects if "openkin_marker" in o]
    assert len(markers) == len(expected) == 26
    for obj in markers:
        assert np.allclose(np.array(obj.matrix_world.translation), expected[obj["openkin_marker"]], atol=1e-5)
    arm = next(o for o in scene.objects if o.type == "ARMATURE" and o.get("openkin_role") != "animation")
    for b, bone in enumerate(model.body_names):
        posed = np.array(arm.pose.bones[bone].matrix) @ np.linalg.inv(np.array(arm.data.bones[bone].matrix_local))
        assert np.allclose(posed @ rest[b], truth[b], atol=2e-5), (name, bone)
    # the animation skeleton's hips sit on this take's hip joint centres (the femurs' origins, OpenSim)
    animation = next(o for o in scene.objects if o.get("openkin_role") == "animation")
    for side, femur in (("L", "femur_l"), ("R", "femur_r")):
        head = np.array((animation.matrix_world @ animation.pose.bones[f"thigh.{side}"].matrix).translation)
        assert np.linalg.norm(head - truth[model.body_names.index(femur)][:3, 3]) < 0.001, (name, side)


def test_session_imported_as_takes_and_switched(addon, session):
    from blender_addon.scene.takes import current_take, read_takes

    assert bpy.ops.openkin.import_session(directory=str(session)) == {"FINISHED"}
    scene = bpy.context.scene
    takes = read_takes(scene)
    assert [t["name"] for t in takes] == list(FRAMES)
    # one OpenSim armature, one animation armature and one set of markers; one skeleton, one markers
    # and one animation action per take and person
    armatures = [o for o in scene.objects if o.type == "ARMATURE"]
    assert sorted(o.get("openkin_role", "opensim") for o in armatures) == ["animation", "opensim"]
    assert len([o for o in scene.objects if "openkin_marker" in o]) == 26
    person = takes[0]["people"][0]["person"]
    for name in FRAMES:
        for action_name in (f"{name} {person} skeleton", f"{name} {person} markers", f"{name}_{person}"):
            assert bpy.data.actions[action_name].use_fake_user
    arm = next(o for o in armatures if o.get("openkin_role") != "animation")
    animation = next(o for o in armatures if o.get("openkin_role") == "animation")

    assert current_take(scene) == "P01/T01" and arm.animation_data.action.name == f"P01/T01 {person} skeleton"
    assert (scene.frame_start, scene.frame_end) == (1, FRAMES["P01/T01"])
    _check_take(session, "P01/T01", 33)

    assert animation.animation_data.action.name == f"P01/T01_{person}"
    assert bpy.ops.openkin.set_take(take="P01/T02") == {"FINISHED"}
    assert arm.animation_data.action.name == f"P01/T02 {person} skeleton"
    assert animation.animation_data.action.name == f"P01/T02_{person}"
    nose = scene.objects[f"{person} Nose"]
    assert nose.animation_data.action.name == f"P01/T02 {person} markers"
    assert (scene.frame_start, scene.frame_end) == (1, FRAMES["P01/T02"])
    _check_take(session, "P01/T02", 61)  # beyond the first take's length

    assert bpy.ops.openkin.set_take(take="P01/T01") == {"FINISHED"}
    _check_take(session, "P01/T01", 12)
    with pytest.raises(RuntimeError, match="no take 'nope' in this scene"):
        bpy.ops.openkin.set_take(take="nope")

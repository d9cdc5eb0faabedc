"""Operators build the expected objects and fcurves from real files (a synthetic capture
made by OpenSim forward kinematics through the demo calibration)."""
import bpy
import numpy as np
import pytest

from addon_helpers import SYNTH_FRAMES, addon, scene_snapshot, synth_project  # noqa: F401  (fixtures)


def _fcurves(obj):
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = obj.animation_data
    return action_get_channelbag_for_slot(ad.action, ad.action_slot).fcurves


def _import_project(root):
    assert bpy.ops.openkin.import_project(directory=str(root)) == {"FINISHED"}, bpy.context.scene.openkin.last_error


def test_import_project_builds_cameras_markers_skeleton(addon, synth_project):
    from openkin.formats.trc import read_trc, yup_to_zup

    _import_project(synth_project)
    scene = bpy.context.scene
    cams = [o for o in scene.objects if o.type == "CAMERA"]
    assert sorted(c.name for c in cams) == ["cam01", "cam02", "cam03", "cam04"]
    assert (scene.render.fps, scene.frame_start, scene.frame_end) == (60, 1, SYNTH_FRAMES)
    markers = [o for o in scene.objects if "openkin_marker" in o]
    assert len(markers) == 26
    # every marker: 3 location fcurves (+ 4 colour ones from the reprojection QA), one key per frame
    nose = scene.objects["P0 Nose"]
    curves = {(f.data_path, f.array_index): f for f in _fcurves(nose)}
    assert {("location", i) for i in range(3)} <= set(curves)
    assert all(len(curves[("location", i)].keyframe_points) == SYNTH_FRAMES for i in range(3))
    trc = read_trc(next((synth_project / "pose-3d").glob("*.trc")))
    k = 37
    scene.frame_set(k + 1)  # TRC frame k is scene frame k + 1
    expected = yup_to_zup(trc.xyz[k, trc.marker_names.index("Nose")])
    assert np.allclose(np.array(nose.matrix_world.translation), expected, atol=1e-5)
    arm = scene.objects["P0 skeleton"]
    assert arm.type == "ARMATURE" and len(arm.data.bones) == 22
    paths = {f.data_path for f in _fcurves(arm)}
    assert 'pose.bones["femur_r"].rotation_quaternion' in paths and 'pose.bones["pelvis"].location' in paths
    bones_mesh = scene.objects["P0 bones"]
    assert bones_mesh.modifiers["Armature"].object == arm
    assert len(bones_mesh.vertex_groups) >= 15 and len(bones_mesh.data.polygons) > 10000


def test_skeleton_follows_opensim_bodies(addon, synth_project):
    """Each posed bone carries its body frame: pose · rest⁻¹ · body_rest = OpenSim body frame (Z-up)."""
    from blender_addon.core import axes, osim_model
    from openkin.formats.mot import read_mot

    _import_project(synth_project)
    osim = next((synth_project / "kinematics").glob("*.osim"))
    mot = read_mot(next((synth_project / "kinematics").glob("*.mot")))
    model = osim_model.load_model(osim)
    rows = [0, 44, SYNTH_FRAMES - 1]
    q = osim_model.motion_to_q(model, mot.names, mot.values[rows], mot.in_degrees)
    truth = axes.yup_to_zup_transforms(osim_model.body_frames(model, q))
    rest = axes.yup_to_zup_transforms(model.rest)
    arm = bpy.context.scene.objects["P0 skeleton"]
    for i, row in enumerate(rows):
        bpy.context.scene.frame_set(int(round(mot.times[row] * 60)) + 1)
        for b, name in enumerate(model.body_names):
            posed = np.array(arm.pose.bones[name].matrix) @ np.linalg.inv(np.array(arm.data.bones[name].matrix_local))
            assert np.allclose(posed @ rest[b], truth[i, b], atol=2e-5), (name, row)


def test_markers_coloured_by_reprojection_error(addon, synth_project):
    """The clean synthetic scene's detections are exact projections: errors are tiny (green markers)."""
    _import_project(synth_project)
    markers = [o for o in bpy.context.scene.objects if "openkin_marker" in o]
    errors = np.array([o["openkin_mean_reprojection_px"] for o in markers])
    assert np.all((errors >= 0) & (errors < 3.0)), errors
    assert all(o.color[1] > 0.7 for o in markers)


def test_import_single_files(addon, synth_project):
    trc = next((synth_project / "pose-3d").glob("*.trc"))
    assert bpy.ops.openkin.import_files(markers=str(trc)) == {"FINISHED"}
    objs = [o for o in bpy.context.scene.objects if "openkin_marker" in o]
    assert len(objs) == 26 and not [o for o in bpy.context.scene.objects if o.type == "CAMERA"]
    calib = next((synth_project / "calibration").glob("*.toml"))
    assert bpy.ops.openkin.import_files(calibration=str(calib)) == {"FINISHED"}
    assert len([o for o in bpy.context.scene.objects if o.type == "CAMERA"]) == 4


@pytest.mark.parametrize("case", ["missing_file", "cameras_match_no_video", "mot_does_not_fit_model"])
def test_errors_leave_scene_unchanged(addon, synth_project, tmp_path, case):
    from openkin.formats.mot import Motion, write_mot

    bpy.ops.openkin.import_files(markers=str(next((synth_project / "pose-3d").glob("*.trc"))))
    before = scene_snapshot()
    kin = synth_project / "kinematics"
    osim = next(kin.glob("*.osim"))
    if case == "missing_file":
        call = lambda: bpy.ops.openkin.import_files(markers=str(tmp_path / "nowhere.trc"))  # noqa: E731
        expected = "marker file not found"
    elif case == "cameras_match_no_video":
        project = tmp_path / "trial"
        (project / "videos").mkdir(parents=True)
        (project / "calibration").mkdir()
        (project / "calibration" / "Calib.toml").write_bytes(next((synth_project / "calibration").glob("*.toml")).read_bytes())
        (project / "videos" / "GoPro_left.mp4").write_bytes(b"")
        call = lambda: bpy.ops.openkin.import_project(directory=str(project))  # noqa: E731
        expected = "by name, nor by order"
    else:
        bad = tmp_path / "other_model.mot"
        write_mot(bad, Motion(["knee_angle", "hip_flexion", "ankle_angle"], np.arange(5) / 60, np.zeros((5, 3))))
        call = lambda: bpy.ops.openkin.import_files(osim=str(osim), mot=str(bad))  # noqa: E731
        expected = "does not fit the model"
    # an ERROR report raises when the operator is called from Python; the panel shows last_error
    with pytest.raises(RuntimeError, match=expected):
        call()
    assert expected in bpy.context.scene.openkin.last_error
    assert scene_snapshot() == before


def test_failure_while_building_rolls_back(addon, synth_project, monkeypatch):
    """An error after some objects were created (here: in the armature step) removes them all."""
    from blender_addon.scene import armature
    from openkin.errors import OpenKinError

    before = scene_snapshot()

    def fail(*args, **kwargs):
        raise OpenKinError("simulated failure while building the armature")

    monkeypatch.setattr(armature, "build_armature", fail)
    with pytest.raises(RuntimeError, match="simulated failure"):
        bpy.ops.openkin.import_project(directory=str(synth_project))
    assert scene_snapshot() == before


def test_several_people(addon, tmp_path):
    """Two people (synth 'multi' preset): one marker set, one skeleton and one bone mesh each."""
    import shutil

    from openkin.assets import asset_path
    from openkin.synth import build_scene

    root = tmp_path / "duo"
    build_scene(root, "multi", n_frames=30, seed=1)
    (root / "pose-3d").mkdir()
    (root / "kinematics").mkdir()
    for p, suffix in ((1, ""), (2, "_P2")):
        stem = f"duo_P{p}_0-30"
        shutil.copy(root / "truth" / f"keypoints{suffix}.trc", root / "pose-3d" / f"{stem}.trc")
        shutil.copy(root / "truth" / f"angles{suffix}.mot", root / "kinematics" / f"{stem}.mot")
        shutil.copy(asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim"), root / "kinematics" / f"{stem}_scaled.osim")
    assert bpy.ops.openkin.import_project(directory=str(root)) == {"FINISHED"}
    objs = bpy.context.scene.objects
    assert {o.name for o in objs if o.type == "ARMATURE"} == {"P1 skeleton", "P2 skeleton", "P1 animation", "P2 animation"}
    assert len([o for o in objs if "openkin_marker" in o]) == 52
    bpy.context.scene.frame_set(15)
    a, b = (np.array(objs[f"P{p} skeleton"].pose.bones["pelvis"].matrix.translation) for p in (1, 2))
    assert np.linalg.norm(a - b) > 0.3   # two different people, not one duplicated


def test_rays_from_selected_marker_follow_it(addon, synth_project):
    _import_project(synth_project)
    scene = bpy.context.scene
    nose = scene.objects["P0 Nose"]
    bpy.context.view_layer.objects.active = nose
    assert bpy.ops.openkin.marker_rays() == {"FINISHED"}
    rays = scene.objects["Rays P0 Nose"]
    for frame in (10, 60):
        scene.frame_set(frame)
        co = np.array([v.co for v in rays.data.vertices]).reshape(-1, 2, 3)
        assert len(co) == 4
        assert np.allclose(co[:, 0], np.array(nose.matrix_world.translation), atol=1e-5)
        centres = [np.array(scene.objects[n].matrix_world.translation) for n in rays["openkin_cameras"]]
        assert np.allclose(co[:, 1], centres, atol=1e-5)

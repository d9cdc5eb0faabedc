"""The animation armature built on import (blender_addon.scene.character), checked in Blender
against OpenSim's own forward kinematics of the same model and motion (the ``opensim`` API,
not the engine's FK), on a synthetic capture."""
import bpy
import numpy as np
import pytest

from addon_helpers import SYNTH_FRAMES, addon, synth_project  # noqa: F401  (fixtures)

JOINTS = {"hip": ("femur", "thigh"), "knee": ("tibia", "shin"), "ankle": ("talus", "foot"),
          "shoulder": ("humerus", "upper_arm"), "elbow": ("ulna", "forearm"), "wrist": ("hand", "hand")}
MIRROR = np.diag([-1.0, 1.0, 1.0])


def _channelbag(obj):
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = obj.animation_data
    return action_get_channelbag_for_slot(ad.action, ad.action_slot)


def _import(root):
    assert bpy.ops.openkin.import_project(directory=str(root)) == {"FINISHED"}, bpy.context.scene.openkin.last_error
    return bpy.context.scene.objects["P0 animation"]


def opensim_joint_centres(osim_path, mot_path, rows) -> dict[str, np.ndarray]:
    """OpenSim API: the child frame origin of each limb joint in ground, Z-up: {"knee.L": (R, 3)}."""
    import opensim

    from openkin.formats.mot import read_mot
    from openkin.geometry.axes import YUP_TO_ZUP

    model = opensim.Model(str(osim_path))
    state = model.initSystem()
    mot = read_mot(mot_path)
    coords = model.getCoordinateSet()
    joints = {}
    for j in range(model.getJointSet().getSize()):
        joint = model.getJointSet().get(j)
        joints[joint.getChildFrame().findBaseFrame().getName()] = joint
    out = {f"{n}.{s}": np.empty((len(rows), 3)) for n in JOINTS for s in "LR"}
    for k, row in enumerate(rows):
        for c, name in enumerate(mot.names):
            if coords.contains(name):
                coord = coords.get(name)
                v = mot.values[row, c]
                coord.setValue(state, np.radians(v) if mot.in_degrees and coord.getMotionType() == 1 else v, False)
        model.realizePosition(state)
        for n, (body, _) in JOINTS.items():
            for s, o in (("L", "l"), ("R", "r")):
                p = joints[f"{body}_{o}"].getChildFrame().getPositionInGround(state).to_numpy()
                out[f"{n}.{s}"][k] = YUP_TO_ZUP @ p
    return out


def test_animation_armature_on_import(addon, synth_project):
    from openkin.character import humanoid

    obj = _import(synth_project)
    assert obj.type == "ARMATURE" and obj["openkin_role"] == "animation"
    assert [b.name for b in obj.data.bones] == list(humanoid.NAMES)
    for name, parent in humanoid.BONES:
        assert (obj.data.bones[name].parent.name if obj.data.bones[name].parent else None) == parent
    bag = _channelbag(obj)
    assert obj.animation_data.action.name == f"{synth_project.name}_P0"
    paths = {}
    for fc in bag.fcurves:
        paths.setdefault(fc.data_path, []).append(fc)
    loc = {p for p in paths if p.endswith(".location")}
    assert loc == {'pose.bones["root"].location'}                       # rotation-only except the root
    rot = {p for p in paths if p.endswith(".rotation_quaternion")}
    assert rot == {f'pose.bones["{n}"].rotation_quaternion' for n in humanoid.NAMES}
    assert not any(p.endswith(("rotation_euler", ".scale")) for p in paths)
    for side in "LR":
        (fc,) = paths[f'["contact_{side}"]']
        values = {round(k.co[1], 6) for k in fc.keyframe_points}
        assert values <= {0.0, 1.0} and len(fc.keyframe_points) == SYNTH_FRAMES
        assert all(k.interpolation == "CONSTANT" for k in fc.keyframe_points)
    assert all(len(pb.constraints) == 0 for pb in obj.pose.bones) and len(obj.constraints) == 0
    assert obj.matrix_world == obj.matrix_world.Identity(4)
    # the OpenSim skeleton is still there, unchanged
    assert bpy.context.scene.objects["P0 skeleton"].get("openkin_role") is None


def test_joint_positions_follow_opensim(addon, synth_project):
    """Bone heads at hip, knee, ankle, shoulder, elbow and wrist within 1 mm of OpenSim's joint
    centres on every frame."""
    obj = _import(synth_project)
    osim = next((synth_project / "kinematics").glob("*.osim"))
    mot = next((synth_project / "kinematics").glob("*.mot"))
    rows = np.arange(SYNTH_FRAMES)
    truth = opensim_joint_centres(osim, mot, rows)
    scene = bpy.context.scene
    worst = {}
    for k in rows:
        scene.frame_set(int(k) + 1)
        for joint, (_, bone) in JOINTS.items():
            for s in "LR":
                head = np.array(obj.matrix_world @ obj.pose.bones[f"{bone}.{s}"].head)
                err = np.linalg.norm(head - truth[f"{joint}.{s}"][k])
                worst[f"{joint}.{s}"] = max(worst.get(f"{joint}.{s}", 0.0), err)
    print("max joint error (mm):", {k: round(v * 1000, 3) for k, v in worst.items()})
    assert max(worst.values()) <= 1e-3, worst


def test_rest_pose_blender_conventions(addon, synth_project):
    """Facing -Y, left on +X, feet on the floor, mirror-symmetric heads, directions and rolls."""
    obj = _import(synth_project)
    bones = obj.data.bones
    for b in bones:
        if b.name.endswith(".L"):
            m = bones[b.name[:-2] + ".R"]
            L, R = np.array(b.matrix_local), np.array(m.matrix_local)
            assert np.allclose(MIRROR @ L[:3, 1], R[:3, 1], atol=1e-5), b.name     # direction
            assert np.allclose(MIRROR @ L[:3, 2], R[:3, 2], atol=1e-5), b.name     # roll (z axis)
            assert np.allclose(MIRROR @ L[:3, 3], R[:3, 3], atol=1e-4), b.name     # head
            assert L[0, 3] > 0 or b.name.startswith("shoulder")
    assert np.allclose(np.array(bones["toe.L"].matrix_local)[:3, 1], [0, -1, 0], atol=1e-5)   # facing -Y
    assert np.allclose(np.array(bones["upper_arm.L"].matrix_local)[:3, 1], [1, 0, 0], atol=1e-5)  # T pose
    assert np.allclose(np.array(bones["thigh.L"].matrix_local)[:3, 1], [0, 0, -1], atol=1e-5)
    lowest = min(min(b.head_local[2], b.tail_local[2]) for b in bones)
    assert abs(lowest) < 1e-5


def test_a_pose_root_on_hips(addon, synth_project):
    """rest="A", root_bone=False: arms 45° down, root motion (location keys) on hips only."""
    from blender_addon.core import capture
    from blender_addon.scene import character

    files = capture.find_project(synth_project)
    cap = capture.load_capture(files)
    person = cap.people[0]
    coll = bpy.data.collections.new("test")
    bpy.context.scene.collection.children.link(coll)
    obj = character.build_animation_skeleton(bpy.context, person, coll, rest="A", root_bone=False, trial="take")
    assert "root" not in obj.data.bones and obj.data.bones["hips"].parent is None
    assert obj.animation_data.action.name == "take_P0"
    y = np.array(obj.data.bones["upper_arm.R"].matrix_local)[:3, 1]
    assert np.allclose(y, [-np.sqrt(0.5), 0, -np.sqrt(0.5)], atol=1e-5)
    loc = {fc.data_path for fc in _channelbag(obj).fcurves if fc.data_path.endswith(".location")}
    assert loc == {'pose.bones["hips"].location'}
    # the hips follow OpenSim's pelvis: its head is the midpoint of the hip joint centres
    osim = next((synth_project / "kinematics").glob("*.osim"))
    mot = next((synth_project / "kinematics").glob("*.mot"))
    truth = opensim_joint_centres(osim, mot, [30])
    bpy.context.scene.frame_set(31)
    head = np.array(obj.matrix_world @ obj.pose.bones["hips"].head)
    assert np.linalg.norm(head - (truth["hip.L"][0] + truth["hip.R"][0]) / 2) < 1e-4


@pytest.mark.parametrize("tolerance", [1e-3])
def test_key_reduction_and_smoothing(addon, synth_project, tolerance):
    """Reduced keys: fewer keys, every frame reproduced within the tolerance by Blender's own
    interpolation; smoothing keeps unit quaternions."""
    from blender_addon.core import capture
    from blender_addon.scene import character

    cap = capture.load_capture(capture.find_project(synth_project))
    person = cap.people[0]
    sk = character.skeleton_for(person)
    coll = bpy.data.collections.new("test")
    bpy.context.scene.collection.children.link(coll)
    full = character.build_animation_skeleton(bpy.context, person, coll, skeleton=sk, trial="full")
    lean = character.build_animation_skeleton(bpy.context, person, coll, skeleton=sk, trial="lean",
                                              key_tolerance=tolerance)
    n_full = sum(len(fc.keyframe_points) for fc in _channelbag(full).fcurves)
    n_lean = sum(len(fc.keyframe_points) for fc in _channelbag(lean).fcurves)
    print(f"keys: {n_full} -> {n_lean} at tolerance {tolerance}")
    assert n_lean < 0.8 * n_full
    by_path = {(fc.data_path, fc.array_index): fc for fc in _channelbag(full).fcurves}
    for fc in _channelbag(lean).fcurves:
        ref = by_path[(fc.data_path, fc.array_index)]
        for k in ref.keyframe_points:
            assert abs(fc.evaluate(k.co[0]) - k.co[1]) <= tolerance + 1e-6, fc.data_path


def test_import_settings_reach_the_armature(addon, synth_project):
    """The import panel's settings: A pose and root motion on hips; off: no animation armature."""
    s = bpy.context.scene.openkin
    s.rest_pose, s.root_bone = "A", False
    obj = _import(synth_project)
    assert obj["openkin_rest"] == "A" and obj["openkin_motion_bone"] == "hips" and "root" not in obj.data.bones
    s.animation_skeleton = False
    assert bpy.ops.openkin.import_project(directory=str(synth_project)) == {"FINISHED"}
    assert not [o for o in bpy.context.scene.objects if o.get("openkin_role") == "animation"]

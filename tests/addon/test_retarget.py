"""Retargeting a walking humanoid armature onto Mixamo, UE-mannequin (A-pose, other proportions,
FBX-style object transform) and Rigify characters, measured on what Blender evaluates: limb
directions within 5° of the source on every frame, no foot slide over 5 mm in any contact, the
feet on the floor, keys only (no constraints left), one action named after the take."""
import bpy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon_helpers import fresh_scene
from test_retarget_bonemap import build_fbx_style, ue_rows

FRAMES = 200
LIMB_DEG = 5.0
SLIDE_M = 0.005


@pytest.fixture()
def ctx():
    fresh_scene()
    return bpy.context


def _walk(ctx, **kw):
    from blender_addon.retarget.walk import build_walk_source

    return build_walk_source(ctx, FRAMES, **kw)


def _measure(ctx, src, obj, tgt_bones=None):
    from blender_addon.retarget import last_result, metrics

    r = last_result()
    bones = tgt_bones or r["bone_map"].bones
    m = metrics.measure(ctx, src, {n: n for n in bones}, obj, bones, r["result"], r["take"])
    print(f"\n{obj.name}: height ratio {r['result'].scale:.3f}, hips path x{r['result'].path_scale:.3f}")
    for h, (mean, mx) in m["joints"].items():
        print(f"  {h:12s} joint error mean {mean * 1000:6.1f} mm max {mx * 1000:6.1f} mm"
              f"  (hips-relative max {m['joints_local'][h][1] * 1000:5.1f} mm)")
    for h, deg in m["limbs"].items():
        print(f"  {h:12s} limb direction max {deg:.2f} deg")
    for s, v in m["slide"].items():
        print(f"  foot.{s} slide per contact (mm): target {np.round(v['target'] * 1000, 2)} source {np.round(v['source'] * 1000, 2)}")
    return r, m


def _check_fidelity(m):
    assert set(m["limbs"]) == {"upper_arm.L", "forearm.L", "upper_arm.R", "forearm.R", "thigh.L", "shin.L", "thigh.R", "shin.R"}
    assert max(m["limbs"].values()) <= LIMB_DEG, m["limbs"]
    contacts = np.concatenate([v["target"] for v in m["slide"].values()])
    assert len(contacts) >= 5  # a 200-frame walk has ~3 steps per foot
    assert contacts.max() <= SLIDE_M, contacts


def _fcurve_paths(obj):
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = obj.animation_data
    return [(fc.data_path, fc.array_index) for fc in action_get_channelbag_for_slot(ad.action, ad.action_slot).fcurves]


def _no_constraints(obj):
    return sum(len(pb.constraints) for pb in obj.pose.bones) == 0 and len(obj.constraints) == 0


def test_mixamo_walk(ctx):
    from blender_addon.retarget import retarget

    src = _walk(ctx)
    obj = retarget(ctx, src, "mixamo")
    r, m = _measure(ctx, src, obj)
    _check_fidelity(m)
    assert obj.animation_data.action.name == "walk_take_mixamo"
    assert tuple(obj.animation_data.action.frame_range) == (1.0, float(FRAMES))
    assert _no_constraints(obj)
    paths = _fcurve_paths(obj)
    located = {p.split('"')[1] for p, _ in paths if p.endswith(".location")}
    assert located == {"mixamorig:Hips"}  # rotation-only keys except the root motion
    assert len([p for p in paths if p[0].endswith("rotation_quaternion")]) == 4 * 22


def test_ue_a_pose_fbx_style_character(ctx):
    """A-pose arms, longer legs, a root bone, twist bones, data in cm under a rotated 0.01-scaled
    object: directions still follow the source and the feet stay planted and on the floor."""
    from blender_addon.retarget import metrics, retarget

    src = _walk(ctx)
    obj = retarget(ctx, src, build_fbx_style(ctx, ue_rows(), "ue_character"))
    r, m = _measure(ctx, src, obj)
    _check_fidelity(m)
    assert _no_constraints(obj)
    # feet on the floor: the lowest toe point over the take is where the source's is (scaled)
    feet = metrics.joint_tracks(ctx, obj, {"L": "ball_l", "R": "ball_r"}, r["take"].frames)
    src_feet = metrics.joint_tracks(ctx, src, {"L": "toe.L", "R": "toe.R"}, r["take"].frames)
    low_t = min(f[:, 2].min() for f in feet.values())
    low_s = min(f[:, 2].min() for f in src_feet.values()) * r["result"].scale
    assert abs(low_t - low_s) < 0.02, (low_t, low_s)


def test_a_pose_source_gives_the_same_character_motion(ctx):
    """The same walk keyed on a T-pose and on an A-pose source armature (the world pose is the
    same on every frame): the retargeted character moves the same, to 0.1 mm."""
    from blender_addon.retarget import metrics, retarget

    t_src = _walk(ctx, name="walk_T")
    a_src = _walk(ctx, name="walk_A", rest_pose="A")
    frames = np.arange(1, FRAMES + 1, 7)
    arm = {h: h for h in ("upper_arm.L", "forearm.L", "hand.L", "hand.R")}
    np.testing.assert_allclose(np.stack(list(metrics.joint_tracks(ctx, t_src, arm, frames).values())),
                               np.stack(list(metrics.joint_tracks(ctx, a_src, arm, frames).values())), atol=1e-5)
    assert a_src.data.bones["upper_arm.L"].tail_local.z < 1.3  # arms down at rest
    t_obj = retarget(ctx, t_src, build_fbx_style(ctx, ue_rows(), "from_T"))
    a_obj = retarget(ctx, a_src, build_fbx_style(ctx, ue_rows(), "from_A"))
    bones = {b: b for b in ("pelvis", "hand_l", "lowerarm_r", "head", "foot_l", "ball_r")}
    np.testing.assert_allclose(np.stack(list(metrics.joint_tracks(ctx, t_obj, bones, frames).values())),
                               np.stack(list(metrics.joint_tracks(ctx, a_obj, bones, frames).values())), atol=1e-4)


def test_without_foot_lock_the_feet_slide(ctx):
    """The lock is what holds the feet: with proportions this different and the hips path scaled
    by the height ratio, the unlocked feet slide more than 5 mm per contact."""
    from blender_addon.retarget import retarget

    src = _walk(ctx)
    obj = retarget(ctx, src, build_fbx_style(ctx, ue_rows(), "ue_character"), lock_feet=False, hips_scale="height")
    _, m = _measure(ctx, src, obj)
    assert np.concatenate([v["target"] for v in m["slide"].values()]).max() > SLIDE_M
    obj2 = retarget(ctx, src, build_fbx_style(ctx, ue_rows(), "ue_locked"), hips_scale="height")
    _, m2 = _measure(ctx, src, obj2)
    _check_fidelity(m2)


def test_contacts_from_the_source_curves_and_root_at_origin(ctx):
    """The animation skeleton's contact_L / contact_R curves are the contacts used; the path
    starts at the world origin when asked."""
    from blender_addon.retarget import last_result, retarget
    from blender_addon.scene.anim import write_channels

    src = _walk(ctx, start=(2.0, 1.0))
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = src.animation_data
    bag = action_get_channelbag_for_slot(ad.action, ad.action_slot)
    frames = np.arange(1, FRAMES + 1)
    src["contact_L"], src["contact_R"] = 0.0, 0.0
    left = ((frames >= 10) & (frames < 30)).astype(float)
    write_channels(bag, '["contact_L"]', frames, left[:, None])
    write_channels(bag, '["contact_R"]', frames, np.zeros((FRAMES, 1)))
    obj = retarget(ctx, src, "mixamo", root_at_origin=True)
    take = last_result()["take"]
    np.testing.assert_array_equal(take.contacts["L"], left > 0.5)
    assert not take.contacts["R"].any()
    ctx.scene.frame_set(1)
    hips = obj.matrix_world @ obj.pose.bones["mixamorig:Hips"].head
    assert abs(hips.x) < 1e-4 and abs(hips.y) < 1e-4


def test_rigify_controls_and_deform_bones(ctx):
    """A Rigify rig generated from the human metarig: FK controls keyed (FK switched on), then
    the DEF bones keyed with their constraints removed; measured on the DEF bones."""
    from blender_addon.retarget import auto_bone_map, retarget
    from blender_addon.retarget.bake import RIGIFY_CONTROLS, TEMP
    from blender_addon.retarget.metrics import RIGIFY_DEF
    from openkin.errors import OpenKinError

    src = _walk(ctx)
    rig = retarget(ctx, src, "rigify")
    _, m = _measure(ctx, src, rig, RIGIFY_DEF)  # DEF bones still driven by the controls
    _check_fidelity(m)
    assert rig.pose.bones["thigh_parent.L"]["IK_FK"] == 1.0
    auto = auto_bone_map(rig)  # names on a generated rig: the DEF bones (deform first), Rigify's numbering
    assert {h: auto.bones[h] for h in ("hips", "spine", "head", "upper_arm.L", "shin.R")} == {
        "hips": "DEF-spine", "spine": "DEF-spine.001", "head": "DEF-spine.006", "upper_arm.L": "DEF-upper_arm.L",
        "shin.R": "DEF-shin.R"}
    keyed = {p.split('"')[1] for p, _ in _fcurve_paths(rig)}
    assert set(RIGIFY_CONTROLS) <= keyed
    assert not any(c.name == TEMP for pb in rig.pose.bones for c in pb.constraints)
    assert sorted(o.name for o in bpy.data.objects if o.type == "ARMATURE") == sorted([src.name, rig.name])

    rig2 = retarget(ctx, src, rig, deform=True)  # the same rig again, now baked down to DEF
    assert rig2 is rig
    _, m2 = _measure(ctx, src, rig, RIGIFY_DEF)
    _check_fidelity(m2)
    deform = [pb for pb in rig.pose.bones if pb.name.startswith("DEF-")]
    assert sum(len(pb.constraints) for pb in deform) == 0
    keyed = {p.split('"')[1] for p, _ in _fcurve_paths(rig)}
    assert {pb.name for pb in deform} <= keyed
    assert rig.animation_data.action.name.startswith("walk_take_rig")
    with pytest.raises(OpenKinError, match="already baked"):
        retarget(ctx, src, rig)


def test_no_action_is_a_clear_error(ctx):
    from blender_addon.retarget import retarget
    from blender_addon.retarget.walk import humanoid_rows
    from blender_addon.retarget.targets import build_armature
    from openkin.errors import OpenKinError

    src = build_armature(ctx, "still", humanoid_rows())
    with pytest.raises(OpenKinError, match="no action"):
        retarget(ctx, src, "mixamo")


# ---------------------------------------------------------------- the maths, against independent truths

unit3 = st.tuples(*[st.floats(-1, 1)] * 3).map(np.array).filter(lambda v: np.linalg.norm(v) > 0.1)


@settings(max_examples=60, deadline=None)
@given(unit3, unit3)
def test_min_rotation_matches_scipy(a, b):
    from scipy.spatial.transform import Rotation

    from blender_addon.retarget.solve import min_rotation, unit

    R = min_rotation(a, b)
    np.testing.assert_allclose(R @ unit(a), unit(b), atol=1e-9)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    if np.dot(unit(a), unit(b)) > -0.99:  # scipy's smallest rotation (unique away from antiparallel)
        ref, _ = Rotation.align_vectors([unit(b)], [unit(a)])
        np.testing.assert_allclose(R, ref.as_matrix(), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.3, 0.5), st.floats(0.3, 0.5), st.floats(0.05, 2.5), st.floats(-0.3, 0.3), st.floats(-0.3, 0.3),
       st.floats(-0.2, 0.2))
def test_two_bone_ik_reaches_reachable_goals(l1, l2, knee_bend, gx, gy, gz):
    """The ankle lands on the goal when it is in reach, the bone lengths are kept and the knee
    stays in the plane of hip, goal and old knee."""
    from blender_addon.retarget.solve import two_bone_ik

    hip = np.array([[0.0, 0.0, 1.0]])
    knee = hip + l1 * np.array([[0.0, -np.sin(knee_bend / 2), -np.cos(knee_bend / 2)]])
    ankle = knee + l2 * np.array([[0.0, np.sin(knee_bend / 2), -np.cos(knee_bend / 2)]])
    goal = ankle + [[gx, gy, gz]]
    d_th, d_sh, new_ankle = two_bone_ik(hip, knee, ankle, goal)
    new_knee = hip + np.einsum("fij,fj->fi", d_th, knee - hip)
    reached = hip + np.einsum("fij,fj->fi", d_th, knee - hip) + np.einsum("fij,fj->fi", d_sh, ankle - knee)
    np.testing.assert_allclose(np.linalg.norm(new_knee - hip), l1, rtol=1e-9)
    np.testing.assert_allclose(reached, new_ankle, atol=1e-9)
    dist = np.linalg.norm(goal - hip)
    if abs(l1 - l2) + 1e-3 < dist < l1 + l2 - 1e-3:
        np.testing.assert_allclose(new_ankle, goal, atol=1e-7)
    normal = np.cross(goal[0] - hip[0], knee[0] - hip[0])
    if np.linalg.norm(normal) > 1e-3:
        assert abs(np.dot(new_knee[0] - hip[0], normal / np.linalg.norm(normal))) < 1e-7


def test_lock_goals_hold_each_contact_and_fade():
    from blender_addon.retarget.solve import lock_goals, runs, slide_per_contact

    t = np.arange(100)
    ankle = np.c_[0.01 * t, np.zeros(100), np.full(100, 0.08)]  # a foot creeping 1 cm/frame
    contact = (t >= 20) & (t < 40)
    goals, weight = lock_goals(ankle, contact, blend=5)
    assert runs(contact) == [(20, 40)]
    assert slide_per_contact(goals, contact)[0] == 0.0
    np.testing.assert_allclose(goals[20, 0], ankle[20:40, 0].mean())
    assert (weight[15:20] > 0).all() and (weight[40:45] > 0).all() and weight[46] == 0 and weight[14] == 0
    np.testing.assert_array_equal(goals[50:], ankle[50:])
    assert slide_per_contact(ankle, contact)[0] == pytest.approx(0.19)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-1, 1)] * 4).filter(lambda q: np.linalg.norm(q) > 0.1), min_size=2, max_size=20))
def test_quaternions_match_scipy_and_stay_continuous(quats):
    from scipy.spatial.transform import Rotation

    from blender_addon.retarget.solve import quaternions

    rots = Rotation.from_quat(np.array(quats))  # x, y, z, w
    q = quaternions(rots.as_matrix())
    ref = rots.as_quat()[:, [3, 0, 1, 2]]
    np.testing.assert_allclose(np.abs(np.einsum("fi,fi->f", q, ref)), 1.0, atol=1e-9)  # same rotation
    assert (np.einsum("fi,fi->f", q[1:], q[:-1]) >= 0).all()  # no sign flips between frames

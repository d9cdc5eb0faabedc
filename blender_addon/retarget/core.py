"""Retarget a source animation armature (OpenKin's humanoid bones) onto a target armature.

Steps (arrays in :mod:`.solve`): sample the source's world bone matrices on every frame of its
action → target world rotations with per-bone rest-offset compensation (directions match the
source's) → hips path scaled by the height ratio → feet put on the floor → foot locking during
contacts by analytic two-bone leg IK → local pose matrices → one new action of bulk keys
(rotation quaternions; location on the hips). Rigify rigs are baked through their FK controls
(a temporary driver armature + Copy Transforms, visually keyed, then removed).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from openkin.errors import OpenKinError

from . import solve
from .bonemap import MAPPED, REQUIRED, BoneMap, RestSkeleton, auto_map

log = logging.getLogger(__name__)

# joint → child joint that gives its direction (else the bone's own tail)
CHILD = {"hips": "spine", "spine": "spine.001", "spine.001": "spine.002", "spine.002": "neck",
         "neck": "head", "shoulder.L": "upper_arm.L", "upper_arm.L": "forearm.L", "forearm.L": "hand.L",
         "thigh.L": "shin.L", "shin.L": "foot.L", "foot.L": "toe.L"}
CHILD.update({k.replace(".L", ".R"): v.replace(".L", ".R") for k, v in list(CHILD.items()) if k.endswith(".L")})
LIMBS = ("upper_arm.L", "forearm.L", "upper_arm.R", "forearm.R", "thigh.L", "shin.L", "thigh.R", "shin.R")


@dataclass
class Take:
    """The source sampled on its frames: ``frames`` (F,), ``world`` {humanoid bone: (F, 4, 4)},
    ``rest`` {humanoid bone: (4, 4)} world rest matrices, ``height`` (m), ``fps``, ``contacts``
    {"L"/"R": (F,) bools}, ``action`` name."""

    frames: np.ndarray
    world: dict
    rest: dict
    tails: dict
    height: float
    fps: float
    action: str
    contacts: dict = field(default_factory=dict)


@dataclass
class Result:
    """What :func:`solve_take` computed: ``pose`` (F, B, 4, 4) world pose matrices of the target's
    bones, ``order`` their names, ``scale`` the height ratio, ``origin``/``shift`` how the source's
    positions map (target = shift + scale (source − origin)), ``floor`` the vertical offset added."""

    pose: np.ndarray
    order: list
    scale: float
    origin: np.ndarray
    shift: np.ndarray
    floor: float
    contacts: dict
    path_scale: float = 1.0


# ---------------------------------------------------------------- reading Blender data

def world_rest(obj) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names (B,), parents (B,), world rest matrices (B, 4, 4) with unit-column rotations)."""
    bones = list(obj.data.bones)
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in bones])
    mw = np.array(obj.matrix_world)
    local = np.array([np.array(b.matrix_local) for b in bones]).reshape(-1, 4, 4)
    rest = mw @ local
    rest[:, :3, :3] = solve.orthonormal(rest[:, :3, :3])
    return names, parents, rest


def rest_skeleton(obj) -> RestSkeleton:
    """The armature's rest pose in world space for the bone map."""
    mw = np.array(obj.matrix_world)
    bones = list(obj.data.bones)
    index = {b.name: i for i, b in enumerate(bones)}

    def world(points):
        p = np.c_[np.array(points, float).reshape(-1, 3), np.ones(len(bones))]
        return (p @ mw.T)[:, :3]

    return RestSkeleton([b.name for b in bones],
                        np.array([index[b.parent.name] if b.parent else -1 for b in bones]),
                        world([b.head_local for b in bones]), world([b.tail_local for b in bones]),
                        np.array([b.use_deform for b in bones]))


def auto_bone_map(target_obj) -> BoneMap:
    """The automatic bone map of an armature (names, then topology); see :class:`BoneMap`."""
    if target_obj is None or target_obj.type != "ARMATURE":
        raise OpenKinError(f"'{getattr(target_obj, 'name', target_obj)}' is not an armature",
                           fix="pick an armature object as the retarget target")
    return auto_map(rest_skeleton(target_obj), target_obj.name)


STORED = "openkin_bone_map"


def store_bone_map(obj, bone_map: BoneMap) -> None:
    """Keep ``bone_map`` on the armature (custom property ``openkin_bone_map``: humanoid → bone),
    where the bone-map panel edits it and :func:`bone_map_of` finds it again."""
    obj[STORED] = dict(bone_map.bones)


def bone_map_of(obj) -> BoneMap:
    """The armature's stored bone map (edited by the user), else the automatic one."""
    if STORED in obj.keys():
        bm = BoneMap.from_dict({"bones": {k: str(v) for k, v in obj[STORED].items()}})
        bm.armature, bm.convention = obj.name, "stored"
        return bm
    return auto_bone_map(obj)


def source_map(source_obj) -> dict[str, str]:
    """Humanoid bone → source bone: OpenKin's names as they are, else the automatic map."""
    names = set(source_obj.data.bones.keys())
    if all(n in names for n in REQUIRED):
        return {n: n for n in MAPPED if n in names}
    return auto_bone_map(source_obj).require().bones


def _action_of(obj):
    ad = obj.animation_data
    if ad is None or ad.action is None:
        raise OpenKinError(f"armature '{obj.name}' has no action to retarget",
                           fix="give the source armature its take (an action) before retargeting")
    return ad.action


def _fcurve(obj, data_path: str):
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = obj.animation_data
    bag = action_get_channelbag_for_slot(ad.action, ad.action_slot) if ad and ad.action else None
    return bag.fcurves.find(data_path) if bag else None


def sample_source(context, source_obj, bones: dict[str, str]) -> Take:
    """Sample the source's world bone matrices on every frame of its action."""
    action = _action_of(source_obj)
    start, end = (int(round(v)) for v in action.frame_range)
    frames = np.arange(start, end + 1)
    pbones = source_obj.pose.bones
    all_names = [pb.name for pb in pbones]
    index = [all_names.index(bones[h]) for h in bones]
    scene = context.scene
    mw = np.array(source_obj.matrix_world)
    pose = _pose_from_action(source_obj, frames)
    if pose is None or not _agrees(context, source_obj, frames, pose):
        pose = _pose_by_frames(context, source_obj, frames)
    world = mw @ pose[:, index]
    world[..., :3, :3] = solve.orthonormal(world[..., :3, :3])
    names, _, rest = world_rest(source_obj)
    pos = {n: i for i, n in enumerate(names)}
    rest_map = {h: rest[pos[b]] for h, b in bones.items()}
    tails = {h: (mw @ np.r_[np.array(source_obj.data.bones[b].tail_local), 1.0])[:3] for h, b in bones.items()}
    skel = rest_skeleton(source_obj)
    fps = scene.render.fps / scene.render.fps_base
    take = Take(frames, {h: world[:, i] for i, h in enumerate(bones)}, rest_map, tails, skel.height(), fps,
                action.name)
    take.contacts = _contacts(source_obj, take)
    return take


def _pose_by_frames(context, obj, frames: np.ndarray) -> np.ndarray:
    """(F, B, 4, 4) pose matrices as Blender evaluates them, frame by frame (constraints,
    drivers, NLA: everything; the whole scene is evaluated on each frame)."""
    scene = context.scene
    keep = scene.frame_current
    pbones = obj.pose.bones
    buf = np.empty(len(pbones) * 16, np.float32)
    out = np.empty((len(frames), len(pbones), 4, 4))
    for f_i, f in enumerate(frames):
        scene.frame_set(int(f))
        pbones.foreach_get("matrix", buf)
        out[f_i] = buf.reshape(-1, 4, 4).transpose(0, 2, 1)
    scene.frame_set(keep)
    return out


def _pose_from_action(obj, frames: np.ndarray) -> np.ndarray | None:
    """(F, B, 4, 4) pose matrices from the armature's action alone (its fcurves evaluated, forward
    kinematics in numpy): fast, and exact for a keyed armature without constraints, drivers or NLA;
    None when the armature has any of those (then Blender evaluates it frame by frame)."""
    ad = obj.animation_data
    if ad is None or ad.drivers or len(ad.nla_tracks) or any(pb.constraints for pb in obj.pose.bones) \
            or any(not b.use_inherit_rotation or b.inherit_scale != "FULL" for b in obj.data.bones):
        return None
    bones = list(obj.data.bones)
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in bones])
    rest = np.array([np.array(b.matrix_local) for b in bones]).reshape(-1, 4, 4)
    basis = np.tile(np.eye(4), (len(frames), len(bones), 1, 1))
    for b, pb in enumerate(obj.pose.bones):
        if pb.rotation_mode not in ("QUATERNION", "XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"):
            return None
        basis[:, b] = _basis_of(obj, pb, frames)
    pose = np.empty_like(basis)
    for b in solve.hierarchy_order(parents):
        p = parents[b]
        pose[:, b] = (rest[b] if p < 0 else pose[:, p] @ (np.linalg.inv(rest[p]) @ rest[b])) @ basis[:, b]
    return pose


def _channel(obj, path: str, frames: np.ndarray, default: list[float]) -> np.ndarray:
    """(F, C) values of the fcurves ``path`` (one per index) on ``frames``; ``default`` where none."""
    out = np.tile(np.asarray(default, float), (len(frames), 1))
    for i in range(len(default)):
        fc = _fcurve_index(obj, path, i)
        if fc is not None:
            out[:, i] = [fc.evaluate(float(f)) for f in frames]
    return out


def _fcurve_index(obj, data_path: str, index: int):
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = obj.animation_data
    bag = action_get_channelbag_for_slot(ad.action, ad.action_slot) if ad and ad.action else None
    return bag.fcurves.find(data_path, index=index) if bag else None


def _basis_of(obj, pb, frames: np.ndarray) -> np.ndarray:
    """(F, 4, 4) ``matrix_basis`` of one pose bone from its fcurves (unkeyed channels keep the
    current values)."""
    from scipy.spatial.transform import Rotation

    path = f'pose.bones["{pb.name}"]'
    loc = _channel(obj, f"{path}.location", frames, list(pb.location))
    scale = _channel(obj, f"{path}.scale", frames, list(pb.scale))
    if pb.rotation_mode == "QUATERNION":
        q = _channel(obj, f"{path}.rotation_quaternion", frames, list(pb.rotation_quaternion))
        R = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()
    else:
        e = _channel(obj, f"{path}.rotation_euler", frames, list(pb.rotation_euler))
        order = pb.rotation_mode
        R = Rotation.from_euler(order.lower(), e[:, [("XYZ".index(a)) for a in order]]).as_matrix()
    m = np.tile(np.eye(4), (len(frames), 1, 1))
    m[:, :3, :3] = R * scale[:, None, :]
    m[:, :3, 3] = loc
    return m


def _agrees(context, obj, frames: np.ndarray, pose: np.ndarray, tol: float = 1e-4) -> bool:
    """Blender's own evaluation on three frames matches ``pose`` (F, B, 4, 4)."""
    pick = np.unique(np.r_[0, len(frames) // 2, len(frames) - 1])
    ref = _pose_by_frames(context, obj, frames[pick])
    ok = bool(np.abs(ref - pose[pick]).max() < tol)
    if not ok:
        log.info("the source's action alone does not give its pose (constraints?): sampling frame by frame")
    return ok


def _contacts(source_obj, take: Take) -> dict:
    """Contacts per foot: the source's ``contact_L``/``contact_R`` curves, else from foot speed."""
    out = {}
    for side in "LR":
        fc = _fcurve(source_obj, f'["contact_{side}"]')
        if fc is not None:
            out[side] = np.array([fc.evaluate(float(f)) for f in take.frames]) > 0.5
            continue
        ankle = take.world[f"foot.{side}"][:, :3, 3]
        low = _foot_low(take.world, take.rest, take.tails, side)
        out[side] = solve.detect_contacts(ankle, low, take.fps)
    log.info("contacts: %s", {s: len(solve.runs(m)) for s, m in out.items()})
    return out


def _foot_low(world: dict, rest: dict, tails: dict, side: str) -> np.ndarray:
    """(F,) lowest z of the foot (ankle, foot tail / toe head, toe tail) on each frame."""
    pts = [world[f"foot.{side}"][:, :3, 3]]
    for b in (f"foot.{side}", f"toe.{side}"):
        if b in world:
            tail_local = np.linalg.inv(rest[b]) @ np.r_[tails[b], 1.0]
            pts.append((world[b] @ tail_local)[:, :3])
    return np.min(np.stack([p[:, 2] for p in pts]), axis=0)


# ---------------------------------------------------------------- solving on arrays

def _directions(h: str, heads: dict, tails: dict, mapped: set) -> np.ndarray:
    child = CHILD.get(h)
    if child in mapped:
        return heads[child] - heads[h]
    return tails[h] - heads[h]


def solve_take(take: Take, names: list[str], parents: np.ndarray, rest: np.ndarray, tails: np.ndarray,
               bones: dict[str, str], height: float, *, lock_feet: bool = True,
               root_at_origin: bool = False, hips_scale: str = "legs") -> Result:
    """World pose (F, B, 4, 4) of a target skeleton (``names``, ``parents`` (B,), world ``rest``
    (B, 4, 4), world bone ``tails`` (B, 3), ``height`` m) driven by ``take`` through ``bones``
    (humanoid → target name)."""
    pos = {n: i for i, n in enumerate(names)}
    mapped = [h for h in MAPPED if h in bones and h in take.world]
    t_idx = np.array([pos[bones[h]] for h in mapped])
    s_heads = {h: take.rest[h][:3, 3] for h in mapped}
    t_heads = {h: rest[pos[bones[h]], :3, 3] for h in mapped}
    t_tails = {h: tails[pos[bones[h]]] for h in mapped}
    src_dir = np.array([_directions(h, s_heads, take.tails, set(mapped)) for h in mapped])
    tgt_dir = np.array([_directions(h, t_heads, t_tails, set(mapped)) for h in mapped])
    src_R = np.stack([take.world[h][:, :3, :3] for h in mapped], axis=1)
    src_rest_R = np.stack([take.rest[h][:3, :3] for h in mapped])
    F = len(take.frames)
    rot = np.zeros((F, len(names), 3, 3))
    given = np.zeros(len(names), bool)
    rot[:, t_idx] = solve.transfer_rotations(src_R, src_rest_R, src_dir, rest[t_idx, :3, :3], tgt_dir)
    given[t_idx] = True

    scale = height / take.height
    legs = _leg_length(rest[:, :3, 3], pos, bones) / _leg_length(
        {h: take.rest[h][:3, 3] for h in take.rest}, None, None)
    if hips_scale not in ("legs", "height"):
        raise OpenKinError(f"unknown hips_scale '{hips_scale}'", fix="use 'legs' or 'height'")
    path_scale = legs if hips_scale == "legs" else scale
    hips_path = take.world["hips"][:, :3, 3]
    origin = np.array([hips_path[0, 0], hips_path[0, 1], 0.0])
    shift = np.zeros(3) if root_at_origin else origin
    root = pos[bones["hips"]]
    root_pos = shift + path_scale * (hips_path - origin)
    pose = solve.forward(parents, rest, rot, given, root, root_pos)

    t_low = np.min([_target_low(pose, rest, tails, pos, bones, s) for s in "LR"], axis=0)
    s_low = np.min([_foot_low(take.world, take.rest, take.tails, s) for s in "LR"], axis=0)
    floor = float(np.median(scale * s_low - t_low))
    root_pos = root_pos + [0.0, 0.0, floor]
    pose = solve.forward(parents, rest, rot, given, root, root_pos)
    if lock_feet:
        legs = _locked_legs(pose, pos, bones, take.contacts)
        if legs:
            # the hips carry the contact feet's mean correction (the legs keep the source's
            # directions); two-bone IK takes up what is left (double support)
            corr = sum(w[:, None] * (g - pose[:, ft, :3, 3]) for (_, _, ft), g, w in legs.values())
            total = np.maximum(sum(w for _, _, w in legs.values()), 1.0)
            root_pos = root_pos + np.c_[(corr / total[:, None])[:, :2], np.zeros(F)]
            pose = solve.forward(parents, rest, rot, given, root, root_pos)
            for (th, sh, ft), goals, weight in legs.values():
                on = weight > 0
                d_th, d_sh, _ = solve.two_bone_ik(pose[on, th, :3, 3], pose[on, sh, :3, 3], pose[on, ft, :3, 3],
                                                  goals[on])
                rot[on, th] = d_th @ pose[on, th, :3, :3]
                rot[on, sh] = d_sh @ pose[on, sh, :3, :3]
                given[[th, sh]] = True
            pose = solve.forward(parents, rest, rot, given, root, root_pos)
    return Result(pose, list(names), scale, origin, shift, floor, take.contacts, path_scale)


def _locked_legs(pose: np.ndarray, pos: dict, bones: dict, contacts: dict) -> dict:
    """Per foot with contacts: ((thigh, shin, foot) indices, ankle goals (F, 3), weights (F,))."""
    out = {}
    for side in "LR":
        legs = [bones.get(f"{b}.{side}") for b in ("thigh", "shin", "foot")]
        if None in legs or not contacts.get(side, np.zeros(0)).any():
            continue
        th, sh, ft = (pos[b] for b in legs)
        goals, weight = solve.lock_goals(pose[:, ft, :3, 3], contacts[side])
        out[side] = ((th, sh, ft), goals, weight)
    return out


def _leg_length(heads, pos: dict | None, bones: dict | None) -> float:
    """Mean hip → knee → ankle length of both legs (rest); ``heads`` (B, 3) with ``pos``/``bones``
    to find the bones, or a {humanoid: head} dict."""
    def head(h):
        return heads[pos[bones[h]]] if pos is not None else heads[h]

    total = [np.linalg.norm(head(f"shin.{s}") - head(f"thigh.{s}")) + np.linalg.norm(head(f"foot.{s}") - head(f"shin.{s}"))
             for s in "LR"]
    return float(np.mean(total))


def _target_low(pose: np.ndarray, rest: np.ndarray, tails: np.ndarray, pos: dict, bones: dict, side: str) -> np.ndarray:
    """(F,) lowest z of the target's foot: ankle, foot tail, toe tail."""
    pts = []
    for b in (f"foot.{side}", f"toe.{side}"):
        if b in bones:
            i = pos[bones[b]]
            tail_local = np.linalg.inv(rest[i]) @ np.r_[tails[i], 1.0]
            pts += [pose[:, i, :3, 3], (pose[:, i] @ tail_local)[:, :3]]
    return np.min(np.stack([p[:, 2] for p in pts]), axis=0)


def to_armature(matrix_world: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World pose matrices (…, 4, 4) → the armature's space (uniform object scale allowed)."""
    k = float(np.linalg.norm(matrix_world[:3, 0]))
    Rn = matrix_world[:3, :3] / k
    out = pose.copy()
    out[..., :3, :3] = Rn.T @ pose[..., :3, :3]
    out[..., :3, 3] = ((pose[..., :3, 3] - matrix_world[:3, 3]) @ Rn) / k
    return out


def sub_skeleton(names: list[str], parents: np.ndarray, keep: list[str], logical: dict[str, str]
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The bones ``keep`` as a skeleton of their own: each bone's parent is ``logical[name]`` if
    given, else its nearest kept ancestor (-1 if none); ordered parents first →
    (names, parents, index into the full skeleton)."""
    pos = {n: i for i, n in enumerate(names)}
    kept = set(keep)
    parent_of = {}
    for n in keep:
        p = logical.get(n)
        if p is None:
            i = int(parents[pos[n]])
            while i >= 0 and names[i] not in kept:
                i = int(parents[i])
            p = names[i] if i >= 0 else None
        parent_of[n] = p
    order, placed = [], set()

    def place(n):
        if n in placed:
            return
        if parent_of[n] is not None:
            place(parent_of[n])
        placed.add(n)
        order.append(n)

    for n in keep:
        place(n)
    index = {n: i for i, n in enumerate(order)}
    sub_parents = np.array([index[parent_of[n]] if parent_of[n] else -1 for n in order])
    return order, sub_parents, np.array([pos[n] for n in order])

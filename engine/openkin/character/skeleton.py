"""The animation skeleton: humanoid bones (:mod:`.humanoid`) from a scaled OpenSim model and its motion.

API (what the Blender builder, retargeting and export call)::

    sk = animation_skeleton(osim_path, mot_path, rest="T", root_bone=True)   # -> AnimationSkeleton
    sk = skeleton_from_motion(body_motion, rest="A", root_bone=False)        # from a BodyMotion

:class:`AnimationSkeleton` holds, in the capture's world frame (Z up, metres, the armature
object at the identity):

- the rest pose (bones ``names``, ``parents``; ``heads``/``tails``/``z_axes`` (N, 3): Blender's
  edit bones are ``head``, ``tail`` and ``align_roll(z_axis)``; ``rest`` (N, 4, 4) = Blender's
  ``bone.matrix_local``): a T or A pose standing on the floor (z = 0) at the origin, facing -Y,
  left side on +X, mirror-symmetric directions and rolls (z_R = mirror(z_L));
- per frame (F): ``rotations`` (F, N, 4) each bone's pose rotation quaternion (w, x, y, z),
  Blender's ``pose_bone.rotation_quaternion`` (continuous in sign over time); ``location``
  (F, 3) the pose location of ``motion_bone`` only (``"root"`` or ``"hips"``; every other bone is
  rotation-only); ``world`` (F, N, 4, 4) the posed bone matrices (``pose_bone.matrix``);
- ``landmarks``: {name: (F, 3)} OpenSim's own points over the take (joint centres ``hip.L``,
  ``knee.L``, ``ankle.L``, ``shoulder.L``, ``elbow.L``, ``wrist.L`` ..., and ``heel.L``/``toe.L``,
  the feet's contact points); ``JOINT_HEADS`` maps joint centres to the bones whose heads they are.

How bones follow bodies: bone b is carried by one OpenSim body B (thigh by the femur, forearm by
the radius ...) with a constant offset ``C_b`` (bone frame in the body frame, fixed at the model's
default pose); its world orientation is ``R_B(t) C_b``. Limb and lumbar bones whose tail is a
joint centre that moves in B (the walker knee's centre, the wrist seen from the elbow) are then
swung by the smallest rotation that points them from their posed head at OpenSim's centre
(``AIMED``), so that errors do not add up along a chain; their length is the midrange of the
head-tail distance over the take. Heads of bones hanging off a body (hips -> thighs and spine,
spine.002 -> shoulders) are that body's own points, so they are exact.

The rest pose: each bone's rest direction is designed (spine, neck and head up; legs down; arms
out (T) or 45° down (A); feet at their default pitch; toes forward), its roll from a reference
direction (forward -Y; up +Z for feet, toes and root), and the rest pose of a body is the one
that puts its bone there with the same twist as at the model's default pose.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import OpenKinError
from . import humanoid
from .motion import BodyMotion, body_motion

log = logging.getLogger(__name__)

REST_POSES = ("T", "A")
A_POSE_ANGLE = 45.0               # degrees below horizontal of the arms in the A pose
FORWARD = np.array([0.0, -1.0, 0.0])
UP = np.array([0.0, 0.0, 1.0])
MIRROR = np.diag([-1.0, 1.0, 1.0])
FACE = np.diag([-1.0, -1.0, 1.0])  # OpenSim's default pose faces +Y in the Z-up world: turn it to -Y
ROOT_LENGTH = 0.25
# generic Pose2Sim model dimensions (metres) the derived bones scale with
GENERIC_FOOT = 0.179              # calcn origin -> mtp
GENERIC_FOREARM = 0.25
GENERIC_TORSO = 0.55
TOE_LENGTH = 0.055                # mtp -> toe tip, along the toes' x, generic model
HAND_LENGTH = 0.09                # wrist -> hand tip, along the hand's -y
NECK_LENGTH = 0.09
HEAD_LENGTH = 0.2
SHOULDER_MEDIAL = 0.2             # the shoulder bone starts at this fraction of the shoulder's lateral offset
JOINT_HEADS = {f"{j}.{s}": f"{b}.{s}" for s in "LR" for j, b in
               (("hip", "thigh"), ("knee", "shin"), ("ankle", "foot"), ("shoulder", "upper_arm"),
                ("elbow", "forearm"), ("wrist", "hand"))}
AIMED = ("spine", "spine.001", "thigh.L", "shin.L", "foot.L", "upper_arm.L", "forearm.L",
         "thigh.R", "shin.R", "foot.R", "upper_arm.R", "forearm.R")


@dataclass
class Landmark:
    """A point fixed in ``body``: ``local`` (3,) in its frame."""

    body: str
    local: np.ndarray


@dataclass
class BoneSpec:
    """``chain``: the head is the parent's tail; else a point fixed in the parent's body."""

    name: str
    body: str
    head: Landmark
    tail: Landmark
    chain: bool
    design: np.ndarray            # rest direction (3,), unit
    zref: np.ndarray              # roll reference (3,)


@dataclass
class AnimationSkeleton:
    """See the module docstring. N bones, F frames."""

    names: list[str]
    parents: list[int]
    heads: np.ndarray
    tails: np.ndarray
    z_axes: np.ndarray
    rest: np.ndarray
    rotations: np.ndarray
    location: np.ndarray
    motion_bone: str
    world: np.ndarray
    times: np.ndarray
    rest_pose: str
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) bone lengths."""
        return np.linalg.norm(self.tails - self.heads, axis=1)

    def posed_heads(self) -> np.ndarray:
        """(F, N, 3) bone heads in the world over the take."""
        return self.world[:, :, :3, 3]

    def posed_tails(self) -> np.ndarray:
        """(F, N, 3) bone tails in the world over the take."""
        return self.world[:, :, :3, 3] + self.world[:, :, :3, 1] * self.lengths[None, :, None]


def frame(y: np.ndarray, zref: np.ndarray) -> np.ndarray:
    """Bone frame(s) with y along ``y`` and z towards ``zref``: (..., 3) -> (..., 3, 3) columns x, y, z."""
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    z = zref - np.sum(zref * y, axis=-1, keepdims=True) * y
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    return np.stack([np.cross(y, z), y, z], axis=-1)


def swing(R: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotate frames ``R`` (F, 3, 3) by the smallest rotation taking their y axis to ``target`` (F, 3)."""
    y = R[:, :, 1]
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    axis = np.cross(y, t)
    s = np.linalg.norm(axis, axis=1)
    angle = np.arctan2(s, np.sum(y * t, axis=1))
    rotvec = axis * (angle / np.maximum(s, 1e-15))[:, None]
    return Rotation.from_rotvec(rotvec).as_matrix() @ R


# ---------------------------------------------------------------- the model's bodies -> bones

def _joint_centre(bm: BodyMotion, child: str) -> Landmark:
    """The centre of the joint whose child is ``child``, as a point of ``child``."""
    j = bm.joint_of_child(child)
    return Landmark(child, bm.tree.joints[j].p_bm.copy())


def _need(bm: BodyMotion, names: list[str], osim: str | None = None) -> None:
    missing = [n for n in names if n not in bm.bodies]
    if missing:
        raise OpenKinError(f"the model has no body {', '.join(missing)}: it is not a Pose2Sim-like humanoid",
                           path=osim, fix="use a Pose2Sim model (Model_Pose2Sim_*.osim) scaled by the kinematics stage")


def spine_joints(bm: BodyMotion) -> list[int]:
    """Movable joints from the pelvis up to the torso, in order (indices into ``bm.joints``)."""
    path, body = [], bm.body("torso")
    pelvis = bm.body("pelvis")
    while body != pelvis:
        j = int(np.flatnonzero(bm.joint_child == body)[0])
        path.append(j)
        body = int(bm.joint_parent[j])
        if body < 0:
            raise OpenKinError("the model's torso does not hang from its pelvis",
                               fix="use a Pose2Sim model (Model_Pose2Sim_*.osim)")
    return [j for j in reversed(path) if bm.tree.joints[j].axes]


def _default_world(bm: BodyMotion, lm: Landmark) -> np.ndarray:
    b = bm.body(lm.body)
    return bm.p0[b] + bm.R0[b] @ lm.local


def _on(bm: BodyMotion, body: str, lm: Landmark) -> Landmark:
    """The same point (at the default pose) as a point of ``body``."""
    return Landmark(body, bm.local(body, _default_world(bm, lm)))


def _spine_specs(bm: BodyMotion) -> list[tuple[str, str, Landmark, Landmark]]:
    """(bone, body, head, tail) of spine, spine.001, spine.002."""
    joints = spine_joints(bm)
    neck = _joint_centre(bm, "head")
    centres = [Landmark(bm.bodies[bm.joint_child[j]], bm.tree.joints[j].p_bm.copy()) for j in joints]
    if not centres:
        raise OpenKinError("the model's torso is welded to its pelvis (no back joint)",
                           fix="use a Pose2Sim model (Model_Pose2Sim_*.osim)")
    last = centres[-1]
    a, b = last.local, _on(bm, last.body, neck).local
    # Bones over several lumbar joints keep a fixed length while the chord between their end joints
    # changes with bending; shorter lumbar bones keep the shoulders closer to OpenSim's (a 6-joint
    # chain split 2 + 3: 0.8 mm at most in a deep squat, vs 3.7 mm for 5 + torso halves).
    if len(centres) >= 3:   # lumbar joints: two bones over them, the torso (up to the neck) in one
        heads = [centres[0], centres[len(centres) // 3], last]
    else:                   # one or two back joints: the last body split up to the neck
        heads = centres + [Landmark(last.body, a + (b - a) * k / (4 - len(centres))) for k in range(1, 4 - len(centres))]
    bodies = [h.body for h in heads]
    tails = heads[1:] + [neck]
    return [(name, body, h, t) for name, body, h, t in zip(("spine", "spine.001", "spine.002"), bodies, heads, tails)]


def bone_specs(bm: BodyMotion, rest: str = "T", osim: str | None = None) -> list[BoneSpec]:
    """The humanoid bones (without ``root``) on this model's bodies, in hierarchy order."""
    sides = {"L": "l", "R": "r"}
    _need(bm, ["pelvis", "torso", "head"] + [f"{b}_{s}" for s in "lr" for b in
                                             ("femur", "tibia", "talus", "calcn", "toes", "humerus", "ulna", "radius", "hand")], osim)
    hip = {s: _joint_centre(bm, f"femur_{o}") for s, o in sides.items()}
    hip_mid = Landmark("pelvis", (_on(bm, "pelvis", hip["L"]).local + _on(bm, "pelvis", hip["R"]).local) / 2)
    spine = _spine_specs(bm)
    lumbar = _on(bm, "pelvis", spine[0][2]).local
    rise = max(0.08, float(lumbar[1] - hip_mid.local[1]))
    specs = [BoneSpec("hips", "pelvis", hip_mid, Landmark("pelvis", hip_mid.local + [0, rise, 0]), False, UP, FORWARD)]
    for name, body, head, tail in spine:
        specs.append(BoneSpec(name, body, head, tail, name != "spine", UP, FORWARD))
    neck = _joint_centre(bm, "head")
    torso_len = np.linalg.norm(_default_world(bm, neck) - _default_world(bm, spine[0][2]))
    k = torso_len / GENERIC_TORSO
    up = np.array([0.0, 1.0, 0.0])
    neck_tail = Landmark("head", neck.local + up * NECK_LENGTH * k)
    specs.append(BoneSpec("neck", "head", neck, neck_tail, True, UP, FORWARD))
    specs.append(BoneSpec("head", "head", neck_tail, Landmark("head", neck_tail.local + up * HEAD_LENGTH * k), True, UP,
                          FORWARD))
    arm = _arm_direction(rest)
    for s, o in sides.items():
        sign = 1.0 if s == "L" else -1.0
        shoulder = _joint_centre(bm, f"humerus_{o}")
        on_torso = _on(bm, "torso", shoulder).local
        medial = Landmark("torso", on_torso * [1.0, 1.0, SHOULDER_MEDIAL])
        elbow, wrist = _joint_centre(bm, f"ulna_{o}"), _joint_centre(bm, f"hand_{o}")
        forearm = np.linalg.norm(_default_world(bm, wrist) - _default_world(bm, elbow)) / GENERIC_FOREARM
        a = arm * [sign, 1, 1]
        specs += [
            BoneSpec(f"shoulder.{s}", "torso", medial, _on(bm, "torso", shoulder), False, np.array([sign, 0.0, 0.0]),
                     FORWARD),
            BoneSpec(f"upper_arm.{s}", f"humerus_{o}", shoulder, elbow, True, a, FORWARD),
            BoneSpec(f"forearm.{s}", f"radius_{o}", elbow, wrist, True, a, FORWARD),
            BoneSpec(f"hand.{s}", f"hand_{o}", wrist, Landmark(f"hand_{o}", wrist.local - up * HAND_LENGTH * forearm),
                     True, a, FORWARD)]
    for s, o in sides.items():
        knee, ankle, mtp = (_joint_centre(bm, f"{b}_{o}") for b in ("tibia", "talus", "toes"))
        foot = np.linalg.norm(_on(bm, f"calcn_{o}", mtp).local) / GENERIC_FOOT
        toe_tip = Landmark(f"toes_{o}", mtp.local + np.array([TOE_LENGTH * foot, 0.0, 0.0]))
        down = np.array([0.0, 0.0, -1.0])
        specs += [
            BoneSpec(f"thigh.{s}", f"femur_{o}", hip[s], knee, False, down, FORWARD),
            BoneSpec(f"shin.{s}", f"tibia_{o}", knee, ankle, True, down, FORWARD),
            BoneSpec(f"foot.{s}", f"calcn_{o}", ankle, mtp, True, _foot_direction(bm), UP),
            BoneSpec(f"toe.{s}", f"toes_{o}", mtp, toe_tip, True, FORWARD.copy(), UP)]
    order = {n: i for i, n in enumerate(humanoid.NAMES)}
    return sorted(specs, key=lambda b: order[b.name])


def _arm_direction(rest: str) -> np.ndarray:
    """Rest direction of the left arm (+X side)."""
    if rest not in REST_POSES:
        raise OpenKinError(f"unknown rest pose {rest!r}", fix=f"choose one of {', '.join(REST_POSES)}")
    if rest == "T":
        return np.array([1.0, 0.0, 0.0])
    a = np.radians(A_POSE_ANGLE)
    return np.array([np.cos(a), 0.0, -np.sin(a)])


def _foot_direction(bm: BodyMotion) -> np.ndarray:
    """Rest direction of the feet: forward (-Y) at the model's default pitch (mean of both feet)."""
    pitch = []
    for o in "lr":
        d = _default_world(bm, _joint_centre(bm, f"toes_{o}")) - _default_world(bm, _joint_centre(bm, f"talus_{o}"))
        pitch.append(np.arctan2(d[2], np.hypot(d[0], d[1])))
    p = float(np.mean(pitch))
    return np.array([0.0, -np.cos(p), np.sin(p)])


# ---------------------------------------------------------------- rest pose and motion

def _world(bm: BodyMotion, lm: Landmark) -> np.ndarray:
    """(F, 3) world positions of a landmark over the take."""
    return bm.world(lm.body, lm.local)


def _rest_layout(bm: BodyMotion, specs: list[BoneSpec]):
    """Rest frames (N, 3, 3), heads (N, 3), lengths (N,), body offsets C (N, 3, 3), parent indices."""
    index = {s.name: i for i, s in enumerate(specs)}
    parents = [index.get(humanoid.PARENT[s.name], -1) for s in specs]
    n = len(specs)
    R_rest, C, heads, lengths = np.empty((n, 3, 3)), np.empty((n, 3, 3)), np.zeros((n, 3)), np.empty(n)
    for i, s in enumerate(specs):
        d0 = FACE @ (_default_world(bm, s.tail) - _default_world(bm, s.head))
        C[i] = (FACE @ bm.R0[bm.body(s.body)]).T @ frame(d0, s.zref)
        design = s.design
        if s.name.startswith("shoulder."):   # its default direction, mirror-averaged across sides
            design = _mirror_mean(bm, s, specs)
        R_rest[i] = frame(design, s.zref)
        span = np.linalg.norm(_world(bm, s.tail) - _world(bm, s.head), axis=1)
        lengths[i] = 0.5 * (span.min() + span.max())
        p = parents[i]
        if p < 0:
            continue
        if s.chain:
            heads[i] = heads[p] + R_rest[p][:, 1] * lengths[p]
        else:
            ps = specs[p]
            body_rest = R_rest[p] @ C[p].T      # the parent body's rest orientation
            offset = _on(bm, ps.body, s.head).local - _on(bm, ps.body, ps.head).local
            heads[i] = heads[p] + body_rest @ offset
    return R_rest, heads, lengths, C, parents


def _mirror_mean(bm: BodyMotion, s: BoneSpec, specs: list[BoneSpec]) -> np.ndarray:
    other = next(o for o in specs if o.name == humanoid.mirror_name(s.name))
    d = [FACE @ (_default_world(bm, b.tail) - _default_world(bm, b.head)) for b in (s, other)]
    d = [v / np.linalg.norm(v) for v in d]
    m = d[0] + MIRROR @ d[1]
    return m / np.linalg.norm(m)


def _feet_floor(bm, specs, R_rest, heads, lengths, C) -> float:
    """Lowest rest z of the feet's contact points (heel, toe tip)."""
    index = {s.name: i for i, s in enumerate(specs)}
    z = []
    for side in "LR":
        t = index[f"toe.{side}"]
        z.append((heads[t] + R_rest[t][:, 1] * lengths[t])[2])
        f = index[f"foot.{side}"]
        heel = heel_landmark(bm, side)
        offset = heel.local - _on(bm, specs[f].body, specs[f].head).local
        z.append((heads[f] + R_rest[f] @ C[f].T @ offset)[2])
    return float(min(z))


def heel_landmark(bm: BodyMotion, side: str) -> Landmark:
    """The heel's contact point: the calcaneus' origin (its posterior-inferior corner in Pose2Sim's models)."""
    return Landmark(f"calcn_{'l' if side == 'L' else 'r'}", np.zeros(3))


def _yaw(R_pelvis: np.ndarray) -> np.ndarray:
    """(F, 3, 3) pelvis frames -> (F, 3, 3) rotations about Z turning -Y to the pelvis' heading."""
    fwd = R_pelvis[:, :, 0]
    yaw = np.arctan2(fwd[:, 1], fwd[:, 0]) + np.pi / 2
    return Rotation.from_euler("z", yaw[:, None]).as_matrix()


def _to_quat(R: np.ndarray) -> np.ndarray:
    """(F, 3, 3) -> (F, 4) w, x, y, z with a continuous sign over frames."""
    q = Rotation.from_matrix(R).as_quat(scalar_first=True)
    return continuous_quaternions(q)


def continuous_quaternions(q: np.ndarray) -> np.ndarray:
    """(F, 4) quaternions with signs flipped so that consecutive ones are in the same hemisphere."""
    if len(q) < 2:
        return q
    flip = np.sum(q[1:] * q[:-1], axis=1) < 0
    sign = np.concatenate([[1.0], np.cumprod(np.where(flip, -1.0, 1.0))])
    return q * sign[:, None]


def skeleton_from_motion(bm: BodyMotion, *, rest: str = "T", root_bone: bool = True,
                         osim: str | None = None) -> AnimationSkeleton:
    """The animation skeleton of a :class:`BodyMotion` (see the module docstring)."""
    specs = bone_specs(bm, rest, osim)
    R_rest, heads, lengths, C, parents = _rest_layout(bm, specs)
    heads[:, 2] -= _feet_floor(bm, specs, R_rest, heads, lengths, C)
    names = [s.name for s in specs]
    if root_bone:
        names = ["root"] + names
        parents = [-1] + [p + 1 for p in parents]
        parents[1] = 0
        R_rest = np.concatenate([frame(FORWARD, UP)[None], R_rest])
        heads = np.concatenate([[heads[0] * [1, 1, 0]], heads])
        lengths = np.concatenate([[ROOT_LENGTH], lengths])
        C = np.concatenate([np.eye(3)[None], C])
        specs = [None] + specs
    F = len(bm.times)
    n = len(names)
    W = np.zeros((F, n, 4, 4))
    W[:, :, 3, 3] = 1.0
    quats = np.empty((F, n, 4))
    hips = names.index("hips")
    R_pelvis = bm.R[:, bm.body("pelvis")]
    hip_target = _world(bm, specs[hips].head)
    for i, name in enumerate(names):
        p = parents[i]
        if name == "root":
            Rw = _yaw(R_pelvis) @ R_rest[i]
            h = hip_target - np.einsum("fij,j->fi", Rw @ R_rest[i].T, heads[hips] - heads[i])
        else:
            s = specs[i]
            Rw = bm.R[:, bm.body(s.body)] @ C[i]
            if p < 0:
                h = hip_target
            else:
                offset = R_rest[p].T @ (heads[i] - heads[p])       # head in the parent's rest frame
                h = W[:, p, :3, 3] + np.einsum("fij,j->fi", W[:, p, :3, :3], offset)
            if name in AIMED:
                Rw = swing(Rw, _world(bm, s.tail) - h)
        W[:, i, :3, :3], W[:, i, :3, 3] = Rw, h
        rest_local = R_rest[i] if p < 0 else R_rest[p].T @ R_rest[i]
        parent_now = np.eye(3) if p < 0 else W[:, p, :3, :3].transpose(0, 2, 1)
        quats[:, i] = _to_quat(rest_local.T @ parent_now @ Rw)
    motion = 0
    location = np.einsum("ij,fj->fi", R_rest[motion].T, W[:, motion, :3, 3] - heads[motion])
    rest4 = np.zeros((n, 4, 4))
    rest4[:, :3, :3], rest4[:, :3, 3], rest4[:, 3, 3] = R_rest, heads, 1.0
    tails = heads + R_rest[:, :, 1] * lengths[:, None]
    return AnimationSkeleton(names, parents, heads, tails, R_rest[:, :, 2].copy(), rest4, quats, location, names[0], W,
                             bm.times.copy(), rest, _landmarks(bm, specs))


def _landmarks(bm: BodyMotion, specs: list) -> dict[str, np.ndarray]:
    """OpenSim's joint centres and the feet's contact points over the take, (F, 3) each."""
    by_name = {s.name: s for s in specs if s is not None}
    out = {joint: _world(bm, by_name[bone].head) for joint, bone in JOINT_HEADS.items()}
    for side in "LR":
        out[f"heel.{side}"] = _world(bm, heel_landmark(bm, side))
        out[f"toe.{side}"] = _world(bm, by_name[f"toe.{side}"].tail)
    return out


def animation_skeleton(osim_path: str | Path, mot_path: str | Path, *, rest: str = "T",
                       root_bone: bool = True) -> AnimationSkeleton:
    """The animation skeleton of a scaled OpenSim model (.osim) and its IK motion (.mot).

    ``rest``: "T" or "A"; ``root_bone``: root motion on a separate ``root`` bone on the floor
    (location + heading), else on ``hips`` (location + rotation). Raises :class:`OpenKinError`
    for a model that is not a Pose2Sim-like humanoid or a motion that does not fit it."""
    bm = body_motion(osim_path, mot_path)
    return skeleton_from_motion(bm, rest=rest, root_bone=root_bone, osim=str(osim_path))

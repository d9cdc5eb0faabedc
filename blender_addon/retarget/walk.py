"""A walking source armature on OpenKin's humanoid bones, for tests and benchmarks until the
capture's animation skeleton is at hand: adult proportions (1.75 m), T-pose rest, Z up,
facing −Y, a gait of keyed rotations (hip, knee, ankle, pelvis, spine, arm swing) whose hips
path is integrated from the stance foot so the stance foot stays planted, like a real walk.
"""
from __future__ import annotations

import numpy as np

from openkin.character.humanoid import BONES

from . import solve
from .targets import build_armature

# joint positions (x, y, z) in metres, left side (+X); right mirrored
_JOINTS = {
    "root": ((0, 0, 0), (0, 0.25, 0)),
    "hips": ((0, 0, 0.95), (0, 0, 1.05)),
    "spine": ((0, 0, 1.05), (0, 0.0, 1.17)),
    "spine.001": ((0, 0, 1.17), (0, 0, 1.30)),
    "spine.002": ((0, 0, 1.30), (0, 0, 1.45)),
    "neck": ((0, 0, 1.45), (0, -0.01, 1.56)),
    "head": ((0, -0.01, 1.56), (0, -0.01, 1.75)),
    "shoulder.L": ((0.03, -0.02, 1.41), (0.17, 0, 1.42)),
    "upper_arm.L": ((0.17, 0, 1.42), (0.45, 0, 1.42)),
    "forearm.L": ((0.45, 0, 1.42), (0.71, 0, 1.42)),
    "hand.L": ((0.71, 0, 1.42), (0.89, 0, 1.42)),
    "thigh.L": ((0.09, 0, 0.93), (0.09, -0.01, 0.50)),
    "shin.L": ((0.09, -0.01, 0.50), (0.09, 0.01, 0.08)),
    "foot.L": ((0.09, 0.01, 0.08), (0.09, -0.12, 0.02)),
    "toe.L": ((0.09, -0.12, 0.02), (0.09, -0.19, 0.02)),
}


ARM = ("upper_arm", "forearm", "hand")


def humanoid_rows(rest: str = "T") -> list[tuple[str, str | None, tuple, tuple]]:
    """(name, parent, head, tail) of every humanoid bone; ``rest="A"`` lowers the arms 45°
    (a rigid turn of upper arm, forearm and hand about the shoulder joint)."""
    rows = []
    for name, parent in BONES:
        src = name.replace(".R", ".L")
        h, t = (np.array(p, float) for p in _JOINTS[src])
        if rest == "A" and src.split(".")[0] in ARM:
            pivot = np.array(_JOINTS["upper_arm.L"][0], float)
            turn = _ry(np.radians(45.0))
            h, t = pivot + turn @ (h - pivot), pivot + turn @ (t - pivot)
        if name.endswith(".R"):
            h, t = h * [-1, 1, 1], t * [-1, 1, 1]
        rows.append((name, parent, tuple(h), tuple(t)))
    return rows


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(np.shape(a) + (3, 3))
    R[..., 0, 0] = 1
    R[..., 1, 1], R[..., 1, 2], R[..., 2, 1], R[..., 2, 2] = c, -s, s, c
    return R


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(np.shape(a) + (3, 3))
    R[..., 1, 1] = 1
    R[..., 0, 0], R[..., 0, 2], R[..., 2, 0], R[..., 2, 2] = c, s, -s, c
    return R


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(np.shape(a) + (3, 3))
    R[..., 2, 2] = 1
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1] = c, -s, s, c
    return R


def gait_deltas(n_frames: int, fps: float, stride_hz: float = 0.9) -> dict[str, np.ndarray]:
    """Each bone's rotation relative to its parent, in world axes: {name: (F, 3, 3)}."""
    t = np.arange(n_frames) / fps
    phi = 2 * np.pi * stride_hz * t
    d = np.radians
    out = {"hips": _rz(d(5) * np.sin(phi)) @ _rx(d(3) * np.cos(2 * phi)),
           "spine": _rz(-d(3) * np.sin(phi)), "spine.001": _rz(-d(3) * np.sin(phi)),
           "spine.002": _rz(-d(2) * np.sin(phi)), "neck": _rz(d(2) * np.sin(phi)),
           "head": _rx(d(4) * np.sin(2 * phi))}
    for side, ph, sign in (("L", phi, 1.0), ("R", phi + np.pi, -1.0)):
        hip = d(22) * np.cos(ph) + d(5)
        swing = np.clip(-np.sin(ph), 0, None)
        knee = d(5) + d(58) * swing ** 1.5
        out[f"thigh.{side}"] = _rx(-hip)
        out[f"shin.{side}"] = _rx(knee)
        out[f"foot.{side}"] = _rx(-d(12) * swing + d(4) * np.sin(ph))
        out[f"toe.{side}"] = _rx(d(15) * np.clip(np.sin(ph - 1.2), 0, None))
        out[f"shoulder.{side}"] = _ry(sign * d(4) * np.ones_like(ph))
        out[f"upper_arm.{side}"] = _rx(d(20) * np.cos(ph)) @ _ry(sign * d(75) * np.ones_like(ph))
        out[f"forearm.{side}"] = _rz(sign * d(15 + 10 * np.cos(ph)))
        out[f"hand.{side}"] = _rx(d(5) * np.sin(ph))
    return out


def build_walk_source(context, n_frames: int = 240, fps: float = 60.0, start=(1.2, 0.5), name: str = "walk_source",
                      action_name: str = "walk_take", rest_pose: str = "T"):
    """An armature of OpenKin's humanoid bones walking along −Y from ``start`` (x, y) for
    ``n_frames`` frames at ``fps`` (rotation keys on every bone, location keys on the hips).
    ``rest_pose="A"``: the same motion (same world pose on every frame) on an A-pose rest."""
    import bpy

    from ..scene.anim import channelbag_for, new_action, write_channels

    rows = humanoid_rows()
    obj = build_armature(context, name, rows)
    names = [r[0] for r in rows]
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([index[p] if p else -1 for _, p, _, _ in rows])
    rest = np.array([np.array(b.matrix_local) for b in obj.data.bones]).reshape(-1, 4, 4)
    if rest_pose != "T":  # the motion is made on the T rest, then keyed on the A one
        data = obj.data
        bpy.data.objects.remove(obj)
        bpy.data.armatures.remove(data)
        obj = build_armature(context, name, humanoid_rows(rest_pose))
    deltas = gait_deltas(n_frames, fps)
    total = np.tile(np.eye(3), (n_frames, len(names), 1, 1))
    for b, p in enumerate(parents):
        own = deltas.get(names[b], np.eye(3)[None])
        total[:, b] = (total[:, p] if p >= 0 else np.eye(3)) @ own
    rot = total @ rest[None, :, :3, :3]
    given = np.ones(len(names), bool)
    given[index["root"]] = False
    hips = index["hips"]
    pose = solve.forward(parents, rest, rot, given, hips, np.zeros((n_frames, 3)))
    path = _hips_path(pose, index, fps) + [start[0], start[1], 0.0]
    pose = solve.forward(parents, rest, rot, given, hips, path)
    key_rest = np.array([np.array(b.matrix_local) for b in obj.data.bones]).reshape(-1, 4, 4)
    basis = solve.local_basis(parents, key_rest, pose)
    action = new_action(action_name)
    bag = channelbag_for(action, obj)
    frames = np.arange(1, n_frames + 1)
    for b, name in enumerate(names):
        obj.pose.bones[name].rotation_mode = "QUATERNION"
        write_channels(bag, f'pose.bones["{name}"].rotation_quaternion', frames,
                       solve.quaternions(basis[:, b, :3, :3]), group=name)
    write_channels(bag, 'pose.bones["hips"].location', frames, basis[:, hips, :3, 3], group="hips")
    scene = context.scene
    scene.render.fps, scene.render.fps_base = int(fps), 1.0
    scene.frame_start, scene.frame_end = 1, n_frames
    return obj


def _hips_path(pose: np.ndarray, index: dict, fps: float) -> np.ndarray:
    """(F, 3) hips positions that keep the lower (stance) ankle still and the lowest foot point
    on the floor, from a pose computed with the hips at the origin."""
    ankles = np.stack([pose[:, index[f"foot.{s}"], :3, 3] for s in "LR"], axis=1)  # (F, 2, 3)
    toes = np.stack([pose[:, index[f"toe.{s}"], :3, 3] for s in "LR"], axis=1)
    stance = np.argmin(ankles[:, :, 2], axis=1)
    rows = np.arange(len(pose))
    step = np.zeros((len(pose), 3))
    step[1:, :2] = -(ankles[rows[1:], stance[1:], :2] - ankles[rows[:-1], stance[1:], :2])
    path = np.cumsum(step, axis=0)
    lowest = np.minimum(ankles[:, :, 2].min(axis=1) - 0.06, toes[:, :, 2].min(axis=1) - 0.02)
    path[:, 2] = -lowest
    return path

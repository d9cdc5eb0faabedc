"""Retargeting maths on arrays (bpy-free): rest-offset compensation, forward kinematics,
two-bone leg IK, local pose matrices, floor offset.

Conventions: ``R`` (…, 3, 3) rotations whose columns are the bone's axes (Y along the bone),
``M`` (…, 4, 4) bone matrices (Blender's ``pose_bone.matrix`` / ``bone.matrix_local``),
world space unless said otherwise; F frames, B bones.
"""
from __future__ import annotations

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """(…, 3) → (…, 3) unit vectors (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v, dtype=float), where=n > 1e-12)


def min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(…, 3), (…, 3) → (…, 3, 3): the smallest rotation taking direction ``a`` to ``b``."""
    a, b = unit(np.asarray(a, float)), unit(np.asarray(b, float))
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.einsum("...i,...i->...", a, b)
    # antiparallel: any axis perpendicular to a
    perp = np.cross(a, np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0, 0], [0, 1.0, 0]))
    axis = np.where((s < 1e-9)[..., None] & (c < 0)[..., None], unit(perp), unit(axis))
    angle = np.arctan2(s, c)
    k = axis
    kx = np.zeros(k.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2] = -k[..., 2], k[..., 1]
    kx[..., 1, 0], kx[..., 1, 2] = k[..., 2], -k[..., 0]
    kx[..., 2, 0], kx[..., 2, 1] = -k[..., 1], k[..., 0]
    sin, cos = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + sin * kx + (1 - cos) * (kx @ kx)


def orthonormal(R: np.ndarray) -> np.ndarray:
    """(…, 3, 3) → the same with unit columns (strips a uniform object scale)."""
    return R / np.linalg.norm(R, axis=-2, keepdims=True)


def transfer_rotations(src_R: np.ndarray, src_rest_R: np.ndarray, src_dir: np.ndarray,
                       tgt_rest_R: np.ndarray, tgt_dir: np.ndarray) -> np.ndarray:
    """World rotations of mapped target bones so their directions follow the source's.

    ``src_R``: (F, M, 3, 3) source bone rotations per frame; ``src_rest_R``/``tgt_rest_R``:
    (M, 3, 3) rest rotations; ``src_dir``/``tgt_dir``: (M, 3) rest directions (joint → child
    joint) → (F, M, 3, 3). The rest offset (T vs A pose, rolls) is the smallest rotation taking
    the target's rest direction onto the source's, so the target's direction at frame f is
    exactly the source's: R_t(f) = R_s(f) R_s,rest^T A R_t,rest.
    """
    align = min_rotation(tgt_dir, src_dir)
    offset = np.swapaxes(src_rest_R, -1, -2) @ align @ tgt_rest_R
    return src_R @ offset[None]


def hierarchy_order(parents: np.ndarray) -> list[int]:
    """Bone indices with every parent before its children (bones may be stored in any order)."""
    order, done = [], np.zeros(len(parents), bool)

    def visit(b):
        if done[b]:
            return
        if parents[b] >= 0:
            visit(int(parents[b]))
        done[b] = True
        order.append(b)

    for b in range(len(parents)):
        visit(b)
    return order


def forward(parents: np.ndarray, rest: np.ndarray, rot: np.ndarray, given: np.ndarray,
            root: int, root_pos: np.ndarray) -> np.ndarray:
    """Pose matrices of every bone from the mapped bones' rotations.

    ``parents``: (B,) indices (-1: none); ``rest``: (B, 4, 4) rest
    matrices; ``rot``: (F, B, 3, 3) world rotations, used where ``given`` (B,) is True (other
    bones keep their rest rotation relative to their parent); ``root``: the bone that takes
    ``root_pos`` (F, 3) as its head (the hips) → (F, B, 4, 4).
    """
    F, B = rot.shape[0], len(parents)
    out = np.zeros((B, F, 4, 4))  # bone-major while chaining: each bone's frames contiguous
    out[..., 3, 3] = 1.0
    for b in hierarchy_order(parents):
        p = parents[b]
        if p < 0:
            base = np.broadcast_to(rest[b], (F, 4, 4))
        else:
            base = out[p] @ (np.linalg.inv(rest[p]) @ rest[b])
        out[b, :, :3, :3] = rot[:, b] if given[b] else base[:, :3, :3]
        out[b, :, :3, 3] = root_pos if b == root else base[:, :3, 3]
    return np.moveaxis(out, 0, 1)  # (F, B, 4, 4) view


def _inverse(M: np.ndarray) -> np.ndarray:
    """Rigid inverse when the rotations are orthonormal (pose matrices), else the general one."""
    R = M[..., :3, :3]
    if np.allclose(np.swapaxes(R, -1, -2) @ R, np.eye(3), atol=1e-6):
        return rigid_inverse(M)
    return np.linalg.inv(M)


def local_basis(parents: np.ndarray, rest: np.ndarray, pose: np.ndarray, only=None) -> np.ndarray:
    """``pose_bone.matrix_basis`` (F, B, 4, 4) from pose matrices (F, B, 4, 4) in armature space
    and rest matrices (B, 4, 4): basis = (P_rest^-1 R_rest)^-1 P^-1 M (full inheritance).
    ``only``: bone indices to compute (the others are left undefined)."""
    out = np.empty_like(pose)
    for b in (range(len(parents)) if only is None else only):
        p = parents[b]
        if p < 0:
            out[:, b] = np.linalg.inv(rest[b]) @ pose[:, b]
        else:
            rel = np.linalg.inv(rest[p]) @ rest[b]
            out[:, b] = np.linalg.inv(rel) @ (_inverse(pose[:, p]) @ pose[:, b])
    return out


def quaternions(R: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations → (F, 4) w-first unit quaternions, sign-continuous along F (no 360°
    flips). Shepperd's method, vectorised (the largest of w, x, y, z picks the stable branch)."""
    R = orthonormal(R)
    m00, m11, m22 = R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]
    tr = m00 + m11 + m22
    cand = np.stack([tr, m00, m11, m22], axis=1)
    k = np.argmax(cand, axis=1)
    q = np.empty((len(R), 4))
    d = lambda i, j: R[:, i, j]  # noqa: E731
    # each branch: (w, x, y, z) * 4 * (the chosen component)
    branch = [np.stack([1 + tr, d(2, 1) - d(1, 2), d(0, 2) - d(2, 0), d(1, 0) - d(0, 1)], 1),
              np.stack([d(2, 1) - d(1, 2), 1 + m00 - m11 - m22, d(0, 1) + d(1, 0), d(0, 2) + d(2, 0)], 1),
              np.stack([d(0, 2) - d(2, 0), d(0, 1) + d(1, 0), 1 - m00 + m11 - m22, d(1, 2) + d(2, 1)], 1),
              np.stack([d(1, 0) - d(0, 1), d(0, 2) + d(2, 0), d(1, 2) + d(2, 1), 1 - m00 - m11 + m22], 1)]
    for i in range(4):
        sel = k == i
        q[sel] = branch[i][sel]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    flip = np.einsum("fi,fi->f", q[1:], q[:-1]) < 0
    sign = np.r_[1.0, np.where(np.logical_xor.accumulate(flip), -1.0, 1.0)]
    return q * sign[:, None]


def rigid_inverse(M: np.ndarray) -> np.ndarray:
    """(…, 4, 4) rigid (rotation + translation) matrices → their inverses."""
    out = np.zeros_like(M)
    Rt = np.swapaxes(M[..., :3, :3], -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, M[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, goal: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analytic two-bone IK keeping the knee's bend plane: (F, 3) joints and ankle goals →
    (thigh delta (F, 3, 3), shin delta (F, 3, 3), new ankle (F, 3)). The world rotations of the
    thigh and shin become ``d_thigh @ R_thigh`` and ``d_shin @ R_shin``; a goal out of reach is
    brought onto the reachable shell (the only case where the ankle misses it)."""
    l1 = np.linalg.norm(knee - hip, axis=-1)
    l2 = np.linalg.norm(ankle - knee, axis=-1)
    to_goal = goal - hip
    d = np.clip(np.linalg.norm(to_goal, axis=-1), np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    u = unit(to_goal)
    bend = knee - hip
    v = bend - np.einsum("fi,fi->f", bend, u)[:, None] * u
    v = unit(v)
    cos_a = np.clip((l1 ** 2 + d ** 2 - l2 ** 2) / (2 * l1 * d), -1.0, 1.0)
    new_knee = hip + l1[:, None] * (cos_a[:, None] * u + np.sqrt(1 - cos_a ** 2)[:, None] * v)
    new_ankle = hip + d[:, None] * u
    d_thigh = min_rotation(knee - hip, new_knee - hip)
    shin_now = np.einsum("fij,fj->fi", d_thigh, ankle - knee)
    d_shin = min_rotation(shin_now, new_ankle - new_knee) @ d_thigh
    return d_thigh, d_shin, new_ankle


def runs(mask: np.ndarray, min_len: int = 1) -> list[tuple[int, int]]:
    """(F,) bools → [(start, stop)) of the runs of True at least ``min_len`` long."""
    m = np.r_[False, np.asarray(mask, bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_len]


def detect_contacts(ankle: np.ndarray, low: np.ndarray, fps: float, *, speed: float = 0.25,
                    height: float = 0.06, min_frames: int = 3) -> np.ndarray:
    """Foot contacts from the source: ``ankle`` (F, 3) positions, ``low`` (F,) the foot's lowest
    point; contact where the ankle's horizontal speed < ``speed`` m/s and the foot is within
    ``height`` m of its lowest level → (F,) bools (runs shorter than ``min_frames`` dropped)."""
    v = np.gradient(ankle[:, :2], axis=0) * fps
    slow = np.linalg.norm(v, axis=-1) < speed
    floor = np.percentile(low, 5)
    mask = slow & (low < floor + height)
    out = np.zeros(len(mask), bool)
    for a, b in runs(mask, min_frames):
        out[a:b] = True
    return out


def lock_goals(ankle: np.ndarray, contact: np.ndarray, blend: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Ankle goals that hold each contact's horizontal position: ``ankle`` (F, 3), ``contact`` (F,)
    → (goals (F, 3), weight (F,) in [0, 1]). Inside a contact the goal is the contact's mean
    (x, y) at the ankle's own height; over ``blend`` frames before and after, the offset the lock
    makes at the contact's edge fades out (the free foot keeps its own motion)."""
    goals, weight = ankle.copy(), np.zeros(len(ankle))
    F = len(ankle)
    ramp = 1.0 - np.arange(1, blend + 1) / (blend + 1)          # (blend,) 1 → 0 away from the edge
    for a, b in runs(contact):
        xy = ankle[a:b, :2].mean(axis=0)
        goals[a:b, :2] = xy
        weight[a:b] = 1.0
        for edge, frames in ((a, np.arange(a - 1, a - blend - 1, -1)), (b - 1, np.arange(b, b + blend))):
            ok = (frames >= 0) & (frames < F)
            fr, w = frames[ok], ramp[ok]
            free = weight[fr] < w
            fr, w = fr[free], w[free]
            goals[fr, :2] = ankle[fr, :2] + w[:, None] * (xy - ankle[edge, :2])
            weight[fr] = w
    return goals, weight


def slide_per_contact(points: np.ndarray, contact: np.ndarray) -> np.ndarray:
    """Horizontal slide of ``points`` (F, 3) during each contact run of ``contact`` (F,):
    the largest distance between two frames' (x, y) in the run → (n_contacts,) metres."""
    out = []
    for a, b in runs(contact):
        xy = points[a:b, :2]
        out.append(float(np.max(np.linalg.norm(xy[:, None] - xy[None], axis=-1))) if b - a > 1 else 0.0)
    return np.asarray(out)


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(…, 3), (…, 3) → (…) angles between directions in degrees."""
    c = np.einsum("...i,...i->...", unit(a), unit(b))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))

"""Armature maths for the OpenSim skeleton, bpy-free and vectorised.

One bone per OpenSim body. Its head is the body origin in the model's default
pose; it points to its (first) child body's origin, or continues its parent's
direction for leaves; its roll puts the bone's Z axis as close as possible to
the body's Z axis.

Animation: with ``W_b(t) = G_b(t) G_b(0)⁻¹`` the motion of body ``b`` since the
rest pose (``G``: (4, 4) body frame in the world), a bone whose rest matrix is
``B_b`` (armature space) follows its body rigidly when its pose matrix is
``W_b B_b``. Blender composes ``pose_b = pose_p B_p⁻¹ B_b L_b`` (bones not
connected, inheriting rotation), so the channel matrix is
``L_b = B_b⁻¹ W_p⁻¹ W_b B_b`` (``W_p = I`` for roots).
"""
from __future__ import annotations

import numpy as np

from openkin.geometry import matrix_to_quaternion

MIN_BONE = 0.03  # m: shortest bone drawn


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def bone_layout(rest: np.ndarray, parents: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heads, tails and roll hints of the bones.

    ``rest``: (B, 4, 4) body frames in the rest pose (world, Z-up); ``parents``: (B,) index or -1.
    Returns heads (B, 3), tails (B, 3), z_hints (B, 3) (the body's Z axis).
    """
    heads = rest[:, :3, 3].copy()
    n = len(parents)
    children = [[c for c in range(n) if parents[c] == b] for b in range(n)]
    tails = np.empty_like(heads)
    done = np.zeros(n, bool)
    for b in _topological(parents):
        far = [c for c in children[b] if np.linalg.norm(heads[c] - heads[b]) > MIN_BONE]
        if far:
            tails[b] = np.mean(heads[far], axis=0) if len(far) > 1 and _spread(heads[far]) < 0.05 else heads[far[0]]
        else:
            p = parents[b]
            if p >= 0 and done[p]:
                d = _unit(tails[p] - heads[p])
                length = max(0.3 * np.linalg.norm(tails[p] - heads[p]), MIN_BONE * 2)
            else:
                d, length = rest[b, :3, 1], 0.1  # body Y axis
            tails[b] = heads[b] + d * length
        done[b] = True
    return heads, tails, rest[:, :3, 2].copy()


def _spread(points: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(points - points.mean(axis=0), axis=1)))


def _topological(parents: list[int]) -> list[int]:
    """Indices ordered so that parents come before their children."""
    order, seen = [], set()

    def visit(b):
        if b in seen:
            return
        if parents[b] >= 0:
            visit(parents[b])
        seen.add(b)
        order.append(b)

    for b in range(len(parents)):
        visit(b)
    return order


def pose_channels(world: np.ndarray, rest_world: np.ndarray, bone_rest: np.ndarray,
                  parents: list[int]) -> np.ndarray:
    """Pose-bone channel matrices that make each bone follow its body.

    ``world``: (F, B, 4, 4) body frames per frame; ``rest_world``: (B, 4, 4) the same in
    the rest pose; ``bone_rest``: (B, 4, 4) ``Bone.matrix_local``; ``parents``: (B,).
    Returns (F, B, 4, 4) ``L_b``.
    """
    motion = world @ np.linalg.inv(rest_world)[None]            # W_b(t)  (F, B, 4, 4)
    par = np.asarray(parents)
    parent_motion = np.where((par >= 0)[None, :, None, None], motion[:, np.maximum(par, 0)], np.eye(4))
    rel = np.linalg.inv(parent_motion) @ motion                 # W_p⁻¹ W_b
    return np.linalg.inv(bone_rest)[None] @ rel @ bone_rest[None]


def loc_quat(channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, B, 4, 4) rigid matrices → locations (F, B, 3) and quaternions (F, B, 4) w,x,y,z
    (:func:`openkin.geometry.matrix_to_quaternion`, scipy).

    Quaternion signs are made continuous along F so interpolation never flips.
    """
    quat = matrix_to_quaternion(channels[..., :3, :3])
    dots = np.einsum("fbi,fbi->fb", quat[1:], quat[:-1])
    flips = np.cumsum(dots < 0, axis=0) % 2 == 1
    quat[1:][flips] *= -1
    return channels[..., :3, 3].copy(), quat

"""Camera centres and viewing rays."""
from __future__ import annotations

import numpy as np


def camera_centers(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``R (C,3,3)``, ``t (C,3)`` → camera positions in the world ``(C,3)``."""
    return -np.einsum("cji,cj->ci", R, t)


def projection_centers(P: np.ndarray) -> np.ndarray:
    """Camera centres ``(C,3)`` of projection matrices ``P (C,3,4)`` (their null vectors)."""
    return -np.linalg.solve(P[:, :, :3], P[:, :, 3:])[..., 0]


def ray_directions(points: np.ndarray, K: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Unit world directions of the rays through ``points (C, ..., 2)`` px → ``(C, ..., 3)``."""
    C = points.shape[0]
    flat = points.reshape(C, -1, 2)
    Kinv = np.linalg.inv(K)
    h = np.concatenate([flat, np.ones(flat.shape[:2] + (1,))], axis=-1)       # (C,N,3)
    d_cam = np.einsum("cij,cnj->cni", Kinv, h)
    d = np.einsum("cji,cnj->cni", R, d_cam)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return d.reshape(points.shape[:-1] + (3,))


def ray_distance(c1: np.ndarray, d1: np.ndarray, c2: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Shortest distance (m) between rays ``c1 + s d1`` and ``c2 + s d2`` (broadcast, last axis 3).

    Nearly parallel rays fall back to the distance of ``c2`` from the first ray.
    """
    n = np.cross(d1, d2)
    nn = np.linalg.norm(n, axis=-1)
    diff = c2 - c1
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.abs((diff * n).sum(-1)) / nn
    par = np.linalg.norm(np.cross(diff, d1), axis=-1)
    return np.where(nn > 1e-9, skew, par)

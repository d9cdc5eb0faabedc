"""Small synthetic camera rigs and skeletons for the association/triangulation tests."""
from __future__ import annotations

import cv2
import numpy as np


def ring_rig(n_cams: int = 4, radius: float = 4.0, height: float = 1.2, f: float = 1000.0,
             size=(1280, 960), dist=None):
    """``n_cams`` cameras on a circle looking at the origin (Z up). Returns K (C,3,3), R (C,3,3), t (C,3), dist list."""
    Ks, Rs, ts = [], [], []
    for i in range(n_cams):
        a = 2 * np.pi * i / n_cams + 0.3
        c = np.array([radius * np.cos(a), radius * np.sin(a), height])
        target = np.array([0.0, 0.0, 0.9])
        z = target - c
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z])
        Ks.append(np.array([[f, 0, size[0] / 2], [0, f, size[1] / 2], [0, 0, 1.0]]))
        Rs.append(R)
        ts.append(-R @ c)
    d = [np.zeros(5) if dist is None else np.asarray(dist, float) for _ in range(n_cams)]
    return np.array(Ks), np.array(Rs), np.array(ts), d


def project_distorted(K, R, t, dist, X):
    """``X (N,3)`` → ``(C,N,2)`` with lens distortion (OpenCV)."""
    out = []
    for c in range(len(K)):
        rvec, _ = cv2.Rodrigues(R[c])
        uv, _ = cv2.projectPoints(X.reshape(-1, 1, 3), rvec, t[c], K[c], dist[c])
        out.append(uv.reshape(-1, 2))
    return np.array(out)


def walking_points(n_frames: int, n_kpts: int, seed: int = 0, center=(0.0, 0.0)):
    """Smooth random 3D trajectories around a point, ``(F, K, 3)`` metres, inside ~1.8 m tall box."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-0.3, -0.3, 0.05], [0.3, 0.3, 1.75], size=(n_kpts, 3))
    base[:, :2] += center
    tt = np.arange(n_frames)[:, None, None] / 60.0
    phase = rng.uniform(0, 2 * np.pi, size=(1, n_kpts, 3))
    return base[None] + 0.15 * np.sin(2 * np.pi * 0.8 * tt + phase)

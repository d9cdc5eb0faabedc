"""Removing lens distortion from image points: ``(C, ..., 2)`` px → ideal pinhole px (same ``K``).

Brown-Conrady cameras (k1, k2, p1, p2[, k3], no skew) go through :func:`_undistort_brown`,
OpenCV's own fixed-point iteration written on whole arrays (same result as
``cv2.undistortPoints`` to 1e-12 px, measured 1.8× faster, whose per-point loop was a third
of the whole-person reconstruction); fisheye cameras through ``cv2.fisheye.undistortPoints``;
other OpenCV models (8, 12, 14 coefficients, skew) through ``cv2.undistortPoints``.
"""
from __future__ import annotations

import cv2
import numpy as np

from .camera import Camera

UNDISTORT_ITERATIONS = 5  # cv2.undistortPoints' default criteria (COUNT, 5)
_UNDISTORT_CHUNK = 65536   # points per block (temporaries stay in cache)
_FISHEYE_INVALID = -1e6    # what cv2.fisheye.undistortPoints returns where it cannot invert


def undistort_points(points: np.ndarray, K: np.ndarray, dist: list, fisheye=None) -> np.ndarray:
    """Remove lens distortion: ``points (C, ..., 2)`` px, ``K (C,3,3)``, ``dist`` (C arrays),
    ``fisheye (C,)`` bool or None (all pinhole) → ``(C, ..., 2)`` ideal pinhole px.

    The output keeps each camera's own ``K``, so ``K [R | t]`` applies unchanged; NaN stays NaN.
    """
    out = np.empty_like(points, dtype=np.float64)
    fish = np.zeros(points.shape[0], bool) if fisheye is None else np.asarray(fisheye, bool)
    for c in range(points.shape[0]):
        flat = np.ascontiguousarray(points[c].reshape(-1, 2), dtype=np.float64)
        out[c] = _undistort_one(flat, np.asarray(K[c], np.float64), np.asarray(dist[c], np.float64).ravel(),
                                bool(fish[c])).reshape(points[c].shape)
    return out


def undistort_camera_points(camera: Camera, uv: np.ndarray) -> np.ndarray:
    """:func:`undistort_points` for one :class:`Camera`: ``uv (N,2)`` px → ``(N,2)`` px (new K = K)."""
    uv = np.asarray(uv, dtype=float).reshape(-1, 2)
    return undistort_points(uv[None], camera.matrix[None], [camera.distortions], [camera.fisheye])[0]


def _undistort_one(flat: np.ndarray, K: np.ndarray, d: np.ndarray, fisheye: bool) -> np.ndarray:
    """One camera: ``flat (N,2)`` → ``(N,2)``. A fisheye lens with k1..k4 = 0 still distorts
    (equidistant: r = f θ, not f tan θ)."""
    if flat.shape[0] == 0:
        return flat.copy()
    if fisheye:
        return _undistort_fisheye(flat, K, d[:4])
    if not np.any(d):
        return flat.copy()
    if d.size <= 5 and K[0, 1] == 0:
        return _undistort_brown(flat, K, d)
    out = np.full_like(flat, np.nan)
    ok = np.isfinite(flat).all(1)
    if ok.any():
        out[ok] = cv2.undistortPoints(flat[ok].reshape(-1, 1, 2), K, d, P=K).reshape(-1, 2)
    return out


def _undistort_fisheye(flat: np.ndarray, K: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``cv2.fisheye.undistortPoints(…, P=K)`` on the finite rows of ``flat (N,2)`` → ``(N,2)``;
    points it cannot invert are NaN."""
    out = np.full_like(flat, np.nan)
    ok = np.isfinite(flat).all(1)
    if ok.any():
        und = cv2.fisheye.undistortPoints(flat[ok].reshape(-1, 1, 2), K, d, P=K).reshape(-1, 2)
        und[(und == _FISHEYE_INVALID).all(1)] = np.nan
        out[ok] = und
    return out


def _undistort_brown(flat: np.ndarray, K: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``cv2.undistortPoints(…, P=K)`` for k1, k2, p1, p2[, k3] without skew. ``flat (N,2)`` →
    ``(N,2)``. Same iteration as OpenCV: x ← (x₀ - Δ(x)) / radial(x), 5 times from the
    distorted point; where the radial factor turns negative (far outside the calibrated
    field) the point is left as it is, as OpenCV does."""
    k1, k2, p1, p2, k3 = (list(d) + [0.0] * 5)[:5]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    out = np.empty_like(flat)
    for s in range(0, len(flat), _UNDISTORT_CHUNK):
        x0 = (flat[s:s + _UNDISTORT_CHUNK, 0] - cx) / fx
        y0 = (flat[s:s + _UNDISTORT_CHUNK, 1] - cy) / fy
        x, y = x0.copy(), y0.copy()
        stop = np.zeros(x0.shape, bool)
        for _ in range(UNDISTORT_ITERATIONS):
            x2, y2, xy = x * x, y * y, x * y
            r2 = x2 + y2
            with np.errstate(divide="ignore", invalid="ignore"):
                icd = 1.0 / (1.0 + ((k3 * r2 + k2) * r2 + k1) * r2)
            stop |= icd < 0
            x_new = (x0 - (2 * p1 * xy + p2 * (r2 + 2 * x2))) * icd
            y_new = (y0 - (p1 * (r2 + 2 * y2) + 2 * p2 * xy)) * icd
            x = np.where(stop, x0, x_new)
            y = np.where(stop, y0, y_new)
        out[s:s + _UNDISTORT_CHUNK, 0] = x * fx + cx
        out[s:s + _UNDISTORT_CHUNK, 1] = y * fy + cy
    return out


def distort_camera_points(camera: Camera, uv: np.ndarray) -> np.ndarray:
    """The inverse of :func:`undistort_camera_points`: ideal pinhole px (same ``K``) → px through
    ``camera``'s lens. ``uv (N,2)`` → ``(N,2)``; NaN stays NaN.

    What a point clicked on an undistorted video (the Blender camera's background) is on the
    original video: the ray ``K⁻¹ [u, v, 1]`` projected through the lens by OpenCV."""
    uv = np.asarray(uv, dtype=float).reshape(-1, 2)
    out = np.full_like(uv, np.nan)
    ok = np.isfinite(uv).all(1)
    if ok.any():
        K = camera.matrix
        rays = np.column_stack([(uv[ok, 0] - K[0, 2]) / K[0, 0] - K[0, 1] * (uv[ok, 1] - K[1, 2]) / (K[0, 0] * K[1, 1]),
                                (uv[ok, 1] - K[1, 2]) / K[1, 1], np.ones(int(ok.sum()))])
        obj = np.ascontiguousarray(rays).reshape(-1, 1, 3)
        zero = np.zeros(3)
        if camera.fisheye:
            res = cv2.fisheye.projectPoints(obj, zero, zero, K, camera.distortions[:4])[0]
        else:
            res = cv2.projectPoints(obj, zero, zero, K, camera.distortions)[0]
        out[ok] = res.reshape(-1, 2)
    return out

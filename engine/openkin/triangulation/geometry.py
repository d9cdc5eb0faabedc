"""Vectorised multi-view geometry kernels: projection, undistortion, weighted DLT, rays.

Shapes: ``C`` cameras, ``F`` frames, ``K`` keypoints, ``N`` points (any flattening
of frames × keypoints). Image points are pixels; world points are metres in the
calibration's frame (Z up for Pose2Sim-style calibrations). Missing 2D points are
NaN and carry weight 0; a 3D point that cannot be computed is NaN.

The triangulation solves the likelihood-weighted DLT system in its inhomogeneous
form (X = (x, y, z, 1)) through the 3×3 normal equations, written out in closed form
(Cramer's rule) on whole arrays: this measured 20-40× faster than a batched
``np.linalg.svd`` of the (2C × 4) DLT matrices and gives the same points to within
micrometres on well-posed views (see ``tests/bench/bench_reconstruction.py``).
Because the normal equations are a sum of per-camera terms, leaving one camera out
is a subtraction, which the robust view rejection uses.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

_EPS_DET = 1e-12
CHUNK = 32768


class _SingleThreadBlas:
    """Limit BLAS to one thread while the kernels run (``threadpoolctl``, if installed).

    Chosen for speed: the kernels multiply thin matrices ((3C × 4)(4 × N), (10 × 4C)(4C × N));
    OpenBLAS splits them over its threads, which then spin-wait on a busy machine: measured
    on 2 shared cores, whole-person reconstruction ran at 13k frames/s (and 2× the CPU time)
    with OpenBLAS threads, 23-31k with one. Re-entrant and cheap when nested (a counter), so
    inner kernels can use it too; without threadpoolctl BLAS keeps its threads."""

    def __init__(self):
        import threading

        self.depth = 0
        self.controller = None
        self.ctx = None
        self.lock = threading.Lock()  # worker threads (robust blocks) enter it too

    def __enter__(self):
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                try:
                    if self.controller is None:
                        from threadpoolctl import ThreadpoolController

                        self.controller = ThreadpoolController()
                    self.ctx = self.controller.limit(limits=1, user_api="blas")
                except ImportError:
                    self.ctx = None
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.ctx is not None:
                self.ctx.restore_original_limits()
                self.ctx = None
        return False


single_thread_blas = _SingleThreadBlas()


def blas_single(fn):
    """Decorator: run ``fn`` under :data:`single_thread_blas`."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_thread_blas:
            return fn(*args, **kwargs)

    return wrapper


def projection_matrices(K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``K (C,3,3)``, ``R (C,3,3)`` world→camera, ``t (C,3)`` → ``P (C,3,4) = K [R | t]``."""
    Rt = np.concatenate([R, t[:, :, None]], axis=2)
    return K @ Rt


def undistort_points(points: np.ndarray, K: np.ndarray, dist: list[np.ndarray]) -> np.ndarray:
    """Remove lens distortion: ``points (C, ..., 2)`` px → ``(C, ..., 2)`` ideal pinhole px.

    The output keeps each camera's own ``K``, so ``projection_matrices`` applies unchanged;
    NaN stays NaN. Brown-Conrady cameras (k1, k2, p1, p2, k3; no skew) go through
    :func:`_undistort_brown`, OpenCV's own fixed-point iteration written on whole arrays
    (same result to 1e-12 px, measured 1.8× faster than ``cv2.undistortPoints``, whose
    per-point loop was a third of the whole-person reconstruction); other models use
    ``cv2.undistortPoints`` once per camera.
    """
    out = np.empty_like(points, dtype=np.float64)
    for c in range(points.shape[0]):
        d = np.asarray(dist[c], dtype=np.float64).ravel()
        flat = np.ascontiguousarray(points[c].reshape(-1, 2), dtype=np.float64)
        if not np.any(d) or flat.shape[0] == 0:
            out[c] = points[c]
        elif d.size <= 5 and K[c][0, 1] == 0:
            out[c] = _undistort_brown(flat, K[c], d).reshape(points[c].shape)
        else:
            und = cv2.undistortPoints(flat.reshape(-1, 1, 2), K[c].astype(np.float64), d,
                                      P=K[c].astype(np.float64))
            out[c] = und.reshape(points[c].shape)
    return out


UNDISTORT_ITERATIONS = 5  # cv2.undistortPoints' default criteria (COUNT, 5)
_UNDISTORT_CHUNK = 65536   # points per block (temporaries stay in cache)


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


_IU = np.triu_indices(4)   # the 10 entries (i <= j) of a symmetric 4×4 matrix
_M3 = [0, 1, 2, 4, 5, 7]    # positions of 00,01,02,11,12,22 among them
_B3 = [3, 6, 8]             # positions of 03,13,23


_COEF_CACHE: dict[bytes, np.ndarray] = {}


def finite_xy(points: np.ndarray) -> np.ndarray:
    """``points (...,2)`` → ``(...)`` both coordinates finite (a reduction over a length-2 axis
    is several times slower than this)."""
    return np.isfinite(points[..., 0]) & np.isfinite(points[..., 1])


def fill_nan(x: np.ndarray, value: float) -> np.ndarray:
    """``x`` with NaN replaced by ``value`` (cheaper than ``np.nan_to_num`` on small arrays)."""
    return np.where(np.isnan(x), value, x)


def _camera_coefficients(P: np.ndarray) -> np.ndarray:
    """``P (C,3,4)`` → ``(4, C, 10)``: with rows ``a_r = P_r - u_r P_2`` (r = 0, 1), the weighted
    Gram matrix ``Σ_r a_r a_rᵀ`` of a camera is ``α + x β + y γ + (x² + y²) δ``.
    Cached per rig: the tracker calls the kernels once per frame."""
    key = P.tobytes()
    if key not in _COEF_CACHE:
        if len(_COEF_CACHE) > 32:
            _COEF_CACHE.clear()
        _COEF_CACHE[key] = _coefficients(P)
    return _COEF_CACHE[key]


def _coefficients(P: np.ndarray) -> np.ndarray:
    p0, p1, p2 = P[:, 0], P[:, 1], P[:, 2]
    outer = lambda a, b: (a[:, :, None] * b[:, None, :])[:, _IU[0], _IU[1]]  # noqa: E731
    alpha = outer(p0, p0) + outer(p1, p1)
    beta = -(outer(p0, p2) + outer(p2, p0))
    gamma = -(outer(p1, p2) + outer(p2, p1))
    delta = outer(p2, p2)
    return np.stack([alpha, beta, gamma, delta])


def _view_weights(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``points (C,N,2)``, ``weights (C,N)`` → ``(4, C, N)``: w², w² x, w² y, w² (x² + y²); 0 where missing."""
    x = np.ascontiguousarray(points[..., 0])
    y = np.ascontiguousarray(points[..., 1])
    w2 = weights * weights
    w2[~(np.isfinite(x) & np.isfinite(y))] = 0.0
    np.nan_to_num(x, copy=False)
    np.nan_to_num(y, copy=False)
    out = np.empty((4,) + x.shape)
    out[0] = w2
    np.multiply(w2, x, out=out[1])
    np.multiply(w2, y, out=out[2])
    np.multiply(x, x, out=x)
    np.multiply(y, y, out=y)
    x += y
    np.multiply(w2, x, out=out[3])
    return out


def _gram_sum(points: np.ndarray, weights: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Summed normal-equation entries ``(10,N)``: one product (4C × 10)ᵀ (4C × N).

    A BLAS product, chosen for speed: ``einsum`` (no ``optimize``) runs these contractions in
    its generic loop, measured 3-5× slower than ``np.dot`` (4 cameras, 32k points: 1.07 vs
    0.22 ms; 16 cameras 4.8 vs 1.3 ms; also with OPENBLAS_NUM_THREADS=1).
    """
    W = _view_weights(points, weights)
    coef = _camera_coefficients(P)
    C = P.shape[0]
    return coef.reshape(4 * C, 10).T @ W.reshape(4 * C, -1)


def _gram_per_camera(points: np.ndarray, weights: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Per-camera normal-equation entries ``(C,10,N)`` (for leave-one-out); a batched
    ``matmul`` (C × (10 × 4)(4 × N)), measured 1.3-4× faster than the ``einsum``."""
    W = _view_weights(points, weights)
    return np.matmul(_camera_coefficients(P).transpose(1, 2, 0), W.transpose(1, 0, 2))


def _solve_gram(G: np.ndarray) -> np.ndarray:
    """``G (...,10,N)`` → ``(...,N,3)``: solve M X = -b of the inhomogeneous DLT."""
    G = np.moveaxis(G, -2, 0)
    return _solve_sym3(G[_M3], -G[_B3])


def _solve_sym3(M: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve symmetric 3×3 systems in closed form. ``M (6,...)`` upper triangle, ``b (3,...)`` → ``(...,3)``.

    Singular systems (fewer than two views, parallel rays) give NaN.
    """
    a, bb, c, d, e, f = M
    b = (b[0], b[1], b[2])
    c00 = d * f - e * e
    c01 = c * e - bb * f
    c02 = bb * e - c * d
    c11 = a * f - c * c
    c12 = bb * c - a * e
    c22 = a * d - bb * bb
    det = a * c00 + bb * c01 + c * c02
    scale = np.maximum(np.abs(a * d * f), 1e-300)
    ok = np.abs(det) > _EPS_DET * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(ok, 1.0 / det, np.nan)
    x = (c00 * b[0] + c01 * b[1] + c02 * b[2]) * inv
    y = (c01 * b[0] + c11 * b[1] + c12 * b[2]) * inv
    z = (c02 * b[0] + c12 * b[1] + c22 * b[2]) * inv
    return np.stack([x, y, z], axis=-1)


@blas_single
def triangulate_dlt(points: np.ndarray, weights: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Likelihood-weighted DLT. ``points (C,N,2)``, ``weights (C,N)``, ``P (C,3,4)`` → ``(N,3)``.

    Points seen (finite, weight > 0) by fewer than two cameras come out NaN.
    """
    N = weights.shape[1]
    X = np.empty((N, 3))
    for s in range(0, N, CHUNK):  # blocks that stay in cache: ~3× faster than one pass
        sl = slice(s, s + CHUNK)
        X[sl] = _solve_gram(_gram_sum(points[:, sl], weights[:, sl], P))
    n_views = ((weights > 0) & finite_xy(points)).sum(0)
    X[n_views < 2] = np.nan
    return X


def triangulate_dlt_svd(points: np.ndarray, weights: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Reference DLT by batched SVD of the (2C×4) homogeneous systems (slower; for checks
    and the benchmark). Same shapes as :func:`triangulate_dlt`."""
    w = np.where(finite_xy(points), weights, 0.0)
    u = np.nan_to_num(points)
    rows = (P[:, None, :2, :] - u[..., :, None] * P[:, None, 2:3, :]) * w[..., None, None]  # (C,N,2,4)
    A = rows.transpose(1, 0, 2, 3).reshape(points.shape[1], -1, 4)
    _, _, vt = np.linalg.svd(A)
    h = vt[:, -1, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        X = h[:, :3] / h[:, 3:4]
    X[((w > 0).sum(0)) < 2] = np.nan
    return X


@blas_single
def project(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Pinhole projection. ``P (C,3,4)``, ``X (N,3)`` → ``(C,N,2)`` px (NaN behind the camera)."""
    h = _homogeneous(P, X)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(h[:, 2] > 0, h[:, 2], np.nan)
        return np.stack([h[:, 0] / z, h[:, 1] / z], axis=-1)


def _homogeneous(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``P (C,3,4)``, ``X (N,3)`` → ``(C,3,N)``: one (3C × 4)(4 × N) BLAS product on [X; 1],
    chosen for speed: the former ``einsum("cij,nj->cin")`` measured 12-18× slower
    (4 cameras, 32k points: 4.3 vs 0.24-0.38 ms), and it was the largest cost of the
    robust triangulation. NaN in X stays NaN in its column."""
    Xh = np.empty((4, X.shape[0]))
    Xh[:3] = X.T
    Xh[3] = 1.0
    return (P.reshape(-1, 4) @ Xh).reshape(P.shape[0], 3, -1)


@blas_single
def project_each(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Project per-camera points. ``P (C,3,4)``, ``X (C,N,3)`` (a 3D point per camera) → ``(C,N,2)``."""
    h = np.einsum("cij,cnj->cin", P[:, :, :3], X) + P[:, :, 3:]             # (C,3,N)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(h[:, 2] > 0, h[:, 2], np.nan)
        return np.stack([h[:, 0] / z, h[:, 1] / z], axis=-1)


@blas_single
def reprojection_errors(P: np.ndarray, X: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel distance between ``points (C,N,2)`` and the projection of ``X (N,3)`` → ``(C,N)``."""
    h = _homogeneous(P, X)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(h[:, 2] > 0, h[:, 2], np.nan)
        dx = h[:, 0] / z - points[..., 0]
        dy = h[:, 1] / z - points[..., 1]
    return np.sqrt(dx * dx + dy * dy)


def camera_centers(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``R (C,3,3)``, ``t (C,3)`` → camera positions in the world ``(C,3)``."""
    return -np.einsum("cji,cj->ci", R, t)


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

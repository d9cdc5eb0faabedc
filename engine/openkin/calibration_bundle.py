"""Bundle adjustment of camera poses (and optionally focal lengths) with 3D points.

A small, stage-free kernel: :func:`bundle_adjust` takes observations in undistorted
pixels and returns refined cameras and points. Used by the keypoint calibration
(:mod:`openkin.calibration_keypoints`); refinement can adopt it later.

Model: camera ``c`` sees point ``X`` at ``f_c * s_c * (x/z, y/z) + (cx, cy)`` with
``(x, y, z) = R_c X + t_c`` and ``s_c = exp(log_focal_c)`` (1 when focal lengths are
not refined). Minimised with :func:`scipy.optimize.least_squares` (trust-region
reflective, sparse Jacobian pattern, robust loss) over every camera but the first.

Gauge: the first camera stays at the origin with the identity rotation (fixes the
rig's rotation and position); the distance from the first camera to ``scale_camera``
is held at its starting value by a stiff residual (fixes the scale), so the problem
has no free directions.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

from .geometry import single_thread_blas

log = logging.getLogger(__name__)

SCALE_WEIGHT = 1e4  # px per unit of relative change of the scale baseline: stiff
LSMR_ITERATIONS = 100  # inner iterations per step: inexact steps, measured much faster than the default (min(M, N))


@dataclass
class Bundle:
    """Cameras and points of a bundle: ``rvecs (C,3)``, ``tvecs (C,3)`` world→camera,
    ``K (C,3,3)`` (refined focal lengths included), ``points (N,3)``."""

    rvecs: np.ndarray
    tvecs: np.ndarray
    K: np.ndarray
    points: np.ndarray

    @property
    def R(self) -> np.ndarray:
        """(C,3,3) rotations world→camera."""
        return Rotation.from_rotvec(self.rvecs).as_matrix()

    @property
    def centers(self) -> np.ndarray:
        """(C,3) camera centres."""
        return -np.einsum("cji,cj->ci", self.R, self.tvecs)

    @property
    def P(self) -> np.ndarray:
        """(C,3,4) projection matrices ``K [R | t]``."""
        return self.K @ np.concatenate([self.R, self.tvecs[:, :, None]], axis=2)


def project_observations(rvecs: np.ndarray, tvecs: np.ndarray, K: np.ndarray, points: np.ndarray,
                         cam: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Pinhole projection of ``points[pt]`` in cameras ``cam``: ``rvecs, tvecs (C,3)``, ``K (C,3,3)``,
    ``points (N,3)``, ``cam, pt (M,)`` int → ``(M,2)`` px."""
    R = Rotation.from_rotvec(rvecs[cam]).as_matrix()  # (M,3,3)
    x = np.einsum("mij,mj->mi", R, points[pt]) + tvecs[cam]
    z = x[:, 2:3]
    z = np.where(np.abs(z) < 1e-9, 1e-9, z)
    k = K[cam]
    return np.stack([k[:, 0, 0], k[:, 1, 1]], axis=1) * x[:, :2] / z + k[:, :2, 2]


def _unpack(x: np.ndarray, start: Bundle, n_focal: int):
    """Parameter vector [poses of cameras 1.. (C-1, 6), log focal scales (n_focal,), points (N, 3)]
    → (rvecs, tvecs, K, points); camera 0's pose fixed, every camera's focal length free when refined."""
    C, N = len(start.rvecs), len(start.points)
    cams = x[:(C - 1) * 6].reshape(C - 1, 6)
    rvecs = np.vstack([start.rvecs[:1], cams[:, :3]])
    tvecs = np.vstack([start.tvecs[:1], cams[:, 3:6]])
    K = start.K.copy()
    if n_focal:
        s = np.exp(x[(C - 1) * 6:(C - 1) * 6 + C])
        K[:, 0, 0] *= s
        K[:, 1, 1] *= s
    points = x[(C - 1) * 6 + n_focal:].reshape(N, 3)
    return rvecs, tvecs, K, points


def _sparsity(cam: np.ndarray, pt: np.ndarray, C: int, N: int, n_focal: int, scale_camera: int):
    """Jacobian pattern: 2 rows per observation (its camera's pose and focal columns, its point's
    columns) + the scale row."""
    M = len(cam)
    A = lil_matrix((2 * M + 1, (C - 1) * 6 + n_focal + 3 * N), dtype=np.int8)
    rows = np.arange(M)
    moving = cam > 0
    cols = [(cam[moving] - 1) * 6 + k for k in range(6)]
    for col in cols:
        A[2 * rows[moving], col] = 1
        A[2 * rows[moving] + 1, col] = 1
    if n_focal:
        A[2 * rows, (C - 1) * 6 + cam] = 1
        A[2 * rows + 1, (C - 1) * 6 + cam] = 1
    for k in range(3):
        col = (C - 1) * 6 + n_focal + 3 * pt + k
        A[2 * rows, col] = 1
        A[2 * rows + 1, col] = 1
    A[2 * M, (scale_camera - 1) * 6:(scale_camera - 1) * 6 + 6] = 1
    return A.tocsr()


def bundle_adjust(start: Bundle, cam: np.ndarray, pt: np.ndarray, uv: np.ndarray, weights: np.ndarray, *,
                  refine_focal: bool = False, scale_camera: int = 1, f_scale_px: float = 3.0,
                  max_nfev: int = 200) -> tuple[Bundle, np.ndarray]:
    """Refine ``start`` on observations ``uv (M,2)`` undistorted px of points ``pt (M,)`` in cameras
    ``cam (M,)``, weighted by ``weights (M,)`` (detector confidences). ``f_scale_px``: where the
    soft-L1 loss turns from quadratic to linear. Returns the refined bundle and the
    per-observation reprojection errors ``(M,)`` px (unweighted)."""
    C, N = len(start.rvecs), len(start.points)
    n_focal = C if refine_focal else 0
    cams0 = np.hstack([start.rvecs[1:], start.tvecs[1:]])
    x0 = np.concatenate([cams0.ravel(), np.zeros(n_focal), start.points.ravel()])
    base = np.linalg.norm(start.centers[scale_camera] - start.centers[0])
    sw = np.sqrt(np.asarray(weights, float))[:, None]

    def residuals(x):
        rvecs, tvecs, K, points = _unpack(x, start, n_focal)
        r = (project_observations(rvecs, tvecs, K, points, cam, pt) - uv) * sw
        R1 = Rotation.from_rotvec(rvecs[scale_camera]).as_matrix()
        c1, c0 = -R1.T @ tvecs[scale_camera], -Rotation.from_rotvec(rvecs[0]).as_matrix().T @ tvecs[0]
        return np.concatenate([r.ravel(), [SCALE_WEIGHT * (np.linalg.norm(c1 - c0) / base - 1.0)]])

    pattern = _sparsity(cam, pt, C, N, n_focal, scale_camera)
    with single_thread_blas:  # LSMR's short dot products: OpenBLAS threads spin-wait on busy cores (~10x slower)
        sol = least_squares(residuals, x0, jac_sparsity=pattern, loss="soft_l1", f_scale=f_scale_px,
                            x_scale="jac", method="trf", max_nfev=max_nfev, tr_solver="lsmr",
                            tr_options={"maxiter": LSMR_ITERATIONS})
    rvecs, tvecs, K, points = _unpack(sol.x, start, n_focal)
    out = Bundle(rvecs, tvecs, K, points)
    err = np.linalg.norm(project_observations(rvecs, tvecs, K, points, cam, pt) - uv, axis=1)
    log.info("bundle adjustment: %d cameras, %d points, %d observations, %d evaluations, median %.2f px",
              C, N, len(cam), sol.nfev, float(np.median(err)))
    return out, err

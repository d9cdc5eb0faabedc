"""Robust triangulation: drop the worst view, one at a time, until the reprojection error is small.

Pose2Sim tries every subset of cameras (``itertools.combinations``), which grows as
2^C and stalls at 16 cameras. Here a point whose mean reprojection error exceeds the
threshold (or with one view beyond ``max_view_error``) loses one view per round; the
view to drop is the one whose removal gives the smallest mean error of the remaining
views (leave-one-out, C hypotheses per round, computed together by subtracting that
camera's term from the normal equations; above ``LOO_MAX_CAMERAS`` simply the view
with the largest residual). A drop is kept only if it clearly helps (``MIN_GAIN``) or
removes a gross outlier; a point is NaN if its error ends above ``ACCEPT_FACTOR`` ×
threshold or with fewer than ``min_cameras`` views. A point costs at most
C - min_cameras rounds, vectorised over the points still failing, so the work grows
as C² for bad points only.

Shapes: ``points (C,N,2)`` px (undistorted), ``weights (C,N)`` (0 = not used),
``P (C,3,4)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .blas import blas_single
from .projection import reprojection_errors
from .rays import projection_centers
from .triangulate import _gram_per_camera, _gram_sum, _solve_gram, fill_nan, finite_xy, per_rig

log = logging.getLogger(__name__)

CHUNK = 32768  # points per block: keeps temporaries in cache (measured 3× faster than one block)
# Up to this many cameras the dropped view is chosen by leave-one-out (C refits per round);
# above it the view with the largest residual is dropped (one refit per round): with many
# views a single bad one barely moves the fit, so its residual identifies it.
LOO_MAX_CAMERAS = 6
# A view is dropped only if that lowers the mean error by this share (to a quarter), or if
# it is a gross outlier (residual above max_view_error): with time-correlated detector
# noise every view is a few pixels off, and dropping good views costs more accuracy than
# it gains (measured on the synth 'realistic' scenes: 0.75 → 26 mm, Pose2Sim's rule → 32 mm).
MIN_GAIN = 0.75
# A point seen by three views or more whose error stays above the threshold without any clear
# outlier to drop is kept up to this multiple of the threshold (noisy but consistent views),
# NaN beyond; a two-view point must meet the threshold itself (a wrong match can still be
# roughly epipolar, and two views cannot tell which one is wrong).
ACCEPT_FACTOR = 2.0
# Views of a point must spread over at least this angle (two cameras nearly in line with the
# point give no depth): below it the point is NaN, a gap, rather than a wild guess.
MIN_PARALLAX_DEG = 2.0


@dataclass
class RobustResult:
    """``X (N,3)`` (NaN = failed), ``error (N,)`` mean px over used views (NaN = failed),
    ``used (C,N)`` views kept, ``valid (C,N)`` views available before rejection."""

    X: np.ndarray
    error: np.ndarray
    used: np.ndarray
    valid: np.ndarray


def _mean_error(err: np.ndarray, used: np.ndarray) -> np.ndarray:
    """``err (...,C,N)``, ``used (C,N)`` → mean over used views ``(...,N)`` (inf if < 2 views)."""
    n = used.sum(0)
    s = np.where(used, err, 0.0).sum(-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = s / n
    return np.where(n >= 2, fill_nan(m, np.inf), np.inf)


def _drop_worst(points, weights, P, used) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One leave-one-out round on M points: ``points (C,M,2)``, ``used (C,M)`` →
    (new used, X (M,3), mean error (M,))."""
    w = np.where(used, weights, 0.0)
    Gc = _gram_per_camera(points, w, P)                                       # (C,10,M)
    X_loo = _solve_gram(Gc.sum(0)[None] - Gc)                                # (C,M,3)
    C = P.shape[0]
    err = np.empty((C,) + used.shape)                                        # (drop, view, M)
    for d in range(C):  # C projections of (M,3); loop is over cameras only
        err[d] = reprojection_errors(P, X_loo[d], points)
    keep = used[None] & ~np.eye(C, dtype=bool)[:, :, None]                   # (drop, view, M)
    n = keep.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(keep, fill_nan(err, 1e9), 0.0).sum(1) / n
    mean = np.where(used & (n >= 2), fill_nan(mean, np.inf), np.inf)  # (drop, M)
    best = np.argmin(mean, axis=0)
    cols = np.arange(used.shape[1])
    new_used = used.copy()
    new_used[best, cols] = False
    return new_used, X_loo[best, cols], mean[best, cols]


def _drop_largest_residual(points, weights, P, used, view_err, max_view_error, min_cameras):
    """Cheaper round for many cameras: drop the view with the largest residual, or at once every
    view beyond ``max_view_error`` and half the largest residual when enough views remain (many
    views: gross outliers barely move the fit, so one round finds most of them), and refit.
    ``view_err (C,M)`` residuals of the current fit → (new used, X (M,3), mean (M,), residuals (C,M))."""
    r = np.where(used, fill_nan(view_err, 1e9), -1.0)
    worst = np.argmax(r, axis=0)
    new_used = used.copy()
    new_used[worst, np.arange(used.shape[1])] = False
    gross = used & (r > np.maximum(max_view_error, 0.5 * r.max(0)))
    bulk = (used.sum(0) - gross.sum(0)) >= max(min_cameras, 2)
    new_used = np.where(bulk[None] & gross.any(0)[None], used & ~gross, new_used)
    X = _solve_gram(_gram_sum(points, np.where(new_used, weights, 0.0), P))
    res = reprojection_errors(P, X, points)
    return new_used, X, _mean_error(res, new_used), res


_CENTERS: dict[bytes, np.ndarray] = {}


def _centers(P: np.ndarray) -> np.ndarray:
    """Camera centres ``(C,3)`` of ``P (C,3,4)`` (cached per rig)."""
    return per_rig(_CENTERS, P, projection_centers)


def _parallax_too_small(X: np.ndarray, used: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Points seen by two views along nearly the same line (cameras nearly collinear with the
    point): depth is then unreliable. ``X (N,3)``, ``used (C,N)`` → ``(N,)``.

    Checked for points with exactly two views (three or more views all in line with a point
    do not happen with real rigs). The length of the mean of two unit rays θ apart is cos(θ/2).
    """
    out = np.zeros(X.shape[0], bool)
    two = np.flatnonzero(used.sum(0) == 2)
    if two.size == 0:
        return out
    centers = _centers(P)                                                     # (C,3)
    u = used[:, two]
    d = X[two][None] - centers[:, None]                                       # (C,M,3)
    with np.errstate(invalid="ignore", divide="ignore"):
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        m = np.where(u[..., None], d, 0.0).sum(0) / 2.0
    out[two] = fill_nan(np.linalg.norm(m, axis=-1), 0.0) > np.cos(np.radians(MIN_PARALLAX_DEG / 2))
    return out


def _is_bad(mean, res, used, threshold, max_view_error, min_cameras):
    worst = np.where(used, fill_nan(res, np.inf), 0.0).max(0)
    return ((mean > threshold) | (worst > max_view_error)) & (used.sum(0) > min_cameras)


def _robust_block(points, weights, P, threshold, min_cameras, max_view_error):
    valid = (weights > 0) & finite_xy(points)
    w = np.where(valid, weights, 0.0)
    X = _solve_gram(_gram_sum(points, w, P))
    used = valid.copy()
    res = reprojection_errors(P, X, points)
    err = _mean_error(res, used)
    todo = np.flatnonzero(_is_bad(err, res, used, threshold, max_view_error, min_cameras))
    loo = P.shape[0] <= LOO_MAX_CAMERAS
    while todo.size:
        pts, wt, us = points[:, todo], weights[:, todo], used[:, todo]
        if loo:
            u, x, e = _drop_worst(pts, wt, P, us)
            r = reprojection_errors(P, x, pts)
        else:
            u, x, e, r = _drop_largest_residual(pts, wt, P, us, res[:, todo], max_view_error, min_cameras)
        worst = np.where(us, fill_nan(res[:, todo], np.inf), 0.0).max(0)
        take = (e < (1.0 - MIN_GAIN) * err[todo]) | (worst > max_view_error)
        todo, u, x, e, r = todo[take], u[:, take], x[take], e[take], r[:, take]
        used[:, todo], X[todo], err[todo], res[:, todo] = u, x, e, r
        todo = todo[_is_bad(e, r, u, threshold, max_view_error, min_cameras)]
    n_used = used.sum(0)
    limit = np.where(n_used >= 3, ACCEPT_FACTOR * threshold, threshold)  # two views cannot vouch for each other
    failed = ~(err <= limit) | (n_used < max(min_cameras, 2))
    failed |= _parallax_too_small(X, used, P)
    X[failed] = np.nan
    err = np.where(failed, np.nan, err)
    return X, err, used & ~failed[None], valid


@blas_single
def triangulate_robust(points: np.ndarray, weights: np.ndarray, P: np.ndarray, threshold: float,
                       min_cameras: int = 2, max_view_error: float | None = None) -> RobustResult:
    """Weighted DLT with iterative rejection of the worst view.

    ``points (C,N,2)``, ``weights (C,N)``, ``P (C,3,4)``, ``threshold`` px on the mean
    reprojection error, ``min_cameras`` ≥ 2, ``max_view_error`` px on any single view
    (default ``3 × threshold``: a confident outlier can hide under the mean with many
    views) → :class:`RobustResult`. A point is NaN when even ``min_cameras`` views
    cannot reach the threshold.
    """
    max_view_error = 3.0 * threshold if max_view_error is None else max_view_error
    C, N = weights.shape
    X = np.full((N, 3), np.nan)
    err = np.full(N, np.nan)
    used = np.zeros((C, N), bool)
    valid = np.zeros((C, N), bool)
    def block(s: int) -> None:
        sl = slice(s, s + CHUNK)
        X[sl], err[sl], used[:, sl], valid[:, sl] = _robust_block(points[:, sl], weights[:, sl], P,
                                                                  threshold, max(min_cameras, 2), max_view_error)

    starts = range(0, N, CHUNK)
    if THREADS > 1 and len(starts) > 1:
        list(_pool().map(block, starts))
    else:
        for s in starts:
            block(s)
    return RobustResult(X, err, used, valid)


# Blocks of CHUNK points run on this many threads, chosen for speed: numpy and (single-threaded)
# BLAS release the GIL on blocks this size. Measured on 2 shared cores, whole-person throughput
# gains 0-20% depending on what else runs (4 cameras: 31k → 35-38k frames/s when the other
# core was idle, no change when busy; 16 cameras: median 6.7k → 7.7k); never a loss beyond
# noise. Points are independent and each block writes its own slice of the outputs.
THREADS = 2
_POOL = []


def _pool():
    """The shared pool of the robust blocks, made on first use."""
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="openkin-robust"))
    return _POOL[0]

"""Synchronization: per-camera time offsets from the motion of 2D keypoints.

Two ways to measure the offset of each pair of cameras, both sub-frame:

- **epipolar** (default when ``calibration/`` has a calibration): at the right
  offset every keypoint of camera j lies on the epipolar line of the same
  keypoint of camera i. Every lag is scored by the robust (truncated) mean
  point-to-line distance, all frames and keypoints at once; the best integer
  lag is refined on quarter frames (camera i interpolated in time) with the
  distances detrended per keypoint (a calibration error biases them slowly, an
  offset makes them follow the limbs). Several people: each person of j is
  matched to the person of i that fits it best, frame by frame. Robust to
  detector noise, outliers, left/right swaps and to views that see a movement
  differently.
- **correlation** (Pose2Sim's idea, used without a calibration): cameras see
  the same vertical movements at the same instants. Signal: the sum over
  keypoints of |vertical speed| (Pose2Sim's), divided by the person's image
  height (walking towards a camera no longer looks like speeding up); pooled
  Pearson correlation at every lag by FFT with gaps masked; a parabola through
  the peak.

Both: 2D tracks cleaned first (likelihood threshold, short gaps interpolated,
Hampel spikes removed, Butterworth ``filter_cutoff``/``filter_order``); every
camera pair measured and the offsets solved by weighted least squares over all
pairs, dropping pairs that disagree (more robust than one reference camera); a
confidence per camera; warnings when a camera sees too little motion or its
offset is uncertain.

Convention (as ``truth/offsets.toml`` of ``openkin synth``): camera c's frame k
shows the same instant as reference frame ``k + offset_c``; synchronising
renames frame k to ``k + round(offset_c)`` (Pose2Sim renames and copies the
JSON files the same way; frames that would become negative are dropped). The
reference camera (offset 0) is the one with the fewest frames, as in Pose2Sim.
``pose-sync/offsets.toml`` keeps the fractional offset, the integer shift
applied and the residual, so later stages may interpolate the rest
(:func:`read_offsets`).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from .errors import OpenKinError
from .fileio import atomic_write
from .progress import report

log = logging.getLogger(__name__)

MIN_SPEED_PX = 0.5  # px/frame: below this (see motion_level) the person hardly moves: no timing information
MIN_CONFIDENCE = 0.3  # correlation at the peak below which an offset is not trusted
MAX_GAP_FRAMES = 10  # shorter detection gaps are interpolated before filtering
EPIPOLAR_TAU_PX = 50.0  # epipolar distances are truncated here: above it a point is an outlier whatever the lag
CONVENTION = ("camera c's frame k shows the same instant as reference frame k + offset_frames; "
              "pose-sync renames frame k to k + shift_frames (= round(offset_frames)); "
              "residual_frames = offset_frames - shift_frames is left for interpolation")


# ---------------------------------------------------------------- signals
def select_person(keypoints: np.ndarray, likelihood_threshold: float) -> np.ndarray:
    """The person with the largest bounding box in each frame (Pose2Sim's choice).

    keypoints: (F, P, K, 3) [x, y, conf], NaN where absent -> (F, K, 3); keypoints
    under ``likelihood_threshold`` count as absent (NaN).
    """
    kp = np.asarray(keypoints, dtype=float)
    ok = kp[..., 2] >= likelihood_threshold  # NaN compares False
    xy = np.where(ok[..., None], kp[..., :2], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN people
        span = np.nanmax(xy, axis=2) - np.nanmin(xy, axis=2)  # (F, P, 2)
    area = np.nan_to_num(span[..., 0] * span[..., 1], nan=-1.0)
    best = area.argmax(axis=1)
    out = np.take_along_axis(kp, best[:, None, None, None], axis=1)[:, 0]
    out[~np.take_along_axis(ok, best[:, None, None], axis=1)[:, 0]] = np.nan
    return out


def fill_short_gaps(y: np.ndarray, max_gap: int = MAX_GAP_FRAMES) -> np.ndarray:
    """Linearly interpolate NaN runs of at most ``max_gap`` frames inside each column. y: (F, C)."""
    y = np.array(y, dtype=float)
    t = np.arange(len(y))
    for c in range(y.shape[1]):  # a few dozen columns
        col = y[:, c]
        bad = np.isnan(col)
        if not bad.any() or bad.all():
            continue
        filled = np.interp(t, t[~bad], col[~bad])
        run_id = np.cumsum(~bad)  # NaN runs share the index of the valid frame before them
        run_len = np.bincount(run_id[bad], minlength=run_id.max() + 1)
        inside = (t > np.flatnonzero(~bad)[0]) & (t < np.flatnonzero(~bad)[-1])
        short = bad & inside & (run_len[run_id] <= max_gap)
        col[short] = filled[short]
    return y


# ---------------------------------------------------------------- correlation
def lagged_correlation(a: np.ndarray, b: np.ndarray, max_lag: int, min_overlap: int = 30
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Pooled Pearson correlation of multichannel a and b at every lag, NaN masked.

    a: (Fa, K), b: (Fb, K) (same channels, NaN = missing). At lag o, a[t] is paired
    with b[t - o]: o is the offset of b relative to a (b's frame k shows a's frame
    k + o). All lags at once by FFT (``scipy.signal.fftconvolve``): O(F log F).
    Returns lags (L,) int in [-max_lag, max_lag] and r (L,) (NaN where fewer than
    ``min_overlap`` samples overlap).
    """
    ma, mb = ~np.isnan(a), ~np.isnan(b)
    a0, b0 = np.where(ma, a, 0.0), np.where(mb, b, 0.0)

    def xc(p, q):  # sum over t and channels of p[t] * q[t - o], for o = -(Fb-1) .. Fa-1
        return signal.fftconvolve(p, q[::-1], axes=0).sum(axis=1)

    n = np.rint(xc(ma.astype(float), mb.astype(float)))
    sa, sb = xc(a0, mb.astype(float)), xc(ma.astype(float), b0)
    saa, sbb = xc(a0 * a0, mb.astype(float)), xc(ma.astype(float), b0 * b0)
    sab = xc(a0, b0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sab - sa * sb / n
        var = (saa - sa * sa / n) * (sbb - sb * sb / n)
        r = cov / np.sqrt(var)
    lags = np.arange(-(len(b) - 1), len(a))
    keep = np.abs(lags) <= max_lag
    r = np.where((n >= min_overlap) & (var > 0), r, np.nan)
    return lags[keep], r[keep]


@dataclass(frozen=True)
class Peak:
    """A correlation peak: ``lag`` (frames, sub-frame), ``r`` its height, ``prominence``
    its height above the best correlation outside its own lobe."""

    lag: float
    r: float
    prominence: float


def find_peak(lags: np.ndarray, r: np.ndarray) -> Peak | None:
    """Highest correlation, refined by a parabola through it and its neighbours. None if all NaN."""
    if not np.isfinite(r).any():
        return None
    rr = np.where(np.isfinite(r), r, -np.inf)
    i = int(np.argmax(rr))
    lag, height = float(lags[i]), float(r[i])
    if 0 < i < len(r) - 1 and np.isfinite(rr[i - 1]) and np.isfinite(rr[i + 1]):
        y0, y1, y2 = rr[i - 1], rr[i], rr[i + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            step = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
            lag += step
            height = float(y1 - 0.25 * (y0 - y2) * step)
    lo, hi = i, i
    while lo > 0 and rr[lo - 1] <= rr[lo]:
        lo -= 1
    while hi < len(rr) - 1 and rr[hi + 1] <= rr[hi]:
        hi += 1
    outside = np.concatenate([rr[:lo], rr[hi + 1:]])
    outside = outside[np.isfinite(outside)]
    second = float(outside.max()) if len(outside) else float(np.nanmin(r))
    return Peak(lag, height, max(0.0, height - second))


def correlation_pair(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[Peak | None, np.ndarray, np.ndarray]:
    """Offset of b relative to a from their speed signals (F_a, K), (F_b, K). -> (peak, lags, r)."""
    lags, r = lagged_correlation(a, b, max_lag)
    return find_peak(lags, r), lags, r


MAX_PARTNERS = 4  # with many cameras each is measured against this many others (all pairs up to 2 x this + 1)


def camera_pairs(n: int, partners: int = MAX_PARTNERS) -> list[tuple[int, int]]:
    """Pairs (i < j) to measure: all of them for few cameras; else each camera with the
    ``partners`` next ones in a ring (N x partners pairs, every camera in 2 x partners of
    them, the graph connected), so 16 cameras cost 64 measurements instead of 120."""
    if n <= 2 * partners + 1:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    return sorted({tuple(sorted((i, (i + k) % n))) for i in range(n) for k in range(1, partners + 1)})


def pairwise_offsets(measure, n: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Offsets of camera pairs (:func:`camera_pairs`). ``measure(i, j)`` -> (Peak | None,
    lags, curve) gives the offset of j's signal relative to i's; ``starts`` (N,): first
    frame of each signal in its camera's numbering.

    Returns d (N, N) with d[i, j] = offset of camera j relative to camera i (frames;
    ``d[i, j] ~= o[j] - o[i]``), r (N, N) peak scores, prominence (N, N) (NaN where
    unmeasured) and the curves {(i, j): (lags, curve)} for plots.
    """
    d, r, prom = (np.full((n, n), np.nan) for _ in range(3))
    curves = {}
    for i, j in camera_pairs(n):
        peak, lags, curve = measure(i, j)
        curves[(i, j)] = (lags, curve)
        if peak is None:
            continue
        # j's signal frame k' (camera frame k' + starts[j]) shows i's signal frame k' + lag
        offset = peak.lag + starts[i] - starts[j]
        d[i, j], d[j, i] = offset, -offset
        r[i, j] = r[j, i] = peak.r
        prom[i, j] = prom[j, i] = peak.prominence
    return d, r, prom, curves


def solve_offsets(d: np.ndarray, weights: np.ndarray, reference: int, max_residual: float = 1.5,
                  n_trees: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Camera offsets from pair differences d[i, j] ~= o[j] - o[i], robust weighted least squares.

    d, weights: (N, N) (NaN / 0 = unmeasured); o[reference] = 0. Consensus first:
    offsets implied by spanning trees of the measured pairs (the heaviest one and
    ``n_trees`` random ones) are scored by how many pairs agree with them within
    ``max_residual`` frames (weights only break ties: one confident but wrong pair
    -- a false peak of periodic motion -- must not outvote the others); then least
    squares over the pairs that agree with the best, dropping any left that
    disagree while the cameras stay connected. Returns offsets (N,) (NaN for cameras
    no pair reaches) and the inlier mask (N, N).
    """
    use = np.isfinite(d) & (weights > 0)
    np.fill_diagonal(use, False)
    use &= _consensus(d, weights, use, reference, max_residual, n_trees)
    while True:
        offsets = _least_squares(d, weights, use, reference)
        resid = np.abs(d - (offsets[None, :] - offsets[:, None]))
        resid = np.where(use, resid, -1.0)
        worst = np.unravel_index(np.argmax(resid), resid.shape)
        if resid[worst] <= max_residual:
            return offsets, use
        trial = use.copy()
        trial[worst] = trial[worst[::-1]] = False
        if np.isnan(_least_squares(d, weights, trial, reference)).sum() > np.isnan(offsets).sum():
            return offsets, use  # dropping it would disconnect a camera: keep what we have
        use = trial


def _consensus(d: np.ndarray, weights: np.ndarray, use: np.ndarray, reference: int, max_residual: float,
               n_trees: int) -> np.ndarray:
    """Pairs (N, N) agreeing with the spanning-tree solution most pairs agree with."""
    pairs = [(i, j) for i in range(len(d)) for j in range(i + 1, len(d)) if use[i, j]]
    if len(pairs) < 3:
        return use
    rng = np.random.default_rng(0)  # deterministic
    orders = [sorted(pairs, key=lambda p: -weights[p])] + [
        [pairs[k] for k in rng.permutation(len(pairs))] for _ in range(n_trees)]
    best, best_score = use, (-1, -np.inf)
    for order in orders:
        offsets = _tree_offsets(d, order, len(d), reference)
        agree = use & (np.abs(d - (offsets[None, :] - offsets[:, None])) <= max_residual)
        score = (int(agree.sum()), float(weights[agree].sum()))
        if score > best_score:
            best, best_score = agree, score
    return best


def _tree_offsets(d: np.ndarray, order: list[tuple[int, int]], n: int, reference: int) -> np.ndarray:
    """Offsets along the spanning tree Kruskal builds from pairs in ``order`` (NaN: unreached)."""
    parent = list(range(n))

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    edges = {}
    for i, j in order:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[ri] = rj
            edges.setdefault(i, []).append((j, d[i, j]))
            edges.setdefault(j, []).append((i, -d[i, j]))
    offsets = np.full(n, np.nan)
    offsets[reference] = 0.0
    stack = [reference]
    while stack:
        a = stack.pop()
        for b, delta in edges.get(a, []):
            if np.isnan(offsets[b]):
                offsets[b] = offsets[a] + delta
                stack.append(b)
    return offsets


def _least_squares(d: np.ndarray, weights: np.ndarray, use: np.ndarray, reference: int) -> np.ndarray:
    """Weighted least squares of o[j] - o[i] = d[i, j] over the pairs in ``use`` (i < j), o[ref] = 0."""
    n = len(d)
    reach = _connected(use, reference)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if use[i, j] and reach[i] and reach[j]]
    offsets = np.full(n, np.nan)
    offsets[reference] = 0.0
    free = [c for c in range(n) if reach[c] and c != reference]
    if not pairs or not free:
        return offsets
    col = {c: k for k, c in enumerate(free)}
    A = np.zeros((len(pairs), len(free)))
    rhs = np.zeros(len(pairs))
    for row, (i, j) in enumerate(pairs):
        w = np.sqrt(weights[i, j])
        if j in col:
            A[row, col[j]] += w
        if i in col:
            A[row, col[i]] -= w
        rhs[row] = w * d[i, j]
    sol, *_ = np.linalg.lstsq(A, rhs, rcond=None)
    offsets[free] = sol
    return offsets


def _connected(use: np.ndarray, start: int) -> np.ndarray:
    """Cameras reachable from ``start`` through the pairs in ``use``. (N, N) -> (N,) bool."""
    seen = np.zeros(len(use), dtype=bool)
    stack = [start]
    while stack:
        c = stack.pop()
        if not seen[c]:
            seen[c] = True
            stack.extend(np.flatnonzero(use[c] & ~seen).tolist())
    return seen


# ---------------------------------------------------------------- geometry (with a calibration)
def fundamental_matrix(cam_i, cam_j) -> np.ndarray:
    """F (3, 3) with ``x_j^T F x_i = 0`` for undistorted pixel points of cameras i and j."""
    R = cam_j.R @ cam_i.R.T
    t = cam_j.translation - R @ cam_i.translation
    tx = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    return np.linalg.inv(cam_j.matrix).T @ tx @ R @ np.linalg.inv(cam_i.matrix)


def _homogeneous(xy: np.ndarray) -> np.ndarray:
    """(..., 2) -> (..., 3) with a last coordinate of 1."""
    return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)


def _sample(xy: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """xy (F, ..., 2) linearly interpolated at fractional frame ``positions`` (T,) -> (T, ..., 2).

    Positions outside [0, F-1] give NaN; NaN neighbours give NaN.
    """
    lo = np.floor(positions).astype(int)
    frac = (positions - lo).reshape((-1,) + (1,) * (xy.ndim - 1))
    inside = (lo >= 0) & (lo <= len(xy) - 1) & (positions <= len(xy) - 1)
    lo_c = np.clip(lo, 0, len(xy) - 1)
    hi_c = np.clip(lo + 1, 0, len(xy) - 1)
    out = (1 - frac) * xy[lo_c] + frac * np.where(frac > 0, xy[hi_c], 0.0)
    out[~inside] = np.nan
    return out


def _algebraic(xy_j: np.ndarray, li: np.ndarray) -> np.ndarray:
    """``x_j . l_i`` for every person pair: xy_j (T, P_j, K, 2), li (T, P_i, K, 3) -> (T, P_j, P_i, K).
    (Explicit products: several times faster than the equivalent einsum.)"""
    xj = xy_j[:, :, None]
    lt = li[:, None]
    return xj[..., 0] * lt[..., 0] + xj[..., 1] * lt[..., 1] + lt[..., 2]


def signed_epipolar_distances(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, lag: float) -> np.ndarray:
    """Signed symmetric point-to-epipolar-line distances (px) when camera j's frame k shows
    camera i's frame k + lag (camera i linearly interpolated in time).

    xy_i: (F_i, P_i, K, 2), xy_j: (F_j, P_j, K, 2) undistorted px of the people seen,
    NaN = missing; F from :func:`fundamental_matrix`. Returns (F_j, P_j, P_i, K):
    every person of j against every person of i, NaN where a point is missing.
    """
    pi = _sample(xy_i, np.arange(len(xy_j)) + lag)
    xi, xj = _homogeneous(pi), _homogeneous(xy_j)
    li = xi @ F.T  # epipolar lines in j of i's points: (T, P_i, K, 3)
    lj = xj @ F  # epipolar lines in i of j's points: (T, P_j, K, 3)
    e = _algebraic(xy_j, li)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_i = 1.0 / np.hypot(li[..., 0], li[..., 1])[:, None, :, :]
        inv_j = 1.0 / np.hypot(lj[..., 0], lj[..., 1])[:, :, None, :]
        return 0.5 * e * (inv_i + inv_j)


def _truncated_cost(d: np.ndarray, tau: float, min_points: int = 3) -> tuple[float, int]:
    """Mean of ``min(|d|, tau)^2`` over d (T, P_j, P_i, K), each person of j matched to the
    person of i that fits it best in that frame (on at least ``min_points`` keypoints).
    Returns (cost, number of distances)."""
    ok = np.isfinite(d)
    c = np.minimum(np.abs(np.where(ok, d, 0.0)), tau) ** 2
    total, count = c.sum(axis=-1), ok.sum(axis=-1)  # (T, P_j, P_i)
    if d.shape[2] == 1:  # one person in camera i: nothing to match
        n = int(count.sum())
        return (float(total.sum() / n), n) if n else (np.nan, 0)
    mean = np.where(count >= min_points, total / np.maximum(count, 1), np.inf)
    best = np.argmin(mean, axis=-1)[..., None]  # the matching person of i
    total = np.take_along_axis(total, best, -1)[..., 0]
    count = np.take_along_axis(count, best, -1)[..., 0]
    use = np.isfinite(np.take_along_axis(mean, best, -1)[..., 0])
    n = int(count[use].sum())
    return (float(total[use].sum() / n), n) if n else (np.nan, 0)


def epipolar_cost(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, lag: float, tau: float,
                  detrend_frames: int = 0) -> tuple[float, int]:
    """Robust mean epipolar distance at ``lag`` (see :func:`signed_epipolar_distances`).

    Each distance d (px) costs ``min(|d|, tau)^2`` (truncated: outliers and swaps
    cost at most tau^2). With ``detrend_frames``, each keypoint's moving median over
    that many frames is subtracted first (per person slot of camera j, matched
    frame by frame to its best fitting person of camera i): a calibration error
    biases the distances slowly as people move around, a time offset makes them
    follow the fast limb motion. Returns (mean cost, count).
    """
    d = signed_epipolar_distances(xy_i, xy_j, F, lag)
    if detrend_frames > 1:
        d = _matched(d, tau)  # (T, P_j, 1, K)
        flat = d.reshape(len(d), -1)
        d = (flat - _moving_median(flat, detrend_frames)).reshape(d.shape)
    return _truncated_cost(d, tau)


def _matched(d: np.ndarray, tau: float, min_points: int = 3) -> np.ndarray:
    """d (T, P_j, P_i, K) -> (T, P_j, 1, K): for each person of j, the distances to the
    person of i that fits it best in that frame (NaN if none has ``min_points`` keypoints)."""
    if d.shape[2] == 1:
        return d
    ok = np.isfinite(d)
    c = np.minimum(np.abs(np.where(ok, d, 0.0)), tau) ** 2
    count = ok.sum(axis=-1)
    mean = np.where(count >= min_points, c.sum(axis=-1) / np.maximum(count, 1), np.inf)
    best = np.argmin(mean, axis=-1)  # (T, P_j)
    out = np.take_along_axis(d, best[:, :, None, None], axis=2)
    out[~np.isfinite(np.take_along_axis(mean, best[..., None], -1)[..., 0])] = np.nan
    return out


def _moving_median(d: np.ndarray, window: int) -> np.ndarray:
    """Per-column moving median of d (T, K) over ``window`` frames, gaps interpolated first.

    For speed it is taken on every ``window // 10``-th frame and interpolated back
    (the baseline it estimates varies slowly by design): ~20x faster than a full
    ``median_filter`` at 61 frames.
    """
    from scipy.ndimage import median_filter

    filled = fill_short_gaps(d, max_gap=len(d))
    filled[~np.isfinite(filled)] = 0.0  # columns never seen, or the ends: no baseline
    step = max(1, window // 10)
    coarse = median_filter(filled[::step], size=(max(1, window // step) | 1, 1), mode="nearest")
    t = np.arange(len(d))
    tc = t[::step]
    return np.stack([np.interp(t, tc, coarse[:, k]) for k in range(d.shape[1])], axis=1)


def _refine_lag(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, lag: float, tau: float,
                detrend_frames: int) -> float:
    """Sub-frame lag: a least-squares parabola through the detrended costs (see
    :func:`epipolar_cost`) at quarter-frame steps within +-1.5 frames of the integer
    ``lag``, around the best of them."""
    trial = lag + np.arange(-1.5, 1.51, 0.25)
    costs = np.array([epipolar_cost(xy_i, xy_j, F, t, tau, detrend_frames)[0] for t in trial])
    if not np.isfinite(costs).all():
        return lag
    k = int(np.argmin(costs))
    near = slice(max(0, k - 3), k + 4)
    a, b, _ = np.polyfit(trial[near], costs[near], 2)
    best = -b / (2 * a) if a > 0 else trial[k]
    return float(np.clip(best, trial[0], trial[-1]))


def _integer_lag_costs(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, lags: np.ndarray, tau: float,
                       min_pairs: int) -> np.ndarray:
    """:func:`epipolar_cost` at integer ``lags`` (L,), epipolar lines computed once. -> (L,) (NaN: too few pairs)."""
    xi, xj = _homogeneous(xy_i), _homogeneous(xy_j)
    li, lj = xi @ F.T, xj @ F
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_ni = 1.0 / np.hypot(li[..., 0], li[..., 1])[:, None, :, :]  # (F_i, 1, P_i, K)
        inv_nj = 1.0 / np.hypot(lj[..., 0], lj[..., 1])[:, :, None, :]  # (F_j, P_j, 1, K)
    costs = np.full(len(lags), np.nan)
    # the integer scan only has to find the right frame: ~300 frames suffice, so long takes
    # cost O(lags), not O(lags x frames)
    stride = max(1, min(len(xi), len(xj)) // 300)
    for n, lag in enumerate(lags):  # per lag: one vectorised pass over all frames, people and keypoints
        t0, t1 = max(0, -lag), min(len(xj), len(xi) - lag)
        if t1 - t0 <= 0:
            continue
        ti, tj = slice(t0 + lag, t1 + lag, stride), slice(t0, t1, stride)
        e = _algebraic(xy_j[tj], li[ti])
        cost, count = _truncated_cost(0.5 * e * (inv_ni[ti] + inv_nj[tj]), tau)
        if count * stride >= min_pairs:
            costs[n] = cost
    return costs


def geometric_offset(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, max_lag: int, *, tau: float = EPIPOLAR_TAU_PX,
                     min_pairs: int = 200, detrend_frames: int = 61) -> tuple[Peak | None, np.ndarray, np.ndarray]:
    """Offset of camera j relative to camera i (j's frame k shows i's frame k + lag) by epipolar consistency.

    Every integer lag in [-max_lag, max_lag] is scored by :func:`epipolar_cost`;
    the best is refined to sub-frame by :func:`_refine_lag` (detrended costs,
    camera i's points linearly interpolated in time). The returned
    :class:`Peak` has ``r`` = 1 - best cost / median cost over lags (0: no
    timing information, e.g. nobody moves; 1: perfect) and ``prominence`` = its
    height above the best other local optimum, in the same units.
    Returns (peak or None, lags (L,), scores (L,)).
    """
    xy_i = xy_i[:, None] if xy_i.ndim == 3 else xy_i
    xy_j = xy_j[:, None] if xy_j.ndim == 3 else xy_j
    lags = np.arange(-int(max_lag), int(max_lag) + 1)
    costs = _integer_lag_costs(xy_i, xy_j, F, lags, tau, min_pairs)
    if not np.isfinite(costs).any():
        return None, lags, costs
    scale = float(np.nanmedian(costs))
    score = 1.0 - costs / scale if scale > 0 else np.zeros(len(costs))
    peak = find_peak(lags, score)
    lag = _refine_lag(xy_i, xy_j, F, float(np.round(peak.lag)), tau, detrend_frames)
    return Peak(lag, float(np.nanmax(score)), peak.prominence), lags, score


# ---------------------------------------------------------------- all cameras
@dataclass
class SyncResult:
    """Offsets of N cameras. ``offsets`` (N,) frames (0 for the reference, NaN if unknown),
    ``confidence`` (N,) in [0, 1], ``pair_r`` / ``pair_offsets`` (N, N), ``inliers`` (N, N),
    ``motion`` (N,) std of the vertical speeds (px/frame), ``curves`` for plots, ``method``
    'epipolar' or 'correlation'."""

    offsets: np.ndarray
    confidence: np.ndarray
    pair_offsets: np.ndarray
    pair_r: np.ndarray
    pair_prominence: np.ndarray
    inliers: np.ndarray
    motion: np.ndarray
    reference: int
    curves: dict
    method: str = ""


def combine_pairs(d: np.ndarray, r: np.ndarray, prom: np.ndarray, motion: np.ndarray, reference: int,
                  curves: dict | None = None, method: str = "") -> SyncResult:
    """Camera offsets from pair measurements (see :func:`pairwise_offsets`).

    Pairs are weighted by score x prominence (a peak that stands out of a high
    correlation counts most); cameras whose ``motion`` is below
    :data:`MIN_SPEED_PX` carry no timing and get no weight. Confidence of a camera:
    weighted mean over its inlier pairs of score x min(1, prominence / 0.1) (an
    ambiguous peak -- periodic motion -- lowers it), times the share of its measured
    pairs that agree with the solution, in [0, 1].
    """
    n = len(d)
    weights = np.nan_to_num(np.clip(r, 0, 1) * np.clip(prom, 0, 1) + 1e-3 * np.clip(r, 0, 1))
    still = motion < MIN_SPEED_PX
    weights[still, :] = 0.0
    weights[:, still] = 0.0
    offsets, inliers = solve_offsets(d, weights, reference)
    confidence = np.zeros(n)
    for c in range(n):
        pair = inliers[c] & np.isfinite(r[c])
        if pair.any():
            quality = r[c, pair] * np.clip(prom[c, pair] / 0.1, 0, 1)
            agree = pair.sum() / max(int((np.isfinite(d[c]) & (weights[c] > 0)).sum()), 1)
            confidence[c] = float(np.clip(agree * np.average(quality, weights=weights[c, pair] + 1e-12), 0, 1))
    return SyncResult(offsets, confidence, d, r, prom, inliers, motion, reference, curves or {}, method)


def prepare_tracks(keypoints: np.ndarray, keypoint_ids: list[int], rate: float, *, likelihood_threshold: float,
                   cutoff: float, order: int) -> np.ndarray:
    """Cleaned 2D tracks of the main person. keypoints: (F, P, K, 3) -> (F, K', 2) px, NaN gaps.

    Largest person per frame, keypoints under the likelihood threshold dropped,
    gaps up to :data:`MAX_GAP_FRAMES` interpolated, spikes (outliers, short
    left/right swaps) removed by a Hampel filter, then a zero-phase Butterworth
    (``filter_cutoff``, ``filter_order``) as Pose2Sim smooths before correlating.
    """
    from .filtering import filter_array, hampel

    person = select_person(np.asarray(keypoints)[:, :, keypoint_ids], likelihood_threshold)[..., :2]
    cols = hampel(fill_short_gaps(person.reshape(len(person), -1)))
    if 0 < cutoff < rate / 2 and len(cols) > 12:
        cols = filter_array(cols, rate, "butterworth", cut_off_frequency=cutoff, order=order)
    return cols.reshape(person.shape)


def prepare_people(keypoints: np.ndarray, keypoint_ids: list[int], likelihood_threshold: float) -> np.ndarray:
    """Every person's considered keypoints, for the epipolar method with several people:
    (F, P, K, 3) -> (F, P, K', 2) px, NaN under the likelihood threshold. No smoothing
    in time: person slots need not be the same person from frame to frame."""
    kp = np.asarray(keypoints, dtype=float)[:, :, keypoint_ids]
    return np.where((kp[..., 2] >= likelihood_threshold)[..., None], kp[..., :2], np.nan)


def image_height(keypoints: np.ndarray, likelihood_threshold: float, window: int = 31) -> np.ndarray:
    """The main person's height in the image (px), over time: (F, P, K, 3) -> (F,).

    Vertical extent of all its keypoints, median-filtered over ``window`` frames,
    gaps filled from neighbours. Dividing speeds by it removes the perspective
    scaling of a person walking towards or away from a camera.
    """
    from scipy.ndimage import median_filter

    y = select_person(keypoints, likelihood_threshold)[..., 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = np.nanmax(y, axis=1) - np.nanmin(y, axis=1)
    ok = np.isfinite(h) & (h > 0)
    if not ok.any():
        return np.ones(len(h))
    h = np.interp(np.arange(len(h)), np.flatnonzero(ok), h[ok])
    return median_filter(h, size=min(window, len(h)), mode="nearest")


def speed_signal(xy: np.ndarray, height: np.ndarray | None = None) -> np.ndarray:
    """Pose2Sim's synchronisation signal -- the sum over keypoints of |vertical speed| -- divided
    by the person's image height (:func:`image_height`) when given.

    xy: (F, K, 2), height: (F,) -> (F, 1), NaN where no keypoint is seen (central differences).
    """
    speed = np.full(xy.shape[:2], np.nan)
    if len(xy) >= 3:
        speed[1:-1] = 0.5 * np.abs(xy[2:, :, 1] - xy[:-2, :, 1])
    seen = np.isfinite(speed).any(axis=1)
    total = np.nansum(speed, axis=1) / (1.0 if height is None else np.maximum(height, 1.0))
    return np.where(seen, total, np.nan)[:, None]


def motion_level(xy: np.ndarray) -> float:
    """How much the tracks move: 90th percentile over frames of the mean keypoint speed (px/frame)."""
    if len(xy) < 2:
        return 0.0
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_frame = np.nanmean(step, axis=1)
    per_frame = per_frame[np.isfinite(per_frame)]
    return float(np.percentile(per_frame, 90)) if len(per_frame) else 0.0


def synchronize(tracks: list[np.ndarray], starts, max_lag: int, reference: int, cameras: list | None = None,
                heights: list[np.ndarray] | None = None, rate: float = 60.0,
                people: list[np.ndarray] | None = None) -> SyncResult:
    """Offsets of N cameras from their cleaned tracks (:func:`prepare_tracks`).

    tracks: N arrays (F_c, K, 2) px whose first row is frame ``starts[c]`` of camera
    c; ``max_lag``: largest offset searched (frames). With ``cameras`` (calibrated
    :class:`~openkin.formats.calibration.Camera` per track) pair offsets come from
    epipolar consistency (:func:`geometric_offset`; robust to noise, outliers and
    views that see the motion differently); without, from the correlation of
    vertical speeds (:func:`speed_signal`, Pose2Sim's signal, divided by the image
    heights (F_c,) of the person when ``heights`` are given). ``people``: N arrays
    (F_c, P, K, 2) of everybody seen (:func:`prepare_people`), used instead of the
    tracks by the epipolar method when several people are in view.
    """
    n = len(tracks)
    starts = np.asarray(starts, dtype=float)
    motion = np.array([motion_level(t) for t in tracks])
    if cameras is not None:
        from .formats.calibration import undistort_points

        views = people if people is not None else tracks
        und = [undistort_points(cam, t.reshape(-1, 2)).reshape(t.shape) for cam, t in zip(cameras, views)]

        def measure(i, j):
            return geometric_offset(und[i], und[j], fundamental_matrix(cameras[i], cameras[j]), max_lag,
                                    detrend_frames=int(rate) | 1)
        method = "epipolar"
    else:
        signals = [speed_signal(t, None if heights is None else h) for t, h in zip(tracks, heights or tracks)]

        def measure(i, j):
            return correlation_pair(signals[i], signals[j], max_lag)
        method = "correlation"
    d, r, prom, curves = pairwise_offsets(measure, n, starts)
    return combine_pairs(d, r, prom, motion, reference, curves, method)


def search_windows(n_frames: list[int], rate: float, approx_time_maxspeed, time_range: float
                   ) -> tuple[list[tuple[int, int]], int]:
    """Per camera (start, stop) of the frames searched, and the largest lag (frames).

    'auto': whole sequences, lags up to half the shortest. A list of times (s, one
    per camera or one for all): +- ``time_range`` s around each, lags up to the range.
    """
    if isinstance(approx_time_maxspeed, str):
        return [(0, f) for f in n_frames], max(1, min(n_frames) // 2)
    times = list(approx_time_maxspeed)
    if len(times) == 1:
        times = times * len(n_frames)
    if len(times) != len(n_frames):
        raise OpenKinError(f"approx_time_maxspeed has {len(times)} times for {len(n_frames)} cameras",
                           fix="give one time (s) per camera in [synchronization] approx_time_maxspeed, or 'auto'")
    half = int(round(time_range * rate))
    windows = []
    for t, f in zip(times, n_frames):
        centre = int(round(t * rate))
        start, stop = max(0, centre - half), min(f, centre + half)
        if stop - start < 10:
            raise OpenKinError(f"approx_time_maxspeed {t} s is outside the {f / rate:.1f} s recorded",
                               fix="give times within the recording, or 'auto'")
        windows.append((start, stop))
    return windows, max(1, half)


def clip_to_frame_range(windows: list[tuple[int, int]], firsts: list[int], frame_range) -> list[tuple[int, int]]:
    """Search windows (row indices of each camera) kept within ``[project] frame_range``
    (frame numbers ``[start, stop)``; 'auto'/'all' keep everything)."""
    if isinstance(frame_range, str) or not frame_range:
        return windows
    start, stop = int(frame_range[0]), int(frame_range[1])
    out = [(max(a, start - f), min(b, stop - f)) for (a, b), f in zip(windows, firsts)]
    if any(b - a < 10 for a, b in out):
        raise OpenKinError(f"frame_range {list(frame_range)} leaves fewer than 10 frames to synchronise on",
                           fix="widen [project] frame_range, or set it to 'auto'")
    return out


def keypoint_ids(names: list[str], keypoints_to_consider) -> list[int]:
    """Indices of the keypoints to use: 'all', 'right', 'left' or a list of names (Pose2Sim's values)."""
    if isinstance(keypoints_to_consider, str):
        which = keypoints_to_consider.lower()
        if which == "all":
            return list(range(len(names)))
        if which in ("right", "left"):
            prefix = which[0].upper()
            ids = [i for i, n in enumerate(names) if n.startswith(prefix) or n.lower().startswith(which)]
            if ids:
                return ids
        raise OpenKinError(f"keypoints_to_consider = {keypoints_to_consider!r} selects no keypoint",
                           fix="use 'all', 'right', 'left' or a list of keypoint names")
    unknown = [k for k in keypoints_to_consider if k not in names]
    if unknown or not keypoints_to_consider:
        raise OpenKinError(f"keypoints_to_consider: {unknown or 'empty list'} not in the pose model's keypoints",
                           fix=f"choose among: {', '.join(names)}")
    return [names.index(k) for k in keypoints_to_consider]


def dense_frames(keypoints: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, int]:
    """Put per-file keypoints (F, P, K, 3) on consecutive frames from the first; missing files NaN.
    Returns (keypoints (F', P, K, 3), first frame number)."""
    first = int(frames[0])
    out = np.full((int(frames[-1]) - first + 1,) + keypoints.shape[1:], np.nan)
    out[frames - first] = keypoints
    return out, first


# ---------------------------------------------------------------- files
def shifted_name(name: str, shift: int) -> str | None:
    """``cam01_000012.json`` shifted by 3 -> ``cam01_000015.json``; None if the frame becomes negative."""
    match = re.search(r"(\d+)(?!.*\d)", name)
    if match is None:
        return None
    frame = int(match.group(1)) + shift
    if frame < 0:
        return None
    digits = max(6, len(match.group(1)))
    return f"{name[:match.start(1)]}{frame:0{digits}d}{name[match.end(1):]}"


def write_shifted(src: Path, dst: Path, shift: int) -> int:
    """Copy the JSON files of ``src`` into ``dst`` with frame numbers + ``shift``; returns files written.

    Written into a temporary folder beside ``dst`` first; an earlier ``dst`` is
    replaced only once the new one is complete.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        count = 0
        for f in sorted(src.glob("*.json")):
            new = shifted_name(f.name, shift)
            if new is not None:
                _link_or_copy(f, tmp / new)
                count += 1
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dst, old)
        os.replace(tmp, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return count
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard link (instant, no space; the pose stage replaces files, never edits them) or copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def offsets_table(names: list[str], result: SyncResult, shifts: np.ndarray, rate: float) -> dict:
    """The content of ``pose-sync/offsets.toml``."""
    cams = {}
    for c, name in enumerate(names):
        off = float(result.offsets[c]) if np.isfinite(result.offsets[c]) else 0.0
        cams[name] = {"offset_frames": round(off, 4), "shift_frames": int(shifts[c]),
                      "residual_frames": round(off - int(shifts[c]), 4), "offset_seconds": round(off / rate, 6),
                      "confidence": round(float(result.confidence[c]), 4),
                      "motion_px_per_frame": round(float(result.motion[c]), 3),
                      "synchronized": bool(np.isfinite(result.offsets[c]))}
    return {"convention": CONVENTION, "method": result.method, "reference": names[result.reference],
            "frame_rate": float(rate), "cameras": cams}


def read_offsets(path: str | Path) -> dict[str, float]:
    """Camera -> residual sub-frame offset (frames) still to apply after the integer renaming,
    from a ``pose-sync/offsets.toml``: camera c's (renamed) frame k shows reference time
    k + residual_frames."""
    import toml

    data = toml.load(str(path))
    return {name: float(v.get("residual_frames", 0.0)) for name, v in data.get("cameras", {}).items()}


def _warn(names: list[str], result: SyncResult) -> None:
    for c, name in enumerate(names):
        if result.motion[c] < MIN_SPEED_PX:
            log.warning("synchronization: camera %s sees too little motion (%.2f px/frame) to find its offset; "
                        "record a clear movement (a jump, a clap, walking) or set approx_time_maxspeed",
                        name, result.motion[c])
        elif not np.isfinite(result.offsets[c]):
            log.warning("synchronization: camera %s could not be synchronised (no usable overlap with the "
                        "others): left unshifted", name)
        elif c != result.reference and result.confidence[c] < MIN_CONFIDENCE:
            log.warning("synchronization: low confidence %.2f for camera %s (offset %.2f frames): the motion gives "
                        "too little signal; check the offset or set approx_time_maxspeed around a clear movement",
                        result.confidence[c], name, result.offsets[c])


# ---------------------------------------------------------------- the stage
def _calibrated_cameras(paths, folders: list[Path], method: str):
    """Calibrated cameras matching ``folders`` for the epipolar method, or None (correlation)."""
    if method == "correlation":
        return None
    from .calibration import find_calibration
    from .formats.calibration import read_calibration
    from .triangulation.inputs import match_cameras

    try:
        calib = find_calibration(paths.calibration)
        return match_cameras(folders, read_calibration(calib), calib)
    except OpenKinError as exc:
        if method == "epipolar":
            raise
        log.info("synchronization: no usable calibration (%s): correlating vertical speeds instead",
                 exc.problem)
        return None


def _read_cameras(folders: list[Path], n_keypoints: int, progress) -> list[tuple[np.ndarray, int]]:
    """(keypoints (F, P, K, 3) on consecutive frames, first frame number) per camera folder."""
    from .formats.openpose import list_json, read_openpose_dir

    out = []
    for i, folder in enumerate(folders):
        if not list_json(folder)[0]:
            log.warning("synchronization: %s has no JSON file: that camera cannot be synchronised", folder)
            out.append((np.full((1, 1, n_keypoints, 3), np.nan), 0))
            continue
        kp, frames, _ = read_openpose_dir(folder)
        if not np.isfinite(kp).any():  # nobody detected: an all-NaN camera of the right shape
            kp = np.full((len(frames), 1, n_keypoints, 3), np.nan)
        if kp.shape[2] != n_keypoints:
            raise OpenKinError(f"{kp.shape[2]} keypoints per person, but the pose model has {n_keypoints}",
                               path=folder, fix="set [pose] pose_model to the model that made these files")
        out.append(dense_frames(kp, frames))
        report(progress, 0.4 * (i + 1) / len(folders), f"read {folder.name}")
    return out


def run_stage(config, paths, progress=None) -> None:
    """Find each camera's offset from ``pose/<cam>_json`` and write ``pose-sync/`` (see module doc)."""
    from .triangulation.inputs import camera_name, pose_folders, skeleton_of
    from .triangulation.stage import frame_rate

    cfg = config.synchronization
    if cfg.synchronization_gui or cfg.display_sync_plots:
        log.info("synchronization_gui / display_sync_plots are ignored: OpenKin never opens windows")
    folders = pose_folders(paths.pose)
    if not folders:
        raise OpenKinError("no <cam>_json folders to synchronise", path=paths.pose,
                           fix="run the pose stage first (it writes pose/<cam>_json/*.json)")
    names = [camera_name(f) for f in folders]
    rate = frame_rate(config, paths)
    skeleton = skeleton_of(config)
    ids = keypoint_ids(list(skeleton.names), cfg.keypoints_to_consider)
    per_cam = _read_cameras(folders, len(skeleton.names), progress)
    windows, max_lag = search_windows([len(kp) for kp, _ in per_cam], rate, cfg.approx_time_maxspeed,
                                      cfg.time_range_around_maxspeed)
    windows = clip_to_frame_range(windows, [first for _, first in per_cam], config.project.frame_range)
    tracks = [prepare_tracks(kp[a:b], ids, rate, likelihood_threshold=cfg.likelihood_threshold_synchronization,
                             cutoff=cfg.filter_cutoff, order=cfg.filter_order)
              for (kp, _), (a, b) in zip(per_cam, windows)]
    starts = [first + a for (_, first), (a, _) in zip(per_cam, windows)]
    # Pose2Sim's reference: the camera with the fewest frames (among those that saw someone)
    seen = [np.isfinite(t).any() for t in tracks]
    reference = int(np.argmin([len(kp) if ok else np.inf for (kp, _), ok in zip(per_cam, seen)]))
    report(progress, 0.45, "measuring offsets")
    if len(folders) == 1:
        log.warning("synchronization: only one camera (%s): nothing to synchronise, copied as is", names[0])
        result = SyncResult(np.zeros(1), np.ones(1), *(np.full((1, 1), np.nan) for _ in range(3)),
                            np.ones((1, 1), bool), np.array([motion_level(tracks[0])]), 0, {}, "none")
    else:
        cameras = _calibrated_cameras(paths, folders, cfg.sync_method)
        heights = None if cameras else [
            image_height(kp[a:b], cfg.likelihood_threshold_synchronization) for (kp, _), (a, b) in zip(per_cam, windows)]
        people = None
        if cameras and max(kp.shape[1] for kp, _ in per_cam) > 1:  # several people: match them per frame
            people = [prepare_people(kp[a:b], ids, cfg.likelihood_threshold_synchronization)
                      for (kp, _), (a, b) in zip(per_cam, windows)]
        result = synchronize(tracks, starts, max_lag, reference, cameras, heights, rate, people)
    _warn(names, result)
    write_outputs(paths, folders, names, result, rate, progress)
    if cfg.save_sync_plots and len(folders) > 1:
        save_plot(paths.pose_sync / "synchronization.png", names, result)


def write_outputs(paths, folders: list[Path], names: list[str], result: SyncResult, rate: float,
                  progress=None) -> None:
    """``pose-sync/<cam>_json`` renamed by the integer shifts, and ``pose-sync/offsets.toml``."""
    import toml

    offsets = np.where(np.isfinite(result.offsets), result.offsets, 0.0)
    shifts = np.rint(offsets).astype(int)
    for c, (folder, name) in enumerate(zip(folders, names)):
        n = write_shifted(folder, paths.pose_sync / folder.name, int(shifts[c]))
        log.info("camera %s: offset %+.2f frames (%+.4f s), shifted %+d, confidence %.2f, %d files",
                 name, offsets[c], offsets[c] / rate, shifts[c], result.confidence[c], n)
        report(progress, 0.5 + 0.5 * (c + 1) / len(folders), f"wrote {folder.name}")
    with atomic_write(paths.pose_sync / "offsets.toml") as f:
        f.write("# Written by openkin synchronization.\n" + toml.dumps(offsets_table(names, result, shifts, rate)))


def save_plot(png: Path, names: list[str], result: SyncResult) -> Path | None:
    """Score (epipolar) or correlation curves of each camera pair against lag, offsets marked."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: no synchronization plot (pip install matplotlib)")
        return None
    from .fileio import atomic_path

    fig = Figure(figsize=(9, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    shown = sorted(result.curves.items(), key=lambda item: result.reference not in item[0])[:10]
    for (i, j), (lags, curve) in shown:  # pairs with the reference first, at most 10 curves
        line, = ax.plot(lags, curve, lw=1, label=f"{names[j]} vs {names[i]}")
        if np.isfinite(result.pair_offsets[i, j]):
            ax.axvline(result.pair_offsets[i, j], color=line.get_color(), ls="--", lw=0.8)
    ax.set_xlabel("offset (frames)")
    ax.set_ylabel("epipolar score" if result.method == "epipolar" else "Pearson r")
    found = ", ".join(f"{n} {o:+.2f}" for n, o in zip(names, result.offsets))
    ax.set_title(f"synchronization ({result.method}): {found}", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    return png

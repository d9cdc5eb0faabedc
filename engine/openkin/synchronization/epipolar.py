"""Offsets from epipolar consistency (with a calibration): at the right offset every keypoint
of one camera lies on the epipolar line of the same keypoint of the other."""
from __future__ import annotations

import logging

import numpy as np

from .correlation import Peak, find_peak
from .signals import fill_short_gaps

log = logging.getLogger(__name__)

EPIPOLAR_TAU_PX = 50.0  # epipolar distances are truncated here: above it a point is an outlier whatever the lag
# Real detectors (BlazePose on Pose2Sim's hardware-synchronised demo) leave biases that a lag of
# a frame or two partly explains: near 0, lag 0 is always among the candidates (and see
# solve.synchronised_rig_test).
ZERO_WINDOW_FRAMES = 3.0


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


def signed_epipolar_distances(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, lag: float,
                              inv_j: np.ndarray | None = None) -> np.ndarray:
    """Signed symmetric point-to-epipolar-line distances (px) when camera j's frame k shows
    camera i's frame k + lag (camera i linearly interpolated in time).

    xy_i: (F_i, P_i, K, 2), xy_j: (F_j, P_j, K, 2) undistorted px of the people seen,
    NaN = missing; F from :func:`fundamental_matrix`. Returns (F_j, P_j, P_i, K):
    every person of j against every person of i, NaN where a point is missing. ``inv_j``:
    :func:`_inverse_norms_j` of ``xy_j`` and F, when already computed.
    """
    pi = _sample(xy_i, np.arange(len(xy_j)) + lag)
    li = _homogeneous(pi) @ F.T  # epipolar lines in j of i's points: (T, P_i, K, 3)
    e = _algebraic(xy_j, li)
    inv_j = _inverse_norms_j(xy_j, F) if inv_j is None else inv_j
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_i = 1.0 / np.hypot(li[..., 0], li[..., 1])[:, None, :, :]
        return 0.5 * e * (inv_i + inv_j)


def _inverse_norms_j(xy_j: np.ndarray, F: np.ndarray) -> np.ndarray:
    """1 / |(a, b)| of the epipolar lines in camera i of camera j's points (their own, whatever
    the lag: computed once per camera pair). xy_j (T, P_j, K, 2) -> (T, P_j, 1, K)."""
    lj = _homogeneous(xy_j) @ F  # epipolar lines in i of j's points: (T, P_j, K, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 / np.hypot(lj[..., 0], lj[..., 1])[:, :, None, :]


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
    best = np.argmin(mean, axis=-1)  # the matching person of i
    total, count, mean = (_pick(x, best) for x in (total, count, mean))
    use = np.isfinite(mean)
    n = int(count[use].sum())
    return (float(total[use].sum() / n), n) if n else (np.nan, 0)


def _pick(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``x[..., index]`` element-wise: x (..., P), index (...) -> (...). (``np.take_along_axis``
    without its per-call set-up, which dominated the integer lag scan of short takes.)"""
    flat = x.reshape(-1, x.shape[-1])
    return flat[np.arange(len(flat)), index.ravel()].reshape(index.shape)


def epipolar_cost(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, lag: float, tau: float,
                  detrend_frames: int = 0, inv_j: np.ndarray | None = None) -> tuple[float, int]:
    """Robust mean epipolar distance at ``lag`` (see :func:`signed_epipolar_distances`).

    Each distance d (px) costs ``min(|d|, tau)^2`` (truncated: outliers and swaps
    cost at most tau^2). With ``detrend_frames``, each keypoint's moving median over
    that many frames is subtracted first (per person slot of camera j, matched
    frame by frame to its best fitting person of camera i): a calibration error
    biases the distances slowly as people move around, a time offset makes them
    follow the fast limb motion. Returns (mean cost, count).
    """
    d = signed_epipolar_distances(xy_i, xy_j, F, lag, inv_j)
    if detrend_frames > 1:
        d = _detrended(_matched(d, tau), detrend_frames)  # (T, P_j, 1, K)
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
    return _interp_rows(len(d), step, coarse)


def _interp_rows(n: int, step: int, coarse: np.ndarray) -> np.ndarray:
    """Rows 0, step, 2 step, ... ``coarse`` (M, C) linearly interpolated to rows 0..n-1 (n, C), all
    columns at once (the values ``np.interp`` gives per column, with its arithmetic; constant
    after the last coarse row)."""
    t = np.arange(n)
    if len(coarse) == 1:
        return np.repeat(coarse, n, axis=0)
    j = np.minimum(t // step, len(coarse) - 2)
    lo = coarse[j]
    slope = (coarse[j + 1] - lo) / float(step)
    out = slope * (t - j * step).astype(float)[:, None] + lo
    out[t >= (len(coarse) - 1) * step] = coarse[-1]
    return out


def _refine_lag(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, lag: float, tau: float,
                detrend_frames: int, zero_window: float = 0.0) -> float:
    """Sub-frame lag: a least-squares parabola through the detrended costs (see
    :func:`epipolar_cost`) at quarter-frame steps within +-1.5 frames of the integer
    ``lag``, around the best of them. When ``lag`` is within ``zero_window`` frames of 0
    the steps reach 0 too: the raw costs of the integer scan carry the calibration bias,
    which may pull a synchronised pair a frame or two away from 0."""
    lo, hi = (min(lag, 0.0), max(lag, 0.0)) if abs(lag) <= zero_window else (lag, lag)
    trial = np.arange(lo - 1.5, hi + 1.51, 0.25)
    moved = 0
    if len(xy_j) > REFINE_MAX_FRAMES:
        xy_i, xy_j, moved = _refine_window(xy_i, xy_j, int(round(lag)), int(np.ceil(hi - lo)) + 3)
    inv_j = _inverse_norms_j(xy_j, F)
    costs = np.array([epipolar_cost(xy_i, xy_j, F, t + moved, tau, detrend_frames, inv_j)[0] for t in trial])
    if not np.isfinite(costs).all():
        return lag
    k = int(np.argmin(costs))
    near = slice(max(0, k - 3), k + 4)
    a, b, _ = np.polyfit(trial[near], costs[near], 2)
    best = -b / (2 * a) if a > 0 else trial[k]
    return float(np.clip(best, max(trial[0], trial[k] - 1.0), min(trial[-1], trial[k] + 1.0)))


REFINE_MAX_FRAMES = 7200  # the sub-frame refinement of longer takes uses 2 minutes (at 60 fps) of them


def _refine_window(xy_i: np.ndarray, xy_j: np.ndarray, lag: int, margin: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The middle :data:`REFINE_MAX_FRAMES` frames of camera j's overlap with camera i at ``lag``,
    and camera i's frames they face (+- ``margin``) -> (xy_i', xy_j', m): lag L on the full
    tracks is lag L + m on the windowed ones (m an integer: the same samples, the same costs).
    The refinement's cost is then bounded (a 10-minute take spent 5 of its 6 s per camera pair
    refining on all 36,000 frames; the integer scan already found the lag)."""
    t0, t1 = max(0, -lag), min(len(xy_j), len(xy_i) - lag)  # j's frames facing i's
    a = min(max(0, t0 + (t1 - t0 - REFINE_MAX_FRAMES) // 2), len(xy_j) - REFINE_MAX_FRAMES)
    b = a + REFINE_MAX_FRAMES
    s = max(0, a + lag - margin)
    return xy_i[s:b + lag + margin], xy_j[a:b], a - s


def _detrended(d: np.ndarray, detrend_frames: int) -> np.ndarray:
    """d (T, P, 1, K) minus each column's moving median over ``detrend_frames`` frames."""
    if detrend_frames <= 1:
        return d
    flat = d.reshape(len(d), -1)
    return (flat - _moving_median(flat, detrend_frames)).reshape(d.shape)


def block_differences(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, lags_a: list[float], lag_b: float,
                      tau: float, detrend_frames: int, block_frames: int) -> tuple[np.ndarray, float, float]:
    """Paired robust costs ``min(|d|, tau)^2`` of the distances :func:`epipolar_cost` scores
    (matched to the best fitting person of camera i, each keypoint's moving median removed):
    side a, the mean over ``lags_a``; side b, at ``lag_b``. Only the points present at every
    lag count (a fractional lag loses the points beside a gap); the differences (a - b)
    are averaged over blocks of ``block_frames`` consecutive frames (the smoothed tracks
    are correlated over a few frames: block means are closer to independent).

    Returns (block means (B,) of the blocks with enough points, mean cost a, mean cost b).
    """
    inv_j = _inverse_norms_j(xy_j, F)
    d = [_matched(signed_epipolar_distances(xy_i, xy_j, F, lag, inv_j), tau) for lag in [*lags_a, lag_b]]
    ok = np.logical_and.reduce([np.isfinite(x) for x in d])  # (T, P_j, 1, K)
    if not ok.any():
        return np.zeros(0), np.nan, np.nan
    # the same points everywhere, before detrending too (a moving median over different
    # points would differ near the ends)
    cost = [np.minimum(np.abs(np.nan_to_num(_detrended(np.where(ok, x, np.nan), detrend_frames))), tau) ** 2
            for x in d]
    ca, cb = np.mean(cost[:-1], axis=0), cost[-1]
    block = max(1, int(block_frames))
    n_blocks = len(ok) // block
    per_point = ok.sum() / max(int(ok.any(axis=(1, 2, 3)).sum()), 1)  # points in a frame that has some

    def blocks(x):  # (T, P, 1, K) -> (B,) sums per block
        return x[:n_blocks * block].reshape(n_blocks, -1).sum(axis=1)

    count = blocks(ok.astype(float))
    use = count >= max(2.0, per_point * block / 3)
    n = ok.sum()
    return blocks(np.where(ok, ca - cb, 0.0))[use] / count[use], float(ca[ok].sum() / n), float(cb[ok].sum() / n)


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
    # contiguous components, broadcast as _algebraic does (the same products and sums)
    xj0, xj1 = (np.ascontiguousarray(xy_j[:, :, None, :, c]) for c in (0, 1))  # (F_j, P_j, 1, K)
    l0, l1, l2 = (np.ascontiguousarray(li[:, None, :, :, c]) for c in (0, 1, 2))  # (F_i, 1, P_i, K)
    for n, lag in enumerate(lags):  # per lag: one vectorised pass over all frames, people and keypoints
        t0, t1 = max(0, -lag), min(len(xj), len(xi) - lag)
        if t1 - t0 <= 0:
            continue
        ti, tj = slice(t0 + lag, t1 + lag, stride), slice(t0, t1, stride)
        e = xj0[tj] * l0[ti] + xj1[tj] * l1[ti] + l2[ti]
        cost, count = _truncated_cost(0.5 * e * (inv_ni[ti] + inv_nj[tj]), tau)
        if count * stride >= min_pairs:
            costs[n] = cost
    return costs


MAX_DENSE_LAGS = 2001  # more integer lags than this (long takes) are scanned coarse to fine


def _lag_scan(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, max_lag: int, tau: float,
              min_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer lags scored by :func:`_integer_lag_costs` → (lags (L,), costs (L,)).

    Up to :data:`MAX_DENSE_LAGS` lags: every lag in [-max_lag, max_lag]. Beyond (a 10-minute
    take searched over ±5 minutes has 36,001 lags, ~0.3 ms each and camera pair), coarse to
    fine, ~8× fewer evaluations: the tracks sampled every D-th frame are scanned at every lag
    (D frames apart), which finds the basins; then the full tracks are scored on that grid of
    lags (the scale of the costs, for the peak's score and prominence) and at every lag within
    ±2 D of the three best coarse minima and of 0."""
    lags = np.arange(-max_lag, max_lag + 1)
    if len(lags) <= MAX_DENSE_LAGS:
        return lags, _integer_lag_costs(xy_i, xy_j, F, lags, tau, min_pairs)
    D = -(-len(lags) // MAX_DENSE_LAGS)
    clags = np.arange(-(max_lag // D), max_lag // D + 1)
    coarse = _integer_lag_costs(xy_i[D // 2::D], xy_j[D // 2::D], F, clags, tau, max(1, min_pairs // D))
    centres = [0] + [int(clags[c]) * D for c in _best_minima(coarse, 3)]
    dense = np.unique(np.concatenate([clags * D] + [np.arange(c - 2 * D, c + 2 * D + 1) for c in centres]))
    dense = dense[(dense >= -max_lag) & (dense <= max_lag)]
    return dense, _integer_lag_costs(xy_i, xy_j, F, dense, tau, min_pairs)


def _best_minima(costs: np.ndarray, n: int) -> list[int]:
    """Indices of the ``n`` lowest local minima of ``costs`` (L,) (NaN ignored)."""
    c = np.where(np.isfinite(costs), costs, np.inf)
    left = np.r_[np.inf, c[:-1]]
    right = np.r_[c[1:], np.inf]
    minima = np.flatnonzero((c <= left) & (c <= right) & np.isfinite(c))
    return minima[np.argsort(c[minima], kind="stable")[:n]].tolist()


def geometric_offset(xy_i: np.ndarray, xy_j: np.ndarray, F: np.ndarray, max_lag: int, *, tau: float = EPIPOLAR_TAU_PX,
                     min_pairs: int = 200, detrend_frames: int = 61) -> tuple[Peak | None, np.ndarray, np.ndarray]:
    """Offset of camera j relative to camera i (j's frame k shows i's frame k + lag) by epipolar consistency.

    Every integer lag in [-max_lag, max_lag] is scored by :func:`epipolar_cost`;
    the best is refined to sub-frame by :func:`_refine_lag` (detrended costs,
    camera i's points linearly interpolated in time; within
    :data:`ZERO_WINDOW_FRAMES` of 0 the refinement reaches lag 0 too). The returned
    :class:`Peak` has ``r`` = 1 - best cost / median cost over lags (0: no
    timing information, e.g. nobody moves; 1: perfect) and ``prominence`` = its
    height above the best other local optimum, in the same units.
    Returns (peak or None, lags (L,), scores (L,)).
    """
    xy_i = xy_i[:, None] if xy_i.ndim == 3 else xy_i
    xy_j = xy_j[:, None] if xy_j.ndim == 3 else xy_j
    lags, costs = _lag_scan(xy_i, xy_j, F, int(max_lag), tau, min_pairs)
    if not np.isfinite(costs).any():
        return None, lags, costs
    scale = float(np.nanmedian(costs))
    score = 1.0 - costs / scale if scale > 0 else np.zeros(len(costs))
    peak = find_peak(lags, score)
    lag = _refine_lag(xy_i, xy_j, F, float(np.round(peak.lag)), tau, detrend_frames, ZERO_WINDOW_FRAMES)
    return Peak(lag, float(np.nanmax(score)), peak.prominence), lags, score

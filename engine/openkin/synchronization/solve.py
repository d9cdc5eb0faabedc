"""From camera pairs to camera offsets: which pairs to measure, robust least squares over all
of them, confidences; :func:`synchronize` runs it all on cleaned tracks."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..progress import report
from .correlation import correlation_pair
from .epipolar import EPIPOLAR_TAU_PX as EPIPOLAR_TAU
from .epipolar import ZERO_WINDOW_FRAMES, block_differences, fundamental_matrix, geometric_offset
from .signals import MIN_SPEED_PX, motion_level, speed_signal

ZERO_TEST_Z = 3.0  # combined evidence (Stouffer's Z over pairs) the offsets need over "all in sync"
ZERO_TEST_GAIN = 0.03  # and a relative gain in epipolar cost over "all in sync"
log = logging.getLogger(__name__)

MAX_PARTNERS = 4  # with many cameras each is measured against this many others (all pairs up to 2 x this + 1)


def camera_pairs(n: int, partners: int = MAX_PARTNERS) -> list[tuple[int, int]]:
    """Pairs (i < j) to measure: all of them for few cameras; else each camera with the
    ``partners`` next ones in a ring (N x partners pairs, every camera in 2 x partners of
    them, the graph connected), so 16 cameras cost 64 measurements instead of 120."""
    if n <= 2 * partners + 1:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    return sorted({tuple(sorted((i, (i + k) % n))) for i in range(n) for k in range(1, partners + 1)})


def pairwise_offsets(measure, n: int, starts: np.ndarray, progress=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Offsets of camera pairs (:func:`camera_pairs`). ``measure(i, j)`` -> (Peak | None,
    lags, curve) gives the offset of j's signal relative to i's; ``starts`` (N,): first
    frame of each signal in its camera's numbering.

    Returns d (N, N) with d[i, j] = offset of camera j relative to camera i (frames;
    ``d[i, j] ~= o[j] - o[i]``), r (N, N) peak scores, prominence (N, N) (NaN where
    unmeasured) and the curves {(i, j): (lags, curve)} for plots.
    """
    d, r, prom = (np.full((n, n), np.nan) for _ in range(3))
    curves = {}
    pairs = camera_pairs(n)
    for done, (i, j) in enumerate(pairs):
        report(progress, done / len(pairs), f"measuring offsets: cameras {i + 1} and {j + 1}")
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


def synchronised_rig_test(und: list[np.ndarray], cameras: list, offsets: np.ndarray, starts: np.ndarray,
                          inliers: np.ndarray, detrend_frames: int, block_frames: int) -> tuple[float, float]:
    """How much better ``offsets`` (N,) explain the views than no offsets at all.

    For every inlier pair, paired epipolar costs (detrended, see
    :func:`~.epipolar.block_differences`) with the found relative lag and with none, in
    time blocks ("none" as the mean of lags +-phi, phi the found lag's distance to the
    nearest whole frame: both sides interpolated alike); the pair's t-statistic of the mean block difference; the pairs'
    t-statistics combined as Stouffer's Z = sum(t) / sqrt(pairs) (a pair whose costs are
    noisy -- people crossing, swaps -- weighs in by its evidence, not by its cost scale).
    Returns (Z, gain), gain = ``1 - cost(found) / cost(0)`` over all pairs; (0, 0) when
    no pair has 3 blocks. und: N arrays (F_c, P, K, 2) or (F_c, K, 2) undistorted px.
    """
    ts, cost_zero, cost_found = [], 0.0, 0.0
    for i, j in zip(*np.nonzero(np.triu(inliers, 1))):
        if not (np.isfinite(offsets[i]) and np.isfinite(offsets[j])):
            continue
        xy_i = und[i][:, None] if und[i].ndim == 3 else und[i]
        xy_j = und[j][:, None] if und[j].ndim == 3 else und[j]
        F = fundamental_matrix(cameras[i], cameras[j])
        align = starts[j] - starts[i]  # signal lag that pairs equal camera frame numbers
        lag = offsets[j] - offsets[i]
        # "in sync" seen through the same linear interpolation as the fractional lag (which
        # averages two frames, so lowers the noise whatever the timing): the mean cost at +-phi
        phi = abs(lag - np.round(lag))
        zero = [align] if phi < 1e-3 else [align - phi, align + phi]
        m, c0, c1 = block_differences(xy_i, xy_j, F, zero, lag + align, EPIPOLAR_TAU, detrend_frames, block_frames)
        if len(m) < 3:
            continue
        spread = m.std(ddof=1) / np.sqrt(len(m))
        ts.append(float(np.clip(m.mean() / spread, -10, 10)) if spread > 0 else 0.0)
        cost_zero += c0
        cost_found += c1
    if not ts:
        return 0.0, 0.0
    return float(np.sum(ts) / np.sqrt(len(ts))), 1.0 - cost_found / max(cost_zero, 1e-12)


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
    rig_test: dict | None = None  # {t, cost_gain, offsets_found, kept} when :func:`prefer_synchronised` tested


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


def synchronize(tracks: list[np.ndarray], starts, max_lag: int, reference: int, cameras: list | None = None,
                heights: list[np.ndarray] | None = None, rate: float = 60.0,
                people: list[np.ndarray] | None = None, progress=None) -> SyncResult:
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
        from ..geometry import undistort_camera_points

        views = people if people is not None else tracks
        und = [undistort_camera_points(cam, t.reshape(-1, 2)).reshape(t.shape) for cam, t in zip(cameras, views)]

        def measure(i, j):
            return geometric_offset(und[i], und[j], fundamental_matrix(cameras[i], cameras[j]), max_lag,
                                    detrend_frames=int(rate) | 1)
        method = "epipolar"
    else:
        signals = [speed_signal(t, None if heights is None else h) for t, h in zip(tracks, heights or tracks)]

        def measure(i, j):
            return correlation_pair(signals[i], signals[j], max_lag)
        method = "correlation"
    d, r, prom, curves = pairwise_offsets(measure, n, starts, progress)  # progress: per camera pair (long takes)
    result = combine_pairs(d, r, prom, motion, reference, curves, method)
    if cameras is not None:
        result = prefer_synchronised(result, und, cameras, starts, rate)
    return result


def prefer_synchronised(result: SyncResult, und: list[np.ndarray], cameras: list, starts: np.ndarray,
                        rate: float) -> SyncResult:
    """All offsets set to 0 when they are small (within :data:`ZERO_WINDOW_FRAMES`) and do
    not explain the views significantly better than no offsets (:func:`synchronised_rig_test`:
    Z < :data:`ZERO_TEST_Z` or gain < :data:`ZERO_TEST_GAIN`).

    A hardware-synchronised rig must come out at 0; but real detectors' biases (BlazePose
    on Pose2Sim's demo: a few px per camera that follow the limbs) fit a lag of a frame
    or two a little better, and each pair on its own can look confident.
    """
    o = result.offsets
    known = np.isfinite(o)
    if not known.any() or np.abs(o[known]).max() > ZERO_WINDOW_FRAMES or np.abs(o[known]).max() < 1e-3:
        return result
    # ~0.25 s: the 6 Hz-smoothed tracks decorrelate within it; at least 4 blocks in short takes
    block = max(5, min(int(round(rate / 4)), min(len(u) for u in und) // 4))
    z, gain = synchronised_rig_test(und, cameras, o, starts, result.inliers, int(rate) | 1, block)
    kept = z >= ZERO_TEST_Z and gain >= ZERO_TEST_GAIN
    result.rig_test = {"z": round(float(z), 3), "cost_gain": round(float(gain), 4), "kept": bool(kept),
                       "offsets_found": [round(float(v), 4) for v in o]}
    found = ", ".join(f"{v:+.2f}" for v in o)
    if kept:
        log.info("synchronization: offsets [%s] frames explain the views better than none (Z %.1f, epipolar "
                 "cost -%.1f %%): kept", found, z, 100 * gain)
        return result
    log.info("synchronization: offsets [%s] frames do not explain the views significantly better than none "
             "(Z %.1f, needs %.1f; epipolar cost gain %.1f %%, needs %.0f %%): the cameras are taken as "
             "synchronised", found, z, ZERO_TEST_Z, 100 * gain, 100 * ZERO_TEST_GAIN)
    result.offsets = np.where(known, 0.0, o)
    return result

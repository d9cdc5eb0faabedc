"""Signals for synchronisation: the main person's cleaned 2D tracks, its image height, the
vertical-speed signal (Pose2Sim's) and how much it moves."""
from __future__ import annotations

import warnings

import numpy as np

MIN_SPEED_PX = 0.5  # px/frame: below this (see motion_level) the person hardly moves: no timing information
MAX_GAP_FRAMES = 10  # shorter detection gaps are interpolated before filtering


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
    """Linearly interpolate NaN runs of at most ``max_gap`` frames inside each column. y: (F, C).

    All columns at once (the values ``np.interp`` gives, with its arithmetic): each missing
    value between its column's previous and next valid frames p < t < n becomes
    ``(y[n] - y[p]) / (n - p) * (t - p) + y[p]``."""
    y = np.array(y, dtype=float)
    bad = np.isnan(y)
    if not bad.any():
        return y
    n_frames = len(y)
    t = np.arange(n_frames)[:, None]
    prev = np.maximum.accumulate(np.where(bad, -1, t), axis=0)  # last valid frame at or before t
    nxt = np.minimum.accumulate(np.where(bad, n_frames, t)[::-1], axis=0)[::-1]  # next valid at or after
    short = bad & (prev >= 0) & (nxt < n_frames) & (nxt - prev - 1 <= max_gap)
    rows, cols = np.nonzero(short)
    p, n = prev[rows, cols], nxt[rows, cols]
    before = y[p, cols]
    slope = (y[n, cols] - before) / (n - p).astype(float)
    y[rows, cols] = slope * (rows - p).astype(float) + before
    return y


def prepare_tracks(keypoints: np.ndarray, keypoint_ids: list[int], rate: float, *, likelihood_threshold: float,
                   cutoff: float, order: int) -> np.ndarray:
    """Cleaned 2D tracks of the main person. keypoints: (F, P, K, 3) -> (F, K', 2) px, NaN gaps.

    Largest person per frame, keypoints under the likelihood threshold dropped,
    gaps up to :data:`MAX_GAP_FRAMES` interpolated, spikes (outliers, short
    left/right swaps) removed by a Hampel filter, then a zero-phase Butterworth
    (``filter_cutoff``, ``filter_order``) as Pose2Sim smooths before correlating.
    """
    from ..filtering import filter_array, hampel

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

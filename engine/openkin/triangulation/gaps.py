"""Gaps in 3D trajectories: interpolate short ones, trim to valid sections, fill the rest.

Semantics follow Pose2Sim's triangulation:

* gaps (runs of NaN) of at most ``interp_if_gap_smaller_than`` frames (Pose2Sim
  leaves a gap alone when ``len(gap) > N``) are interpolated
  with ``scipy.interpolate.interp1d`` (``linear``, ``slinear``, ``quadratic``,
  ``cubic``; ``none`` = no interpolation); longer gaps stay NaN; nothing is
  extrapolated before the first or after the last valid frame;
* a frame is valid when at least one keypoint was triangulated (every keypoint if
  ``remove_incomplete_frames``); runs of valid frames of at least
  ``min_chunk_size`` frames are sections; ``sections_to_keep`` keeps ``all`` (from
  the first section's start to the last one's end), the ``largest``, the ``first``
  or the ``last`` one;
* remaining NaN inside the kept range are filled with ``last_value`` (forward, then
  backward fill), ``zeros``, or left as ``nan``.

Shapes: ``xyz (F,K,3)``; a keypoint's three coordinates are missing together.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy.interpolate import interp1d

log = logging.getLogger(__name__)

KINDS = ("linear", "slinear", "quadratic", "cubic", "none")
_MIN_POINTS = {"linear": 2, "slinear": 2, "quadratic": 3, "cubic": 4}


def runs(mask: np.ndarray) -> np.ndarray:
    """Runs of True in ``mask (F,)`` → ``(R,2)`` [start, stop) pairs."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


def interpolate_gaps(xyz: np.ndarray, max_gap: int, kind: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """Interpolate interior gaps of at most ``max_gap`` frames.

    ``xyz (F,K,3)`` → interpolated copy ``(F,K,3)`` and ``filled (F,K)`` bool (frames
    that were interpolated).
    """
    if kind not in KINDS:
        raise ValueError(f"interpolation kind {kind!r} not in {KINDS}")
    if kind == "linear":
        return _interpolate_linear(xyz, max_gap)
    out = xyz.copy()
    filled = np.zeros(xyz.shape[:2], bool)
    if kind == "none":
        return out, filled
    F = xyz.shape[0]
    frames = np.arange(F)
    for k in range(xyz.shape[1]):  # per keypoint: each has its own valid frames
        good = np.isfinite(xyz[:, k]).all(-1)
        n_good = int(good.sum())
        if n_good == F or n_good < _MIN_POINTS[kind]:
            continue
        gaps = runs(~good)
        interior = (gaps[:, 0] > 0) & (gaps[:, 1] < F) & (gaps[:, 1] - gaps[:, 0] <= max_gap)
        if not interior.any():
            continue
        target = np.concatenate([frames[a:b] for a, b in gaps[interior]])
        f = interp1d(frames[good], xyz[good, k], kind=kind, axis=0, assume_sorted=True)
        out[target, k] = f(target)
        filled[target, k] = True
    return out, filled


def _interpolate_linear(xyz: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`interpolate_gaps` for ``linear``, on all keypoints at once: each missing frame takes
    the straight line between the valid frames before and after it, where they are at most
    ``max_gap`` + 1 frames apart. Chosen for speed: the per-keypoint ``interp1d`` loop measured
    40-60 ms on 20,000 frames × 26 keypoints, this a few ms; the same values (tested)."""
    F = xyz.shape[0]
    good = np.isfinite(xyz).all(-1)                                           # (F,K)
    idx = np.arange(F)[:, None]
    prev = np.maximum.accumulate(np.where(good, idx, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(good, idx, F)[::-1], axis=0)[::-1]
    fill = ~good & (prev >= 0) & (nxt < F) & (nxt - prev - 1 <= max_gap)
    out = xyz.copy()
    f, k = np.nonzero(fill)
    if f.size:
        a, b = prev[f, k], nxt[f, k]
        t = ((f - a) / (b - a))[:, None]
        out[f, k] = xyz[a, k] + (xyz[b, k] - xyz[a, k]) * t
    return out, fill


def keep_sections(valid: np.ndarray, min_chunk_size: int, which: str = "all") -> tuple[int, int]:
    """Frame range ``[start, stop)`` to keep from ``valid (F,)``; ``(0, 0)`` if no section."""
    r = runs(valid)
    r = r[(r[:, 1] - r[:, 0]) >= max(int(min_chunk_size), 1)]
    if len(r) == 0:
        return 0, 0
    if which == "largest":
        a, b = r[np.argmax(r[:, 1] - r[:, 0])]
    elif which == "first":
        a, b = r[0]
    elif which == "last":
        a, b = r[-1]
    elif which == "all":
        a, b = r[0, 0], r[-1, 1]
    else:
        raise ValueError(f"sections_to_keep {which!r} not in ('all', 'largest', 'first', 'last')")
    return int(a), int(b)


def fill_large_gaps(xyz: np.ndarray, how: str) -> np.ndarray:
    """Fill remaining NaN of ``xyz (F,K,3)``: ``last_value`` (forward then backward fill;
    zeros for a keypoint never seen), ``zeros`` or ``nan`` (left as is)."""
    if how == "nan":
        return xyz
    if how == "zeros":
        return np.nan_to_num(xyz, nan=0.0)
    if how != "last_value":
        raise ValueError(f"fill_large_gaps_with {how!r} not in ('last_value', 'nan', 'zeros')")
    F = xyz.shape[0]
    good = np.isfinite(xyz[..., 0]) & np.isfinite(xyz[..., 1]) & np.isfinite(xyz[..., 2])  # (F,K)
    holes = np.flatnonzero(~good.all(0))
    if F == 0 or holes.size == 0:
        return xyz
    out = xyz.copy()
    g = good[:, holes]
    idx = np.where(g, np.arange(F)[:, None], -1)
    prev = np.maximum.accumulate(idx, axis=0)
    first = np.where(g.any(0), np.argmax(g, axis=0), 0)
    src = np.where(prev >= 0, prev, first[None])
    filled = np.take_along_axis(xyz[:, holes], src[:, :, None], axis=0)
    out[:, holes] = np.where(np.isnan(filled), 0.0, filled)
    return out

"""Clean-up of the animation skeleton's keys for animators: smoothing and key reduction.

- :func:`smooth_rotations`: a zero-phase Butterworth low-pass of the rotations, quaternion-safe:
  each bone's quaternions are first made sign-continuous (q and -q are one rotation: a filter
  over a sign flip would average to nonsense), filtered component-wise (a continuous curve on
  the unit sphere, any range of motion) and normalised back to unit quaternions.
- :func:`reduce_keys`: the frames to keep so that linear interpolation between kept keys
  reproduces every dropped sample within a tolerance (greedy, vectorised per segment): the
  builder writes only those (Blender's LINEAR keys interpolate exactly that way).
"""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, filtfilt

from .skeleton import continuous_quaternions


def smooth_quaternions(q: np.ndarray, rate: float, cutoff: float, order: int = 4) -> np.ndarray:
    """(F, 4) w, x, y, z -> (F, 4) low-passed at ``cutoff`` Hz (zero phase), sign-continuous."""
    F = len(q)
    if F < 3 * (order + 1) or cutoff >= rate / 2:
        return continuous_quaternions(q.copy())
    b, a = butter(order, cutoff / (rate / 2))
    pad = min(3 * (max(len(a), len(b)) - 1), F - 1)
    out = filtfilt(b, a, continuous_quaternions(np.asarray(q, float)), axis=0, padlen=pad)
    return continuous_quaternions(out / np.linalg.norm(out, axis=1, keepdims=True))


def smooth_rotations(rotations: np.ndarray, rate: float, cutoff: float) -> np.ndarray:
    """(F, N, 4) bone quaternions -> (F, N, 4), each bone through :func:`smooth_quaternions`."""
    return np.stack([smooth_quaternions(rotations[:, b], rate, cutoff) for b in range(rotations.shape[1])], axis=1)


def reduce_keys(frames: np.ndarray, values: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the keys to keep: (F,) frames, (F, C) values -> (K,) sorted indices, first and last
    always kept; every dropped sample is within ``tolerance`` (per component) of the straight line
    between the kept keys around it."""
    frames = np.asarray(frames, float)
    values = np.asarray(values, float).reshape(len(frames), -1)
    F = len(frames)
    if F <= 2:
        return np.arange(F)
    keep = [0]
    a = 0
    while a < F - 1:
        b = a + 1
        lo, hi = a + 1, F - 1          # largest b such that the segment a..b fits: exponential then binary search
        step = 1
        while a + step <= F - 1 and _fits(frames, values, a, a + step, tolerance):
            b = a + step
            step *= 2
        hi = min(a + step, F - 1)
        lo = b
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _fits(frames, values, a, mid, tolerance):
                lo = mid
            else:
                hi = mid
        b = hi if _fits(frames, values, a, hi, tolerance) else lo
        keep.append(b)
        a = b
    return np.array(keep)


def _fits(frames: np.ndarray, values: np.ndarray, a: int, b: int, tol: float) -> bool:
    """Does the line from key a to key b reproduce the samples between them within ``tol``?"""
    if b - a < 2:
        return True
    t = (frames[a + 1:b] - frames[a]) / (frames[b] - frames[a])
    line = values[a] + t[:, None] * (values[b] - values[a])
    return bool(np.all(np.abs(line - values[a + 1:b]) <= tol))

"""Hampel outlier rejection: a value far from its moving median (in MADs) is replaced by it."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MAD_TO_STD = 1.4826  # std of a normal distribution = 1.4826 x its median absolute deviation


def _nan_median_last(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over the last axis ignoring NaN, and the count of valid values.

    Vectorised: sort (NaN go last), then pick the middle of the valid part; windows
    without NaN (nearly all) take the fixed middle, only the others need an
    index per window. a: (..., W) -> ((...), (...)).
    """
    s = np.sort(a, axis=-1)
    w = a.shape[-1]
    count = w - np.isnan(s).sum(axis=-1)
    med = 0.5 * (s[..., (w - 1) // 2] + s[..., w // 2])
    short = count < w
    if short.any():
        part, n = s[short], count[short]
        lo = np.clip((n - 1) // 2, 0, None)[:, None]
        hi = np.clip(n // 2, 0, w - 1)[:, None]
        med[short] = np.where(n > 0, 0.5 * (np.take_along_axis(part, lo, -1) + np.take_along_axis(part, hi, -1))[:, 0],
                              np.nan)
    return med, count


def hampel_mask(x: np.ndarray, window_size: int = 7, n_sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Outlier flags and moving medians of each column of x.

    x: (F, C) float, NaN = missing. A value is an outlier when
    ``|x - median| > n_sigma * 1.4826 * MAD`` over the centred window of
    ``window_size`` frames (fewer at the ends; at least 3 valid values; MAD > 0).
    Returns (flags (F, C) bool, medians (F, C)).
    """
    half = int(window_size) // 2
    padded = np.pad(x, ((half, half), (0, 0)), constant_values=np.nan)
    windows = sliding_window_view(padded, 2 * half + 1, axis=0)  # (F, C, W), a view: no copy
    med, count = _nan_median_last(windows)
    mad, _ = _nan_median_last(np.abs(windows - med[..., None]))
    with np.errstate(invalid="ignore"):
        flags = (count >= 3) & (mad > 0) & (np.abs(x - med) > n_sigma * MAD_TO_STD * mad)
    return flags, med


def hampel(x: np.ndarray, window_size: int = 7, n_sigma: float = 2.0) -> np.ndarray:
    """Replace outliers by their moving median (Pose2Sim's window 7, 2 sigma, vectorised).

    x: (F, M, D) points (a point is an outlier if any of its coordinates is, and
    then all its coordinates are replaced: a bad triangulation moves the whole
    point), or (F, ...) columns treated one by one. NaN stay NaN. Returns a copy.
    """
    x = np.asarray(x, dtype=float)
    cols = x.reshape(x.shape[0], -1)
    flags, med = hampel_mask(cols, window_size, n_sigma)
    if x.ndim == 3:
        flags = np.repeat(flags.reshape(x.shape).any(axis=2), x.shape[2], axis=1)
    out = cols.copy()
    out[flags] = med[flags]
    return out.reshape(x.shape)

"""Offsets from the correlation of speed signals (no calibration needed): pooled Pearson
correlation at every lag by FFT with gaps masked, sub-frame peak."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal


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

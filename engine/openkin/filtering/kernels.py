"""Smoothing kernels on ``(F, ...)`` arrays sampled at ``rate`` Hz, NaN = missing.

Each kernel filters along axis 0 (time), every other axis is a batch of
independent columns (markers x coordinates, or joint angles). NaN gaps are kept:
each contiguous segment is filtered on its own. Parameter names are Pose2Sim's
``[filtering.<type>]`` keys so the stage passes a config section straight in.

Cut-off -> smoothing-parameter mapping shared by ``gcv_spline`` and
``acc_minimizing``: both minimise ``|y - z|^2 + lam |D2 z|^2`` (a penalty on
the second derivative, in frames), whose transfer function on a long series is
``1 / (1 + lam (2 sin(pi f / rate))^4) ~= 1 / (1 + lam (2 pi f / rate)^4)``; the
gain is 1/2 at ``f = cut_off`` when ``lam = (rate / (2 pi cut_off))^4``
(the mapping Pose2Sim uses too).
"""
from __future__ import annotations

import functools
import logging

import numpy as np
from scipy import linalg, ndimage, signal
from scipy.interpolate import make_smoothing_spline

from ..errors import OpenKinError
from ._segments import apply_segments

log = logging.getLogger(__name__)


def _check_cutoff(cut_off_frequency: float, rate: float, name: str) -> float:
    fc = float(cut_off_frequency)
    if not 0 < fc < rate / 2:
        raise OpenKinError(f"{name}: cut-off frequency {fc} Hz must be between 0 and half the frame rate ({rate / 2} Hz)",
                           fix=f"set [filtering.{name}] cut_off_frequency below {rate / 2} Hz")
    return fc


def butter_sos(rate: float, cut_off_frequency: float, order: int, name: str = "butterworth",
               double_pass_correction: bool = True) -> np.ndarray:
    """Second-order sections of a low-pass Butterworth applied forward and backward.

    ``order`` is the order of the whole zero-phase filter (as Pose2Sim: each pass
    has order/2). With ``double_pass_correction`` the single-pass cut-off is raised
    by Winter's factor ``(2**(1/2) - 1) ** (-1 / (2 n))`` so that ``cut_off_frequency``
    is the true -3 dB point of the forward-backward filter (Pose2Sim's filter is at
    -6 dB there: it smooths slightly more).
    """
    n = max(1, int(round(int(order) / 2)))
    fc = _check_cutoff(cut_off_frequency, rate, name)
    if double_pass_correction:
        fc = fc / (np.sqrt(2.0) - 1.0) ** (1.0 / (2 * n))
        fc = min(fc, 0.49 * rate)
    return signal.butter(n, fc, btype="low", fs=rate, output="sos")


def _sos_padlen(sos: np.ndarray) -> int:
    """The pad length ``sosfiltfilt`` uses by default for ``sos``."""
    ntaps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * ntaps


def butterworth(x: np.ndarray, rate: float, cut_off_frequency: float = 6.0, order: int = 4,
                double_pass_correction: bool = True) -> np.ndarray:
    """Zero-phase low-pass Butterworth (``scipy.signal.sosfiltfilt``). x: (F, ...) -> (F, ...).

    Segments shorter than the filter's pad length + 1 (10 frames at order 4) are
    left unfiltered. One call covers all columns of a segment: milliseconds for
    600 frames x 26 markers.
    """
    sos = butter_sos(rate, cut_off_frequency, order, "butterworth", double_pass_correction)
    return apply_segments(x, lambda seg: signal.sosfiltfilt(sos, seg, axis=0), _sos_padlen(sos) + 1)


def butterworth_on_speed(x: np.ndarray, rate: float, cut_off_frequency: float = 10.0, order: int = 4,
                         double_pass_correction: bool = True) -> np.ndarray:
    """Butterworth on the frame-to-frame speed, integrated back from each segment's first value.

    Keeps sharp movements better than filtering positions, but the integral can
    drift from the data by the end of a long segment. x: (F, ...) -> (F, ...).
    """
    sos = butter_sos(rate, cut_off_frequency, order, "butterworth_on_speed", double_pass_correction)

    def kernel(seg: np.ndarray) -> np.ndarray:
        speed = signal.sosfiltfilt(sos, np.diff(seg, axis=0), axis=0)
        return seg[:1] + np.concatenate([np.zeros_like(seg[:1]), np.cumsum(speed, axis=0)])

    return apply_segments(x, kernel, _sos_padlen(sos) + 2)


def gaussian(x: np.ndarray, rate: float, sigma_kernel: float = 1.0) -> np.ndarray:
    """Gaussian-weighted moving average, ``sigma_kernel`` in frames. x: (F, ...) -> (F, ...)."""
    sigma = float(sigma_kernel)
    if sigma <= 0:
        raise OpenKinError(f"gaussian: sigma_kernel must be > 0, got {sigma}", fix="set [filtering.gaussian] sigma_kernel = 1")
    return apply_segments(x, lambda seg: ndimage.gaussian_filter1d(seg, sigma, axis=0, mode="nearest"), 1)


def median(x: np.ndarray, rate: float, kernel_size: int = 3) -> np.ndarray:
    """Moving median over ``kernel_size`` frames (odd), edges repeated. x: (F, ...) -> (F, ...)."""
    k = int(kernel_size)
    if k < 1 or k % 2 == 0:
        raise OpenKinError(f"median: kernel_size must be a positive odd integer, got {kernel_size}",
                           fix="set [filtering.median] kernel_size = 3")
    return apply_segments(x, lambda seg: ndimage.median_filter(seg, size=(k, 1), mode="nearest"), 1)


@functools.lru_cache(maxsize=32)
def _loess_operator(n: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Local-linear LOESS on ``n`` equally spaced frames with ``q`` neighbours.

    Returns window indices (n, q) and weights (n, q) such that the fit at frame i
    is ``sum_j weights[i, j] * y[index[i, j]]``. Cleveland's definition: tricube
    weights of the distance divided by the distance to the q-th nearest frame.
    """
    i = np.arange(n)
    start = np.clip(i - q // 2, 0, n - q)
    index = start[:, None] + np.arange(q)[None, :]
    d = (index - i[:, None]).astype(float)
    radius = np.abs(d).max(axis=1, keepdims=True)
    w = np.clip(1.0 - (np.abs(d) / radius) ** 3, 0.0, None) ** 3
    s0, s1, s2 = w.sum(1, keepdims=True), (w * d).sum(1, keepdims=True), (w * d * d).sum(1, keepdims=True)
    weights = w * (s2 - s1 * d) / (s0 * s2 - s1 * s1)
    return index, weights


def loess(x: np.ndarray, rate: float, nb_values_used: int = 5) -> np.ndarray:
    """LOESS (local linear regression, tricube kernel) over ``nb_values_used`` frames.

    Vectorised: the smoother is a fixed (n, q) stencil applied to every column at
    once. Pose2Sim calls statsmodels' lowess with the same window (frac = q / n,
    no robustness iterations). x: (F, ...) -> (F, ...).
    """
    q = int(nb_values_used)
    if q < 3:
        raise OpenKinError(f"loess: nb_values_used must be >= 3, got {nb_values_used}",
                           fix="set [filtering.loess] nb_values_used = 5")

    def kernel(seg: np.ndarray) -> np.ndarray:
        index, weights = _loess_operator(len(seg), min(q, len(seg)))
        return np.einsum("nq,nqc->nc", weights, seg[index])

    return apply_segments(x, kernel, 3)


def cutoff_to_lambda(rate: float, cut_off_frequency: float) -> float:
    """Second-derivative penalty giving gain 1/2 at ``cut_off_frequency`` (see module doc)."""
    return (rate / (2.0 * np.pi * cut_off_frequency)) ** 4


def gcv_spline(x: np.ndarray, rate: float, cut_off_frequency: float | str = "auto",
               smoothing_factor: float = 1.0) -> np.ndarray:
    """Cubic smoothing spline (``scipy.interpolate.make_smoothing_spline``). x: (F, ...) -> (F, ...).

    ``cut_off_frequency='auto'``: lambda chosen per column by generalised
    cross-validation, times ``smoothing_factor`` (>1 smoother), kept within the
    lambdas of 1-30 Hz cut-offs. A number: lambda from the cut-off (see module doc),
    one batched solve for all columns; ``smoothing_factor`` is then ignored.
    """
    if isinstance(cut_off_frequency, str):
        if cut_off_frequency != "auto":
            raise OpenKinError(f"gcv_spline: cut_off_frequency must be 'auto' or a number, got {cut_off_frequency!r}",
                               fix="set [filtering.gcv_spline] cut_off_frequency = 'auto'")
        return apply_segments(x, lambda seg: _gcv_auto(seg, rate, float(smoothing_factor)), 5)
    lam = cutoff_to_lambda(rate, _check_cutoff(cut_off_frequency, rate, "gcv_spline"))

    def kernel(seg: np.ndarray) -> np.ndarray:
        t = np.arange(len(seg), dtype=float)
        return make_smoothing_spline(t, seg, lam=lam)(t)

    return apply_segments(x, kernel, 5)


def _spline_fit(t: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Values at t of the smoothing spline of y (L, C) with penalty lam."""
    return make_smoothing_spline(t, y, lam=lam)(t)


@functools.lru_cache(maxsize=256)
def _exact_hat_trace(m: int, lam: float) -> float:
    """Trace of the (m, m) hat matrix of the smoothing spline with penalty lam (fit of the identity)."""
    t = np.arange(m, dtype=float)
    return float(np.trace(make_smoothing_spline(t, np.eye(m), lam=lam)(t)))


def _hat_trace(n: int, lam: float) -> float:
    """Trace of the smoothing spline's hat matrix on n unit-spaced points.

    Exact (fit of the identity) up to 256 points; beyond, extrapolated linearly
    from 128 and 256 points: the trace grows linearly with n once n is well
    above the smoother's width (error < 0.1 % at 600 frames, 1-30 Hz).
    """
    exact = functools.partial(_exact_hat_trace, lam=lam)
    if n <= 256:
        return exact(n)
    lo, hi = exact(128), exact(256)
    return hi + (n - 256) * (hi - lo) / 128


def _gcv_auto(seg: np.ndarray, rate: float, smoothing_factor: float, n_grid: int = 25) -> np.ndarray:
    """GCV smoothing spline of each column of seg (L, C), with its own lambda.

    GCV(lam) = L |y - S y|^2 / (L - tr S)^2 is evaluated for all columns at once on
    a log grid of ``n_grid`` lambdas spanning the 30 Hz .. 1 Hz cut-offs (about 15 %
    steps in cut-off; the range bounds GCV's answer as Pose2Sim clips it). Every fit
    is a public ``make_smoothing_spline(..., lam=)`` call. (scipy's own lam=None
    search takes ~13 s for 600 frames x 78 columns; this takes ~0.3 s.)
    """
    n = len(seg)
    t = np.arange(n, dtype=float)
    centre = np.median(seg, axis=0)
    mad = np.median(np.abs(seg - centre), axis=0)
    scale = np.where(mad > 0, 1.4826 * mad, 1.0)
    yn = (seg - centre) / scale  # GCV is scale-free; this keeps the solves well conditioned
    lams = np.geomspace(cutoff_to_lambda(rate, min(30.0, 0.45 * rate)), cutoff_to_lambda(rate, 1.0), n_grid)
    best_score = np.full(seg.shape[1], np.inf)
    best_fit = np.empty_like(yn)
    best_index = np.zeros(seg.shape[1], dtype=int)
    for g, lam in enumerate(lams):  # a short grid; each step is batched over columns
        fit = _spline_fit(t, yn, float(lam))
        score = n * ((yn - fit) ** 2).sum(axis=0) / max(n - _hat_trace(n, float(lam)), 1e-9) ** 2
        better = score < best_score
        best_score[better], best_fit[:, better], best_index[better] = score[better], fit[:, better], g
    if smoothing_factor != 1.0:
        for g in np.unique(best_index):  # refit with the biased lambda, one batched call per grid value
            which = best_index == g
            best_fit[:, which] = _spline_fit(t, yn[:, which], float(lams[g] * smoothing_factor))
    return best_fit * scale + centre


def _second_difference_gram(n: int, lam: float) -> np.ndarray:
    """Upper banded form (3, n) of ``I + lam * D2^T D2`` for ``linalg.solveh_banded``."""
    ab = np.zeros((3, n))
    diag = np.zeros(n)
    diag[:n - 2] += 1.0
    diag[1:n - 1] += 4.0
    diag[2:] += 1.0
    off1 = np.zeros(n - 1)
    off1[:n - 2] -= 2.0
    off1[1:] -= 2.0
    ab[2] = 1.0 + lam * diag
    ab[1, 1:] = lam * off1
    ab[0, 2:] = lam
    return ab


def acc_minimizing(x: np.ndarray, rate: float, cut_off_frequency: float = 6.0) -> np.ndarray:
    """Whittaker-Henderson smoother: minimise ``|y - z|^2 + lam |second difference of z|^2``.

    Minimises accelerations (smooth velocities and accelerations, blunted peaks).
    ``lam = (rate / (2 pi cut_off))^4`` (gain 1/2 at the cut-off, module doc).
    One banded Cholesky solve (``scipy.linalg.solveh_banded``) per segment for all
    columns at once: O(F). x: (F, ...) -> (F, ...).
    """
    lam = cutoff_to_lambda(rate, _check_cutoff(cut_off_frequency, rate, "acc_minimizing"))

    def kernel(seg: np.ndarray) -> np.ndarray:
        return linalg.solveh_banded(_second_difference_gram(len(seg), lam), seg, check_finite=False)

    return apply_segments(x, kernel, 3)

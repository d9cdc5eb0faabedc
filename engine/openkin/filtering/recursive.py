"""Recursive filters: Kalman (+ Rauch-Tung-Striebel smoother) and One-Euro.

Both are vectorised across columns: the time loop runs once per segment with
every marker coordinate advanced together. x: (F, ...) -> (F, ...), NaN gaps
kept (each segment filtered on its own).
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import OpenKinError
from ._segments import apply_segments


def _constant_acceleration(dt: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Transition F (3, 3) of state (position, velocity, acceleration) and process noise Q (3, 3).

    Q is the discrete white-noise model with acceleration increments of variance q
    (Bar-Shalom's piecewise-constant white acceleration, third order).
    """
    F = np.array([[1.0, dt, 0.5 * dt * dt], [0.0, 1.0, dt], [0.0, 0.0, 1.0]])
    g = np.array([0.5 * dt * dt, dt, 1.0])
    return F, q * np.outer(g, g)


@functools.lru_cache(maxsize=16)
def _kalman_gains(n: int, rate: float, trust_ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data-independent gains for n steps: Kalman K (n, 3), RTS G (n, 3, 3), transition F (3, 3).

    Measurement variance 1, process variance trust_ratio**2 (Pose2Sim: process noise
    = trust_ratio x measurement noise). All columns share the model, so covariances
    and gains are computed once per segment length, not per column.
    """
    F, Q = _constant_acceleration(1.0 / rate, float(trust_ratio) ** 2)
    P = np.diag([1.0, rate ** 2, rate ** 4])  # loose prior on velocity and acceleration
    K = np.empty((n, 3))
    G = np.empty((n, 3, 3))
    P_filt = np.empty((n, 3, 3))
    P_pred = np.empty((n, 3, 3))
    for t in range(n):  # n tiny 3x3 steps, shared by every column
        if t > 0:
            P = F @ P @ F.T + Q
        P_pred[t] = P
        K[t] = P[:, 0] / (P[0, 0] + 1.0)
        P = P - np.outer(K[t], P[0, :])
        P_filt[t] = P
    for t in range(n - 1):
        G[t] = P_filt[t] @ F.T @ np.linalg.inv(P_pred[t + 1])
    return K, G, F


def _kalman_segment(seg: np.ndarray, rate: float, trust_ratio: float, smooth: bool) -> np.ndarray:
    """Kalman filter (+ RTS smoother) of seg (L, C) with a constant-acceleration model."""
    n = len(seg)
    K, G, F = _kalman_gains(_bucket(n), rate, trust_ratio)
    state = np.zeros((seg.shape[1], 3))
    state[:, 0] = seg[0]
    filt = np.empty((n, seg.shape[1], 3))
    pred = np.empty_like(filt)
    for t in range(n):
        if t > 0:
            state = state @ F.T
        pred[t] = state
        state = state + (seg[t] - state[:, 0])[:, None] * K[t]
        filt[t] = state
    if not smooth:
        return filt[:, :, 0]
    smoothed = filt[-1]
    out = np.empty_like(seg)
    out[-1] = smoothed[:, 0]
    for t in range(n - 2, -1, -1):
        smoothed = filt[t] + (smoothed - pred[t + 1]) @ G[t].T
        out[t] = smoothed[:, 0]
    return out


def _bucket(n: int) -> int:
    """Round segment lengths up so gains are cached for few lengths (gains are prefix-stable)."""
    return max(64, 1 << (int(n) - 1).bit_length())


def kalman(x: np.ndarray, rate: float, trust_ratio: float = 500.0, smooth: bool = True) -> np.ndarray:
    """Constant-acceleration Kalman filter, with a Rauch-Tung-Striebel smoother if ``smooth``.

    ``trust_ratio``: how much more the measurements are trusted than the model
    (process noise std / measurement noise std), as Pose2Sim's. ``smooth=False``
    is the causal (real-time) filter, which lags. x: (F, ...) -> (F, ...).
    """
    if float(trust_ratio) <= 0:
        raise OpenKinError(f"kalman: trust_ratio must be > 0, got {trust_ratio}", fix="set [filtering.kalman] trust_ratio = 500")
    return apply_segments(x, lambda seg: _kalman_segment(seg, float(rate), float(trust_ratio), bool(smooth)), 2)


def _one_euro_pass(seg: np.ndarray, rate: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    """One causal One-Euro pass over seg (L, C), all columns at once."""
    dt = 1.0 / rate

    def alpha(cutoff):
        r = 2.0 * np.pi * cutoff * dt
        return r / (r + 1.0)

    a_d = alpha(d_cutoff)
    out = np.empty_like(seg)
    out[0] = prev = seg[0]
    d_prev = np.zeros(seg.shape[1])
    for t in range(1, len(seg)):
        d_prev = a_d * (seg[t] - prev) / dt + (1.0 - a_d) * d_prev
        a = alpha(min_cutoff + beta * np.abs(d_prev))
        prev = a * seg[t] + (1.0 - a) * prev
        out[t] = prev
    return out


def one_euro(x: np.ndarray, rate: float, cut_off_frequency: float = 4.0, beta: float = 1.5,
             d_cut_off_frequency: float = 1.0) -> np.ndarray:
    """Zero-phase One-Euro filter: a causal pass forward, then one backward (as Pose2Sim).

    Cut-off adapts to speed: ``cut_off_frequency + beta * |filtered speed|``
    (speed in data units per second). x: (F, ...) -> (F, ...).
    """
    fc, dfc = float(cut_off_frequency), float(d_cut_off_frequency)
    if fc <= 0 or dfc <= 0 or float(beta) < 0:
        raise OpenKinError("one_euro: cut_off_frequency and d_cut_off_frequency must be > 0 and beta >= 0",
                           fix="set [filtering.one_euro] cut_off_frequency = 4, beta = 1.5, d_cut_off_frequency = 1")

    def kernel(seg: np.ndarray) -> np.ndarray:
        forward = _one_euro_pass(seg, rate, fc, float(beta), dfc)
        return _one_euro_pass(forward[::-1], rate, fc, float(beta), dfc)[::-1]

    return apply_segments(x, kernel, 2)

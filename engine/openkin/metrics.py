"""Error metrics of 3D keypoints and joint angles, as pure NaN-aware kernels.

Definitions (as EM-POSE reports them, Kaufmann et al. 2021):

- **MPJPE**: per frame, the mean Euclidean distance between predicted and true
  keypoints (over the keypoints present in both); then the mean over frames, with
  the standard deviation over frames.
- **PA-MPJPE**: the same after aligning each frame's prediction to the truth with
  the similarity transform (rotation, translation and uniform scale) that
  minimises the squared error (Umeyama 1991): what remains is pose error, not
  placement, orientation or size.
- **MPJAE** for joint-angle coordinates (an OpenSim ``.mot``): per frame, the mean
  absolute difference over the rotational coordinates, wrapped to ±180°; then the
  mean over frames, with the std over frames. (EM-POSE's MPJAE is the geodesic
  angle between joint rotation matrices; for OpenSim's one-angle-per-coordinate
  output the per-coordinate absolute difference is the natural equivalent.)
"""
from __future__ import annotations

import numpy as np


def joint_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Euclidean distance per frame and keypoint. (F, K, 3), (F, K, 3) → (F, K); NaN if either is missing."""
    return np.linalg.norm(np.asarray(pred, float) - np.asarray(truth, float), axis=-1)


def frame_means(errors: np.ndarray) -> np.ndarray:
    """Mean over the keypoints present in each frame. (F, K) → (F,), NaN for frames with none."""
    errors = np.asarray(errors, dtype=float)
    ok = np.isfinite(errors)
    n = ok.sum(axis=1)
    total = np.where(ok, errors, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def similarity_align(pred: np.ndarray, truth: np.ndarray, scale: bool = True) -> np.ndarray:
    """Align each frame of ``pred`` onto ``truth`` with the least-squares similarity
    transform (Umeyama), using the keypoints present in both; vectorised over frames
    with one batched 3×3 SVD. (F, K, 3), (F, K, 3) → (F, K, 3); frames with fewer
    than 3 common keypoints are NaN; keypoints missing in ``pred`` stay NaN.
    """
    pred = np.asarray(pred, dtype=float)
    truth = np.asarray(truth, dtype=float)
    w = (np.isfinite(pred).all(-1) & np.isfinite(truth).all(-1)).astype(float)[..., None]  # (F, K, 1)
    n = w.sum(axis=1)  # (F, 1)
    p = np.where(w > 0, pred, 0.0)
    g = np.where(w > 0, truth, 0.0)
    safe_n = np.maximum(n, 1.0)[:, None]
    mu_p = (w * p).sum(axis=1, keepdims=True) / safe_n
    mu_g = (w * g).sum(axis=1, keepdims=True) / safe_n
    p0 = (p - mu_p) * w
    g0 = (g - mu_g) * w
    cov = np.einsum("fki,fkj->fij", g0, p0) / safe_n  # (F, 3, 3)
    U, S, Vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    D = np.ones_like(S)
    D[:, 2] = np.where(d == 0, 1.0, d)
    R = np.einsum("fij,fj,fjk->fik", U, D, Vt)
    if scale:
        var_p = (p0 ** 2).sum(axis=(1, 2)) / safe_n[:, 0, 0]
        s = (S * D).sum(axis=1) / np.where(var_p > 0, var_p, np.nan)
    else:
        s = np.ones(len(pred))
    aligned = s[:, None, None] * np.einsum("fij,fkj->fki", R, pred - mu_p) + mu_g
    aligned[n[:, 0] < 3] = np.nan
    return aligned


def angle_errors(pred: np.ndarray, truth: np.ndarray, period: float = 360.0) -> np.ndarray:
    """Absolute angle differences wrapped to [0, period/2]. (F, C), (F, C) → (F, C) (NaN if missing)."""
    diff = np.asarray(pred, float) - np.asarray(truth, float)
    return np.abs((diff + period / 2) % period - period / 2)


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """(mean, std) over the finite values of a (N,) array; NaN, NaN if none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())


def mpjpe(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame MPJPE in the input's units. (F, K, 3), (F, K, 3) → (F,)."""
    return frame_means(joint_errors(pred, truth))


def pa_mpjpe(pred: np.ndarray, truth: np.ndarray, scale: bool = True) -> np.ndarray:
    """Per-frame MPJPE after similarity (Procrustes, with scale) alignment. → (F,)."""
    return frame_means(joint_errors(similarity_align(pred, truth, scale=scale), truth))


def mpjae(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame mean absolute angle error over coordinates (degrees in → degrees out). (F, C) → (F,)."""
    return frame_means(angle_errors(pred, truth))

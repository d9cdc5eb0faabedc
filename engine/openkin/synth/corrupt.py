"""Corruptions that imitate real 2D detectors, as pure kernels on arrays.

Every kernel takes an explicit ``numpy.random.Generator`` and scalars, and works on
one camera's detections: ``uv (F, P, K, 2)`` pixels (NaN = not detected) and
``conf (F, P, K)`` in [0, 1]. Masks returned are what the truth records, so later
stages can be tested against them (e.g. "swapped frames were corrected").
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..skeletons import Skeleton


def white_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Independent Gaussian pixel noise, std ``sigma`` px per axis. → ``shape + (2,)``."""
    return rng.normal(0.0, sigma, size=shape + (2,)) if sigma > 0 else np.zeros(shape + (2,))


def correlated_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float,
                     corr_frames: float) -> np.ndarray:
    """Gaussian noise correlated in time (axis 0), std ``sigma`` px per axis.

    White noise smoothed by a Gaussian kernel of std ``corr_frames`` frames and
    rescaled by the kernel's L2 norm, so the marginal std stays ``sigma`` — the slow
    wobble of a real detector, which averaging over a few frames does not remove.
    → ``shape + (2,)``.
    """
    if sigma <= 0:
        return np.zeros(shape + (2,))
    if corr_frames <= 0:
        return white_noise(rng, shape, sigma)
    white = rng.normal(0.0, 1.0, size=shape + (2,))
    smooth = gaussian_filter1d(white, corr_frames, axis=0, mode="wrap")
    impulse = np.zeros(int(8 * corr_frames) + 1)
    impulse[len(impulse) // 2] = 1.0
    gain = np.sqrt(np.sum(gaussian_filter1d(impulse, corr_frames, mode="constant") ** 2))
    return smooth * (sigma / gain)


def confidences(rng: np.random.Generator, shape: tuple[int, ...], mean: float, spread: float) -> np.ndarray:
    """Detector confidences ~ N(mean, spread) clipped to [0.05, 1]. → ``shape``."""
    return np.clip(rng.normal(mean, spread, size=shape), 0.05, 1.0)


def run_mask(rng: np.random.Generator, n_frames: int, n_series: int, rate: float,
             mean_len: float) -> np.ndarray:
    """Random runs of consecutive frames covering about ``rate`` of each series.

    Run lengths ~ 1 + Poisson(mean_len - 1); starts uniform. → (F, S) bool.
    """
    mask = np.zeros((n_frames, n_series), dtype=bool)
    if rate <= 0 or n_frames == 0:
        return mask
    n_runs = rng.poisson(rate * n_frames * n_series / max(mean_len, 1.0))
    series = rng.integers(0, n_series, n_runs)
    starts = rng.integers(0, n_frames, n_runs)
    lengths = 1 + rng.poisson(max(mean_len - 1.0, 0.0), n_runs)
    for s, a, n in zip(series, starts, lengths):
        mask[a:a + n, s] = True
    return mask


def frame_runs(rng: np.random.Generator, n_frames: int, fraction: float, len_range: tuple[int, int]) -> np.ndarray:
    """Frames grouped in runs of ``len_range`` frames covering ~``fraction`` of them. → (F,) bool."""
    mask = np.zeros(n_frames, dtype=bool)
    target = int(round(fraction * n_frames))
    for _ in range(10 * n_frames):  # bounded: stops once the target is covered
        if mask.sum() >= target:
            break
        n = int(rng.integers(len_range[0], len_range[1] + 1))
        a = int(rng.integers(0, max(n_frames - n, 1)))
        mask[a:a + n] = True
    return mask


def mirror_index(skeleton: Skeleton) -> np.ndarray:
    """Index of each keypoint's left/right counterpart (itself if none). → (K,) int."""
    names = list(skeleton.names)
    out = np.arange(len(names))
    for i, n in enumerate(names):
        if n[:1] in "LR" and n[1:2].isupper():
            other = ("R" if n[0] == "L" else "L") + n[1:]
            if other in names:
                out[i] = names.index(other)
    return out


def swap_left_right(uv: np.ndarray, conf: np.ndarray, frames: np.ndarray, mirror: np.ndarray) -> None:
    """Swap every left/right keypoint pair in the given frames, in place.

    ``uv``: (F, P, K, 2); ``conf``: (F, P, K); ``frames``: (F,) or (F, P) bool; ``mirror``: (K,).
    """
    sel = frames if frames.ndim == 2 else np.repeat(frames[:, None], uv.shape[1], axis=1)
    uv[sel] = uv[sel][:, mirror]
    conf[sel] = conf[sel][:, mirror]


def occlusion_wrong_points(rng: np.random.Generator, uv: np.ndarray, conf: np.ndarray, mask: np.ndarray,
                           mirror: np.ndarray, jitter_px: float, conf_range: tuple[float, float]) -> None:
    """Occluded keypoints still returned, at a wrong place with medium confidence (in place).

    The detector confuses the hidden joint with a visible one: its counterpart on
    the other side (or, for central keypoints, a random other keypoint of the same
    person), plus ``jitter_px`` Gaussian jitter. ``mask``: (F, P, K) bool.
    """
    f, p, k = np.nonzero(mask)
    if len(f) == 0:
        return
    other = mirror[k].copy()
    central = other == k
    other[central] = (k[central] + rng.integers(1, uv.shape[2], central.sum())) % uv.shape[2]
    uv[f, p, k] = uv[f, p, other] + rng.normal(0.0, jitter_px, (len(f), 2))
    conf[f, p, k] = rng.uniform(*conf_range, len(f))


def gross_outliers(rng: np.random.Generator, uv: np.ndarray, conf: np.ndarray, rate: float,
                   px_range: tuple[float, float], conf_range: tuple[float, float]) -> np.ndarray:
    """Move a fraction ``rate`` of detected points by ``px_range`` px in a random direction,
    with high confidence (in place). → (F, P, K) bool mask of outliers."""
    mask = (rng.random(conf.shape) < rate) & np.isfinite(uv[..., 0])
    n = int(mask.sum())
    if n:
        angle = rng.uniform(0, 2 * np.pi, n)
        dist = rng.uniform(*px_range, n)
        uv[mask] += np.stack([np.cos(angle), np.sin(angle)], axis=1) * dist[:, None]
        conf[mask] = rng.uniform(*conf_range, n)
    return mask


def outside_image(uv: np.ndarray, depth: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    """Points behind the camera or outside the image. ``uv`` (..., 2), ``depth`` (...) → (...) bool."""
    w, h = size
    with np.errstate(invalid="ignore"):
        inside = (uv[..., 0] >= 0) & (uv[..., 0] <= w - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= h - 1)
        return ~(inside & (depth > 0.1))

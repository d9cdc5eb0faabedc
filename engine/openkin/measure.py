"""Body measurements from a trial itself (no static trial): frame selection, trimmed
means of marker distances, participant height.

As Pose2Sim: frames where the person crouches (mean hip/knee flexion beyond
``large_hip_knee_angles``) are left out, because keypoints are least reliable
there, and the ``trimmed_extrema_percent`` most extreme values are dropped before
averaging. OpenKin also leaves out the 10 % fastest frames (motion blur, lag
between cameras) and frozen frames (zero speed: a person out of view whose last
position is repeated), as Pose2Sim's documentation describes.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

log = logging.getLogger(__name__)

MIN_FRAMES = 50          # keep at least this many frames (the least crouched ones) when selecting
FAST_PERCENTILE = 90.0   # frames faster than this percentile of the speed are left out
FROZEN_SPEED = 1e-7      # m/frame: a frame whose markers did not move at all


def trimmed_mean(values: np.ndarray, trimmed_extrema_percent: float) -> float:
    """Mean of the finite ``values`` (N,) without the ``trimmed_extrema_percent`` % most extreme
    (half at each end). NaN when nothing is finite."""
    v = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    if v.size == 0:
        return float("nan")
    cut = int(v.size * trimmed_extrema_percent / 200.0)
    kept = v[cut:v.size - cut] if v.size - 2 * cut > 0 else v
    return float(kept.mean())


def distances(xyz: np.ndarray, names: list[str], pairs: list[tuple[str, str]]) -> np.ndarray:
    """Per-frame distances of marker pairs: xyz (F, M, 3) -> (F, P); NaN where a marker is
    missing or not in ``names``."""
    index = {n: i for i, n in enumerate(names)}
    out = np.full((xyz.shape[0], len(pairs)), np.nan)
    for p, (a, b) in enumerate(pairs):
        if a in index and b in index:
            out[:, p] = np.linalg.norm(xyz[:, index[a]] - xyz[:, index[b]], axis=-1)
    return out


def _point(xyz: np.ndarray, names: list[str], name: str) -> np.ndarray | None:
    """(F, 3) of a marker, or the midpoint that defines it (Hip, Neck) when absent."""
    mids = {"Hip": ("RHip", "LHip"), "Neck": ("RShoulder", "LShoulder"), "MidShoulder": ("RShoulder", "LShoulder")}
    if name in names and name != "MidShoulder":
        return xyz[:, names.index(name)]
    if name in mids and all(m in names for m in mids[name]):
        a, b = mids[name]
        return 0.5 * (xyz[:, names.index(a)] + xyz[:, names.index(b)])
    return None


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors u and v, (F, 3) -> (F,)."""
    cos = np.einsum("fi,fi->f", u, v) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def hip_knee_flexion(xyz: np.ndarray, names: list[str]) -> np.ndarray | None:
    """Mean absolute hip and knee flexion (degrees) per frame, (F,), from joint keypoints;
    None when a needed keypoint is absent."""
    pts = {n: _point(xyz, names, n) for n in ("RHip", "LHip", "RKnee", "LKnee", "RAnkle", "LAnkle", "Hip", "Neck")}
    if any(p is None for p in pts.values()):
        return None
    trunk = pts["Neck"] - pts["Hip"]
    angles = []
    for s in "RL":
        hip, knee, ankle = pts[f"{s}Hip"], pts[f"{s}Knee"], pts[f"{s}Ankle"]
        angles.append(180.0 - _angle(ankle - knee, hip - knee))   # knee flexion
        angles.append(180.0 - _angle(knee - hip, trunk))          # hip flexion (thigh vs trunk)
    return np.mean(angles, axis=0)


def select_frames(xyz: np.ndarray, names: list[str], large_hip_knee_angles: float) -> np.ndarray:
    """Indices of frames good for measuring segments: complete, not frozen, not among the
    10 % fastest, not crouched. xyz (F, M, 3) -> (N,) int. Falls back to the least
    crouched complete frames (at least ``MIN_FRAMES``) when too few remain."""
    complete = np.isfinite(xyz).all(axis=(1, 2))
    if not complete.any():  # markers missing in every frame: judge frames on what they have
        complete = np.isfinite(xyz).any(axis=2).mean(axis=1) >= 0.8
    speed = np.full(len(xyz), np.nan)
    if len(xyz) > 1:
        with warnings.catch_warnings():  # frames without any marker give NaN, as intended
            warnings.simplefilter("ignore", RuntimeWarning)
            step = np.nanmean(np.linalg.norm(np.diff(xyz, axis=0), axis=2), axis=1)
        speed[1:] = step
        speed[0] = step[0]
    ok = complete.copy()
    finite_speed = np.isfinite(speed) & complete
    if finite_speed.sum() >= 10:
        ok &= ~(speed > np.nanpercentile(speed[finite_speed], FAST_PERCENTILE))
        ok &= ~(speed < FROZEN_SPEED)
    flex = hip_knee_flexion(xyz, names)
    if flex is not None:
        ok &= ~(flex > large_hip_knee_angles)
    idx = np.flatnonzero(ok)
    if idx.size < min(MIN_FRAMES, int(complete.sum())):
        order = np.flatnonzero(complete)
        if flex is not None:
            order = order[np.argsort(np.nan_to_num(flex[order], nan=np.inf))]
        idx = np.sort(order[:MIN_FRAMES])
        log.info("only %d frames pass the measurement filters: using the %d least crouched", ok.sum(), idx.size)
    return idx


def segment_lengths(xyz: np.ndarray, names: list[str], pairs: list[tuple[str, str]],
                    trimmed_extrema_percent: float) -> np.ndarray:
    """Trimmed-mean distance of each marker pair over the frames of xyz (F, M, 3) -> (P,)."""
    d = distances(xyz, names, pairs)
    return np.array([trimmed_mean(d[:, p], trimmed_extrema_percent) for p in range(len(pairs))])


def participant_height(xyz: np.ndarray, names: list[str], large_hip_knee_angles: float = 90.0,
                       trimmed_extrema_percent: float = 50.0) -> float:
    """Standing height (m) from a trial, Pose2Sim's way: per frame, heel-ankle + shank + thigh +
    hip-shoulder + shoulder-head (×1.008; nose ×1.5 without a head keypoint), averaged over both
    sides, then a trimmed mean over the selected frames. Without head keypoints: leg / 0.485
    (Winter). NaN when the hips, knees, ankles or shoulders are missing."""
    frames = select_frames(xyz, names, large_hip_knee_angles)
    sub = xyz[frames]
    need = ["RHip", "LHip", "RKnee", "LKnee", "RAnkle", "LAnkle", "RShoulder", "LShoulder"]
    if any(n not in names for n in need) or sub.size == 0:
        return float("nan")
    per_side = []
    for s in "RL":
        pairs = [(f"{s}Ankle", f"{s}Knee"), (f"{s}Knee", f"{s}Hip"), (f"{s}Hip", f"{s}Shoulder")]
        legs = distances(sub, names, pairs)
        foot = distances(sub, names, [(f"{s}Heel", f"{s}Ankle")])[:, 0] if f"{s}Heel" in names else \
            np.full(len(sub), 0.10)
        per_side.append(np.column_stack([foot, legs]))
    seg = 0.5 * (per_side[0] + per_side[1])  # (N, 4): foot, shank, thigh, back
    mid_shoulder = _point(sub, names, "MidShoulder")
    if "Head" in names:
        head = np.linalg.norm(sub[:, names.index("Head")] - mid_shoulder, axis=1) * 1.008
        heights = seg.sum(axis=1) + head
    elif "Nose" in names:
        head = np.linalg.norm(sub[:, names.index("Nose")] - mid_shoulder, axis=1) * 1.5
        heights = seg.sum(axis=1) + head
    else:
        heights = seg[:, :3].sum(axis=1) / 0.485
    return trimmed_mean(heights, trimmed_extrema_percent)

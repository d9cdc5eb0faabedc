"""MoveNet MultiPose as the person detector of multi-person projects.

BlazePose's own detector is built for one prominent person and often misses a
second one; MoveNet MultiPose (bundled, Apache-2.0) finds up to 6 people. Its
COCO-17 keypoints only seed a BlazePose ROI per person (hip centre, up
direction, body radius); the landmarks still come from BlazePose.

Model: input (1, H, W, 3) int32 RGB 0-255, H and W multiples of 32 (256 on the
long side); output (1, 6, 56) = 17 × (y, x, score) normalised to the input,
box (ymin, xmin, ymax, xmax), person score.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import blazepose as bp

LONG_SIDE = 256
RADIUS_MARGIN = 1.15  # body radius / farthest keypoint distance (matches BlazePose detector ROIs)
_L_SHOULDER, _R_SHOULDER, _L_HIP, _R_HIP = 5, 6, 11, 12


def movenet_input(frame_bgr: np.ndarray, long_side: int = LONG_SIDE) -> tuple[np.ndarray, float]:
    """Frame (H, W, 3) BGR → (input (1, H', W', 3) int32 RGB, padded to multiples of 32; scale)."""
    h, w = frame_bgr.shape[:2]
    scale = long_side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    canvas = np.zeros((-(-nh // 32) * 32, -(-nw // 32) * 32, 3), np.int32)
    canvas[:nh, :nw] = cv2.resize(frame_bgr, (nw, nh), interpolation=cv2.INTER_AREA)[..., ::-1]
    return canvas[None], scale


def decode_people(out: np.ndarray, input_hw: tuple[int, int], scale: float,
                  min_score: float = 0.25) -> np.ndarray:
    """Output (6, 56) → people (N, 17, 3) [x px, y px, score] in the frame, best first."""
    keep = out[:, 55] >= min_score
    kp = out[keep, :51].reshape(-1, 17, 3)
    people = np.empty_like(kp, dtype=float)
    people[..., 0] = kp[..., 1] * input_hw[1] / scale
    people[..., 1] = kp[..., 0] * input_hw[0] / scale
    people[..., 2] = kp[..., 2]
    return people[np.argsort(-out[keep, 55])]


def roi_from_keypoints(kp: np.ndarray, min_conf: float = 0.2) -> np.ndarray | None:
    """A BlazePose ROI (4,) from one person's COCO-17 keypoints (17, 3), or None if too few."""
    ok = kp[:, 2] >= min_conf
    if ok.sum() < 4:
        return None
    pts = kp[ok, :2]
    hips_ok = ok[_L_HIP] and ok[_R_HIP]
    center = kp[[_L_HIP, _R_HIP], :2].mean(0) if hips_ok else (pts.min(0) + pts.max(0)) / 2
    up = np.array([0.0, -1.0])
    if ok[_L_SHOULDER] and ok[_R_SHOULDER]:
        d = kp[[_L_SHOULDER, _R_SHOULDER], :2].mean(0) - center
        if np.hypot(*d) > 1e-6:
            up = d / np.hypot(*d)
    radius = RADIUS_MARGIN * float(np.max(np.linalg.norm(pts - center, axis=1)))
    return bp.roi_from_points(center, center + up * radius)

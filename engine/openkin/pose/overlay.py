"""Drawing 2D detections on frames, and the optional overlay video / images.

Left keypoints blue, right red, others green (BGR); bones grey-green; each
person's ID beside the box of their confident keypoints.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ..skeletons import Skeleton

log = logging.getLogger(__name__)

_LEFT, _RIGHT, _MID, _BONE = (255, 90, 0), (0, 0, 255), (0, 200, 0), (60, 220, 160)


def draw_people(frame: np.ndarray, people: np.ndarray, skeleton: Skeleton, ids: np.ndarray | None = None,
                min_conf: float = 0.3) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) with people (P, K, 3) drawn; ``ids`` (P,) labels them."""
    img = frame.copy()
    scale = max(img.shape[:2]) / 1000.0
    radius, thick = max(2, int(4 * scale)), max(1, int(2 * scale))
    for p, kp in enumerate(people):
        ok = (kp[:, 2] >= min_conf) & np.isfinite(kp[:, :2]).all(1)
        if kp.shape[0] == len(skeleton.names):
            for a, b in skeleton.bones:
                if ok[a] and ok[b]:
                    cv2.line(img, _pt(kp[a]), _pt(kp[b]), _BONE, thick, cv2.LINE_AA)
        for k in np.flatnonzero(ok):
            name = skeleton.names[k] if k < len(skeleton.names) else ""
            color = _LEFT if name.startswith("L") else _RIGHT if name.startswith("R") else _MID
            cv2.circle(img, _pt(kp[k]), radius, color, -1, cv2.LINE_AA)
        if ok.any():
            lo, hi = kp[ok, :2].min(0), kp[ok, :2].max(0)
            cv2.rectangle(img, _pt(lo), _pt(hi), (255, 255, 255), 1)
            label = f"id {int(ids[p])}" if ids is not None else f"#{p}"
            cv2.putText(img, label, _pt(lo - [0, 8 * scale]), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale,
                        (255, 255, 255), thick, cv2.LINE_AA)
    return img


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


class OverlayWriter:
    """Writes drawn frames to ``<cam>_pose.mp4`` and/or ``<cam>_img/<cam>_{frame:06d}.jpg``.

    Files go to ``out_dir`` (a temporary folder of the caller, renamed into place
    when the camera is complete).
    """

    def __init__(self, out_dir: Path, cam: str, fps: float, to_video: bool, to_images: bool):
        self.out_dir, self.cam, self.fps = out_dir, cam, fps or 30.0
        self.to_video, self.to_images = to_video, to_images
        self.video: cv2.VideoWriter | None = None
        if to_images:
            (out_dir / f"{cam}_img").mkdir(parents=True, exist_ok=True)

    @property
    def active(self) -> bool:
        return self.to_video or self.to_images

    def write(self, index: int, img: np.ndarray) -> None:
        if self.to_video:
            if self.video is None:
                path = self.out_dir / f"{self.cam}_pose.mp4"
                self.video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                             (img.shape[1], img.shape[0]))
                if not self.video.isOpened():
                    log.warning("%s: cannot open an mp4 writer here, no overlay video", path)
                    self.to_video = False
                    return
            self.video.write(img)
        if self.to_images:
            cv2.imwrite(str(self.out_dir / f"{self.cam}_img" / f"{self.cam}_{index:06d}.jpg"), img)

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
            self.video = None

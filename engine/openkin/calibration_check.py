"""Check images of a calibration from keypoints: each camera's video frame with the person's
detected keypoints (green circles) and the reprojections of the calibrated 3D keypoints (red
crosses), in ``calibration/debug/<cam>_keypoints.jpg``. The Blender panel shows them on the
cameras; the report links them.

The frame drawn is the one where the camera saw the most keypoints. Drawing is OpenCV's (one
call per point), never a loop over pixels.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from .fileio import atomic_write
from .formats.calibration import Camera
from .geometry.projection import project_points

log = logging.getLogger(__name__)

DETECTED = (0, 200, 0)      # BGR
REPROJECTED = (0, 0, 255)
CANVAS = 64                 # grey level of the canvas when the video frame cannot be read


def check_image(frame: np.ndarray, detected: np.ndarray, reprojected: np.ndarray) -> np.ndarray:
    """``frame (H,W,3)`` uint8 BGR, ``detected (K,2)`` and ``reprojected (K,2)`` px (NaN: none)
    → a copy with circles on the detections and crosses on the reprojections, joined by a line."""
    out = frame.copy()
    radius = max(4, round(out.shape[1] / 150))
    width = max(2, radius // 4)
    for d, r in zip(detected, reprojected):
        if np.isfinite(d).all() and np.isfinite(r).all():
            cv2.line(out, _pt(d), _pt(r), (0, 255, 255), 1, cv2.LINE_AA)
        if np.isfinite(d).all():
            cv2.circle(out, _pt(d), radius, DETECTED, width, cv2.LINE_AA)
        if np.isfinite(r).all():
            cv2.drawMarker(out, _pt(r), REPROJECTED, cv2.MARKER_CROSS, 2 * radius, width)
    return out


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def best_frame(points2d: np.ndarray) -> int:
    """Index of the frame where one camera saw the most keypoints. ``points2d (F,K,3)`` → int."""
    seen = np.isfinite(points2d[..., :2]).all(-1) & (np.nan_to_num(points2d[..., 2]) > 0)
    return int(np.argmax(seen.sum(axis=1)))


def video_frame(video: Path | None, index: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``index`` (0-based) of ``video`` as BGR, or a grey canvas of ``size`` (w, h)."""
    if video is not None:
        cap = cv2.VideoCapture(str(video))
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
        finally:
            cap.release()
        if ok and frame is not None:
            return frame
        log.warning("%s: frame %d unreadable, the check image has a blank background", video.name, index)
    return np.full((int(size[1]), int(size[0]), 3), CANVAS, np.uint8)


def write_checks(out_dir: Path, cameras: list[Camera], points2d: np.ndarray, points3d: np.ndarray,
                 videos: list[Path | None] | None = None,
                 frame_numbers: np.ndarray | None = None, shifts: list[int] | None = None) -> list[Path]:
    """One check image per camera. ``points2d (C,F,K,3)`` detections, ``points3d (F,K,3)`` m;
    ``videos``: each camera's video (or None); ``frame_numbers (F,)`` the pose files' frame
    numbers and ``shifts`` each camera's integer renaming by synchronisation (video frame =
    number - shift). → the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers = np.arange(points2d.shape[1]) if frame_numbers is None else np.asarray(frame_numbers)
    written = []
    for c, cam in enumerate(cameras):
        f = best_frame(points2d[c])
        video = videos[c] if videos else None
        frame = video_frame(video, int(numbers[f]) - (shifts[c] if shifts else 0), tuple(cam.size))
        image = check_image(frame, points2d[c, f, :, :2], project_points(cam, points3d[f]))
        path = out_dir / f"{cam.name}_keypoints.jpg"
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if ok:
            with atomic_write(path, "wb") as fh:
                fh.write(buf.tobytes())
            written.append(path)
    return written

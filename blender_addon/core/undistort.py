"""Undistorted copies of the videos, so Blender's ideal pinhole camera matches them exactly.

Blender cameras have no OpenCV distortion model, so each video is remapped once
with ``cv2.initUndistortRectifyMap(K, dist, None, K, calibration size)``: the new
image has the *same* K as the calibration and is exactly what the Blender camera
(built from K, see :mod:`.axes`) sees. The output also has the calibration's
size, so a video narrower than its calibration (the demo's 1080 px videos with a
1088 px calibration) keeps its pixel coordinates (left-aligned, as the pose stage
reads them). Results are cached by (video name, bytes, mtime, K, distortions, size).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from openkin.errors import OpenKinError
from openkin.fileio import atomic_path
from openkin.progress import Progress, report

log = logging.getLogger(__name__)


def needs_undistortion(matrix: np.ndarray, dist: np.ndarray, size: tuple[int, int], video: Path) -> bool:
    """False when the video can be shown as it is (no distortion, same size)."""
    import cv2

    vc = cv2.VideoCapture(str(video))
    same = (int(vc.get(cv2.CAP_PROP_FRAME_WIDTH)), int(vc.get(cv2.CAP_PROP_FRAME_HEIGHT))) == tuple(size)
    vc.release()
    return not same or bool(np.any(np.abs(np.asarray(dist)) > 0))


def cache_key(video: Path, matrix: np.ndarray, dist: np.ndarray, size: tuple[int, int]) -> str:
    st = video.stat()  # name, size and mtime (not the folder: copies of a project share the cache)
    text = f"{video.name}|{st.st_size}|{st.st_mtime_ns}|{np.round(matrix, 9).tolist()}|" \
           f"{np.round(dist, 12).tolist()}|{tuple(size)}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def output_path(video: Path, matrix: np.ndarray, dist: np.ndarray, size: tuple[int, int], cache_dir: str | Path) -> Path:
    """Where the undistorted copy of ``video`` is cached (it may not exist yet)."""
    return Path(cache_dir) / f"{video.stem}-undist-{cache_key(video, matrix, dist, size)}.mp4"


def undistorted_video(video: str | Path, matrix: np.ndarray, dist: np.ndarray, size: tuple[int, int],
                      cache_dir: str | Path, progress: Progress | None = None,
                      max_frames: int | None = None) -> Path:
    """Path of the undistorted copy of ``video`` (made on first use). ``size``: (W, H) of the calibration."""
    import cv2

    video = Path(video)
    if not video.is_file():
        raise OpenKinError("video not found", path=video, fix="check the project's videos/ folder")
    out = output_path(video, matrix, dist, size, cache_dir)
    if out.is_file():
        return out
    w, h = int(size[0]), int(size[1])
    map1, map2 = cv2.initUndistortRectifyMap(np.asarray(matrix, float), np.asarray(dist, float), None,
                                             np.asarray(matrix, float), (w, h), cv2.CV_16SC2)
    src = cv2.VideoCapture(str(video))
    if not src.isOpened():
        raise OpenKinError("OpenCV cannot read this video", path=video, fix="convert it to H.264 .mp4")
    fps = src.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(src.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        try:
            _remap_all(src, writer, map1, map2, total if max_frames is None else min(total, max_frames), progress)
        finally:
            writer.release()
            src.release()
    log.info("undistorted %s → %s", video.name, out)
    return out


def _remap_all(src, writer, map1, map2, total: int, progress: Progress | None) -> None:
    import cv2

    for i in range(total):
        ok, frame = src.read()
        if not ok:
            break
        writer.write(cv2.remap(frame, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT))
        if i % 25 == 0:
            report(progress, i / total, f"undistorting video frame {i}/{total}")
    report(progress, 1.0, "video undistorted")

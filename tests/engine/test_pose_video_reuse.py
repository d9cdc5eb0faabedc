"""Frames decoded into reused arrays (pose.video.read_frames(reuse=True)): every frame the
consumer gets is the frame OpenCV decodes at that index, even when the decoding thread runs far
ahead (the queue full) while the consumer holds a frame."""
from __future__ import annotations

import time

import cv2
import numpy as np

from openkin.pose.video import CameraInput, ReadStatus, read_frames


def _video(path, n: int = 40) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    assert out.isOpened()
    rng = np.random.default_rng(0)
    for i in range(n):
        out.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    out.release()


def _truth(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def test_reused_buffers_never_change_a_frame_in_use(tmp_path):
    video = tmp_path / "cam01.avi"
    _video(video)
    truth = _truth(video)
    assert len(truth) == 40
    status = ReadStatus()
    seen = []
    for i, frame in read_frames(CameraInput("cam01", video, "video"), prefetch=2, status=status, reuse=True):
        copy = frame.copy()
        time.sleep(0.01)  # the decoder fills the queue meanwhile
        np.testing.assert_array_equal(frame, copy)  # not overwritten while held
        np.testing.assert_array_equal(frame, truth[i])
        seen.append(i)
    assert seen == list(range(40)) and status.decoded == 40
    assert status.cpu_seconds > 0


def test_frames_without_reuse_may_be_kept(tmp_path):
    video = tmp_path / "cam01.avi"
    _video(video, 12)
    kept = [f for _, f in read_frames(CameraInput("cam01", video, "video"), prefetch=2)]
    for f, t in zip(kept, _truth(video)):
        np.testing.assert_array_equal(f, t)

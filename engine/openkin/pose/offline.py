"""Offline backend: bundled BlazePose detector + 33-landmark model, tracked ROIs.

Per frame: whenever nobody is tracked, and in multi-person projects every
``det_frequency`` frames, the detector proposes people; in between each person's ROI comes from the previous
frame's landmarks. A person whose pose flag drops below ``min_presence`` is
lost; if everyone is lost the detector runs again on the same frame.
Single-person projects use BlazePose's detector and follow the most
prominent person (largest ROI); multi-person projects find people with MoveNet
MultiPose (:mod:`openkin.pose.movenet`) and follow up to ``max_people``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from . import blazepose as bp
from . import movenet
from .keypoint_maps import blazepose_to

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
DETECTOR = MODELS_DIR / "pose_detection.onnx"
LANDMARKS = MODELS_DIR / "pose_landmark_full.onnx"
MULTI_DETECTOR = MODELS_DIR / "movenet-multipose.onnx"


def onnx_session(path: Path, threads: int = 1, providers: list[str] | None = None):
    """An onnxruntime session with ``threads`` intra-op threads (1 per worker process
    scales best on few cores: workers run in parallel instead of threads)."""
    import onnxruntime as ort

    if not path.is_file():
        raise OpenKinError("bundled pose model is missing", path=path,
                           fix="reinstall openkin (the ONNX weights ship in openkin/data/models)")
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=providers or ["CPUExecutionProvider"])


class BlazePoseTracker:
    """Callable: frame (H, W, 3) BGR uint8 → landmarks (P, 39, 5) image-frame.

    ``infer_seconds`` accumulates the time spent inside the two networks alone.
    """

    def __init__(self, *, det_frequency: int = 4, multi_person: bool = False, max_people: int = 10,
                 min_detection: float = 0.5, min_presence: float = 0.5, threads: int = 1,
                 providers: list[str] | None = None, refine: bool = True):
        # multi-person: MoveNet MultiPose finds the people (BlazePose's detector favours one)
        self.multi = multi_person
        self.det = onnx_session(MULTI_DETECTOR if multi_person else DETECTOR, threads, providers)
        self.refine = refine
        self.lm = onnx_session(LANDMARKS, threads, providers)
        self.det_frequency = max(1, int(det_frequency))
        self.max_people = max_people if multi_person else 1
        self.min_detection = min_detection
        self.min_presence = min_presence
        self.rois: list[np.ndarray] = []
        self.frame_index = 0
        self.infer_seconds = 0.0
        self.detections_run = 0

    def reset(self) -> None:
        self.rois = []
        self.frame_index = 0

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """ROIs (4,) of people found by the detector, most prominent first."""
        if self.multi:
            return self._detect_many(bgr)
        x, side, offset = bp.letterbox(bgr)
        t = time.perf_counter()
        raw, logits = self.det.run(None, {"input_1": x})
        self.infer_seconds += time.perf_counter() - t
        self.detections_run += 1
        dets, scores = bp.decode_detections(raw[0], logits[0, :, 0], side, offset, self.min_detection)
        dets = dets[bp.nms(dets, scores)]
        rois = [bp.roi_from_detection(d) for d in dets]
        return sorted(rois, key=lambda r: -r[2])

    def _detect_many(self, bgr: np.ndarray) -> list[np.ndarray]:
        x, scale = movenet.movenet_input(bgr)
        t = time.perf_counter()
        (out,) = self.det.run(None, {"input": x})
        self.infer_seconds += time.perf_counter() - t
        self.detections_run += 1
        people = movenet.decode_people(out[0], x.shape[1:3], scale)
        rois = [r for r in (movenet.roi_from_keypoints(kp) for kp in people) if r is not None]
        return sorted(rois, key=lambda r: -r[2])

    def landmarks(self, bgr: np.ndarray, roi: np.ndarray) -> tuple[np.ndarray, float]:
        """Landmarks (39, 5) in the image and the pose-presence flag for one ROI."""
        x = bp.crop_roi(bgr, roi)
        t = time.perf_counter()
        raw, flag, heatmap = self.lm.run(["Identity", "Identity_1", "Identity_3"], {"input_1": x})
        self.infer_seconds += time.perf_counter() - t
        return bp.decode_landmarks(raw[0], roi, heatmap[0] if self.refine else None), float(flag[0, 0])

    def _merge(self, tracked: list[np.ndarray], found: list[np.ndarray]) -> list[np.ndarray]:
        """Tracked ROIs plus detections that overlap none of them, up to max_people."""
        rois = list(tracked)
        for roi in found:
            if len(rois) >= self.max_people:
                break
            if not any(_same_person(roi, r, 0.1) for r in rois):
                rois.append(roi)
        return rois

    def _estimate(self, frame: np.ndarray, rois: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Landmarks of people still present, and their ROIs for the next frame."""
        people, next_rois = [], []
        for roi in rois:
            if roi[2] < 8:
                continue
            lm, flag = self.landmarks(frame, roi)
            if flag < self.min_presence:
                continue
            nxt = bp.roi_from_landmarks(lm)
            if any(_same_person(nxt, r, 0.05) for r in next_rois):
                continue  # two tracks converged on one person
            lm[:, 3:] *= flag
            people.append(lm)
            next_rois.append(nxt)
        return people, next_rois

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        frame = frame_bgr  # kernels swap colours on their small crops (faster than on the whole frame)
        detected = False
        rois = self.rois
        # single person: a live track is never replaced by a detection, so none is run (saves ~12 %)
        due = self.max_people > 1 and self.frame_index % self.det_frequency == 0
        if not rois or due:
            rois = self._merge(rois, self.detect(frame))
            detected = True
        people, self.rois = self._estimate(frame, rois)
        if not people and not detected:
            people, self.rois = self._estimate(frame, self._merge([], self.detect(frame)))
        self.frame_index += 1
        if not people:
            return np.zeros((0, 39, 5))
        return np.stack(people)


def _same_person(a: np.ndarray, b: np.ndarray, tolerance: float) -> bool:
    """Whether two ROIs (4,) are centred on the same hips: centres closer than ``tolerance`` ×
    their size and sizes within 1.5×. (Box overlap would merge people standing one behind
    the other, whose large square ROIs overlap.)"""
    size = min(a[2], b[2])
    return bool(np.hypot(*(a[:2] - b[:2])) < tolerance * size and max(a[2], b[2]) < 1.5 * size)


class OfflineBackend:
    """Frame (H, W, 3) BGR → keypoints (P, K, 3) [x, y, conf] in ``skeleton_name``."""

    name = "offline (BlazePose full, bundled)"

    def __init__(self, skeleton_name: str, **kwargs):
        self.skeleton_name = skeleton_name
        blazepose_to(np.zeros((0, 39, 5)), skeleton_name)  # fail early on an unsupported set
        self.tracker = BlazePoseTracker(**kwargs)

    @property
    def infer_seconds(self) -> float:
        return self.tracker.infer_seconds

    def reset(self) -> None:
        self.tracker.reset()

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        return blazepose_to(self.tracker(frame_bgr), self.skeleton_name)

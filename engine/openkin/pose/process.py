"""One camera, start to finish: decode → estimate → track → write, atomically.

:func:`process_camera` runs in a worker process (or in the caller); it takes a
picklable :class:`PoseSettings`, never the whole config. Outputs go to hidden
temporary paths inside ``pose/`` and are renamed into place only when the
camera is complete, so an earlier result is never half-overwritten.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import OpenKinError
from ..formats.openpose import write_openpose_dir
from ..framerate import DEFAULT_RATE
from ..skeletons import get_skeleton
from .overlay import OverlayWriter, draw_people
from .tracking import PersonTracker
from .video import CameraInput, ReadStatus, probe, read_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseSettings:
    """Everything a camera worker needs (picklable)."""

    estimator: str  # 'offline' or 'rtmlib'
    skeleton: str  # keypoint set written: HALPE_26, COCO_17, BLAZEPOSE, COCO_133
    rtm_models: dict | None = None  # resolved local model paths (rtmlib)
    runtime: tuple[str, str] = ("onnxruntime", "cpu")
    det_frequency: int = 4
    multi_person: bool = False
    frame_range: tuple[int, int] | None = None  # [start, stop) or None = all
    average_likelihood_threshold: float = 0.5
    tracking: dict = field(default_factory=dict)  # PersonTracker keyword arguments
    to_video: bool = False
    to_images: bool = False
    threads: int = 1


@dataclass
class CameraResult:
    name: str
    frames: int = 0
    frames_with_person: int = 0
    people_ids: int = 0
    expected_frames: int | None = None
    frames_lost: int = 0  # frames the video announced but did not deliver (truncated or corrupt end)
    fps: float | None = None  # the video's frame rate (None for image folders)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the process (all its threads) for this camera
    infer_seconds: float = 0.0
    decode_cpu_seconds: float = 0.0  # CPU time of the thread decoding the video (part of cpu_seconds)
    backend: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def found_fraction(self) -> float:
        return self.frames_with_person / self.frames if self.frames else 0.0


_CACHE: dict[str, object] = {}


def get_estimator(s: PoseSettings):
    """A reset estimator for ``s``, reused across the cameras a process handles (loading and
    optimising the ONNX graphs costs ~0.1-1 s per camera otherwise)."""
    key = repr((s.estimator, s.skeleton, s.rtm_models, s.runtime, s.det_frequency, s.multi_person, s.threads))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = make_estimator(s)
    estimator = _CACHE[key]
    estimator.reset()
    return estimator


def make_estimator(s: PoseSettings):
    """The backend object: callable frame (H, W, 3) BGR → (P, K, 3)."""
    if s.estimator == "offline":
        from .offline import OfflineBackend

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if s.runtime[1] == "cuda" else None
        return OfflineBackend(s.skeleton, det_frequency=s.det_frequency, multi_person=s.multi_person,
                              threads=s.threads, providers=providers)
    from .rtm import RtmlibBackend

    return RtmlibBackend(s.rtm_models, det_frequency=s.det_frequency, backend=s.runtime[0],
                         device=s.runtime[1], threads=s.threads, multi_person=s.multi_person)


def keep_likely(people: np.ndarray, threshold: float) -> np.ndarray:
    """Drop people (P, K, 3) whose mean keypoint confidence is below ``threshold``."""
    if not len(people):
        return people
    return people[np.nanmean(np.nan_to_num(people[..., 2]), axis=1) >= threshold]


def frame_range(settings: PoseSettings, n_frames: int) -> tuple[int, int | None]:
    """[start, stop) frames to read; stop None = to the end (frame count unknown: 0)."""
    start, stop = settings.frame_range if settings.frame_range is not None else (0, None)
    if n_frames > 0:
        stop = n_frames if stop is None else min(stop, n_frames)
    return max(0, start), stop


def stack_people(per_frame: list[tuple[np.ndarray, np.ndarray]], n_kpt: int) -> tuple[np.ndarray, np.ndarray]:
    """[(people (P, K, 3), ids (P,))] per frame → keypoints (F, N, K, 3) with person i in slot i,
    person_ids (F, N) (-1 where absent)."""
    n = max((int(ids.max()) + 1 for _, ids in per_frame if len(ids)), default=0)
    keypoints = np.full((len(per_frame), max(n, 1), n_kpt, 3), np.nan)
    person_ids = np.full((len(per_frame), max(n, 1)), -1, dtype=int)
    for f, (people, ids) in enumerate(per_frame):
        if len(ids):
            keypoints[f, ids] = people
            person_ids[f, ids] = ids
    return keypoints, person_ids


def estimate_frame(estimator, frame: np.ndarray | None, s: PoseSettings, n_kpt: int) -> np.ndarray:
    """The likely people (P, K, 3) of one decoded frame (H, W, 3); none for a frame not decoded (None)."""
    if frame is not None:
        people = keep_likely(estimator(frame), s.average_likelihood_threshold)
        if people.size:
            return people
    return np.zeros((0, n_kpt, 3))


def track(tracker: PersonTracker, people: np.ndarray) -> np.ndarray:
    """The tracker's IDs (P,) of a frame's people (P, K, 3), in frame order."""
    return tracker.update(people) if len(people) else np.zeros(0, int)


def _estimate_all(cam: CameraInput, s: PoseSettings, estimator, start: int, stop: int, status: ReadStatus,
                  overlay: OverlayWriter, tick: Callable[[int], None]) -> tuple[list, list]:
    skeleton = _skeleton(s.skeleton)
    n_kpt = len(skeleton.names) if skeleton else 0
    tracker = PersonTracker(**s.tracking)
    per_frame, frames = [], []
    # reuse: each frame is done with (estimated, drawn) before the next is asked for
    for i, frame in read_frames(cam, start, stop, status=status, threads=s.threads, reuse=True):
        people = estimate_frame(estimator, frame, s, n_kpt)
        ids = track(tracker, people)
        per_frame.append((people, ids))
        frames.append(i)
        if overlay.active and frame is not None and skeleton is not None:
            overlay.write(i, draw_people(frame, people, skeleton, ids))
        tick(len(frames))
    return per_frame, frames


def _skeleton(name: str):
    try:
        return get_skeleton(name)
    except OpenKinError:
        return None  # e.g. COCO_133: written, not drawn with bones


def process_camera(cam: CameraInput, pose_dir: Path, s: PoseSettings,
                   tick: Callable[[int, int], None] | None = None) -> CameraResult:
    """Estimate one camera's 2D poses into ``pose_dir/<cam>_json`` (+ overlays). Errors on this
    camera's input are returned in ``CameraResult.error`` so other cameras carry on."""
    result = CameraResult(cam.name)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        info = probe(cam)
        result.fps = info["fps"]
        start, stop = frame_range(s, info["frames"])
        result.expected_frames = None if stop is None else stop - start
        _run(cam, pose_dir, s, info, start, stop, result, tick or (lambda done, total: None))
    except OpenKinError as e:
        result.error = str(e)
    result.seconds = time.perf_counter() - t0
    result.cpu_seconds = time.process_time() - c0
    return result


def _run(cam, pose_dir, s, info, start, stop, result, tick) -> None:
    estimator = get_estimator(s)
    infer0 = estimator.infer_seconds
    result.backend = estimator.name
    total = result.expected_frames
    status = ReadStatus(expected=total)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cam.name}.partial-", dir=pose_dir))
    try:
        # image folders: Pose2Sim's default rate, as the frame rate 'auto' resolves them
        overlay = OverlayWriter(tmp, cam.name, info["fps"] or DEFAULT_RATE, s.to_video, s.to_images)
        try:
            per_frame, frames = _estimate_all(cam, s, estimator, start, stop, status, overlay,
                                              lambda n: tick(n, total or max(n, 1)))
        finally:
            overlay.close()
        result.infer_seconds = estimator.infer_seconds - infer0
        result.decode_cpu_seconds = status.cpu_seconds
        write_camera(tmp, pose_dir, cam, s, per_frame, frames, status, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_camera(tmp: Path, pose_dir: Path, cam: CameraInput, s: PoseSettings, per_frame: list, frames: list[int],
                 status: ReadStatus, result: CameraResult) -> None:
    """A camera's people and IDs per frame (``per_frame``: [(P, K, 3), (P,)] for the frame numbers
    ``frames``) → its summary in ``result`` and its OpenPose JSON folder, written in ``tmp`` and
    published into ``pose_dir``; an error when no frame could be decoded."""
    if status.decoded == 0:
        raise OpenKinError("no frame could be decoded", path=cam.path, fix="re-export or re-copy the video")
    _summarise(result, per_frame, status, cam)
    n_kpt = max((p.shape[1] for p, _ in per_frame if p.size), default=_n_kpt(s))
    keypoints, ids = stack_people(per_frame, n_kpt)
    write_openpose_dir(tmp / f"{cam.name}_json", cam.name, keypoints, np.array(frames), ids)
    _publish(tmp, pose_dir, cam.name)


def _n_kpt(s: PoseSettings) -> int:
    skeleton = _skeleton(s.skeleton)
    return len(skeleton.names) if skeleton else 133


def _summarise(result: CameraResult, per_frame: list, status: ReadStatus, cam: CameraInput) -> None:
    result.frames = len(per_frame)
    result.frames_with_person = sum(1 for p, _ in per_frame if len(p))
    result.people_ids = len({int(i) for _, ids in per_frame for i in ids})
    if status.unreadable:
        result.warnings.append(f"{cam.path.name}: {len(status.unreadable)} unreadable frame(s) "
                               f"(first {status.unreadable[0]}) written with nobody")
    missing = 0 if status.truncated_at is None else max((status.expected or 0) - len(per_frame), 0)
    result.frames_lost = missing
    if missing:
        result.warnings.append(truncation_warning(cam.path.name, status.truncated_at, status.expected, missing))


def truncation_warning(video: str, stopped_at: int, expected: int, lost: int) -> str:
    """The words for a video that ended ``lost`` frames before the ``expected`` its header announced."""
    doubt = " (a header count off by one or two happens; more is a damaged file)" if lost <= 2 else ""
    return (f"{video}: decoding stopped at frame {stopped_at} of {expected} announced: {lost} frame(s) lost "
            f"(truncated or corrupt file){doubt}; this camera's pose output is {lost} frame(s) shorter")


def shortfall_warnings(results: list[CameraResult]) -> list[str]:
    """Warnings for cameras with fewer frames than others, or all ending early (no error cameras)."""
    done = [r for r in results if r.error is None]
    longest = max((r.frames for r in done), default=0)
    out = [f"{r.name}: {r.frames} frames, other cameras up to {longest}: later stages use the frames all "
           "cameras share" for r in done if r.frames < longest]
    lost = [r for r in done if r.frames_lost]
    if len(done) > 1 and len(lost) == len(done):
        each = ", ".join(f"{r.name} lost {r.frames_lost}" for r in lost)
        announced = max(r.expected_frames or 0 for r in lost)
        out.append(f"every camera ended before its announced length ({each} frames): later stages see only "
                   f"the frames decoded, {longest} at most of the {announced} announced")
    return out


def _publish(tmp: Path, pose_dir: Path, cam: str) -> None:
    """Rename every output of ``tmp`` into ``pose_dir``, replacing earlier ones whole."""
    for item in sorted(tmp.iterdir()):
        swap_into_place(item, pose_dir / item.name)


def swap_into_place(new: Path, final: Path) -> None:
    """Replace ``final`` (file or folder) by ``new``; the old one is removed only after the rename."""
    if new.is_file() or not final.exists():
        if final.is_dir():
            shutil.rmtree(final)
        os.replace(new, final)
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.replace(final, old)
    try:
        os.replace(new, final)
    except OSError:
        os.replace(old, final)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)

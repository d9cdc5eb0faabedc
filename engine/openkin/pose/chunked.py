"""2D pose of a long video in time chunks: (camera, chunk) pairs as tasks, one tracker after.

A video longer than :data:`LONG_VIDEO` frames is estimated in chunks of about
:data:`CHUNK` frames (:func:`openkin.chunks.plan`), each a task (:func:`estimate_chunk`:
decode, estimate, keep the likely people; no IDs). Then, for each camera, in frame order,
the person tracker gives the IDs over the whole video, and the JSON files are written as
:func:`openkin.pose.process.process_camera` writes them (same names, same folder, replaced
whole). The chunks are the algorithm's: ``openkin run`` estimates them one after the other
(cameras spread over ``parallel_workers_pose`` processes as before), ``--workers`` or a
batch on a cluster runs every (camera, chunk) pair as a Dask task; same bytes either way.

What carries state across frames, and what a chunk does about it:

- the person tracker (IDs, :mod:`openkin.pose.tracking`): runs after the chunks, over every
  frame in order — exactly as in one pass;
- the estimator's own frame-to-frame state (ROIs or boxes from the previous frame's
  keypoints; the detector's schedule every ``det_frequency`` frames): every chunk starts
  fresh, the detector running on its first frame. Chunk starts are multiples of
  ``det_frequency`` from the first frame, where rtmlib's top-down models run the detector
  anyway and use nothing of the previous frame: with rtmlib the output is the same as one
  pass. The offline backend (BlazePose) carries its ROI from frame to frame: at a chunk
  start it detects again instead (what it does whenever it loses the person), so its
  output after a chunk start differs from one pass by the landmark model's jitter;
- decoding: a chunk seeks to its first frame, and reads :data:`READ_AHEAD` frames past its
  end (not estimated) so that failed reads at its end are told apart from the video's end
  as one pass tells them; after a chunk that ends the video early, later chunks are dropped.

Overlays (``save_video``) are drawn with the IDs while estimating: a video that writes them
is not chunked.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import chunks
from ..errors import OpenKinError
from .process import (CameraResult, PoseSettings, _n_kpt, estimate_frame, frame_range, get_estimator,
                      process_camera as process_whole, track, write_camera)
from .tracking import PersonTracker
from .video import _RETRIES, CameraInput, ReadStatus, probe, read_frames

log = logging.getLogger(__name__)

CHUNK = 1800          # frames per chunk: 30 s at 60 fps, ~1 min of one core's estimation
LONG_VIDEO = 2 * CHUNK  # frames: longer videos are chunked
READ_AHEAD = _RETRIES  # frames decoded past a chunk's end: as many failed reads as end a video


@dataclass
class ChunkPeople:
    """What a chunk task returns: ``people`` (P, K, 3) per frame read, their frame ``numbers``, the
    frames that did not decode, where the video ended early (None: not in this chunk)."""

    people: list[np.ndarray] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)
    truncated_at: int | None = None
    infer_seconds: float = 0.0
    backend: str = ""
    error: str | None = None  # an OpenKinError on this camera's input (reported, the other cameras go on)


def chunk_plan(cam: CameraInput, s: PoseSettings, size: int | None = None,
               long_video: int | None = None) -> tuple[dict, list[chunks.Chunk] | None]:
    """(the camera's probe, its chunks; None when it is processed whole: short, unknown length, or
    writing overlays). None: the module's :data:`CHUNK` and :data:`LONG_VIDEO`."""
    size = CHUNK if size is None else size
    long_video = LONG_VIDEO if long_video is None else long_video
    info = probe(cam)
    start, stop = frame_range(s, info["frames"])
    if stop is None or stop - start <= long_video or s.to_video or s.to_images:
        return info, None
    return info, chunks.plan(stop - start, size, align=max(1, s.det_frequency), first=start)


def estimate_chunk(cam: CameraInput, s: PoseSettings, start: int, stop: int, read_to: int,
                   tick: Callable[[int], None] | None = None) -> ChunkPeople:
    """People in frames ``[start, stop)`` of ``cam`` (a task): the estimator fresh at ``start``,
    frames decoded to ``read_to`` (>= ``stop``) to tell failed reads from the video's end. An
    :class:`OpenKinError` on the input is returned in ``error``."""
    try:
        return _estimate(cam, s, start, stop, read_to, tick)
    except OpenKinError as e:
        return ChunkPeople(error=str(e))


def _estimate(cam: CameraInput, s: PoseSettings, start: int, stop: int, read_to: int,
              tick: Callable[[int], None] | None) -> ChunkPeople:
    estimator = get_estimator(s)
    infer0 = estimator.infer_seconds
    n_kpt = _n_kpt(s)
    out = ChunkPeople(backend=estimator.name)
    status = ReadStatus()
    for i, frame in read_frames(cam, start, read_to, status=status, threads=s.threads):
        if i >= stop:
            break
        out.people.append(estimate_frame(estimator, frame, s, n_kpt))
        out.numbers.append(i)
        if tick is not None:
            tick(len(out.numbers))
    out.unreadable = [i for i in status.unreadable if i < stop]
    if status.truncated_at is not None and status.truncated_at < stop:
        out.truncated_at = status.truncated_at
    out.infer_seconds = estimator.infer_seconds - infer0
    return out


def process_camera(cam: CameraInput, pose_dir: Path, s: PoseSettings,
                   tick: Callable[[int, int], None] | None = None, size: int | None = None,
                   long_video: int | None = None) -> CameraResult:
    """:func:`openkin.pose.process.process_camera`, a long video's chunks one after the other here."""
    try:
        info, plan = chunk_plan(cam, s, size, long_video)
    except OpenKinError:
        plan = None  # process_whole reports it
    if plan is None:
        return process_whole(cam, pose_dir, s, tick)
    t0, c0 = time.perf_counter(), time.process_time()
    total = plan[-1].stop_keep - plan[0].keep
    tick = tick or (lambda done, total: None)
    parts = []
    for c in plan:
        before = sum(len(p.numbers) for p in parts)
        parts.append(estimate_chunk(cam, s, c.keep, c.stop_keep, read_to(c, plan),
                                    lambda n, b=before: tick(b + n, total)))
    return finish_camera(cam, pose_dir, s, info, plan, parts, time.perf_counter() - t0, time.process_time() - c0)


def read_to(c: chunks.Chunk, plan: list[chunks.Chunk]) -> int:
    """Where a chunk's decoding stops: :data:`READ_AHEAD` frames past its end, but not past the take."""
    return min(c.stop_keep + READ_AHEAD, plan[-1].stop_keep)


def run_cameras(cams: list[CameraInput], pose_dir: Path, s: PoseSettings, size: int | None = None,
                long_video: int | None = None) -> list[CameraResult]:
    """Every (camera, chunk) pair of ``cams`` as a task (:func:`openkin.chunks.run_tasks`), a short
    camera as one task; then each long camera tracked and written here."""
    plans, items = {}, []
    for cam in cams:
        try:
            info, plan = chunk_plan(cam, s, size, long_video)
        except OpenKinError:
            info, plan = None, None
        plans[cam.name] = (info, plan)
        if plan is None:
            items.append((_whole_task, cam, pose_dir, s))
        else:
            items += [(estimate_chunk, cam, s, c.keep, c.stop_keep, read_to(c, plan)) for c in plan]
    t0, c0 = time.perf_counter(), time.process_time()
    done = iter(chunks.run_tasks(_call, items, "pose-chunk"))
    results = []
    for cam in cams:
        info, plan = plans[cam.name]
        if plan is None:
            results.append(next(done))
            continue
        parts = [next(done) for _ in plan]
        results.append(finish_camera(cam, pose_dir, s, info, plan, parts, time.perf_counter() - t0,
                                     time.process_time() - c0))
    return results


def _call(fn, *args):
    return fn(*args)


def _whole_task(cam: CameraInput, pose_dir: Path, s: PoseSettings) -> CameraResult:
    return process_whole(cam, pose_dir, s)


def finish_camera(cam: CameraInput, pose_dir: Path, s: PoseSettings, info: dict, plan: list[chunks.Chunk],
                  parts: list[ChunkPeople], seconds: float, cpu_seconds: float) -> CameraResult:
    """The chunks' people of one camera → IDs (one tracker, frame order) → its JSON folder, replaced whole."""
    result = CameraResult(cam.name, fps=info["fps"], expected_frames=plan[-1].stop_keep - plan[0].keep)
    status = ReadStatus(expected=result.expected_frames, unreadable=[])
    people, numbers = [], []
    for part in parts:
        people += part.people
        numbers += part.numbers
        status.unreadable += part.unreadable
        result.infer_seconds += part.infer_seconds
        if part.truncated_at is not None:  # the video ended here: later chunks read past its end
            status.truncated_at = part.truncated_at
            break
    result.backend = parts[0].backend
    failed = next((p.error for p in parts if p.error), None)
    if failed:
        result.error, result.seconds, result.cpu_seconds = failed, seconds, cpu_seconds
        return result
    unreadable = set(status.unreadable)
    status.decoded = sum(1 for i in numbers if i not in unreadable)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cam.name}.partial-", dir=pose_dir))
    try:
        tracker = PersonTracker(**s.tracking)
        write_camera(tmp, pose_dir, cam, s, [(p, track(tracker, p)) for p in people], numbers, status, result)
    except OpenKinError as e:
        result.error = str(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.seconds, result.cpu_seconds = seconds, cpu_seconds
    log.info("%s: %d frames in %d chunks", cam.name, len(numbers), len(plan))
    return result


"""2D pose stage: videos (or image folders) → ``pose/<cam>_json/<cam>_{frame:06d}.json``.

Backends (``[pose] pose_backend``): ``rtmlib`` (RTMPose/RTMO/RTMW, Pose2Sim's
modes and model dictionaries) and ``offline`` (bundled BlazePose, see
:mod:`openkin.pose.offline`); ``auto`` takes rtmlib when its weights are cached
or downloadable, else offline, and logs which. One worker process per video as
cores allow. A camera whose input is broken is reported by name; the other
cameras are still processed and written, then the stage raises an error
listing what failed. Outputs of a camera are replaced whole or not at all.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import queue
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from pathlib import Path

from .. import chunks
from ..errors import OpenKinError
from ..fileio import atomic_write
from ..progress import report
from . import chunked
from .chunked import process_camera  # a long video in time chunks (process.process_camera for others)
from .process import CameraResult, PoseSettings, shortfall_warnings
from .video import CameraInput, find_cameras

log = logging.getLogger(__name__)

__all__ = ["run_stage", "settings_from_config", "choose_backend", "run_cameras"]

_OFFLINE_SETS = {"BODY_WITH_FEET": "HALPE_26", "HALPE_26": "HALPE_26", "LOWER_BODY": "HALPE_26",
                 "BODY": "COCO_17", "COCO_17": "COCO_17", "BLAZEPOSE": "BLAZEPOSE"}


def choose_backend(pose_backend: str, pose_model: str, mode: str, *, check_network: bool = True) -> tuple[str, dict | None]:
    """('offline' | 'rtmlib', resolved rtmlib models or None), logging the choice."""
    if pose_backend == "offline":
        return "offline", None
    from . import rtm

    try:
        models = rtm.resolve_models(pose_model, mode)
    except OpenKinError:
        if pose_backend == "rtmlib":
            raise
        log.info("pose: rtmlib has no model for pose_model=%r: using the offline backend", pose_model)
        return "offline", None
    if pose_backend == "rtmlib":
        return "rtmlib", rtm.fetch_models(models)
    if rtm.available(models, check_network=check_network):
        log.info("pose backend: rtmlib %s (%s)", models["pose_class"], Path(str(models["pose"])).name)
        return "rtmlib", rtm.fetch_models(models)
    log.info("pose backend: offline BlazePose (rtmlib weights for mode %r are neither cached nor reachable)",
             mode if len(mode) < 40 else "custom")
    return "offline", None


def _offline_set(pose_model: str) -> str:
    key = pose_model.upper()
    if key not in _OFFLINE_SETS:
        raise OpenKinError(f"the offline backend cannot produce pose_model {pose_model!r}",
                           fix="set [pose] pose_model to 'Body_with_feet', 'Body' or 'BlazePose', "
                               "or pose_backend = 'rtmlib' (needs its weights once)")
    return _OFFLINE_SETS[key]


def _workers(value, n_cams: int) -> int:
    cores = os.cpu_count() or 1
    if value is False or value in (0, 1):
        return 1
    if value == "auto" or value is True:
        return max(1, min(n_cams, cores))
    return max(1, min(int(value), n_cams))


def _warn_unsupported(pc) -> None:
    formats = {pc.output_format} if isinstance(pc.output_format, str) else set(pc.output_format)
    if formats - {"openpose"}:
        log.warning("pose: output_format %s: only 'openpose' JSON is written", sorted(formats))
    if pc.tracking_mode != "sports2d":
        log.warning("pose: tracking_mode %r is not available: using OpenKin's keypoint tracker", pc.tracking_mode)
    if pc.handle_LR_swap or pc.undistort_points:
        log.warning("pose: handle_LR_swap / undistort_points are not implemented (as in Pose2Sim): ignored")


def settings_from_config(config, n_cams: int = 1, *, check_network: bool = True) -> tuple[PoseSettings, int]:
    """(PoseSettings, number of worker processes) from a :class:`openkin.config.Config`."""
    from .rtm import runtime

    pc = config.pose
    _warn_unsupported(pc)
    estimator, models = choose_backend(pc.pose_backend, pc.pose_model, pc.mode, check_network=check_network)
    skeleton = models["keypoints"] if models else _offline_set(pc.pose_model)
    rt = runtime(pc.backend, pc.device) if estimator == "rtmlib" else runtime("onnxruntime", pc.device)
    workers = _workers(pc.parallel_workers_pose, n_cams)
    save = {pc.save_video} if isinstance(pc.save_video, str) else set(pc.save_video)
    fr = config.project.frame_range
    settings = PoseSettings(
        estimator=estimator, skeleton=skeleton, rtm_models=models, runtime=rt,
        det_frequency=pc.det_frequency, multi_person=config.project.multi_person,
        frame_range=None if isinstance(fr, str) or not fr else (int(fr[0]), int(fr[1])),
        average_likelihood_threshold=pc.average_likelihood_threshold,
        tracking={"match_by": pc.match_by, "max_distance_px": pc.max_distance_px, "min_iou": pc.min_iou,
                  "max_unseen_frames": pc.max_unseen_frames, "predict_displacement": pc.predict_displacement},
        to_video="to_video" in save, to_images="to_images" in save,
        threads=max(1, (os.cpu_count() or 1) // workers))
    return settings, workers


# ------------------------------------------------------------------ workers
_QUEUE = None


def _init_worker(q) -> None:
    import cv2

    global _QUEUE
    _QUEUE = q
    logging.getLogger().setLevel(logging.WARNING)
    cv2.setNumThreads(1)  # one worker per core: OpenCV's own threads would only oversubscribe


def _worker(cam: CameraInput, pose_dir: Path, s: PoseSettings) -> CameraResult:
    def tick(done: int, total: int) -> None:
        if done % 5 == 0 or done == total:
            _QUEUE.put((cam.name, done, total))

    return process_camera(cam, pose_dir, s, tick)


def run_cameras(cams: list[CameraInput], pose_dir: Path, s: PoseSettings, workers: int,
                progress=None) -> list[CameraResult]:
    """Process cameras, in parallel worker processes when ``workers`` > 1."""
    if chunks.where() != "here":  # on a Dask cluster: (camera, time chunk) pairs are its tasks
        return chunked.run_cameras(cams, pose_dir, s)
    done = {c.name: 0.0 for c in cams}

    def tick(name: str, n: int, total: int) -> None:
        done[name] = n / max(total, 1)
        report(progress, sum(done.values()) / len(cams), f"{name} frame {n}/{total}")

    if workers > 1 and len(cams) > 1:
        try:
            return _run_parallel(cams, pose_dir, s, workers, tick)
        except BrokenProcessPool:
            _remove_partials(pose_dir, cams)
            log.warning("pose: worker processes could not start (a script calling OpenKin needs "
                        "`if __name__ == '__main__':`): processing the videos one after another")
    return [process_camera(c, pose_dir, s, lambda n, t, name=c.name: tick(name, n, t)) for c in cams]


def _remove_partials(pose_dir: Path, cams: list[CameraInput]) -> None:
    """Delete what stopped workers were writing (hidden ``.<cam>.partial-*`` folders)."""
    for cam in cams:
        for tmp in pose_dir.glob(f".{cam.name}.partial-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def _run_parallel(cams: list[CameraInput], pose_dir: Path, s: PoseSettings, workers: int, tick) -> list[CameraResult]:
    ctx = mp.get_context("spawn")  # onnxruntime and threads do not survive fork safely
    q = ctx.Queue()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(q,)) as pool:
        futures = [pool.submit(_worker, c, pose_dir, s) for c in cams]
        try:
            while not all(f.done() for f in futures):
                try:
                    tick(*q.get(timeout=0.2))
                except queue.Empty:
                    pass
        except BaseException:
            for f in futures:
                f.cancel()
            for p in list(pool._processes.values()):  # stop workers now (their outputs are temporary)
                p.terminate()
            for p in list(pool._processes.values()):
                p.join(5)
            _remove_partials(pose_dir, cams)
            raise
        return [f.result() for f in futures]


# ------------------------------------------------------------------ stage
def existing_pose_folders(pose_dir: Path) -> list[Path]:
    """``pose_dir``'s camera folders (``*_json``) that hold at least one JSON file, sorted."""
    if not pose_dir.is_dir():
        return []
    return sorted(d for d in pose_dir.iterdir()
                  if d.is_dir() and d.name.endswith("json") and not d.name.startswith(".") and any(d.glob("*.json")))


def _existing(pose_dir: Path, cams: list[CameraInput]) -> list[str]:
    return [c.name for c in cams if any((pose_dir / f"{c.name}_json").glob("*.json"))]


def _check_results(results: list[CameraResult], problems: list[str], overwrite: bool = False) -> None:
    for r in results:
        for w in r.warnings:
            log.warning("%s", w)
        if r.error is None:
            log.info("%s: person found in %.0f %% of %d frames, %d ID(s), %.1f s (%s)", r.name,
                     100 * r.found_fraction, r.frames, r.people_ids, r.seconds, r.backend)
    for w in shortfall_warnings(results):  # shorter cameras, or every camera ending early
        log.warning("%s", w)
    failed = [f"{r.name}: {r.error}" for r in results if r.error] + problems
    if failed:
        done = [r.name for r in results if r.error is None]
        raise OpenKinError("2D pose failed for " + "; ".join(failed) +
                           (f" (written for: {', '.join(done)})" if done else ""),
                           fix="fix or remove the named input(s) and run the pose stage again" +
                               (" (with [pose] overwrite_pose = true every camera is redone; set it to false "
                                "to keep the completed ones)" if overwrite else
                                " (the completed cameras are kept: overwrite_pose = false)"))


def write_summary(path: Path, s: PoseSettings, results: list[CameraResult]) -> None:
    data = {"estimator": s.estimator, "keypoints": s.skeleton,
            "cameras": [asdict(r) | {"found_fraction": r.found_fraction} for r in results]}
    with atomic_write(path) as f:
        json.dump(data, f, indent=1)


def run_stage(config, paths, progress=None) -> None:
    """Estimate 2D poses for every camera of ``paths.videos`` into ``paths.pose``.

    A pose-only project (``pose/<cam>_json/`` and no ``videos/``, as Pose2Sim's
    demos and ``openkin synth`` make) skips the stage with a log note.
    """
    existing = existing_pose_folders(paths.pose)
    if not paths.videos.exists() and existing:
        log.info("pose: no videos/ folder in %s: using the 2D keypoints already in pose/ (%s)",
                 paths.root, ", ".join(d.name for d in existing))
        return
    if not paths.videos.exists():
        raise OpenKinError("no videos/ folder and no 2D keypoints in pose/", path=paths.root,
                           fix="put one video per camera (cam01.mp4, ...) or one image folder per camera in "
                               f"{paths.videos}, or the 2D keypoints as OpenPose JSON in "
                               f"{paths.pose}/<cam>_json/ (one folder per camera)")
    cams, problems = find_cameras(paths.videos)
    if not cams and existing:
        log.info("pose: no video in %s: using the 2D keypoints already in pose/ (%s)", paths.videos,
                 ", ".join(d.name for d in existing))
        _check_results([], problems, config.pose.overwrite_pose)
        return
    if not cams:
        raise OpenKinError("no video file and no image folder found", path=paths.videos,
                           fix="put one video per camera (cam01.mp4, ...) or one image folder per camera there, "
                               f"or the 2D keypoints as OpenPose JSON in {paths.pose}/<cam>_json/")
    pose_dir = paths.pose
    pose_dir.mkdir(parents=True, exist_ok=True)
    todo = cams
    if not config.pose.overwrite_pose:
        kept = _existing(pose_dir, cams)
        if kept:
            log.info("pose: keeping the existing 2D poses of %s (set [pose] overwrite_pose = true to redo them)",
                     ", ".join(kept))
        todo = [c for c in cams if c.name not in kept]
    if not todo:
        _check_results([], problems, config.pose.overwrite_pose)
        return
    s, workers = settings_from_config(config, len(todo))
    log.info("pose: %d camera(s), %s → %s keypoints, %d worker(s) × %d thread(s), detection every %d frame(s)",
             len(todo), s.estimator, s.skeleton, workers, s.threads, s.det_frequency)
    t0 = time.perf_counter()
    results = run_cameras(todo, pose_dir, s, workers, progress)
    log.info("pose: %d camera(s) in %.1f s", len(todo), time.perf_counter() - t0)
    write_summary(paths.reports / "pose_summary.json", s, results)
    _check_results(results, problems, config.pose.overwrite_pose)

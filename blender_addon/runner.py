"""Child-process entry point: run OpenKin work and write JSON-lines events.

Started by the add-on with Blender's own Python (``sys.executable``)::

    python -u runner.py JOB.json

``JOB.json``: ``{"kind": "stages", "project": DIR, "stages": [...], "overrides": {...}}``,
``{"kind": "demo", "dest": DIR, "which": "single"}``,
``{"kind": "synth", "out": DIR, "preset": "clean", "frames": 600}`` or
``{"kind": "undistort", "videos": [{"video", "matrix", "dist", "size", "cache_dir"}, ...]}``;
``"events"``: the JSON-lines file to append to (default ``events.jsonl`` beside JOB.json).

``OPENKIN_ONLINE=0`` in the environment (Blender's online access is off): nothing is
downloaded; pose uses the bundled offline model unless the RTMPose weights are cached.

Events (one JSON object per line, flushed at once)::

    {"event": "start", "stages": [...]}
    {"event": "stage", "stage": NAME, "index": i, "count": n}
    {"event": "progress", "stage": NAME, "fraction": f, "message": TEXT}
    {"event": "log", "level": "INFO", "message": TEXT}
    {"event": "stage_done" | "skipped", "stage": NAME, "seconds": s}
    {"event": "error", "message": TEXT, "kind": "user" | "internal"}
    {"event": "done", "timings": {...}}

Exit codes as the CLI: 0 ok, 1 internal error, 2 user error (OpenKinError), 130 cancelled.
This file never imports ``bpy``: it runs outside Blender.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

log = logging.getLogger("openkin.runner")

PROGRESS_INTERVAL = 0.1  # s: at most ten progress events a second


class EventWriter:
    """Append JSON lines to a file, flushing each one (the add-on tails the file)."""

    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8")
        self.last_progress = 0.0

    def emit(self, event: str, **fields) -> None:
        self.file.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")
        self.file.flush()

    def progress_callback(self, stage: str):
        def cb(fraction: float, message: str = "") -> bool:
            now = time.monotonic()
            if now - self.last_progress >= PROGRESS_INTERVAL or fraction >= 1.0:
                self.last_progress = now
                self.emit("progress", stage=stage, fraction=float(fraction), message=str(message))
            return True
        return cb


class _EventLogHandler(logging.Handler):
    def __init__(self, writer: EventWriter):
        super().__init__(logging.INFO)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        self.writer.emit("log", level=record.levelname, message=record.getMessage())


OFFLINE_FIX = ("turn on Blender's Edit › Preferences › System › Network › Allow Online Access "
               "(or start Blender without --offline-mode)")


def online() -> bool:
    return os.environ.get("OPENKIN_ONLINE", "1") != "0"


def _addon_module(name: str):
    """A bpy-free module of the add-on's ``core/`` loaded by path (this file runs as a script)."""
    path = Path(__file__).with_name("core") / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_openkin_addon_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def offline_overrides(project: str, stages: list[str], overrides: dict | None) -> dict | None:
    """Offline: the pose stage must not download RTMPose weights. Keeps ``overrides`` when the
    weights are cached (or pose does not run); else adds ``pose.pose_backend = 'offline'``
    (for 'auto') or raises (for an explicit 'rtmlib')."""
    if online() or "pose" not in stages:
        return overrides
    from openkin.config import load_config
    from openkin.errors import OpenKinError
    from openkin.pose import rtm

    pose = load_config(project, overrides=overrides).pose
    if pose.pose_backend == "offline":
        return overrides
    try:
        models = rtm.resolve_models(pose.pose_model, pose.mode)
    except OpenKinError:
        return overrides          # no RTMPose model for this keypoint set: the engine goes offline itself
    if rtm.available(models, check_network=False):
        return overrides          # cached: nothing to download
    if pose.pose_backend == "rtmlib":
        raise OpenKinError("pose_backend = 'rtmlib' needs the RTMPose weights, which are not downloaded yet, "
                           "and online access is off", fix=f"{OFFLINE_FIX}, or set [pose] pose_backend = 'offline'")
    log.info("online access is off and the RTMPose weights are not cached: pose uses the bundled offline model")
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in (overrides or {}).items()}
    out.setdefault("pose", {})["pose_backend"] = "offline"
    return out


def run_stages(job: dict, events: EventWriter) -> dict[str, float]:
    """The named stages in pipeline order, as ``openkin run`` does, with JSON progress."""
    from openkin.cli import run_stages as run_engine_stages

    stages = list(job["stages"])
    overrides = offline_overrides(job["project"], stages, job.get("overrides") or None)
    if {"kinematics", "augmentation"} & set(stages):
        from openkin.kinematics.opensim_log import redirect_opensim_log

        redirect_opensim_log(Path(job["project"]) / "openkin" / "logs")
    return run_engine_stages(job["project"], stages, overrides=overrides or None,
                             progress_bars=False, progress_factory=events.progress_callback,
                             on_event=events.emit)


def run_undistort(job: dict, events: EventWriter) -> dict[str, float]:
    """Undistorted copies of the videos (the add-on's cache), one stage per video."""
    import numpy as np

    undistort = _addon_module("undistort")
    items = list(job["videos"])
    names = [f"undistort {Path(v['video']).stem}" for v in items]
    events.emit("start", stages=names)
    timings = {}
    for i, (name, item) in enumerate(zip(names, items)):
        events.emit("stage", stage=name, index=i, count=len(items))
        t0 = time.perf_counter()
        undistort.undistorted_video(item["video"], np.asarray(item["matrix"], float), np.asarray(item["dist"], float),
                                    tuple(item["size"]), item["cache_dir"], events.progress_callback(name))
        timings[name] = time.perf_counter() - t0
        events.emit("stage_done", stage=name, seconds=timings[name])
    return timings


def run_tool(job: dict, events: EventWriter) -> dict[str, float]:
    """Demo project copy or a synthetic scene, reported as a one-stage job."""
    name = job["kind"]
    events.emit("start", stages=[name])
    events.emit("stage", stage=name, index=0, count=1)
    cb = events.progress_callback(name)
    t0 = time.perf_counter()
    if name == "demo":
        from openkin.assets import demo_project, ensure_assets, is_ready
        from openkin.errors import OpenKinError
        if not online() and not is_ready():
            raise OpenKinError("the demo project is not downloaded yet and online access is off", fix=OFFLINE_FIX)
        ensure_assets(progress=cb)
        demo_project(job["dest"], job.get("which", "single"))
    elif name == "synth":
        from openkin.synth import build_scene
        build_scene(job["out"], job.get("preset", "clean"), n_frames=job.get("frames"), progress=cb)
    else:
        raise ValueError(f"unknown job kind {name!r}")
    seconds = time.perf_counter() - t0
    events.emit("stage_done", stage=name, seconds=seconds)
    return {name: seconds}


def run_qa(job: dict, events: EventWriter) -> dict[str, float]:
    """``{"kind": "recompute", "project", "frames": [a, b]}`` (:func:`openkin.recompute.recompute`,
    then the QA overlays of those frames when drawn) or ``{"kind": "overlays", "project"}``."""
    from openkin import overlays

    root, frames = job["project"], tuple(job["frames"]) if job.get("frames") else None
    names = (["recompute"] if job["kind"] == "recompute" else []) + ["overlays"]
    events.emit("start", stages=names)
    timings = {}
    for i, name in enumerate(names):
        events.emit("stage", stage=name, index=i, count=len(names))
        t0, cb = time.perf_counter(), events.progress_callback(name)
        if name == "recompute":
            from openkin.recompute import recompute
            done = recompute(root, frames=frames, progress=cb)
            full = done.get("stages", {}).get("triangulation", {}).get("full", False)
            changed = done.get("frames") or frames                               # overlays: what changed
            frames = None if full or changed is None else tuple(changed)
        elif job["kind"] == "overlays" or overlays.read_index(root) is not None:
            overlays.write_overlays(root, frames=frames if job["kind"] == "recompute" else None, progress=cb,
                                    scale=(overlays.read_index(root) or {}).get("scale", overlays.DEFAULT_SCALE))
        timings[name] = time.perf_counter() - t0
        events.emit("stage_done", stage=name, seconds=timings[name])
    return timings


def _exit_on_terminate() -> None:
    """Cancel (SIGTERM) unwinds the stack, so half-written files are removed (``atomic_path``)."""
    import signal

    def stop(signum, frame):
        raise SystemExit(130)

    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _exit_on_terminate()
    job_path = Path(argv[0])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    events = EventWriter(Path(job.get("events") or job_path.with_name("events.jsonl")))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(_EventLogHandler(events))
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(stderr)
    from openkin.errors import OpenKinError
    from openkin.progress import Cancelled
    try:
        kind = job.get("kind", "stages")
        runner = {"stages": run_stages, "undistort": run_undistort, "recompute": run_qa, "overlays": run_qa}.get(kind, run_tool)
        timings = runner(job, events)
    except OpenKinError as e:
        events.emit("error", message=str(e), kind="user")
        return 2
    except Cancelled:
        events.emit("error", message="cancelled", kind="cancelled")
        return 130
    except Exception as e:  # a bug: keep the traceback in the job's log, show a short message
        traceback.print_exc()
        events.emit("error", message=f"internal error: {type(e).__name__}: {e}", kind="internal")
        return 1
    events.emit("done", timings=timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

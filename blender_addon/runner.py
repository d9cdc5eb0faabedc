"""Child-process entry point: run OpenKin work and write JSON-lines events.

Started by the add-on with Blender's own Python (``sys.executable``)::

    python -u runner.py JOB.json

``JOB.json``: ``{"kind": "stages", "project": DIR, "stages": [...], "overrides": {...}}``,
``{"kind": "demo", "dest": DIR, "which": "single"}`` or
``{"kind": "synth", "out": DIR, "preset": "clean", "frames": 600}``; ``"events"``: the
JSON-lines file to append to (default ``events.jsonl`` beside JOB.json).

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

import json
import logging
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


def run_stages(job: dict, events: EventWriter) -> dict[str, float]:
    """The named stages in pipeline order, as ``openkin run`` does, with JSON progress."""
    from openkin.cli import run_stages as run_engine_stages

    return run_engine_stages(job["project"], list(job["stages"]), overrides=job.get("overrides") or None,
                             progress_bars=False, progress_factory=events.progress_callback,
                             on_event=events.emit)


def run_tool(job: dict, events: EventWriter) -> dict[str, float]:
    """Demo project copy or a synthetic scene, reported as a one-stage job."""
    name = job["kind"]
    events.emit("start", stages=[name])
    events.emit("stage", stage=name, index=0, count=1)
    cb = events.progress_callback(name)
    t0 = time.perf_counter()
    if name == "demo":
        from openkin.assets import demo_project, ensure_assets
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
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
        timings = run_stages(job, events) if job.get("kind", "stages") == "stages" else run_tool(job, events)
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

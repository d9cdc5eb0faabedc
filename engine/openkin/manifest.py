"""The run manifest ``PROJECT/openkin/manifest.json``: what each stage wrote, from what, and what it measured.

Every stage that runs leaves a record::

    {"status": "running" | "done" | "failed" | "outdated", "run": RUN_ID,
     "started": ISO time, "seconds": float, "error": str (failed),
     "inputs":  [{"path": "pose-3d/trial_0-99.trc", "sha256": ..., "from": "triangulation"}, ...],
     "outputs": [{"path": "pose-3d/trial_0-99_filt_butterworth.trc", "sha256": ..., "role": "trc"}, ...],
     "summary": {...figures the stage measured, rendered by the report...},
     "previous_outputs": [...outputs of its earlier run still to be set aside...]}

and the manifest says which run was the last (``"run": {"id", "started", "stages", "finished",
"failed"}``). Paths are relative to the project folder, with ``/``. A folder output (a pose
folder of JSON files) has a sha256 over its files' names and contents.

Rules the stages follow through :class:`openkin.context.RunContext`:

* a stage reads only the outputs of ``done`` records of the stages it depends on
  (:data:`DEPENDS`), never a glob of a folder; where such a stage has no record at all
  (a project made by Pose2Sim, or by OpenKin before manifests), it falls back to the folder
  as Pose2Sim lays it out, and says so in the log;
* when a stage starts, every stage that depends on it (directly or not) becomes
  ``outdated``: its files are no longer inputs, and the report shows it as not run;
* when a stage finishes, the files its earlier run wrote and this run did not rewrite are
  moved into ``openkin/stale/<run>/`` (see :func:`set_aside`) so that neither OpenKin nor
  another program (Pose2Sim, the Blender import, a user's script) takes them for results.

The manifest is written atomically (temporary file, fsync, rename) after every change; a stage's
start record (:meth:`Manifest.begin`) has its fsync and rename done in a background thread
(:func:`openkin.fileio.write_later`) while the stage reads and computes: every output published
afterwards, and the stage's finish, wait for it, so the order on disk is the order of the calls.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .errors import OpenKinError
from .fileio import atomic_write, settle, sha256_file, write_later
from .keypoint_cache import digest_table

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
STALE_DIR = "stale"
VERSION = 1
# Pipeline order, and which stages' outputs each stage may read.
STAGE_ORDER = ("calibration", "pose", "synchronization", "association", "refinement", "triangulation",
               "filtering", "augmentation", "kinematics")
DEPENDS: dict[str, tuple[str, ...]] = {
    "calibration": (),
    "pose": (),
    "synchronization": ("pose", "calibration"),
    "association": ("synchronization", "pose", "calibration"),
    "refinement": ("association", "synchronization", "pose", "calibration"),
    "triangulation": ("refinement", "association", "synchronization", "pose", "calibration"),
    "filtering": ("triangulation",),
    "augmentation": ("filtering", "triangulation"),
    "kinematics": ("augmentation", "filtering", "triangulation"),
}


def dependents(name: str) -> list[str]:
    """Stages that read ``name``'s outputs, directly or through others, in pipeline order."""
    out: set[str] = set()
    frontier = {name}
    while frontier:
        frontier = {s for s, deps in DEPENDS.items() if frontier & set(deps)} - out
        out |= frontier
    return [s for s in STAGE_ORDER if s in out]


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def new_run_id() -> str:
    """``<time>-<pid>``: unique per run on a machine (one run per project at a time: the lock)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def relpath(root: Path, path: Path) -> str:
    """``path`` relative to the project ``root``, with ``/`` (absolute if outside it)."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def folder_sha256(folder: Path) -> str:
    """sha256 over the names and contents of the files of ``folder`` (not recursive), by name:
    of ``name + b"\\0" + sha256(file)`` for each file in name order.

    Each file's digest comes from :func:`openkin.keypoint_cache.digest_table`: a pose folder's
    files are hashed once (when they change) and shared with the keypoint cache, which this
    read also fills, so that the stage reading the folder next finds its keypoints parsed."""
    names, digests = digest_table(folder)
    blob = np.ascontiguousarray(digests, dtype=np.uint8).tobytes()
    parts = [blob[i:i + 32] for i in range(0, len(blob), 32)]
    return hashlib.sha256(b"".join(itertools.chain.from_iterable(
        zip((n.encode() + b"\0" for n in names), parts)))).hexdigest()  # one update: the same digest, ~10× faster


def entry(root: Path, path: Path, role: str = "", **extra) -> dict:
    """A manifest entry for the file or folder ``path``: relative path, sha256, role, extras."""
    path = Path(path)
    digest = folder_sha256(path) if path.is_dir() else sha256_file(path)
    out = {"path": relpath(root, path), "sha256": digest}
    if role:
        out["role"] = role
    out.update(extra)
    return out


class Manifest:
    """The records of one project (see the module doc). ``root``: the project folder."""

    def __init__(self, root: Path, data: dict | None = None):
        self.root = Path(root)
        self.data = data or {"version": VERSION, "stages": {}}
        self.data.setdefault("stages", {})

    @property
    def path(self) -> Path:
        return self.root / "openkin" / MANIFEST_NAME

    @classmethod
    def load(cls, root: Path) -> "Manifest":
        """The project's manifest (empty when there is none yet)."""
        path = Path(root) / "openkin" / MANIFEST_NAME
        settle()  # a record still on its way to the disk (Manifest.begin)
        if not path.is_file():
            return cls(root)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise OpenKinError(f"the run manifest is unreadable ({e})", path=path,
                               fix="delete it: the next run of each stage writes its record again") from None
        if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
            raise OpenKinError("the run manifest has no 'stages' table", path=path,
                               fix="delete it: the next run of each stage writes its record again")
        return cls(root, data)

    def save(self, later: bool = False) -> None:
        """Write the manifest atomically; ``later``: its fsync and rename in the background
        (:func:`openkin.fileio.write_later`: any output published afterwards waits for it)."""
        text = json.dumps(self.data, indent=1)  # one write (json.dump writes each token: 5× slower)
        if later:
            write_later(self.path, text)
            return
        with atomic_write(self.path) as f:
            f.write(text)

    # ------------------------------------------------------------------ records
    @property
    def stages(self) -> dict[str, dict]:
        return self.data["stages"]

    @property
    def run(self) -> dict:
        return self.data.get("run", {})

    def record(self, name: str) -> dict | None:
        return self.stages.get(name)

    def done(self, name: str) -> dict | None:
        """The record of ``name`` if its outputs are current (status done), else None."""
        rec = self.stages.get(name)
        return rec if rec is not None and rec.get("status") == "done" else None

    def outputs(self, name: str, role: str | None = None) -> list[Path] | None:
        """Absolute paths of the current outputs of ``name`` (of ``role`` if given); None when the
        stage has no record at all, [] when its record is not done."""
        rec = self.stages.get(name)
        if rec is None:
            return None
        if rec.get("status") != "done":
            return []
        return [self.root / e["path"] for e in rec.get("outputs", []) if role is None or e.get("role") == role]

    def entries(self, name: str, role: str | None = None) -> list[dict]:
        rec = self.done(name)
        return [e for e in (rec or {}).get("outputs", []) if role is None or e.get("role") == role]

    def start_run(self, run_id: str, stages: list[str]) -> None:
        self.data["run"] = {"id": run_id, "started": now(), "stages": list(stages)}
        self.save()

    def end_run(self, failed: str | None = None) -> None:
        self.data.setdefault("run", {})["finished"] = now()
        if failed:
            self.data["run"]["failed"] = failed
        self.save()

    def begin(self, name: str, run_id: str) -> None:
        """``name`` starts: its record becomes ``running``; the stages depending on it ``outdated``,
        except those this run already ran before it (a calibration from keypoints runs after pose
        and synchronization, which did not use it)."""
        self.stages[name] = _pending(self.stages.get(name), "running", run=run_id, started=now())
        for later in dependents(name):
            rec = self.stages.get(later)
            if rec is None or (rec.get("run") == run_id and rec.get("status") == "done"):
                continue
            if rec.get("status") != "outdated":
                self.stages[later] = _pending(self.stages[later], "outdated", outdated_by=f"{name} ({run_id})")
        self.save(later=True)  # the fsync overlaps the stage's reading and computing; outputs wait for it

    def finish(self, name: str, run_id: str, inputs: list[dict], outputs: list[dict], summary: dict,
               seconds: float) -> None:
        """``name`` is done: record what it read and wrote; set its earlier outputs aside."""
        settle()  # the stage's start record is on disk before any earlier output moves
        previous = self.stages.get(name, {}).get("previous_outputs", [])
        self.stages[name] = {"status": "done", "run": run_id, "started": self.stages[name].get("started", now()),
                             "seconds": round(float(seconds), 3), "inputs": inputs, "outputs": outputs,
                             "summary": summary}
        set_aside(self.root, previous, outputs, run_id)
        self.save()

    def fail(self, name: str, run_id: str, message: str, seconds: float) -> None:
        rec = self.stages.get(name, {})
        rec.update(status="failed", run=run_id, seconds=round(float(seconds), 3), error=message)
        self.stages[name] = rec
        self.save()


def _pending(record: dict | None, status: str, **fields) -> dict:
    """A record whose earlier outputs (if any) are kept as ``previous_outputs`` to be set aside later."""
    record = record or {}
    previous = list(record.get("previous_outputs", []))
    seen = {e["path"] for e in previous}
    previous += [e for e in record.get("outputs", []) if e["path"] not in seen]
    return {"status": status, "previous_outputs": previous, **fields}


def set_aside(root: Path, previous: list[dict], current: list[dict], run_id: str) -> list[Path]:
    """Move the files of ``previous`` outputs that ``current`` did not rewrite into
    ``openkin/stale/<run_id>/`` (same relative path), with a log line; never deletes.

    Chosen over leaving them in place: other programs (Pose2Sim, the Blender import, a
    user's script) glob these folders, and would take an old frame range or an old
    trial name for a second person. Only files the manifest says OpenKin wrote move."""
    keep = {e["path"] for e in current}
    moved = []
    for e in previous:
        rel = e["path"]
        src = Path(root) / rel
        if rel in keep or not src.exists() or Path(rel).is_absolute():
            continue
        dst = Path(root) / "openkin" / STALE_DIR / run_id / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))
        moved.append(dst)
        log.info("set aside %s (an earlier run's output, not written by this run) -> %s", rel, relpath(root, dst))
    return moved

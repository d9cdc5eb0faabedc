"""The run context: what one run passes from stage to stage, explicitly.

A :class:`RunContext` holds the project paths, the configuration, the run manifest
(:mod:`openkin.manifest`), the calibration this run uses, the frame rate (resolved once),
the in-memory results of this run that a later stage may take instead of reading files
again (the association), the progress callback of the running stage and an event callback.
Stage modules expose ``run(ctx)``; their ``run_stage(config, paths, progress=None)`` is the
same stage run alone (:func:`run_alone`).

While a stage runs, it tells the context what it read (:meth:`RunContext.read`), what it
wrote (:meth:`RunContext.wrote`) and what it measured (``ctx.summary``);
:func:`execute` turns that into the stage's record in the manifest.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .framerate import resolve_frame_rate
from .inputs import pose_folders
from .manifest import Manifest, entry, new_run_id, relpath
from .progress import Progress, check_interrupted

log = logging.getLogger(__name__)


def _no_event(event: str, **fields) -> None:
    return None


@dataclass
class RunContext:
    """One run on one project (see the module doc)."""

    config: Any
    paths: Any
    manifest: Manifest
    run_id: str = field(default_factory=new_run_id)
    progress: Progress | None = None
    on_event: Callable[..., None] = _no_event
    association: Any = None                 # openkin.association.Association computed in this run
    stage: str = ""
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    _frame_rate: float | None = None
    _calibration: Path | None = None

    # ------------------------------------------------------------------ shared values
    @property
    def frame_rate(self) -> float:
        """``[project] frame_rate`` ('auto': the videos' rate), resolved once per run."""
        if self._frame_rate is None:
            self._frame_rate = resolve_frame_rate(self.config, self.paths)
        return self._frame_rate

    @property
    def calibration(self) -> Path:
        """The calibration TOML this run uses: the one the refinement record names, else the
        calibration stage's output, else the project's calibration file (:func:`calibration_in_use`)."""
        if self._calibration is None:
            self._calibration = calibration_in_use(self.paths, self.manifest)
        return self._calibration

    @calibration.setter
    def calibration(self, path: Path) -> None:
        self._calibration = Path(path)

    # ------------------------------------------------------------------ what a stage read and wrote
    def wrote(self, path: Path, role: str = "", **extra) -> Path:
        """Record ``path`` (a file or a folder) as an output of the running stage."""
        self.outputs.append(entry(self.paths.root, path, role, **extra))
        return Path(path)

    def read(self, path: Path, producer: str = "") -> Path:
        """Record ``path`` as an input of the running stage (sha256 from its producer's record)."""
        rel = relpath(self.paths.root, path)
        known = next((e for e in self.manifest.entries(producer) if e["path"] == rel), None) if producer else None
        self.inputs.append({"path": rel, "sha256": known["sha256"] if known else entry(self.paths.root, path)["sha256"],
                            **({"from": producer} if producer else {})})
        return Path(path)

    def stage_files(self, stage: str, role: str | None = None) -> list[Path] | None:
        """Current outputs of ``stage`` (see :meth:`openkin.manifest.Manifest.outputs`)."""
        return self.manifest.outputs(stage, role)

    def current_files(self, stages: tuple[str, ...], role: str) -> tuple[list[Path], str] | None:
        """The ``role`` files of the first of ``stages`` whose record is done and has some, and that
        stage; ``([], "")`` when none has, though one has a record (its files are not current);
        None when none of them has a record (a project processed before manifests, or by Pose2Sim)."""
        for stage in stages:
            files = self.manifest.outputs(stage, role)
            if files:
                return files, stage
        if any(self.manifest.record(s) is not None for s in stages):
            return [], ""
        return None

    def pose_source(self, stages=("synchronization", "pose")) -> tuple[Path, str] | None:
        """The 2D keypoint folder to read (``pose-sync/`` or ``pose/``) and the stage that wrote it:
        the first of ``stages`` whose record is done; None where none has a record but one of
        them is not done (failed, outdated); without any record, the folders on disk."""
        for stage in stages:
            files = self.manifest.outputs(stage, "camera")
            if files:
                return files[0].parent, stage
        if any(self.manifest.record(s) is not None for s in stages):
            return None
        folder = {"synchronization": self.paths.pose_sync, "pose": self.paths.pose,
                  "association": self.paths.pose_associated}
        for stage in stages:
            if pose_folders(folder[stage]):
                log.info("no run record of %s: reading the folders in %s", stage, folder[stage].name)
                return folder[stage], stage
        return None

    def sync_offsets(self, source_stage: str) -> Path | None:
        """Synchronisation's ``offsets.toml`` when the 2D poses came through it (``source_stage``
        'synchronization', or 'association' of synchronised poses), else None."""
        if source_stage == "association":
            rec = self.manifest.done("association")
            source_stage = (rec or {}).get("summary", {}).get("source_stage", "synchronization")
        if source_stage != "synchronization":
            return None
        files = self.manifest.outputs("synchronization", "offsets")
        if files is None:  # no record: a project synchronised before manifests
            legacy = self.paths.pose_sync / "offsets.toml"
            return legacy if legacy.is_file() else None
        return files[0] if files else None


def execute(ctx: RunContext, name: str, fn: Callable[[RunContext], None],
            progress: Progress | None = None) -> float:
    """Run stage ``name`` (``fn(ctx)``) and record it in the manifest; returns its seconds.

    Before: the stage's record is ``running``, those that depend on it ``outdated``. After: its
    inputs, outputs and summary (``done``) or the error (``failed``, then re-raised)."""
    ctx.stage, ctx.progress = name, progress
    ctx.inputs, ctx.outputs, ctx.summary = [], [], {}
    ctx.manifest.begin(name, ctx.run_id)
    t0 = time.perf_counter()
    try:
        fn(ctx)
        check_interrupted()  # an interrupt swallowed inside the stage: not recorded as done
    except BaseException as e:
        message = getattr(e, "problem", None) or f"{type(e).__name__}: {e}"
        ctx.manifest.fail(name, ctx.run_id, str(message), time.perf_counter() - t0)
        raise
    seconds = time.perf_counter() - t0
    ctx.manifest.finish(name, ctx.run_id, ctx.inputs, ctx.outputs, ctx.summary, seconds)
    return seconds


def run_alone(name: str, fn: Callable[[RunContext], None], config, paths,
              progress: Progress | None = None) -> RunContext:
    """One stage run by itself (``run_stage(config, paths, progress)``): under the project lock,
    recorded in the manifest like a stage of ``openkin run``; returns its context."""
    from .lock import project_lock

    with project_lock(paths.root):
        ctx = RunContext(config, paths, Manifest.load(paths.root))
        execute(ctx, name, fn, progress)
    return ctx


def recorded_calibration(manifest: Manifest) -> Path | None:
    """The calibration the project's last run used, from its manifest: the one the refinement
    record names, else the calibration stage's output; None when neither stage is recorded."""
    for stage, role in (("refinement", "calibration_used"), ("calibration", "calibration")):
        rec = manifest.done(stage)
        if rec is None:
            continue
        used = rec.get("summary", {}).get(role) if stage == "refinement" else None
        if used:
            return manifest.root / used
        files = manifest.outputs(stage, "calibration")
        if files:
            return files[0]
    return None


def calibration_in_use(paths, manifest: Manifest | None = None) -> Path:
    """The calibration the project's results are computed with (a run's context, the report,
    the Blender import): the one ``manifest`` (default: the project's) records
    (:func:`recorded_calibration`), else :func:`openkin.project.find_calibration`."""
    from .project import find_calibration

    return recorded_calibration(manifest or Manifest.load(paths.root)) or find_calibration(paths)

"""Running the pipeline: the stage registry, :func:`run_stages` (the CLI and the Blender runner) and
the Python API :func:`run` (``openkin.run``).

One run holds the project lock (:mod:`openkin.lock`), creates one
:class:`~openkin.context.RunContext` and runs the stages in pipeline order, each through
:func:`openkin.context.execute`, which writes its record into the run manifest
(:mod:`openkin.manifest`). A stage module that does not import is an error, as is any stage
that fails: the run stops there, the stage is recorded as failed, and the stages after it
keep no figures of earlier runs (they are outdated).

Python API, as Pose2Sim's ``runAll``::

    import openkin
    result = openkin.run("path/to/trial", stages=["triangulation", "filtering"],
                         overrides={"filtering": {"type": "kalman"}})
    result.ok, result.timings, result.failed, result.report
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .context import RunContext, execute
from .errors import OpenKinError
from .lock import project_lock
from .manifest import STAGE_ORDER, Manifest
from .progress import Progress, scaled, tqdm_progress
from .project import ProjectPaths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """A pipeline stage. ``module`` exposes ``run(ctx)``, or only ``run_stage(config, paths,
    progress)`` when ``legacy`` (its outputs are then recorded by :data:`LEGACY_OUTPUTS`)."""

    name: str
    module: str
    help: str
    legacy: bool = False


STAGES: tuple[Stage, ...] = (
    Stage("calibration", "openkin.calibration", "convert or compute the calibration TOML", legacy=True),
    Stage("pose", "openkin.pose", "2D keypoints from the videos (pose/<cam>_json)", legacy=True),
    Stage("synchronization", "openkin.synchronization", "per-camera time offsets (pose-sync)"),
    Stage("association", "openkin.association", "who is who across cameras (pose-associated)"),
    Stage("refinement", "openkin.refinement", "refine camera extrinsics from the person's keypoints (bundle adjustment)"),
    Stage("triangulation", "openkin.triangulation.stage", "3D keypoints (pose-3d/*.trc)"),
    Stage("filtering", "openkin.filtering.stage", "outlier rejection and smoothing of 3D keypoints"),
    Stage("augmentation", "openkin.augmentation", "LSTM marker augmentation"),
    Stage("kinematics", "openkin.kinematics", "OpenSim scaling and inverse kinematics"),
)
assert tuple(s.name for s in STAGES) == STAGE_ORDER


def stage_names(names: list[str] | None) -> list[str]:
    """``names`` checked and put in pipeline order (all stages when None)."""
    if names is None:
        return list(STAGE_ORDER)
    unknown = [n for n in names if n not in STAGE_ORDER]
    if unknown:
        raise OpenKinError(f"unknown stage(s): {', '.join(unknown)}", fix=f"choose among: {', '.join(STAGE_ORDER)}")
    return [s for s in STAGE_ORDER if s in set(names)]


def stage_function(stage: Stage) -> Callable[[RunContext], None]:
    """``fn(ctx)`` running ``stage``. A module that does not import is an error (a broken install)."""
    module = importlib.import_module(stage.module)
    if not stage.legacy:
        return module.run

    def legacy(ctx: RunContext) -> None:
        module.run_stage(ctx.config, ctx.paths, ctx.progress)
        LEGACY_OUTPUTS[stage.name](ctx)

    return legacy


def _calibration_outputs(ctx: RunContext) -> None:
    """The calibration stage's file: the one its record (``openkin/calibration.toml``) names, else
    the newest ``Calib*.toml`` that is not the refinement's."""
    from .calibration import RECORD_NAME
    from .fileio import read_optional_toml
    from .refinement import source_calibration

    named = read_optional_toml(ctx.paths.reports / RECORD_NAME).get("output")
    path = ctx.paths.calibration / named if named and (ctx.paths.calibration / named).is_file() \
        else source_calibration(ctx.paths.calibration)
    ctx.wrote(path, "calibration")
    ctx.calibration = path


def _pose_outputs(ctx: RunContext) -> None:
    """The pose stage's camera folders ``pose/<cam>_json``."""
    from .inputs import pose_folders

    for folder in pose_folders(ctx.paths.pose):
        ctx.wrote(folder, "camera")
    summary = ctx.paths.reports / "pose_summary.json"
    if summary.is_file():
        ctx.wrote(summary, "summary")


LEGACY_OUTPUTS: dict[str, Callable[[RunContext], None]] = {"calibration": _calibration_outputs,
                                                           "pose": _pose_outputs}


def project_paths(project: str | Path) -> ProjectPaths:
    root = Path(project).expanduser().resolve()
    if not root.is_dir():
        raise OpenKinError("project folder does not exist", path=root,
                           fix="give the folder that holds Config.toml (or its trial subfolder)")
    return ProjectPaths(root)


def _no_event(event: str, **fields) -> None:
    return None


def run_stages(project: str | Path, names: list[str], *, overrides: dict | None = None,
               progress_bars: bool = True,
               progress_factory: Callable[[str], Progress] | None = None,
               on_event: Callable[..., None] | None = None, wait: bool = False) -> dict[str, float]:
    """Run the named stages in pipeline order on one trial; return seconds per stage.

    ``progress_factory(stage_name)`` gives each stage its progress callback (default: a tqdm
    bar when ``progress_bars``). ``on_event(event, **fields)`` hears ``start`` (stages),
    ``stage`` (stage, index, count), ``stage_done`` (stage, seconds) and ``stage_failed``
    (stage, message) — the Blender runner turns them into JSON lines. A second run on the
    same project refuses at once (:class:`OpenKinError`), or waits with ``wait``. A stage
    that fails is recorded and its error raised.
    """
    from .calibration import pipeline_order
    from .config import load_config, write_resolved_config

    paths = project_paths(project)
    wanted = [s for s in STAGES if s.name in set(stage_names(list(names)))]
    emit = on_event or _no_event
    with project_lock(paths.root, wait=wait):
        config = load_config(paths.root, overrides=overrides)
        write_resolved_config(config, paths.reports)
        wanted = pipeline_order(wanted, config)  # a calibration from keypoints runs after pose and sync
        manifest = Manifest.load(paths.root)
        ctx = RunContext(config, paths, manifest, on_event=emit)
        manifest.start_run(ctx.run_id, [s.name for s in wanted])
        emit("start", stages=[s.name for s in wanted])
        timings: dict[str, float] = {}
        for index, stage in enumerate(wanted):
            emit("stage", stage=stage.name, index=index, count=len(wanted))
            try:
                timings[stage.name] = _run_one(ctx, stage, progress_bars, progress_factory)
            except BaseException as e:
                manifest.end_run(failed=stage.name)
                emit("stage_failed", stage=stage.name, message=str(getattr(e, "problem", e)))
                raise
            log.info("stage %-15s done in %.2f s", stage.name, timings[stage.name])
            emit("stage_done", stage=stage.name, seconds=timings[stage.name])
        manifest.end_run()
    return timings


def _run_one(ctx: RunContext, stage: Stage, progress_bars: bool,
             progress_factory: Callable[[str], Progress] | None) -> float:
    fn = stage_function(stage)
    log.info("stage %s ...", stage.name)
    if progress_factory is not None:
        cb, close = progress_factory(stage.name), (lambda: None)
    else:
        cb, close = tqdm_progress(stage.name) if progress_bars else (None, lambda: None)
    try:
        return execute(ctx, stage.name, fn, cb)
    finally:
        close()


# =========================================================================== Python API
@dataclass
class RunResult:
    """What :func:`run` did. ``timings``: seconds per stage that finished; ``failed``: the stage
    that failed (with ``error``, its message) or None; ``report``: the HTML report or None;
    ``manifest``: the run manifest (what each stage read, wrote and measured)."""

    project: Path
    stages: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    failed: str | None = None
    error: str | None = None
    report: Path | None = None
    manifest: Path | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


def run(project: str | Path, stages: list[str] | None = None, overrides: dict | None = None,
        progress: Progress | None = None, *, report: bool = True, wait: bool = False) -> RunResult:
    """Run ``stages`` (all when None) on the trial folder ``project``, then write its report.

    ``overrides``: config values over the project's Config.toml (``{"section": {"key": value}}``);
    ``progress(fraction, message)``: the whole run's progress (return False to cancel). A stage
    that fails does not raise: see ``result.failed`` and ``result.error``. A project that another
    run holds raises :class:`OpenKinError` (or waits, with ``wait``).
    """
    names = stage_names(stages)
    paths = project_paths(project)
    result = RunResult(paths.root, names, manifest=paths.reports / "manifest.json")
    step = {n: i for i, n in enumerate(names)}

    def factory(name: str) -> Progress | None:
        return scaled(progress, step[name] / len(names), (step[name] + 1) / len(names))

    def on_event(event: str, **fields) -> None:
        if event == "stage_done":
            result.timings[fields["stage"]] = fields["seconds"]
        elif event == "stage_failed":
            result.failed, result.error = fields["stage"], fields["message"]

    try:
        run_stages(paths.root, names, overrides=overrides, progress_bars=False, progress_factory=factory,
                   on_event=on_event, wait=wait)
    except OpenKinError as e:
        if result.failed is None:  # before any stage: bad project, config or lock
            raise
        log.error("stage %s failed: %s", result.failed, e)
    if report:
        from .report import write_report

        result.report = write_report(paths)
    return result

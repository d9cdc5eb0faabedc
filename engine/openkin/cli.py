"""The ``openkin`` command line: one subcommand per stage, ``run`` for all of them.

Stage modules expose ``run_stage(config, paths, progress=None)``; tool modules
(synth, evaluate, assets, demo, report) expose ``add_arguments(parser)`` and
``main(args) -> int``. Modules are imported lazily so ``openkin --help`` is fast
and a stage that is not built yet is reported plainly, not as a traceback.

Exit codes: 0 success, 1 internal error (a bug: traceback in the log file),
2 user error (bad input: the message names the file, the problem and the fix),
3 a requested stage is not built yet, 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import OpenKinError
from .progress import Cancelled, Progress, tqdm_progress
from .project import ProjectPaths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    help: str


# Pipeline order. ``module`` holds ``run_stage(config, paths, progress)``.
STAGES: tuple[Stage, ...] = (
    Stage("calibration", "openkin.calibration", "convert or compute the calibration TOML"),
    Stage("pose", "openkin.pose", "2D keypoints from the videos (pose/<cam>_json)"),
    Stage("synchronization", "openkin.synchronization", "per-camera time offsets (pose-sync)"),
    Stage("association", "openkin.association", "who is who across cameras (pose-associated)"),
    Stage("refinement", "openkin.refinement", "refine camera extrinsics from the person's keypoints (bundle adjustment)"),
    Stage("triangulation", "openkin.triangulation", "3D keypoints (pose-3d/*.trc)"),
    Stage("filtering", "openkin.filtering", "outlier rejection and smoothing of 3D keypoints"),
    Stage("augmentation", "openkin.augmentation", "LSTM marker augmentation"),
    Stage("kinematics", "openkin.kinematics", "OpenSim scaling and inverse kinematics"),
)

# Commands that are not pipeline stages: name -> (module, help).
TOOLS: dict[str, tuple[str, str]] = {
    "synth": ("openkin.synth", "build a ground-truth scene (Pose2Sim layout) from OpenSim forward kinematics"),
    "evaluate": ("openkin.evaluate", "compare results with truth: MPJPE, PA-MPJPE, MPJAE"),
    "assets": ("openkin.assets", "fetch, verify or locate the demo data, OpenSim models and augmenter"),
    "demo": ("openkin.demo", "obtain the demo project and run the whole pipeline on it, with a report"),
    "report": ("openkin.report", "write the HTML/PNG report of a processed project"),
}


class StageNotBuilt(Exception):
    """The module of a requested stage or tool does not exist yet."""


def load_stage(stage: Stage):
    """The ``run_stage`` callable of ``stage``; :class:`StageNotBuilt` if its module is absent."""
    try:
        module = importlib.import_module(stage.module)
    except ModuleNotFoundError as e:
        if e.name and (e.name == stage.module or stage.module.startswith(e.name + ".")):
            raise StageNotBuilt(stage.name) from None
        raise
    run = getattr(module, "run_stage", None)
    if run is None:
        raise StageNotBuilt(stage.name)
    return run


def available_stages() -> dict[str, bool]:
    """Stage name -> whether its module is built."""
    return {s.name: importlib.util.find_spec(s.module) is not None for s in STAGES}


def _setup_logging(verbose: bool, log_file: Path | None) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for h in list(root.handlers):
        root.removeHandler(h)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s" if verbose else "%(message)s"))
    root.addHandler(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def _project_paths(path: str) -> ProjectPaths:
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise OpenKinError("project folder does not exist", path=root,
                           fix="give the folder that holds Config.toml (or its trial subfolder)")
    return ProjectPaths(root)


def _no_event(event: str, **fields) -> None:
    return None


def run_stages(project: str | Path, names: list[str], *, overrides: dict | None = None,
               progress_bars: bool = True,
               progress_factory: Callable[[str], Progress] | None = None,
               on_event: Callable[..., None] | None = None) -> dict[str, float]:
    """Run the named stages in pipeline order on one trial; return seconds per stage.

    ``progress_factory(stage_name)`` gives each stage its progress callback
    (default: a tqdm bar when ``progress_bars``). ``on_event(event, **fields)``
    hears ``start`` (stages), ``stage`` (stage, index, count), ``skipped``
    (stage, seconds) and ``stage_done`` (stage, seconds) — the Blender runner
    turns them into JSON lines.
    """
    paths = _project_paths(str(project))
    from .config import load_config, write_resolved_config

    config = load_config(paths.root, overrides=overrides)
    write_resolved_config(config, paths.reports)
    emit = on_event or _no_event
    wanted = [s for s in STAGES if s.name in set(names)]
    from .calibration import pipeline_order  # calibration from keypoints runs after pose (and synchronization)
    wanted = pipeline_order(wanted, config)
    emit("start", stages=[s.name for s in wanted])
    timings: dict[str, float] = {}
    for index, stage in enumerate(wanted):
        emit("stage", stage=stage.name, index=index, count=len(wanted))
        try:
            run = load_stage(stage)
        except StageNotBuilt:
            log.warning("stage %-15s not built yet: skipped", stage.name)
            emit("skipped", stage=stage.name, seconds=0.0)
            continue
        log.info("stage %s ...", stage.name)
        t0 = time.perf_counter()
        if progress_factory is not None:
            cb, close = progress_factory(stage.name), (lambda: None)
        else:
            cb, close = tqdm_progress(stage.name) if progress_bars else (None, lambda: None)
        try:
            run(config, paths, cb)
        finally:
            close()
        timings[stage.name] = time.perf_counter() - t0
        log.info("stage %-15s done in %.2f s", stage.name, timings[stage.name])
        emit("stage_done", stage=stage.name, seconds=timings[stage.name])
    return timings


def _parse_set(values: list[str] | None) -> dict:
    """``--set section.key=value`` (TOML value syntax) -> nested dict."""
    from .fileio import parse_toml_value

    out: dict = {}
    for item in values or []:
        if "=" not in item:
            raise OpenKinError(f"--set {item!r} is not of the form section.key=value",
                               fix="e.g. --set filtering.type='kalman'")
        key, value = item.split("=", 1)
        parsed = parse_toml_value(value)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = parsed
    return out


def _cmd_run(args) -> int:
    if args.stages:
        names = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = [n for n in names if n not in {s.name for s in STAGES}]
        if unknown:
            raise OpenKinError(f"unknown stage(s): {', '.join(unknown)}",
                               fix=f"choose among: {', '.join(s.name for s in STAGES)}")
    else:
        names = [s.name for s in STAGES]
        if args.skip:
            names = [n for n in names if n not in args.skip.split(",")]
    built = available_stages()
    missing = [n for n in names if not built[n]]
    if missing:
        log.warning("not built yet in this version: %s", ", ".join(missing))
    timings = run_stages(args.project, names, overrides=_parse_set(args.set), progress_bars=not args.no_progress)
    if timings:
        log.info("timings: %s", ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
        if not args.no_report:
            from .report import write_report

            write_report(_project_paths(args.project), timings)
    if args.stages and missing:
        return 3
    return 0


def _cmd_stage(args) -> int:
    stage = next(s for s in STAGES if s.name == args.command)
    try:
        load_stage(stage)
    except StageNotBuilt:
        log.error("stage %s is not built yet in OpenKin %s", stage.name, __version__)
        return 3
    run_stages(args.project, [stage.name], overrides=_parse_set(args.set), progress_bars=not args.no_progress)
    return 0


def _cmd_status(args) -> int:
    for name, ok in available_stages().items():
        sys.stdout.write(f"{name:16s} {'built' if ok else 'not built yet'}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="openkin", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"openkin {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages on the console")
    sub = p.add_subparsers(dest="command", required=True)

    def project_args(sp):
        sp.add_argument("project", help="trial folder (holds Config.toml or inherits its session's)")
        sp.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override a config value, TOML syntax (repeatable)")
        sp.add_argument("--no-progress", action="store_true", help="no progress bars")

    sp = sub.add_parser("run", help="run the pipeline stages in order")
    project_args(sp)
    sp.add_argument("--stages", help="comma-separated subset, e.g. triangulation,filtering")
    sp.add_argument("--skip", help="comma-separated stages to skip")
    sp.add_argument("--no-report", action="store_true", help="do not write openkin/report.html at the end")
    sp.set_defaults(func=_cmd_run)
    for stage in STAGES:
        sp = sub.add_parser(stage.name, help=stage.help)
        project_args(sp)
        sp.set_defaults(func=_cmd_stage)
    sp = sub.add_parser("status", help="which stages this version has built")
    sp.set_defaults(func=_cmd_status)
    for name, (module, help_) in TOOLS.items():
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(tool_module=module)
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).add_arguments(sp)
    return p


def _log_file(args) -> Path | None:
    project = getattr(args, "project", None)
    if project and Path(project).is_dir():
        return ProjectPaths(Path(project).resolve()).logs / "openkin.log"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, _log_file(args))
    try:
        if hasattr(args, "tool_module"):
            if importlib.util.find_spec(args.tool_module) is None:
                log.error("command %s is not built yet in OpenKin %s", args.command, __version__)
                return 3
            return int(importlib.import_module(args.tool_module).main(args) or 0)
        return args.func(args)
    except OpenKinError as e:
        log.error("error: %s", e)
        return 2
    except Cancelled:
        log.error("cancelled")
        return 130
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception:
        log.exception("internal error (please report it with the log file)")
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``openkin`` command line: one subcommand per stage, ``run`` for all of them.

Stages and how they run: :mod:`openkin.pipeline`. Tool modules (synth, evaluate, assets,
demo, report) expose ``add_arguments(parser)`` and ``main(args) -> int``. Modules are
imported when their command runs, so ``openkin --help`` is fast.

Exit codes: 0 success, 1 internal error (a bug: traceback in the log file),
2 user error (bad input, a failed stage, a project another run holds: the message names
the file, the problem and the fix), 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import OpenKinError
from .pipeline import STAGES, stage_names
from .progress import Cancelled, Progress, check_interrupted, clear_interrupted, on_interrupt_signal
from .project import ProjectPaths

log = logging.getLogger(__name__)

# Commands that are not pipeline stages: name -> (module, help).
TOOLS: dict[str, tuple[str, str]] = {
    "synth": ("openkin.synth", "build a ground-truth scene (Pose2Sim layout) from OpenSim forward kinematics"),
    "evaluate": ("openkin.evaluate", "compare results with truth: MPJPE, PA-MPJPE, MPJAE"),
    "assets": ("openkin.assets", "fetch, verify or locate the demo data, OpenSim models and augmenter"),
    "demo": ("openkin.demo", "obtain the demo project and run the whole pipeline on it, with a report"),
    "report": ("openkin.report", "write the HTML/PNG report of a processed project"),
    "plan": ("openkin.plan", "camera-placement planner: coverage and expected 3D error of a camera layout"),
    "edit": ("openkin.recompute.edit", "add, list or remove corrections (openkin/edits.toml) every run honours"),
    "recompute": ("openkin.recompute", "recompute triangulation to kinematics on a frame range, spliced into the outputs"),
    "overlays": ("openkin.overlays", "draw the 2D detections and reprojected markers over each camera (PNG)"),
    "batch": ("openkin.batch", "run every trial of a session, in parallel (Dask), resumable, with a summary"),
    "export": ("openkin.export", "export the motion on a character rig: FBX, BVH, glTF/GLB, USD, Alembic"),
}


def run_stages(project: str | Path, names: list[str], *, overrides: dict | None = None,
               progress_bars: bool = True,
               progress_factory: Callable[[str], Progress] | None = None,
               on_event: Callable[..., None] | None = None, wait: bool = False) -> dict[str, float]:
    """:func:`openkin.pipeline.run_stages` (the entry point of the Blender runner)."""
    from .pipeline import run_stages as run_pipeline

    return run_pipeline(project, names, overrides=overrides, progress_bars=progress_bars,
               progress_factory=progress_factory, on_event=on_event, wait=wait)


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
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            log.warning("cannot write the log file %s (%s): logging to the console only", log_file, exc.strerror)
            return
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def _project_paths(path: str) -> ProjectPaths:
    from .pipeline import project_paths

    return project_paths(path)


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
    else:
        skip = {s.strip() for s in (args.skip or "").split(",") if s.strip()}
        names = [s.name for s in STAGES if s.name not in skip]
    return _run(args, names, report=not args.no_report)


def _cmd_stage(args) -> int:
    return _run(args, [args.command], report=False)


def _run(args, names: list[str], report: bool) -> int:
    """Run ``names``; the report (``openkin run``) is written even when a stage failed, which it shows."""
    from .chunks import use_client
    from .cluster import client_for

    names = stage_names(names)
    try:
        with client_for(args.workers, args.scheduler) as client, use_client(client):  # time chunks as Dask tasks
            timings = run_stages(args.project, names, overrides=_parse_set(args.set),
                                 progress_bars=not args.no_progress, wait=args.wait)
    except OpenKinError:
        if report and (_project_paths(args.project).reports / "manifest.json").is_file():
            _write_report(args.project)
        raise
    log.info("timings: %s", ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    if report:
        _write_report(args.project)
    return 0


def _write_report(project: str) -> None:
    from .report import write_report

    write_report(_project_paths(project))


def _cmd_status(args) -> int:
    """Without a project: the stages. With one: each stage's state in its run manifest."""
    if not args.project:
        for stage in STAGES:
            sys.stdout.write(f"{stage.name:16s} {stage.help}\n")
        return 0
    from .manifest import Manifest

    manifest = Manifest.load(_project_paths(args.project).root)
    for name in (s.name for s in STAGES):
        rec = manifest.record(name) or {}
        state = rec.get("status", "not run")
        detail = f" ({rec.get('error')})" if state == "failed" else f" in run {rec['run']}" if "run" in rec else ""
        sys.stdout.write(f"{name:16s} {state}{detail}\n")
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
        sp.add_argument("--wait", action="store_true",
                        help="wait for another run on this project to finish instead of refusing")
        sp.add_argument("--workers", type=int, default=None, metavar="N",
                        help="cameras and long takes' time chunks (pose, IK) on a Dask cluster of N local processes")
        sp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="... on the Dask scheduler at ADDRESS (tcp://host:8786; shared storage)")

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
    sp = sub.add_parser("status", help="the stages; with a project, the state of each in its last runs")
    sp.add_argument("project", nargs="?", help="trial folder")
    sp.set_defaults(func=_cmd_status)
    for name, (module, help_) in TOOLS.items():
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(tool_module=module)
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
    clear_interrupted()
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGINT, on_interrupt_signal)
        signal.signal(signal.SIGTERM, on_interrupt_signal)  # terminate = Ctrl+C: clean up, exit 130
    try:
        if hasattr(args, "tool_module"):
            code = int(importlib.import_module(args.tool_module).main(args) or 0)
        else:
            code = args.func(args)
        check_interrupted()  # an interrupt swallowed after the last stage's check: not a success
        return code
    except OpenKinError as e:
        log.error("error: %s", e)
        return 2
    except Cancelled:
        log.error("cancelled")
        return 130
    except KeyboardInterrupt:
        log.error("interrupted")
        if _EXIT_AT_ONCE:
            _exit_now(130)
        return 130
    except Exception:
        log.exception("internal error (please report it with the log file)")
        return 1


_EXIT_AT_ONCE = False  # set by the command (entry), never by in-process callers of main()


def _exit_now(code: int) -> None:
    """Leave the process at once, without unwinding further: the interrupted stage's frames
    (and the OpenSim objects they hold) are not destroyed — OpenSim's C++ destructors can
    crash mid-solve and turn the exit code into a segmentation fault. Clean-up (temporary
    files removed, the manifest saying so) is done by then; the log is flushed here."""
    from .fileio import remove_pending_temporaries

    remove_pending_temporaries()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def entry() -> None:
    """The ``openkin`` command: :func:`main`, then exit (at once when interrupted)."""
    global _EXIT_AT_ONCE
    _EXIT_AT_ONCE = True
    sys.exit(main())


if __name__ == "__main__":
    entry()

"""``openkin demo``: obtain the demo project, run every stage on it, build its Blender scene, write the report.

The demo project is Pose2Sim's ``Demo_SinglePerson`` (four videos, a Qualisys
calibration, checkerboard images), taken from the pinned wheel by
:mod:`openkin.assets`. It goes to ``demo/project/`` when run from the
repository (``--out`` elsewhere), with ``demo/Config.toml`` as its Config.toml.

A second run reuses the project and what the stages already produced (2D poses
are kept unless ``--set pose.overwrite_pose=true``). A Config.toml you edited in
the project is kept; one the demo wrote and you left alone is refreshed when
``demo/Config.toml`` changes.

Stages run in one run (:func:`openkin.pipeline.run`); a stage that fails stops the ones after
it, and the report is still written (it shows them as not run). The Blender scene is built
by the add-on's command-line entry point ``blender_addon/cli_entry.py`` in a child process
with this Python's ``bpy`` (the engine never imports the add-on). Exit code 0 when every
stage and the scene succeeded, 2 when one failed (a missing ``bpy`` module only skips the
scene, with a log line).
"""
from __future__ import annotations

import hashlib
import logging
import sys
import time
from pathlib import Path

from .errors import OpenKinError
from .progress import tqdm_progress
from .project import ProjectPaths

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "demo" / "Config.toml"
CONFIG_STAMP = "demo_config.sha256"
BLEND_NAME = "demo.blend"
RENDER_NAME = "demo_render.png"  # the first camera's view at mid-capture, rendered from the .blend
CHARACTER_NAME = "demo_character.png"  # cam01: the OpenSim skeleton | the retargeted Rigify character (+ .json)
CLI_ENTRY = REPO_ROOT / "blender_addon" / "cli_entry.py"  # the add-on's documented entry point
NO_BPY = 3  # cli_entry.py's exit code when this Python has no bpy module


def default_destination() -> Path:
    """``demo/project`` in the repository when running from it, else ``./openkin-demo``."""
    if DEMO_CONFIG.is_file() and (REPO_ROOT / "engine" / "pyproject.toml").is_file():
        return REPO_ROOT / "demo" / "project"
    return Path.cwd() / "openkin-demo"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare_project(dest: Path, config_source: Path | None = DEMO_CONFIG) -> Path:
    """The demo project at ``dest``: copied from the assets if absent, with the demo Config.toml."""
    from .assets import demo_project

    dest = dest.expanduser().resolve()
    fresh = not dest.exists() or (dest.is_dir() and not any(dest.iterdir()))
    if fresh:
        log.info("demo: copying the demo project into %s", dest)
        demo_project(dest)
    elif not (dest / "videos").is_dir() or not (dest / "calibration").is_dir():
        raise OpenKinError("this folder exists but is not a demo project (no videos/ or calibration/)", path=dest,
                           fix="give --out a new folder, or remove this one")
    else:
        log.info("demo: reusing the project in %s (remove the folder to start over)", dest)
    _install_config(ProjectPaths(dest), config_source, fresh)
    return dest


def _install_config(paths: ProjectPaths, source: Path | None, fresh: bool) -> None:
    """Copy ``source`` to the project's Config.toml unless the user edited the one there."""
    target = paths.root / "Config.toml"
    stamp = paths.reports / CONFIG_STAMP
    if source is None or not source.is_file():
        log.warning("demo: %s not found (not running from the repository): using the demo's own Config.toml",
                    source)
        return
    if target.is_file() and _digest(target) == _digest(source):
        return
    written_by_us = stamp.is_file() and target.is_file() and stamp.read_text().strip() == _digest(target)
    if not fresh and target.is_file() and not written_by_us:
        log.warning("demo: %s was edited (or not written by the demo): kept; delete it to get %s",
                    target, source)
        return
    from .fileio import atomic_write

    with atomic_write(target) as f:
        f.write(source.read_text(encoding="utf-8"))
    with atomic_write(stamp) as f:
        f.write(_digest(target) + "\n")
    log.info("demo: configuration %s -> %s", source, target)


class _NotBuilt(Exception):
    pass


def run_cli_entry(arguments: list[str], root: Path, timeout: float, what: str, fix: str) -> bool:
    """Run the add-on's ``blender_addon/cli_entry.py ARGUMENTS`` with this interpreter (it needs ``bpy``).

    Returns False, with a log line, when the add-on is not next to the engine or this Python has
    no ``bpy``; raises :class:`OpenKinError` (about ``root``, with ``fix``) when ``what`` fails or
    takes longer than ``timeout`` s. The one launcher of the add-on from the engine (the demo's
    scene, ``openkin export``)."""
    import subprocess

    if not CLI_ENTRY.is_file():
        log.info("no Blender add-on next to the engine (not running from the repository): no %s", what)
        return False
    command = [sys.executable, str(CLI_ENTRY), *arguments]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OpenKinError(f"{what} took more than {timeout:.0f} s", path=root, fix=fix) from None
    if result.returncode == NO_BPY:
        log.info("the bpy module is not installed in this Python: no %s (pip install bpy)", what)
        return False
    if result.returncode != 0:
        message = result.stderr.strip()
        if result.returncode == 2 and message.startswith("error: "):   # an OpenKinError in the child
            raise OpenKinError(message.removeprefix("error: ").strip()[-1500:])
        raise OpenKinError(f"{what} failed (exit {result.returncode}): {message[-1500:]}", path=root, fix=fix)
    return True


def save_blend(project: Path, out: Path | None = None, timeout: float = 1200) -> Path | None:
    """Build the project's Blender scene with the add-on and save it (``openkin/demo.blend``), with a
    render of its first camera (``openkin/demo_render.png``).

    Runs ``blender_addon/cli_entry.py build`` with this interpreter (it needs ``bpy``). Returns
    None, with a log line, when the add-on is not next to the engine or this Python has no
    ``bpy``; :class:`OpenKinError` when the build fails or takes longer than ``timeout`` s.
    """
    from .fileio import atomic_path

    paths = ProjectPaths(Path(project))
    out = out or paths.reports / BLEND_NAME
    if not CLI_ENTRY.is_file():
        log.info("demo: no Blender add-on next to the engine (not running from the repository): no .blend")
        return None
    from .assets import assets_dir, is_ready

    geometry = ["--geometry", str(assets_dir() / "OpenSim_Setup" / "Geometry")] if is_ready() else []
    try:
        with atomic_path(out) as tmp, atomic_path(paths.reports / RENDER_NAME) as png:
            if not run_cli_entry(["build", "--project", str(paths.root), "--blend", str(tmp), "--render", str(png),
                                  "--cache", str(paths.reports / "blender_cache"), *geometry], paths.root, timeout,
                                 "building the Blender scene",
                                 "see the message; `openkin demo --no-blend` skips the scene"):
                raise _NotBuilt
    except _NotBuilt:   # no empty demo.blend / demo_render.png left behind
        return None
    log.info("demo: Blender scene saved to %s (render of its first camera: %s)", out, paths.reports / RENDER_NAME)
    return out


def _has_kinematics(project: Path) -> bool:
    """Whether this project's kinematics results are current (a demo run with ``--stages`` up to an
    earlier stage has no skeleton to put on a character: the render is left out, not an error)."""
    from .manifest import Manifest

    if Manifest.load(Path(project)).done("kinematics") is None:
        log.info("demo: no current kinematics results: no character render")
        return False
    return True


def save_character_render(project: Path, camera: str = "cam01", timeout: float = 1800) -> Path | None:
    """Render the OpenSim skeleton and the Rigify character retargeted from the animation
    skeleton side by side over ``camera``'s video (``openkin/demo_character.png``, with a
    ``.json`` saying what it shows), by ``cli_entry.py character-render`` in a child process.
    None when the add-on or ``bpy`` is missing; :class:`OpenKinError` when it fails."""
    from .assets import assets_dir, is_ready
    from .fileio import atomic_path

    paths = ProjectPaths(Path(project))
    png = paths.reports / CHARACTER_NAME
    geometry = ["--geometry", str(assets_dir() / "OpenSim_Setup" / "Geometry")] if is_ready() else []
    try:
        with atomic_path(png) as tmp:
            if not run_cli_entry(["character-render", "--project", str(paths.root), "--png", str(tmp), "--rig", "rigify",
                                  "--camera", camera, "--cache", str(paths.reports / "blender_cache"), *geometry],
                                 paths.root, timeout, "rendering the retargeted character",
                                 "see the message; `openkin demo --no-blend` skips the scene and the render"):
                raise _NotBuilt
            tmp.with_suffix(".json").replace(png.with_suffix(".json"))
    except _NotBuilt:
        return None
    log.info("demo: character render (OpenSim skeleton | Rigify character, %s) saved to %s", camera, png)
    return png


def _stage_names(args) -> list[str]:
    from .pipeline import stage_names

    names = stage_names([n.strip() for n in args.stages.split(",")] if args.stages else None)
    skip = set(stage_names([n.strip() for n in args.skip.split(",")])) if args.skip else set()
    return [n for n in names if n not in skip]


def add_arguments(parser) -> None:
    parser.add_argument("--out", help="folder of the demo project (default: demo/project in the repository, "
                                      "else ./openkin-demo); reused when it exists")
    parser.add_argument("--stages", help="comma-separated subset of the stages, e.g. calibration,pose")
    parser.add_argument("--skip", help="comma-separated stages to skip")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override a config value, TOML syntax (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-blend", action="store_true", help="do not save the Blender scene (demo.blend)")


def _log_to_project(paths: ProjectPaths) -> logging.Handler:
    paths.logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(paths.logs / "openkin.log", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def main(args) -> int:
    from .cli import _parse_set
    from .pipeline import run
    from .report import summary_lines, write_report

    names = _stage_names(args)
    overrides = _parse_set(args.set)
    dest = Path(args.out) if args.out else default_destination()
    t0 = time.perf_counter()
    project = prepare_project(dest)
    paths = ProjectPaths(project)
    handler = _log_to_project(paths)
    try:
        bar, close_bar = (None, lambda: None) if args.no_progress else tqdm_progress("demo")
        try:
            result = run(project, names, overrides, bar, report=False)
        finally:
            close_bar()
        if result.failed:
            log.error("demo: stage %s failed: %s", result.failed, result.error)
        blend_error = None
        if not args.no_blend and result.ok:
            try:
                if save_blend(project) is not None and _has_kinematics(project):
                    save_character_render(project)
            except OpenKinError as e:
                blend_error = e
                log.error("demo: %s", e)
        html = write_report(paths)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    for line in summary_lines(paths):
        log.info("%s", line)
    ok = result.ok and blend_error is None
    log.info("demo %s in %.1f s: outputs in %s, report %s", "finished" if ok else "FAILED",
             time.perf_counter() - t0, project, html)
    return 0 if ok else 2

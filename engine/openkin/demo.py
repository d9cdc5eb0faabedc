"""``openkin demo``: obtain the demo project, run every stage that exists on it, write the report.

The demo project is Pose2Sim's ``Demo_SinglePerson`` (four videos, a Qualisys
calibration, checkerboard images), taken from the pinned wheel by
:mod:`openkin.assets`. It goes to ``demo/project/`` when run from the
repository (``--out`` elsewhere), with ``demo/Config.toml`` as its Config.toml.

A second run reuses the project and what the stages already produced (2D poses
are kept unless ``--set pose.overwrite_pose=true``). A Config.toml you edited in
the project is kept; one the demo wrote and you left alone is refreshed when
``demo/Config.toml`` changes.

Stages run one by one; a stage that fails stops the ones after it, and the
report is still written with what exists. Exit code 0 when every stage that is
built ran, 2 when one failed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from .errors import OpenKinError
from .project import ProjectPaths

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "demo" / "Config.toml"
CONFIG_STAMP = "demo_config.sha256"
BLEND_NAME = "demo.blend"
RENDER_NAME = "demo_render.png"  # the first camera's view at mid-capture, rendered from the .blend
ADDON_DIR = REPO_ROOT / "blender_addon"
# Run in a child process (the engine never imports bpy): build the project's scene with the
# add-on's own importer and save it. argv: repo root, JSON of {project, out, cache, geometry}.
_BLEND_SCRIPT = """
import json, sys
from pathlib import Path
try:
    import bpy
except ImportError:
    sys.exit(3)
sys.path.insert(0, sys.argv[1])
from blender_addon.core.capture import find_project
from blender_addon.scene.build import BuildOptions, import_files
job = json.loads(sys.argv[2])
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.preferences.filepaths.save_version = 0
options = BuildOptions(cache_dir=Path(job["cache"]), geometry_dirs=[Path(p) for p in job["geometry"]])
import_files(bpy.context, find_project(job["project"]), options)
bpy.ops.wm.save_as_mainfile(filepath=job["out"], check_existing=False, relative_remap=True)
if job.get("png"):
    from blender_addon.scene.snapshot import render_camera
    scn = bpy.context.scene
    cams = sorted((o for o in scn.objects if o.type == "CAMERA"), key=lambda o: o.name)
    if cams:
        render_camera(scn, cams[0], (scn.frame_start + scn.frame_end) // 2, job["png"], percentage=50)
"""


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


class _BlendFailed(Exception):
    """The child process building the .blend exited with an error (code, stderr)."""


def save_blend(project: Path, out: Path | None = None, timeout: float = 1200) -> Path | None:
    """Build the project's Blender scene with the add-on and save it (``openkin/demo.blend``).

    Runs in a child process with this interpreter's ``bpy`` module; returns None (with a
    log line) when bpy or the add-on is not available or the build fails. The demo
    goes on either way.
    """
    from .fileio import atomic_path

    paths = ProjectPaths(Path(project))
    out = out or paths.reports / BLEND_NAME
    if not (ADDON_DIR / "scene" / "build.py").is_file():
        log.info("demo: no Blender add-on next to the engine (not running from the repository): no .blend")
        return None
    from .assets import assets_dir, is_ready

    geometry = [str(assets_dir() / "OpenSim_Setup" / "Geometry")] if is_ready() else []
    job = {"project": str(paths.root), "cache": str(paths.reports / "blender_cache"), "geometry": geometry}
    try:
        with atomic_path(out) as tmp, atomic_path(paths.reports / RENDER_NAME) as png:
            job["out"], job["png"] = str(tmp), str(png)
            result = subprocess.run([sys.executable, "-c", _BLEND_SCRIPT, str(REPO_ROOT), json.dumps(job)],
                                    capture_output=True, text=True, timeout=timeout)
            if result.returncode != 0:
                raise _BlendFailed(result.returncode, result.stderr)
    except _BlendFailed as e:
        code, stderr = e.args
        if code == 3:
            log.info("demo: the bpy module is not installed in this Python: no .blend (pip install bpy)")
        else:
            log.warning("demo: building the Blender scene failed (exit %s): %s", code, stderr.strip()[-2000:])
        return None
    except subprocess.TimeoutExpired:
        log.warning("demo: building the Blender scene took more than %.0f s: stopped, no .blend", timeout)
        return None
    log.info("demo: Blender scene saved to %s (render of its first camera: %s)", out, paths.reports / RENDER_NAME)
    return out


def run_pipeline(project: Path, names: list[str], overrides: dict | None = None,
                 progress_bars: bool = True) -> tuple[dict[str, float], dict[str, str]]:
    """Run ``names`` (in pipeline order) one by one.

    A stage that fails stops the pipeline, unless an earlier stage is not built yet
    (its input is then simply missing): it is noted and the next stages are tried.
    Returns (seconds per stage that ran, stage -> message for stages that failed or
    could not run).
    """
    from .cli import STAGES, StageNotBuilt, load_stage, run_stages

    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    unbuilt: list[str] = []
    for stage in STAGES:
        if stage.name not in names:
            continue
        try:
            load_stage(stage)
        except (StageNotBuilt, AttributeError):  # AttributeError: a module being written, no run_stage yet
            log.info("demo: stage %-15s not built yet: skipped", stage.name)
            unbuilt.append(stage.name)
            continue
        try:
            timings.update(run_stages(project, [stage.name], overrides=overrides, progress_bars=progress_bars))
        except OpenKinError as e:
            if unbuilt:
                log.warning("demo: stage %s could not run (%s); stage(s) %s before it are not built yet",
                            stage.name, e.problem, ", ".join(unbuilt))
                failures[stage.name] = f"not run: needs {', '.join(unbuilt)} (not built yet): {e.problem}"
                continue
            log.error("demo: stage %s failed: %s", stage.name, e)
            failures[stage.name] = e.problem
            break
    return timings, failures


def _stage_names(args) -> list[str]:
    from .cli import STAGES

    all_names = [s.name for s in STAGES]
    names = [n.strip() for n in args.stages.split(",")] if args.stages else all_names
    skip = {n.strip() for n in args.skip.split(",")} if args.skip else set()
    unknown = [n for n in list(names) + list(skip) if n not in all_names]
    if unknown:
        raise OpenKinError(f"unknown stage(s): {', '.join(unknown)}", fix=f"choose among: {', '.join(all_names)}")
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
    from .report import summary_lines, write_report

    names = _stage_names(args)
    overrides = _parse_set(args.set)
    dest = Path(args.out) if args.out else default_destination()
    t0 = time.perf_counter()
    project = prepare_project(dest)
    paths = ProjectPaths(project)
    handler = _log_to_project(paths)
    try:
        timings, failures = run_pipeline(project, names, overrides, progress_bars=not args.no_progress)
        if not args.no_blend and not failures:
            t1 = time.perf_counter()
            if save_blend(project) is not None:
                timings["blender scene"] = time.perf_counter() - t1
        html = write_report(paths, timings, failures)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    for line in summary_lines(paths):
        log.info("%s", line)
    log.info("demo finished in %.1f s: outputs in %s, report %s", time.perf_counter() - t0, project, html)
    return 2 if any(not m.startswith("not run:") for m in failures.values()) else 0

"""A plain ``pytest`` at the repository root runs both test tiers.

The engine tier (``tests/engine``, ``tests/e2e``) runs with Blender's modules blocked (its
conftest: the engine must never need ``bpy``); the add-on tier (``tests/addon``) imports the
``bpy`` module. They cannot share a process, so when one pytest run would collect both, this
plugin leaves ``tests/addon`` out of this process and runs it afterwards in a child pytest
with the same options; the run fails when either tier fails. ``pytest tests/addon`` or
``pytest tests/engine`` alone run in this process as before (``scripts/test.sh`` runs the
tiers one after the other that way).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "tests" / "addon"
CHILD_ENV = "OPENKIN_ADDON_TIER_CHILD"   # set in the child: no second split
_SPLIT: dict = {}


def _path_of(config, arg: str) -> Path:
    return (Path(config.invocation_params.dir) / arg.split("::")[0]).resolve()


def addon_tier_args(config) -> list[str] | None:
    """The paths the add-on tier's own process runs, or None when this run needs no split
    (it collects one tier only)."""
    if os.environ.get(CHILD_ENV):
        return None
    addon, other = [], False
    for arg in config.args:
        path = _path_of(config, arg)
        if _inside_addon(path):
            addon.append(arg)
        elif path in ADDON.parents:     # the root or tests/: both tiers
            addon.append(str(ADDON))
            other = True
        else:
            other = True
    return addon if addon and other else None


def pytest_configure(config):
    args = addon_tier_args(config)
    if args is not None:
        paths = set(config.args)
        _SPLIT["args"] = args
        _SPLIT["options"] = [a for a in config.invocation_params.args if a not in paths]
        # paths inside tests/addon named on the command line are collected whatever
        # pytest_ignore_collect says: take them out of this process's arguments
        config.args[:] = [a for a in config.args if not _inside_addon(_path_of(config, a))]


def _inside_addon(path: Path) -> bool:
    return path == ADDON or ADDON in path.parents


def pytest_ignore_collect(collection_path, config):
    if "args" in _SPLIT and _inside_addon(Path(collection_path).resolve()):
        return True
    return None


def pytest_sessionfinish(session, exitstatus):
    if "args" not in _SPLIT or exitstatus == 2:   # 2: interrupted
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", "add-on tier (tests/addon, bpy module) in its own process")
    cmd = [sys.executable, "-m", "pytest", *_SPLIT["options"], *_SPLIT["args"]]
    code = subprocess.run(cmd, cwd=session.config.invocation_params.dir,
                          env={**os.environ, CHILD_ENV: "1"}).returncode
    if reporter is not None:
        reporter.write_sep("=", f"add-on tier exit code {code}; engine tier above, summary below")
    if code not in (0, 5) and session.exitstatus in (0, 5):
        session.exitstatus = code
    elif code == 0 and session.exitstatus == 5:
        session.exitstatus = 0

"""A plain ``pytest`` over both tiers (the root conftest.py) runs the add-on tier in its own
process and fails when either tier fails (it stopped with "bpy was imported before the
engine tests started")."""
import os
import subprocess
import sys

from addon_helpers import ROOT


def _pytest(*args):
    env = {k: v for k, v in os.environ.items() if k != "OPENKIN_ADDON_TIER_CHILD"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def test_both_tiers_in_one_command():
    proc = _pytest("tests/engine/test_no_bpy.py", "tests/addon/test_register.py::test_panel_defaults_are_the_engines")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "bpy was imported" not in out
    assert "add-on tier (tests/addon, bpy module) in its own process" in out
    assert "1 passed" in out   # the add-on test, in the child


def test_an_addon_tier_failure_fails_the_run():
    proc = _pytest("tests/engine/test_no_bpy.py", "tests/addon/test_register.py::no_such_test")
    out = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 5), out[-3000:]
    assert "add-on tier exit code 4" in out

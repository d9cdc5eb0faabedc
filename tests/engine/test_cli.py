"""The command line: status, clear errors, exit codes."""
import subprocess
import sys

from openkin import cli


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "openkin.cli", *args], capture_output=True, text=True, timeout=120)


def test_status_lists_every_stage():
    r = run_cli("status")
    assert r.returncode == 0
    for stage in cli.STAGES:
        assert stage.name in r.stdout


def test_missing_project_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope"
    r = run_cli("run", str(missing))
    assert r.returncode == 2
    assert str(missing) in r.stderr and "fix:" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_stage_is_named(tmp_path):
    r = run_cli("run", str(tmp_path), "--stages", "triangulation,telepathy")
    assert r.returncode == 2
    assert "telepathy" in r.stderr and "Traceback" not in r.stderr


def test_set_parses_toml_values():
    out = cli._parse_set(["filtering.type='kalman'", "filtering.butterworth.order=2", "project.multi_person=true"])
    assert out == {"filtering": {"type": "kalman", "butterworth": {"order": 2}}, "project": {"multi_person": True}}

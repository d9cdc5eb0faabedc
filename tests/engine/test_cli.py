"""The command line: status, clear errors, exit codes."""
import subprocess
import sys

import pytest

from openkin import cli, pipeline

PIPELINE = ["calibration", "pose", "synchronization", "association", "refinement", "triangulation", "filtering",
            "augmentation", "kinematics"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "openkin.cli", *args], capture_output=True, text=True, timeout=300)


def test_status_lists_the_pipeline_in_order():
    r = run_cli("status")
    assert r.returncode == 0
    assert [line.split()[0] for line in r.stdout.splitlines()] == PIPELINE


def test_status_of_a_project_says_what_ran(tmp_path):
    from openkin.synth import build_scene

    scene = build_scene(tmp_path / "trial", "clean", n_frames=30, seed=2).path
    assert run_cli("run", str(scene), "--stages", "triangulation,filtering", "--no-progress").returncode == 0
    r = run_cli("status", str(scene))
    states = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()}
    assert states == {**{s: "not" for s in PIPELINE}, "triangulation": "done", "filtering": "done"}
    assert (scene / "openkin" / "report.html").is_file()


def test_a_missing_stage_module_is_an_error():
    with pytest.raises(ModuleNotFoundError):
        pipeline.stage_function(pipeline.Stage("gone", "openkin.no_such_stage", ""))


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

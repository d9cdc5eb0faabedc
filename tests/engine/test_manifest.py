"""Run manifest, run context and project lock on real ground-truth scenes and real processes:
stale outputs are never inputs, the report shows only the figures of current outputs, and two
runs on one project never interleave."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import openkin
from openkin.errors import OpenKinError
from openkin.formats.trc import read_trc
from openkin.manifest import Manifest, dependents
from openkin.synth import build_scene

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FAST_IK = {"kinematics": {"use_simple_model": True}}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return build_scene(tmp_path_factory.mktemp("manifest") / "trial", "clean", n_frames=60, seed=4).path


def _copy(scene: Path, dest: Path) -> Path:
    shutil.copytree(scene, dest, ignore=shutil.ignore_patterns("openkin", "pose-3d", "kinematics", "pose-associated"))
    return dest


def _records(project: Path) -> dict:
    return json.loads((project / "openkin" / "manifest.json").read_text())["stages"]


def test_dependents_follow_the_data():
    assert dependents("pose") == ["synchronization", "association", "refinement", "triangulation", "filtering",
                                  "augmentation", "kinematics"]
    assert dependents("filtering") == ["augmentation", "kinematics"]
    assert dependents("kinematics") == []


def test_rerun_with_another_frame_range(scene, tmp_path):
    """No extra person from the earlier range, kinematics fits once, _LSTM names its frames."""
    project = _copy(scene, tmp_path / "trial")
    stages = ["triangulation", "filtering", "augmentation", "kinematics"]
    first = openkin.run(project, stages, FAST_IK, report=False)
    assert first.ok, first.error
    second = openkin.run(project, stages, {**FAST_IK, "project": {"frame_range": [10, 50]}})
    assert second.ok, second.error
    rec = _records(project)
    assert [Path(o["path"]).name for o in rec["filtering"]["outputs"] if o["role"] == "trc"] == \
        ["trial_10-49_filt_butterworth.trc"]
    lstm = [project / o["path"] for o in rec["augmentation"]["outputs"] if o["role"] == "trc"]
    assert [p.name for p in lstm] == ["trial_10-49_filt_butterworth_LSTM.trc"]
    frames = read_trc(lstm[0]).frame_numbers
    assert (frames[0], frames[-1], len(frames)) == (10, 49, 40)          # the name says the frames it holds
    assert len(rec["kinematics"]["summary"]["trials"]) == 1               # fitted once
    assert sorted(p.name for p in (project / "kinematics").glob("*.mot")) == ["trial_10-49_filt_butterworth_LSTM.mot"]
    # the first run's files are set aside, not deleted, and not in Pose2Sim's folders any more
    assert sorted(p.name for p in (project / "pose-3d").glob("*.trc")) == [
        "trial_10-49.trc", "trial_10-49_filt_butterworth.trc", "trial_10-49_filt_butterworth_LSTM.trc"]
    stale = list((project / "openkin" / "stale").rglob("trial_0-59*.trc"))
    assert {p.name for p in stale} == {"trial_0-59.trc", "trial_0-59_filt_butterworth.trc",
                                       "trial_0-59_filt_butterworth_LSTM.trc"}


def test_renamed_project(scene, tmp_path):
    project = _copy(scene, tmp_path / "before")
    assert openkin.run(project, ["triangulation", "filtering"], report=False).ok
    renamed = project.rename(tmp_path / "after")
    result = openkin.run(renamed, ["triangulation", "filtering"], report=False)
    assert result.ok, result.error
    rec = _records(renamed)
    assert [f["input"] for f in rec["filtering"]["summary"]["files"]] == ["after_0-59.trc"]
    assert sorted(p.name for p in (renamed / "pose-3d").glob("*.trc")) == ["after_0-59.trc",
                                                                            "after_0-59_filt_butterworth.trc"]


def test_stale_file_dropped_in_by_hand_is_not_read(scene, tmp_path):
    """A TRC in pose-3d that no current record names is not processed (it may be anyone's)."""
    project = _copy(scene, tmp_path / "trial")
    assert openkin.run(project, ["triangulation"], report=False).ok
    shutil.copy(project / "pose-3d" / "trial_0-59.trc", project / "pose-3d" / "trial_5-30.trc")
    assert openkin.run(project, ["filtering"], report=False).ok
    assert [f["input"] for f in _records(project)["filtering"]["summary"]["files"]] == ["trial_0-59.trc"]
    assert (project / "pose-3d" / "trial_5-30.trc").is_file()           # left alone: not OpenKin's


def test_failed_stage_leaves_no_stale_figures(scene, tmp_path):
    project = _copy(scene, tmp_path / "trial")
    ok = openkin.run(project, ["association", "refinement", "triangulation", "filtering"])
    assert ok.ok, ok.error
    md = (project / "openkin" / "report.md").read_text()
    assert "Triangulation reprojection error" in md and "| filtering | done | ran |" in md
    failed = openkin.run(project, ["triangulation", "filtering"], {"project": {"frame_range": [500, 600]}})
    assert failed.failed == "triangulation" and "frame_range" in failed.error
    rec = _records(project)
    assert rec["triangulation"]["status"] == "failed" and rec["filtering"]["status"] == "outdated"
    md = (project / "openkin" / "report.md").read_text()
    assert "| triangulation | failed | failed |" in md and "| filtering | not run (outdated) | not run |" in md
    summary = md.split("## Summary")[1].split("\n## ")[0]
    assert "Triangulation reprojection error" not in summary and "keypoint-frames reconstructed" not in md
    assert "No reprojection errors: the triangulation stage failed (no frames within frame_range" in md
    assert "No 3D keypoints: the triangulation stage failed" in md
    assert "| refinement | done in an earlier run" in md   # current outputs of an earlier run keep their figures
    timings = md.split("## Time per stage")[1]
    assert "| triangulation | – | failed:" in timings and "| refinement |" not in timings  # this run's only
    # and a later stage alone does not take the earlier run's files for current ones
    with pytest.raises(OpenKinError, match="no current triangulated"):
        from openkin.config import load_config
        from openkin.filtering.stage import run_stage
        from openkin.project import ProjectPaths

        run_stage(load_config(project), ProjectPaths(project))


def test_calibration_in_use_is_recorded_not_renamed(scene, tmp_path):
    """A refinement that is refused leaves the source calibration in use, by record."""
    project = _copy(scene, tmp_path / "trial")
    result = openkin.run(project, ["association", "refinement", "triangulation"], report=False)
    assert result.ok, result.error
    rec = _records(project)
    assert rec["refinement"]["summary"]["calibration_used"] == "calibration/Calib_scene.toml"
    assert rec["triangulation"]["summary"]["calibration"] == "Calib_scene.toml"
    assert not list((project / "calibration").glob("*.unused"))


def test_inputs_are_recorded_with_the_producers_sha256(scene, tmp_path):
    project = _copy(scene, tmp_path / "trial")
    assert openkin.run(project, ["triangulation", "filtering"], report=False).ok
    rec = _records(project)
    trc = next(o for o in rec["triangulation"]["outputs"] if o["role"] == "trc")
    assert rec["filtering"]["inputs"] == [{"path": trc["path"], "sha256": trc["sha256"], "from": "triangulation"}]
    import hashlib

    assert trc["sha256"] == hashlib.sha256((project / trc["path"]).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- the lock
HOLD = """
import sys, time
from pathlib import Path
from openkin.lock import project_lock
with project_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(project: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(project), str(seconds)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ENGINE)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "openkin.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ENGINE)})


def test_second_run_refuses_at_once_and_names_the_holder(scene, tmp_path):
    project = _copy(scene, tmp_path / "trial")
    holder = _holder(project, 120)
    try:
        t0 = time.perf_counter()
        r = _cli("run", str(project), "--stages", "triangulation", "--no-progress")
        assert time.perf_counter() - t0 < 30
        assert r.returncode == 2, r.stderr
        assert "another OpenKin run is processing this project" in r.stderr
        assert f"PID {holder.pid}" in r.stderr and str(project) in r.stderr and "--wait" in r.stderr
        assert "Traceback" not in r.stderr
        assert not (project / "pose-3d").exists()                        # nothing written
        with pytest.raises(OpenKinError, match=f"PID {holder.pid}"):
            openkin.run(project, ["triangulation"])                      # the API (and Blender runner) too
    finally:
        holder.kill()
        holder.wait()
    # killed without any clean-up: the OS released the lock
    r = _cli("run", str(project), "--stages", "triangulation", "--no-progress")
    assert r.returncode == 0, r.stderr


def test_wait_runs_after_the_other(scene, tmp_path):
    project = _copy(scene, tmp_path / "trial")
    holder = _holder(project, 3)
    r = _cli("triangulation", str(project), "--no-progress", "--wait")
    assert holder.wait() == 0
    assert r.returncode == 0, r.stderr
    assert _records(project)["triangulation"]["status"] == "done"


def test_two_concurrent_runs_do_not_mix(scene, tmp_path):
    """Two `openkin run` at once: one runs, the other refuses; the outputs are one run's."""
    project = _copy(scene, tmp_path / "trial")
    args = ["run", str(project), "--stages", "triangulation,filtering", "--no-progress", "--no-report"]
    env = {**os.environ, "PYTHONPATH": str(ENGINE)}
    procs = [subprocess.Popen([sys.executable, "-m", "openkin.cli", *args, "--set", f"project.frame_range={rng}"],
                              stderr=subprocess.PIPE, text=True, env=env) for rng in ("[0, 40]", "[20, 60]")]
    codes = [p.wait(timeout=300) for p in procs]
    errors = [p.stderr.read() for p in procs]
    assert sorted(codes) == [0, 2], errors
    loser = errors[codes.index(2)]
    assert "another OpenKin run is processing this project" in loser
    rec = _records(project)
    tri = [Path(o["path"]).stem for o in rec["triangulation"]["outputs"] if o["role"] == "trc"]
    filt = [Path(o["path"]).stem for o in rec["filtering"]["outputs"] if o["role"] == "trc"]
    assert len(tri) == 1 and filt == [tri[0] + "_filt_butterworth"]
    assert rec["triangulation"]["run"] == rec["filtering"]["run"]


def test_a_swallowed_interrupt_still_stops_the_run(scene, tmp_path):
    """An interrupt whose KeyboardInterrupt is swallowed (a signal landing in a destructor or a
    library's callback is printed as "Exception ignored" and dropped) still stops the run: the
    stage it landed in is recorded as failed, not done, and no later stage runs."""
    from openkin import progress
    from openkin.pipeline import run_stages

    project = _copy(scene, tmp_path / "trial")
    seen: list[str] = []

    def factory(stage):
        def cb(fraction, message=""):
            if not seen:
                seen.append(stage)
                try:  # the CLI's handler, its exception swallowed as a destructor would
                    progress.on_interrupt_signal(signal.SIGINT, None)
                except KeyboardInterrupt:
                    pass
            return True
        return cb

    try:
        with pytest.raises(KeyboardInterrupt):
            run_stages(project, ["triangulation", "filtering"], progress_factory=factory)
    finally:
        progress.clear_interrupted()
    rec = _records(project)
    assert seen == ["triangulation"]
    assert rec["triangulation"]["status"] == "failed"
    assert "filtering" not in rec or rec["filtering"]["status"] != "done"
    assert not list(project.rglob(".*.tmp"))

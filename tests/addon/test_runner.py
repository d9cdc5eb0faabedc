"""The child-process runner: JSON progress events, a clear error, cancellation.

Real work in the child: a synthetic scene (``openkin.synth``) and pipeline stages.
"""
import json
import os
import time

import bpy
import pytest

from addon_helpers import addon, synth_project  # noqa: F401  (fixtures)


def _job(spec, tmp_path):
    from blender_addon.jobs import Job

    return Job(spec, tmp_path / "job").start()


def test_job_reports_progress_and_finishes(tmp_path):
    job = _job({"kind": "synth", "out": str(tmp_path / "scene"), "preset": "clean", "frames": 60}, tmp_path)
    assert job.wait(timeout=120) == "done", (job.error, job.log_path.read_text()[-2000:])
    events = [json.loads(line) for line in job.events_path.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "progress" in kinds
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert (tmp_path / "scene" / "truth" / "keypoints.trc").is_file()
    assert job.overall == 1.0


def test_user_error_is_reported_cleanly(tmp_path):
    job = _job({"kind": "stages", "project": str(tmp_path / "missing"), "stages": ["filtering"]}, tmp_path)
    assert job.wait(timeout=60) == "failed"
    assert "fix:" in job.error and "Traceback" not in job.error


def test_cancel_terminates_the_child(tmp_path):
    job = _job({"kind": "synth", "out": str(tmp_path / "big"), "preset": "realistic", "frames": 20000}, tmp_path)
    t_end = time.monotonic() + 60
    while job.poll() and job.fraction == 0.0 and time.monotonic() < t_end:
        time.sleep(0.1)
    assert job.status == "running", (job.status, job.error)
    job.cancel()
    assert job.status == "cancelled" and job.proc.poll() is not None
    if os.name == "posix":   # nothing left in the child's process group (workers included)
        with pytest.raises(ProcessLookupError):
            os.killpg(job.proc.pid, 0)
    assert not (tmp_path / "big" / "truth").exists()   # no half-written output


def test_run_operator_in_background_mode(addon, synth_project, tmp_path):
    """Under ``blender -b`` (and the bpy module) the Run operator waits for the child."""
    import shutil

    from blender_addon.operators import current_job

    assert bpy.app.background
    project = shutil.copytree(synth_project, tmp_path / "trial")
    s = bpy.context.scene.openkin
    s.project_dir = str(project)
    s.stage = "filtering"
    assert bpy.ops.openkin.run(stages="ONE") == {"FINISHED"}, s.last_error
    job = current_job()
    assert job.status == "done" and "filtering" in job.timings
    assert list((project / "pose-3d").glob("*filt*.trc"))


def test_run_operator_reports_stage_error(addon, tmp_path):
    s = bpy.context.scene.openkin
    (tmp_path / "empty").mkdir()
    s.project_dir = str(tmp_path / "empty")
    s.stage = "triangulation"
    with pytest.raises(RuntimeError):
        bpy.ops.openkin.run(stages="ONE")
    assert "fix:" in s.last_error, s.last_error


def test_get_demo_project_operator(addon, tmp_path):
    """'Get Demo Project' copies Pose2Sim's demo (videos + calibration) in a child and selects it."""
    from pathlib import Path

    dest = tmp_path / "Demo"
    assert bpy.ops.openkin.demo(directory=str(dest)) == {"FINISHED"}, bpy.context.scene.openkin.last_error
    assert Path(bpy.context.scene.openkin.project_dir) == dest
    assert sorted(p.name for p in (dest / "videos").iterdir()) == ["cam01.mp4", "cam02.mp4", "cam03.mp4", "cam04.mp4"]
    assert (dest / "Config.toml").is_file()

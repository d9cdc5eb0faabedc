"""Work that used to freeze Blender runs in the child process: the first import's video
undistortion (progress, Cancel, then the import from the job's timer); the job's timer
survives File › Open; downloads only with Blender's online access; no ``opensim.log`` in the
current folder. (Under ``blender -b`` the synchronous path is covered by test_import.py.)"""
import json
import os
import time
from pathlib import Path

import bpy
import pytest

from addon_helpers import addon, demo_project, synth_project  # noqa: F401  (fixtures)


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    """An empty add-on cache (no undistorted videos yet) that still sees the Pose2Sim assets."""
    from openkin import assets

    real = assets.assets_dir()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / real.name).symlink_to(real, target_is_directory=True)
    monkeypatch.setenv(assets.CACHE_ENV, str(cache))
    return cache


def _run_timer(timeout: float) -> None:
    """Call the job's timer function as Blender's event loop would, until it stops."""
    from blender_addon import operators

    t_end = time.monotonic() + timeout
    while operators._poll_timer() is not None:
        assert time.monotonic() < t_end, "job did not finish in time"
        time.sleep(0.2)


def _undistorted(cache: Path) -> list[Path]:
    return sorted((cache / "blender" / "cache" / "videos").glob("*.mp4"))


def test_first_import_undistorts_in_a_job(addon, demo_project, fresh_cache):
    from blender_addon import operators

    t0 = time.perf_counter()
    assert bpy.ops.openkin.import_project(directory=str(demo_project), undistort_in_job=True) == {"FINISHED"}
    blocked = time.perf_counter() - t0
    job = operators.current_job()
    assert job.spec["kind"] == "undistort" and job.status == "running"
    assert not [o for o in bpy.context.scene.objects if o.type == "CAMERA"]   # imported after the job
    assert bpy.app.timers.is_registered(operators._poll_timer)
    _run_timer(300)
    assert job.status == "done", (job.error, job.log_path.read_text()[-2000:])
    print(f"main thread blocked {blocked:.2f} s; undistortion in the child {sum(job.timings.values()):.1f} s")
    assert blocked < 5.0 < sum(job.timings.values())
    events = [json.loads(line) for line in job.events_path.read_text().splitlines()]
    assert [e["stage"] for e in events if e["event"] == "stage_done"] == [f"undistort cam0{i}" for i in range(1, 5)]
    assert any(e["event"] == "progress" and 0 < e["fraction"] < 1 for e in events)
    assert len(_undistorted(fresh_cache)) == 4
    scene = bpy.context.scene
    assert sorted(o.name for o in scene.objects if o.type == "CAMERA") == ["cam01", "cam02", "cam03", "cam04"]
    bg = scene.objects["cam01"].data.background_images[0]
    assert Path(bpy.path.abspath(bg.image.filepath)) in _undistorted(fresh_cache)
    assert tuple(bg.image.size) == (1088, 1920)
    # a second import finds them cached: no job, straight in
    assert bpy.ops.openkin.import_project(directory=str(demo_project), undistort_in_job=True) == {"FINISHED"}
    assert operators.current_job() is job


def test_cancel_undistortion(addon, demo_project, fresh_cache):
    from blender_addon import operators

    assert bpy.ops.openkin.import_project(directory=str(demo_project), undistort_in_job=True) == {"FINISHED"}
    job = operators.current_job()
    t_end = time.monotonic() + 60
    while job.poll() and job.fraction == 0.0 and time.monotonic() < t_end:
        time.sleep(0.1)
    assert job.status == "running"
    assert bpy.ops.openkin.cancel() == {"FINISHED"}
    _run_timer(10)
    assert job.status == "cancelled" and job.proc.poll() is not None
    assert not [o for o in bpy.context.scene.objects if o.type == "CAMERA"]   # no import after a cancel
    videos = fresh_cache / "blender" / "cache" / "videos"
    assert not list(videos.iterdir()) if videos.is_dir() else True   # nothing half-written left


def test_job_timer_survives_file_open(addon, tmp_path):
    from blender_addon import operators

    done = []
    job = operators.start_job({"kind": "synth", "out": str(tmp_path / "big"), "preset": "realistic",
                               "frames": 20000}, "synth", wait=False, then=lambda: done.append(1))
    assert bpy.app.timers.is_registered(operators._poll_timer)
    blend = tmp_path / "other.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    assert bpy.app.timers.is_registered(operators._poll_timer)
    assert operators.current_job() is job and job.poll()
    assert operators._STATE["then"] is None and "another file was opened" in job.log[-1]
    job.cancel()
    assert operators._poll_timer() is None and done == []


def test_demo_download_needs_online_access(addon, tmp_path, monkeypatch):
    """Blender's online access off and the demo not downloaded: a clear message, no job, no download."""
    from blender_addon import operators
    from openkin import assets

    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "empty_cache"))
    assert not bpy.app.online_access and not assets.is_ready()
    with pytest.raises(RuntimeError, match="Preferences › System › Network"):
        bpy.ops.openkin.demo(directory=str(tmp_path / "Demo"))
    assert operators.current_job() is None
    assert not (tmp_path / "empty_cache").exists() and not (tmp_path / "Demo").exists()


def test_run_needing_models_offline_is_refused(addon, synth_project, tmp_path, monkeypatch):
    from openkin import assets

    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "empty_cache"))
    s = bpy.context.scene.openkin
    s.project_dir = str(synth_project)
    s.stage = "kinematics"
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.openkin.run(stages="ONE")
    assert "downloads are not allowed" in s.last_error


def test_online_access_switch_is_blenders(addon):
    from blender_addon.operators import online_access

    prefs = bpy.context.preferences.system
    assert online_access() is False
    prefs.use_online_access = True
    try:
        assert online_access() is True
    finally:
        prefs.use_online_access = False


def test_child_offline_uses_the_bundled_pose_model(tmp_path, monkeypatch):
    """Offline with no RTMPose weights cached, the child runs pose on the offline model
    (auto), or stops with a clear error (rtmlib asked for explicitly); online, nothing changes."""
    from blender_addon.jobs import child_env
    from blender_addon.runner import offline_overrides
    from openkin.errors import OpenKinError

    env = child_env(online=False)
    assert env["OPENKIN_ONLINE"] == "0" and env["PIP_NO_INDEX"] == "1"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))   # rtmlib's cache: empty
    (tmp_path / "p").mkdir()
    monkeypatch.setenv("OPENKIN_ONLINE", "0")
    assert offline_overrides(str(tmp_path / "p"), ["pose"], {"project": {"multi_person": True}}) == \
        {"project": {"multi_person": True}, "pose": {"pose_backend": "offline"}}
    assert offline_overrides(str(tmp_path / "p"), ["triangulation"], None) is None
    with pytest.raises(OpenKinError, match="online access is off"):
        offline_overrides(str(tmp_path / "p"), ["pose"], {"pose": {"pose_backend": "rtmlib"}})
    monkeypatch.setenv("OPENKIN_ONLINE", "1")
    assert offline_overrides(str(tmp_path / "p"), ["pose"], None) is None


def test_no_opensim_log_in_the_current_folder(addon, synth_project, tmp_path, monkeypatch):
    """Import loads the OpenSim model in Blender's process: its log goes to PROJECT/openkin/logs."""
    import shutil

    root = shutil.copytree(synth_project, tmp_path / "trial")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert bpy.ops.openkin.import_project(directory=str(root)) == {"FINISHED"}
    assert list(cwd.iterdir()) == [] and not list((root / "kinematics").glob("opensim.log"))
    assert (root / "openkin" / "logs" / "opensim.log").is_file()   # OpenSim's file sink (flushed by OpenSim later)


def test_stage_job_runs_in_the_projects_log_folder(addon, synth_project, tmp_path):
    import shutil

    from blender_addon.operators import current_job

    root = shutil.copytree(synth_project, tmp_path / "trial")
    s = bpy.context.scene.openkin
    s.project_dir = str(root)
    s.stage = "filtering"
    cwd_log = Path(os.getcwd()) / "opensim.log"
    before = cwd_log.stat().st_mtime_ns if cwd_log.exists() else None  # another tool's, if any
    assert bpy.ops.openkin.run(stages="ONE") == {"FINISHED"}, s.last_error
    assert current_job().spec["cwd"] == str(root / "openkin" / "logs")
    assert (cwd_log.stat().st_mtime_ns if cwd_log.exists() else None) == before

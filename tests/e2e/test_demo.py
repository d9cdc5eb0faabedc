"""End to end: `openkin demo` as a user runs it, on the real demo videos, every stage
(offline pose backend: no network). One full run (about a minute on
2 cores for the pose stage), then a second run that must reuse it."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib

import numpy as np
import pytest

from openkin.formats.calibration import read_calibration

OFFLINE = ["--set", "pose.pose_backend='offline'"]
CAMERAS = ["cam01", "cam02", "cam03", "cam04"]


def openkin(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openkin.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    dest = tmp_path_factory.mktemp("demo") / "project"
    t0 = time.perf_counter()
    # The .blend step is tested on its own below (it takes a minute with the demo's videos).
    result = openkin("demo", "--out", str(dest), "--no-progress", "--no-blend", *OFFLINE)
    return dest, result, time.perf_counter() - t0


def test_demo_runs_to_the_end(demo_run):
    dest, result, _ = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "demo finished" in result.stderr
    assert (dest / "openkin" / "report.html").is_file() and (dest / "openkin" / "report.md").is_file()
    assert (dest / "openkin" / "logs" / "openkin.log").stat().st_size > 0
    resolved = tomllib.loads((dest / "openkin" / "resolved_config.toml").read_text())
    assert resolved["pose"]["pose_backend"] == "offline"
    assert resolved["calibration"]["convert"]["convert_from"] == "qualisys"
    # Wall time is reported (report.md, timings.toml), not asserted: it depends on the machine's load.


def test_demo_calibration_and_pose_outputs(demo_run):
    dest, _, _ = demo_run
    cams = read_calibration(dest / "calibration" / "Calib_qualisys.toml")
    assert [c.name for c in cams] == CAMERAS
    for cam in CAMERAS:
        assert len(list((dest / "pose" / f"{cam}_json").glob("*.json"))) == 100


def test_demo_report_figures(demo_run):
    dest, _, _ = demo_run
    md = (dest / "openkin" / "report.md").read_text()
    pngs = {p.stem for p in (dest / "openkin" / "report").glob("*.png")}
    assert {"cameras", "timings", "detections", "trajectories", "reprojection", "angles"} <= pngs
    found = dict(re.findall(r"(cam0\d) (\d+)%", md.split("## Summary")[1].split("##")[0]))
    assert set(found) == set(CAMERAS)
    assert all(int(v) >= 95 for v in found.values()), found  # one person, always in view
    mean = float(re.search(r"Triangulation reprojection error ([\d.]+) px", md).group(1))
    assert mean < 10.0  # the product's goal
    manifest = json.loads((dest / "openkin" / "manifest.json").read_text())["stages"]
    assert [s for s, r in manifest.items() if r["status"] == "done"] == [
        "calibration", "pose", "synchronization", "association", "refinement", "triangulation", "filtering",
        "augmentation", "kinematics"]
    mots = [o for o in manifest["kinematics"]["outputs"] if o["role"] == "mot"]
    assert len(mots) == 1 and (dest / mots[0]["path"]).is_file()


def test_second_run_reuses_outputs(demo_run):
    dest, first, _ = demo_run
    assert first.returncode == 0
    jsons = sorted((dest / "pose").glob("*_json/*.json"))
    stamps = [p.stat().st_mtime_ns for p in jsons]
    calib = dest / "calibration" / "Calib_qualisys.toml"
    calib_stamp = calib.stat().st_mtime_ns
    result = openkin("demo", "--out", str(dest), "--no-progress", "--stages", "calibration,pose", *OFFLINE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reusing the project" in result.stderr
    assert [p.stat().st_mtime_ns for p in jsons] == stamps
    assert calib.stat().st_mtime_ns == calib_stamp


def test_edited_config_is_kept(tmp_path):
    dest = tmp_path / "p"
    assert openkin("demo", "--out", str(dest), "--no-progress", "--stages", "calibration").returncode == 0
    config = dest / "Config.toml"
    edited = config.read_text() + "\n[triangulation]\nmin_cameras_for_triangulation = 3\n"
    config.write_text(edited)
    result = openkin("demo", "--out", str(dest), "--no-progress", "--stages", "calibration")
    assert result.returncode == 0
    assert config.read_text() == edited
    assert "min_cameras_for_triangulation = 3" in (dest / "openkin" / "resolved_config.toml").read_text()


def test_demo_refuses_a_folder_that_is_not_a_demo_project(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("my data")
    result = openkin("demo", "--out", str(dest), "--no-progress")
    assert result.returncode == 2
    assert "not a demo project" in result.stderr and "fix:" in result.stderr
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]


def test_demo_unknown_stage_is_a_clear_error(tmp_path):
    result = openkin("demo", "--out", str(tmp_path / "x"), "--stages", "triangulaton")
    assert result.returncode == 2 and "triangulaton" in result.stderr and "choose among" in result.stderr
    assert not (tmp_path / "x").exists()


def test_blend_of_a_ground_truth_scene(tmp_path):
    """The demo's Blender step (child process with bpy, the add-on's importer) on a small scene."""
    import shutil

    from openkin.demo import save_blend
    from openkin.synth import build_scene

    root = tmp_path / "trial"
    info = build_scene(root, "clean", n_frames=20, seed=2)
    (root / "pose-3d").mkdir()
    shutil.copy(info.truth_trc[0], root / "pose-3d" / "trial_0-20.trc")
    out = save_blend(root)
    assert out == root / "openkin" / "demo.blend"
    check = subprocess.run([sys.executable, "-c", (
        "import bpy, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[1]); "
        "print(sorted(o.name for o in bpy.data.objects if o.type == 'CAMERA'), bpy.context.scene.frame_end)"),
        str(out)], capture_output=True, text=True, timeout=120)
    assert "['cam01', 'cam02', 'cam03', 'cam04']" in check.stdout, check.stderr[-2000:]
    assert not list((root / "openkin").glob("*.blend1")) and not list((root / "openkin").glob(".*.blend"))
    import cv2

    render = cv2.imread(str(root / "openkin" / "demo_render.png"))
    assert render is not None and render.shape[2] == 3, "no render of the first camera next to the .blend"
    # This scene has no videos: the markers are what stands out of the background.
    background = np.median(render.reshape(-1, 3), axis=0)
    drawn = (np.abs(render.astype(int) - background).sum(axis=2) > 60).sum()
    assert drawn > 100, f"the render shows nothing but its background ({drawn} pixels differ)"


def test_a_failing_stage_stops_the_run_and_is_reported(tmp_path):
    dest = tmp_path / "p"
    assert openkin("demo", "--out", str(dest), "--no-progress", "--stages", "calibration").returncode == 0
    for f in (dest / "calibration").glob("Calib*"):
        f.unlink()
    result = openkin("demo", "--out", str(dest), "--no-progress", "--stages", "calibration,pose", *OFFLINE)
    assert result.returncode == 2
    assert "stage calibration failed" in result.stderr and "*.qca.txt" in result.stderr
    assert not (dest / "pose").exists()  # the stages after it did not run
    md = (dest / "openkin" / "report.md").read_text()
    assert "Stage calibration failed" in md and "| calibration | failed | failed |" in md
    assert "| pose | not run | not run |" in md

"""Report: it renders the run manifest — the figures each stage recorded, the files it wrote —
checked against independent truth (OpenCV's projection of the 3D result onto the 2D inputs,
the stages that actually ran), and notes instead of figures where a stage has not run."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import openkin
from openkin.formats.calibration import read_calibration
from openkin.formats.openpose import read_openpose_dir
from openkin.formats.trc import read_trc, yup_to_zup
from openkin.manifest import Manifest, entry
from openkin.project import ProjectPaths
from openkin.report import summary_lines, write_report
from openkin.synth import build_scene


def record(root: Path, stage: str, outputs: list[tuple[Path, str]], summary: dict | None = None) -> None:
    """A stage's record made by hand: the inputs a report test starts from (files made elsewhere)."""
    m = Manifest.load(root)
    m.begin(stage, "given")
    m.finish(stage, "given", [], [entry(root, p, role) for p, role in outputs], summary or {}, 1.0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, object]:
    """A clean ground-truth scene (exact 2D projections): its 2D files recorded as the pose stage's,
    its truth angles as the kinematics stage's; association, triangulation, filtering run for real."""
    info = build_scene(tmp_path_factory.mktemp("scene") / "trial", "clean", n_frames=30, seed=1)
    root = info.path
    record(root, "calibration", [(root / "calibration" / "Calib_scene.toml", "calibration")])
    record(root, "pose", [(p, "camera") for p in sorted((root / "pose").glob("*_json"))])
    result = openkin.run(root, ["association", "triangulation", "filtering"], report=False)
    assert result.ok, result.error
    (root / "kinematics").mkdir()
    shutil.copy(info.truth_mot[0], root / "kinematics" / "trial.mot")
    record(root, "kinematics", [(root / "kinematics" / "trial.mot", "mot")], {"trials": [
        {"mot": "trial.mot", "marker_rms_mean_m": 0.0123, "marker_error_max_m": 0.045, "frames": 30}]})
    return root, result


def opencv_reprojection_px(root: Path) -> float:
    """Median distance (px) between the triangulated TRC projected by cv2.projectPoints and the 2D inputs."""
    cams = read_calibration(root / "calibration" / "Calib_scene.toml")
    trc = read_trc(next((root / "pose-3d").glob("trial_*-*[0-9].trc")))
    xyz = yup_to_zup(trc.xyz)                                          # the TRC is Y-up, as Pose2Sim's
    errors = []
    for cam in cams:
        kp, frames, _ = read_openpose_dir(root / "pose" / f"{cam.name}_json")
        rows = np.searchsorted(frames, trc.frame_numbers)
        uv, _ = cv2.projectPoints(xyz.reshape(-1, 1, 3), cam.rotation, cam.translation, cam.matrix,
                                  cam.distortions)
        errors.append(np.linalg.norm(uv.reshape(xyz.shape[:2] + (2,)) - kp[rows, 0, :, :2], axis=-1))
    return float(np.nanmedian(errors))


def test_full_report(scene):
    root, result = scene
    paths = ProjectPaths(root)
    html = write_report(paths)
    assert html == root / "openkin" / "report.html"
    pngs = {p.stem for p in (root / "openkin" / "report").glob("*.png")}
    assert pngs == {"cameras", "detections", "trajectories", "skeleton", "angles", "reprojection", "timings"}
    text = html.read_text()
    for title in ("Summary", "Calibration", "2D detections", "3D keypoints", "Joint angles", "Reprojection error",
                  "Time per stage"):
        assert f"<h2>{title}</h2>" in text
    lines = summary_lines(paths)
    shown = float(next(line for line in lines if "Triangulation reprojection error" in line).split()[3])
    truth = opencv_reprojection_px(root)
    assert truth < 0.5 and shown < 0.5                                   # exact 2D: both near zero
    assert any("100%" in line and "cam01" in line for line in lines)     # one person, always in view
    assert any("marker RMS 12.3 mm" in line for line in lines)           # the kinematics record's figure
    md = (root / "openkin" / "report.md").read_text()
    timed = md.split("## Time per stage")[1]
    assert [s for s in ("association", "triangulation", "filtering") if f"| {s} |" in timed] == list(result.timings)
    assert "trial_0-29_filt_butterworth.trc" in md                      # the file filtering wrote


def test_report_with_nothing_run(tmp_path):
    html = write_report(ProjectPaths(tmp_path)).read_text()
    assert "No calibration recorded" in html
    assert "No 2D poses recorded" in html
    assert "No 3D keypoints: the triangulation stage has not run on this project" in html
    assert "No time offsets: the synchronization stage has not run on this project" in html
    assert "No joint angles: the kinematics stage has not run on this project" in html
    assert "No stage ran in the last run" in html
    assert not list((tmp_path / "openkin").glob("report/*.png"))


def test_report_notes_unreadable_outputs(scene, tmp_path):
    root, _ = scene
    project = tmp_path / "p"
    shutil.copytree(root / "calibration", project / "calibration")
    (project / "pose-3d").mkdir(parents=True)
    broken = project / "pose-3d" / "broken_0-10.trc"
    broken.write_text("PathFileType\t4\nnot a trc\n")
    record(project, "calibration", [(project / "calibration" / "Calib_scene.toml", "calibration")])
    record(project, "triangulation", [(broken, "trc")])
    html = write_report(ProjectPaths(project)).read_text()
    assert "Cannot read broken_0-10.trc" in html
    assert "Calibration" in html and "cam01" in html


def test_triangulation_figures_are_the_records(tmp_path):
    doc = {"version": 1, "cameras": ["cam01", "cam02"], "persons": [{
        "person": 0, "frame_range": [0, 29], "reprojection_error_px": 12.5, "reprojection_error_mm": 25.0,
        "cameras_excluded_mean": 0.4,
        "keypoints": {"Hip": {"reprojection_error_px": 11.0}, "Neck": {"reprojection_error_px": None}},
        "cameras": {"cam01": {"detected_rate": 1.0, "excluded_rate": 0.1, "lr_swaps_corrected_frames": 3}}}]}
    report_json = tmp_path / "pose-3d" / "triangulation_report.json"
    report_json.parent.mkdir()
    report_json.write_text("{}")
    record(tmp_path, "triangulation", [(report_json, "report")], doc)
    paths = ProjectPaths(tmp_path)
    html = write_report(paths).read_text()
    assert "mean reprojection error 12.50 px" in html and "misses" in html   # goal < 10 px
    assert any("Triangulation reprojection error 12.50 px" in line for line in summary_lines(paths))
    assert (tmp_path / "openkin" / "report" / "reprojection.png").is_file()


def test_report_without_matplotlib_keeps_tables(scene, tmp_path, monkeypatch):
    root, _ = scene
    project = tmp_path / "p"
    shutil.copytree(root, project)
    shutil.rmtree(project / "openkin" / "report")
    # block matplotlib and every submodule: submodules an earlier test imported stay in
    # sys.modules and would import without their parent; None makes each import fail.
    # monkeypatch puts the real modules back after the test.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.pyplot", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    html = write_report(ProjectPaths(project)).read_text()
    assert html.count("matplotlib is not installed") == 6
    assert "<table>" in html and "person found" in html
    assert not list((project / "openkin").glob("report/*.png"))

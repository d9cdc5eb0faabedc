"""Report: sections from what exists on disk, exact reprojection on a ground-truth scene,
graceful notes when stages have not run."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from openkin.formats.trc import read_trc, write_trc
from openkin.project import ProjectPaths
from openkin.report import load_timings, reprojection_errors, summary_lines, write_report
from openkin.synth import build_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """A clean ground-truth scene (exact 2D projections) with its truth as the 3D and IK results."""
    root = tmp_path_factory.mktemp("scene") / "trial"
    info = build_scene(root, "clean", n_frames=30, seed=1)
    (root / "pose-3d").mkdir()
    shutil.copy(info.truth_trc[0], root / "pose-3d" / "trial_0-30.trc")
    (root / "kinematics").mkdir()
    shutil.copy(info.truth_mot[0], root / "kinematics" / "trial.mot")
    return root


def test_full_report_on_ground_truth(scene):
    paths = ProjectPaths(scene)
    html = write_report(paths, {"pose": 12.5, "triangulation": 1.25})
    assert html == scene / "openkin" / "report.html"
    pngs = {p.stem for p in (scene / "openkin" / "report").glob("*.png")}
    assert pngs == {"cameras", "detections", "trajectories", "skeleton", "angles", "reprojection", "timings"}
    text = html.read_text()
    for title in ("Summary", "Calibration", "2D detections", "3D keypoints", "Joint angles", "Reprojection error",
                  "Time per stage"):
        assert f"<h2>{title}</h2>" in text
    lines = summary_lines(paths)
    assert any("Against every detection: median cam01 0.0, cam02 0.0, cam03 0.0, cam04 0.0 px" in line
               for line in lines)  # the truth reprojects exactly
    assert any("100%" in line and "cam01" in line for line in lines)
    assert load_timings(paths) == {"pose": 12.5, "triangulation": 1.25}
    assert (scene / "openkin" / "report.md").read_text().count("![") == 7


def test_reprojection_errors_measure_a_known_shift(scene):
    """Shifting the 3D points by 5 cm gives errors of the size that shift makes in pixels."""
    from openkin.calibration import find_calibration
    from openkin.formats.calibration import project_points, read_calibration
    from openkin.formats.openpose import read_openpose_dir
    from openkin.formats.trc import yup_to_zup

    cams = read_calibration(find_calibration(scene / "calibration"))
    trc = read_trc(scene / "pose-3d" / "trial_0-30.trc")
    xyz = yup_to_zup(trc.xyz)
    dets = [read_openpose_dir(scene / "pose" / f"{c.name}_json")[:2] for c in cams]
    exact = reprojection_errors(xyz, trc.frame_numbers, cams, dets)
    assert np.nanmax(exact) < 0.01
    shift = np.array([0.05, 0.0, 0.0])
    moved = reprojection_errors(xyz + shift, trc.frame_numbers, cams, dets)
    expected = np.stack([np.linalg.norm(project_points(c, (xyz + shift).reshape(-1, 3))
                                        - project_points(c, xyz.reshape(-1, 3)), axis=1).reshape(xyz.shape[:2])
                         for c in cams])
    np.testing.assert_allclose(moved, expected, atol=0.01)
    assert 5 < np.nanmean(moved) < 200


def test_report_degrades_with_nothing_run(tmp_path):
    paths = ProjectPaths(tmp_path)
    html = write_report(paths).read_text()
    assert "No calibration to show" in html
    assert "No 2D poses in pose/" in html
    assert "No 3D keypoints in pose-3d/" in html
    assert "No time offsets in pose-sync/" in html
    assert "No joint angles in kinematics/" in html
    assert "No timings recorded" in html
    assert not list((tmp_path / "openkin").glob("report/*.png"))


def test_report_notes_unreadable_outputs(scene, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(scene / "calibration", project / "calibration")
    (project / "pose-3d").mkdir(parents=True)
    (project / "pose-3d" / "broken_0-10.trc").write_text("PathFileType\t4\nnot a trc\n")
    html = write_report(ProjectPaths(project)).read_text()
    assert "Cannot read broken_0-10.trc" in html
    assert "Calibration" in html and "cam01" in html


def test_markers_not_matching_skeleton_are_not_compared(scene, tmp_path):
    project = tmp_path / "p"
    for sub in ("calibration", "pose"):
        shutil.copytree(scene / sub, project / sub)
    trc = read_trc(scene / "pose-3d" / "trial_0-30.trc")
    trc.marker_names, trc.xyz = trc.marker_names[:5], trc.xyz[:, :5]
    write_trc(project / "pose-3d" / "t_0-30.trc", trc)
    html = write_report(ProjectPaths(project)).read_text()
    assert "has 5 keypoints" in html and "Not available" in html


def test_triangulation_report_is_shown(scene, tmp_path):
    import json

    project = tmp_path / "p"
    shutil.copytree(scene / "calibration", project / "calibration")
    (project / "pose-3d").mkdir()
    doc = {"version": 1, "cameras": ["cam01", "cam02"], "persons": [{
        "person": 0, "frame_range": [0, 29], "reprojection_error_px": 12.5, "reprojection_error_mm": 25.0,
        "cameras_excluded_mean": 0.4,
        "keypoints": {"Hip": {"reprojection_error_px": 11.0}, "Neck": {"reprojection_error_px": None}},
        "cameras": {"cam01": {"detected_rate": 1.0, "excluded_rate": 0.1, "lr_swaps_corrected_frames": 3}}}]}
    (project / "pose-3d" / "triangulation_report.json").write_text(json.dumps(doc))
    paths = ProjectPaths(project)
    html = write_report(paths).read_text()
    assert "mean reprojection error 12.50 px" in html and "misses" in html
    assert any("Triangulation reprojection error 12.50 px" in line for line in summary_lines(paths))
    assert (project / "openkin" / "report" / "reprojection.png").is_file()


def test_report_without_matplotlib_keeps_tables(scene, tmp_path, monkeypatch):
    project = tmp_path / "p"
    shutil.copytree(scene, project, ignore=shutil.ignore_patterns("openkin"))
    # block matplotlib and every submodule: submodules an earlier test imported stay in
    # sys.modules and would import without their parent; None makes each import fail.
    # monkeypatch puts the real modules back after the test.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.pyplot", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    html = write_report(ProjectPaths(project), {"pose": 1.0}).read_text()
    assert html.count("matplotlib is not installed") == 6
    assert "<table>" in html and "person found" in html
    assert not list((project / "openkin").glob("report/*.png"))

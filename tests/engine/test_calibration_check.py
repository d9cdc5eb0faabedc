"""Field-calibration helpers: the lens distortion of clicked points (OpenCV is the truth), the
Image_points.json file (round trip, clear errors) and the check images of a calibration from
keypoints (pixels where OpenCV puts the points)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openkin.calibration_check import DETECTED, REPROJECTED, check_image
from openkin.cli import run_stages
from openkin.errors import OpenKinError
from openkin.fileio import read_optional_toml
from openkin.formats.calibration import Camera, read_calibration
from openkin.formats.image_points import MarkedImage, read_image_points, write_image_points
from openkin.geometry.undistort import distort_camera_points, undistort_camera_points
from openkin.synth import build_scene

KEYPOINTS_CONFIG = """
[calibration]
calibration_type = 'calculate'
[calibration.calculate.extrinsics]
extrinsics_method = 'keypoints'
"""


def _camera(dist, fisheye=False, skew=0.0) -> Camera:
    K = np.array([[1400.0, skew, 955.0], [0, 1390.0, 545.0], [0, 0, 1]])
    return Camera("cam01", (1920, 1080), K, np.asarray(dist, float), np.zeros(3), np.zeros(3), fisheye=fisheye)


@pytest.mark.parametrize("dist,fisheye", [([-0.28, 0.09, 0.001, -0.0005, -0.01], False),
                                          ([0.05, -0.02, 0.003, 0.0], True), ([0, 0, 0, 0, 0], False)])
def test_distort_inverts_opencv_undistortion(dist, fisheye):
    """A clicked point on the undistorted image, distorted, undistorts back by OpenCV to itself."""
    cam = _camera(dist, fisheye)
    rng = np.random.default_rng(0)
    ideal = rng.uniform([200, 150], [1700, 930], size=(200, 2))
    distorted = distort_camera_points(cam, ideal)
    if fisheye:
        back = cv2.fisheye.undistortPoints(distorted.reshape(-1, 1, 2), cam.matrix, cam.distortions[:4],
                                           P=cam.matrix).reshape(-1, 2)
    else:
        back = cv2.undistortPoints(distorted.reshape(-1, 1, 2), cam.matrix, cam.distortions,
                                   P=cam.matrix, criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
                                   ).reshape(-1, 2)
    assert np.abs(back - ideal).max() < 1e-3
    assert np.abs(undistort_camera_points(cam, distorted) - ideal).max() < 0.05  # the engine's 5 iterations


def test_distort_matches_projecting_a_world_point():
    """Ideal pinhole pixel of a world point, distorted == OpenCV's projection through the lens."""
    cam = Camera("c", (1920, 1080), np.array([[1400.0, 0, 955], [0, 1390, 545], [0, 0, 1]]),
                 np.array([-0.2, 0.05, 0.001, 0.002, 0.0]), np.array([0.1, -0.2, 0.05]), np.array([0.3, 0.1, 4.0]))
    X = np.random.default_rng(1).uniform(-1, 1, size=(50, 3))
    lens = cv2.projectPoints(X, cam.rotation, cam.translation, cam.matrix, cam.distortions)[0].reshape(-1, 2)
    ideal = cv2.projectPoints(X, cam.rotation, cam.translation, cam.matrix, np.zeros(5))[0].reshape(-1, 2)
    assert np.abs(distort_camera_points(cam, ideal) - lens).max() < 1e-6
    assert np.isnan(distort_camera_points(cam, np.array([[np.nan, 3.0]]))).all()


coords = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12),
                          st.lists(st.tuples(st.one_of(coords, st.none()), coords, coords, coords, coords),
                                   min_size=1, max_size=9), st.booleans()),
                min_size=1, max_size=5, unique_by=lambda e: e[0]))
def test_image_points_round_trip(tmp_path_factory, entries):
    marked = []
    for name, rows, with_world in entries:
        image = np.array([[np.nan if x is None else x, y] for x, y, *_ in rows], float)
        world = np.array([r[2:] for r in rows], float) if with_world else None
        marked.append(MarkedImage(name, image, world))
    path = write_image_points(tmp_path_factory.mktemp("ip") / "Image_points.json", marked)
    back = read_image_points(path)
    assert list(back) == [m.cam_name for m in marked]
    for m in marked:
        b = back[m.cam_name]
        np.testing.assert_array_equal(b.image, m.image)
        if m.world is None:
            assert b.world is None
        else:
            np.testing.assert_array_equal(b.world, m.world)


@pytest.mark.parametrize("content,problem", [
    ("{", "malformed JSON"),
    ('{"extrinsics": 3}', "no 'extrinsics' list"),
    ('{"extrinsics": [{"image_points_2d": [1, 2]}]}', "no 'cam_name'"),
    ('{"extrinsics": [{"cam_name": "a.png", "image_points_2d": [1, 2, 3]}]}', "flat list of x, y pairs"),
    ('{"extrinsics": [{"cam_name": "a.png", "image_points_2d": [1, "x"]}]}', "must be numbers"),
    ('{"extrinsics": [{"cam_name": "a.png", "image_points_2d": [1, 2], "object_points_3d": [1, 2, 3, 4, 5, 6]}]}',
     "1 image points for 2 object points"),
])
def test_image_points_errors_name_file_and_fix(tmp_path, content, problem):
    path = tmp_path / "Image_points.json"
    path.write_text(content)
    with pytest.raises(OpenKinError) as e:
        read_image_points(path)
    assert problem in str(e.value) and str(path) in str(e.value) and e.value.fix


def test_check_image_draws_where_the_points_are():
    frame = np.zeros((400, 600, 3), np.uint8)
    detected = np.array([[100.0, 120.0], [400.0, 300.0], [np.nan, np.nan]])
    reprojected = np.array([[130.0, 150.0], [420.0, 310.0], [50.0, 60.0]])
    out = check_image(frame, detected, reprojected)
    assert not frame.any()  # the input is not drawn on
    for u, v in reprojected:  # cross centres are red
        assert tuple(out[int(v), int(u)]) == REPROJECTED
    r = max(4, round(600 / 150))
    for u, v in detected[:2]:  # the circle around each detection is green
        rim = out[int(v) - r - 1:int(v) + r + 2, int(u) - r - 1:int(u) + r + 2]
        assert (np.abs(rim.astype(int) - DETECTED).sum(-1) < 120).any()
        assert tuple(out[int(v), int(u)]) != REPROJECTED


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check") / "scene"
    build_scene(root, "mild", n_frames=200, seed=2)
    with open(root / "Config.toml", "a") as f:
        f.write(KEYPOINTS_CONFIG)
    run_stages(root, ["calibration"], progress_bars=False)
    return root


def test_keypoint_calibration_writes_a_check_image_per_camera(calibrated):
    cams = read_calibration(calibrated / "calibration" / "Calib_keypoints.toml")
    record = read_optional_toml(calibrated / "openkin" / "calibration.toml")
    assert record["check_images"] == [f"debug/{c.name}_keypoints.jpg" for c in cams]
    for cam in cams:
        image = cv2.imread(str(calibrated / "calibration" / "debug" / f"{cam.name}_keypoints.jpg"))
        assert image.shape[:2] == (cam.size[1], cam.size[0])
        red = (image[..., 2] > 180) & (image[..., 1] < 90) & (image[..., 0] < 90)
        green = (image[..., 1] > 150) & (image[..., 2] < 90) & (image[..., 0] < 90)
        assert red.sum() > 100 and green.sum() > 100  # 26 keypoints drawn, crosses and circles
        # the reprojections sit on the detections: their centroids within a few pixels
        ry, rx = np.nonzero(red)
        gy, gx = np.nonzero(green)
        assert np.hypot(rx.mean() - gx.mean(), ry.mean() - gy.mean()) < 8


def test_report_shows_the_check_images(calibrated):
    from openkin.project import ProjectPaths
    from openkin.report import write_report

    out = write_report(ProjectPaths(calibrated))
    md = (out.parent / "report.md").read_text() if out.suffix == ".html" else out.read_text()
    cams = read_calibration(calibrated / "calibration" / "Calib_keypoints.toml")
    for cam in cams:
        assert f"../calibration/debug/{cam.name}_keypoints.jpg" in md

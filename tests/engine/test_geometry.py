"""The geometry core against OpenCV (projection, undistortion, pinhole and fisheye), exact
triangulation of exact projections, and round trips of the axis conventions and rotations."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openkin import geometry as g
from openkin.errors import OpenKinError

SETTINGS = settings(max_examples=60, deadline=None)
finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def cameras(draw, fisheye: bool = False, mild: bool = False):
    """A random camera: image 320-4000 px, focal 0.5-2× the width, off-centre principal point,
    any orientation, 1-6 m from the origin; Brown-Conrady (k3 optional) or fisheye k1..k4."""
    w = draw(st.integers(320, 4000))
    h = draw(st.integers(320, 4000))
    fx = draw(st.floats(0.5, 2.0, **finite)) * w
    fy = fx * draw(st.floats(0.9, 1.1, **finite))
    cx = draw(st.floats(0.35, 0.65, **finite)) * w
    cy = draw(st.floats(0.35, 0.65, **finite)) * h
    s = 0.3 if mild else 1.0
    if fisheye:
        dist = [draw(st.floats(-0.05 * s, 0.05 * s, **finite)) for _ in range(4)]
    else:
        dist = [draw(st.floats(-0.2 * s, 0.2 * s, **finite)), draw(st.floats(-0.05 * s, 0.05 * s, **finite)),
                draw(st.floats(-0.005, 0.005, **finite)), draw(st.floats(-0.005, 0.005, **finite))]
        if draw(st.booleans()):
            dist.append(draw(st.floats(-0.02 * s, 0.02 * s, **finite)))
    rvec = np.array([draw(st.floats(-1.8, 1.8, **finite)) for _ in range(3)])
    t = np.array([draw(st.floats(-0.5, 0.5, **finite)), draw(st.floats(-0.5, 0.5, **finite)),
                  draw(st.floats(1.0, 6.0, **finite))])
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    return g.Camera("c", [w, h], K, dist, rvec, t, fisheye=fisheye)


def points_in_view(cam: g.Camera, seed: int, n: int = 40, spread: float = 0.5) -> np.ndarray:
    """``(n,3)`` world points in front of ``cam`` (depth 0.5-8 m, |x/z|, |y/z| < spread)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.5, 8.0, n)
    xy = rng.uniform(-spread, spread, (n, 2)) * z[:, None]
    cam_pts = np.column_stack([xy, z])
    R, _ = cv2.Rodrigues(cam.rotation)
    return (cam_pts - cam.translation) @ R                                      # R^T (x - t)


def _cv_project(cam, X, dist=None):
    d = cam.distortions if dist is None else dist
    return cv2.projectPoints(X.reshape(-1, 1, 3), cam.rotation, cam.translation, cam.matrix, d)[0].reshape(-1, 2)


# ------------------------------------------------------------------ projection
@SETTINGS
@given(cameras(), st.integers(0, 2**31))
def test_projection_matches_cv2_project_points(cam, seed):
    X = points_in_view(cam, seed)
    np.testing.assert_allclose(g.project_points(cam, X), _cv_project(cam, X), rtol=0, atol=1e-6)
    ideal = _cv_project(cam, X, np.zeros(4))
    P = g.camera_projections([cam])
    np.testing.assert_allclose(g.project(P, X)[0], ideal, atol=1e-6)
    np.testing.assert_allclose(g.project_linear(P[0], X), ideal, atol=1e-6)
    np.testing.assert_allclose(g.Rig.from_cameras([cam]).P, P, atol=1e-9)
    R = cv2.Rodrigues(cam.rotation)[0]
    np.testing.assert_allclose(g.camera_depths([cam], X)[0], (X @ R.T + cam.translation)[:, 2], atol=1e-9)


@SETTINGS
@given(cameras(fisheye=True), st.integers(0, 2**31))
def test_fisheye_projection_matches_cv2_fisheye(cam, seed):
    X = points_in_view(cam, seed)
    ref = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), cam.rotation, cam.translation, cam.matrix,
                                    cam.distortions)[0].reshape(-1, 2)
    np.testing.assert_allclose(g.project_points(cam, X), ref, atol=1e-6)
    both = g.project_points_all([cam, cam], X.reshape(4, 10, 3))
    assert both.shape == (2, 4, 10, 2)
    np.testing.assert_allclose(both[1].reshape(-1, 2), ref, atol=1e-6)


def test_projection_keeps_nan_and_hides_points_behind():
    cam = g.Camera("c", [1000, 800], [[900, 0, 500], [0, 900, 400], [0, 0, 1]], [0.1, 0, 0, 0], [0, 0, 0],
                   [0, 0, 2])
    X = np.array([[0.1, 0.2, 1.0], [np.nan, 0, 0], [0.0, 0.0, -3.0]])
    uv = g.project_points(cam, X)
    assert np.isfinite(uv[0]).all() and np.isnan(uv[1]).all()
    assert np.isnan(g.project(g.camera_projections([cam]), X)[0, 2]).all()   # behind the camera
    assert g.camera_depths([cam], X)[0, 2] < 0


# ------------------------------------------------------------------ undistortion
@SETTINGS
@given(cameras(), st.integers(0, 2**31))
def test_undistortion_matches_cv2_undistort_points(cam, seed):
    rng = np.random.default_rng(seed)
    uv = rng.uniform([0, 0], cam.size, (50, 2))
    uv[3] = np.nan
    ref = cv2.undistortPoints(uv.reshape(-1, 1, 2), cam.matrix, cam.distortions, P=cam.matrix).reshape(-1, 2)
    ours = g.undistort_camera_points(cam, uv)
    np.testing.assert_allclose(ours, ref, atol=1e-8, equal_nan=True)
    assert np.isnan(ours[3]).all()
    # several cameras at once, any leading shape
    many = g.undistort_points(np.stack([uv.reshape(5, 10, 2)] * 2), np.stack([cam.matrix] * 2),
                              [cam.distortions, np.zeros(4)])
    np.testing.assert_allclose(many[0].reshape(-1, 2), ref, atol=1e-8, equal_nan=True)
    np.testing.assert_array_equal(many[1].reshape(-1, 2), uv)


@SETTINGS
@given(cameras(fisheye=True), st.integers(0, 2**31))
def test_fisheye_undistortion_matches_cv2_fisheye(cam, seed):
    rng = np.random.default_rng(seed)
    uv = rng.uniform([0, 0], cam.size, (50, 2))
    ref = cv2.fisheye.undistortPoints(uv.reshape(-1, 1, 2), cam.matrix, cam.distortions, P=cam.matrix).reshape(-1, 2)
    ref[(ref == -1e6).all(1)] = np.nan    # OpenCV's mark for points it cannot invert: NaN here
    np.testing.assert_allclose(g.undistort_camera_points(cam, uv), ref, atol=1e-8, equal_nan=True)
    rig = g.Rig.from_cameras([cam])
    assert rig.fisheye.tolist() == [True]
    np.testing.assert_allclose(g.undistort_points(uv[None], rig.K, rig.dist, rig.fisheye)[0], ref, atol=1e-8,
                               equal_nan=True)


@SETTINGS
@given(st.booleans().flatmap(lambda f: cameras(fisheye=f, mild=True)), st.integers(0, 2**31))
def test_undistorting_a_lens_projection_gives_the_pinhole_one(cam, seed):
    X = points_in_view(cam, seed, spread=0.4)
    ideal = _cv_project(cam, X, np.zeros(4))
    np.testing.assert_allclose(g.undistort_camera_points(cam, g.project_points(cam, X)), ideal, atol=0.02)


# ------------------------------------------------------------------ triangulation
def _rig_of(cams: list[g.Camera]) -> g.Rig:
    return g.Rig.from_cameras(cams)


@SETTINGS
@given(st.lists(st.booleans(), min_size=2, max_size=6), st.integers(0, 2**31))
def test_triangulating_exact_lens_projections_recovers_the_points(fisheye, seed):
    """Cameras on a ring around the origin, some fisheye: project through the lens
    (OpenCV), undistort, triangulate (weighted DLT and robust) → the points, to 1e-5 m."""
    rng = np.random.default_rng(seed)
    C = len(fisheye)
    cams = []
    for c, fish in enumerate(fisheye):
        angle = 2 * np.pi * c / C + rng.uniform(-0.3, 0.3)
        centre = np.array([3 * np.cos(angle), 3 * np.sin(angle), rng.uniform(0.5, 2.5)])
        fwd = -centre / np.linalg.norm(centre)
        right = np.cross(fwd, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        R = np.stack([right, np.cross(fwd, right), fwd])
        dist = rng.uniform(-0.03, 0.03, 4) if fish else [rng.uniform(-0.15, 0.15), 0.01, 0.001, -0.001]
        cams.append(g.Camera(f"c{c}", [1920, 1080], [[1200, 0, 950], [0, 1200, 530], [0, 0, 1]], dist,
                             cv2.Rodrigues(R)[0], -R @ centre, fisheye=fish))
    X = rng.uniform(-0.6, 0.6, (200, 3))
    uv = g.project_points_all(cams, X)                                           # (C,N,2)
    rig = _rig_of(cams)
    pts = g.undistort_points(uv, rig.K, rig.dist, rig.fisheye)
    w = np.ones(pts.shape[:2])
    np.testing.assert_allclose(g.triangulate_dlt(pts, w, rig.P), X, atol=1e-5)
    r = g.triangulate_robust(pts, w, rig.P, threshold=1.0)
    np.testing.assert_allclose(r.X, X, atol=1e-5)
    assert np.nanmax(r.error) < 1e-3 and r.used.all()
    moved = X + [0.0, 0.0, 0.01]   # reprojection errors of points 1 cm off, against OpenCV's
    ref = np.stack([_cv_project(c, moved, np.zeros(4)) for c in cams])
    np.testing.assert_allclose(g.reprojection_errors(rig.P, moved, pts), np.linalg.norm(ref - pts, axis=-1),
                               atol=1e-6)


def test_robust_triangulation_drops_a_gross_outlier_and_dlt_matches_svd():
    rng = np.random.default_rng(1)
    cams = [g.Camera(f"c{c}", [1000, 1000], [[900, 0, 500], [0, 900, 500], [0, 0, 1]], [0, 0, 0, 0],
                     *_look_at(np.array([3 * np.cos(a), 3 * np.sin(a), 1.5]))) for c, a in
            enumerate(np.linspace(0, 2 * np.pi, 5)[:4])]
    P = g.camera_projections(cams)
    X = rng.uniform(-0.5, 0.5, (100, 3))
    pts = g.project(P, X)
    w = rng.uniform(0.5, 1.0, pts.shape[:2])
    np.testing.assert_allclose(g.triangulate_dlt_svd(pts, w, P), g.triangulate_dlt(pts, w, P), atol=1e-8)
    pts[2, :10] += 200.0
    r = g.triangulate_robust(pts, w, P, threshold=5.0)
    np.testing.assert_allclose(r.X, X, atol=1e-6)
    assert not r.used[2, :10].any() and r.used[:, 10:].all()
    np.testing.assert_allclose(g.mean_view_error(g.reprojection_errors(P, r.X, pts), r.used), r.error, atol=1e-9)


def _look_at(centre):
    fwd = -centre / np.linalg.norm(centre)
    right = np.cross(fwd, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    R = np.stack([right, np.cross(fwd, right), fwd])
    return cv2.Rodrigues(R)[0], -R @ centre


def test_rays_pass_through_the_points():
    cams = [g.Camera(f"c{c}", [1000, 1000], [[900, 0, 500], [0, 950, 480], [0, 0, 1]], [0, 0, 0, 0],
                     *_look_at(np.array([3 * np.cos(a), 3 * np.sin(a), 1.0]))) for c, a in enumerate((0.3, 2.0, 4.0))]
    rig = _rig_of(cams)
    X = np.random.default_rng(2).uniform(-0.5, 0.5, (30, 3))
    centres = g.camera_centers(rig.R, rig.t)
    np.testing.assert_allclose(centres, [c.center for c in cams], atol=1e-12)
    np.testing.assert_allclose(g.projection_centers(rig.P), centres, atol=1e-9)
    d = g.ray_directions(g.project(rig.P, X), rig.K, rig.R)                     # (C,N,3)
    to_point = X[None] - centres[:, None]
    np.testing.assert_allclose(np.cross(to_point, d), 0, atol=1e-9)
    assert np.all((to_point * d).sum(-1) > 0)
    dist = g.ray_distance(centres[0], d[0], centres[1], d[1])
    np.testing.assert_allclose(dist, 0, atol=1e-9)


# ------------------------------------------------------------------ axes and rotations
@SETTINGS
@given(st.lists(st.floats(-100, 100, **finite), min_size=3, max_size=3))
def test_axis_conventions_round_trip(p):
    p = np.array(p)
    np.testing.assert_array_equal(g.zup_to_yup(g.yup_to_zup(p)), p)
    np.testing.assert_array_equal(g.yup_to_zup(p), g.YUP_TO_ZUP @ p)
    np.testing.assert_array_equal(g.zup_to_yup(p), g.ZUP_TO_YUP @ p)
    assert g.zup_to_yup(np.array([0.0, 0.0, 1.0]))[1] == 1.0                 # up stays up
    assert np.isclose(np.linalg.det(g.YUP_TO_ZUP), 1.0)                        # a rotation, no mirror
    frame = g.homogeneous(np.eye(3), p)
    np.testing.assert_allclose(g.yup_to_zup_transforms(frame)[:3, 3], g.yup_to_zup(p))


@SETTINGS
@given(cameras(), st.integers(0, 2**31))
def test_opencv_and_blender_camera_frames(cam, seed):
    """A world point seen by OpenCV at x_cv = R X + t sits at CV_TO_BLENDER_CAM x_cv in the
    Blender camera frame given by ``blender_camera_matrix_world``; the camera sits at its centre."""
    X = points_in_view(cam, seed, n=10)
    R = cv2.Rodrigues(cam.rotation)[0]
    m = g.blender_camera_matrix_world(cam.rotation, cam.translation)
    np.testing.assert_allclose(m[:3, 3], -R.T @ cam.translation, atol=1e-9)
    local = (np.linalg.inv(m) @ np.c_[X, np.ones(len(X))].T)[:3].T
    np.testing.assert_allclose(local, (X @ R.T + cam.translation) @ g.CV_TO_BLENDER_CAM.T, atol=1e-9)
    assert np.all(local[:, 2] < 0)                                              # Blender cameras look down -z
    back = g.camera_to_world(R, cam.translation)
    np.testing.assert_allclose(np.linalg.inv(back)[:3, :3], R, atol=1e-12)


@SETTINGS
@given(st.lists(st.floats(-3.0, 3.0, **finite), min_size=3, max_size=3))
def test_rotations_match_opencv_and_hand_formulas(v):
    v = np.array(v)
    R = g.rotation_matrix(v)
    np.testing.assert_allclose(R, cv2.Rodrigues(v)[0], atol=1e-12)
    np.testing.assert_allclose(g.rotation_matrix(g.rotation_vector(R)), R, atol=1e-12)
    np.testing.assert_allclose(g.rotation_vector(np.stack([R, R])), np.stack([g.rotation_vector(R)] * 2))
    w, x, y, z = g.matrix_to_quaternion(R)
    assert w >= 0
    by_hand = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    np.testing.assert_allclose(by_hand, R, atol=1e-12)
    a, b, c = v
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    np.testing.assert_allclose(g.euler_xyz_to_matrix(v), rx @ ry @ rz, atol=1e-12)


def test_camera_model_checks_its_lens():
    K = [[900, 0, 500], [0, 900, 400], [0, 0, 1]]
    with pytest.raises(OpenKinError, match="fisheye camera needs 4"):
        g.Camera("f", [1000, 800], K, [0.1, 0.0], [0, 0, 0], [0, 0, 2], fisheye=True)
    with pytest.raises(OpenKinError, match="4 or 5 values"):
        g.Camera("p", [1000, 800], K, [0.1, 0.0, 0.0], [0, 0, 0], [0, 0, 2])
    cam = g.Camera("r", [1000, 800], K, [0, 0, 0, 0], cv2.Rodrigues(np.array([0.1, 0.2, 0.3]))[0], [0, 0, 2])
    np.testing.assert_allclose(cam.rotation, [0.1, 0.2, 0.3], atol=1e-12)       # (3,3) accepted


def test_geometry_is_a_base_layer():
    """openkin.geometry imports only numpy, scipy, OpenCV, the standard library and openkin.errors."""
    import ast
    import sys
    from pathlib import Path

    allowed = {"numpy", "scipy", "cv2", "threadpoolctl", "__future__"} | set(sys.stdlib_module_names)
    for path in Path(g.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module == "errors", (path.name, node.module)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in allowed, (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in allowed for a in node.names), path.name

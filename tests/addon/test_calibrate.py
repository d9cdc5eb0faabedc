"""Field calibration in Blender (issue #12): a click on a camera's background maps to the pixel
OpenCV projects the clicked world point to on the original video; points clicked in Blender and
saved in Pose2Sim's layout calibrate the cameras to the truth; Calibrate from the people runs in
the background job and brings the cameras back with their check images and the world axes.

Truth: the synthetic scenes' exact cameras (``truth/Calib_exact.toml``) and OpenCV's projection."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from addon_helpers import ROOT, addon, synth_project  # noqa: F401  (fixtures)

sys.path.insert(0, str(ROOT / "tests" / "engine"))
from calib_scoring import score  # noqa: E402

# Points of known coordinates on and above the floor, in view of the four synth cameras.
WORLD = [(-1.0, -1.0, 0.0), (1.0, -1.0, 0.0), (1.0, 1.0, 0.0), (-1.0, 1.0, 0.0),
         (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), (-0.5, 0.5, 1.5), (0.5, -0.5, 0.8)]
BOUNDS = (37.0, 21.0, 937.0, 0.0)   # a camera frame in a region (left, bottom, right, top px); top per camera


def _import(project: Path) -> None:
    bpy.context.scene.openkin.project_dir = str(project)
    assert bpy.ops.openkin.import_project() == {"FINISHED"}


def _cameras():
    from blender_addon.scene.calibrate import openkin_cameras

    return openkin_cameras(bpy.context.scene)


def _frame_bounds(cam) -> tuple:
    """A frame of the camera's aspect ratio (as the viewport draws it) at BOUNDS' left/bottom/right."""
    w, h = cam["openkin_resolution"]
    ax, ay = cam["openkin_pixel_aspect"]
    left, bottom, right, _ = BOUNDS
    return left, bottom, right, bottom + (right - left) * (h * ay) / (w * ax)


def _clicks_of_world(cam, points) -> np.ndarray:
    """Where a user clicks the world ``points`` on ``cam``'s background, in region px."""
    from blender_addon.core import clicks
    from blender_addon.scene.cameras import apply_camera_settings

    scene = bpy.context.scene
    apply_camera_settings(scene, cam)   # the view frame's aspect follows the render size
    ndc = np.array([tuple(world_to_camera_view(scene, cam, Vector(p)))[:2] for p in points])
    return clicks.ndc_to_region(ndc, _frame_bounds(cam))


def _corners(bounds) -> np.ndarray:
    left, bottom, right, top = bounds
    return np.array([[right, top], [right, bottom], [left, bottom], [left, top]], float)


def test_panel_registers(addon):
    assert hasattr(bpy.types, "OPENKIN_PT_calibrate") and hasattr(bpy.types, "OPENKIN_OT_mark_points")
    assert bpy.context.scene.openkin_calibrate.method == "PEOPLE"


def test_click_lands_where_opencv_projects_the_point(addon, synth_project, tmp_path):
    """Blender camera + click mapping + lens, against cv2.projectPoints of the world point."""
    from openkin.formats.calibration import read_calibration
    from openkin.geometry.projection import project_points

    from blender_addon.core import clicks
    from blender_addon.scene.calibrate import engine_camera

    project = tmp_path / "trial"
    shutil.copytree(synth_project, project)
    _import(project)
    truth = {c.name: c for c in read_calibration(project / "truth" / "Calib_exact.toml")}
    X = np.random.default_rng(3).uniform([-1.5, -1.5, 0.0], [1.5, 1.5, 1.8], size=(40, 3))
    assert len(_cameras()) == 4
    for cam in _cameras():
        xy = _clicks_of_world(cam, X)
        for undistorted in (True, False):
            uv = clicks.click_to_video_pixels(xy, _frame_bounds(cam), engine_camera(cam), undistorted)
            lens = project_points(truth[cam.name], X)
            ideal = project_points(truth[cam.name].__class__(**{**truth[cam.name].__dict__,
                                                                "distortions": np.zeros(5)}), X)
            assert np.abs(uv - (lens if undistorted else ideal)).max() < 0.02, cam.name
            back = clicks.video_pixels_to_region(uv, _frame_bounds(cam), engine_camera(cam), undistorted)
            assert np.abs(back - xy).max() < 0.05


def test_clicked_points_calibrate_the_cameras(addon, synth_project, tmp_path):
    """Click 8 measured points on each camera, Calibrate (Points): the cameras come back within
    5 mm and 0.05° of the truth, from the files alone (Pose2Sim's layout)."""
    from openkin.formats.calibration import read_calibration
    from openkin.formats.image_points import read_image_points

    from blender_addon.scene.calibrate import click, clicks_of

    project = tmp_path / "trial"
    shutil.copytree(synth_project, project)
    _import(project)
    s = bpy.context.scene.openkin_calibrate
    s.method = "POINTS"
    for k, xyz in enumerate(WORLD):
        bpy.ops.openkin.calib_point_add()
        s.points[k].location = xyz
    names = [p.name for p in s.points]
    for cam in _cameras():
        xy = _clicks_of_world(cam, WORLD)
        for name, p in zip(names, xy):
            click(cam, name, p, _corners(_frame_bounds(cam)))
        assert set(clicks_of(cam)) == set(names)
    assert bpy.ops.openkin.calibrate() == {"FINISHED"}, bpy.context.scene.openkin.last_error
    marked = read_image_points(project / "calibration" / "Image_points.json")
    assert sorted(marked) == [f"{c.name}.png" for c in _cameras()]
    assert all((project / "calibration" / "extrinsics" / n).is_file() for n in marked)
    found = {c.name: c for c in read_calibration(project / "calibration" / "Calib_scene.toml")}
    truth = read_calibration(project / "truth" / "Calib_exact.toml")
    for t in truth:
        assert np.linalg.norm(found[t.name].center - t.center) < 0.005, t.name
        R = found[t.name].R @ t.R.T
        assert np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))) < 0.05, t.name
    # the scene shows the new cameras and the world axes
    for cam in _cameras():
        assert np.allclose(np.array(cam.matrix_world.translation), found[cam.name].center, atol=1e-4)
    assert "OpenKin world axes" in bpy.data.objects


@pytest.fixture(scope="module")
def walking(tmp_path_factory) -> Path:
    from openkin.synth import build_scene

    root = tmp_path_factory.mktemp("people") / "trial"
    build_scene(root, "mild", n_frames=200, seed=4, max_offset_frames=0.0)
    return root


def test_calibrate_from_people_in_the_panel(addon, walking):
    """Calibrate (People) on a synthetic walk: cameras within the issue's goals after the
    similarity alignment, each with its check image as a background over its video."""
    from openkin.formats.calibration import read_calibration
    from openkin.synth.cameras import look_at_point

    from blender_addon.scene.calibrate import CHECK_TAG

    bpy.context.scene.openkin.project_dir = str(walking)
    s = bpy.context.scene.openkin_calibrate
    s.method, s.height = "PEOPLE", float(__import__("tomllib").loads(
        (walking / "Config.toml").read_text())["project"]["participant_height"])
    assert bpy.ops.openkin.calibrate() == {"FINISHED"}, bpy.context.scene.openkin.last_error
    found = read_calibration(walking / "calibration" / "Calib_keypoints.toml")
    truth = read_calibration(walking / "truth" / "Calib_exact.toml")
    sc = score(found, truth, look_at_point(truth, height=0.9))
    assert abs(sc["scale"] - 1) < 0.01 and sc["centre_pct"].max() < 1.0 and sc["orient_deg"].max() < 0.5, sc
    cams = _cameras()
    assert [c.name for c in cams] == [c.name for c in found]
    for cam in cams:
        checks = [bg for bg in cam.data.background_images if bg.image is not None and bg.image.get(CHECK_TAG)]
        assert len(checks) == 1 and Path(checks[0].image.filepath).name == f"{cam.name}_keypoints.jpg"
        assert np.allclose(np.array(cam.matrix_world.translation), next(f for f in found if f.name == cam.name).center,
                           atol=1e-4)
    assert "reprojection error" in s.summary

"""Camera exactness: a marker drawn by the Blender camera lands where OpenCV puts it.

What is compared: Blender's ``world_to_camera_view`` of a 3D point, converted to
OpenCV pixel coordinates (pixel centres at integers), against OpenCV's projection
*with distortion* (``cv2.projectPoints``) mapped into the undistorted image that the
add-on shows behind the camera (``cv2.undistortPoints(..., P=K)``) — i.e. the pixel
where the marker's image point sits on the displayed background. Goal ≤ 0.5 px.
"""
import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from addon_helpers import addon, demo_project, scene, synth_project  # noqa: F401  (fixtures)


def _blender_pixels(scn, cam_obj, cam, points):
    from blender_addon.core import axes

    ndc = np.array([world_to_camera_view(scn, cam_obj, Vector(p)) for p in points])
    return axes.ndc_to_pixels(ndc, cam.size), ndc[:, 2]


def _opencv_on_background(cam, points):
    from openkin.geometry import project_points, undistort_camera_points as undistort_points

    return undistort_points(cam, project_points(cam, points))


def _check(cameras, points, scn, tol=0.5):
    from blender_addon.scene.cameras import build_camera, sync_active_camera

    coll = bpy.data.collections.new("cams")
    scn.collection.children.link(coll)
    worst = 0.0
    for cam in cameras:
        obj = build_camera(cam, coll, None, 1)
        scn.camera = obj
        sync_active_camera(scn)
        bl, depth = _blender_pixels(scn, obj, cam, points)
        cv = _opencv_on_background(cam, points)
        inside = (depth > 0) & np.all((cv > 0) & (cv < cam.size), axis=1)
        assert inside.sum() >= 10
        err = np.linalg.norm(bl[inside] - cv[inside], axis=1)
        worst = max(worst, float(err.max()))
    assert worst <= tol, worst
    return worst


def test_demo_calibration_exact(scene, synth_project):
    """All 26 keypoints × 10 frames of the synthetic person, through the 4 demo cameras."""
    from openkin.formats.calibration import read_calibration
    from openkin.formats.trc import read_trc, yup_to_zup

    cams = read_calibration(next((synth_project / "calibration").glob("*.toml")))
    trc = read_trc(next((synth_project / "pose-3d").glob("*.trc")))
    points = yup_to_zup(trc.xyz[::9].reshape(-1, 3))
    worst = _check(cams, points, scene)
    print(f"demo calibration: worst |Blender - OpenCV| = {worst:.4f} px")


def test_strong_distortion_anisotropic_offcentre_camera(scene):
    """A harder camera than the demo's: fy ≠ fx, principal point far off centre, strong
    radial and tangential distortion, landscape 1920×1080."""
    from openkin.geometry import Camera

    k = np.array([[1400.0, 0, 1010.0], [0, 1470.0, 500.0], [0, 0, 1]])
    cam = Camera("odd", [1920, 1080], k, [-0.25, 0.08, 0.002, -0.0015, 0.0], [0.3, -0.2, 0.1], [0.1, -0.2, 4.0])
    rng = np.random.default_rng(0)
    points = rng.uniform([-1.5, -1.5, -1.5], [1.5, 1.5, 1.5], (200, 3))
    worst = _check([cam], points, scene)
    print(f"strong-distortion camera: worst |Blender - OpenCV| = {worst:.4f} px")


def test_per_camera_resolution_follows_active_camera(addon, demo_project):
    """Demo: cam01 calibrated at 1088×1920; switching the active camera applies its size."""
    assert bpy.ops.openkin.import_project(directory=str(demo_project)) == {"FINISHED"}
    scn = bpy.context.scene
    cam2 = scn.objects["cam02"]
    cam2["openkin_resolution"] = [1000, 1800]   # pretend a different camera size
    assert bpy.ops.openkin.look_through(camera="cam02") == {"FINISHED"}
    assert (scn.render.resolution_x, scn.render.resolution_y) == (1000, 1800)
    scn.camera = scn.objects["cam01"]
    scn.frame_set(5)   # the frame-change handler applies the new active camera's size
    assert (scn.render.resolution_x, scn.render.resolution_y) == (1088, 1920)


def test_demo_videos_undistorted_and_frame_synced(addon, demo_project):
    """The 1080-px-wide demo videos are shown as undistorted 1088×1920 movies, frame-synced
    (with the synchronization stage's per-camera shifts)."""
    assert bpy.ops.openkin.import_project(directory=str(demo_project)) == {"FINISHED"}
    cam = bpy.context.scene.objects["cam01"]
    bg = cam.data.background_images[0]
    assert bg.image.source == "MOVIE" and tuple(bg.image.size) == (1088, 1920)
    assert "undist" in bg.image.filepath
    assert bg.image_user.frame_start == 1 and bg.image_user.use_auto_refresh   # scene frame 1 = video frame 0
    assert bg.image_user.frame_duration == 100
    # synchronization offsets (pose-sync/offsets.toml) shift each camera's video
    assert bg.image_user.frame_offset == 0
    cam2 = bpy.context.scene.objects["cam02"].data.background_images[0]
    assert cam2.image_user.frame_offset == 1

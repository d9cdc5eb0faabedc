"""Field calibration in the scene: points clicked on the cameras' backgrounds, the files the
engine calibrates from, and what a calibration shows afterwards (check images on the cameras,
the world axes).

Clicks live on each camera object (ID property :data:`CLICKS`: point name → [u, v] px of the
original video), so they are saved with the .blend and survive a re-import of the cameras
(re-import replaces the objects: :func:`save_points` writes them to the project first).
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
import numpy as np

from ..core import clicks

log = logging.getLogger(__name__)

CLICKS = "openkin_clicks"
UNDISTORTED = "openkin_background_undistorted"
CHECK_TAG = "openkin_check_image"
AXES_NAME = "OpenKin world axes"


def engine_camera(obj):
    """The engine :class:`~openkin.geometry.camera.Camera` an OpenKin camera object was built from."""
    from openkin.geometry.camera import Camera

    if obj is None or obj.get("openkin_matrix") is None:
        raise ValueError(f"{getattr(obj, 'name', None)!r} is not an OpenKin camera")
    res = [int(v) for v in obj["openkin_resolution"]]
    return Camera(obj.name, (res[0], res[1]), np.reshape(np.asarray(obj["openkin_matrix"], float), (3, 3)),
                  np.asarray(obj["openkin_distortions"], float), np.asarray(obj["openkin_rotation"], float),
                  np.asarray(obj["openkin_translation"], float), fisheye=bool(obj.get("openkin_fisheye", False)))


def frame_corners_region(region, rv3d, scene, cam_obj) -> np.ndarray:
    """The camera frame's 4 corners in ``region`` px ``(4,2)`` (the view looks through ``cam_obj``)."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    corners = [cam_obj.matrix_world @ v for v in cam_obj.data.view_frame(scene=scene)]
    return np.array([tuple(location_3d_to_region_2d(region, rv3d, c)) for c in corners], float)


def click(cam_obj, point: str, region_xy, corners_region: np.ndarray) -> tuple[float, float]:
    """Record a click at ``region_xy`` for ``point`` on ``cam_obj``; returns the video px (u, v)."""
    cam = engine_camera(cam_obj)
    uv = clicks.click_to_video_pixels(np.asarray(region_xy, float), clicks.frame_bounds(corners_region), cam,
                                      bool(cam_obj.get(UNDISTORTED, True)))[0]
    set_click(cam_obj, point, uv)
    return float(uv[0]), float(uv[1])


def set_click(cam_obj, point: str, uv) -> None:
    """``point`` at video px ``uv`` on ``cam_obj`` (None removes it)."""
    marks = dict(cam_obj.get(CLICKS, {}))
    if uv is None:
        marks.pop(point, None)
    else:
        marks[point] = [float(uv[0]), float(uv[1])]
    cam_obj[CLICKS] = marks


def clicks_of(cam_obj) -> dict[str, tuple[float, float]]:
    raw = cam_obj.get(CLICKS, {})
    return {k: (float(v[0]), float(v[1])) for k, v in (raw.to_dict() if hasattr(raw, "to_dict") else raw).items()}


def openkin_cameras(scene) -> list:
    return sorted((o for o in scene.objects if o.type == "CAMERA" and o.get("openkin_matrix") is not None),
                  key=lambda o: o.name)


def marked_images(scene, points: list[tuple[str, tuple[float, float, float]]]):
    """One :class:`~openkin.formats.image_points.MarkedImage` per camera with clicks: every point
    of ``points`` (name, world xyz m) in order, NaN where not clicked on that camera."""
    from openkin.formats.image_points import MarkedImage

    world = np.array([xyz for _, xyz in points], float).reshape(-1, 3)
    out = []
    for obj in openkin_cameras(scene):
        marks = clicks_of(obj)
        if not marks:
            continue
        image = np.array([marks.get(name, (np.nan, np.nan)) for name, _ in points], float).reshape(-1, 2)
        out.append(MarkedImage(f"{obj.name}.png", image, world))
    return out


def save_points(scene, project: Path, points) -> list[Path]:
    """Write ``calibration/Image_points.json`` and, per camera with clicks, the video frame the
    points were clicked on as ``calibration/extrinsics/<cam>.png`` (what Pose2Sim's 'scene'
    method reads). Returns the written files. Raises ``OpenKinError`` when nothing was clicked."""
    from openkin.errors import OpenKinError
    from openkin.formats.image_points import FILE_NAME, write_image_points

    entries = marked_images(scene, points)
    calib = Path(project) / "calibration"
    if not entries:
        raise OpenKinError("no points clicked on any camera", path=calib / FILE_NAME,
                           fix="look through a camera, press Mark Points and click the listed points on its video")
    written = [write_image_points(calib / FILE_NAME, entries)]
    for entry in entries:
        written.append(_save_frame(scene, project, scene.objects[entry.cam_name[:-4]], calib / "extrinsics"))
    return written


def _save_frame(scene, project: Path, cam_obj, out_dir: Path) -> Path:
    """The original video's frame shown at the scene's current frame → ``out_dir/<cam>.png``."""
    import cv2
    from openkin.calibration_check import video_frame
    from openkin.fileio import atomic_write

    from ..core.capture import match_videos, project_videos

    cam = engine_camera(cam_obj)
    videos, _ = project_videos(Path(project))
    video = match_videos([cam], videos).get(cam.name) if videos else None
    offset = 0
    data = cam_obj.data
    if data.background_images:
        offset = data.background_images[0].image_user.frame_offset
    frame = video_frame(video, scene.frame_current - 1 + offset, cam.size)
    path = out_dir / f"{cam.name}.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", frame)
    if not ok:
        raise RuntimeError(f"could not encode the frame of {cam.name}")
    with atomic_write(path, "wb") as f:
        f.write(buf.tobytes())
    return path


def reprojected_clicks(cam_obj, points) -> dict[str, tuple[float, float]]:
    """Where the camera's calibration puts the named world points, in video px (for drawing)."""
    from openkin.geometry.projection import project_points

    cam = engine_camera(cam_obj)
    world = np.array([xyz for _, xyz in points], float).reshape(-1, 3)
    uv = project_points(cam, world)
    return {name: (float(u), float(v)) for (name, _), (u, v) in zip(points, uv)}


def show_check_images(scene, calibration_dir: Path, record: dict) -> list[str]:
    """Each camera's check image (``record['check_images']``) as a second background, over its
    video. Returns the cameras that got one."""
    shown = []
    for rel in record.get("check_images", []):
        path = Path(calibration_dir) / rel
        name = path.stem.removesuffix("_keypoints")
        obj = scene.objects.get(name)
        if obj is None or obj.type != "CAMERA" or not path.is_file():
            continue
        data = obj.data
        for bg in list(data.background_images):
            if bg.image is not None and bg.image.get(CHECK_TAG):
                data.background_images.remove(bg)
        image = bpy.data.images.load(str(path), check_existing=False)
        image.name = f"{name} calibration check"
        image[CHECK_TAG] = True
        bg = data.background_images.new()
        bg.image, bg.alpha, bg.frame_method = image, 1.0, "STRETCH"
        bg.display_depth = "FRONT"
        data.show_background_images = True
        shown.append(name)
    return shown


def world_axes(scene, size: float = 0.5):
    """An arrows empty at the world origin (the calibration's floor origin; X, Y on the floor, Z up)."""
    obj = scene.objects.get(AXES_NAME)
    if obj is None:
        obj = bpy.data.objects.new(AXES_NAME, None)
        scene.collection.objects.link(obj)
    obj.empty_display_type = "ARROWS"
    obj.empty_display_size = size
    obj.location = (0.0, 0.0, 0.0)
    obj.show_name = True
    return obj

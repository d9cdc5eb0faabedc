"""Points clicked on a camera's background, as pixels of its original video (bpy-free).

In a 3D view looking through an OpenKin camera, the camera frame covers the image's outer
pixel edges (OpenCV u = -0.5 … W-0.5, v = -0.5 … H-0.5); the background is the undistorted
video (the Blender camera is the calibration's ideal pinhole) or, when undistortion is off, the
original one. A click → normalised frame coordinates → ideal pixels → (undistorted background
only) through the lens with :func:`openkin.geometry.undistort.distort_camera_points`, so the
clicked pixel is where the point is on the original video, as Pose2Sim's clicker records it.
"""
from __future__ import annotations

import numpy as np

from .axes import ndc_to_pixels


def frame_bounds(corners_region: np.ndarray) -> tuple[float, float, float, float]:
    """``corners_region (4,2)``: the camera frame's corners in region px → (left, bottom, right, top)."""
    c = np.asarray(corners_region, float).reshape(4, 2)
    return float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max())


def region_to_ndc(xy: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """Region px ``(N,2)`` → camera-frame coordinates (0..1 across the frame, y up), like
    ``bpy_extras.object_utils.world_to_camera_view``."""
    left, bottom, right, top = bounds
    xy = np.asarray(xy, float).reshape(-1, 2)
    return np.stack([(xy[:, 0] - left) / (right - left), (xy[:, 1] - bottom) / (top - bottom)], axis=1)


def ndc_to_region(ndc: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """The inverse of :func:`region_to_ndc`."""
    left, bottom, right, top = bounds
    ndc = np.asarray(ndc, float).reshape(-1, 2)
    return np.stack([left + ndc[:, 0] * (right - left), bottom + ndc[:, 1] * (top - bottom)], axis=1)


def pixels_to_ndc(uv: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    """The inverse of :func:`core.axes.ndc_to_pixels`: OpenCV px ``(N,2)`` → frame coordinates."""
    w, h = float(round(size[0])), float(round(size[1]))
    uv = np.asarray(uv, float).reshape(-1, 2)
    return np.stack([(uv[:, 0] + 0.5) / w, 1.0 - (uv[:, 1] + 0.5) / h], axis=1)


def click_to_video_pixels(xy: np.ndarray, bounds, camera, undistorted_background: bool) -> np.ndarray:
    """Region px ``(N,2)`` of clicks on ``camera``'s background → ``(N,2)`` px on its original video.
    ``camera``: an engine :class:`openkin.geometry.camera.Camera` (intrinsics and lens)."""
    ideal = ndc_to_pixels(region_to_ndc(xy, bounds), camera.size)
    if not undistorted_background:
        return ideal
    from openkin.geometry.undistort import distort_camera_points

    return distort_camera_points(camera, ideal)


def video_pixels_to_region(uv: np.ndarray, bounds, camera, undistorted_background: bool) -> np.ndarray:
    """Where pixels ``(N,2)`` of the original video are drawn on the background, in region px."""
    if undistorted_background:
        from openkin.geometry.undistort import undistort_camera_points

        uv = undistort_camera_points(camera, uv)
    return ndc_to_region(pixels_to_ndc(uv, camera.size), bounds)

"""Blender's side of the axis conventions. The conventions themselves (Y-up ↔ Z-up, OpenCV
camera ↔ Blender camera, extrinsics → ``matrix_world``) live in :mod:`openkin.geometry.axes`
and are re-exported here; this module adds what only Blender needs (its camera's lens,
shift and pixel aspect for an OpenCV ``K``, its view-frame coordinates).

Worlds
  * Calibration world (Pose2Sim/OpenKin TOML): Z-up, metres. The Blender world
    *is* this world (Blender is Z-up too), so cameras need no extra turn.
  * OpenSim / TRC / MOT: Y-up. Pose2Sim writes them with ``zup2yup``
    (new X = old Y, new Y = old Z, new Z = old X); :data:`YUP_TO_ZUP` undoes it,
    so markers and the skeleton land exactly where the cameras saw them.

Cameras
  * OpenCV camera axes: x right, y down, z forward; pixel (0, 0) is the *centre*
    of the top-left pixel; ``u = fx X/Z + cx``.
  * Blender camera axes: x right, y up, looking down -z; its view frame spans
    the full render area, whose left/bottom edge is 0 and right/top edge is 1 in
    ``world_to_camera_view`` coordinates.
  * The Blender camera here is an ideal pinhole equal to ``K`` (no distortion):
    the add-on shows *undistorted* video frames (see :mod:`.undistort`), so a
    marker drawn by Blender lands where OpenCV's undistorted image shows it.

Blender's view plane (``BKE_camera_params_compute_viewplane``), horizontal sensor
fit, render size W×H, pixel aspect ax:ay, ``ycor = ay/ax``:
``fx = lens W / sensor``, ``fy = fx / ycor``, shift in units of W for both axes
(``dy`` in rows is ``shift_y W / ycor``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openkin.geometry.axes import CV_TO_BLENDER_CAM as CV_TO_BL_CAM  # noqa: F401  (OpenCV → Blender camera axes)
from openkin.geometry.axes import YUP_TO_ZUP, YUP_TO_ZUP_4, ZUP_TO_YUP, homogeneous, yup_to_zup_transforms  # noqa: F401
from openkin.geometry.axes import blender_camera_matrix_world as camera_matrix_world  # noqa: F401
from openkin.geometry.axes import yup_to_zup as yup_to_zup_points  # noqa: F401

SENSOR_WIDTH_MM = 36.0  # arbitrary: only lens / sensor matters


@dataclass(frozen=True)
class BlenderCameraParams:
    """What Blender needs to reproduce an OpenCV ``K`` exactly (sensor fit HORIZONTAL)."""

    resolution: tuple[int, int]        # render size (W, H) px
    lens: float                        # mm
    sensor_width: float                # mm
    shift_x: float
    shift_y: float
    pixel_aspect: tuple[float, float]  # (ax, ay), each ≥ 1 as Blender requires


def blender_camera_params(matrix: np.ndarray, size: tuple[float, float]) -> BlenderCameraParams:
    """(3, 3) OpenCV ``K`` and image (W, H) → Blender camera and render settings.

    Pixel-centre convention: OpenCV's ``cx`` is measured from the centre of the
    first pixel, Blender's view frame from the left edge, hence the ``+ 0.5``.
    """
    k = np.asarray(matrix, dtype=float)
    w, h = int(round(size[0])), int(round(size[1]))
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    ax, ay = (fy / fx, 1.0) if fy >= fx else (1.0, fx / fy)
    ycor = ay / ax                      # = fx / fy
    lens = fx * SENSOR_WIDTH_MM / w
    shift_x = (w / 2.0 - (cx + 0.5)) / w
    shift_y = ((cy + 0.5) - h / 2.0) * ycor / w
    return BlenderCameraParams((w, h), float(lens), SENSOR_WIDTH_MM, float(shift_x), float(shift_y),
                               (float(ax), float(ay)))


def ndc_to_pixels(ndc: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    """(N, 2+) Blender ``world_to_camera_view`` x, y (0..1, y up) → (N, 2) OpenCV pixels."""
    ndc = np.asarray(ndc, dtype=float)
    w, h = float(round(size[0])), float(round(size[1]))
    return np.stack([ndc[:, 0] * w - 0.5, (1.0 - ndc[:, 1]) * h - 0.5], axis=1)


def image_plane_corners(matrix: np.ndarray, size: tuple[float, float], depth: float) -> np.ndarray:
    """The image's outer corners at ``depth`` metres, in Blender camera axes.

    Returns (4, 3): bottom-left, bottom-right, top-right, top-left (counter-clockwise
    seen from the camera), i.e. pixel edges u = -0.5 … W-0.5, v = H-0.5 … -0.5.
    """
    k = np.asarray(matrix, dtype=float)
    w, h = float(round(size[0])), float(round(size[1]))
    u = np.array([-0.5, w - 0.5, w - 0.5, -0.5])
    v = np.array([h - 0.5, h - 0.5, -0.5, -0.5])
    x = (u - k[0, 2]) / k[0, 0] * depth
    y = (v - k[1, 2]) / k[1, 1] * depth
    cv = np.stack([x, y, np.full(4, depth)], axis=1)
    return cv @ CV_TO_BL_CAM.T

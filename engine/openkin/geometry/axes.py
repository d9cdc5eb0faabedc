"""Axis conventions, all in one place.

Worlds
  * Calibration world (Pose2Sim/OpenKin TOML): Z up, metres. The Blender world is this
    world too (Blender is Z up), so cameras and markers need no extra turn there.
  * OpenSim / TRC / MOT: Y up. Pose2Sim writes TRC files with ``zup2yup``: new X = old Y,
    new Y = old Z, new Z = old X (:func:`zup_to_yup`); :func:`yup_to_zup` undoes it.
    ``p_zup = YUP_TO_ZUP @ p_yup``.

Cameras
  * OpenCV camera: x right, y down, z forward (the optical axis); pixel (0, 0) is the
    centre of the top-left pixel; ``x_cam = R @ X_world + t`` (``R`` from the Rodrigues
    ``rotation``), camera centre ``-Rᵀ t``.
  * Blender camera: x right, y up, looking down -z: ``x_blender = CV_TO_BLENDER_CAM @ x_cv``.
"""
from __future__ import annotations

import numpy as np

from .rotations import rotation_matrix

# Y-up (OpenSim, TRC, MOT) → Z-up (calibration world = Blender world): p_z = YUP_TO_ZUP @ p_y.
YUP_TO_ZUP = np.array([[0.0, 0.0, 1.0],
                       [1.0, 0.0, 0.0],
                       [0.0, 1.0, 0.0]])
ZUP_TO_YUP = YUP_TO_ZUP.T
# OpenCV camera axes → Blender camera axes (flip y and z); its own inverse.
CV_TO_BLENDER_CAM = np.diag([1.0, -1.0, -1.0])


def zup_to_yup(xyz: np.ndarray) -> np.ndarray:
    """Z-up world points ``(..., 3)`` → Y-up ``(..., 3)`` (Pose2Sim's ``zup2yup``; exact: a permutation)."""
    return np.asarray(xyz)[..., [1, 2, 0]]


def yup_to_zup(xyz: np.ndarray) -> np.ndarray:
    """Inverse of :func:`zup_to_yup`. ``(..., 3)`` → ``(..., 3)``."""
    return np.asarray(xyz)[..., [2, 0, 1]]


def homogeneous(rotation: np.ndarray, translation: np.ndarray | None = None) -> np.ndarray:
    """``rotation (..., 3, 3)`` and ``translation (..., 3)`` → rigid transforms ``(..., 4, 4)``."""
    rotation = np.asarray(rotation, dtype=float)
    out = np.zeros(rotation.shape[:-2] + (4, 4))
    out[..., :3, :3] = rotation
    if translation is not None:
        out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


YUP_TO_ZUP_4 = homogeneous(YUP_TO_ZUP)


def yup_to_zup_transforms(mats: np.ndarray) -> np.ndarray:
    """Frames ``(..., 4, 4)`` expressed in the Y-up world → the same frames in the Z-up world."""
    return YUP_TO_ZUP_4 @ np.asarray(mats, dtype=float)


def camera_to_world(rotation_w2c: np.ndarray, translation_w2c: np.ndarray) -> np.ndarray:
    """OpenCV extrinsics (``x_cam = R x_world + t``; ``rotation_w2c (3,)`` Rodrigues or ``(3, 3)``,
    ``translation_w2c (3,)`` m) → ``(4, 4)`` pose of the OpenCV camera frame in the world."""
    r = np.asarray(rotation_w2c, dtype=float)
    if r.shape != (3, 3):
        r = rotation_matrix(r.reshape(3))
    t = np.asarray(translation_w2c, dtype=float).reshape(3)
    return homogeneous(r.T, -r.T @ t)


def blender_camera_matrix_world(rotation_w2c: np.ndarray, translation_w2c: np.ndarray) -> np.ndarray:
    """OpenCV extrinsics → ``(4, 4)`` Blender camera ``matrix_world`` (its axes x right, y up, -z forward)."""
    m = camera_to_world(rotation_w2c, translation_w2c)
    m[:3, :3] = m[:3, :3] @ CV_TO_BLENDER_CAM
    return m

"""Rotations through ``scipy.spatial.transform.Rotation``, vectorised: Rodrigues vectors
(OpenCV's ``rvec``), matrices, body-fixed X-Y-Z Euler angles (SimTK's), quaternions (w first)."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def rotation_matrix(rvec: np.ndarray) -> np.ndarray:
    """Rodrigues vectors ``(..., 3)`` → rotation matrices ``(..., 3, 3)`` (as ``cv2.Rodrigues``)."""
    rvec = np.asarray(rvec, dtype=float)
    return Rotation.from_rotvec(rvec.reshape(-1, 3)).as_matrix().reshape(rvec.shape[:-1] + (3, 3))


def rotation_vector(R: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` → Rodrigues vectors ``(..., 3)``; a matrix that is not
    quite orthonormal (text files) is taken to its nearest rotation."""
    R = np.asarray(R, dtype=float)
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(R.shape[:-2] + (3,))


def euler_xyz_to_matrix(angles: np.ndarray) -> np.ndarray:
    """Body-fixed X-Y-Z angles ``(..., 3)`` rad (SimTK ``BodyRotationSequence`` X, Y, Z) →
    ``(..., 3, 3) = Rx(a) Ry(b) Rz(c)``."""
    angles = np.asarray(angles, dtype=float)
    return Rotation.from_euler("XYZ", angles.reshape(-1, 3)).as_matrix().reshape(angles.shape[:-1] + (3, 3))


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` → unit quaternions ``(..., 4)`` (w, x, y, z), w ≥ 0."""
    R = np.asarray(R, dtype=float)
    q = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat(canonical=True, scalar_first=True)
    return q.reshape(R.shape[:-2] + (4,))

"""The camera model: OpenCV pinhole with Brown-Conrady distortion, or OpenCV fisheye.

Conventions (OpenCV): ``K (3,3)`` intrinsics, pixel (0, 0) at the centre of the top-left
pixel; distortion k1, k2, p1, p2[, k3] (pinhole; 8, 12 or 14 values: OpenCV's rational
and thin-prism models) or k1..k4 (fisheye, ``cv2.fisheye``); ``rotation (3,)`` Rodrigues
world→camera, ``translation (3,)`` metres world→camera: ``x_cam = R X + t``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import OpenKinError
from .rotations import rotation_matrix, rotation_vector

DISTORTION_SIZES = ((4,), (5,), (8,), (12,), (14,))


@dataclass(eq=False)  # arrays inside: compare fields with numpy, not ==
class Camera:
    """One calibrated camera (OpenCV pinhole model, or fisheye).

    ``size``: (2,) width, height px; ``matrix``: (3, 3) K; ``distortions``: (4,) or (5,)
    k1, k2, p1, p2[, k3] (fisheye: (4,) k1..k4); ``rotation``: (3,) Rodrigues world→camera
    (a (3, 3) matrix is accepted); ``translation``: (3,) metres world→camera.
    """

    name: str
    size: np.ndarray
    matrix: np.ndarray
    distortions: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    fisheye: bool = False

    def __post_init__(self):
        self.name = str(self.name)
        self.size = _array("size", self.size, (2,))
        self.matrix = _array("matrix", self.matrix, (3, 3))
        self.distortions = _array("distortions", self.distortions, None).reshape(-1)
        self.fisheye = bool(self.fisheye)
        self._check_distortions()
        rotation = _array("rotation", self.rotation, None)
        if rotation.shape == (3, 3):
            rotation = rotation_vector(rotation)
        self.rotation = _array("rotation", rotation.reshape(-1), (3,))
        self.translation = _array("translation", self.translation, (3,))
        if self.size.min() <= 0 or self.matrix[0, 0] <= 0 or self.matrix[1, 1] <= 0:
            raise OpenKinError(f"camera {self.name!r}: image size and focal lengths must be positive",
                               fix="check 'size' and 'matrix' (fx = matrix[0][0], fy = matrix[1][1])")

    def _check_distortions(self) -> None:
        n = self.distortions.shape[0]
        if self.fisheye and n < 4:
            raise OpenKinError(f"camera {self.name!r}: a fisheye camera needs 4 distortion values "
                               f"(k1, k2, k3, k4), got {n}", fix="give k1, k2, k3, k4 (cv2.fisheye order)")
        if not self.fisheye and self.distortions.shape not in DISTORTION_SIZES:
            raise OpenKinError(f"camera {self.name!r}: distortions must have 4 or 5 values, got {n}",
                               fix="give k1, k2, p1, p2[, k3] (OpenCV order)")

    @property
    def R(self) -> np.ndarray:
        """(3, 3) rotation matrix world→camera."""
        return rotation_matrix(self.rotation)

    @property
    def projection(self) -> np.ndarray:
        """(3, 4) ``K @ [R | t]`` (no distortion)."""
        return self.matrix @ np.hstack([self.R, self.translation[:, None]])

    @property
    def center(self) -> np.ndarray:
        """(3,) camera position in world coordinates (metres)."""
        return -self.R.T @ self.translation

    @property
    def width(self) -> int:
        return int(round(self.size[0]))

    @property
    def height(self) -> int:
        return int(round(self.size[1]))


def _array(key: str, value, shape: tuple | None) -> np.ndarray:
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        what = f"{' x '.join(map(str, shape))} numbers" if shape else "numbers"
        raise OpenKinError(f"'{key}' must be {what}, got {value!r}", fix=f"write '{key}' as {what}") from None
    if shape is not None and arr.shape != shape:
        raise OpenKinError(f"'{key}' has shape {arr.shape}, expected {shape}",
                           fix=f"write '{key}' with {' x '.join(map(str, shape))} numbers")
    if not np.all(np.isfinite(arr)):
        raise OpenKinError(f"'{key}' contains NaN or infinite values", fix="recalibrate or fix the values by hand")
    return arr


@dataclass
class Rig:
    """Cameras as arrays: ``K (C,3,3)``, ``R (C,3,3)`` world→camera, ``t (C,3)`` m, ``dist``
    (C arrays of distortion coefficients), ``names`` (C,), ``fisheye (C,)`` bool (None: all pinhole)."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    dist: list
    names: list[str] = field(default_factory=list)
    fisheye: np.ndarray | None = None

    def __post_init__(self):
        C = len(self.K)
        self.fisheye = np.zeros(C, bool) if self.fisheye is None else np.asarray(self.fisheye, bool).reshape(C)

    @classmethod
    def from_cameras(cls, cameras: list[Camera]) -> "Rig":
        return cls(np.array([c.matrix for c in cameras]), np.array([c.R for c in cameras]),
                   np.array([c.translation for c in cameras]), [c.distortions for c in cameras],
                   [c.name for c in cameras], np.array([c.fisheye for c in cameras], bool))

    @property
    def P(self) -> np.ndarray:
        """``(C,3,4)`` projection matrices ``K [R | t]``."""
        return projection_matrices(self.K, self.R, self.t)


def projection_matrices(K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``K (C,3,3)``, ``R (C,3,3)`` world→camera, ``t (C,3)`` → ``P (C,3,4) = K [R | t]``."""
    Rt = np.concatenate([R, t[:, :, None]], axis=2)
    return K @ Rt


def camera_projections(cameras: list[Camera]) -> np.ndarray:
    """``(C, 3, 4)`` stacked ``K [R | t]`` of ``cameras``."""
    return np.stack([c.projection for c in cameras])

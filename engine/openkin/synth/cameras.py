"""Cameras of ground-truth scenes: the demo's real calibration, extra cameras on a
ring around the capture volume, and perturbed copies of a calibration.

World frame: the calibration's (Z-up, metres), as the demo's Qualisys file gives it.
"""
from __future__ import annotations

import logging

import numpy as np

from ..geometry import Camera, rotation_matrix, rotation_vector

log = logging.getLogger(__name__)

DEMO_CALIBRATION = "Demo_SinglePerson/calibration/Calib.qca.txt"


def demo_cameras() -> list[Camera]:
    """The 4 cameras of Pose2Sim's demo (1088×1920 portrait, 60 fps), converted from
    its Qualisys ``.qca.txt`` by :mod:`openkin.formats.calib_converters`."""
    from ..assets import asset_path
    from ..formats.calib_converters import convert_calibration

    return convert_calibration(asset_path(DEMO_CALIBRATION), "qualisys")


def look_at_point(cameras: list[Camera], height: float | None = None) -> np.ndarray:
    """The point closest (least squares) to all optical axes; with ``height``, the point
    of the floor-parallel plane z = height closest to them. → (3,) world metres."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for cam in cameras:
        d = cam.R[2]  # optical axis in world
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ cam.center
    if height is None:
        return np.linalg.solve(A, b)
    # minimise sum |P_i (x - c_i)|^2 with x_z fixed
    xy = np.linalg.solve(A[:2, :2], b[:2] - A[:2, 2] * height)
    return np.array([xy[0], xy[1], height])


def camera_looking_at(name: str, center: np.ndarray, target: np.ndarray, template: Camera) -> Camera:
    """A camera at ``center`` (3,) aimed at ``target`` (3,), world Z up, with the
    intrinsics, distortion and image size of ``template``."""
    forward = target - center
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera x (right), y (down), z (forward)
    return Camera(name=name, size=template.size.copy(), matrix=template.matrix.copy(),
                  distortions=template.distortions.copy(), rotation=rotation_vector(R),
                  translation=-R @ center, fisheye=template.fisheye)


def ring_cameras(n: int, target: np.ndarray, template: Camera, *, radius: float = 3.6,
                 heights: tuple[float, float] = (1.2, 2.4), first_index: int = 1,
                 phase: float = 0.0) -> list[Camera]:
    """``n`` cameras evenly spaced on a horizontal ring around ``target`` (3,), at
    alternating heights, all aimed at it; named ``cam{first_index:02d}``, ..."""
    cams = []
    for i in range(n):
        angle = phase + 2 * np.pi * i / max(n, 1)
        h = heights[i % 2] if n > 1 else heights[1]
        c = np.array([target[0] + radius * np.cos(angle), target[1] + radius * np.sin(angle), h])
        cams.append(camera_looking_at(f"cam{first_index + i:02d}", c, target, template))
    return cams


def scene_cameras(n: int, target: np.ndarray) -> list[Camera]:
    """The demo cameras (first ``n`` if n <= 4), plus ring cameras up to ``n``."""
    demo = demo_cameras()
    if n <= len(demo):
        return demo[:n]
    ring = ring_cameras(n - len(demo), target, demo[0], first_index=len(demo) + 1, phase=np.pi / (n - len(demo)))
    return demo + ring


def with_fisheye(cameras: list[Camera], k: tuple[float, float, float, float]) -> list[Camera]:
    """Copies of ``cameras`` with a fisheye lens (OpenCV fisheye model, ``k`` = k1..k4), same K and pose."""
    return [Camera(name=c.name, size=c.size.copy(), matrix=c.matrix.copy(), distortions=list(k),
                   rotation=c.rotation.copy(), translation=c.translation.copy(), fisheye=True) for c in cameras]


def perturb_cameras(rng: np.random.Generator, cameras: list[Camera], translation_m: float,
                    rotation_deg: float) -> list[Camera]:
    """Copies with each camera moved by ``translation_m`` and turned by ``rotation_deg``
    about a random axis (the calibration error of a real rig)."""
    out = []
    for cam in cameras:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        dR = rotation_matrix(axis * np.deg2rad(rotation_deg))
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        R = dR @ cam.R
        center = cam.center + translation_m * direction
        out.append(Camera(name=cam.name, size=cam.size.copy(), matrix=cam.matrix.copy(),
                          distortions=cam.distortions.copy(), rotation=rotation_vector(R),
                          translation=-R @ center, fisheye=cam.fisheye))
    return out

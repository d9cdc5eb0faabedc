"""Camera calibrations: the TOML shared by Pose2Sim, anipose, Caliscope and FreeMoCap.

This module only reads and writes the file; the camera model (:class:`Camera`, re-exported
here) and all projection live in :mod:`openkin.geometry`.

File layout (one section per camera, in camera order, then metadata)::

    [cam_0]
    name = "cam01"
    size = [ 1088, 1920 ]                       # width, height in pixels
    matrix = [ [ fx, 0.0, cx ], [ 0.0, fy, cy ], [ 0.0, 0.0, 1.0 ] ]
    distortions = [ k1, k2, p1, p2 ]            # OpenCV order; 5 values with k3
    rotation = [ rx, ry, rz ]                   # Rodrigues vector, world -> camera
    translation = [ tx, ty, tz ]                # metres, world -> camera
    fisheye = false

    [metadata]
    adjusted = false
    error = 0.0

The reader takes any table with a ``matrix`` key as a camera, in file order
(Pose2Sim pairs cameras with pose folders by order), also nested ones
(Caliscope's ``[cameras.N]``, where ``ignore = true`` cameras are skipped); it
skips ``metadata``, ``capture_volume``, ``charuco``, ``checkerboard``. A missing
``name`` becomes ``cam_<port>`` (Caliscope) or the section name. ``rotation`` may
also be a 3x3 matrix. FreeMoCap writes translations in millimetres: when the
median camera distance from the world origin exceeds 50 units the file is
taken to be in millimetres and converted, with a warning (``units=`` forces it).

Axis conventions
----------------
- Camera (OpenCV): x right, y down, z forward (the optical axis); pixel (0, 0)
  is the centre of the top-left pixel.
- ``x_cam = R @ X_world + t``: ``rotation``/``translation`` map world points into
  the camera frame; the camera centre in world is ``-R.T @ t``.
- World: Z up, as in Pose2Sim calibrations (Qualisys, checkerboard on the floor).
  Pose2Sim's TRC outputs are Y-up; see :mod:`openkin.geometry.axes`.
"""
from __future__ import annotations

import logging
import math
import tomllib
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write
from ..geometry.camera import Camera
# Compatibility re-exports (the geometry lives in openkin.geometry): for the modules that still
# import it from here (refinement, report, calibration stage, converters, synchronisation, tests).
from ..geometry.camera import camera_projections as projection_matrices  # noqa: F401
from ..geometry.projection import camera_depths, project_linear, project_points, project_points_all  # noqa: F401
from ..geometry.rotations import rotation_matrix, rotation_vector  # noqa: F401
from ..geometry.undistort import undistort_camera_points as undistort_points  # noqa: F401
from ._io import read_text

log = logging.getLogger(__name__)

NOT_CAMERAS = ("metadata", "capture_volume", "charuco", "checkerboard")
MM_THRESHOLD = 50.0  # a median camera distance above this many units means millimetres


# ---------------------------------------------------------------- reading
def read_calibration(path: str | Path, units: str = "auto") -> list[Camera]:
    """Read a calibration TOML → cameras in file order.

    ``units``: 'auto' (millimetre translations detected, as FreeMoCap writes them),
    'm' or 'mm' to force.
    """
    path = Path(path)
    fix = "run the calibration stage, or convert your system's calibration with 'convert'"
    text = read_text(path, "calibration file", fix=fix)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OpenKinError(f"malformed TOML: {exc}", path=path,
                           fix="fix the syntax at that line (TOML: key = value, [section])") from None
    cameras = [_camera_from_table(path, key, table) for key, table in _camera_tables(data)]
    if not cameras:
        raise OpenKinError("no camera in calibration file (no table with a 'matrix' key)", path=path,
                           fix="each camera needs a [cam_N] section with name, size, matrix, distortions, "
                               "rotation, translation")
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise OpenKinError(f"camera names repeat: {names}", path=path, fix="give every camera its own name")
    return _to_metres(path, cameras, units)


def _camera_tables(data: dict) -> list[tuple[str, dict]]:
    """Camera tables in file order: top-level ``[cam_N]`` (Pose2Sim, anipose, FreeMoCap) or nested
    ``[cameras.N]`` (Caliscope's camera_array.toml); tables marked ``ignore = true`` are skipped."""
    found = []
    for key, table in data.items():
        if not isinstance(table, dict) or key in NOT_CAMERAS:
            continue
        if "matrix" in table:
            found.append((key, table))
        else:
            found += [(f"{key}.{k}", t) for k, t in table.items() if isinstance(t, dict) and "matrix" in t]
    skipped = [k for k, t in found if t.get("ignore") is True]
    if skipped:
        log.info("skipping cameras marked ignore = true: %s", skipped)
    return [(k, t) for k, t in found if t.get("ignore") is not True]


def _default_name(key: str, table: dict) -> str:
    if "name" in table:
        return str(table["name"])
    if "port" in table:
        return f"cam_{table['port']}"
    return key


def _camera_from_table(path: Path, key: str, table: dict) -> Camera:
    missing = [k for k in ("size", "matrix", "distortions", "rotation", "translation") if k not in table]
    if missing:
        raise OpenKinError(f"camera [{key}] lacks {', '.join(missing)}", path=path,
                           fix="each camera needs size, matrix, distortions, rotation and translation")
    try:
        return Camera(name=_default_name(key, table), size=table["size"], matrix=table["matrix"], distortions=table["distortions"],
                      rotation=table["rotation"], translation=table["translation"],
                      fisheye=table.get("fisheye", False))
    except OpenKinError as exc:
        raise OpenKinError(f"camera [{key}]: {exc.problem}", path=path, fix=exc.fix) from None


def _to_metres(path: Path, cameras: list[Camera], units: str) -> list[Camera]:
    if units not in ("auto", "m", "mm"):
        raise OpenKinError(f"unknown calibration units {units!r}", path=path, fix="use 'auto', 'm' or 'mm'")
    distance = float(np.median([np.linalg.norm(c.translation) for c in cameras]))
    if units == "auto" and distance > MM_THRESHOLD:
        log.warning("%s: cameras are %.0f units from the origin; taking translations as millimetres "
                    "(FreeMoCap) and converting to metres", path, distance)
        units = "mm"
    if units == "mm":
        for c in cameras:
            c.translation = c.translation / 1000.0
    return cameras


# ---------------------------------------------------------------- writing
def write_calibration(path: str | Path, cameras: list[Camera], error: float = 0.0,
                      adjusted: bool = False) -> Path:
    """Write cameras atomically as ``[cam_N]`` sections plus ``[metadata]``; returns ``path``."""
    path = Path(path)
    cameras = list(cameras)
    if not cameras or not all(isinstance(c, Camera) for c in cameras):
        raise OpenKinError("nothing to write: give a non-empty list of Camera", path=path,
                           fix="pass the calibrated cameras")
    sections = [_camera_text(i, c) for i, c in enumerate(cameras)]
    meta = f"[metadata]\nadjusted = {'true' if adjusted else 'false'}\nerror = {_f(error)}\n"
    with atomic_write(path) as f:
        f.write("\n".join(sections) + "\n" + meta)
    return path


def _camera_text(index: int, cam: Camera) -> str:
    size = ", ".join(str(int(s)) if float(s).is_integer() else _f(s) for s in cam.size)
    rows = ", ".join("[ " + ", ".join(_f(v) for v in row) + " ]" for row in cam.matrix)
    name = cam.name.replace("\\", "\\\\").replace('"', '\\"')
    return (f"[cam_{index}]\n"
            f'name = "{name}"\n'
            f"size = [ {size} ]\n"
            f"matrix = [ {rows} ]\n"
            f"distortions = [ {_vec(cam.distortions)} ]\n"
            f"rotation = [ {_vec(cam.rotation)} ]\n"
            f"translation = [ {_vec(cam.translation)} ]\n"
            f"fisheye = {'true' if cam.fisheye else 'false'}\n")


def _vec(values: np.ndarray) -> str:
    return ", ".join(_f(v) for v in values)


def _f(value: float) -> str:
    """Shortest exact float text (repr); TOML has no NaN in our files."""
    value = float(value)
    if not math.isfinite(value):
        raise OpenKinError(f"cannot write non-finite value {value} in a calibration", fix="check the calibration")
    return repr(value)

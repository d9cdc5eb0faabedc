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
also be a 3x3 matrix. FreeMoCap writes translations in millimetres: with
``units='auto'`` a file is read as millimetres only when that is clear
(FreeMoCap's charuco metadata, or cameras 100 units apart or more), else as
metres, with a warning when the camera spacing does not tell; ``units='m'`` or
``'mm'`` (``[calibration] units``) says it. Files OpenKin writes declare
``units = "m"`` in ``[metadata]``, which wins over the setting.

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
from ._io import read_text

log = logging.getLogger(__name__)

NOT_CAMERAS = ("metadata", "capture_volume", "charuco", "checkerboard")


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
    """Cameras with translations in metres. ``units``: 'm', 'mm', or 'auto' (see :func:`_guess_units`).

    A file that declares its units (``[metadata] units``, as OpenKin writes) is read in them
    whatever ``units`` says: the setting is for files that do not say.
    """
    if units not in ("auto", "m", "mm"):
        raise OpenKinError(f"unknown calibration units {units!r}", path=path,
                           fix="set [calibration] units to 'auto', 'm' or 'mm'")
    metadata = _metadata(path)
    declared = metadata.get("units")
    if declared in ("m", "mm"):
        if units not in ("auto", declared):
            log.info("%s declares units = %r: [calibration] units = %r applies to files that do not", path,
                     declared, units)
        units = declared
    elif units == "auto":
        units = _guess_units(path, cameras, metadata)
    if units == "mm":
        for c in cameras:
            c.translation = c.translation / 1000.0
    return cameras


MM_BASELINE = 100.0  # cameras a median this many units apart: millimetres (no capture rig spans 100 m)
M_BASELINE = 20.0  # ... this close: metres (no capture rig has cameras 20 mm apart)


def _metadata(path: Path) -> dict:
    """The ``[metadata]`` table of the calibration file ({} if none)."""
    try:
        table = tomllib.loads(read_text(path, "calibration file")).get("metadata", {})
    except (OpenKinError, tomllib.TOMLDecodeError):
        return {}
    return table if isinstance(table, dict) else {}


def _guess_units(path: Path, cameras: list[Camera], metadata: dict) -> str:
    """'mm' or 'm' for a file that does not say: millimetres only when that is clear (FreeMoCap's
    charuco metadata, or cameras >= MM_BASELINE units apart), metres otherwise, with a warning
    when the spacing does not tell (between M_BASELINE and MM_BASELINE units, or one camera far
    from the origin). Camera-to-camera distances, not distances from the origin: a metric
    calibration whose world origin is 60 m away is still metres."""
    if "charuco_square_size" in metadata or "charuco_board_object" in metadata:
        log.warning("%s: FreeMoCap calibration (charuco metadata): translations read as millimetres "
                 "(set [calibration] units = 'm' if they are metres)", path)
        return "mm"
    centres = np.array([c.center for c in cameras])
    if len(cameras) > 1:
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(len(cameras), 1)]
        spacing, what = float(np.median(gaps)), "apart (median)"
    else:
        spacing, what = float(np.linalg.norm(centres[0])), "from the world origin (one camera)"
    if spacing >= MM_BASELINE and len(cameras) > 1:
        log.warning("%s: cameras %.0f units %s: translations read as millimetres (%.2f m); set "
                 "[calibration] units = 'm' if they really are %.0f m apart", path, spacing, what,
                 spacing / 1000, spacing)
        return "mm"
    if spacing >= M_BASELINE:
        log.warning("%s: cameras %.0f units %s: metres or millimetres cannot be told; read as metres. "
                    "Set [calibration] units = 'm' or 'mm' in Config.toml to say which", path, spacing, what)
    return "m"


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
    meta += 'units = "m"\n'  # read back in metres whatever [calibration] units says
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

"""Camera calibrations: the TOML shared by Pose2Sim, anipose, Caliscope and FreeMoCap.

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
  Pose2Sim's TRC outputs are Y-up; see :func:`openkin.formats.trc.zup_to_yup`.
"""
from __future__ import annotations

import logging
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write
from ._io import read_text

log = logging.getLogger(__name__)

NOT_CAMERAS = ("metadata", "capture_volume", "charuco", "checkerboard")


@dataclass(eq=False)  # arrays inside: compare fields with numpy, not ==
class Camera:
    """One calibrated camera (OpenCV pinhole model, optionally fisheye).

    ``size``: (2,) width, height px; ``matrix``: (3, 3) K; ``distortions``: (4,) or (5,)
    k1, k2, p1, p2[, k3] (fisheye: k1..k4); ``rotation``: (3,) Rodrigues world→camera;
    ``translation``: (3,) metres world→camera.
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
        if self.distortions.shape not in ((4,), (5,), (8,), (12,), (14,)):
            raise OpenKinError(f"camera {self.name!r}: distortions must have 4 or 5 values, got "
                               f"{self.distortions.shape[0]}", fix="give k1, k2, p1, p2[, k3] (OpenCV order)")
        rotation = _array("rotation", self.rotation, None)
        if rotation.shape == (3, 3):
            rotation = cv2.Rodrigues(rotation)[0]
        self.rotation = _array("rotation", rotation.reshape(-1), (3,))
        self.translation = _array("translation", self.translation, (3,))
        self.fisheye = bool(self.fisheye)
        if self.size.min() <= 0 or self.matrix[0, 0] <= 0 or self.matrix[1, 1] <= 0:
            raise OpenKinError(f"camera {self.name!r}: image size and focal lengths must be positive",
                               fix="check 'size' and 'matrix' (fx = matrix[0][0], fy = matrix[1][1])")

    @property
    def R(self) -> np.ndarray:
        """(3, 3) rotation matrix world→camera."""
        return cv2.Rodrigues(self.rotation)[0]

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


# ---------------------------------------------------------------- geometry
def rotation_vector(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix → (3,) Rodrigues vector."""
    return cv2.Rodrigues(np.asarray(R, dtype=float))[0].reshape(3)


def rotation_matrix(rvec: np.ndarray) -> np.ndarray:
    """(3,) Rodrigues vector → (3, 3) rotation matrix."""
    return cv2.Rodrigues(np.asarray(rvec, dtype=float).reshape(3, 1))[0]


def project_points(camera: Camera, points: np.ndarray) -> np.ndarray:
    """Project world points into ``camera`` with its distortion. (N, 3) metres → (N, 2) px.

    Rows with NaN give NaN. Points behind the camera are projected too (mirrored):
    check depth with :func:`camera_depths` where that matters.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    out = np.full((len(points), 2), np.nan)
    ok = np.all(np.isfinite(points), axis=1)
    if ok.any():
        obj = np.ascontiguousarray(points[ok]).reshape(-1, 1, 3)
        if camera.fisheye:
            uv = cv2.fisheye.projectPoints(obj, camera.rotation, camera.translation, camera.matrix,
                                           camera.distortions[:4])[0]
        else:
            uv = cv2.projectPoints(obj, camera.rotation, camera.translation, camera.matrix, camera.distortions)[0]
        out[ok] = uv.reshape(-1, 2)
    return out


def project_points_all(cameras: list[Camera], points: np.ndarray) -> np.ndarray:
    """Project through every camera with distortion. (..., 3) → (C, ..., 2) px."""
    points = np.asarray(points, dtype=float)
    flat = points.reshape(-1, 3)
    return np.stack([project_points(c, flat).reshape(*points.shape[:-1], 2) for c in cameras])


def projection_matrices(cameras: list[Camera]) -> np.ndarray:
    """(C, 3, 4) stacked ``K [R | t]``."""
    return np.stack([c.projection for c in cameras])


def project_linear(P: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pinhole projection without distortion, vectorised over cameras and points.

    ``P``: (C, 3, 4) or (3, 4); ``points``: (..., 3) → (C, ..., 2) (or (..., 2) for one P).
    Points on or behind the image plane's vanishing line (depth 0) give inf/NaN.
    """
    P = np.asarray(P, dtype=float)
    pts = np.asarray(points, dtype=float)
    homog = np.concatenate([pts, np.ones(pts.shape[:-1] + (1,))], axis=-1)
    uvw = np.einsum("...ij,nj->...ni", P, homog.reshape(-1, 4))
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[..., :2] / uvw[..., 2:3]
    return uv.reshape(P.shape[:-2] + pts.shape[:-1] + (2,))


def camera_depths(cameras: list[Camera], points: np.ndarray) -> np.ndarray:
    """Depth (camera z) of points in each camera. (..., 3) → (C, ...) metres; negative = behind."""
    pts = np.asarray(points, dtype=float)
    R = np.stack([c.R for c in cameras])
    t = np.stack([c.translation for c in cameras])
    z = np.einsum("cj,nj->cn", R[:, 2], pts.reshape(-1, 3)) + t[:, 2:3]
    return z.reshape((len(cameras),) + pts.shape[:-1])


def undistort_points(camera: Camera, uv: np.ndarray) -> np.ndarray:
    """Remove lens distortion from pixel points, keeping pixel units (new K = K). (N, 2) → (N, 2)."""
    uv = np.asarray(uv, dtype=float).reshape(-1, 2)
    out = np.full_like(uv, np.nan)
    ok = np.all(np.isfinite(uv), axis=1)
    if ok.any():
        src = np.ascontiguousarray(uv[ok]).reshape(-1, 1, 2)
        if camera.fisheye:
            dst = cv2.fisheye.undistortPoints(src, camera.matrix, camera.distortions[:4], P=camera.matrix)
        else:
            dst = cv2.undistortPoints(src, camera.matrix, camera.distortions, P=camera.matrix)
        out[ok] = dst.reshape(-1, 2)
    return out


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

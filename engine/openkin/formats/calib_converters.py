"""Calibrations from other systems → :class:`~openkin.formats.calibration.Camera` lists.

``convert_calibration(path, kind, **opts)`` with ``kind`` one of:

- ``qualisys``: ``.qca.txt`` (XML). Options ``binning_factor`` (2 when filming
  540p with binned pixels; default 1) and ``video_only`` (keep cameras whose model
  is "video"/"none", as Pose2Sim; default True).
- ``vicon``: ``.xcp`` (XML). Option ``video_only`` (TYPE containing "video").
- ``opencap``: one ``.pickle`` per camera (a folder of them, or one file).
  Pickles run code when loaded: convert only files you trust.
- ``easymocap``: ``intri.yml`` + ``extri.yml`` (OpenCV FileStorage YAML); give the
  folder or either file. Option ``size=(w, h)`` when the files lack image sizes.
- ``biocv``: one ``.calib`` text file per camera (a folder of them, or one file).
- ``caliscope``, ``anipose``, ``freemocap``: the shared TOML (see
  :func:`~openkin.formats.calibration.read_calibration`; option ``units``).

Conventions follow Pose2Sim's converters so results match its calibrations:
output cameras are OpenCV world→camera, translations in metres, world Z up;
cameras are sorted in natural name order (cam2 before cam10).
"""
from __future__ import annotations

import logging
import pickle
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from ..errors import OpenKinError
from ..geometry import rotation_vector
from .calibration import Camera, read_calibration
from ._io import read_bytes, read_text

log = logging.getLogger(__name__)

KINDS = ("qualisys", "vicon", "opencap", "easymocap", "biocv", "caliscope", "anipose", "freemocap")


def convert_calibration(path: str | Path, kind: str, **opts) -> list[Camera]:
    """Read another system's calibration (file or folder) → cameras (metres, world→camera)."""
    path = Path(path)
    kind = str(kind).lower()
    converters = {"qualisys": _qualisys, "vicon": _vicon, "opencap": _opencap, "easymocap": _easymocap,
                  "biocv": _biocv, "caliscope": _toml, "anipose": _toml, "freemocap": _toml}
    if kind not in converters:
        raise OpenKinError(f"unknown calibration kind {kind!r}", path=path, fix=f"use one of: {', '.join(KINDS)}")
    if not path.exists():
        raise OpenKinError(f"{kind} calibration not found", path=path, fix="check the path in Config.toml")
    try:
        cameras = converters[kind](path, **opts)
    except TypeError as exc:
        if "keyword argument" not in str(exc):
            raise
        raise OpenKinError(f"bad option for {kind} conversion: {exc}", path=path,
                           fix="see openkin.formats.calib_converters for each kind's options") from None
    log.info("converted %d %s cameras from %s", len(cameras), kind, path)
    return cameras


def natural_key(text: str) -> list:
    """Sort key putting 'cam2' before 'cam10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(text))]


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _files(path: Path, pattern: str, kind: str) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(path.glob(pattern), key=lambda p: natural_key(p.name))
    if not files:
        raise OpenKinError(f"no {pattern} file for {kind} conversion in folder", path=path,
                           fix=f"put the {kind} calibration file(s) ({pattern}) in this folder")
    return files


# ---------------------------------------------------------------- XML (Qualisys, Vicon)
def _xml(path: Path, kind: str) -> ET.Element:
    try:
        return ET.fromstring(read_bytes(path, f"{kind} calibration"))
    except ET.ParseError as exc:
        raise OpenKinError(f"malformed {kind} XML: {exc}", path=path,
                           fix=f"give the {kind} calibration file as exported (it must be valid XML)") from None


def _attr(path: Path, element: ET.Element | None, key: str, where: str) -> str:
    value = element.get(key) if element is not None else None
    if value is None:
        raise OpenKinError(f"{where}: missing {key!r}", path=path,
                           fix="export the calibration again; the file looks incomplete")
    return value


def _num(path: Path, element: ET.Element | None, key: str, where: str) -> float:
    text = _attr(path, element, key, where)
    try:
        value = float(text)
    except ValueError:
        raise OpenKinError(f"{where}: {key}={text!r} is not a number", path=path, fix="fix that value") from None
    if not np.isfinite(value):
        raise OpenKinError(f"{where}: {key} is {text}", path=path, fix="recalibrate; NaN is not a calibration")
    return value


def _nums(path: Path, element: ET.Element | None, key: str, where: str) -> np.ndarray:
    text = _attr(path, element, key, where)
    try:
        values = np.array(text.split(), dtype=float)
    except ValueError:
        raise OpenKinError(f"{where}: {key}={text!r} is not numbers", path=path, fix="fix that value") from None
    if not np.all(np.isfinite(values)):
        raise OpenKinError(f"{where}: {key} has NaN", path=path, fix="recalibrate; NaN is not a calibration")
    return values


def _qualisys(path: Path, binning_factor: float = 1, video_only: bool = True) -> list[Camera]:
    path = _files(path, "*.qca.txt", "qualisys")[0]
    root = _xml(path, "qualisys")
    elements = root.findall("cameras/camera")
    if video_only:
        elements = [e for e in elements if any(m in e.get("model", "").lower() for m in ("video", "none"))]
    if not elements:
        raise OpenKinError("no video camera in the Qualisys calibration (model 'video' or 'none')", path=path,
                           fix="pass video_only=False to convert the marker cameras too")
    cameras = [_qualisys_camera(path, e, float(binning_factor)) for e in elements]
    return sorted(cameras, key=lambda c: natural_key(c.name))


def _qualisys_camera(path: Path, element: ET.Element, binning: float) -> Camera:
    """One Qualisys camera. QTM stores intrinsics in 1/64 sub-pixels of the full sensor and
    the camera pose (rotation by columns, position in mm) camera→world with y up, z backward."""
    name = _attr(path, element, "serial", "camera")
    where = f"camera {name}"
    fov, intr, tr = element.find("fov_video"), element.find("intrinsic"), element.find("transform")
    left, top = _num(path, fov, "left", where), _num(path, fov, "top", where)
    width = (_num(path, fov, "right", where) - left + 1) / binning
    height = (_num(path, fov, "bottom", where) - top + 1) / binning
    scale = 64.0 * binning

    def q(key):
        return _num(path, intr, key, where)

    K = [[q("focalLengthU") / scale, 0.0, q("centerPointU") / scale - left],
         [0.0, q("focalLengthV") / scale, q("centerPointV") / scale - top], [0.0, 0.0, 1.0]]
    # Pose2Sim scales the distortion coefficients like the intrinsics; kept for identical results.
    dist = [q(k) / scale for k in ("radialDistortion1", "radialDistortion2",
                                   "tangentalDistortion1", "tangentalDistortion2")]
    M = np.array([[_num(path, tr, f"r{i}{j}", where) for j in (1, 2, 3)] for i in (1, 2, 3)])
    R = _rot_x(np.pi) @ M  # world→camera, then QTM camera axes (y up, z back) → OpenCV (y down, z forward)
    centre = np.array([_num(path, tr, k, where) for k in "xyz"]) / 1000.0
    return _camera(path, name, [width, height], K, dist, R, -R @ centre)


def _camera(path: Path, name, size, K, dist, R, t) -> Camera:
    try:
        return Camera(name, size, K, dist, rotation_vector(np.asarray(R, dtype=float)), t)
    except OpenKinError as exc:
        raise OpenKinError(f"camera {name}: {exc.problem}", path=path, fix=exc.fix) from None


def _vicon(path: Path, video_only: bool = True) -> list[Camera]:
    path = _files(path, "*.xcp", "vicon")[0]
    root = _xml(path, "vicon")
    elements = root.findall("Camera")
    if video_only:
        elements = [e for e in elements if "video" in e.get("TYPE", "").lower()]
    if not elements:
        raise OpenKinError("no video camera in the Vicon calibration (TYPE containing 'video')", path=path,
                           fix="pass video_only=False to convert the marker cameras too")
    cameras = [_vicon_camera(path, e) for e in elements]
    return sorted(cameras, key=lambda c: natural_key(c.name))


def _vicon_camera(path: Path, element: ET.Element) -> Camera:
    """One Vicon camera: ORIENTATION is a world→camera quaternion (x, y, z, w), POSITION the
    camera centre in mm; only the two radial terms of Vicon's model are carried over (as Pose2Sim)."""
    name = _attr(path, element, "DEVICEID", "camera")
    where = f"camera {name}"
    key = element.find("KeyFrames/KeyFrame")
    if key is None:
        raise OpenKinError(f"{where}: no KeyFrames/KeyFrame element", path=path, fix="export the calibration again")
    size = _nums(path, element, "SENSOR_SIZE", where)[:2]
    fx = _num(path, key, "FOCAL_LENGTH", where)
    fy = fx / _num(path, element, "PIXEL_ASPECT_RATIO", where)
    cx, cy = _nums(path, key, "PRINCIPAL_POINT", where)[:2]
    if key.get("VICON_RADIAL2") is not None:
        radial = _nums(path, key, "VICON_RADIAL2", where)[3:5]
    else:
        radial = _nums(path, key, "VICON_RADIAL", where)[:2]
    quat = _nums(path, key, "ORIENTATION", where)
    if quat.shape != (4,) or not np.isclose(np.linalg.norm(quat), 1, atol=1e-3):
        raise OpenKinError(f"{where}: ORIENTATION must be a unit quaternion x y z w", path=path,
                           fix="export the calibration again")
    from scipy.spatial.transform import Rotation  # lazy: only Vicon needs scipy

    R = Rotation.from_quat(quat).as_matrix()  # scipy: scalar last, like Vicon
    centre = _nums(path, key, "POSITION", where)[:3] / 1000.0
    return _camera(path, name, size, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], [*radial, 0.0, 0.0], R, -R @ centre)


# ---------------------------------------------------------------- OpenCap pickles
_OPENCAP_TO_ZUP = _rot_z(np.pi) @ _rot_x(-np.pi / 2)  # OpenCap's vertical-board world → Z-up world


def _opencap(path: Path) -> list[Camera]:
    files = _files(path, "*.pickle", "opencap")
    return [_opencap_camera(f, f"cam_{i:02d}") for i, f in enumerate(files)]


def _opencap_camera(path: Path, name: str) -> Camera:
    """One OpenCap camera: world→camera rotation and translation (mm) in the board's frame."""
    try:
        data = pickle.loads(read_bytes(path, "opencap calibration"))
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as exc:
        raise OpenKinError(f"not a readable OpenCap pickle: {exc}", path=path,
                           fix="give the cameraIntrinsicsExtrinsics.pickle files OpenCap wrote") from None
    keys = ("imageSize", "intrinsicMat", "distortion", "rotation", "translation")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise OpenKinError(f"OpenCap pickle lacks {[k for k in keys if not isinstance(data, dict) or k not in data]}",
                           path=path, fix=f"an OpenCap calibration holds {', '.join(keys)}")
    h, w = np.asarray(data["imageSize"], dtype=float).reshape(-1)[:2]
    R = np.asarray(data["rotation"], dtype=float) @ _OPENCAP_TO_ZUP.T
    t = np.asarray(data["translation"], dtype=float).reshape(-1) / 1000.0
    dist = np.asarray(data["distortion"], dtype=float).reshape(-1)
    return _camera(path, name, [w, h], data["intrinsicMat"], dist, R, t)


# ---------------------------------------------------------------- EasyMocap YAML
def _easymocap(path: Path, size=None) -> list[Camera]:
    folder = path if path.is_dir() else path.parent
    intri, extri = folder / "intri.yml", folder / "extri.yml"
    for f in (intri, extri):
        if not f.is_file():
            raise OpenKinError(f"EasyMocap calibration needs {f.name} next to the other file", path=f,
                               fix="put intri.yml and extri.yml in the calibration folder")
    fs_in, fs_ex = _filestorage(intri), _filestorage(extri)
    try:
        names = _names(intri, fs_in)
        missing = set(names) - set(_names(extri, fs_ex))
        if missing:
            raise OpenKinError(f"cameras {sorted(missing)} are in intri.yml but not extri.yml", path=extri,
                               fix="use intri.yml and extri.yml from the same calibration")
        return [_easymocap_camera(intri, extri, fs_in, fs_ex, n, size) for n in names]
    finally:
        fs_in.release()
        fs_ex.release()


def _filestorage(path: Path) -> cv2.FileStorage:
    read_text(path, "EasyMocap calibration")  # clear error when missing or binary
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as exc:  # OpenCV 5 wraps its parse error in SystemError
        cause = exc.__cause__ or exc.__context__ or exc
        raise OpenKinError(f"malformed OpenCV YAML: {getattr(cause, 'err', None) or cause}", path=path,
                           fix="give the file EasyMocap wrote (it starts with %YAML:1.0)") from None
    if not fs.isOpened():
        raise OpenKinError("cannot open as OpenCV YAML", path=path, fix="give the file EasyMocap wrote")
    return fs


def _names(path: Path, fs: cv2.FileStorage) -> list[str]:
    node = fs.getNode("names")
    if node.empty() or not node.isSeq():
        raise OpenKinError("no 'names' list of cameras", path=path, fix="EasyMocap files start with names: [...]")
    return [node.at(i).string() for i in range(node.size())]


def _mat(path: Path, fs: cv2.FileStorage, key: str) -> np.ndarray | None:
    node = fs.getNode(key)
    if node.empty():
        return None
    mat = node.mat() if node.isMap() else np.array([node.real()])
    if mat is None or not np.all(np.isfinite(mat)):
        raise OpenKinError(f"{key} is not a finite matrix", path=path, fix="recalibrate or fix that entry")
    return np.asarray(mat, dtype=float)


def _easymocap_camera(intri: Path, extri: Path, fs_in, fs_ex, name: str, size) -> Camera:
    K, dist = _mat(intri, fs_in, f"K_{name}"), _mat(intri, fs_in, f"dist_{name}")
    if K is None or dist is None:
        raise OpenKinError(f"camera {name}: K_{name} or dist_{name} missing", path=intri, fix="use EasyMocap's file")
    rvec, rot, t = _mat(extri, fs_ex, f"R_{name}"), _mat(extri, fs_ex, f"Rot_{name}"), _mat(extri, fs_ex, f"T_{name}")
    if t is None or (rvec is None and rot is None):
        raise OpenKinError(f"camera {name}: R_{name}/Rot_{name} or T_{name} missing", path=extri,
                           fix="use EasyMocap's file")
    R = rot if rot is not None else (rvec if rvec.size == 9 else cv2.Rodrigues(rvec.reshape(3, 1))[0])
    w, h = _mat(intri, fs_in, f"W_{name}"), _mat(intri, fs_in, f"H_{name}")
    if size is not None:
        wh = size
    elif w is not None and h is not None:
        wh = [w.item(), h.item()]
    else:
        wh = [float(2 * K[0, 2]), float(2 * K[1, 2])]
        log.warning("%s: no image size for %s; using twice the principal point %s (pass size=)", intri, name, wh)
    return _camera(intri, name, wh, K, dist.reshape(-1)[:5], R.reshape(3, 3), t.reshape(-1))


# ---------------------------------------------------------------- bioCV text
def _biocv(path: Path) -> list[Camera]:
    files = _files(path, "*.calib", "biocv")
    return [_biocv_camera(f, f"cam_{i:02d}") for i, f in enumerate(files)]


def _biocv_camera(path: Path, name: str) -> Camera:
    """bioCV: width, height, 3 rows of K, 3 (or 4) rows of [R | t mm], distortion k1 k2 p1 p2 last."""
    rows = []
    for number, line in enumerate(read_text(path, "bioCV calibration").splitlines(), start=1):
        if line.strip():
            try:
                rows.append([float(v) for v in line.split()])
            except ValueError:
                raise OpenKinError(f"line {number} is not numbers: {line.strip()!r}", path=path,
                                   fix="a bioCV .calib file holds only numbers") from None
    shapes_ok = (len(rows) >= 9 and len(rows[0]) == 1 and len(rows[1]) == 1
                 and all(len(r) == 3 for r in rows[2:5]) and all(len(r) == 4 for r in rows[5:8])
                 and len(rows[-1]) >= 4)
    if not shapes_ok:
        raise OpenKinError("not a bioCV calibration: expected width, height, 3x3 K, 3x4 [R|t], distortions",
                           path=path, fix="give the .calib file bioCV wrote")
    RT = np.array(rows[5:8])
    return _camera(path, name, [rows[0][0], rows[1][0]], rows[2:5], rows[-1][:4], RT[:, :3], RT[:, 3] / 1000.0)


# ---------------------------------------------------------------- TOML kinds
def _toml(path: Path, units: str = "auto") -> list[Camera]:
    files = _files(path, "*.toml", "toml")
    if len(files) > 1:
        raise OpenKinError(f"several .toml files: {[f.name for f in files]}", path=path,
                           fix="give the calibration file itself, not its folder")
    return read_calibration(files[0], units=units)

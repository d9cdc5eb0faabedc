"""Cameras to plan with: a calibration file, or a layout TOML of virtual cameras.

Layout TOML (world: Z up, metres; angles in degrees)::

    [volume]                        # optional: the capture volume (else --volume / the default)
    box = [-2.0, -2.0, 2.0, 2.0]    # floor rectangle x0, y0, x1, y1 ...
    # floor = [[x, y], ...]         # ... or a floor polygon
    height = 2.0                    # from z = 0 (or z0) up to this height

    [[keep_out]]                    # optional, repeatable: floor boxes where no camera may stand
    box = [2.5, -1.0, 4.0, 1.0]

    [[camera]]
    name = "front"
    preset = "phone_main_16x9"      # see openkin.plan.presets (or hfov_deg + resolution)
    position = [0.0, -3.5, 1.5]
    look_at = [0.0, 0.0, 1.0]       # or yaw (about Z, from +X, counter-clockwise), pitch (up +), roll
    portrait = false                # optional; resolution = [w, h] optional

Calibration files: any TOML ``openkin.formats.calibration`` reads (Pose2Sim, anipose,
Caliscope, FreeMoCap), or a Qualisys ``.qca.txt`` / Vicon ``.xcp`` (converted).
"""
from __future__ import annotations

import logging
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..formats.calib_converters import convert_calibration
from ..formats.calibration import read_calibration
from ..geometry import Camera, rotation_vector
from .presets import get_preset, intrinsics

log = logging.getLogger(__name__)

LAYOUT_FIX = "see the layout format in openkin.plan.layout's docstring ([[camera]] name, preset, position, look_at)"
CAMERA_KEYS = {"name", "preset", "position", "look_at", "yaw", "pitch", "roll", "portrait", "resolution", "hfov_deg"}


@dataclass
class Setup:
    """What a cameras file gives: ``cameras``, and from a layout its optional ``volume``
    table and ``keep_out`` boxes ((K, 4) x0, y0, x1, y1)."""

    cameras: list
    source: Path
    volume: dict | None = None
    keep_out: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    is_layout: bool = False


def look_rotation(forward: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """World→camera rotation (3, 3) of a camera looking along ``forward`` (3,) with the
    image's x axis level (world Z up), turned by ``roll_deg`` about the optical axis."""
    f = np.asarray(forward, float)
    f = f / np.linalg.norm(f)
    right = np.cross(f, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:          # looking straight up or down: pick world X as right
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    r = math.radians(roll_deg)
    right, down = math.cos(r) * right + math.sin(r) * down, -math.sin(r) * right + math.cos(r) * down
    return np.stack([right, down, f])


def forward_from_angles(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Unit optical axis (3,) for yaw (about Z from +X, counter-clockwise) and pitch (up +)."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    return np.array([math.cos(p) * math.cos(y), math.cos(p) * math.sin(y), math.sin(p)])


def make_camera(name: str, position, forward, K: np.ndarray, size: np.ndarray, roll_deg: float = 0.0):
    """A distortion-free ``Camera`` at ``position`` (3,) looking along ``forward`` (3,)."""
    R = look_rotation(forward, roll_deg)
    c = np.asarray(position, float)
    return Camera(name=name, size=size, matrix=K, distortions=np.zeros(4),
                      rotation=rotation_vector(R), translation=-R @ c)


def load_setup(path: str | Path) -> Setup:
    """Cameras (and layout extras) from a calibration or layout file."""
    path = Path(path)
    if not path.is_file():
        raise OpenKinError("cameras file not found", path=path,
                           fix="give a calibration TOML (Calib_*.toml) or a layout TOML of virtual cameras")
    name = path.name.lower()
    if name.endswith(".qca.txt"):
        return Setup(convert_calibration(path, "qualisys"), path)
    if name.endswith(".xcp"):
        return Setup(convert_calibration(path, "vicon"), path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OpenKinError(f"malformed TOML: {exc}", path=path,
                           fix="fix the syntax at that line (TOML: key = value, [section], [[camera]])") from None
    if "camera" in data:
        return _layout(path, data)
    return Setup(read_calibration(path), path)


def _layout(path: Path, data: dict) -> Setup:
    unknown = set(data) - {"camera", "volume", "keep_out"}
    if unknown:
        raise OpenKinError(f"unknown layout section(s): {', '.join(sorted(unknown))}", path=path, fix=LAYOUT_FIX)
    tables = data["camera"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise OpenKinError("'camera' must be a list of [[camera]] tables", path=path, fix=LAYOUT_FIX)
    cameras = [_layout_camera(path, i, t) for i, t in enumerate(tables)]
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise OpenKinError(f"camera names repeat: {names}", path=path, fix="give every [[camera]] its own name")
    volume = data.get("volume")
    if volume is not None and not isinstance(volume, dict):
        raise OpenKinError("'volume' must be a table", path=path, fix="write [volume] with box/floor and height")
    return Setup(cameras, path, volume, _keep_out(path, data.get("keep_out", [])), is_layout=True)


def _vector(path: Path, where: str, key: str, value, n: int) -> np.ndarray:
    try:
        arr = np.array(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise OpenKinError(f"{where}: '{key}' must be {n} numbers, got {value!r}", path=path, fix=LAYOUT_FIX)
    return arr


def _layout_camera(path: Path, index: int, t: dict):
    name = str(t.get("name", f"cam{index + 1:02d}"))
    where = f"camera {name!r}"
    unknown = set(t) - CAMERA_KEYS
    if unknown:
        raise OpenKinError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", path=path,
                           fix=f"valid keys: {', '.join(sorted(CAMERA_KEYS))}")
    if "position" not in t:
        raise OpenKinError(f"{where}: no 'position'", path=path, fix="add position = [x, y, z] (metres, Z up)")
    position = _vector(path, where, "position", t["position"], 3)
    K, size = _lens(path, where, t)
    if "look_at" in t:
        forward = _vector(path, where, "look_at", t["look_at"], 3) - position
        if np.linalg.norm(forward) < 1e-6:
            raise OpenKinError(f"{where}: 'look_at' is the camera position", path=path,
                               fix="aim at a point away from the camera, e.g. the volume centre at 1 m")
    elif "yaw" in t:
        forward = forward_from_angles(_scalar(path, where, t, "yaw"), _scalar(path, where, t, "pitch", 0.0))
    else:
        raise OpenKinError(f"{where}: no orientation", path=path,
                           fix="give look_at = [x, y, z], or yaw (and pitch, roll) in degrees")
    return make_camera(name, position, forward, K, size, _scalar(path, where, t, "roll", 0.0))


def _scalar(path: Path, where: str, t: dict, key: str, default: float | None = None) -> float:
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OpenKinError(f"{where}: '{key}' must be a number (degrees), got {value!r}", path=path, fix=LAYOUT_FIX)
    return float(value)


def _lens(path: Path, where: str, t: dict) -> tuple[np.ndarray, np.ndarray]:
    if "preset" in t:
        preset = get_preset(t["preset"], where=f"{path}: {where}: ")
        hfov, size = preset.hfov_deg, preset.size
    elif "hfov_deg" in t and "resolution" in t:
        hfov, size = _scalar(path, where, t, "hfov_deg"), None
        if not 1.0 < hfov < 170.0:
            raise OpenKinError(f"{where}: hfov_deg {hfov} out of range", path=path, fix="give 1 < hfov_deg < 170")
    else:
        raise OpenKinError(f"{where}: no lens", path=path,
                           fix="add preset = 'phone_main_16x9' (see openkin.plan.presets) or hfov_deg and resolution")
    if "resolution" in t:
        res = _vector(path, where, "resolution", t["resolution"], 2)
        if res.min() < 16:
            raise OpenKinError(f"{where}: resolution {res.tolist()} too small", path=path, fix="give [width, height] px")
        size = (int(res[0]), int(res[1]))
    portrait = t.get("portrait")
    if portrait is not None and not isinstance(portrait, bool):
        raise OpenKinError(f"{where}: 'portrait' must be true or false", path=path, fix=LAYOUT_FIX)
    return intrinsics(hfov, size, portrait)


def _keep_out(path: Path, tables) -> np.ndarray:
    if not isinstance(tables, list):
        raise OpenKinError("'keep_out' must be [[keep_out]] tables", path=path, fix="write [[keep_out]] box = [x0, y0, x1, y1]")
    boxes = [_vector(path, f"keep_out #{i + 1}", "box", t.get("box") if isinstance(t, dict) else t, 4)
             for i, t in enumerate(tables)]
    return np.array(boxes).reshape(-1, 4)

"""Pose2Sim's ``calibration/Image_points.json``: points of known world coordinates marked on
each camera's extrinsics image (``extrinsics_method = 'scene'``).

Layout (Pose2Sim's clicker writes the same)::

    {"extrinsics": [{"cam_name": "cam01.png",
                     "image_points_2d": [x1, y1, x2, y2, ...],      # px on the original image
                     "object_points_3d": [X1, Y1, Z1, ...]}]}       # OpenKin: optional, metres

``null`` marks a point hidden in that image. Without ``object_points_3d`` the points are
``object_coords_3d`` of ``Config.toml``, in order. OpenKin's Blender tool writes both, so the
CLI computes the same calibration from the file alone.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write
from ._io import read_text

FILE_NAME = "Image_points.json"
FORMAT_FIX = ('expected {"extrinsics": [{"cam_name": "<image file name>", "image_points_2d": [x1, y1, ...], '
              '"object_points_3d": [X1, Y1, Z1, ...]}]}')


@dataclass
class MarkedImage:
    """Points marked on one extrinsics image: ``image (N,2)`` px (NaN: hidden), ``world (N,3)`` m
    or None (then ``object_coords_3d`` of the config)."""

    cam_name: str
    image: np.ndarray
    world: np.ndarray | None = field(default=None)


def _floats(values, what: str, path: Path) -> np.ndarray:
    try:
        return np.array([np.nan if v is None else float(v) for v in values], float)
    except (TypeError, ValueError):
        raise OpenKinError(f"{what} must be numbers (or null)", path=path, fix=FORMAT_FIX) from None


def _entry(raw, path: Path) -> MarkedImage:
    if not isinstance(raw, dict) or not isinstance(raw.get("cam_name"), str):
        raise OpenKinError("an extrinsics entry has no 'cam_name'", path=path, fix=FORMAT_FIX)
    name = raw["cam_name"]
    pts = raw.get("image_points_2d", [])
    if not isinstance(pts, list) or len(pts) % 2:
        raise OpenKinError(f"{name}: 'image_points_2d' must be a flat list of x, y pairs", path=path, fix=FORMAT_FIX)
    image = _floats(pts, f"{name}: image_points_2d", path).reshape(-1, 2)
    world = raw.get("object_points_3d")
    if world:
        if not isinstance(world, list) or len(world) % 3:
            raise OpenKinError(f"{name}: 'object_points_3d' must be a flat list of X, Y, Z triples", path=path,
                               fix=FORMAT_FIX)
        world = _floats(world, f"{name}: object_points_3d", path).reshape(-1, 3)
        if len(world) != len(image):
            raise OpenKinError(f"{name}: {len(image)} image points for {len(world)} object points", path=path,
                               fix="give one image point (or null) per object point, in order")
    return MarkedImage(name, image, world if world is not None and len(world) else None)


def read_image_points(path: str | Path) -> dict[str, MarkedImage]:
    """Entries of ``Image_points.json`` by ``cam_name``."""
    path = Path(path)
    text = read_text(path, "image points file", fix="mark the points in Blender (OpenKin › Calibrate › Scene "
                                                    "points), or use extrinsics_method = 'board'")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise OpenKinError(f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}", path=path,
                           fix=FORMAT_FIX) from None
    entries = data.get("extrinsics") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise OpenKinError("no 'extrinsics' list", path=path, fix=FORMAT_FIX)
    out = {}
    for raw in entries:
        entry = _entry(raw, path)
        out[entry.cam_name] = entry
    return out


def _json_list(a: np.ndarray) -> list:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(a, float).ravel()]


def write_image_points(path: str | Path, entries: list[MarkedImage]) -> Path:
    """Write ``entries`` atomically (hidden points as ``null``). Returns ``path``."""
    path = Path(path)
    data = {"extrinsics": [{"cam_name": e.cam_name, "image_points_2d": _json_list(e.image),
                            **({"object_points_3d": _json_list(e.world)} if e.world is not None else {})}
                           for e in entries]}
    with atomic_write(path) as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    return path

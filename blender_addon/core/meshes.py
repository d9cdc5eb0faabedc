"""Bone geometry readers (VTP PolyData XML, STL, OBJ) → triangle arrays, cached as .npz.

OpenSim's Geometry folder holds VTK XML PolyData (``.vtp``) files with ASCII or
uncompressed base64 arrays; we parse them with the standard
library (no VTK in Blender). Polygons are fanned into triangles. A parsed mesh
is cached once per (file, size, mtime) so later imports only load arrays.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from openkin.errors import OpenKinError
from openkin.fileio import atomic_path

log = logging.getLogger(__name__)

_VTK_TYPES = {"Float32": "<f4", "Float64": "<f8", "Int32": "<i4", "Int64": "<i8",
              "UInt32": "<u4", "UInt64": "<u8", "Int8": "<i1", "UInt8": "<u1"}


def read_mesh(path: str | Path, cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) float64 and triangles (T, 3) int32 of a .vtp/.stl/.obj file."""
    path = Path(path)
    cached = _cache_file(path, cache_dir) if cache_dir else None
    if cached is not None and cached.exists():
        with np.load(cached) as z:
            return z["verts"], z["tris"]
    readers = {".vtp": read_vtp, ".stl": read_stl, ".obj": read_obj}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise OpenKinError(f"unsupported mesh format {path.suffix!r}", path=path,
                           fix="give a .vtp, .stl or .obj geometry file")
    verts, tris = reader(path)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, verts=verts, tris=tris)
    return verts, tris


def _cache_file(path: Path, cache_dir: str | Path) -> Path:
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{path.stem}-{key}.npz"


def fan_triangles(connectivity: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """VTK polygons (flat connectivity, end offsets) → (T, 3) triangles by fanning."""
    starts = np.concatenate([[0], offsets[:-1]])
    sizes = offsets - starts
    if np.all(sizes == 3):
        return connectivity.reshape(-1, 3).astype(np.int32)
    tris = []
    for k in np.unique(sizes[sizes >= 3]):
        sel = starts[sizes == k]
        idx = sel[:, None] + np.arange(k)[None]
        poly = connectivity[idx]                                  # (P, k)
        fan = np.stack([np.repeat(poly[:, :1], k - 2, axis=1), poly[:, 1:-1], poly[:, 2:]], axis=2)
        tris.append(fan.reshape(-1, 3))
    return np.concatenate(tris).astype(np.int32) if tris else np.zeros((0, 3), np.int32)


def read_vtp(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """VTK XML PolyData: Points and Polys (ASCII or base64 binary)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise OpenKinError(f"not a readable VTP file ({e})", path=path, fix="re-export the geometry") from None
    compressed = root.get("compressor") is not None
    header = "<u8" if root.get("header_type") == "UInt64" else "<u4"
    piece = root.find("./PolyData/Piece")
    points = piece.find("./Points/DataArray") if piece is not None else None
    polys = piece.find("./Polys") if piece is not None else None
    if points is None or polys is None:
        raise OpenKinError("VTP file has no Points or Polys", path=path, fix="give a surface mesh")
    arrays = {a.get("Name"): a for a in polys.findall("DataArray")}
    verts = _data_array(points, compressed, header, path).reshape(-1, 3).astype(float)
    conn = _data_array(arrays["connectivity"], compressed, header, path).astype(np.int64)
    offs = _data_array(arrays["offsets"], compressed, header, path).astype(np.int64)
    return verts, fan_triangles(conn, offs)


def _data_array(node: ET.Element, compressed: bool, header: str, path: Path) -> np.ndarray:
    dtype = _VTK_TYPES.get(node.get("type", "Float32"))
    fmt = node.get("format", "ascii")
    text = node.text or ""
    if fmt == "ascii":
        return np.array(text.split(), dtype=dtype)
    if fmt != "binary":
        raise OpenKinError(f"VTP arrays in {fmt!r} format are not supported", path=path,
                           fix="save the VTP with ascii or binary (inline) arrays, or give an .stl")
    if compressed:
        raise OpenKinError("compressed binary VTP arrays are not supported", path=path,
                           fix="save the VTP with ascii arrays, or give an .stl next to it")
    raw = base64.b64decode(text.strip())
    return np.frombuffer(raw[np.dtype(header).itemsize:], dtype=dtype)


def read_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Binary or ASCII STL; vertices are not merged (one triple per triangle)."""
    data = path.read_bytes()
    if len(data) >= 84:
        (n,) = struct.unpack("<I", data[80:84])
        if 84 + 50 * n == len(data):
            rec = np.frombuffer(data[84:], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
            verts = rec["v"].reshape(-1, 3).astype(float)
            return verts, np.arange(len(verts), dtype=np.int32).reshape(-1, 3)
    words = data.decode("ascii", errors="replace").split()
    vals = [words[i + 1:i + 4] for i, w in enumerate(words) if w == "vertex"]
    verts = np.array(vals, dtype=float).reshape(-1, 3)
    return verts, np.arange(len(verts), dtype=np.int32).reshape(-1, 3)


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Wavefront OBJ: ``v`` and ``f`` records (polygons fanned, 1-based indices)."""
    verts, faces = [], []
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
        elif parts[0] == "f":
            idx = [int(p.split("/")[0]) for p in parts[1:]]
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
            faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    return np.array(verts, float).reshape(-1, 3), np.array(faces, np.int32).reshape(-1, 3)

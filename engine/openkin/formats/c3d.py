"""C3D marker files through ezc3d (the maintained C++ reader/writer with Python bindings).

Only 3D points are read and written (analog channels are ignored). Points are
returned as a :class:`~openkin.formats.trc.Trc` in metres, in the file's own
axes. Missing points are written the C3D way (residual -1, coordinates 0) and
read back as NaN. Points are written as floats in millimetres by default
(what Visual3D, Mokka and most labs expect; ``units='m'`` also works).
"""
from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_path
from .trc import UNIT_SCALE, Trc

log = logging.getLogger(__name__)


def _ezc3d():
    try:
        import ezc3d
    except ImportError:  # pragma: no cover - ezc3d is a declared dependency
        raise OpenKinError("the ezc3d package is not installed", fix="pip install ezc3d") from None
    return ezc3d


def read_c3d(path: str | Path) -> Trc:
    """Read the 3D points of a C3D file → Trc (metres, NaN where missing)."""
    path = Path(path)
    if not path.is_file():
        raise OpenKinError("C3D file not found", path=path, fix="check the path of the .c3d file")
    _check_structure(path)
    try:
        c3d = _ezc3d().c3d(str(path))
    except (RuntimeError, OSError, ValueError) as exc:
        raise OpenKinError(f"cannot read C3D: {exc}", path=path,
                           fix="give a valid .c3d file (it may be truncated or not a C3D)") from None
    point = c3d["parameters"]["POINT"]
    names = [str(n).strip() for n in point["LABELS"]["value"]]
    if "LABELS2" in point:
        names += [str(n).strip() for n in point["LABELS2"]["value"]]
    xyz = np.asarray(c3d["data"]["points"], dtype=float)[:3].transpose(2, 1, 0)  # (3, M, F) -> (F, M, 3)
    xyz = _complete_frames(path, xyz, int(c3d["header"]["points"]["first_frame"]))
    names = _fit_names(path, names, xyz.shape[1])
    units = _units(path, point)
    rate = float(c3d["header"]["points"]["frame_rate"])
    if not rate > 0:
        raise OpenKinError("C3D point rate is 0 or missing", path=path, fix="set POINT:RATE in the C3D file")
    first = int(c3d["header"]["points"]["first_frame"])
    frames = first + np.arange(xyz.shape[0])
    return Trc(names, rate, xyz * UNIT_SCALE[units], frame_numbers=frames, times=frames / rate)


def _check_structure(path: Path) -> None:
    """Check the header and the parameter chain before ezc3d reads the file: ezc3d loops
    forever on a parameter section longer than the file or a chain that points backwards."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
            start = (head[0] - 1) * 512 if head else 0
            f.seek(start)
            params = f.read(4 + 255 * 512)
    except OSError as exc:
        raise OpenKinError(f"cannot read C3D: {exc.strerror}", path=path, fix="check the file") from None
    problem = _structure_problem(head, params)
    if problem:
        raise OpenKinError(f"not a valid C3D file: {problem}", path=path,
                           fix="give a valid .c3d file (it may be truncated, damaged or not a C3D)")


def _structure_problem(head: bytes, params: bytes) -> str | None:
    """What is wrong with a C3D header (512 bytes) and parameter section, or None."""
    if len(head) < 512:
        return f"{len(head)} bytes, shorter than the 512-byte C3D header"
    if head[1] != 0x50:
        return "the second byte is not 0x50 (the C3D signature)"
    if head[0] < 2 or len(params) < 4:
        return "the parameter section lies outside the file"
    blocks, processor = params[2], params[3]
    if processor not in (84, 85, 86):
        return f"unknown processor type {processor} (84 Intel, 85 DEC, 86 MIPS)"
    end = blocks * 512
    if blocks == 0 or end > len(params):
        return f"the parameter section ({blocks} blocks of 512 bytes) runs past the end of the file"
    return _chain_problem(params, end, ">" if processor == 86 else "<")


def _chain_problem(params: bytes, end: int, endian: str) -> str | None:
    """Walk the parameter records: each must fit its own length and point forward inside the
    section; a parameter's data must fit its record and its group must exist."""
    pos, groups, params_of = 4, set(), []
    while pos + 2 <= end:
        n_chars, group = struct.unpack_from("bb", params, pos)
        if n_chars == 0:
            break
        at = pos + 2 + abs(n_chars)
        if at + 2 > end:
            return "a parameter record runs past the end of the parameter section"
        offset = struct.unpack_from(endian + "h", params, at)[0]
        record_end = at + offset if offset else end
        if offset != 0 and offset < 2:
            return "the parameter records point backwards (the parameter section is damaged)"
        if record_end > end or not _record_fits(params, at + 2, record_end, group < 0):
            return f"parameter record at byte {pos} is damaged (its content overruns it)"
        (groups.add(abs(group)) if group < 0 else params_of.append(group))
        if offset == 0:
            break
        pos = record_end
    if not groups or any(g not in groups for g in params_of):
        return "the parameter section has no groups, or parameters of a group that does not exist"
    return None


def _record_fits(params: bytes, pos: int, end: int, is_group: bool) -> bool:
    """Whether a group's description, or a parameter's type, dimensions, data and description,
    fit between ``pos`` and ``end``."""
    if not is_group:
        if pos + 2 > end:
            return False
        kind, n_dims = struct.unpack_from("bB", params, pos)
        if kind not in (-1, 1, 2, 4) or pos + 2 + n_dims > end:
            return False
        size = abs(kind)
        for d in params[pos + 2:pos + 2 + n_dims]:
            size *= d
        pos += 2 + n_dims + size
    return pos + 1 <= end and pos + 1 + params[pos] <= end


def _layout(head: bytes, size: int) -> tuple[int, int, int] | None:
    """From a C3D file's first bytes and its size → (frames declared in the header, complete
    frames in the file, first frame (1-based, as in the header)), or None when the header is
    not one this check can read."""
    if len(head) < 512 or head[1] != 0x50 or head[0] < 2 or len(head) < (head[0] - 1) * 512 + 4:
        return None
    processor = head[(head[0] - 1) * 512 + 3]  # 84 Intel, 85 DEC (little-endian words), 86 MIPS
    end = ">" if processor == 86 else "<"
    points, analogs, first, last = struct.unpack_from(end + "4H", head, 2)
    data_start = struct.unpack_from(end + "H", head, 16)[0]
    sign_byte = {84: 15, 85: 13, 86: 12}.get(processor)
    if sign_byte is None or data_start < 2 or last < first:
        return None
    width = 4 if head[sign_byte] & 0x80 else 2  # negative scale: floats, else 16-bit integers
    frame_bytes = (4 * points + analogs) * width
    if frame_bytes == 0:
        return None
    complete = max(size - (data_start - 1) * 512, 0) // frame_bytes
    return last - first + 1, complete, first


def _complete_frames(path: Path, xyz: np.ndarray, first: int) -> np.ndarray:
    """``xyz (F, M, 3)`` without frames the file does not hold entirely (a truncated file), with a
    warning naming the frames lost; an error when no frame is complete."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        layout = _layout(head, path.stat().st_size)
    except OSError:
        return xyz
    if layout is None:
        return xyz
    declared, complete, _ = layout
    if complete >= declared:
        return xyz
    if complete == 0:
        raise OpenKinError(f"C3D file holds no complete frame (its header declares {declared}); "
                           "the file looks truncated", path=path,
                           fix="write the file again (rerun the stage that made it) or restore it from a copy")
    log.warning("%s: the header declares %d frames but the file holds only %d complete ones: frames %d-%d "
                "lost (the file looks truncated); continuing with %d frames. Rerun the stage that wrote it "
                "to get them back", path, declared, complete, first + complete, first + declared - 1, complete)
    return xyz[:complete]


def _fit_names(path: Path, names: list[str], n_points: int) -> list[str]:
    if len(names) < n_points:
        log.warning("%s: %d points but %d labels; naming the rest", path, n_points, len(names))
        names = names + [f"point{i + 1}" for i in range(len(names), n_points)]
    return names[:n_points]


def _units(path: Path, point: dict) -> str:
    values = point.get("UNITS", {}).get("value", [])
    unit = (str(values[0]).strip().lower() if len(values) else "") or "mm"
    if unit not in UNIT_SCALE:
        raise OpenKinError(f"unknown C3D point units {unit!r}", path=path,
                           fix=f"POINT:UNITS must be one of {', '.join(UNIT_SCALE)}")
    return unit


def write_c3d(path: str | Path, trc: Trc, units: str = "mm") -> Path:
    """Write ``trc`` (metres) as a C3D file of float points, atomically; returns ``path``."""
    path = Path(path)
    if units not in UNIT_SCALE:
        raise OpenKinError(f"cannot write C3D in units {units!r}", path=path, fix="use 'mm' or 'm'")
    if len(trc.marker_names) > 255:
        raise OpenKinError(f"{len(trc.marker_names)} markers: more than the 255 a C3D label list holds",
                           path=path, fix="write fewer markers, or use TRC")
    frames = trc.frame_numbers
    if len(frames) > 1 and np.any(np.diff(frames) != 1):
        log.warning("%s: frame numbers are not consecutive; C3D stores them as %d.. onwards", path, frames[0])
    c3d = _build(trc, UNIT_SCALE[units], units)
    with atomic_path(path) as tmp:
        c3d.write(str(tmp))
    return path


def _build(trc: Trc, scale: float, units: str):
    ezc3d = _ezc3d()
    n, m = trc.xyz.shape[:2]
    c3d = ezc3d.c3d()
    point = c3d["parameters"]["POINT"]
    point["RATE"]["value"] = [trc.rate]
    point["LABELS"]["value"] = tuple(trc.marker_names)
    point["UNITS"]["value"] = [units]
    missing = np.isnan(trc.xyz).any(axis=-1)  # (F, M)
    xyz = np.where(missing[..., None], 0.0, trc.xyz / scale)
    points = np.ones((4, m, n))
    points[:3] = xyz.transpose(2, 1, 0)
    residuals = np.where(missing.T, -1.0, 0.0)[None]  # (1, M, F)
    c3d["data"]["points"] = points
    c3d["data"]["meta_points"] = {"residuals": residuals, "camera_masks": np.zeros((7, m, n), dtype=bool)}
    c3d["header"]["points"]["first_frame"] = int(trc.frame_numbers[0]) if n else 0
    return c3d

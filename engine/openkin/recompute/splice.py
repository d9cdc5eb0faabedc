"""Replacing some rows of an output file, leaving every other byte as it was.

``openkin recompute`` changes a frame range: the rows of those frames are written by the same
writers as a full run (:func:`openkin.formats.trc.write_trc`, :func:`~openkin.formats.mot.write_mot`,
:func:`~openkin.formats.c3d.write_c3d`, the marker-error CSV), into a temporary file, and those
lines replace the old file's lines with the same key (TRC ``Frame#``, MOT ``time``, CSV ``frame``:
the first cell, compared as text). Lines of other frames are copied from the old file byte for
byte; the header is the old file's (the row count does not change). Written atomically.

C3D (binary): the old file's points are read (float32 → float64 is exact), the new frames put
in, and the file written again by the same writer; a float32 read back and written again is the
same float32, so unchanged frames keep their bytes. NPZ (reprojection errors): arrays spliced
row for row and written again (``numpy.savez`` writes no time stamps).
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write

log = logging.getLogger(__name__)


def _data_start(lines: list[str], kind: str) -> int:
    """Index of the first data line: TRC after 5 header lines, MOT after ``endheader`` and the
    column names, CSV after its one header line."""
    if kind == "trc":
        return 5
    if kind == "csv":
        return 1
    for i, line in enumerate(lines):
        if line.strip() == "endheader":
            return i + 2
    raise OpenKinError("no 'endheader' line: not a .mot file", fix="run the kinematics stage again")


def _key(line: str) -> str:
    return line.split("\t", 1)[0].split(",", 1)[0].strip()


def splice_lines(path: Path, write_new: Callable[[Path], object], kind: str) -> int:
    """Replace the data lines of ``path`` whose key (first cell) appears in the file that
    ``write_new(tmp_path)`` writes; returns the number of lines replaced. A key of the new
    file that ``path`` lacks is an error (the row count must not change)."""
    path = Path(path)
    old = path.read_text(encoding="utf-8").splitlines(keepends=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".splice.") as tmp:
        tmp_file = Path(tmp) / path.name
        write_new(tmp_file)
        new = tmp_file.read_text(encoding="utf-8").splitlines(keepends=True)
    new_rows = {_key(line): line for line in new[_data_start(new, kind):] if line.strip()}
    start = _data_start(old, kind)
    replaced = 0
    for i in range(start, len(old)):
        key = _key(old[i])
        if key in new_rows:
            line = new_rows.pop(key)
            old[i] = line if old[i].endswith("\n") or not line.endswith("\n") else line.rstrip("\n")
            replaced += 1
    if new_rows:
        raise OpenKinError(f"rows {sorted(new_rows)[:3]} are not in the file: its frames changed", path=path,
                           fix="run the stage in full (openkin run PROJECT --stages ...)")
    with atomic_write(path) as f:
        f.write("".join(old))
    return replaced


def splice_trc(path: Path, rows) -> int:
    """Rows of the :class:`~openkin.formats.trc.Trc` ``rows`` (frames of ``path``) into ``path``."""
    from ..formats.trc import write_trc

    return splice_lines(path, lambda tmp: write_trc(tmp, rows), "trc")


def splice_mot(path: Path, rows) -> int:
    """Rows of the :class:`~openkin.formats.mot.Motion` ``rows`` (times of ``path``) into ``path``."""
    from ..formats.mot import write_mot

    return splice_lines(path, lambda tmp: write_mot(tmp, rows), "mot")


def _c3d_layout(data: bytes) -> tuple[int, int, int]:
    """(byte offset of the first frame, bytes per frame, first frame number) of a C3D file
    (header words, 16-bit little-endian as ezc3d writes them: 2 points, 3 analog values per
    frame, 4 first frame + 1, 7-8 scale (negative: floats), 9 first data block)."""
    import struct

    points, analogs, first = struct.unpack_from("<HHH", data, 2)
    scale = struct.unpack_from("<f", data, 12)[0]
    block = struct.unpack_from("<H", data, 16)[0]
    size = 4 if scale < 0 else 2
    return (block - 1) * 512, size * (4 * points + analogs), first - 1  # the header counts from 1


def splice_c3d(path: Path, frame_numbers: np.ndarray, xyz: np.ndarray) -> None:
    """Frames ``frame_numbers (n,)`` (consecutive) of the C3D ``path`` get ``xyz (n,M,3)`` metres.

    The frames are written by :func:`openkin.formats.c3d.write_c3d` into a temporary file, and
    their bytes copied over the same frames' bytes of ``path`` (a frame's bytes depend only on
    its values, the marker count and the format, which both files share): only those frames
    change, without reading or writing the rest of a long take's file."""
    from ..formats.c3d import write_c3d
    from ..formats.trc import Trc

    path = Path(path)
    old = path.read_bytes()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".splice.") as tmp:
        part = Path(tmp) / path.name
        write_c3d(part, Trc([f"m{i}" for i in range(xyz.shape[1])], 1.0, xyz, frame_numbers=frame_numbers))
        new = part.read_bytes()
    (o_start, o_size, o_first), (n_start, n_size, _) = _c3d_layout(old), _c3d_layout(new)
    at = o_start + (int(frame_numbers[0]) - o_first) * o_size
    n = len(frame_numbers)
    if o_size != n_size or at < o_start or at + n * o_size > len(old) or np.any(np.diff(frame_numbers) != 1):
        raise OpenKinError("the frames to replace do not fit the C3D file's layout", path=path,
                           fix="run the stage in full (openkin run PROJECT --stages ...)")
    with atomic_write(path, "wb", encoding=None) as f:
        f.write(old[:at] + new[n_start:n_start + n * n_size] + old[at + n * o_size:])


def splice_reprojection(path: Path, frame_numbers: np.ndarray, error_px: np.ndarray, used: np.ndarray) -> None:
    """Rows ``frame_numbers (n,)`` of a ``_reprojection.npz`` get ``error_px (n,K)``, ``used (C,n,K)``."""
    from ..triangulation.reprojection import read_reprojection, write_reprojection

    data = read_reprojection(path)
    idx = np.searchsorted(data.frame_numbers, frame_numbers)
    if np.any(idx >= len(data.frame_numbers)) or np.any(data.frame_numbers[np.minimum(idx, len(data.frame_numbers) - 1)]
                                                        != frame_numbers):
        raise OpenKinError("frames to replace are not in the reprojection file", path=path,
                           fix="run the triangulation stage in full")
    data.error_px = np.array(data.error_px, copy=True)
    data.used = np.array(data.used, copy=True)
    data.error_px[idx] = error_px
    data.used[:, idx] = used
    write_reprojection(path, data)


def splice_csv(path: Path, header: str, rows: list[str]) -> int:
    """Lines ``rows`` (first cell = key) into the CSV ``path`` (header line ``header``)."""
    def write(tmp: Path) -> None:
        tmp.write_text(header + "".join(rows), encoding="utf-8")

    return splice_lines(path, write, "csv")

"""OpenSim motion files (.mot) and storage files (.sto), read and written.

Both are a text header ending in ``endheader``, a tab-separated column-label line
whose first label is ``time``, then one row per frame. The writer follows what
OpenSim 4.6 itself writes:

- ``.mot`` — the Storage layout of Inverse Kinematics results (``Coordinates``,
  ``version=1``, ``nRows``, ``nColumns``, ``inDegrees``);
- ``.sto`` — the STOFileAdapter layout (``inDegrees``, ``DataType=double``,
  ``version=3``, ``OpenSimVersion``).

The reader accepts either, with or without ``inDegrees`` (missing → radians, as OpenSim).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write
from ._io import check_count, complete_lines, declared_count, fast_table, format_rows, parse_floats, read_text

log = logging.getLogger(__name__)


@dataclass(eq=False)  # arrays inside: compare fields with numpy, not ==
class Motion:
    """A time series of named columns.

    ``names``: (C,) coordinate column labels (no ``time``); ``times``: (F,) seconds;
    ``values``: (F, C); ``in_degrees``: rotational values are degrees (else radians);
    ``name``: the first header line of a .mot (e.g. ``Coordinates``).
    """

    names: list[str]
    times: np.ndarray
    values: np.ndarray
    in_degrees: bool = True
    name: str = "Coordinates"

    def __post_init__(self):
        self.names = [str(n) for n in self.names]
        self.times = np.asarray(self.times, dtype=float).reshape(-1)
        self.values = np.asarray(self.values, dtype=float)
        if self.values.ndim == 1 and len(self.names) == 1:
            self.values = self.values[:, None]
        if self.values.shape != (len(self.times), len(self.names)):
            raise OpenKinError(f"motion values have shape {self.values.shape}, expected "
                               f"({len(self.times)} times, {len(self.names)} names)",
                               fix="give values as (frames, columns), one name per column")

    def column(self, name: str) -> np.ndarray:
        """(F,) values of one column."""
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise OpenKinError(f"column {name!r} is not in this motion",
                               fix=f"use one of: {', '.join(self.names)}") from None

    @property
    def rate(self) -> float:
        """Frames per second from the median time step (NaN with fewer than 2 frames)."""
        dt = np.diff(self.times)
        return float(1.0 / np.median(dt)) if len(dt) and np.median(dt) > 0 else float("nan")


# ---------------------------------------------------------------- reading
def read_mot(path: str | Path) -> Motion:
    """Read a .mot or .sto file."""
    path = Path(path)
    text = read_text(path, "motion file")
    lines = text.splitlines()
    end = next((i for i, line in enumerate(lines) if line.strip().lower() == "endheader"), None)
    if end is None:
        raise OpenKinError("no 'endheader' line: not an OpenSim .mot/.sto file", path=path,
                           fix="give a motion file written by OpenSim (header lines, then 'endheader')")
    header = _header_fields(lines[:end])
    labels_at = next((i for i in range(end + 1, len(lines)) if lines[i].strip()), None)
    if labels_at is None:
        raise OpenKinError("no column labels after 'endheader'", path=path,
                           fix="the line after 'endheader' must be 'time<TAB>name1<TAB>name2...'")
    labels = [c.strip() for c in lines[labels_at].split("\t")]
    while labels and not labels[-1]:
        labels.pop()
    if not labels or labels[0].lower() != "time":
        raise OpenKinError(f"the first column is {labels[0] if labels else ''!r}, not 'time'", path=path,
                           fix="the column-label line must start with 'time'")
    declared = declared_count(header.get("nrows"))
    data, dropped = complete_lines(text, lines[labels_at + 1:], len(labels), declared)
    table = _parse_table(path, lines[:labels_at + 1] + data, labels_at + 1, len(labels))
    check_count(path, "motion file", declared, len(table), dropped, "nRows")
    in_degrees = header.get("indegrees", "no").lower() in ("yes", "true", "1")
    if "indegrees" not in header:
        log.debug("%s: no inDegrees line; taking radians", path)
    name = lines[0].strip() if lines and "=" not in lines[0] and lines[0].strip().lower() != "endheader" else ""
    return Motion(labels[1:], table[:, 0], table[:, 1:], in_degrees=in_degrees, name=name)


def _header_fields(lines: list[str]) -> dict[str, str]:
    fields = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def _parse_table(path: Path, lines: list[str], start: int, width: int) -> np.ndarray:
    table = fast_table(lines[start:], width)
    if table is not None and not np.isnan(table[:, 0]).any():
        return table
    rows, numbers = [], []
    for i in range(start, len(lines)):
        if not lines[i].strip():
            continue
        cells = lines[i].split("\t")
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            raise OpenKinError(f"line {i + 1} has {len(cells)} values but there are {width} column labels",
                               path=path, fix="make the data rows and the column labels agree")
        if not cells[0].strip():
            raise OpenKinError(f"line {i + 1} has no time value", path=path, fix="give every row a time")
        rows.append((cells + [""] * width)[:width])
        numbers.append(i + 1)
    if not rows:
        return np.zeros((0, width))
    try:
        return parse_floats(np.array(rows, dtype=str))
    except ValueError:
        for row, number in zip(rows, numbers):
            bad = [c for c in row if not _is_number(c)]
            if bad:
                raise OpenKinError(f"line {number}: {bad[0]!r} is not a number", path=path,
                                   fix="fix or remove that row") from None
        raise


def _is_number(cell: str) -> bool:
    try:
        float(cell.strip() or "nan")
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- writing
def write_mot(path: str | Path, motion: Motion) -> Path:
    """Write ``motion`` atomically: .sto → STOFileAdapter header, anything else → .mot Storage header."""
    path = Path(path)
    degrees = "yes" if motion.in_degrees else "no"
    if path.suffix.lower() == ".sto":
        header = [f"inDegrees={degrees}", "DataType=double", "version=3", "OpenSimVersion=4.6"]
    else:
        header = [motion.name or "Coordinates", "version=1", f"nRows={len(motion.times)}",
                  f"nColumns={len(motion.names) + 1}", f"inDegrees={degrees}", "",
                  "Units are S.I. units (second, meters, Newtons, ...)",
                  "If the header above contains a line with 'inDegrees', this indicates whether rotational "
                  "values are in degrees (yes) or radians (no).", ""]
    lines = header + ["endheader", "\t".join(["time", *motion.names])]
    table = np.concatenate([motion.times[:, None], motion.values], axis=1)
    body = format_rows(table, "%.10g", nan="NaN")
    text = "\n".join(lines) + "\n" + "".join(row + "\n" for row in body)
    with atomic_write(path) as f:
        f.write(text)
    return path

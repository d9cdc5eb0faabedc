"""TRC marker trajectories (OpenSim / Pose2Sim), read and written.

Layout, as Pose2Sim's triangulation writes it (tab separated)::

    PathFileType	4	(X/Y/Z)	name.trc
    DataRate	CameraRate	NumFrames	NumMarkers	Units	OrigDataRate	OrigDataStartFrame	OrigNumFrames
    30	30	120	26	m	30	0	120
    Frame#	Time	Hip			RHip			...
    		X1	Y1	Z1	X2	Y2	Z2	...
    0	0.0	0.01	0.95	0.02	...

Missing values are empty cells (as Pose2Sim/pandas write NaN, and OpenSim
reads them); ``nan``/``NaN`` cells are read too, and blank lines are skipped
(OpenSim's own writer puts one after the header).

Axes: :class:`Trc` keeps coordinates in the file's own axes, as they are. Pose2Sim
writes TRC files Y-up (OpenSim's convention) after turning its Z-up calibration
world with ``zup2yup``; :func:`zup_to_yup` and :func:`yup_to_zup` do that turn.
Units: :func:`read_trc` always returns metres (``mm`` and ``cm`` files are scaled).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write
from ..geometry.axes import yup_to_zup, zup_to_yup  # noqa: F401  (axis conventions live there)
from ._io import check_count, complete_lines, declared_count, fast_table, format_rows, parse_floats, read_text

log = logging.getLogger(__name__)

UNIT_SCALE = {"m": 1.0, "mm": 1e-3, "cm": 1e-2, "dm": 1e-1}
_HEADER_KEYS = ("DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units",
                "OrigDataRate", "OrigDataStartFrame", "OrigNumFrames")


@dataclass(eq=False)  # arrays inside: compare fields with numpy, not ==
class Trc:
    """Marker trajectories.

    ``marker_names``: (M,); ``rate``: frames per second; ``xyz``: (F, M, 3) metres,
    NaN where missing; ``frame_numbers``: (F,) int (default 0..F-1);
    ``times``: (F,) seconds (default ``frame_numbers / rate``).
    """

    marker_names: list[str]
    rate: float
    xyz: np.ndarray
    frame_numbers: np.ndarray | None = None
    times: np.ndarray | None = field(default=None)

    def __post_init__(self):
        self.marker_names = [str(m) for m in self.marker_names]
        self.xyz = np.asarray(self.xyz, dtype=float)
        self.rate = float(self.rate)
        if self.xyz.ndim != 3 or self.xyz.shape[2] != 3:
            raise OpenKinError(f"TRC xyz must have shape (frames, markers, 3), got {self.xyz.shape}",
                               fix="reshape the coordinates to (F, M, 3)")
        if self.xyz.shape[1] != len(self.marker_names):
            raise OpenKinError(f"TRC has {len(self.marker_names)} marker names but xyz has "
                               f"{self.xyz.shape[1]} markers", fix="give one name per marker")
        if not np.isfinite(self.rate) or self.rate <= 0:
            raise OpenKinError(f"TRC rate must be a positive number, got {self.rate}",
                               fix="set the frame rate in frames per second")
        n = self.xyz.shape[0]
        if self.frame_numbers is None:
            self.frame_numbers = np.arange(n)
        self.frame_numbers = np.asarray(self.frame_numbers).astype(int)
        if self.times is None:
            self.times = self.frame_numbers / self.rate
        self.times = np.asarray(self.times, dtype=float)
        if self.frame_numbers.shape != (n,) or self.times.shape != (n,):
            raise OpenKinError(f"TRC frame_numbers {self.frame_numbers.shape} and times {self.times.shape} "
                               f"must both have shape ({n},)", fix="give one frame number and time per frame")

    @property
    def n_frames(self) -> int:
        return self.xyz.shape[0]

    def marker(self, name: str) -> np.ndarray:
        """(F, 3) trajectory of one marker."""
        try:
            return self.xyz[:, self.marker_names.index(name)]
        except ValueError:
            raise OpenKinError(f"marker {name!r} is not in this TRC",
                               fix=f"use one of: {', '.join(self.marker_names)}") from None


# ---------------------------------------------------------------- reading
def read_trc(path: str | Path) -> Trc:
    """Read a TRC file; coordinates are returned in metres, in the file's axes."""
    path = Path(path)
    text = read_text(path, "TRC file")
    lines = text.splitlines()
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise OpenKinError("not a TRC file: the first line must start with 'PathFileType' and the "
                           "header must have 5 lines", path=path, fix="give a .trc marker file (OpenSim format)")
    header = _parse_header(path, lines[1], lines[2])
    names = [c.strip() for c in lines[3].split("\t")[2:] if c.strip()]
    if not names:
        raise OpenKinError("the 4th line of the TRC header has no marker names", path=path,
                           fix="the 4th line must be 'Frame#<TAB>Time<TAB>name1<TAB><TAB><TAB>name2...'")
    declared = header.get("NumMarkers")
    if declared is not None and declared.isdigit() and int(declared) != len(names):
        log.warning("%s: header declares %s markers but names %d; using the names", path, declared, len(names))
    width = 2 + 3 * len(names)
    n_declared = declared_count(header.get("NumFrames"))
    data_lines, dropped = complete_lines(text, lines[5:], width, n_declared)
    table = _parse_rows(path, data_lines, width, n_declared, dropped)
    last = table[-1, 0] if len(table) and np.isfinite(table[-1, 0]) else None
    check_count(path, "TRC file", n_declared, len(table), dropped, "NumFrames",
                None if last is None else int(last) + 1)
    unit = header.get("Units", "m").strip().lower()
    if unit not in UNIT_SCALE:
        raise OpenKinError(f"unknown TRC units {unit!r}", path=path,
                           fix=f"set Units in the header to one of {', '.join(UNIT_SCALE)}")
    xyz = table[:, 2:].reshape(len(table), len(names), 3) * UNIT_SCALE[unit]
    return Trc(names, _rate(path, header, table[:, 1]), xyz, frame_numbers=_frames(path, table[:, 0]),
               times=table[:, 1])


def _parse_header(path: Path, keys_line: str, values_line: str) -> dict[str, str]:
    keys = [k.strip() for k in keys_line.split("\t")]
    values = [v.strip() for v in values_line.split("\t")]
    if "DataRate" not in keys:
        raise OpenKinError("the 2nd line of the TRC header lacks 'DataRate'", path=path,
                           fix="the 2nd line must be: " + "<TAB>".join(_HEADER_KEYS))
    return dict(zip(keys, values))


def _rate(path: Path, header: dict[str, str], times: np.ndarray) -> float:
    try:
        rate = float(header["DataRate"])
    except (KeyError, ValueError):
        rate = float("nan")
    if not np.isfinite(rate) or rate <= 0:
        dt = np.diff(times[np.isfinite(times)])
        if len(dt) == 0 or np.median(dt) <= 0:
            raise OpenKinError(f"TRC DataRate {header.get('DataRate')!r} is not a positive number", path=path,
                               fix="write the frame rate (e.g. 30) under DataRate in the 3rd line")
        rate = 1.0 / float(np.median(dt))
        log.warning("%s: DataRate missing; %.3f fps taken from the time column", path, rate)
    return rate


def _frames(path: Path, column: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(column)):
        raise OpenKinError("the Frame# column has empty or non-numeric cells", path=path,
                           fix="give every data row a frame number in the first column")
    if np.any(np.abs(column) > 2**31):
        raise OpenKinError("the Frame# column has numbers too large to be frame numbers", path=path,
                           fix="number the frames 0, 1, 2, ... (or from the first frame of the capture)")
    return np.round(column).astype(int)


def _parse_rows(path: Path, data_lines: list[str], width: int, declared: int | None = None,
                dropped: bool = False) -> np.ndarray:
    """Data rows → (F, width) floats; empty cells are NaN. Vectorised string parsing."""
    table = fast_table(data_lines, width)
    if table is not None:
        return table
    rows, numbers, short = [], [], []
    for i, line in enumerate(data_lines, start=6):
        if not line.strip():
            continue
        cells = line.rstrip("\r\n").split("\t")
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            raise OpenKinError(f"line {i} has {len(cells)} values, more than the {width} the marker names "
                               f"allow (Frame#, Time, 3 per marker)", path=path,
                               fix="make the marker-name line and the data columns agree")
        if len(cells) < width:
            short.append(i)
        rows.append((cells + [""] * width)[:width])
        numbers.append(i)
    if not rows:
        if declared or dropped:
            return np.zeros((0, width))  # truncated: check_count says so
        raise OpenKinError("TRC file has no data rows", path=path, fix="write at least one frame")
    if short:
        log.warning("%s: %d row(s) have fewer values than the %d columns (first: line %d); the missing "
                    "values are read as empty (missing markers)", path, len(short), width, short[0])
    try:
        return parse_floats(np.array(rows, dtype=str))
    except ValueError:
        _raise_bad_cell(path, rows, numbers)


def _raise_bad_cell(path: Path, rows: list[list[str]], numbers: list[int]):
    for row, number in zip(rows, numbers):
        for col, cell in enumerate(row):
            try:
                float(cell.strip() or "nan")
            except ValueError:
                raise OpenKinError(f"line {number}, column {col + 1}: {cell!r} is not a number", path=path,
                                   fix="fix or remove that row; missing values are empty cells") from None
    raise OpenKinError("TRC data cannot be parsed", path=path, fix="check the data rows")


# ---------------------------------------------------------------- writing
def write_trc(path: str | Path, trc: Trc, units: str = "m") -> Path:
    """Write ``trc`` atomically in Pose2Sim's TRC layout; ``units`` 'm' (default) or 'mm'."""
    path = Path(path)
    if units not in UNIT_SCALE:
        raise OpenKinError(f"cannot write TRC in units {units!r}", path=path,
                           fix=f"use one of {', '.join(UNIT_SCALE)}")
    text = _header_text(path.name, trc, units) + _data_text(trc, UNIT_SCALE[units])
    with atomic_write(path) as f:
        f.write(text)
    return path


def _header_text(filename: str, trc: Trc, units: str) -> str:
    rate = _num(trc.rate)
    n, m = trc.xyz.shape[:2]
    start = int(trc.frame_numbers[0]) if n else 0
    values = [rate, rate, n, m, units, rate, start, n]
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{filename}",
        "\t".join(_HEADER_KEYS),
        "\t".join(map(str, values)),
        "Frame#\tTime\t" + "\t\t\t".join(trc.marker_names) + "\t\t\t",
        "\t\t" + "\t".join(f"X{i + 1}\tY{i + 1}\tZ{i + 1}" for i in range(m)) + "\t",
    ]
    return "\n".join(lines) + "\n"


def _data_text(trc: Trc, scale: float) -> str:
    n = trc.xyz.shape[0]
    if n == 0:
        return ""
    coords = format_rows(trc.xyz.reshape(n, -1) / scale)
    return "".join(f"{frame}\t{time:.10g}\t{row}\n"
                   for frame, time, row in zip(trc.frame_numbers.tolist(), trc.times.tolist(), coords))


def _num(x: float) -> str:
    """30.0 → '30', 29.97 → '29.97'."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))

"""OpenSim IMU orientation files (``*_orientations.sto``), read and written.

The layout OpenSim's IMUDataReader / OpenSense writes and ``IMUInverseKinematicsTool``
reads (``opensim.TimeSeriesTableQuaternion`` reads it)::

    DataRate=60.000000
    DataType=Quaternion
    version=3
    OpenSimVersion=4.6
    endheader
    time<TAB>pelvis_imu<TAB>torso_imu ...
    0.0<TAB>w,x,y,z<TAB>w,x,y,z ...

one tab-separated column per sensor (named ``<body>_imu`` by OpenSense's convention),
each cell a unit quaternion scalar-first, comma-separated. A cell ``nan,nan,nan,nan``
is a missing sample (the sensor lost, e.g. an EM tracker out of range).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write

log = logging.getLogger(__name__)

OPENSIM_VERSION = "4.6"
NORM_TOLERANCE = 1e-3   # a quaternion farther than this from unit norm (after reading) is rejected ...
MIN_NORM = 1e-6         # ... unless it is merely unnormalised; below this it is no rotation at all


@dataclass(eq=False)
class Orientations:
    """``names``: (S,) sensor column labels; ``times``: (F,) seconds; ``quat``: (F, S, 4) unit
    quaternions (w, x, y, z) of each sensor in OpenSim's ground frame (Y up), NaN = missing;
    ``rate``: Hz (``DataRate``)."""

    names: list[str]
    times: np.ndarray
    quat: np.ndarray
    rate: float

    def __post_init__(self):
        self.names = [str(n) for n in self.names]
        self.times = np.asarray(self.times, float).reshape(-1)
        self.quat = np.asarray(self.quat, float)
        if self.quat.shape != (len(self.times), len(self.names), 4):
            raise OpenKinError(f"orientations have shape {self.quat.shape}, expected "
                               f"({len(self.times)} times, {len(self.names)} sensors, 4)",
                               fix="give quaternions as (frames, sensors, 4), w first")


def _header(lines: list[str], path: Path) -> tuple[dict, int]:
    """Header key=value pairs and the index of the line after ``endheader``."""
    meta = {}
    for i, line in enumerate(lines):
        s = line.strip()
        if s.lower() == "endheader":
            return meta, i + 1
        if "=" in s:
            k, v = s.split("=", 1)
            meta[k.strip()] = v.strip()
    raise OpenKinError("not an OpenSim .sto file: no 'endheader' line", path=path,
                       fix="give an IMU orientation file as OpenSense writes it (header ending in endheader)")


def _cells(row: list[str], n: int, path: Path, line_no: int) -> np.ndarray:
    """(n, 4) quaternions of one row's sensor cells."""
    if len(row) != n + 1:
        raise OpenKinError(f"line {line_no}: {len(row)} columns, the header has {n + 1}", path=path,
                           fix="each row needs the time and one w,x,y,z cell per sensor, tab-separated")
    out = np.empty((n, 4))
    for k, cell in enumerate(row[1:]):
        parts = cell.split(",")
        if len(parts) != 4:
            raise OpenKinError(f"line {line_no}, column {k + 2}: {cell!r} is not a quaternion 'w,x,y,z'", path=path,
                               fix="write each sensor cell as four comma-separated numbers, w first")
        try:
            out[k] = [float(p) for p in parts]
        except ValueError:
            raise OpenKinError(f"line {line_no}, column {k + 2}: {cell!r} is not numeric", path=path,
                               fix="write each sensor cell as four comma-separated numbers, w first") from None
    return out


def read_orientations(path: str | Path) -> Orientations:
    """Read an OpenSim quaternion ``.sto`` → :class:`Orientations` (quaternions normalised)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise OpenKinError(f"cannot read the IMU orientation file: {e.strerror}", path=path,
                           fix="check the path and permissions") from None
    lines = text.splitlines()
    meta, start = _header(lines, path)
    kind = next((v for k, v in meta.items() if k.lower() == "datatype"), None)
    if kind is None or kind.lower() != "quaternion":
        raise OpenKinError(f"not a quaternion orientation file (DataType={kind})", path=path,
                           fix="give the orientations .sto of OpenSense/IMUDataReader (header DataType=Quaternion)")
    body = [ln for ln in lines[start:] if ln.strip()]
    if not body:
        raise OpenKinError("no column labels after endheader", path=path, fix="the line after endheader is "
                           "'time<TAB>sensor_imu<TAB>...'")
    labels = body[0].rstrip("\r\n").split("\t")
    if labels[0].strip().lower() != "time" or len(labels) < 2:
        raise OpenKinError(f"first column is {labels[0]!r}, expected 'time' then sensor columns", path=path,
                           fix="the line after endheader is 'time<TAB>sensor_imu<TAB>...'")
    names = [s.strip() for s in labels[1:]]
    n = len(names)
    rows = [ln.rstrip("\r\n").split("\t") for ln in body[1:]]
    times = np.empty(len(rows))
    quat = np.empty((len(rows), n, 4))
    for f, row in enumerate(rows):
        line_no = start + 2 + f
        try:
            times[f] = float(row[0])
        except ValueError:
            raise OpenKinError(f"line {line_no}: time {row[0]!r} is not a number", path=path,
                               fix="the first cell of each row is the time in seconds") from None
        quat[f] = _cells(row, n, path, line_no)
    rate = _rate(meta, times, path)
    return Orientations(names, times, _normalised(quat, names, path), rate)


def _rate(meta: dict, times: np.ndarray, path: Path) -> float:
    value = next((v for k, v in meta.items() if k.lower() == "datarate"), None)
    try:
        return float(value)
    except (TypeError, ValueError):
        if len(times) > 1:
            return float(1.0 / np.median(np.diff(times)))
        raise OpenKinError("no DataRate in the header and fewer than 2 rows", path=path,
                           fix="add 'DataRate=<Hz>' to the header") from None


def _normalised(quat: np.ndarray, names: list[str], path: Path) -> np.ndarray:
    """Unit quaternions; NaN cells stay NaN; a (near) zero one is an error naming the sensor and row."""
    norm = np.linalg.norm(quat, axis=-1)
    bad = np.isfinite(norm) & (norm < MIN_NORM)
    if bad.any():
        f, s = np.argwhere(bad)[0]
        raise OpenKinError(f"sensor {names[s]!r}: quaternion of zero norm at row {f + 1} "
                           f"({int(bad.sum())} such cells)", path=path,
                           fix="a quaternion must be a rotation (w,x,y,z of unit norm); write 'nan,nan,nan,nan' "
                               "for a missing sample")
    partial = np.isnan(quat).any(-1) & ~np.isnan(quat).all(-1)
    out = quat / norm[..., None]
    out[partial] = np.nan
    return out


def write_orientations(path: str | Path, data: Orientations, precision: int = 8) -> None:
    """Write ``data`` in OpenSense's layout (atomically)."""
    fmt = f"{{:.{precision}f}}"
    with atomic_write(Path(path)) as f:
        f.write(f"DataRate={data.rate:.6f}\nDataType=Quaternion\nversion=3\nOpenSimVersion={OPENSIM_VERSION}\n"
                "endheader\n")
        f.write("time\t" + "\t".join(data.names) + "\n")
        for t, row in zip(data.times, data.quat):
            cells = [",".join("nan" if not np.isfinite(v) else fmt.format(v) for v in q) for q in row]
            f.write(f"{t:.8f}\t" + "\t".join(cells) + "\n")

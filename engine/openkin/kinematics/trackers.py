"""6-DoF trackers (IMU, electromagnetic or VR sensors on body segments) as IK targets.

A project's ``trackers/`` folder holds OpenSim IMU orientation files (``*.sto``,
:mod:`openkin.formats.imu`, as OpenSense writes them). ``[kinematics] trackers`` maps
sensor columns to model bodies, ``tracker_weights`` optionally weights them::

    [kinematics]
    trackers = {pelvis_imu = "pelvis", torso_imu = "torso", humerus_r_imu = "humerus_r"}
    tracker_weights = {pelvis_imu = 2.0}     # default DEFAULT_WEIGHT each

What a sample means: the orientation of the BODY (its OpenSim frame) in OpenSim's
ground frame (Y up, the TRC's axes), i.e. the sensor-to-body mounting rotation is
already removed (OpenSense's ``IMUPlacer`` calibration does that for real IMUs; the
synthetic trackers of ``openkin synth --trackers`` are written so). The solver
(:mod:`openkin.kinematics.solver`) adds ``w |log(R_sensor^T R_body(q))|^2`` per sensor
to every frame's cost, in the same solve as the markers. A tracker that also gives
its position (EM or VR trackers) may have it in a TRC of the same folder (a column named like
the sensor: the body origin's position in ground, metres); the solver then adds
``w |p_body(q) - p|^2`` (m). Samples are matched to the
markers' frames by time (the nearest sample within half a sample period; others are
missing). Frames with no markers are solved from the trackers alone; the pelvis
translation is then unobserved and stays at its start value (the model default, or
the solution interpolated from neighbouring frames that have markers).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..formats.imu import Orientations, read_orientations

log = logging.getLogger(__name__)

DEFAULT_WEIGHT = 1.0  # cost per rad^2 of a tracker's rotation error; markers' weighted mean squared error is in m^2
FOLDER = "trackers"


@dataclass(eq=False)
class TrackerTargets:
    """Targets of S sensors on the IK job's frames. ``sensors``/``bodies``: (S,); ``R``: (F, S, 3, 3)
    body rotations in ground (NaN: missing); ``weights``: (S,); ``p``: (F, S, 3) body origins or None."""

    sensors: list[str]
    bodies: list[str]
    R: np.ndarray
    weights: np.ndarray
    p: np.ndarray | None = None

    def frames(self, sl) -> "TrackerTargets":
        """The targets of some frames (a slice or an index array)."""
        return TrackerTargets(self.sensors, self.bodies, self.R[sl], self.weights, None if self.p is None else self.p[sl])


def check_mapping(mapping: dict[str, str], body_names: list[str], where: Path | str | None = None) -> None:
    """Every declared sensor's body must be a body of the model."""
    unknown = {s: b for s, b in mapping.items() if b not in body_names}
    if unknown:
        s, b = next(iter(unknown.items()))
        import difflib
        close = difflib.get_close_matches(b, body_names, n=1)
        raise OpenKinError(f"[kinematics] trackers: sensor {s!r} is on body {b!r}, which the model does not have",
                           path=where, fix=(f"did you mean {close[0]!r}? " if close else "")
                           + f"bodies of the model: {', '.join(body_names)}")


def read_folder(folder: Path, mapping: dict[str, str]) -> dict[str, tuple[Path, Orientations, int]]:
    """Declared sensor → (file, orientations, column) from every ``*.sto`` of ``folder``.
    A file none of whose columns is a declared sensor, or a declared sensor found in no file,
    is an error."""
    files = sorted(folder.glob("*.sto")) if folder.is_dir() else []
    if not files:
        raise OpenKinError("[kinematics] trackers are declared but there is no tracker file", path=folder,
                           fix="put the IMU orientation files (*.sto, OpenSense's layout) in the project's "
                               "trackers/ folder, or remove [kinematics] trackers")
    found: dict[str, tuple[Path, Orientations, int]] = {}
    for path in files:
        data = read_orientations(path)
        cols = [k for k, n in enumerate(data.names) if n in mapping]
        if not cols:
            raise OpenKinError(f"no column of this tracker file is a declared sensor (columns: "
                               f"{', '.join(data.names)}; declared: {', '.join(mapping)})", path=path,
                               fix="declare its sensors in [kinematics] trackers = {<column> = \"<body>\", ...}, "
                                   "or move the file out of trackers/")
        for k in cols:
            if data.names[k] in found:
                raise OpenKinError(f"sensor {data.names[k]!r} is in two tracker files "
                                   f"({found[data.names[k]][0].name} and {path.name})", path=path,
                                   fix="keep one file per sensor column")
            found[data.names[k]] = (path, data, k)
    missing = [s for s in mapping if s not in found]
    if missing:
        raise OpenKinError(f"declared sensors {', '.join(missing)} are in no tracker file "
                           f"({', '.join(f.name for f in files)})", path=folder,
                           fix="fix the column names in [kinematics] trackers, or remove those sensors")
    return found


def sample_at(data: Orientations, column: int, times: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations of one sensor at ``times`` (F,): the nearest sample within half a period, else NaN."""
    from scipy.spatial.transform import Rotation

    t = data.times
    out = np.full((len(times), 3, 3), np.nan)
    if not len(t):
        return out
    order = np.argsort(t)
    t = t[order]
    i = np.clip(np.searchsorted(t, times), 1, len(t) - 1) if len(t) > 1 else np.zeros(len(times), int)
    if len(t) > 1:
        i = np.where(np.abs(t[i - 1] - times) <= np.abs(t[i] - times), i - 1, i)
    near = np.abs(t[i] - times) <= 0.5 / data.rate + 1e-9
    q = data.quat[order][i, column]
    ok = near & np.isfinite(q).all(-1)
    if ok.any():
        out[ok] = Rotation.from_quat(q[ok], scalar_first=True).as_matrix()
    return out


def load_targets(folder: Path, mapping: dict[str, str], weights: dict[str, float], times: np.ndarray,
                 body_names: list[str], config_path: Path | str | None = None) -> TrackerTargets:
    """The declared trackers' targets on the frames ``times`` (F,)."""
    check_mapping(mapping, body_names, config_path)
    unknown = [s for s in weights if s not in mapping]
    if unknown:
        raise OpenKinError(f"[kinematics] tracker_weights names sensors that are not declared: {', '.join(unknown)}",
                           path=config_path, fix="declare them in [kinematics] trackers, or remove their weights")
    bad = {s: w for s, w in weights.items() if not (w >= 0 and np.isfinite(w))}
    if bad:
        raise OpenKinError(f"[kinematics] tracker_weights: {bad} must be >= 0", path=config_path,
                           fix="give each weight as a number >= 0")
    found = read_folder(Path(folder), mapping)
    sensors = list(mapping)
    R = np.stack([sample_at(found[s][1], found[s][2], times) for s in sensors], 1)
    seen = np.isfinite(R).all((-1, -2)).mean(0)
    for s, frac in zip(sensors, seen):
        log.info("tracker %s (%s, %s): %.0f%% of the frames", s, mapping[s], found[s][0].name, 100 * frac)
        if frac == 0:
            raise OpenKinError(f"tracker {s!r} has no sample at the times of the markers "
                               f"({times[0]:.3f}-{times[-1]:.3f} s)", path=found[s][0],
                               fix="the tracker file's time column must cover the trial's times (seconds)")
    return TrackerTargets(sensors, [mapping[s] for s in sensors], R,
                          np.array([float(weights.get(s, DEFAULT_WEIGHT)) for s in sensors]),
                          read_positions(Path(folder), sensors, times))


def read_positions(folder: Path, sensors: list[str], times: np.ndarray) -> np.ndarray | None:
    """(F, S, 3) positions of the bodies' origins from ``folder/*.trc`` (metres, OpenSim ground, a column
    per sensor named like it), NaN where a sensor has none; None when no TRC names a sensor."""
    from ..formats.trc import read_trc

    out = np.full((len(times), len(sensors), 3), np.nan)
    found = False
    for path in sorted(folder.glob("*.trc")):
        trc = read_trc(path)
        t = np.asarray(trc.times, float)
        for s, name in enumerate(sensors):
            if name not in trc.marker_names or not len(t):
                continue
            found = True
            i = np.clip(np.searchsorted(t, times), 1, len(t) - 1) if len(t) > 1 else np.zeros(len(times), int)
            if len(t) > 1:
                i = np.where(np.abs(t[i - 1] - times) <= np.abs(t[i] - times), i - 1, i)
            near = np.abs(t[i] - times) <= 0.5 / trc.rate + 1e-9
            out[near, s] = trc.xyz[i[near], trc.marker_names.index(name)]
            log.info("tracker %s: positions from %s", name, path.name)
    return out if found else None

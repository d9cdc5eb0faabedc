"""``openkin evaluate RESULT TRUTH``: compare results with ground truth, EM-POSE style.

For each trial (and each person): MPJPE and its std, PA-MPJPE and its std (mm),
MPJAE and its std (degrees), and the percentage of truth frames reconstructed,
then an overall-average row; also as JSON or CSV. Metric definitions: see
:mod:`openkin.metrics`.

What is compared:

- RESULT: a ``.trc``/``.c3d`` (keypoints) or ``.mot``/``.sto`` (angles) file, or a
  project folder (``pose-3d/*.trc``, filtered ones preferred, augmented ``LSTM``
  ones skipped; ``kinematics/*.mot``), or a session folder of such trials.
- TRUTH: a file, a scene made by ``openkin synth`` (or its ``truth/`` folder), or a
  folder of scenes whose subfolder names match the result's trials.
- Keypoints are matched by name (others are ignored), frames by time (a frame
  matches the truth frame within a quarter frame of it; ``time_shift`` moves the
  result in frames, ``'auto'`` searches the best integer shift). Several people
  are paired with the truth's people by least MPJPE (Hungarian assignment).
- Axes: TRC files are compared as they are (Y-up, as Pose2Sim writes them); C3D
  files may be Z-up, so by default both readings are tried and the closer kept.
- A truth frame counts as reconstructed when the result has that frame with at
  least one compared keypoint (or coordinate) present.
- 6-DoF trackers: for a project whose IK fused trackers (``[kinematics] trackers``), the table
  has the EM-POSE rows fused / cameras only / trackers only (:func:`tracker_variants`).
- Multi-person: ``id_switches`` counts, over all result tracks of a trial, how often
  a track changes the truth person it is nearest to (JSON/CSV only).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import metrics
from .errors import OpenKinError
from .fileio import atomic_write

log = logging.getLogger(__name__)

# Named coordinate sets for MPJAE (``--coordinates main``), OpenSim names of Pose2Sim's models.
COORDINATE_GROUPS = {
    "main": ("pelvis_tilt", "pelvis_list", "pelvis_rotation",
             "hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r", "ankle_angle_r",
             "hip_flexion_l", "hip_adduction_l", "hip_rotation_l", "knee_angle_l", "ankle_angle_l",
             "L5_S1_Flex_Ext", "L5_S1_Lat_Bending", "L5_S1_axial_rotation",
             "arm_flex_r", "arm_add_r", "arm_rot_r", "elbow_flex_r",
             "arm_flex_l", "arm_add_l", "arm_rot_l", "elbow_flex_l"),
    "lower": ("hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r", "ankle_angle_r",
              "hip_flexion_l", "hip_adduction_l", "hip_rotation_l", "knee_angle_l", "ankle_angle_l"),
    "flexion": ("hip_flexion_r", "knee_angle_r", "ankle_angle_r", "hip_flexion_l", "knee_angle_l", "ankle_angle_l"),
}
MARKER_SUFFIXES = (".trc", ".c3d")
ANGLE_SUFFIXES = (".mot", ".sto")
TIME_TOLERANCE = 0.25  # frames


@dataclass
class TrialResult:
    """One row of the table. Errors in mm and degrees; NaN where not evaluated."""

    trial: str
    person: int = 1
    mpjpe: float = math.nan
    mpjpe_std: float = math.nan
    pa_mpjpe: float = math.nan
    pa_mpjpe_std: float = math.nan
    mpjae: float = math.nan
    mpjae_std: float = math.nan
    frames_pct: float = math.nan
    truth_frames: int = 0
    matched_frames: int = 0
    markers: list[str] = field(default_factory=list)
    coordinates: list[str] = field(default_factory=list)
    per_marker_mm: dict[str, float] = field(default_factory=dict)
    per_coordinate_deg: dict[str, dict[str, float]] = field(default_factory=dict)
    time_shift_frames: float = 0.0
    id_switches: int = 0             # multi-person: identity switches of all result tracks in the trial
    axes: str = "as is"
    result_files: list[str] = field(default_factory=list)
    truth_files: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- reading
def _read_markers(path: Path):
    from .formats.c3d import read_c3d
    from .formats.trc import read_trc

    return read_c3d(path) if path.suffix.lower() == ".c3d" else read_trc(path)


def _read_angles(path: Path):
    from .formats.mot import read_mot

    return read_mot(path)


def _is_translation(name: str) -> bool:
    return name.endswith(("_tx", "_ty", "_tz"))


def _angles_degrees(motion) -> tuple[list[str], np.ndarray]:
    """Rotational coordinates of a Motion in degrees. → names (C,), values (F, C)."""
    keep = [i for i, n in enumerate(motion.names) if not _is_translation(n)]
    values = motion.values[:, keep]
    if not motion.in_degrees:
        values = np.degrees(values)
    return [motion.names[i] for i in keep], values


# ----------------------------------------------------------------------------- time matching
def match_frames(result_times: np.ndarray, truth_times: np.ndarray, rate: float,
                 shift_frames: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of (result index, truth index) whose times agree within a quarter frame,
    after moving the result by ``shift_frames``. (Fr,), (Ft,) → (M,), (M,)."""
    t = np.asarray(result_times, float) + shift_frames / rate
    truth_times = np.asarray(truth_times, float)
    order = np.argsort(truth_times)
    sorted_t = truth_times[order]
    pos = np.clip(np.searchsorted(sorted_t, t), 1, max(len(sorted_t) - 1, 1))
    left = sorted_t[pos - 1]
    right = sorted_t[np.minimum(pos, len(sorted_t) - 1)]
    nearest = np.where(np.abs(t - left) <= np.abs(t - right), pos - 1, np.minimum(pos, len(sorted_t) - 1))
    ok = np.abs(truth_times[order[nearest]] - t) <= TIME_TOLERANCE / rate
    return np.flatnonzero(ok), order[nearest[ok]]


def best_shift(result_xyz, result_times, truth_xyz, truth_times, rate, max_shift: int = 60) -> int:
    """Integer frame shift of the result minimising the median MPJPE (searched in ±max_shift)."""
    best, best_err = 0, np.inf
    for s in range(-max_shift, max_shift + 1):
        ri, ti = match_frames(result_times, truth_times, rate, s)
        if len(ri) < 10:
            continue
        err = np.nanmedian(metrics.mpjpe(result_xyz[ri], truth_xyz[ti]))
        if err < best_err:
            best, best_err = s, err
    return best


# ----------------------------------------------------------------------------- markers
def _common_markers(result, truth, names: list[str] | None, paths) -> list[str]:
    common = [n for n in truth.marker_names if n in result.marker_names]
    if names:
        missing = [n for n in names if n not in common]
        if missing:
            raise OpenKinError(f"markers {', '.join(missing)} are not in both files", path=paths[0],
                               fix=f"choose among: {', '.join(common)}")
        common = [n for n in common if n in names]
    if not common:
        raise OpenKinError(f"no marker name in common with the truth {paths[1]} "
                           f"(result has {', '.join(result.marker_names[:8])}...)", path=paths[0],
                           fix="compare files of the same keypoint set (e.g. HALPE_26 names)")
    return common


def _orient(result_xyz: np.ndarray, truth_xyz: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Result points in the truth's axes. ``axes``: 'as is', 'zup' (convert Z-up → Y-up) or 'auto'."""
    from .formats.trc import zup_to_yup

    if axes == "zup":
        return zup_to_yup(result_xyz), "zup"
    if axes == "auto":
        a = np.nanmedian(metrics.mpjpe(result_xyz, truth_xyz))
        b = np.nanmedian(metrics.mpjpe(zup_to_yup(result_xyz), truth_xyz))
        if b < a:
            return zup_to_yup(result_xyz), "zup"
    return result_xyz, "as is"


def compare_markers(result, truth, *, markers: list[str] | None = None, time_shift: float | str = 0.0,
                    axes: str = "as is", paths=("result", "truth")) -> dict:
    """MPJPE, PA-MPJPE (mm), % truth frames reconstructed, per-marker MPJPE of two Trc."""
    names = _common_markers(result, truth, markers, paths)
    r = result.xyz[:, [result.marker_names.index(n) for n in names]]
    g = truth.xyz[:, [truth.marker_names.index(n) for n in names]]
    rate = truth.rate
    if time_shift == "auto":
        time_shift = best_shift(r, result.times, g, truth.times, rate)
    ri, ti = match_frames(result.times, truth.times, rate, float(time_shift))
    if len(ri) == 0:
        raise OpenKinError(f"no frame of the result matches a truth frame in time (result {result.times[0]:.3f}-"
                           f"{result.times[-1]:.3f} s, truth {truth.times[0]:.3f}-{truth.times[-1]:.3f} s)",
                           path=paths[0], fix="check the frame rate and time column, or use --time-shift auto")
    r, g_m = r[ri], g[ti]
    r, used_axes = _orient(r, g_m, axes)
    per_frame = metrics.mpjpe(r, g_m) * 1000
    pa = metrics.pa_mpjpe(r, g_m) * 1000
    errors = metrics.joint_errors(r, g_m) * 1000
    truth_valid = np.isfinite(g).all(-1).any(-1)
    done = np.isfinite(per_frame) & truth_valid[ti]
    out = {"mpjpe": metrics.mean_std(per_frame), "pa_mpjpe": metrics.mean_std(pa),
           "frames_pct": 100.0 * done.sum() / max(truth_valid.sum(), 1),
           "truth_frames": int(truth_valid.sum()), "matched_frames": int(done.sum()), "markers": names,
           "per_marker_mm": {n: float(np.nanmean(errors[:, k])) if np.isfinite(errors[:, k]).any() else math.nan
                             for k, n in enumerate(names)},
           "time_shift_frames": float(time_shift), "axes": used_axes}
    return out


def track_labels(results: list, truths: list, shift_frames: float = 0.0, max_error: float = 0.5) -> np.ndarray:
    """Which truth person each result track is closest to, frame by frame.

    For every truth frame, result track ``i`` gets the truth person whose keypoints
    are nearest on average (common names), or -1 if none is within ``max_error``
    metres or the track is absent. → (R, Ft) int.
    """
    ref = truths[0]
    labels = np.full((len(results), len(ref.times)), -1)
    for i, res in enumerate(results):
        dist = np.full((len(truths), len(ref.times)), np.nan)
        for j, tru in enumerate(truths):
            names = [n for n in tru.marker_names if n in res.marker_names]
            if not names:
                continue
            ri, ti = match_frames(res.times, tru.times, tru.rate, shift_frames)
            r = res.xyz[ri][:, [res.marker_names.index(n) for n in names]]
            t = tru.xyz[ti][:, [tru.marker_names.index(n) for n in names]]
            dist[j, ti] = metrics.mpjpe(r, t)
        ok = np.isfinite(dist).any(axis=0)
        best = np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=0)
        close = ok & (np.take_along_axis(np.where(np.isfinite(dist), dist, np.inf), best[None], 0)[0] <= max_error)
        labels[i, close] = best[close]
    return labels


def identity_switches(results: list, truths: list, shift_frames: float = 0.0) -> np.ndarray:
    """Times each result track changes the truth person it follows (absent frames
    skipped). → (R,) int."""
    labels = track_labels(results, truths, shift_frames)
    out = np.zeros(len(results), dtype=int)
    for i, lab in enumerate(labels):
        seen = lab[lab >= 0]
        out[i] = int(np.count_nonzero(np.diff(seen)))
    return out


# ----------------------------------------------------------------------------- angles
def expand_coordinates(names: list[str] | None) -> list[str] | None:
    """Coordinate names with group names (:data:`COORDINATE_GROUPS`) expanded."""
    if not names:
        return None
    out: list[str] = []
    for n in names:
        out += list(COORDINATE_GROUPS.get(n, (n,)))
    return out


def compare_angles(result, truth, *, coordinates: list[str] | None = None, time_shift: float = 0.0,
                   paths=("result", "truth")) -> dict:
    """MPJAE (degrees), per-coordinate mean absolute error and RMSE of two Motion."""
    rn, rv = _angles_degrees(result)
    tn, tv = _angles_degrees(truth)
    explicit = [n for n in coordinates or [] if n not in COORDINATE_GROUPS]
    missing = [n for n in explicit if n not in tn or n not in rn]
    if missing:
        raise OpenKinError(f"coordinates {', '.join(missing)} are not in both motions", path=paths[0],
                           fix=f"choose among: {', '.join(n for n in tn if n in rn)}")
    coordinates = expand_coordinates(coordinates)
    names = [n for n in tn if n in rn and (not coordinates or n in coordinates)]
    if not names:
        raise OpenKinError(f"no rotational coordinate in common with the truth {paths[1]}", path=paths[0],
                           fix="compare motions of the same OpenSim model (coordinate names)")
    rate = truth.rate if np.isfinite(truth.rate) else 1.0
    ri, ti = match_frames(result.times, truth.times, rate, float(time_shift))
    if len(ri) == 0:
        raise OpenKinError("no frame of the result matches a truth frame in time", path=paths[0],
                           fix="check the time columns of both motions")
    r = rv[ri][:, [rn.index(n) for n in names]]
    g = tv[ti][:, [tn.index(n) for n in names]]
    err = metrics.angle_errors(r, g)
    per_frame = metrics.frame_means(err)
    truth_valid = np.isfinite(tv).any(axis=1)
    return {"mpjae": metrics.mean_std(per_frame), "coordinates": names,
            "frames_pct": 100.0 * np.isfinite(per_frame).sum() / max(truth_valid.sum(), 1),
            "truth_frames": int(truth_valid.sum()), "matched_frames": int(np.isfinite(per_frame).sum()),
            "per_coordinate_deg": {n: {"mae": float(np.nanmean(err[:, c])),
                                       "rmse": float(np.sqrt(np.nanmean(err[:, c] ** 2)))}
                                   for c, n in enumerate(names)}}


# ----------------------------------------------------------------------------- finding files
@dataclass
class Sources:
    """The files of one trial: marker files and angle files, one per person."""

    markers: list[Path] = field(default_factory=list)
    angles: list[Path] = field(default_factory=list)


def _natural(path: Path) -> list:
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _by_suffix(path: Path) -> Sources:
    suffix = path.suffix.lower()
    if suffix in MARKER_SUFFIXES:
        return Sources(markers=[path])
    if suffix in ANGLE_SUFFIXES:
        return Sources(angles=[path])
    raise OpenKinError(f"cannot evaluate a {suffix or 'suffix-less'} file", path=path,
                       fix="give a .trc, .c3d, .mot or .sto file, or a project folder")


def truth_sources(path: Path) -> Sources:
    """Truth files of a scene folder, its ``truth/`` folder, or a single file."""
    import tomllib

    if path.is_file():
        return _by_suffix(path)
    folder = path / "truth" if (path / "truth").is_dir() else path
    scene = folder / "scene.toml"
    if scene.is_file():
        try:
            people = tomllib.loads(scene.read_text(encoding="utf-8")).get("people", [])
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
            raise OpenKinError(f"cannot read the scene description: {e}", path=scene,
                               fix="rebuild the scene with `openkin synth`") from None
        src = Sources([folder / p["trc"] for p in people if "trc" in p],
                      [folder / p["mot"] for p in people if "mot" in p])
        src.markers = [p for p in src.markers if p.is_file()]
        src.angles = [p for p in src.angles if p.is_file()]
    else:
        src = Sources(sorted(folder.glob("keypoints*.trc"), key=_natural),
                      sorted(folder.glob("angles*.mot"), key=_natural))
    if not src.markers and not src.angles:
        raise OpenKinError("no truth found (keypoints*.trc / angles*.mot / truth/scene.toml)", path=path,
                           fix="give a scene made by `openkin synth`, its truth/ folder, or a .trc/.mot file")
    return src


def result_sources(path: Path) -> Sources:
    """Result files of a project folder (``pose-3d``, ``kinematics``), a plain folder, or a file."""
    if path.is_file():
        return _by_suffix(path)
    if not path.is_dir():
        raise OpenKinError("result path does not exist", path=path, fix="give a result file or a project folder")
    pose3d = path / "pose-3d" if (path / "pose-3d").is_dir() else path
    files = [p for p in pose3d.glob("*.trc") if "lstm" not in p.name.lower()]
    if not files:
        files = [p for p in pose3d.glob("*.c3d") if "lstm" not in p.name.lower()]
    filtered = [p for p in files if "filt" in p.name.lower()]
    markers = sorted(filtered or files, key=_natural)
    kin = path / "kinematics" if (path / "kinematics").is_dir() else path
    angles = sorted([p for p in kin.glob("*.mot")], key=_natural)
    return Sources(markers, angles)


def _is_scene(path: Path) -> bool:
    return path.is_file() or (path / "truth").is_dir() or (path / "scene.toml").is_file() \
        or any(path.glob("keypoints*.trc")) or any(path.glob("angles*.mot"))


def find_trials(result: Path, truth: Path) -> list[tuple[str, Path | None, Path]]:
    """(trial name, result path or None if missing, truth path) for one trial or a session of trials."""
    if not truth.exists():
        raise OpenKinError("truth path does not exist", path=truth, fix="give a scene folder or a truth file")
    if _is_scene(truth):
        name = truth.stem if truth.is_file() else (truth.parent.name if truth.name == "truth" else truth.name)
        return [(name, result, truth)]
    scenes = sorted((p for p in truth.iterdir() if p.is_dir() and _is_scene(p)), key=_natural)
    if not scenes:
        raise OpenKinError("no scene or truth files in this folder", path=truth,
                           fix="give a scene made by `openkin synth`, or a folder of such scenes")
    return [(s.name, result / s.name if (result / s.name).exists() else None, s) for s in scenes]


# ----------------------------------------------------------------------------- evaluation
def _pair(n_results: int, n_truths: int, cost_fn) -> list[tuple[int, int]]:
    """Result ↔ truth person pairs of least total cost (Hungarian); pairs that cannot be
    compared never pair; if none can, the first reason is raised."""
    from scipy.optimize import linear_sum_assignment

    cost = np.full((n_results, n_truths), np.inf)
    first_error = None
    for i in range(n_results):
        for j in range(n_truths):
            try:
                cost[i, j] = cost_fn(i, j)
            except OpenKinError as e:
                first_error = first_error or e
    if first_error is not None and not np.isfinite(cost).any():
        raise first_error  # nothing comparable at all: say why
    cost = np.where(np.isfinite(cost), cost, 1e12)
    rows, cols = linear_sum_assignment(cost)
    return [(int(i), int(j)) for i, j in zip(rows, cols) if cost[i, j] < 1e12]


def _fill_markers(row: TrialResult, out: dict) -> None:
    row.mpjpe, row.mpjpe_std = out["mpjpe"]
    row.pa_mpjpe, row.pa_mpjpe_std = out["pa_mpjpe"]
    row.frames_pct, row.truth_frames, row.matched_frames = out["frames_pct"], out["truth_frames"], out["matched_frames"]
    row.markers, row.per_marker_mm = out["markers"], out["per_marker_mm"]
    row.time_shift_frames, row.axes = out["time_shift_frames"], out["axes"]


def _fill_angles(row: TrialResult, out: dict) -> None:
    row.mpjae, row.mpjae_std = out["mpjae"]
    row.coordinates, row.per_coordinate_deg = out["coordinates"], out["per_coordinate_deg"]
    if not row.markers:
        row.frames_pct, row.truth_frames, row.matched_frames = (out["frames_pct"], out["truth_frames"],
                                                                out["matched_frames"])


def evaluate_trial(name: str, result: Path | None, truth: Path, *, markers: list[str] | None = None,
                   coordinates: list[str] | None = None, time_shift: float | str = 0.0,
                   axes: str | None = None) -> list[TrialResult]:
    """Rows (one per truth person) comparing ``result`` with ``truth``."""
    tsrc = truth_sources(truth)
    rsrc = result_sources(result) if result is not None else Sources()
    n = max(len(tsrc.markers), len(tsrc.angles))
    rows = [TrialResult(trial=name if n == 1 else f"{name}/P{p + 1}", person=p + 1, frames_pct=0.0)
            for p in range(n)]
    for p, row in enumerate(rows):
        row.truth_files = [str(x[p]) for x in (tsrc.markers, tsrc.angles) if p < len(x)]
    if tsrc.markers and rsrc.markers:
        truths = [_read_markers(p) for p in tsrc.markers]
        results = [_read_markers(p) for p in rsrc.markers]

        def run(i, j):
            ax = axes or ("auto" if rsrc.markers[i].suffix.lower() == ".c3d" else "as is")
            return compare_markers(results[i], truths[j], markers=markers, time_shift=time_shift, axes=ax,
                                   paths=(rsrc.markers[i], tsrc.markers[j]))

        for i, j in _pair(len(results), len(truths), lambda i, j: run(i, j)["mpjpe"][0]):
            _fill_markers(rows[j], run(i, j))
            rows[j].result_files.append(str(rsrc.markers[i]))
        if len(results) > 1 or len(truths) > 1:
            shift = next((r.time_shift_frames for r in rows if r.markers), 0.0)
            switches = int(sum(identity_switches(results, truths, shift)))
            for row in rows:
                row.id_switches = switches
    if tsrc.angles and rsrc.angles:
        truths = [_read_angles(p) for p in tsrc.angles]
        results = [_read_angles(p) for p in rsrc.angles]

        def run_a(i, j):
            shift = rows[j].time_shift_frames if rows[j].markers else (0.0 if time_shift == "auto" else time_shift)
            return compare_angles(results[i], truths[j], coordinates=coordinates, time_shift=float(shift),
                                  paths=(rsrc.angles[i], tsrc.angles[j]))

        for i, j in _pair(len(results), len(truths), lambda i, j: run_a(i, j)["mpjae"][0]):
            _fill_angles(rows[j], run_a(i, j))
            rows[j].result_files.append(str(rsrc.angles[i]))
    for row in rows:
        if not row.result_files:
            log.warning("%s: nothing in %s to compare with the truth", row.trial, result)
    return rows


def evaluate(result: str | Path, truth: str | Path, **options) -> list[TrialResult]:
    """Rows for every trial (see the module doc for what RESULT and TRUTH may be)."""
    rows: list[TrialResult] = []
    trials = find_trials(Path(result).expanduser(), Path(truth).expanduser())
    if len(trials) == 1 and trials[0][1] is not None:
        found = result_sources(trials[0][1])
        if not found.markers and not found.angles:
            raise OpenKinError("no results to evaluate (no pose-3d/*.trc or .c3d, no kinematics/*.mot)",
                               path=trials[0][1], fix="run the pipeline first (openkin run PROJECT), or give a file")
    for name, res, tru in trials:
        rows += evaluate_trial(name, res, tru, **options)
    return rows


def average(rows: list[TrialResult]) -> TrialResult:
    """The overall-average row: the mean of each metric over the rows that have it."""
    avg = TrialResult(trial="average", person=0)
    for key in ("mpjpe", "mpjpe_std", "pa_mpjpe", "pa_mpjpe_std", "mpjae", "mpjae_std", "frames_pct"):
        vals = np.array([getattr(r, key) for r in rows], dtype=float)
        setattr(avg, key, float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan)
    avg.id_switches = sum({r.trial.split("/")[0]: r.id_switches for r in rows}.values())  # once per trial
    avg.truth_frames = sum(r.truth_frames for r in rows)
    avg.matched_frames = sum(r.matched_frames for r in rows)
    return avg


# ----------------------------------------------------------------------------- output
COLUMNS = (("trial", "trial"), ("MPJPE [mm]", "mpjpe"), ("std", "mpjpe_std"), ("PA-MPJPE [mm]", "pa_mpjpe"),
           ("std", "pa_mpjpe_std"), ("MPJAE [deg]", "mpjae"), ("std", "mpjae_std"), ("frames [%]", "frames_pct"))


def _cell(value) -> str:
    if isinstance(value, str):
        return value
    return "-" if value is None or not np.isfinite(value) else f"{value:.2f}"


def format_table(rows: list[TrialResult]) -> str:
    """The EM-POSE table as aligned text, with the average row last."""
    table = [[h for h, _ in COLUMNS]] + [[_cell(getattr(r, k)) for _, k in COLUMNS] for r in rows + [average(rows)]]
    widths = [max(len(line[c]) for line in table) for c in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(line, widths)))
             for line in table]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines) + "\n"


def format_comparison(results: dict[str, list[TrialResult]]) -> str:
    """Several methods on the same truth: one table, each trial's rows (one per method)
    together, then each method's average. ``results``: method label → rows."""
    cols = (("trial", "trial"), ("method", None)) + COLUMNS[1:]
    by_trial: dict[str, list[tuple[str, TrialResult]]] = {}
    for label, rows in results.items():
        for r in rows:
            by_trial.setdefault(r.trial, []).append((label, r))
    body = [[r.trial, label] + [_cell(getattr(r, k)) for _, k in COLUMNS[1:]]
            for group in by_trial.values() for label, r in group]
    avgs = [["average", label] + [_cell(getattr(average(rows), k)) for _, k in COLUMNS[1:]]
            for label, rows in results.items()]
    table = [[h for h, _ in cols]] + body + avgs
    widths = [max(len(line[c]) for line in table) for c in range(len(cols))]
    lines = ["  ".join(cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(line, widths)))
             for line in table]
    rule = "-" * len(lines[0])
    return "\n".join([lines[0], rule, *lines[1:1 + len(body)], rule, *lines[1 + len(body):]]) + "\n"


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


UNITS = {"mpjpe": "mm", "pa_mpjpe": "mm", "mpjae": "deg", "frames_pct": "%"}


def to_json(rows: list[TrialResult] | dict[str, list[TrialResult]]) -> str:
    """``{"trials": [...], "average": {...}, "units": ...}``; for several methods (a dict
    label → rows) ``{"methods": {label: {"trials", "average"}}, "units": ...}``."""
    def one(rs):
        return {"trials": [_jsonable(asdict(r)) for r in rs], "average": _jsonable(asdict(average(rs)))}

    doc = {"methods": {k: one(v) for k, v in rows.items()}} if isinstance(rows, dict) else one(rows)
    doc["units"] = UNITS
    return json.dumps(doc, indent=1) + "\n"


def to_csv(rows: list[TrialResult] | dict[str, list[TrialResult]]) -> str:
    """One line per trial and an ``average`` line; with several methods a ``method`` column first."""
    keys = [k for _, k in COLUMNS] + ["truth_frames", "matched_frames", "time_shift_frames", "id_switches"]
    methods = rows if isinstance(rows, dict) else {None: rows}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow((["method"] if isinstance(rows, dict) else []) + keys)
    for label, rs in methods.items():
        for r in rs + [average(rs)]:
            cells = ["" if isinstance(v, float) and not math.isfinite(v) else v for v in (getattr(r, k) for k in keys)]
            writer.writerow(([label] if label is not None else []) + cells)
    return buf.getvalue()


def _emit(text: str, dest: str) -> None:
    if dest == "-":
        sys.stdout.write(text)
    else:
        with atomic_write(Path(dest)) as f:
            f.write(text)
        log.info("wrote %s", dest)


# ----------------------------------------------------------------------------- command line
def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="RESULT... TRUTH",
                        help="one or more results (.trc/.c3d/.mot/.sto file, project folder or session folder; "
                             "several are compared in one table), then the truth (a scene folder made by "
                             "`openkin synth`, its truth/ folder, a truth file, or a folder of scenes)")
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON ('-' for stdout)")
    parser.add_argument("--csv", metavar="PATH", help="also write the table as CSV ('-' for stdout)")
    parser.add_argument("--markers", help="comma-separated keypoint names to compare (default: all in common)")
    parser.add_argument("--coordinates", help="comma-separated coordinates for MPJAE, or a group: "
                        f"{', '.join(COORDINATE_GROUPS)} (default: all rotational coordinates in common)")
    parser.add_argument("--time-shift", default="0",
                        help="move the result by this many frames before matching, or 'auto' (default 0)")
    parser.add_argument("--axes", choices=["as is", "zup", "auto"], default=None,
                        help="result axes: as is (TRC default), zup (convert Z-up to Y-up), auto (C3D default)")


TRACKER_VARIANTS = {"cameras only": "_cameras_only.mot", "trackers only": "_trackers_only.mot"}


def tracker_variants(project: Path) -> dict[str, Path]:
    """A project whose IK fused 6-DoF trackers (openkin.kinematics.trackers): label → the cameras-only and
    trackers-only results (``kinematics/trackers/*``), compared in one table with the fused one; else {}."""
    folder = project / "kinematics" / "trackers"
    if not folder.is_dir():
        return {}
    found = {label: sorted(folder.glob(f"*{suffix}"), key=_natural) for label, suffix in TRACKER_VARIANTS.items()}
    if not all(len(v) == 1 for v in found.values()):  # none, or several people: the plain table
        return {}
    return {label: v[0] for label, v in found.items()}


def _shift(value: str) -> float | str:
    if value == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise OpenKinError(f"--time-shift {value!r} is not a number or 'auto'", fix="e.g. --time-shift 12") from None


def _labels(paths: list[str]) -> list[str]:
    """Short distinct labels for result paths: their names, or the paths if names repeat."""
    names = [Path(p).name or str(p) for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def main(args) -> int:
    if len(args.paths) < 2:
        raise OpenKinError("give a result and the truth: openkin evaluate RESULT [RESULT...] TRUTH",
                           fix="e.g. openkin evaluate my_trial my_trial (a scene evaluates against its truth/)")
    split = (lambda s: [x.strip() for x in s.split(",") if x.strip()] if s else None)
    options = dict(markers=split(args.markers), coordinates=split(args.coordinates),
                   time_shift=_shift(args.time_shift), axes=args.axes)
    results, truth = args.paths[:-1], args.paths[-1]
    variants = tracker_variants(Path(results[0])) if len(results) == 1 else {}
    if variants:
        rows = {"fused": evaluate(results[0], truth, **options)}
        rows.update({label: evaluate(path, truth, **options) for label, path in variants.items()})
        sys.stdout.write(format_comparison(rows))
    elif len(results) == 1:
        rows = evaluate(results[0], truth, **options)
        sys.stdout.write(format_table(rows))
    else:
        rows = {label: evaluate(r, truth, **options) for label, r in zip(_labels(results), results)}
        sys.stdout.write(format_comparison(rows))
    if args.json:
        _emit(to_json(rows), args.json)
    if args.csv:
        _emit(to_csv(rows), args.csv)
    return 0

"""Marker augmentation: the OpenCap / Stanford LSTM augmenter (v0.3) through onnxruntime.

From 15 body keypoints (lower model) and 7 (upper model) per frame, the
augmenter predicts 35 + 8 anatomical markers (ASIS, PSIS, medial/lateral knee,
ankle, elbow and wrist markers, thigh and shank clusters, hip joint centres),
which give OpenSim a much better-posed IK problem than joint-centre keypoints.

Inputs, as the augmenter was trained (OpenCap, and Pose2Sim's port of it):
keypoint positions (Y-up, metres) minus the mid-hip ``Hip`` keypoint, divided by
the participant's height, then height (m) and mass (kg) appended as two more
features; the whole (F, 3K + 2) array is standardised with the model's
``mean.npy``/``std.npy`` and run as one sequence (1, F, 3K + 2). Outputs are
un-normalised the other way (× height, + Hip).

The stage reads the current TRC files of the run manifest (filtering's, else
triangulation's; in a project without records, ``pose-3d/*.trc``, the filtered ones when
present) and writes ``pose-3d/<stem>_LSTM.trc`` (Pose2Sim's naming; the frame range in the
name is the one written) with the original keypoints followed by the augmented markers.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from .context import RunContext, run_alone
from .errors import OpenKinError
from .progress import Progress, report

log = logging.getLogger(__name__)

MODEL_VERSION = "v0.3"
LOWER_FEATURES = ("Neck", "RShoulder", "LShoulder", "RHip", "LHip", "RKnee", "LKnee", "RAnkle", "LAnkle",
                  "RHeel", "LHeel", "RSmallToe", "LSmallToe", "RBigToe", "LBigToe")
LOWER_RESPONSES = (
    "r.ASIS_study", "L.ASIS_study", "r.PSIS_study", "L.PSIS_study", "r_knee_study", "r_mknee_study",
    "r_ankle_study", "r_mankle_study", "r_toe_study", "r_5meta_study", "r_calc_study", "L_knee_study",
    "L_mknee_study", "L_ankle_study", "L_mankle_study", "L_toe_study", "L_calc_study", "L_5meta_study",
    "r_shoulder_study", "L_shoulder_study", "C7_study", "r_thigh1_study", "r_thigh2_study", "r_thigh3_study",
    "L_thigh1_study", "L_thigh2_study", "L_thigh3_study", "r_sh1_study", "r_sh2_study", "r_sh3_study",
    "L_sh1_study", "L_sh2_study", "L_sh3_study", "RHJC_study", "LHJC_study")
UPPER_FEATURES = ("Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist")
UPPER_RESPONSES = ("r_lelbow_study", "r_melbow_study", "r_lwrist_study", "r_mwrist_study",
                   "L_lelbow_study", "L_melbow_study", "L_lwrist_study", "L_mwrist_study")
AUGMENTERS = (("lower", LOWER_FEATURES, LOWER_RESPONSES), ("upper", UPPER_FEATURES, UPPER_RESPONSES))
# Keypoints the augmenter needs that can be made from others when a set lacks them.
MIDPOINTS = {"Neck": ("RShoulder", "LShoulder"), "Hip": ("RHip", "LHip")}


def add_midpoints(names: list[str], xyz: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Add ``Neck`` (mid-shoulders) and ``Hip`` (mid-hips) when absent and derivable.
    xyz (F, K, 3) -> (F, K', 3)."""
    names, extra = list(names), []
    for mid, (a, b) in MIDPOINTS.items():
        if mid not in names and a in names and b in names:
            extra.append(0.5 * (xyz[:, names.index(a)] + xyz[:, names.index(b)]))
            names.append(mid)
    if extra:
        xyz = np.concatenate([xyz, np.stack(extra, axis=1)], axis=1)
    return names, xyz


def missing_features(names: list[str]) -> list[str]:
    """Keypoints the lower and upper augmenters need that ``names`` lacks (after midpoints)."""
    have = set(names) | {m for m, (a, b) in MIDPOINTS.items() if a in names and b in names}
    need = dict.fromkeys(("Hip",) + LOWER_FEATURES + UPPER_FEATURES)
    return [n for n in need if n not in have]


@lru_cache(maxsize=4)
def _session(part: str):
    """(onnxruntime session, mean (D,), std (D,)) of one augmenter, loaded once per process."""
    import onnxruntime as ort

    from .assets import asset_path

    folder = asset_path(f"MarkerAugmenter/LSTM/{MODEL_VERSION}_{part}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # a (1, F, 47) LSTM: threads cost more than they save on 2 cores
    session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    return session, np.load(folder / "mean.npy"), np.load(folder / "std.npy")


def run_augmenter(part: str, features: np.ndarray, hip: np.ndarray, height: float, mass: float) -> np.ndarray:
    """One augmenter on complete frames: features (F, K, 3) and hip (F, 3), Y-up metres ->
    responses (F, R, 3) metres."""
    session, mean, std = _session(part)
    f = features.shape[0]
    x = ((features - hip[:, None, :]) / height).reshape(f, -1)
    x = np.concatenate([x, np.full((f, 1), height), np.full((f, 1), mass)], axis=1)
    if x.shape[1] != mean.shape[0]:
        raise OpenKinError(f"the {part} augmenter expects {mean.shape[0]} features, got {x.shape[1]}",
                           fix="re-fetch the assets (openkin assets fetch)")
    x = ((x - mean) / std).astype(np.float32)[None]
    y = session.run(None, {session.get_inputs()[0].name: x})[0][0]  # (F, 3R)
    return y.reshape(f, -1, 3) * height + hip[:, None, :]


def augment(names: list[str], xyz: np.ndarray, height: float, mass: float,
            path: str | Path | None = None) -> tuple[list[str], np.ndarray]:
    """Augmented markers for a trial: xyz (F, K, 3) Y-up metres -> (names of the 43 markers,
    (F, 43, 3)). Frames with a missing input keypoint get NaN markers; the LSTM runs on each
    complete stretch separately (it has memory, so gaps are not bridged)."""
    lacking = missing_features(names)
    if lacking:
        raise OpenKinError(
            f"marker augmentation needs keypoints this file lacks: {', '.join(lacking)}", path=path,
            fix="use a pose model with feet keypoints (Body_with_feet / HALPE_26), or set "
                "[kinematics] use_augmentation = false and skip the augmentation stage")
    if not (np.isfinite(height) and 0.5 < height < 2.6):
        raise OpenKinError(f"participant height {height} m is implausible", path=path,
                           fix="set [project] participant_height in metres (e.g. 1.72)")
    names, xyz = add_midpoints(names, xyz)
    out_names, outs = [], []
    hip = xyz[:, names.index("Hip")]
    for part, feats, resp in AUGMENTERS:
        feat = xyz[:, [names.index(n) for n in feats]]
        ok = np.isfinite(feat).all(axis=(1, 2)) & np.isfinite(hip).all(axis=1)
        res = np.full((len(xyz), len(resp), 3), np.nan)
        for a, b in _runs(ok):
            res[a:b] = run_augmenter(part, feat[a:b], hip[a:b], height, mass)
        out_names += list(resp)
        outs.append(res)
    return out_names, np.concatenate(outs, axis=1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of the runs of True in mask (F,)."""
    edges = np.diff(np.r_[0, mask.astype(int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def feet_to_floor(xyz: np.ndarray) -> np.ndarray:
    """Shift Y so the lowest marker of the trial is 1 cm above the floor (Pose2Sim's offset)."""
    out = xyz.copy()
    out[..., 1] -= np.nanmin(xyz[..., 1]) - 0.01
    return out


# ----------------------------------------------------------------------------- stage
def input_trc_files(pose_3d: Path) -> list[Path]:
    """TRC files to augment: the filtered ones if any, else the others (never _LSTM ones)."""
    trcs = sorted(f for f in pose_3d.glob("*.trc") if "_LSTM" not in f.name)
    filt = [f for f in trcs if "_filt" in f.name]
    if not trcs:
        raise OpenKinError("no .trc file to augment", path=pose_3d,
                           fix="run the triangulation (and filtering) stages first")
    return filt or trcs


def _per_person(value, i: int, default: float, what: str):
    if isinstance(value, (tuple, list)):
        if i < len(value):
            return value[i]
        log.warning("no %s for person %d in the config: using %s", what, i, default)
        return default
    return value


def person_height(setting, i: int, names: list[str], xyz: np.ndarray, k) -> float:
    """Height (m) of person ``i``: from the config, or measured from the trial ('auto')."""
    from .measure import participant_height

    value = _per_person(setting, i, "auto", "participant_height")
    if (isinstance(value, str) and value.lower() == "auto") or not value:
        names2, xyz2 = add_midpoints(names, xyz)
        h = participant_height(xyz2, names2, k.large_hip_knee_angles, k.trimmed_extrema_percent)
        if not np.isfinite(h):
            log.warning("could not measure the height of person %d: using default_height %.2f m", i, k.default_height)
            return float(k.default_height)
        log.info("person %d: height measured from the trial: %.2f m", i, h)
        return float(h)
    return float(value)


_RANGE_SUFFIX = re.compile(r"_(-?\d+)-(-?\d+)(?=(_filt_[A-Za-z0-9]+)?$)")


def output_path(trc_path: Path, frames: np.ndarray) -> Path:
    """``<seq>_<first>-<last>[_filt_<type>].trc`` -> the same with the frames written and ``_LSTM``
    (``frames (F,)``): a trial augmented on part of its frames says so in its name."""
    stem = trc_path.stem
    if len(frames):
        stem = _RANGE_SUFFIX.sub(f"_{int(frames[0])}-{int(frames[-1])}", stem, count=1)
    return trc_path.with_name(f"{stem}_LSTM.trc")


def augment_file(trc_path: Path, height: float, mass: float, feet_on_floor: bool,
                 frame_range=None) -> Path:
    """Augment one TRC; writes ``<stem>_LSTM.trc`` next to it and returns its path."""
    from .formats.trc import Trc, read_trc, write_trc

    trc = read_trc(trc_path)
    sel = np.ones(trc.n_frames, bool)
    if isinstance(frame_range, (tuple, list)) and len(frame_range) == 2:
        sel = (trc.frame_numbers >= frame_range[0]) & (trc.frame_numbers < frame_range[1])
    xyz = trc.xyz[sel]
    names, aug = augment(trc.marker_names, xyz, height, mass, trc_path)
    all_xyz = np.concatenate([xyz, aug], axis=1)
    if feet_on_floor:
        all_xyz = feet_to_floor(all_xyz)
    out = output_path(trc_path, trc.frame_numbers[sel])
    write_trc(out, Trc(trc.marker_names + names, trc.rate, all_xyz, trc.frame_numbers[sel], trc.times[sel]))
    return out


def _inputs(ctx: RunContext) -> list[tuple[Path, str]]:
    """(TRC, producing stage) to augment: filtering's current files, else triangulation's."""
    found = ctx.current_files(("filtering", "triangulation"), "trc")
    if found is None:
        log.info("no run record of filtering or triangulation: augmenting the TRC files of %s",
                 ctx.paths.pose_3d.name)
        return [(p, "") for p in input_trc_files(ctx.paths.pose_3d)]
    if not found[0]:
        raise OpenKinError("no current .trc file to augment", path=ctx.paths.pose_3d,
                           fix="run the triangulation (and filtering) stages first")
    return [(p, found[1]) for p in found[0]]


def run(ctx: RunContext) -> None:
    """The augmentation stage: every person's current TRC -> ``<stem>_LSTM.trc``."""
    from .formats.trc import read_trc

    config, progress = ctx.config, ctx.progress
    files = _inputs(ctx)
    aug = config.markerAugmentation
    ctx.summary["files"] = []
    for i, (path, producer) in enumerate(files):
        report(progress, i / len(files), f"augmenting {path.name}")
        ctx.read(path, producer)
        trc = read_trc(path)
        height = person_height(config.project.participant_height, i, trc.marker_names, trc.xyz, config.kinematics)
        mass = float(_per_person(config.project.participant_mass, i, 70.0, "participant_mass") or 70.0)
        out = augment_file(path, height, mass, aug.feet_on_floor, config.project.frame_range)
        ctx.wrote(out, "trc", person=i)
        log.info("%s: augmented with the LSTM (height %.2f m, mass %.0f kg) -> %s", path.name, height, mass, out.name)
        if aug.make_c3d and _write_c3d(out):
            ctx.wrote(out.with_suffix(".c3d"), "c3d", person=i)
        ctx.summary["files"].append({"input": path.name, "output": out.name, "height_m": round(height, 3),
                                     "mass_kg": mass})
    report(progress, 1.0, "augmentation done")


def run_stage(config, paths, progress: Progress | None = None) -> None:
    """The stage run by itself (recorded in the run manifest like a stage of ``openkin run``)."""
    run_alone("augmentation", run, config, paths, progress)


def _write_c3d(trc_path: Path) -> bool:
    try:
        from .formats.c3d import write_c3d
        from .formats.trc import read_trc
    except ImportError:  # ezc3d absent: the TRC is the result, C3D a convenience
        log.warning("ezc3d is not installed: no .c3d written for %s", trc_path.name)
        return False
    write_c3d(trc_path.with_suffix(".c3d"), read_trc(trc_path))
    return True

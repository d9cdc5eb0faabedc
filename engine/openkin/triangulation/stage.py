"""The triangulation stage shell: read inputs, reconstruct each person, write TRC/C3D and the report.

See :mod:`openkin.triangulation` for the outputs and the report format.
"""
from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write
from ..formats.c3d import write_c3d
from ..formats.trc import Trc, write_trc, zup_to_yup
from ..progress import Progress, report, scaled
from .core import PersonResult, Rig, TriangulationParams, prepare_points, reconstruct_person, shift_subframe
from .gaps import runs
from .inputs import Views, pose_folders, read_views, skeleton_of
from .reprojection import write_person_errors

log = logging.getLogger(__name__)

REPORT_NAME = "triangulation_report.json"
REPORT_VERSION = 1


def params_from_config(config) -> TriangulationParams:
    """:class:`TriangulationParams` from ``[triangulation]``."""
    t = config.triangulation
    return TriangulationParams(
        reproj_error_threshold=t.reproj_error_threshold_triangulation,
        likelihood_threshold=t.likelihood_threshold_triangulation,
        min_cameras=max(int(t.min_cameras_for_triangulation), 2),
        handle_lr_swap=getattr(t, "handle_LR_swap", True),
        interpolation=t.interpolation, interp_if_gap_smaller_than=t.interp_if_gap_smaller_than,
        sections_to_keep=t.sections_to_keep, min_chunk_size=t.min_chunk_size,
        fill_large_gaps_with=t.fill_large_gaps_with, remove_incomplete_frames=t.remove_incomplete_frames)


def frame_rate(config, paths) -> float:
    """``[project] frame_rate``, or with 'auto' the first video's rate (30 fps if none, as Pose2Sim)."""
    rate = config.project.frame_rate
    if not isinstance(rate, str):
        return float(rate)
    import cv2

    videos = sorted(p for p in paths.videos.glob("*") if p.is_file()) if paths.videos.is_dir() else []
    for v in videos:
        cap = cv2.VideoCapture(str(v))
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        if fps and fps > 0:
            return float(round(fps))
    log.warning("frame_rate = 'auto' but no readable video in %s: using 30 fps (set [project] frame_rate)",
                paths.videos)
    return 30.0


def load_people(config, paths, progress: Progress | None = None) -> tuple[Views, list[np.ndarray], str]:
    """The 2D keypoints of each person ``[(C,F,K,3), ...]``, from this process's association if
    unchanged on disk, else ``pose-associated/``, else ``pose-sync/`` or ``pose/`` (associated here)."""
    from .. import association
    from ..calibration import find_calibration

    assoc = association.cached(paths.pose_associated)
    if assoc is not None:
        log.info("using the association computed in this run (in memory)")
        return assoc.views, [assoc.person_keypoints(t) for t in range(assoc.choice.shape[0])], "pose-associated"
    calib = find_calibration(paths)
    if pose_folders(paths.pose_associated):
        views = read_views(paths.pose_associated, calib, config.project.frame_range, progress)
        n = views.keypoints.shape[2] if config.project.multi_person else 1
        return views, [views.keypoints[:, :, p] for p in range(n)], "pose-associated"
    src = association.input_dir(paths)
    views = read_views(src, calib, config.project.frame_range, progress)
    if views.keypoints.shape[2] == 1 and not config.project.multi_person:
        return views, [views.keypoints[:, :, 0]], src.name
    log.info("no pose-associated/ folder: associating people in memory (run the association stage to keep it)")
    names = list(skeleton_of(config).names)
    assoc = association.associate(views, association.params_from_config(config, names),
                                  config.project.multi_person)
    return views, [assoc.person_keypoints(t) for t in range(assoc.choice.shape[0])], src.name


def subframe_residuals(paths, views: Views, source: str) -> np.ndarray | None:
    """Per-camera sub-frame offsets left by synchronisation (``pose-sync/offsets.toml``), ``(C,)``,
    or None when the input is not synchronised or frames are not consecutive."""
    table = paths.pose_sync / "offsets.toml"
    if source == "pose" or not table.is_file() or np.any(np.diff(views.frame_numbers) != 1):
        return None
    from ..synchronization import read_offsets

    res = read_offsets(table)
    names = [f.name.replace("_json", "") for f in views.folders]
    r = np.array([res.get(n, 0.0) for n in names], float)
    return r if np.any(np.abs(r) > 1e-3) else None


def _check(views: Views, names: list[str], config) -> None:
    C = len(views.cameras)
    if views.keypoints.shape[3] != len(names):
        raise OpenKinError(f"pose files have {views.keypoints.shape[3]} keypoints but pose_model "
                           f"{config.pose.pose_model!r} has {len(names)}", path=views.source,
                           fix="set [pose] pose_model to the model that made these files")
    if C < 2:
        raise OpenKinError(f"only {C} camera: triangulation needs at least two calibrated views",
                           path=views.source, fix="add another camera (pose/<cam>_json and its calibration)")
    seen = np.isfinite(views.keypoints[..., 0]).any(axis=(1, 2, 3))
    if seen.sum() < 2:
        raise OpenKinError(f"only {int(seen.sum())} camera(s) have any detection "
                           f"({', '.join(f.name for f, s in zip(views.folders, seen) if s) or 'none'})",
                           path=views.source, fix="check the pose stage output of the other cameras")
    for folder, s in zip(views.folders, seen):
        if not s:
            log.warning("camera folder %s has no detection at all: it is ignored", folder.name)


def trc_name(trial: str, person: int, multi: bool, frames: np.ndarray) -> str:
    """Pose2Sim's names: ``<trial>_<first>-<last>.trc``, multi-person ``<trial>_P<n>_<first>-<last>.trc``."""
    who = f"_P{person}" if multi else ""
    return f"{trial}{who}_{int(frames[0])}-{int(frames[-1])}.trc"


def write_person(res: PersonResult, names: list[str], frames: np.ndarray, rate: float, out_dir: Path,
                 stem_name: str, make_c3d: bool) -> list[Path]:
    """TRC (Y-up, as Pose2Sim) and optional C3D of the kept frames ``[start, stop)``."""
    sl = slice(res.start, res.stop)
    trc = Trc(names, rate, zup_to_yup(res.xyz[sl]), frame_numbers=frames[sl])
    paths = [write_trc(out_dir / stem_name, trc)]
    if make_c3d:
        paths.append(write_c3d((out_dir / stem_name).with_suffix(".c3d"), trc))
    return paths


def _nanmean(x, axis=None):
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.isfinite(x).sum(axis=axis)
        s = np.nansum(x, axis=axis)
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _num(x) -> float | None:
    x = float(x)
    return round(x, 3) if np.isfinite(x) else None


def person_report(res: PersonResult, names: list[str], cams: list[str], frames: np.ndarray) -> dict:
    """Per-keypoint and per-camera statistics over the kept frames (see the package doc)."""
    sl = slice(res.start, res.stop)
    used, valid = res.used[:, sl], res.valid[:, sl]
    found = np.isfinite(res.raw[sl]).all(-1)                                   # (F,K)
    excluded = valid & ~used                                                   # (C,F,K)
    kp = {}
    for k, name in enumerate(names):
        filled = runs(res.interpolated[sl, k])
        kp[name] = {
            "reprojection_error_px": _num(_nanmean(res.error_px[sl, k])),
            "reprojection_error_mm": _num(_nanmean(res.error_mm[sl, k])),
            "cameras_excluded_mean": _num(excluded[:, :, k].sum(0)[found[:, k]].mean()) if found[:, k].any() else None,
            "frames_triangulated": int(found[:, k].sum()),
            "frames_interpolated": int(res.interpolated[sl, k].sum()),
            "interpolated_ranges": [[int(frames[sl][a]), int(frames[sl][b - 1])] for a, b in filled],
        }
    swaps = sum(s[:, sl].astype(int) for s in res.swaps.values()) if res.swaps else np.zeros((len(cams), 1))
    n_valid = valid.sum(axis=(1, 2))
    cam = {c: {"excluded_rate": _num(excluded[i].sum() / n_valid[i]) if n_valid[i] else None,
               "detected_rate": _num(valid[i].mean()),
               "lr_swaps_corrected_frames": int((swaps[i] > 0).sum())} for i, c in enumerate(cams)}
    return {
        "frame_range": [int(frames[res.start]), int(frames[res.stop - 1])],
        "n_frames": int(res.stop - res.start),
        "reprojection_error_px": _num(_nanmean(res.error_px[sl])),
        "reprojection_error_mm": _num(_nanmean(res.error_mm[sl])),
        "cameras_excluded_mean": _num(excluded.sum(0)[found].mean()) if found.any() else None,
        "keypoints": kp,
        "cameras": cam,
    }


def _or_nan(x) -> float:
    return float("nan") if x is None else float(x)


def _remove_stale(out_dir: Path, trial: str, written: list[Path]) -> None:
    """Delete this stage's earlier outputs (same trial, other frame ranges or people)."""
    pattern = re.compile(rf"^{re.escape(trial)}(_P\d+)?_-?\d+--?\d+(\.trc|\.c3d|_reprojection\.npz)$")
    keep = {p.name for p in written}
    for p in out_dir.glob(f"{trial}*"):
        if pattern.match(p.name) and p.name not in keep:
            p.unlink()
            log.info("removed earlier output %s", p.name)


def run_stage(config, paths, progress: Progress | None = None) -> None:
    """Triangulate every associated person of ``paths`` into ``pose-3d/``."""
    t0 = time.perf_counter()
    views, people, source = load_people(config, paths, scaled(progress, 0.0, 0.3))
    names = list(skeleton_of(config).names)
    _check(views, names, config)
    params = params_from_config(config)
    rig = Rig.from_cameras(views.cameras)
    rate = frame_rate(config, paths)
    multi = config.project.multi_person
    cams = [f.name.replace("_json", "") for f in views.folders]
    doc = {"version": REPORT_VERSION, "trial": paths.name, "source": source, "frame_rate": rate,
           "cameras": cams, "keypoints": names, "settings": {k: v for k, v in vars(params).items()},
           "undistort_points": bool(config.triangulation.undistort_points), "persons": []}
    written: list[Path] = []
    residual = subframe_residuals(paths, views, source)
    if residual is not None:
        log.info("sub-frame offsets from synchronisation applied: %s",
                 ", ".join(f"{c} {r:+.2f}" for c, r in zip(cams, residual)))
        doc["subframe_offsets"] = dict(zip(cams, residual.round(4).tolist()))
    for t, kp in enumerate(people):
        if residual is not None:
            kp = shift_subframe(kp, residual)
        pts, w = prepare_points(kp, rig, config.triangulation.undistort_points, params.likelihood_threshold)
        res = reconstruct_person(pts, w, rig, names, params)
        report(progress, 0.3 + 0.6 * (t + 1) / len(people), f"person {t}")
        if res.empty:
            log.warning("person %d: no run of %d valid frames: not written", t, params.min_chunk_size)
            continue
        name = trc_name(paths.name, t, multi, views.frame_numbers[res.start:res.stop])
        files = write_person(res, names, views.frame_numbers, rate, paths.pose_3d, name,
                             config.triangulation.make_c3d)
        written += files
        entry = {"person": t, "files": [f.name for f in files]}
        entry.update(person_report(res, names, cams, views.frame_numbers))
        written.append(write_person_errors(res, names, cams, views.frame_numbers, files[0]))
        doc["persons"].append(entry)
        log.info("person %d: %s, frames %d-%d, mean reprojection error %.1f px (~%.0f mm), %.2f cameras excluded",
                 t, name, *entry["frame_range"], _or_nan(entry["reprojection_error_px"]),
                 _or_nan(entry["reprojection_error_mm"]), _or_nan(entry["cameras_excluded_mean"]))
    if not written:
        raise OpenKinError("no person could be triangulated", path=views.source,
                           fix="check the calibration and synchronisation, or raise "
                               "[triangulation] reproj_error_threshold_triangulation")
    doc["seconds"] = round(time.perf_counter() - t0, 3)
    with atomic_write(paths.pose_3d / REPORT_NAME) as f:
        json.dump(doc, f, indent=1)
    _remove_stale(paths.pose_3d, paths.name, written)
    report(progress, 1.0, "triangulation done")

"""The triangulation stage shell: read inputs, reconstruct each person, write TRC/C3D and the report.

See :mod:`openkin.triangulation` for the outputs and the report format.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..context import RunContext, run_alone
from ..errors import OpenKinError
from ..fileio import atomic_write
from ..formats.c3d import write_c3d
from ..formats.calibration import read_calibration
from ..formats.trc import Trc, write_trc, zup_to_yup
from ..progress import Progress, report, scaled
from ..geometry import Rig
from .core import PersonResult, TriangulationParams, reconstruct_person
from .gaps import runs
from ..inputs import (Views, camera_name, match_cameras, prepare_points, read_views, shift_subframe, skeleton_of,
                      subframe_residuals)
from .reprojection import write_person_errors
from ..edits import TWO_D, PERSON_KINDS, Edit, apply_2d_edits, apply_person_edits, edits_path, read_edits

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


def load_people(ctx: RunContext, progress: Progress | None = None) -> tuple[Views, list[np.ndarray], str]:
    """The 2D keypoints of each person ``[(C,F,K,3), ...]`` and the stage they come from: this
    run's association (in memory), else the association's recorded folders, else the current
    ``pose-sync/`` or ``pose/`` (people associated here). Cameras: ``ctx.calibration``."""
    from ..association.kernels import associate, params_from_config

    config = ctx.config
    calib = ctx.calibration
    cameras = read_calibration(calib, units=config.calibration.units)
    if ctx.association is not None:
        log.info("using the association computed in this run (in memory)")
        assoc = ctx.association
        views = dataclasses.replace(assoc.views, cameras=match_cameras(assoc.views.folders, cameras, calib))
        for folder in ctx.stage_files("association", "camera") or []:
            ctx.read(folder, "association")
        return views, [assoc.person_keypoints(t) for t in range(assoc.choice.shape[0])], "association"
    associated = ctx.pose_source(("association",))
    if associated is not None:
        views = read_views(associated[0], calib, config.project.frame_range, progress, units=config.calibration.units)
        _record_inputs(ctx, views, "association")
        n = views.keypoints.shape[2] if config.project.multi_person else 1
        return views, [views.keypoints[:, :, p] for p in range(n)], "association"
    source = ctx.pose_source()
    if source is None:
        raise OpenKinError("the 2D poses of this project are not current (their stage failed or must run again)",
                           path=ctx.paths.pose, fix="run the pose, synchronization and association stages first")
    src, producer = source
    views = read_views(src, calib, config.project.frame_range, progress, units=config.calibration.units)
    _record_inputs(ctx, views, producer)
    if views.keypoints.shape[2] == 1 and not config.project.multi_person:
        return views, [views.keypoints[:, :, 0]], producer
    log.info("no current association: associating people in memory (run the association stage to keep it)")
    names = list(skeleton_of(config).names)
    assoc = associate(views, params_from_config(config, names), config.project.multi_person)
    edits = [e for e in read_edits(ctx.paths.root) if e.kind in PERSON_KINDS]
    if edits:  # the association stage applies them when it runs; here it did not
        assoc.choice = apply_person_edits(assoc.choice, [camera_name(f) for f in views.folders],
                                          views.frame_numbers, edits, edits_path(ctx.paths.root))
    return views, [assoc.person_keypoints(t) for t in range(assoc.choice.shape[0])], producer


def _record_inputs(ctx: RunContext, views: Views, producer: str) -> None:
    for folder in views.folders:
        ctx.read(folder, producer)


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


SOURCE_FOLDER = {"association": "pose-associated", "synchronization": "pose-sync", "pose": "pose"}


def reconstruct(kp: np.ndarray, person: int, rig: Rig, cams: list[str], frame_numbers: np.ndarray,
                names: list[str], params: TriangulationParams, undistort: bool, residual: np.ndarray | None,
                edits: list[Edit], edits_file: Path | None = None) -> PersonResult:
    """One person's detections ``kp (C,F,K,3)`` on ``frame_numbers (F,)`` → :class:`PersonResult`:
    the user's 2D edits (:func:`openkin.edits.apply_2d_edits`; the automatic left/right
    correction stays off where a swap edit is), the sub-frame shift ``residual (C,)``, the
    kernels. The one sequence both this stage and ``openkin recompute`` run."""
    locked = None
    if edits:
        kp, locked = apply_2d_edits(kp, cams, frame_numbers, names, edits, person, edits_file)
    if residual is not None:
        kp = shift_subframe(kp, residual)
    pts, w = prepare_points(kp, rig, undistort, params.likelihood_threshold)
    return reconstruct_person(pts, w, rig, names, params, keep_labels=locked)


def edits_2d(ctx: RunContext) -> list[Edit]:
    """The project's swap / exclude / wrong edits, recorded as an input when there are any."""
    edits = [e for e in read_edits(ctx.paths.root) if e.kind in TWO_D]
    if edits:
        ctx.read(edits_path(ctx.paths.root))
        log.info("honouring %d edit(s) of %s: %s", len(edits), EDITS_REL, "; ".join(e.describe() for e in edits))
    return edits


EDITS_REL = "openkin/edits.toml"


def run(ctx: RunContext) -> None:
    """Triangulate every associated person of the project into ``pose-3d/`` (see the package doc)."""
    config, paths, progress = ctx.config, ctx.paths, ctx.progress
    t0 = time.perf_counter()
    views, people, producer = load_people(ctx, scaled(progress, 0.0, 0.3))
    names = list(skeleton_of(config).names)
    _check(views, names, config)
    params = params_from_config(config)
    rig = Rig.from_cameras(views.cameras)
    rate = ctx.frame_rate
    multi = config.project.multi_person
    cams = [camera_name(f) for f in views.folders]
    doc = {"version": REPORT_VERSION, "trial": paths.name, "source": SOURCE_FOLDER[producer], "frame_rate": rate,
           "calibration": ctx.calibration.name, "cameras": cams, "keypoints": names,
           "settings": {k: v for k, v in vars(params).items()},
           "undistort_points": bool(config.triangulation.undistort_points), "persons": []}
    ctx.read(ctx.calibration, "refinement" if ctx.manifest.done("refinement") else "calibration")
    residual = subframe_residuals(ctx.sync_offsets(producer), views)
    if residual is not None:
        log.info("sub-frame offsets from synchronisation applied: %s",
                 ", ".join(f"{c} {r:+.2f}" for c, r in zip(cams, residual)))
        doc["subframe_offsets"] = dict(zip(cams, residual.round(4).tolist()))
    edits = edits_2d(ctx)
    if edits:
        doc["edits"] = [e.id for e in edits]
    for t, kp in enumerate(people):
        res = reconstruct(kp, t, rig, cams, views.frame_numbers, names, params,
                          config.triangulation.undistort_points, residual, edits, edits_path(paths.root))
        report(progress, 0.3 + 0.6 * (t + 1) / len(people), f"person {t}")
        if res.empty:
            log.warning("person %d: no run of %d valid frames: not written", t, params.min_chunk_size)
            continue
        name = trc_name(paths.name, t, multi, views.frame_numbers[res.start:res.stop])
        files = write_person(res, names, views.frame_numbers, rate, paths.pose_3d, name,
                             config.triangulation.make_c3d)
        for f in files:
            ctx.wrote(f, "trc" if f.suffix == ".trc" else "c3d", person=t)
        entry = {"person": t, "files": [f.name for f in files]}
        entry.update(person_report(res, names, cams, views.frame_numbers))
        ctx.wrote(write_person_errors(res, names, cams, views.frame_numbers, files[0]), "reprojection", person=t)
        doc["persons"].append(entry)
        log.info("person %d: %s, frames %d-%d, mean reprojection error %.1f px (~%.0f mm), %.2f cameras excluded",
                 t, name, *entry["frame_range"], _or_nan(entry["reprojection_error_px"]),
                 _or_nan(entry["reprojection_error_mm"]), _or_nan(entry["cameras_excluded_mean"]))
    if not doc["persons"]:
        raise OpenKinError("no person could be triangulated", path=views.source,
                           fix="check the calibration and synchronisation, or raise "
                               "[triangulation] reproj_error_threshold_triangulation")
    doc["seconds"] = round(time.perf_counter() - t0, 3)
    with atomic_write(paths.pose_3d / REPORT_NAME) as f:
        json.dump(doc, f, indent=1)
    ctx.wrote(paths.pose_3d / REPORT_NAME, "report")
    ctx.summary.update(doc)
    report(progress, 1.0, "triangulation done")


def run_stage(config, paths, progress: Progress | None = None) -> None:
    """The stage run by itself (recorded in the run manifest like a stage of ``openkin run``)."""
    run_alone("triangulation", run, config, paths, progress)

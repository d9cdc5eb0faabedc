"""``openkin recompute PROJECT --frames A-B``: triangulation → filtering → augmentation →
kinematics again on a frame range only, spliced into the existing outputs.

After an edit (:mod:`openkin.edits`, ``openkin edit``) only the frames it covers change. Each
stage recomputes the rows it must, from a window of its input with enough context, and
replaces those rows of its outputs (:mod:`.splice`); every other frame keeps its bytes in the
TRC, C3D, MOT, marker-error CSV and reprojection NPZ files.

Rows replaced, per stage (``[A, B]`` the range asked):

* association: when person edits changed since its run, it runs in full (tracking is global)
  and so does triangulation (people may have changed anywhere, and their files' frame ranges);
  unchanged frames still come out byte-identical (triangulation is deterministic per frame);
* triangulation: ``[A, B]``, from the 2D detections of ``[A - W, B + W]`` (``W`` = the gap
  interpolation length or the swap orientation reach, whichever is longer), read from the
  association's folders (only those frames' files are read);
* filtering: ``[A - M, B + M]``, ``M`` the filter's reach (:func:`filter_margin`: 3 periods of
  the cut-off for Butterworth and the acceleration-minimising smoother, 4 sigma for the
  Gaussian, ...; + 3 frames of Hampel), filtered from ``[A - 2M, B + 2M]``. Splicing is exact to
  the tolerance of that reach: an infinite-impulse filter's effect beyond it is below
  :data:`REACH_TOLERANCE` of its input (the tests measure it against a full rerun);
  ``gcv_spline`` (its cut-off is chosen on the whole trial) is a global operation: the stage
  reruns in full (bytes change where values do);
* augmentation: the LSTM runs forward in time (frames before a change keep their values), but
  a change reaches far ahead: the filtering rows and :data:`LSTM_AFTER_S` after them are
  replaced (beyond, a full rerun changes them by < 0.01 mm, measured), computed from
  :data:`LSTM_HISTORY_S` of history before them (the state the full run had there is not
  stored; with less history than the stretch, the replaced rows differ from a full rerun's
  by a fraction of a millimetre, measured in the tests); the person's height and mass are
  the ones the full run used (its record). ``feet_on_floor`` shifts by the whole trial's lowest
  point: the stage reruns in full;
* kinematics: the same rows, solved on the scaled model of the full run (scaling is not
  redone: it uses the whole trial) by the configured solver, warm-started ``WARMUP`` frames
  early; ``filter_ik`` (a filter over the whole trial) reruns the stage in full.

Every stage run is recorded in the run manifest like a full run (inputs and outputs with their
new sha256, the summary of the full run with a ``recomputed`` entry: the figures of the
summaries, e.g. mean reprojection errors, are the full run's and not updated).
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..context import RunContext, execute
from ..edits import TWO_D, edits_path, read_edits
from ..errors import OpenKinError
from ..formats.trc import Trc, zup_to_yup
from ..lock import project_lock
from ..manifest import Manifest, relpath
from ..progress import Progress, report, scaled
from .splice import splice_c3d, splice_csv, splice_mot, splice_reprojection, splice_trc
from .window import read_pose_window, read_trc_rows, trc_frame_span

log = logging.getLogger(__name__)

STAGES = ("triangulation", "filtering", "augmentation", "kinematics")
LSTM_AFTER_S = 1.5        # s: a change's effect on the augmenter's later output (measured < 0.01 mm after it)
LSTM_HISTORY_S = 10.0     # s: history the augmenter is run on before the first changed frame
IK_WARMUP = 8             # frames solved before the first kept one (as OpenSim's chunks, kinematics.ik.WARMUP)
REACH_TOLERANCE = 1e-4    # share of a filter's input change left beyond its margin
SWAP_REACH = 30           # frames: how far the swap correction looks for an orientation (swaps.MAX_REF_GAP)


@dataclass
class Span:
    """Inclusive frame range."""

    lo: int
    hi: int

    def grow(self, n: int) -> "Span":
        return Span(self.lo - n, self.hi + n)

    def clip(self, lo: int, hi: int) -> "Span":
        return Span(max(self.lo, lo), min(self.hi, hi))

    def mask(self, frames: np.ndarray) -> np.ndarray:
        return (frames >= self.lo) & (frames <= self.hi)

    def as_list(self) -> list[int]:
        return [int(self.lo), int(self.hi)]


def filter_margin(cfg, rate: float) -> int | None:
    """Frames beyond which the filtering stage's effect of a change is negligible, or None for a
    global filter (``cfg``: the FilteringConfig). Hampel (window 7) adds 3 frames."""
    hampel = 3 if cfg.reject_outliers else 0
    if not cfg.filter:
        return hampel
    kind = str(cfg.type).lower()
    if kind in ("butterworth", "butterworth_on_speed", "acc_minimizing"):
        fc = getattr(cfg, kind).cut_off_frequency
        return hampel + int(math.ceil(3.0 * rate / float(fc)))
    if kind == "gaussian":
        return hampel + int(math.ceil(4 * cfg.gaussian.sigma_kernel)) + 1
    if kind == "median":
        return hampel + int(cfg.median.kernel_size) // 2 + 1
    if kind == "loess":
        return hampel + int(cfg.loess.nb_values_used) + 1
    if kind in ("kalman", "one_euro"):
        return hampel + int(math.ceil(2 * rate))
    return None  # gcv_spline: its smoothing is chosen on the whole trial


# ============================================================================ helpers
def _entries(record: dict, role: str) -> list[dict]:
    """Output entries of ``role`` of a stage record (outdated records keep theirs)."""
    outs = record.get("outputs") or record.get("previous_outputs") or []
    return [e for e in outs if e.get("role") == role]


def _rewrote(ctx: RunContext, record: dict) -> None:
    """Record every output of the stage's earlier run again (the files stay: nothing is set aside)."""
    for e in record.get("outputs") or record.get("previous_outputs") or []:
        path = ctx.paths.root / e["path"]
        if path.exists():
            extra = {k: v for k, v in e.items() if k not in ("path", "sha256", "role")}
            ctx.wrote(path, e.get("role", ""), **extra)


def _pairs(ctx: RunContext, record: dict, producers: tuple[str, ...], tag: str) -> list[tuple[Path, Path, dict]]:
    """(input TRC, output TRC, its summary item or {}) of a stage's record: by name, as the stages
    name their outputs (``<input stem>_filt_<type>.trc``, ``<input stem>_LSTM.trc``), so that a
    record another stage outdated (summary dropped) still pairs them."""
    inputs = [p for s in producers for p in (ctx.stage_files(s, "trc") or [])]
    items = {i.get("output"): i for i in record.get("summary", {}).get("files", [])}
    pairs = []
    for e in _entries(record, "trc"):
        out_path = ctx.paths.root / e["path"]
        src = [p for p in inputs if out_path.stem.startswith(p.stem + tag) and p != out_path]
        if src:
            pairs.append((max(src, key=lambda p: len(p.stem)), out_path, items.get(out_path.name, {})))
    return pairs


def _height_mass(ctx: RunContext, item: dict, in_path: Path, person: int) -> tuple[float, float]:
    """The height and mass the augmentation used for this person: its record's, else found as
    the stage finds them (the height measured on the whole input file)."""
    if "height_m" in item:
        return float(item["height_m"]), float(item["mass_kg"])
    from ..augmentation import _per_person, person_height
    from ..formats.trc import read_trc

    config = ctx.config
    trc = read_trc(in_path)
    height = person_height(config.project.participant_height, person, trc.marker_names, trc.xyz, config.kinematics)
    return height, float(_per_person(config.project.participant_mass, person, 70.0, "participant_mass") or 70.0)


def _summary(ctx: RunContext, record: dict, span: Span) -> None:
    ctx.summary.update(copy.deepcopy(record.get("summary", {})))
    ctx.summary["recomputed"] = {"frames": span.as_list(), "run": ctx.run_id}


def _run_full(ctx: RunContext, name: str) -> None:
    """The stage in full (its ``run(ctx)``), for what cannot be spliced."""
    import importlib

    from ..pipeline import STAGES as PIPELINE

    module = next(s.module for s in PIPELINE if s.name == name)
    importlib.import_module(module).run(ctx)


# ============================================================================ stages
def _triangulation(ctx: RunContext, record: dict, span: Span, out: dict) -> None:
    from ..formats.calibration import read_calibration
    from ..geometry import Rig
    from ..inputs import Views, camera_name, match_cameras, pose_folders, skeleton_of, subframe_residuals
    from ..triangulation.reprojection import reprojection_path
    from ..triangulation.stage import edits_2d, params_from_config, reconstruct

    config = ctx.config
    if out.get("association_rerun"):
        raise _NotSpliceable("the association ran again (person edits): who is who may have changed anywhere")
    folders, producer = _pose_source(ctx)
    calib = ctx.calibration
    cameras = match_cameras(folders, read_calibration(calib, units=config.calibration.units), calib)
    rig = Rig.from_cameras(cameras)
    cams = [camera_name(f) for f in folders]
    names = list(skeleton_of(config).names)
    params = params_from_config(config)
    edits = edits_2d(ctx)
    reach = max(int(params.interp_if_gap_smaller_than), SWAP_REACH) + 2
    for f in folders:
        _read_unchanged(ctx, f, producer, record)
    ctx.read(calib, "refinement" if ctx.manifest.done("refinement") else "calibration")
    spans = {}
    for e in _entries(record, "trc"):
        t = int(e.get("person", 0))
        trc_path = ctx.paths.root / e["path"]
        first, last = trc_frame_span(trc_path)
        todo = span.clip(first, last)
        if todo.lo > todo.hi:
            continue
        wf = np.arange(max(todo.lo - reach, first), min(todo.hi + reach, last) + 1)
        kp = read_pose_window(folders, wf)                                   # (C,Fw,P,K,3)
        if producer != "association" and kp.shape[2] > 1:
            raise _NotSpliceable("several people in an unassociated source")
        kp = kp[:, :, t] if t < kp.shape[2] else np.full(kp.shape[:2] + kp.shape[3:], np.nan)
        views = Views(cameras, folders, kp[:, :, None], wf, folders[0].parent)
        residual = subframe_residuals(ctx.sync_offsets(producer), views)
        res = reconstruct(kp, t, rig, cams, wf, names, params, config.triangulation.undistort_points, residual,
                          edits, edits_path(ctx.paths.root))
        sel = todo.mask(wf)
        old = read_trc_rows(trc_path, todo.lo, todo.hi)
        if not np.array_equal(old.frame_numbers, wf[sel]):
            raise _NotSpliceable(f"{trc_path.name} lacks frames of the window")
        xyz = zup_to_yup(res.xyz[sel])
        splice_trc(trc_path, Trc(old.marker_names, old.rate, xyz, old.frame_numbers, old.times))
        c3d = trc_path.with_suffix(".c3d")
        if c3d.is_file() and any(x["path"].endswith(c3d.name) for x in _entries(record, "c3d")):
            splice_c3d(c3d, old.frame_numbers, xyz)
        npz = reprojection_path(trc_path)
        if npz.is_file():
            splice_reprojection(npz, old.frame_numbers, res.error_px[sel], res.used[:, sel])
        spans[trc_path.name] = todo
        log.info("%s: frames %d-%d triangulated again (context %d-%d)", trc_path.name, todo.lo, todo.hi, wf[0], wf[-1])
    out["triangulation"] = spans
    _rewrote(ctx, record)
    _summary(ctx, record, span)
    if edits:
        ctx.summary["edits"] = [e.id for e in edits]


def _read_unchanged(ctx: RunContext, folder: Path, producer: str, record: dict) -> None:
    """Record a 2D pose folder as an input: with the sha256 the stage's earlier run recorded when
    nothing in the folder was created, renamed or removed since that run started (OpenKin's
    writers replace files, which changes the folder's time), else hashed again (a folder of a
    long take is tens of thousands of files: the hash would be most of a 1-second recompute)."""
    rel = relpath(ctx.paths.root, folder)
    known = next((e for e in record.get("inputs", []) if e.get("path") == rel), None)
    started = record.get("started")
    if known and started and folder.stat().st_mtime < time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%S")):
        ctx.inputs.append(dict(known))
    else:
        ctx.read(folder, producer)


class _NotSpliceable(Exception):
    """This stage cannot be spliced here: it runs in full."""


def _pose_source(ctx: RunContext) -> tuple[list[Path], str]:
    from ..inputs import pose_folders

    folders = ctx.stage_files("association", "camera")
    if folders:
        return folders, "association"
    source = ctx.pose_source()
    if source is None:
        raise OpenKinError("the 2D poses of this project are not current", path=ctx.paths.pose,
                           fix="run the pipeline once in full (openkin run PROJECT)")
    return pose_folders(source[0]), source[1]


def _filtering(ctx: RunContext, record: dict, span: Span, out: dict) -> None:
    from ..filtering.stage import filter_params, filter_xyz

    cfg = ctx.config.filtering
    rate = ctx.frame_rate
    margin = filter_margin(cfg, rate)
    if margin is None:
        raise _NotSpliceable(f"the {cfg.type} filter is global (chosen on the whole trial)")
    spans = {}
    for raw_path, out_path, _ in _pairs(ctx, record, ("triangulation",), "_filt_"):
        changed = out.get("triangulation", {}).get(raw_path.name)
        ctx.read(raw_path, "triangulation")
        if changed is None:
            continue
        first, last = trc_frame_span(out_path)
        todo = changed.grow(margin).clip(first, last)
        win = changed.grow(2 * margin).clip(first, last)
        raw = read_trc_rows(raw_path, win.lo, win.hi)
        params = filter_params(cfg, cfg.type) if cfg.filter else {}
        xyz = filter_xyz(raw.xyz, raw.rate, reject_outliers=cfg.reject_outliers, do_filter=cfg.filter,
                         type_name=cfg.type, params=params)
        sel = todo.mask(raw.frame_numbers)
        rows = Trc(raw.marker_names, raw.rate, xyz[sel], raw.frame_numbers[sel], raw.times[sel])
        splice_trc(out_path, rows)
        if out_path.with_suffix(".c3d").is_file():
            splice_c3d(out_path.with_suffix(".c3d"), rows.frame_numbers, rows.xyz)
        spans[out_path.name] = todo
        log.info("%s: frames %d-%d filtered again (margin %d frames)", out_path.name, todo.lo, todo.hi, margin)
    out["filtering"] = spans
    _rewrote(ctx, record)
    _summary(ctx, record, span)


def _augmentation(ctx: RunContext, record: dict, span: Span, out: dict) -> None:
    from ..augmentation import augment

    if ctx.config.markerAugmentation.feet_on_floor:
        raise _NotSpliceable("feet_on_floor shifts by the lowest point of the whole trial")
    producer = "filtering" if "filtering" in out else "triangulation"
    spans = {}
    for person, (in_path, out_path, item) in enumerate(_pairs(ctx, record, (producer,), "_LSTM")):
        ctx.read(in_path, producer)
        changed = out.get(producer, {}).get(in_path.name)
        if changed is None:
            continue
        first, last = trc_frame_span(out_path)
        rate = ctx.frame_rate
        todo = Span(changed.lo, changed.hi + int(math.ceil(LSTM_AFTER_S * rate))).clip(first, last)
        win = Span(changed.lo - int(math.ceil(LSTM_HISTORY_S * rate)), todo.hi).clip(first, last)
        src = read_trc_rows(in_path, win.lo, win.hi)
        height, mass = _height_mass(ctx, item, in_path, person)
        names, aug = augment(src.marker_names, src.xyz, height, mass, in_path)
        sel = todo.mask(src.frame_numbers)
        xyz = np.concatenate([src.xyz, aug], axis=1)[sel]
        rows = Trc(src.marker_names + names, src.rate, xyz, src.frame_numbers[sel], src.times[sel])
        splice_trc(out_path, rows)
        if out_path.with_suffix(".c3d").is_file():
            splice_c3d(out_path.with_suffix(".c3d"), rows.frame_numbers, rows.xyz)
        spans[out_path.name] = todo
        log.info("%s: frames %d-%d augmented again", out_path.name, todo.lo, todo.hi)
    out["augmentation"] = spans
    _rewrote(ctx, record)
    _summary(ctx, record, span)


def _kinematics(ctx: RunContext, record: dict, span: Span, out: dict) -> None:
    from ..fileio import read_optional_toml
    from ..formats.mot import Motion
    from ..kinematics import angles_motion, options_from_config, solve_window
    from ..kinematics.opensim_log import redirect_opensim_log

    config = ctx.config
    if config.kinematics.filter_ik:
        raise _NotSpliceable("filter_ik filters the joint angles of the whole trial")
    redirect_opensim_log(ctx.paths.logs)
    spans = {}
    for i, mot_entry in enumerate(_entries(record, "mot")):
        mot_path = ctx.paths.root / mot_entry["path"]
        stem = mot_path.with_suffix("")
        info = read_optional_toml(stem.parent / f"{stem.name}_kinematics.toml")
        trc_path = Path(info.get("trc") or ctx.paths.pose_3d / f"{stem.name}.trc")
        producer = next((s for s in ("augmentation", "filtering", "triangulation") if s in out
                         and trc_path.name in out[s]), None)
        changed = out.get(producer, {}).get(trc_path.name) if producer else None
        if producer:
            ctx.read(trc_path, producer)
        if changed is None:
            continue
        augmented = "_LSTM" in trc_path.name
        opts = options_from_config(config, augmented, int(mot_entry.get("person", i)))
        first, last = trc_frame_span(trc_path)
        todo = changed.clip(first, last)
        rows = read_trc_rows(trc_path, max(todo.lo - IK_WARMUP, first), todo.hi)
        frames, times, res = solve_window(rows, stem.with_suffix(".osim"), opts, list(info.get("markers", [])),
                                          keep_from=int((rows.frame_numbers < todo.lo).sum()))
        motion = angles_motion(res, times, None, rows.rate)
        values = _same_turn(mot_path, motion, res.rotational)
        splice_mot(mot_path, Motion(motion.names, times, values, in_degrees=True))
        csv = stem.parent / f"{stem.name}_marker_errors.csv"
        if csv.is_file():
            splice_csv(csv, "frame,time,rms_m,max_m\n",
                       [f"{fr},{t:.6f},{r:.6f},{m:.6f}\n" for fr, t, r, m in zip(frames, times, res.rms, res.max_error)])
        spans[mot_path.name] = Span(int(frames[0]), int(frames[-1])) if len(frames) else todo
        log.info("%s: frames %d-%d solved again (%s solver, %.2f s)", mot_path.name, todo.lo, todo.hi,
                 opts.ik_solver, res.solver_seconds)
    out["kinematics"] = spans
    _rewrote(ctx, record)
    _summary(ctx, record, span)


def _same_turn(mot_path: Path, motion, rotational: list[bool]) -> np.ndarray:
    """The window's angles ``(n,C)`` degrees shifted by whole turns to continue the old file's: a
    solver started afresh may land on the same pose 360° away (seen: pelvis_rotation), which
    would be a jump at the window's edge. Matched on the old row just before the window (else
    its first row)."""
    from ..formats.mot import read_mot

    old = read_mot(mot_path)
    values = motion.values.copy()
    i = int(np.searchsorted(old.times, motion.times[0] - 1e-9))
    ref = old.values[max(i - 1, 0)] if len(old.times) else None
    if ref is None or list(old.names) != list(motion.names):
        return values
    rot = np.array(rotational, bool)
    turns = np.round((ref[rot] - values[0, rot]) / 360.0)
    values[:, rot] += 360.0 * turns[None]
    return values


PARTIAL = {"triangulation": _triangulation, "filtering": _filtering, "augmentation": _augmentation,
           "kinematics": _kinematics}


# ============================================================================ entry point
def recompute(project: str | Path, frames: tuple[int, int] | None = None, progress: Progress | None = None,
              overrides: dict | None = None) -> dict:
    """Recompute triangulation → kinematics on ``frames`` (inclusive; None: the frames of the
    current edits) of ``project`` and splice them into its outputs (see the module doc) →
    ``{"frames": [a, b], "stages": {name: {"frames": {file: [lo, hi]}, "seconds": s, "full": bool}}}``."""
    from ..config import load_config
    from ..pipeline import project_paths

    paths = project_paths(project)
    with project_lock(paths.root):
        config = load_config(paths.root, overrides=overrides)
        manifest = Manifest.load(paths.root)
        old = copy.deepcopy(manifest.stages)
        todo = [s for s in STAGES if s in old and (old[s].get("outputs") or old[s].get("previous_outputs"))]
        if "triangulation" not in todo:
            raise OpenKinError("this project has no triangulation to recompute", path=paths.root,
                               fix="run the pipeline once in full: openkin run PROJECT")
        span = Span(*frames) if frames is not None else _edited_span(paths.root)
        ctx = RunContext(config, paths, manifest)
        result = {"frames": span.as_list(), "stages": {}}
        out: dict = {}
        if _association_outdated(old, paths.root):
            t0 = time.perf_counter()
            log.info("association: person edits changed: it runs in full (tracking is global), then the rest")
            execute(ctx, "association", lambda c: _run_full(c, "association"), scaled(progress, 0.0, 0.1))
            result["stages"]["association"] = {"frames": {}, "seconds": round(time.perf_counter() - t0, 3),
                                               "full": True}
            out["association_rerun"] = True
        for i, name in enumerate(todo):
            t0 = time.perf_counter()
            full = _run_stage(ctx, name, old[name], span, out, scaled(progress, i / len(todo), (i + 1) / len(todo)))
            result["stages"][name] = {"frames": {k: v.as_list() for k, v in out.get(name, {}).items()},
                                      "seconds": round(time.perf_counter() - t0, 3), "full": full}
        report(progress, 1.0, "recomputed")
    return result


def _association_outdated(old: dict, root: Path) -> bool:
    """The association must run again: its record is outdated (a person edit was added or
    removed since), or it did not honour the current person edits."""
    rec = old.get("association")
    if rec is None:
        return False
    from ..edits import PERSON_KINDS

    wanted = [e.id for e in read_edits(root) if e.kind in PERSON_KINDS]
    return rec.get("status") != "done" or rec.get("summary", {}).get("edits", []) != wanted


def _run_stage(ctx: RunContext, name: str, record: dict, span: Span, out: dict, progress) -> bool:
    """One stage, spliced if it can be, else in full → whether it ran in full."""
    full = False
    try:
        execute(ctx, name, lambda c: PARTIAL[name](c, record, span, out), progress)
    except _NotSpliceable as why:
        log.warning("%s: %s: the stage runs in full", name, why)
        full = True
        execute(ctx, name, lambda c: _run_full(c, name), progress)
        out[name] = _all_changed(ctx, name)
    return full


def _all_changed(ctx: RunContext, name: str) -> dict:
    """After a full run of ``name``: every frame of each of its TRC files changed."""
    spans = {}
    for path in ctx.stage_files(name, "trc") or ctx.stage_files(name, "mot") or []:
        if path.suffix == ".trc":
            spans[path.name] = Span(*trc_frame_span(path))
        else:
            spans[path.name] = Span(-10**9, 10**9)
    return spans


def _edited_span(root: Path) -> Span:
    """The frames the project's edits cover (``--frames`` omitted); an edit of every frame: all."""
    everything = [e for e in read_edits(root) if e.frames is None and e.at is None]
    if everything:
        return Span(0, 10**9)
    edits = [e for e in read_edits(root) if e.frames is not None or e.at is not None]
    if not edits:
        raise OpenKinError("no --frames given and no edit with frames", path=edits_path(root),
                           fix="give the range: openkin recompute PROJECT --frames A-B")
    lo = min(e.frames[0] if e.frames else e.at for e in edits)
    hi = max(e.frames[1] if e.frames else e.at for e in edits)
    return Span(lo, hi)


# ============================================================================ command line
def add_arguments(parser) -> None:
    parser.add_argument("project", help="trial folder (processed once in full)")
    parser.add_argument("--frames", metavar="A-B", help="inclusive output frame range (default: the edits' frames)")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override a config value, TOML syntax (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def main(args) -> int:
    import json
    import sys

    from ..cli import _parse_set
    from ..edits import parse_frames

    frames = parse_frames(args.frames) if args.frames else None
    t0 = time.perf_counter()
    result = recompute(args.project, frames, overrides=_parse_set(args.set))
    result["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
        return 0
    sys.stdout.write(f"recomputed frames {result['frames'][0]}-{result['frames'][1]} in {result['seconds']:.2f} s\n")
    for name, r in result["stages"].items():
        files = ", ".join(f"{k} {v[0]}-{v[1]}" for k, v in r["frames"].items()) or "nothing to change"
        sys.stdout.write(f"  {name:14s} {r['seconds']:6.2f} s  {'FULL ' if r['full'] else ''}{files}\n")
    return 0

"""Kinematics stage: automatic OpenSim scaling and inverse kinematics.

For each person's current TRC as the run manifest records it (augmentation's when
``use_augmentation``, else filtering's, else triangulation's — Pose2Sim's choice; in a
project without records, the files of ``pose-3d/`` chosen the same way), this stage writes
to ``kinematics/``:

- ``<trc stem>.osim`` — the model scaled to the person (no static trial needed,
  see :mod:`openkin.kinematics.scaling`);
- ``<trc stem>.mot`` — joint angles (degrees) and pelvis translations (m);
- ``<trc stem>_marker_errors.csv`` — per-frame RMS and largest marker error (m);
- ``<trc stem>_kinematics.toml`` — height, mass, scale factors, error summary, timings.

With 6-DoF trackers declared (``[kinematics] trackers``, :mod:`openkin.kinematics.trackers`),
the IK fuses them with the markers (frames the cameras lost are kept and solved from the
trackers) and ``kinematics/trackers/<trc stem>_cameras_only.mot`` and ``_trackers_only.mot``
are written beside the fused result for comparison (``openkin evaluate``).

Data problems (units, missing markers, names the model does not know, a model
that does not load) are reported by :mod:`openkin.kinematics.checks` before
OpenSim runs.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_path, atomic_write, toml_dumps
from ..progress import Progress, report
from . import checks, chunked
from .. import measure
from .ik import IkJob, IkResult, n_workers, solve_all
from .scaling import estimate_factors, register_markers, scaled_model
from .setup import (FULL_MODEL, SIMPLE_MODEL, CoordinateTask, IkTasks, load_model, model_body_names,
                    model_marker_names, read_ik_tasks, read_measurements, setup_files)

log = logging.getLogger(__name__)

__all__ = ["KinematicsOptions", "Prepared", "prepare", "run", "run_trials", "run_stage", "select_trc_files"]


@dataclass(frozen=True)
class KinematicsOptions:
    """Settings of one run (from ``[kinematics]`` and ``[project]``, or given directly).

    ``marker_set``: HALPE_26, COCO_17, BLAZEPOSE or LSTM; ``osim_model``: a user model
    (.osim, its own markers unless it has none) instead of Pose2Sim's; ``filter``:
    (method, params) for :func:`openkin.filtering.filter_array`, or None.
    """

    marker_set: str = "HALPE_26"
    use_simple_model: bool = False
    osim_model: str = ""
    right_left_symmetry: bool = True
    large_hip_knee_angles: float = 90.0
    trimmed_extrema_percent: float = 50.0
    refine_scaling: bool = True
    mass: float = 70.0
    missing_markers: str = "interpolate"
    interp_gap_max: int = 10
    workers: object = "auto"
    filter: tuple[str, dict] | None = None
    ik_solver: str = "openkin"  # why it is the default: openkin.kinematics.ik's module doc
    trackers: dict = field(default_factory=dict)         # 6-DoF trackers: sensor -> body (kinematics.trackers)
    tracker_weights: dict = field(default_factory=dict)  # sensor -> weight
    trackers_dir: str = ""                                # the project's trackers/ folder


@dataclass
class Prepared:
    """A trial checked, scaled and ready for IK."""

    trc_path: Path
    out_stem: Path
    job: IkJob
    frame_numbers: np.ndarray
    rate: float
    summary: dict
    complete: np.ndarray | None = None  # (F,) frames of the job with every marker (with trackers, others are kept)


KEYPOINT_SETS = ("HALPE_26", "COCO_17", "BLAZEPOSE")
# Weak pulls toward the model's default for rotations the markers barely see: humeral axial rotation
# with a nearly straight elbow, forearm pronation with one wrist keypoint, the toes' flexion (the toe
# keypoints sit close to the mtp axis). They only act where the data cannot decide; without them the
# solver lets these spin into far local minima on noisy data, dragging the neighbours along. Judged on
# the real recorded motions as well as the generated ones (tests/bench/bench_ik_solver.py, realistic
# markers, full model, MPJAE of OpenKin's solver):
#   arm_rot weight   0: real run 5.22, generated 6.74 (shoulder rotation RMSE 13.5 / 44 deg)
#                 1e-4: 5.10 / 4.45      3e-4: 5.06 / 4.30 (chosen)      1e-3: 5.30 / 4.21
#   (1e-3 was tuned on generated motions, whose shoulder rotation sits at the prior's value; on the real
#   run, whose humerus rotates 0-29 deg, it pulls the arm away: 3e-4 is best there and near-best on both)
#   mtp 1e-3 (new): real run 5.36 -> 5.30 (ankle RMSE 9.6 -> 8.6), generated 4.50 -> 4.21 (toe flexion
#   RMSE 27.7 -> 3.4, ankle 7.9 -> 4.5): without it the toes fit the noise and the ankle follows.
# Same kind as Pose2Sim's lumbar task (weight 0.1).
WEAK_PRIORS = (("arm_rot_r", 3e-4), ("arm_rot_l", 3e-4), ("pro_sup_r", 1e-3), ("pro_sup_l", 1e-3),
               ("mtp_angle_r", 1e-3), ("mtp_angle_l", 1e-3))


def with_priors(tasks: IkTasks) -> IkTasks:
    """``tasks`` plus :data:`WEAK_PRIORS` for coordinates it does not already constrain."""
    have = {t.name for t in tasks.coordinate_tasks}
    extra = tuple(CoordinateTask(n, w, None) for n, w in WEAK_PRIORS if n not in have)
    return IkTasks(tasks.marker_weights, tasks.coordinate_tasks + extra)


@dataclass
class _Setup:
    """Models and tasks of one trial. ``model``: the target (markers attached); ``smodel``: the
    model the scaling passes pose (Pose2Sim's simple model for its full one: same bodies, 10×
    faster IK); ``scale_tasks``/``measurements``: keypoint markers used for scaling;
    ``register``: augmented markers placed on the scaled model from keypoint-IK poses."""

    path: Path
    model: object
    state: object
    tasks: IkTasks
    scale_tasks: IkTasks
    measurements: list
    smodel: object
    sstate: object
    register: list


def _keypoint_set(trc_names: list[str]) -> str:
    """The keypoint set whose OpenSim markers best match the TRC's names (for augmented TRCs,
    which keep the keypoints they were made from)."""
    best, score = "HALPE_26", -1
    for name in KEYPOINT_SETS:
        n = len(set(_marker_file_names(setup_files(name)[0])) & set(trc_names))
        if n > score:
            best, score = name, n
    return best


def _marker_file_names(marker_file: Path) -> list[str]:
    from .setup import import_opensim
    ms = import_opensim().MarkerSet(str(marker_file))
    return [ms.get(i).getName() for i in range(ms.getSize())]


def _merge_markers(model, marker_file: Path):
    """Add (or replace) the markers of ``marker_file`` in ``model``; returns the new state."""
    from .setup import import_opensim
    osim = import_opensim()
    extra = osim.MarkerSet(str(marker_file))
    ms = model.updMarkerSet()
    for i in range(extra.getSize()):
        mk = extra.get(i)
        if ms.contains(mk.getName()):
            ms.remove(ms.getIndex(mk.getName()))
        model.addMarker(mk.clone())
    return model.initSystem()


def _load_setup(opts: KinematicsOptions, trc_names: list[str]) -> _Setup:
    """Models, markers, IK tasks and scaling measurements for one trial."""
    from ..assets import asset_path

    augmented = opts.marker_set.upper() == "LSTM"
    kp_set = _keypoint_set(trc_names) if augmented else opts.marker_set
    kp_markers, kp_ik, kp_scale = setup_files(kp_set)
    kp_tasks, measurements = read_ik_tasks(kp_ik), read_measurements(kp_scale)
    tasks = kp_tasks
    if augmented:
        lstm_markers, lstm_ik, _ = setup_files("LSTM")
        lstm_tasks = read_ik_tasks(lstm_ik)
        tasks = IkTasks({**lstm_tasks.marker_weights, **kp_tasks.marker_weights}, lstm_tasks.coordinate_tasks)
    path = Path(opts.osim_model).expanduser() if opts.osim_model else \
        asset_path(SIMPLE_MODEL if opts.use_simple_model else FULL_MODEL)
    model, state = load_model(path, None if opts.osim_model else (lstm_markers if augmented else kp_markers))
    if opts.osim_model and not model_marker_names(model):
        model, state = load_model(path, lstm_markers if augmented else kp_markers)
    if opts.osim_model:
        tasks = IkTasks({m: tasks.marker_weights.get(m, 1.0) for m in model_marker_names(model)},
                        tasks.coordinate_tasks)
    register = []
    if augmented:
        state = _merge_markers(model, kp_markers)
        kp_names = set(_marker_file_names(kp_markers))
        register = [m for m in model_marker_names(model) if m in trc_names and m not in kp_names]
    smodel, sstate = model, state
    if not opts.osim_model and not opts.use_simple_model:
        smodel, sstate = load_model(asset_path(SIMPLE_MODEL), kp_markers)
    return _Setup(path, model, state, with_priors(tasks), with_priors(kp_tasks), measurements, smodel, sstate,
                  register)


def prepare(trc_path: Path, out_dir: Path, opts: KinematicsOptions, height: float | None = None,
            name: str | None = None) -> Prepared:
    """Check a TRC, scale the model to it, write ``<stem>.osim``; returns the IK job."""
    from ..formats.trc import read_trc

    t0 = time.perf_counter()
    trc = read_trc(trc_path)
    checks.check_units(trc.xyz, trc_path)
    st = _load_setup(opts, trc.marker_names)
    used = checks.match_markers(trc.marker_names, model_marker_names(st.model), st.tasks.marker_weights, trc_path,
                                st.path.name)
    xyz, keep, never = checks.handle_missing(trc.xyz[:, [trc.marker_names.index(m) for m in used]], used,
                                             trc.frame_numbers, opts.missing_markers, opts.interp_gap_max, trc_path)
    kept_cols = [i for i, m in enumerate(used) if m not in never]
    used = [used[i] for i in kept_cols]
    xyz_all, xyz, times = xyz, xyz[keep][:, kept_cols], trc.times[keep]
    factors, details = estimate_factors(
        xyz, times, used, st.smodel, st.sstate, st.measurements, st.scale_tasks, symmetric=opts.right_left_symmetry,
        trimmed_extrema_percent=opts.trimmed_extrema_percent, large_hip_knee_angles=opts.large_hip_knee_angles,
        refine=2 if opts.refine_scaling else 0, target=None if st.smodel is st.model else (st.model, st.state),
        solver=opts.ik_solver)
    median = float(np.median(list(factors.values())))
    scaled, sstate = scaled_model(st.model, st.state, {b: factors.get(b, median) for b in model_body_names(st.model)},
                                  opts.mass)
    moved = register_markers(scaled, sstate, [m for m in st.register if m in used], st.scale_tasks, used, xyz,
                             times, opts.large_hip_knee_angles, opts.ik_solver
                             ) if st.register and opts.refine_scaling else {}
    stem = out_dir / (name or trc_path.stem)
    osim_path = stem.with_suffix(".osim")
    with atomic_path(osim_path) as tmp:
        scaled.printToXML(str(tmp))
    if height is None:
        height = measure.participant_height(xyz, used, opts.large_hip_knee_angles, opts.trimmed_extrema_percent)
    summary = {"trc": str(trc_path), "model": str(st.path), "scaled_model": str(osim_path),
               "markers": used, "frames": int(keep.sum()), "frames_dropped": int((~keep).sum()),
               "height_m": float(height), "mass_kg": float(opts.mass),
               "scale_factors": {b: round(f, 5) for b, f in sorted(factors.items())},
               "markers_registered_mm": {m: round(1e3 * d, 1) for m, d in moved.items()},
               "scaling_frames": details["frames_used"], "scaling_seconds": time.perf_counter() - t0}
    ik_frames = keep
    if opts.trackers and opts.ik_solver == "openkin":  # frames the cameras lost are solved from the trackers
        ik_frames = np.ones(len(keep), bool)
        xyz, times = xyz_all[:, kept_cols], trc.times
        summary["frames_without_all_markers"] = int((~keep).sum())
    job = IkJob(str(osim_path), used, xyz, times, st.tasks.marker_weights, st.tasks.coordinate_tasks,
                trackers=_trackers(opts, times, scaled))
    return Prepared(trc_path, stem, job, trc.frame_numbers[ik_frames], trc.rate, summary, keep[ik_frames])


def _trackers(opts: KinematicsOptions, times: np.ndarray, model):
    """The declared 6-DoF trackers' targets on the IK frames, or None (:mod:`.trackers`)."""
    if not opts.trackers:
        return None
    from .setup import model_body_names
    from .trackers import load_targets

    return load_targets(Path(opts.trackers_dir), dict(opts.trackers), dict(opts.tracker_weights), times,
                        model_body_names(model))


def tracker_variants(prep: Prepared) -> dict[str, IkJob]:
    """The IK jobs of a trial with trackers solved from the cameras only (the frames with every marker,
    as without trackers) and from the trackers only (every frame, markers all missing)."""
    job = prep.job
    complete = np.ones(len(job.times), bool) if prep.complete is None else prep.complete
    return {"cameras_only": replace(job, xyz=job.xyz[complete], times=job.times[complete], trackers=None),
            "trackers_only": replace(job, xyz=np.full_like(job.xyz, np.nan))}


def write_tracker_variants(prepared: list[Prepared], opts: KinematicsOptions) -> list[Path]:
    """For trials with trackers, IK from the cameras only and from the trackers only (markers all
    missing), written beside the fused result as ``kinematics/trackers/<stem>_cameras_only.mot`` and
    ``<stem>_trackers_only.mot`` (``openkin evaluate`` compares the three). Each trial's summary
    lists them (``tracker_variants``, paths relative to the .mot's folder) so that the stage
    records them as this run's outputs (:func:`_record`): an earlier run's are never taken for new."""
    from ..formats.mot import write_mot

    out = []
    for prep in prepared:
        job = prep.job
        if job.trackers is None:
            continue
        variants = tracker_variants(prep)
        results = solve_all(list(variants.values()), 1, None, "openkin")
        folder = prep.out_stem.parent / "trackers"
        folder.mkdir(exist_ok=True)
        for (label, vjob), res in zip(variants.items(), results):
            path = folder / f"{prep.out_stem.name}_{label}.mot"
            write_mot(path, angles_motion(res, vjob.times, opts.filter, prep.rate))
            prep.summary.setdefault("tracker_variants", {})[label] = str(path.relative_to(prep.out_stem.parent))
            out.append(path)
    return out


def angles_motion(result: IkResult, times: np.ndarray, flt: tuple[str, dict] | None, rate: float):
    """IK result -> Motion (rotations in degrees), optionally filtered."""
    from ..formats.mot import Motion

    values = result.q.copy()
    rot = np.array(result.rotational)
    values[:, rot] = np.degrees(values[:, rot])
    if flt is not None:
        from ..filtering import filter_array
        values = filter_array(values, rate, flt[0], **flt[1])
    return Motion(result.coordinate_names, times, values, in_degrees=True)


def write_outputs(prep: Prepared, result: IkResult, flt: tuple[str, dict] | None) -> None:
    """Write ``.mot``, marker-error CSV and summary TOML of one trial."""

    from ..formats.mot import write_mot

    write_mot(prep.out_stem.with_suffix(".mot"), angles_motion(result, prep.job.times, flt, prep.rate))
    with atomic_write(prep.out_stem.parent / f"{prep.out_stem.name}_marker_errors.csv") as f:
        f.write("frame,time,rms_m,max_m\n")
        for fr, t, r, m in zip(prep.frame_numbers, prep.job.times, result.rms, result.max_error):
            f.write(f"{fr},{t:.6f},{r:.6f},{m:.6f}\n")
    summary = dict(prep.summary)
    summary.update({"marker_rms_mean_m": float(np.nanmean(result.rms)),
                    "marker_rms_max_m": float(np.nanmax(result.rms)),
                    "marker_error_max_m": float(np.nanmax(result.max_error)),
                    "ik_solver_seconds": result.solver_seconds, "ik_cpu_seconds": result.cpu_seconds,
                    "filtered": flt is not None})
    with atomic_write(prep.out_stem.parent / f"{prep.out_stem.name}_kinematics.toml") as f:
        f.write(toml_dumps(summary))
    log.info("%s: %d frames, marker RMS %.1f mm (max %.1f mm) -> %s", prep.trc_path.name, len(result.rms),
             1e3 * summary["marker_rms_mean_m"], 1e3 * summary["marker_error_max_m"],
             prep.out_stem.with_suffix(".mot"))


def run_trials(trc_paths: list[Path], out_dir: Path, opts: KinematicsOptions,
               heights: list[float | None] | None = None, progress: Progress | None = None) -> list[Path]:
    """Scale + IK for each TRC (one per person); returns the .mot paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    heights = heights or [None] * len(trc_paths)
    prepared = []
    for i, path in enumerate(trc_paths):
        report(progress, 0.3 * i / len(trc_paths), f"scaling {path.name}")
        if i == 1 and opts.trackers:
            log.warning("the 6-DoF trackers are applied to the first person only")
        prepared.append(prepare(Path(path), out_dir, opts if i == 0 else replace(opts, trackers={}), heights[i]))
    report(progress, 0.3, "inverse kinematics")
    done = []

    def on_done(i):
        done.append(i)
        report(progress, 0.3 + 0.65 * len(done) / len(prepared), f"IK {prepared[i].trc_path.name}")

    results = solve_all([p.job for p in prepared], opts.workers, on_done, opts.ik_solver)
    if opts.trackers and opts.ik_solver == "openkin":
        write_tracker_variants(prepared, opts)  # before write_outputs: their names go into the summary
    for prep, res in zip(prepared, results):
        prep.summary["ik_workers"] = n_workers(opts.workers, 2 * len(prepared))
        if prep.job.trackers is not None:
            prep.summary["trackers"] = dict(zip(prep.job.trackers.sensors, prep.job.trackers.bodies))
        write_outputs(prep, res, opts.filter)
    report(progress, 1.0, "kinematics done")
    return [p.out_stem.with_suffix(".mot") for p in prepared]


def select_trc_files(pose_3d: Path, use_augmentation: bool) -> tuple[list[Path], bool]:
    """TRC files to process, as Pose2Sim picks them, and whether they are augmented."""
    trcs = sorted(pose_3d.glob("*.trc"))
    if use_augmentation:
        lstm = [f for f in trcs if "_LSTM" in f.name]
        if lstm:
            return lstm, True
        log.warning("no _LSTM.trc files in %s: using the non-augmented ones", pose_3d)
    plain = [f for f in trcs if "_LSTM" not in f.name and "_scaling" not in f.name]
    filt = [f for f in plain if "_filt" in f.name]
    if not (filt or plain):
        raise OpenKinError("no .trc file to process", path=pose_3d,
                           fix="run the triangulation (and filtering) stages first, or put a TRC in pose-3d/")
    return filt or plain, False


def _custom_marker_set(config) -> str:
    """OpenSim marker set for a custom ``[[pose.<NAME>]]`` skeleton (matched by keypoint names)."""
    from .setup import marker_set_for

    name = config.pose.pose_model
    if name not in config.pose.custom_skeletons or config.kinematics.osim_model:
        return name.upper()
    return marker_set_for(config.pose.custom_skeleton(name).names)


def options_from_config(config, augmented: bool, person: int = 0) -> KinematicsOptions:
    """KinematicsOptions from a loaded Config."""
    from ..skeletons import POSE_MODEL_SKELETON

    k = config.kinematics
    if augmented:
        marker_set = "LSTM"
    else:
        pm = config.pose.pose_model.upper()
        marker_set = POSE_MODEL_SKELETON.get(pm) or _custom_marker_set(config)
    mass = config.project.participant_mass
    if isinstance(mass, tuple):
        mass = mass[person] if person < len(mass) else 70.0
    flt = None
    if k.filter_ik:
        import dataclasses
        from ..filtering import filter_params
        section = getattr(config.filtering, k.ik_filter_type.lower(), None)
        params = dataclasses.asdict(section) if section is not None else {}
        flt = (k.ik_filter_type, {p: v for p, v in params.items() if p in filter_params(k.ik_filter_type)})
    extra = {key: getattr(k, key) for key in ("osim_model", "missing_markers", "interp_gap_max", "refine_scaling",
                                              "ik_solver", "trackers", "tracker_weights")
             if hasattr(k, key)}
    return KinematicsOptions(marker_set=marker_set, use_simple_model=k.use_simple_model,
                             right_left_symmetry=k.right_left_symmetry, large_hip_knee_angles=k.large_hip_knee_angles,
                             trimmed_extrema_percent=k.trimmed_extrema_percent, mass=float(mass or 70.0),
                             workers=k.parallel_workers_kinematics, filter=flt, **extra)


def _inputs(ctx) -> tuple[list[tuple[Path, str]], bool]:
    """(TRC, producing stage) per person and whether they are augmented (see module doc)."""
    use_aug = ctx.config.kinematics.use_augmentation
    stages = ("augmentation", "filtering", "triangulation") if use_aug else ("filtering", "triangulation")
    found = ctx.current_files(stages, "trc")
    if found is None:
        log.info("no run record of %s: choosing the TRC files of %s", ", ".join(stages), ctx.paths.pose_3d.name)
        trcs, augmented = select_trc_files(ctx.paths.pose_3d, use_aug)
        return [(p, "") for p in trcs], augmented
    if not found[0]:
        raise OpenKinError("no current .trc file to process", path=ctx.paths.pose_3d,
                           fix="run the triangulation (filtering, augmentation) stages first")
    if use_aug and found[1] != "augmentation":
        log.warning("no current augmented TRC: using %s's files", found[1])
    return [(p, found[1]) for p in found[0]], found[1] == "augmentation"


def run(ctx) -> None:
    """The kinematics stage on one trial folder (``ctx``: :class:`openkin.context.RunContext`)."""
    from .opensim_log import redirect_opensim_log

    config, paths, progress = ctx.config, ctx.paths, ctx.progress
    redirect_opensim_log(paths.logs)  # never an opensim.log in the user's current folder
    inputs, augmented = _inputs(ctx)
    trcs = [ctx.read(p, producer) for p, producer in inputs]
    opts = [replace(options_from_config(config, augmented, i), trackers_dir=str(paths.root / "trackers"))
            for i in range(len(trcs))]
    if len({o.mass for o in opts}) == 1:
        mots = run_trials(trcs, paths.kinematics, opts[0], progress=progress)
    else:
        mots = []
        for i, (trc, o) in enumerate(zip(trcs, opts)):  # different masses: one run per person
            mots += run_trials([trc], paths.kinematics, o, progress=None)
            report(progress, (i + 1) / len(trcs), f"kinematics {trc.name}")
    _record(ctx, mots)


def _record(ctx, mots: list[Path]) -> None:
    """Outputs and per-trial summaries of the kinematics stage into the run context."""
    from ..fileio import read_optional_toml

    ctx.summary["trials"] = []
    for person, mot in enumerate(mots):
        stem = mot.with_suffix("")
        ctx.wrote(mot, "mot", person=person)
        ctx.wrote(stem.with_suffix(".osim"), "osim", person=person)
        ctx.wrote(stem.parent / f"{stem.name}_marker_errors.csv", "marker_errors", person=person)
        info = stem.parent / f"{stem.name}_kinematics.toml"
        ctx.wrote(info, "summary", person=person)
        summary = read_optional_toml(info)
        for label, rel in summary.get("tracker_variants", {}).items():  # written by this run (write_tracker_variants)
            ctx.wrote(stem.parent / rel, f"{label}_mot", person=person)
        summary.pop("markers", None)
        ctx.summary["trials"].append({"mot": mot.name, **summary})


def run_stage(config, paths, progress: Progress | None = None) -> None:
    """The stage run by itself (recorded in the run manifest like a stage of ``openkin run``)."""
    from ..context import run_alone

    run_alone("kinematics", run, config, paths, progress)


def solve_window(trc, osim_path: Path, opts: KinematicsOptions, markers: list[str], keep_from: int = 0):
    """IK of some frames of a trial already scaled (``openkin recompute``): ``trc`` (a
    :class:`~openkin.formats.trc.Trc` of those frames, plus ``keep_from`` leading frames that only
    warm the solver up), the scaled model ``osim_path``, the ``markers`` the full run used → (kept
    frame numbers ``(n,)``, times ``(n,)``, :class:`IkResult`). Same tasks, missing-marker policy
    and solver (``opts.ik_solver``) as :func:`prepare` + :func:`run_trials`; the scaling is not redone."""
    tasks = _window_tasks(opts, trc.marker_names)
    used = [m for m in markers if m in trc.marker_names]
    xyz, keep, never = checks.handle_missing(trc.xyz[:, [trc.marker_names.index(m) for m in used]], used,
                                             trc.frame_numbers, opts.missing_markers, opts.interp_gap_max)
    cols = [i for i, m in enumerate(used) if m not in never]
    job = IkJob(str(osim_path), [used[i] for i in cols], xyz[keep][:, cols], trc.times[keep],
                tasks.marker_weights, tasks.coordinate_tasks)
    r = solve_all([job], 1, None, opts.ik_solver)[0]
    k = int(keep[:keep_from].sum())  # warm-up frames solved, then dropped
    r = chunked.keep_from(r, k)
    return trc.frame_numbers[keep][k:], trc.times[keep][k:], r


def _window_tasks(opts: KinematicsOptions, trc_names: list[str]) -> IkTasks:
    """The IK tasks :func:`_load_setup` gives, without loading the models it needs for scaling
    (seconds): read from the setup files; a user's model (``osim_model``) takes the full path."""
    if opts.osim_model:
        return _load_setup(opts, trc_names).tasks
    augmented = opts.marker_set.upper() == "LSTM"
    kp_tasks = read_ik_tasks(setup_files(_keypoint_set(trc_names) if augmented else opts.marker_set)[1])
    if not augmented:
        return with_priors(kp_tasks)
    lstm_tasks = read_ik_tasks(setup_files("LSTM")[1])
    return with_priors(IkTasks({**lstm_tasks.marker_weights, **kp_tasks.marker_weights}, lstm_tasks.coordinate_tasks))

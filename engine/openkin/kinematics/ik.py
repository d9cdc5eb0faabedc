"""Inverse kinematics through OpenSim's solver API, in time chunks across processes.

OpenSim's ``InverseKinematicsTool`` reads a setup XML, a TRC and writes a .mot;
here the marker table is built in memory and ``InverseKinematicsSolver`` is
driven frame by frame (``assemble`` once, then ``track``, which warm-starts from
the previous frame, as the tool does). For speed, a trial is cut into contiguous
time chunks solved by separate processes (one OpenSim model each); every chunk
but the first starts a few frames early (``WARMUP``) so its first kept frame is
already warm-started, and those frames are discarded. Results are the same
solver's, frame for frame, within its accuracy.

``[kinematics] ik_solver = 'openkin'`` (the default) solves instead with OpenKin's
batch solver (:mod:`openkin.kinematics.solver` on :mod:`openkin.kinematics.model_tree`):
every frame at once with numpy, the same objective, one process; a model it cannot
represent is solved here by OpenSim, with a warning naming the element. Scaling's
IK checks pose the model with the same solver (:func:`poser`).

Why it is the default (tests/bench/bench_ik_solver.py, full model, generated and
real recorded motions, clean and realistic markers, both solvers on the same TRC):
the goals that matter hold — speed >= 20x OpenSim's solver (CPU, one thread), marker
RMS <= OpenSim's + 0.5 mm (it is lower on every scene), accuracy against the truth
no worse than OpenSim's on the coordinates the markers determine (tests/engine/
test_ik_real_motions.py). Where the two disagree by more than 0.5 deg on clean
markers, it is on coordinates the keypoints barely see (toes, wrist deviation,
neck, subtalar) or ones where OpenKin's solution is the closer to the truth (the
ankles): there the truth is the goal, not OpenSim's answer, which depends on its
warm start.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np

from .setup import CoordinateTask, coordinate_info, elbow_observability, import_opensim, load_model

log = logging.getLogger(__name__)

WARMUP = 8          # frames solved before a chunk's first kept frame, then discarded
MIN_CHUNK = 60      # frames: shorter trials are not split
ACCURACY = 1e-5     # as Pose2Sim's IK setup files
CONSTRAINT_WEIGHT = float("inf")


@dataclass
class IkJob:
    """One chunk of one trial. ``xyz``: (F, M, 3) metres in the model's ground frame;
    ``times``: (F,); ``keep_from``: index of the first frame whose result is kept."""

    model_path: str
    marker_names: list[str]
    xyz: np.ndarray
    times: np.ndarray
    weights: dict[str, float]
    coordinate_tasks: tuple[CoordinateTask, ...] = ()
    keep_from: int = 0
    accuracy: float = ACCURACY
    trackers: object = None  # openkin.kinematics.trackers.TrackerTargets on these frames (OpenKin's solver only)


@dataclass
class IkResult:
    """``q``: (F, C) radians/metres in model coordinate order; ``rms``/``max_error``: (F,) metres;
    ``solver_seconds``: time inside assemble/track only."""

    coordinate_names: list[str]
    rotational: list[bool]
    q: np.ndarray
    rms: np.ndarray
    max_error: np.ndarray
    solver_seconds: float = 0.0
    load_seconds: float = 0.0
    cpu_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _marker_table(osim, names: list[str], xyz: np.ndarray, times: np.ndarray):
    """OpenSim TimeSeriesTableVec3 from (F, M, 3)."""
    table = osim.TimeSeriesTableVec3()
    table.setColumnLabels(names)
    for f in range(len(times)):
        row = osim.RowVectorVec3(len(names))
        for m in range(len(names)):
            x, y, z = xyz[f, m]
            row[m] = osim.Vec3(float(x), float(y), float(z))
        table.appendRow(float(times[f]), row)
    return table


def make_solver(osim, model, job: IkJob):
    """An InverseKinematicsSolver on ``model`` for the markers and tasks of ``job``."""
    table = _marker_table(osim, job.marker_names, job.xyz, job.times)
    weights = osim.SetMarkerWeights()
    for name in job.marker_names:
        weights.cloneAndAppend(osim.MarkerWeight(name, float(job.weights.get(name, 1.0))))
    markers = osim.MarkersReference(table, weights)
    coords = osim.SimTKArrayCoordinateReference()
    cset = model.getCoordinateSet()
    for task in job.coordinate_tasks:
        if not cset.contains(task.name) or task.weight <= 0:
            continue
        value = cset.get(task.name).getDefaultValue() if task.value is None else task.value
        ref = osim.CoordinateReference(task.name, osim.Constant(float(value)))
        ref.setWeight(float(task.weight))
        coords.push_back(ref)
    solver = osim.InverseKinematicsSolver(model, markers, coords, CONSTRAINT_WEIGHT)
    solver.setAccuracy(job.accuracy)
    return solver


def solve(job: IkJob, model=None, state=None) -> IkResult:
    """Solve one chunk: assemble at its first frame, track the rest. Loads the model from
    ``job.model_path`` unless ``model``/``state`` are given."""
    osim = import_opensim()
    t0, c0 = time.perf_counter(), time.process_time()
    if model is None:
        model, state = load_model(job.model_path)
    names, rotational = coordinate_info(model)
    cset = model.getCoordinateSet()
    coords = [cset.get(i) for i in range(cset.getSize())]
    solver = make_solver(osim, model, job)
    load_seconds = time.perf_counter() - t0
    n = len(job.times)
    q = np.empty((n, len(coords)))
    rms, worst = np.empty(n), np.empty(n)
    errors = osim.SimTKArrayDouble()
    solver_seconds = 0.0
    for f in range(n):
        state.setTime(float(job.times[f]))
        t1 = time.perf_counter()
        if f == 0:
            solver.assemble(state)
        else:
            solver.track(state)
        solver_seconds += time.perf_counter() - t1
        q[f] = [c.getValue(state) for c in coords]
        solver.computeCurrentMarkerErrors(errors)
        e = np.array([errors.getElt(i) for i in range(errors.size())])
        rms[f] = np.sqrt(np.mean(e ** 2)) if e.size else np.nan
        worst[f] = e.max() if e.size else np.nan
    k = job.keep_from
    return IkResult(names, rotational, q[k:], rms[k:], worst[k:], solver_seconds, load_seconds,
                    time.process_time() - c0)


def split_jobs(job: IkJob, n_chunks: int) -> list[IkJob]:
    """Cut a trial's job into ``n_chunks`` contiguous chunks (each but the first with
    ``WARMUP`` extra leading frames)."""
    n = len(job.times)
    n_chunks = max(1, min(n_chunks, n // MIN_CHUNK))
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)
    jobs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        start = max(0, a - WARMUP)
        jobs.append(IkJob(job.model_path, job.marker_names, job.xyz[start:b], job.times[start:b], job.weights,
                          job.coordinate_tasks, a - start, job.accuracy))
    return jobs


def merge(results: list[IkResult]) -> IkResult:
    """Concatenate chunk results in time order."""
    first = results[0]
    return IkResult(first.coordinate_names, first.rotational,
                    np.concatenate([r.q for r in results]), np.concatenate([r.rms for r in results]),
                    np.concatenate([r.max_error for r in results]),
                    sum(r.solver_seconds for r in results), max(r.load_seconds for r in results),
                    sum(r.cpu_seconds for r in results))


def _worker_init() -> None:
    from .opensim_log import follow_parent_log

    import_opensim()
    follow_parent_log()


def n_workers(setting, n_tasks: int) -> int:
    """Worker processes from Pose2Sim's ``parallel_workers_kinematics`` ('auto', int, false)."""
    if setting is False or setting in (0, 1) or n_tasks <= 1:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    wanted = cpus if setting in ("auto", True) else int(setting)
    return max(1, min(wanted, cpus, n_tasks))


def _single_threaded() -> bool:
    """True when this process has one OS thread (Linux /proc); False when unknown."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _context():
    """fork when this process is single-threaded (workers inherit OpenSim, already imported: the
    cheapest start); else forkserver — a clean single-threaded server that has imported OpenSim
    once (onnxruntime starts native threads, and fork() of a threaded process can deadlock);
    spawn where neither exists."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and _single_threaded():
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["opensim", "openkin.kinematics.ik"])
    return ctx


def solve_all(jobs: list[IkJob], workers, on_done=None, solver: str = "opensim") -> list[IkResult]:
    """Solve trials (one job each): with ``solver`` 'openkin', OpenKin's batch solver, one trial at a time
    (OpenSim's for a model it cannot represent, with a warning); else OpenSim's, split in time chunks
    over ``workers`` processes. ``on_done(i_trial)`` is called as each trial completes. Returns one
    merged result per job."""
    if solver == "openkin":
        return _solve_all_openkin(jobs, workers, on_done)
    if any(j.trackers is not None for j in jobs):
        log.warning("OpenSim's marker IK does not use the 6-DoF trackers ([kinematics] trackers): solving from "
                    "the markers only; set ik_solver = 'openkin' to fuse them")
    cpus = n_workers(workers, 2 * len(jobs))
    chunks = [split_jobs(j, max(1, cpus // len(jobs)) if cpus > 1 else 1) for j in jobs]
    flat = [(i, c) for i, cs in enumerate(chunks) for c in cs]
    if cpus <= 1 or len(flat) == 1:
        out = []
        for i, cs in enumerate(chunks):
            out.append(merge([solve(c) for c in cs]))
            if on_done:
                on_done(i)
        return out
    try:
        return _solve_pool(jobs, chunks, flat, cpus, on_done)
    except BrokenProcessPool:  # e.g. an unguarded __main__ re-run by the worker start-up
        log.warning("IK worker processes failed to start: solving in this process instead "
                    "(guard your script's top level with `if __name__ == '__main__':`)")
        return [merge([solve(c) for c in cs]) for cs in chunks]


def _solve_pool(jobs, chunks, flat, cpus, on_done) -> list[IkResult]:
    ctx = _context()
    with ProcessPoolExecutor(max_workers=min(cpus, len(flat)), mp_context=ctx, initializer=_worker_init) as pool:
        futures = [pool.submit(solve, c) for _, c in flat]
        results: dict[int, list[IkResult]] = {i: [] for i in range(len(jobs))}
        try:
            for (i, _), fut in zip(flat, futures):
                results[i].append(fut.result())
                if on_done and len(results[i]) == len(chunks[i]):
                    on_done(i)
        except BaseException:  # cancelled or failed: do not start the remaining chunks
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [merge(results[i]) for i in range(len(jobs))]


# ------------------------------------------------------------------ OpenKin's batch solver

SOLVERS = ("openkin", "opensim")


def problem(job: IkJob, model, state=None):
    """The :class:`openkin.kinematics.solver.Problem` of ``job`` on a loaded ``model``.
    Raises :class:`openkin.kinematics.model_tree.Unsupported` for a model the batch solver cannot represent."""
    from . import model_tree, solver

    tree = model_tree.read_tree(model)
    index = {n: i for i, n in enumerate(tree.marker_names)}
    missing = [m for m in job.marker_names if m not in index]
    if missing:
        raise model_tree.Unsupported(f"markers {missing} not in the model")
    cindex = {n: i for i, n in enumerate(tree.coord_names)}
    tasks = [(cindex[t.name], t.weight, tree.default[cindex[t.name]] if t.value is None else t.value)
             for t in job.coordinate_tasks if t.name in cindex and t.weight > 0]
    obs, trk = np.asarray(job.xyz, float), {}
    if job.trackers is not None:
        bindex = {b: i for i, b in enumerate(tree.bodies)}
        if job.trackers.R.shape[0] != len(job.times):  # a job cut in time must cut its trackers too (.frames)
            raise ValueError(f"tracker targets for {job.trackers.R.shape[0]} frames, job has {len(job.times)}")
        missing = [b for b in job.trackers.bodies if b not in bindex]
        if missing:
            raise model_tree.Unsupported(f"tracker bodies {missing} not in the model")
        obs = solver.pack_targets(obs, job.trackers.R, job.trackers.p)
        trk = dict(trk_body=np.array([bindex[b] for b in job.trackers.bodies], int),
                   trk_w=np.asarray(job.trackers.weights, float))
    return solver.Problem(tree, np.array([index[m] for m in job.marker_names], int), obs,
                          np.array([float(job.weights.get(m, 1.0)) for m in job.marker_names]),
                          np.array([t[0] for t in tasks], int), np.array([t[1] for t in tasks], float),
                          np.array([t[2] for t in tasks], float), task_scale=elbow_observability(
                              list(job.marker_names), [tree.coord_names[t[0]] for t in tasks]), **trk)


def solve_openkin(job: IkJob, model=None, smooth: float = 0.0, smooth_seconds: float = 0.033) -> IkResult:
    """Solve a whole trial with OpenKin's batch solver (one process, all frames at once).
    ``smooth`` > 0 adds temporal coupling (:func:`openkin.kinematics.solver.smooth_pass`: a pull of
    that weight toward the trajectory smoothed by a Gaussian of ``smooth_seconds``); 0 solves
    OpenSim's problem, frame by frame."""
    from . import model_tree, solver

    t0, c0 = time.perf_counter(), time.process_time()
    if model is None:
        model, _ = load_model(job.model_path)
    pb = problem(job, model)
    if smooth > 0 and len(job.times) > 2:
        pb.smooth = float(smooth)
        pb.sigma = smooth_seconds / float(np.median(np.diff(job.times)))
    load_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    x, _ = solver.solve_problem(pb)
    solver_seconds = time.perf_counter() - t1
    q, _ = model_tree.full_coordinates(pb.tree, x)
    rms, worst = solver.marker_errors(pb, x)
    k = job.keep_from
    return IkResult(pb.tree.coord_names, [bool(r) for r in pb.tree.rotational], q[k:], rms[k:], worst[k:],
                    solver_seconds, load_seconds, time.process_time() - c0,
                    {"solver": "openkin", "coupled": [pb.tree.coord_names[c] for c in pb.tree.dep]})


def _solve_all_openkin(jobs: list[IkJob], workers, on_done) -> list[IkResult]:
    from .chunked import solve as solve_chunked  # a long take in time chunks (Dask tasks on a cluster)
    from .model_tree import Unsupported

    out: list[IkResult | None] = [None] * len(jobs)
    fallback = []
    for i, job in enumerate(jobs):
        try:
            out[i] = solve_chunked(job, solve_openkin)
        except Unsupported as e:
            log.warning("%s: OpenKin's IK solver cannot represent %s; using OpenSim's solver",
                        os.path.basename(job.model_path), e)
            fallback.append(i)
            continue
        if on_done:
            on_done(i)
    if fallback:
        done = solve_all([jobs[i] for i in fallback], workers,
                         (lambda k: on_done(fallback[k])) if on_done else None, "opensim")
        for i, r in zip(fallback, done):
            out[i] = r
    return out  # type: ignore[return-value]


def poser(model, state, job: IkJob, solver: str = "openkin"):
    """``pose(k)``: puts ``state`` in the IK solution of frame ``k`` of ``job`` (called for k = 0, 1, ...
    in order) and realises its positions, for callers that then read the posed model (scaling's
    checks). 'openkin': all frames solved at once first, then each frame's coordinates set
    (OpenSim's solver for a model the batch solver cannot represent, with a warning); 'opensim':
    OpenSim's solver, assembled at frame 0 and tracked after."""
    if solver == "openkin":
        from .model_tree import Unsupported

        try:
            result = solve_openkin(job, model)
        except Unsupported as e:
            log.warning("%s: OpenKin's IK solver cannot represent %s; scaling's IK uses OpenSim's solver",
                        model.getName(), e)
        else:
            cset = model.getCoordinateSet()
            coords = [cset.get(n) for n in result.coordinate_names]
            free = [i for i, c in enumerate(coords) if not c.getDefaultLocked()]

            def pose(k: int) -> None:
                state.setTime(float(job.times[k]))
                for i in free:
                    coords[i].setValue(state, float(result.q[k, i]), False)
                model.realizePosition(state)
            return pose
    osim = import_opensim()
    tracker = make_solver(osim, model, job)

    def pose(k: int) -> None:
        state.setTime(float(job.times[k]))
        tracker.assemble(state) if k == 0 else tracker.track(state)
        model.realizePosition(state)
    return pose

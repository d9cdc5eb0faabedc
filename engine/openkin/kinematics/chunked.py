"""OpenKin's batch IK on a long take: overlapping time chunks, solved as tasks, stitched.

:func:`openkin.kinematics.solver.solve_problem` solves every frame of a trial at once, and
its cost and memory grow with the frames (the Jacobian is (F, 3M + T, n): ~50 MB per 1000
frames of the full-body model). A take longer than :data:`LONG_TAKE` frames is cut into
chunks of about :data:`CHUNK` kept frames (:func:`openkin.chunks.plan`), each solved with
:data:`OVERLAP` extra frames on both sides — the coarse pass, the interpolation between its
frames and the neighbour passes look at nearby frames, so a chunk's edges are solved with
context and thrown away. Chunks start on the coarse pass's grid (multiples of
:data:`openkin.kinematics.solver.STRIDE` from the take's first frame), so a chunk's coarse
frames are the whole take's and every kept frame starts from the same interpolation (the
solver's frames are otherwise independent systems): the chunked solution equals the
whole-take solve to the bit on tests/engine/test_chunks.py's take, within 2e-15 rad on
tests/bench/bench_chunks.py's 6000 frames, for about the same CPU time. Unbounded rotations
(the root's heading) are made continuous across the seams: each chunk puts its first frame
within half a turn of the default pose, so a chunk after the subject turned round is
shifted by whole turns to match the one before.

The chunks are the algorithm's: ``openkin run`` solves them one after the other, ``--workers``
or a batch on a cluster as Dask tasks (:func:`openkin.chunks.run_tasks`), with the same
result to the byte. A take of :data:`LONG_TAKE` frames or fewer is solved whole, as before.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from typing import Callable

import numpy as np

from .. import chunks
from .setup import load_model
from .solver import STRIDE

log = logging.getLogger(__name__)

CHUNK = 1000       # kept frames per chunk: 17 s at 60 fps, ~50 MB of Jacobian, a few seconds of solve
OVERLAP = 12 * STRIDE  # frames solved on each side and dropped: 12 steps of the coarse pass
LONG_TAKE = 2 * CHUNK  # frames: longer takes are chunked (shorter ones would gain little over the overlap)
TURN_TOLERANCE = 0.05  # rad: two chunks' overlap differing by whole turns within this is the same pose


def solve(job: IkJob, solve_one: Callable, size: int | None = None, overlap: int | None = None,
          long_take: int | None = None) -> IkResult:
    """``job`` (:class:`openkin.kinematics.ik.IkJob`) solved by ``solve_one(job, model=None)``
    (:func:`openkin.kinematics.ik.solve_openkin`, handed in: ik calls this module) whole when it
    has ``long_take`` frames or fewer, else in chunks (module doc). None: the module's constants."""
    size = CHUNK if size is None else size
    overlap = OVERLAP if overlap is None else overlap
    long_take = LONG_TAKE if long_take is None else long_take
    n = len(job.times)
    if n - job.keep_from <= long_take:
        return solve_one(job)
    overlap = -(-overlap // STRIDE) * STRIDE
    plan = chunks.plan(n, size, overlap, align=STRIDE)
    log.info("IK: %d frames in %d chunks of ~%d (+%d overlap) frames", n, len(plan), size, overlap)
    parts = chunks.run_tasks(solve_chunk, [(solve_one, part(job, c)) for c in plan], "ik-chunk")
    return keep_from(stitch(parts, plan), job.keep_from)


def part(job: IkJob, c: chunks.Chunk) -> IkJob:
    """The job of chunk ``c``: frames ``[c.start, c.stop)``, the result kept from ``c.keep``."""
    window = slice(c.start, c.stop)
    return dataclasses.replace(job, xyz=job.xyz[window], times=job.times[window], keep_from=c.keep - c.start,
                               trackers=None if job.trackers is None else job.trackers.frames(window))


_MODEL: dict[tuple, object] = {}


def solve_chunk(solve_one: Callable, job: IkJob) -> IkResult:
    """A chunk's job solved (a task). The OpenSim model is loaded once per process and file version."""
    st = os.stat(job.model_path)
    key = (job.model_path, st.st_mtime_ns, st.st_size)
    if key not in _MODEL:
        _MODEL.clear()
        _MODEL[key] = load_model(job.model_path)[0]
    return solve_one(job, _MODEL[key])


def stitch(parts: list[IkResult], plan: list[chunks.Chunk]) -> IkResult:
    """The chunks' results (each from its ``keep`` to its ``stop``) → one, kept frames in time order,
    unbounded rotations continuous across the seams."""
    qs = [parts[0].q[: plan[0].stop_keep - plan[0].keep]]
    for prev, part, c_prev, c in zip(parts, parts[1:], plan, plan[1:]):
        q = part.q.copy()
        # the frames both solved: prev's [c.keep, c_prev.stop), part's first ones
        both = c_prev.stop - c.keep
        q -= whole_turns(prev.q[c.keep - c_prev.keep: c.keep - c_prev.keep + both], q[:both], part.rotational)
        qs.append(q[: c.stop_keep - c.keep])
        part.q = q  # the next seam compares with the shifted one
    take = [slice(0, c.stop_keep - c.keep) for c in plan]
    return dataclasses.replace(parts[0], q=np.concatenate(qs),
                               rms=np.concatenate([p.rms[s] for p, s in zip(parts, take)]),
                               max_error=np.concatenate([p.max_error[s] for p, s in zip(parts, take)]),
                               solver_seconds=sum(p.solver_seconds for p in parts),
                               load_seconds=max(p.load_seconds for p in parts),
                               cpu_seconds=sum(p.cpu_seconds for p in parts), extra=dict(parts[0].extra))


def keep_from(r: IkResult, k: int) -> IkResult:
    """``r`` without its first ``k`` frames."""
    return dataclasses.replace(r, q=r.q[k:], rms=r.rms[k:], max_error=r.max_error[k:])


def whole_turns(a: np.ndarray, b: np.ndarray, rotational: list[bool]) -> np.ndarray:
    """(C,): per coordinate, the whole turns (radians) by which ``b`` (F, C) lies above ``a`` (F, C),
    the same frames solved by two chunks: nonzero only for a rotational coordinate whose mean
    difference is a nonzero number of turns within :data:`TURN_TOLERANCE`."""
    if not len(a):
        return np.zeros(b.shape[1])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a coordinate NaN on every frame: no shift
        d = np.nanmean(b - a, axis=0)
    turns = np.round(d / (2 * np.pi))
    same = np.abs(d - 2 * np.pi * turns) < TURN_TOLERANCE  # False where NaN
    return np.where(np.asarray(rotational) & same & (turns != 0), 2 * np.pi * turns, 0.0)

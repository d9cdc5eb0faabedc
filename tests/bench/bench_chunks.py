"""Time chunks benchmark: a long take's IK (OpenKin's batch solver) solved whole, in chunks one
after the other, and in chunks on a Dask LocalCluster of 2 workers (what ``openkin run --workers 2``
does), side by side in one run; prints wall and CPU time, the speed-up and the machine's load, and
whether the chunked results are byte-identical (serial vs workers) and equal to the whole solve
(not a test).

    .venv/bin/python tests/bench/bench_chunks.py                        # 6000 frames, full model
    .venv/bin/python tests/bench/bench_chunks.py --frames 3000 --reps 2

Each variant runs in a child process (imports and, for the workers, the cluster's start-up
included); CPU time is the child's and all its descendants' (worker processes are reparented to
this process and reaped: see :func:`reap_descendants`). Goal: close to 2x with 2 workers on 2 free
cores for a long take.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "engine"))

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphaned descendants (Dask's fork server and its workers) become this process's children (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_descendants(timeout: float = 30.0) -> None:
    """Wait for every child left (orphans reparented here), so RUSAGE_CHILDREN counts their CPU."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(mode: str, job: Path, out: Path) -> tuple[float, float]:
    """One variant in a child process: (wall s, CPU s of it and its descendants)."""
    c0, t0 = cpu_children(), time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--one", mode, "--job", str(job), "--out", str(out)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    reap_descendants()
    if proc.returncode != 0:
        sys.exit(f"{mode} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, cpu_children() - c0


def one(mode: str, job_path: Path, out: Path) -> None:
    """The child: solve the pickled job as ``mode`` says, save q (F, C) to ``out``."""
    from openkin import chunks
    from openkin.cluster import client_for
    from openkin.kinematics import chunked, ik

    job = pickle.loads(job_path.read_bytes())
    if mode == "whole":
        r = chunked.solve(job, ik.solve_openkin, long_take=10 ** 9)
    elif mode == "chunks":
        r = chunked.solve(job, ik.solve_openkin)
    else:
        with client_for(workers=int(mode.split("-")[1])) as client, chunks.use_client(client):
            r = chunked.solve(job, ik.solve_openkin)
    np.save(out, r.q)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=6000)
    p.add_argument("--model", default="Model_Pose2Sim_muscles_flex.osim")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return one(args.one, args.job, args.out)
    from test_chunks import turning_take

    from openkin.kinematics import chunked

    become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="openkin-bench-chunks-"))
    t0 = time.perf_counter()
    job, _ = turning_take(args.frames, work, args.model)
    (work / "job.pkl").write_bytes(pickle.dumps(job))
    print(f"take: {args.frames} frames ({args.frames / 60:.0f} s at 60 fps), {args.model}, {len(job.marker_names)} "
          f"markers, 1 cm noise, turning 1.5 times ({time.perf_counter() - t0:.1f} s to build); chunks of "
          f"{chunked.CHUNK} + 2 x {chunked.OVERLAP} frames; {os.cpu_count()} CPUs")
    par = f"workers-{args.workers}"
    for rep in range(args.reps):
        load = [os.getloadavg()[0]]
        fig = {}
        for mode in ("whole", "chunks", par):
            fig[mode] = run(mode, work / "job.pkl", work / f"{mode}.npy")
            load.append(os.getloadavg()[0])
        q = {m: np.load(work / f"{m}.npy") for m in fig}
        same = q["chunks"].tobytes() == q[par].tobytes()
        diff = float(np.abs(q["chunks"] - q["whole"]).max())
        line = " | ".join(f"{m} {w:6.1f} s wall ({c:6.1f} s CPU)" for m, (w, c) in fig.items())
        print(f"rep {rep + 1}: {line}")
        print(f"   speed-up {par} vs whole {fig['whole'][0] / fig[par][0]:4.2f}x, vs chunks one after the other "
              f"{fig['chunks'][0] / fig[par][0]:4.2f}x; chunks serial == {par} byte for byte: {same}; "
              f"max |chunks - whole| {diff:.2e} (rad or m); load avg 1 min "
              + " / ".join(f"{x:.1f}" for x in load) + " (start, after each)")


if __name__ == "__main__":
    main()

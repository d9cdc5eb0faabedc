"""Batch benchmark: a session of synthetic trials run serially, then with ``--workers 2`` (a Dask
LocalCluster of two processes), side by side in one run; prints wall time, CPU time, the speed-up,
the machine's load, and whether the outputs are byte-identical (not a test).

    .venv/bin/python tests/bench/bench_batch.py                   # 20 trials of 30 frames
    .venv/bin/python tests/bench/bench_batch.py --trials 6 --frames 30 --reps 2

Each run is the ``openkin batch`` command in a child process (start-up included), every stage
(calibration to IK), no report; its CPU time includes every descendant (the local cluster's
fork server and workers, reparented to this process and reaped). Goal: close to 2× with 2 workers on 2 free cores. Compared
files: :func:`openkin.batch.comparable_digests` (every trial file except the manifest, logs and
report; the ``seconds`` of summaries left out).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "engine"))

from batch_session import make_session  # noqa: E402
from bench_chunks import become_subreaper, reap_descendants  # noqa: E402

from openkin.batch import comparable_digests, find_trials  # noqa: E402


def run(session: Path, *extra: str) -> tuple[float, float]:
    """``openkin batch`` on ``session``: (wall s, CPU s of it and the processes it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "openkin.cli", "batch", str(session), "--no-report",
                          "--no-progress", *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    reap_descendants()  # the local cluster's fork server and workers, reparented here
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"openkin batch failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def digests(session: Path) -> dict[str, dict[str, str]]:
    return {t.name: comparable_digests(t.path) for t in find_trials(session)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--reps", type=int, default=1, help="serial/parallel pairs, alternated")
    p.add_argument("--work", type=Path, default=None, help="folder for the session (default: a temporary one)")
    args = p.parse_args()
    become_subreaper()
    work = args.work or Path(tempfile.mkdtemp(prefix="openkin-bench-batch-"))
    session = work / "S01"
    shutil.rmtree(session, ignore_errors=True)
    t0 = time.perf_counter()
    make_session(session, n_trials=args.trials, frames=args.frames)
    print(f"session: {args.trials} synth trials x {args.frames} frames x 4 cameras in {session} "
          f"({time.perf_counter() - t0:.1f} s to build); {os.cpu_count()} CPUs")
    rows = []
    for rep in range(args.reps):
        load0 = os.getloadavg()
        s_wall, s_cpu = run(session, "--force")
        reference = digests(session)
        load1 = os.getloadavg()
        p_wall, p_cpu = run(session, "--force", "--workers", str(args.workers))
        load2 = os.getloadavg()
        same = digests(session) == reference
        rows.append((s_wall, p_wall, same))
        print(f"rep {rep + 1}: serial {s_wall:6.1f} s wall ({s_cpu:6.1f} s CPU) | --workers {args.workers} "
              f"{p_wall:6.1f} s wall ({p_cpu:6.1f} s CPU) | speed-up {s_wall / p_wall:4.2f}x | outputs "
              f"byte-identical: {same} ({sum(len(d) for d in reference.values())} files) | load avg 1 min "
              f"{load0[0]:.1f} / {load1[0]:.1f} / {load2[0]:.1f} (start / after serial / after parallel)")
    best = max(s / p for s, p, _ in rows)
    print(f"best speed-up {best:.2f}x (goal: close to 2x on 2 free cores); all byte-identical: "
          f"{all(same for *_, same in rows)}")


if __name__ == "__main__":
    main()

"""Recompute benchmark: a 1-second range of a long take (``openkin recompute``) against a full rerun.

On a synthetic take (``openkin.synth``, preset ``mild``, 60 fps, default 10 minutes): the
pipeline triangulation → filtering → augmentation → kinematics runs once in full (timed per
stage: what a full rerun after an edit costs), then one ``--swap`` edit over 1 second in the
middle and ``openkin recompute --frames`` of that second (timed per stage). Prints both side
by side, checks that every line of the TRC / MOT / CSV files outside the rows recompute
replaced is byte-identical to the full run's, and the size of the replaced ranges.

Usage::

    .venv/bin/python tests/bench/bench_recompute.py                    # 10 min, ik_solver openkin
    .venv/bin/python tests/bench/bench_recompute.py --minutes 1 --ik opensim
    .venv/bin/python tests/bench/bench_recompute.py --keep /tmp/take   # reuse a built take

Goal (issue 15): a 1-second range of a 10-minute take recomputes in seconds, not minutes.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import openkin
from openkin.edits import Edit
from openkin.recompute import recompute
from openkin.recompute.edit import edit_project

STAGES = ["triangulation", "filtering", "augmentation", "kinematics"]


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (IK workers): the figure that
    means something when other jobs share the cores."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def build(root: Path, frames: int, seed: int) -> float:
    from openkin.synth.build import build_scene

    t0 = time.perf_counter()
    build_scene(root, "mild", n_frames=frames, seed=seed, overwrite=True)
    return time.perf_counter() - t0


def text_files(root: Path) -> dict[str, list[str]]:
    out = {}
    for folder in ("pose-3d", "kinematics"):
        for p in sorted((root / folder).glob("*")):
            if p.suffix in (".trc", ".mot", ".csv"):
                out[p.relative_to(root).as_posix()] = p.read_text().splitlines()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--ik", default="openkin", choices=("openkin", "opensim"))
    ap.add_argument("--keep", type=Path, help="folder of the take (built there once, reused after)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    frames = int(round(args.minutes * 60 * 60))
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench_recompute_")) / "take"
    overrides = {"kinematics": {"ik_solver": args.ik}}
    built = 0.0
    if not (base / "openkin" / "manifest.json").is_file():
        built = build(base, frames, args.seed)
        t0, c0 = time.perf_counter(), cpu_seconds()
        res = openkin.run(base, stages=STAGES, overrides=overrides, report=False)
        if not res.ok:
            sys.exit(f"full run failed: {res.failed}: {res.error}")
        full = dict(res.timings)
        full["total"] = time.perf_counter() - t0
        full["cpu"] = cpu_seconds() - c0
        (base.parent / "full_timings.json").write_text(json.dumps(full))
    full = json.loads((base.parent / "full_timings.json").read_text())
    work = base.parent / "edited" / base.name
    shutil.rmtree(work.parent, ignore_errors=True)
    shutil.copytree(base, work)
    before = text_files(work)
    mid = frames // 2
    a, b = mid, mid + 59                                            # 1 second at 60 fps
    edit_project(work, Edit(0, "swap", camera="cam02", frames=(a, b)))
    t0, c0 = time.perf_counter(), cpu_seconds()
    result = recompute(work, (a, b), overrides=overrides)
    total, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    after = text_files(work)
    load = os.getloadavg()
    print(f"take: {frames} frames ({args.minutes:g} min at 60 fps), 4 cameras, HALPE_26; ik_solver={args.ik}; "
          f"load average {load[0]:.1f} on {os.cpu_count()} cores" + (f"; scene built in {built:.0f} s" if built else ""))
    print(f"recompute frames {a}-{b} (1 s) after one --swap edit, vs the full run of the same stages:")
    print(f"  {'stage':14s} {'full run':>10s} {'recompute':>10s}  rows replaced")
    for name in STAGES:
        r = result["stages"].get(name, {})
        rows = ", ".join(f"{lo}-{hi}" for lo, hi in r.get("frames", {}).values())
        print(f"  {name:14s} {full.get(name, float('nan')):9.2f}s {r.get('seconds', float('nan')):9.2f}s  "
              f"{'FULL ' if r.get('full') else ''}{rows}")
    print(f"  {'total':14s} {full['total']:9.2f}s {total:9.2f}s  (speed-up {full['total'] / total:.0f}x)")
    if "cpu" in full:
        print(f"  {'CPU seconds':14s} {full['cpu']:9.2f}s {cpu:9.2f}s  (speed-up {full['cpu'] / cpu:.0f}x)")
    changed = {k: sum(x != y for x, y in zip(before[k], after[k])) for k in before}
    same_len = all(len(before[k]) == len(after[k]) for k in before)
    print(f"lines changed per file (all others byte-identical): {changed}; line counts unchanged: {same_len}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

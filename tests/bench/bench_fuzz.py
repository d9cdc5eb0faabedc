"""Fuzz every reader: N generated malformed files per format (random bytes, truncations,
random edits of valid files) → counts of clean reads, OpenKinError, other exceptions (the
goal is 0) and crashes, and the time taken. Prints figures; not a pytest test.

Run: .venv/bin/python tests/bench/bench_fuzz.py [--n 10000] [--formats trc,c3d]

Each format runs in a child process so that a crash in a C library (ezc3d) is counted
and the run goes on from the next file.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
import format_fuzz as fz  # noqa: E402

FORMATS = ("calibration", "trc", "mot", "sto", "c3d", "openpose")
HANG_SECONDS = 20.0


def _worker(fmt: str, start: int, n: int, seed: int, conn) -> None:
    """Read files ``start..n`` of ``fmt``; send (index, outcome, detail) for each."""
    from openkin.errors import OpenKinError

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seeds = [fz.write_sample(fmt, tmp / f"valid{i}{fz.SUFFIX[fmt]}", np.random.default_rng(i)).read_bytes()
                 for i in range(16)]
        for i in range(start, n):
            rng = np.random.default_rng((seed, i))
            data = fz.mutate(seeds[i % len(seeds)], rng)
            path = tmp / f"case{fz.SUFFIX[fmt]}"
            path.write_bytes(data)
            (Path(tempfile.gettempdir()) / f"openkin_fuzz_last{fz.SUFFIX[fmt]}").write_bytes(data)
            conn.send((i, "started", ""))
            try:
                fz.read(fmt, path)
                outcome, detail = "ok", ""
            except OpenKinError:
                outcome, detail = "OpenKinError", ""
            except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
                outcome, detail = "other", f"{type(exc).__name__}: {str(exc)[:120]}"
                (Path(tempfile.gettempdir()) / f"openkin_fuzz_{fmt}_{i}{fz.SUFFIX[fmt]}").write_bytes(data)
            conn.send((i, outcome, detail))
    conn.send((n, "done", ""))


def fuzz_format(fmt: str, n: int, seed: int) -> tuple[Counter, list[str], float]:
    """Outcome counts, examples of other exceptions and crashes, and seconds."""
    counts, examples, start, t0 = Counter(), [], 0, time.perf_counter()
    ctx = mp.get_context("fork")
    while start < n:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(fmt, start, n, seed, child))
        proc.start()
        child.close()
        current = start
        while True:
            if not parent.poll(HANG_SECONDS):
                proc.kill()
                counts["hang"] += 1
                examples.append(f"hang (> {HANG_SECONDS} s) at case {current} (seed {seed})")
                start = current + 1
                break
            try:
                i, outcome, detail = parent.recv()
            except EOFError:
                counts["crash"] += 1
                examples.append(f"crash at case {current} (seed {seed})")
                start = current + 1
                break
            if outcome == "done":
                start = n
                break
            current = i
            if outcome != "started":
                counts[outcome] += 1
                if detail and len(examples) < 8:
                    examples.append(f"case {i}: {detail}")
        proc.join()
    return counts, examples, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="malformed files per format")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'format':<12s} {'files':>7s} {'read ok':>8s} {'OpenKinError':>13s} {'other':>6s} {'crash':>6s} {'hang':>5s} {'time':>8s}")
    bad = 0
    for fmt in args.formats.split(","):
        counts, examples, seconds = fuzz_format(fmt, args.n, args.seed)
        total = sum(counts.values())
        print(f"{fmt:<12s} {total:7d} {counts['ok']:8d} {counts['OpenKinError']:13d} {counts['other']:6d} "
              f"{counts['crash']:6d} {counts['hang']:5d} {seconds:7.1f}s", flush=True)
        for line in examples:
            print(f"    {line}")
        bad += counts["other"] + counts["crash"] + counts["hang"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

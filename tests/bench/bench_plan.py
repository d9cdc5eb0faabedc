"""The camera-placement planner's figures (prints them; not a pytest test).

1. Accuracy: expected RMS 3D error of the kernel vs Monte-Carlo triangulation of noisy,
   dropped-out projections (OpenKin's DLT and robust triangulation, 2000 trials per
   point) on random grid points, for the demo's calibration and a ring of 8 phones.
2. Speed: a 6 × 6 × 2 m volume at 10 cm (61 × 61 × 21 = 78,141 points) with 8 cameras
   (goal: under 1 s), with and without dropout, for both error models.

Run: PYTHONPATH=engine .venv/bin/python tests/bench/bench_plan.py [--points 12] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from test_plan import SIGMA, TRIALS, _monte_carlo, _volume_for, ring8  # noqa: E402

from openkin.plan import kernel, volume  # noqa: E402


def accuracy(name, cams, n_points, dropout, rng) -> None:
    grid = volume.make_grid(_volume_for(cams), 0.25)
    res = kernel.evaluate(cams, grid.points, kernel.PlanSettings(noise_px=SIGMA, dropout=dropout, tail_mass=0.0))
    cand = np.flatnonzero(res.cameras_seeing >= 2)
    ratios = {"dlt": [], "robust": []}
    for i in rng.choice(cand, n_points, replace=False):
        mc = _monte_carlo(cams, grid.points[i], res.seen[:, i], dropout, rng)
        for k in ratios:
            ratios[k].append(res.expected_error_mm[i] / mc[k])
    for k, r in ratios.items():
        r = np.array(r)
        print(f"  {name:6s} dropout {dropout:.1f} vs MC {k:6s}: analytic/MC ratio median {np.median(r):.3f}, "
              f"range {r.min():.3f}..{r.max():.3f}, worst deviation {100 * np.abs(r - 1).max():.1f}% "
              f"(goal < 20%) over {len(r)} points × {TRIALS} trials")


def speed(repeat: int) -> None:
    cams = ring8()
    grid = volume.make_grid(volume.box_volume(-3, -3, 3, 3, 2.0), 0.1)
    print(f"  {len(grid.points)} points × {len(cams)} cameras")
    for dropout in (0.0, 0.1):
        for est in ("dlt", "optimal"):
            s = kernel.PlanSettings(dropout=dropout, estimator=est)
            times, cpu = [], []
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                res = kernel.evaluate(cams, grid.points, s)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            ok = res.cameras_seeing >= 2
            print(f"  dropout {dropout:.1f} {est:8s}: wall best {min(times):.3f} s, median {np.median(times):.3f} s "
                  f"(goal < 1 s), CPU best {min(cpu):.3f} s; seen by ≥ 2: {100 * ok.mean():.1f}%, median error "
                  f"{np.nanmedian(res.expected_error_mm[ok]):.1f} mm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times grow with it)")
    if args.speed_only:
        print("speed:")
        return speed(args.repeat)
    from openkin.assets import asset_path
    from openkin.formats.calib_converters import convert_calibration

    demo = convert_calibration(asset_path("Demo_SinglePerson/calibration/Calib.qca.txt"), "qualisys")
    rng = np.random.default_rng(0)
    print("accuracy (expected error vs Monte-Carlo triangulation, σ = %g px):" % SIGMA)
    for name, cams in (("demo", demo), ("ring8", ring8())):
        for dropout in (0.0, 0.2):
            accuracy(name, cams, args.points, dropout, rng)
    print("speed:")
    speed(args.repeat)


if __name__ == "__main__":
    main()

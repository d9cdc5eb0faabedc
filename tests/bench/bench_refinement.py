"""Benchmark of the refinement stage (bundle adjustment of the extrinsics): prints figures.

1. Ground-truth scenes whose written calibration is off by 1 cm / 0.5 deg per camera (mild noise,
   and the realistic-detector preset): MPJPE / PA-MPJPE after triangulation without and with the
   refinement, camera pose error against the exact calibration (up to the rig's unobservable
   similarity), refinement time.
2. Pose2Sim's real demo (offline BlazePose, 4 cameras, 100 frames): mean triangulation
   reprojection error without and with the refinement, and what each camera's pose changed.

Run: ``.venv/bin/python tests/bench/bench_refinement.py [--no-demo]`` (the demo part runs the
pose stage once, about a minute on two cores).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tomllib

from openkin.cli import run_stages
from openkin.evaluate import compare_markers
from openkin.formats.calibration import read_calibration
from openkin.formats.trc import read_trc
from openkin.refinement import align_rig, pose_change
from openkin.synth import build_scene

PERTURBED = dict(calib_translation_cm=1.0, calib_rotation_deg=0.5)
SCENES = [("mild", PERTURBED), ("desync", PERTURBED), ("realistic", {})]  # realistic: perturbed already


def _stages(root: Path, names: list[str], on: bool) -> dict:
    return run_stages(root, names, overrides={"refinement": {"refine_extrinsics": on}}, progress_bars=False)


def _markers(root: Path) -> tuple[float, float]:
    res = read_trc(sorted((root / "pose-3d").glob("*.trc"))[0])
    r = compare_markers(res, read_trc(root / "truth" / "keypoints.trc"))
    return r["mpjpe"][0], r["pa_mpjpe"][0]


def _pose_error(root: Path, calib: Path) -> tuple[float, float]:
    exact = read_calibration(root / "truth" / "Calib_exact.toml")
    moved, turned = pose_change(exact, align_rig(read_calibration(calib), exact))
    return float(moved.mean()), float(turned.mean())


def bench_scene(tmp: Path, preset: str, extra: dict, n_frames: int = 300, seed: int = 1) -> None:
    root = tmp / preset
    build_scene(root, preset, n_frames, seed, **extra)
    pre = ["synchronization", "association"] if preset in ("realistic", "desync") else ["association"]
    _stages(root, pre + ["refinement", "triangulation"], on=False)
    off = _markers(root)
    calib = root / "calibration"
    src_err = _pose_error(root, calib / "Calib_scene.toml")
    secs = _stages(root, ["refinement", "triangulation"], on=True)["refinement"]
    on = _markers(root)
    ref = calib / "Calib_refined.toml"
    ref_err = _pose_error(root, ref) if ref.exists() else (float("nan"),) * 2
    print(f"{preset:<10} {n_frames:>4} fr  MPJPE {off[0]:6.1f} -> {on[0]:6.1f} mm   PA-MPJPE {off[1]:6.1f} -> "
          f"{on[1]:6.1f} mm   camera error {src_err[0]:4.1f} mm {src_err[1]:.2f} deg -> {ref_err[0]:4.1f} mm "
          f"{ref_err[1]:.2f} deg   refinement {secs:.1f} s")


def _reprojection(root: Path) -> float:
    rep = json.loads((root / "pose-3d" / "triangulation_report.json").read_text())
    return float(np.mean([p["reprojection_error_px"] for p in rep["persons"]]))


def bench_demo(tmp: Path) -> None:
    from openkin.demo import prepare_project

    root = prepare_project(tmp / "demo")
    t0 = time.perf_counter()
    run_stages(root, ["calibration", "pose", "synchronization", "association"],
               overrides={"pose": {"pose_backend": "offline"}}, progress_bars=False)
    print(f"demo: pose etc. {time.perf_counter() - t0:.0f} s")
    _stages(root, ["refinement", "triangulation"], on=False)
    off = _reprojection(root)
    secs = _stages(root, ["refinement", "triangulation"], on=True)["refinement"]
    on = _reprojection(root)
    rep = tomllib.loads(Path(root / "openkin" / "refinement.toml").read_text())
    print(f"demo (offline BlazePose): triangulation reprojection {off:.2f} -> {on:.2f} px "
          f"(goal < 10 px); refinement {secs:.1f} s, {rep['accepted'] and 'kept' or 'refused: ' + rep['reason']}")
    for name, c in rep["cameras"].items():
        print(f"  {name}: moved {c['moved_mm']:5.1f} mm, turned {c['turned_deg']:.2f} deg, DLT reprojection "
              f"{c['reprojection_before_px']:.1f} -> {c['reprojection_after_px']:.1f} px")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print("Refinement on ground-truth scenes (calibration off by 1 cm / 0.5 deg per camera)")
        for preset, extra in SCENES:
            bench_scene(Path(tmp), preset, extra)
        if "--no-demo" not in sys.argv:
            bench_demo(Path(tmp))


if __name__ == "__main__":
    main()

"""6-DoF trackers benchmark (issue #11, the EM-POSE setting): cameras vs cameras + trackers vs trackers.

One motion, two scenes built by ``openkin synth`` with the same seed and corruption preset (default
``realistic``): 4 cameras and 2 cameras, both with simulated trackers on pelvis, torso, humerus_r/l,
tibia_r/l (white noise and heading drift, see :mod:`openkin.synth.trackers`). Each scene is reconstructed
by OpenKin (synchronisation, association, triangulation, filtering), scaled once, and solved by
OpenKin's batch IK in this process:

- ``4 cameras``: markers only;
- ``2 cameras``: markers only;
- ``2 cameras + 6 trackers``: markers and trackers fused in one solve;
- ``6 trackers alone``: every marker missing (pelvis translation unobserved, held).

Printed side by side: MPJAE and std (main coordinates, ``openkin.evaluate``) of each against the truth,
frames compared, and per coordinate group; then the goal line: 2 cameras + 6 trackers MPJAE <= 4 cameras.

Usage::

    .venv/bin/python tests/bench/bench_trackers.py                        # 600 frames, realistic
    .venv/bin/python tests/bench/bench_trackers.py --scene mild --noise 2 --drift 5
    .venv/bin/python tests/bench/bench_trackers.py --weights 0.1,1,10     # also the fused run per weight
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from openkin.evaluate import compare_angles
from openkin.formats.mot import read_mot, write_mot
from openkin.kinematics import KinematicsOptions, angles_motion, prepare, tracker_variants
from openkin.kinematics import ik

BODIES = ("pelvis", "torso", "humerus_r", "humerus_l", "tibia_r", "tibia_l")
GROUPS = {
    "pelvis": ("pelvis_tilt", "pelvis_list", "pelvis_rotation"),
    "trunk": ("L5_S1_Flex_Ext", "L5_S1_Lat_Bending", "L5_S1_axial_rotation"),
    "hips": ("hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "hip_flexion_l", "hip_adduction_l",
             "hip_rotation_l"),
    "knees": ("knee_angle_r", "knee_angle_l"),
    "ankles": ("ankle_angle_r", "ankle_angle_l"),
    "shoulders": ("arm_flex_r", "arm_add_r", "arm_rot_r", "arm_flex_l", "arm_add_l", "arm_rot_l"),
    "elbows": ("elbow_flex_r", "elbow_flex_l"),
}


def build(work: Path, preset: str, frames: int, cameras: int, noise: float, drift: float, seed: int) -> Path:
    """The scene (reused when already built and reconstructed with the same settings)."""
    from openkin.cli import run_stages
    from openkin.synth import build_scene

    scene = work / f"{preset}_{cameras}cams_{frames}_n{noise:g}_d{drift:g}_s{seed}_nangaps"
    if not sorted((scene / "pose-3d").glob("*_filt*.trc")):
        if scene.exists():
            shutil.rmtree(scene)
        build_scene(scene, preset, n_frames=frames, seed=seed, cameras=cameras, trackers=BODIES,
                    tracker_noise_deg=noise, tracker_drift_deg_min=drift)
        run_stages(scene, ["synchronization", "association", "triangulation", "filtering"], progress_bars=False)
    return scene


def scored(job, rate: float, result, truth, out: Path) -> dict:
    """MPJAE (main coordinates), frames compared and RMSE per group of one IK result."""
    write_mot(out, angles_motion(result, job.times, None, rate))
    res, tru = read_mot(out), read_mot(truth)
    main = compare_angles(res, tru, coordinates=["main"])
    every = compare_angles(res, tru)["per_coordinate_deg"]
    groups = {g: float(np.sqrt(np.mean([every[c]["rmse"] ** 2 for c in cs if c in every]))) for g, cs in GROUPS.items()}
    return {"mpjae": main["mpjae"][0], "std": main["mpjae"][1], "frames": main["matched_frames"],
            "truth_frames": main["truth_frames"], "groups": groups, "cpu": result.cpu_seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--scene", default="realistic", help="corruption preset of openkin synth")
    p.add_argument("--noise", type=float, default=1.5, help="trackers' white noise, deg per axis")
    p.add_argument("--drift", type=float, default=2.0, help="trackers' heading drift, deg/min")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default="", help="extra fused runs with these tracker weights (comma-separated)")
    p.add_argument("--work", type=Path, default=Path("/tmp/openkin_bench_trackers"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    mapping = {f"{b}_imu": b for b in BODIES}
    runs = {}
    for cams in (4, 2):
        scene = build(args.work, args.scene, args.frames, cams, args.noise, args.drift, args.seed)
        truth = scene / "truth" / "angles.mot"
        trc = sorted((scene / "pose-3d").glob("*_filt*.trc"))[0]
        out = args.work / f"ik_{scene.name}"
        out.mkdir(parents=True, exist_ok=True)
        opts = KinematicsOptions(trackers=mapping, trackers_dir=str(scene / "trackers"))
        prep = prepare(trc, out, opts)
        variants = tracker_variants(prep)  # what the kinematics stage writes beside the fused result
        jobs = {f"{cams} cameras": variants["cameras_only"]}
        if cams == 2:
            jobs["2 cameras + 6 trackers"] = prep.job
            for w in [float(v) for v in args.weights.split(",") if v.strip()]:
                trk = dataclasses.replace(prep.job.trackers, weights=np.full(len(BODIES), w))
                jobs[f"2 cameras + 6 trackers (w={w:g})"] = dataclasses.replace(prep.job, trackers=trk)
            jobs["6 trackers alone"] = variants["trackers_only"]
        results = ik.solve_all(list(jobs.values()), 1, None, "openkin")
        for (label, job), res in zip(jobs.items(), results):
            slug = label.replace(" ", "_").replace("+", "and").replace("(", "").replace(")", "").replace("=", "")
            runs[label] = scored(job, prep.rate, res, truth, out / f"{slug}.mot")
    order = ["4 cameras", "2 cameras", "2 cameras + 6 trackers", "6 trackers alone"]
    order += [k for k in runs if k not in order]
    head = f"{'method':36s} {'MPJAE':>6s} {'std':>5s} {'frames':>7s}  " + " ".join(f"{g:>9s}" for g in GROUPS)
    print(f"\nscene {args.scene}, {args.frames} frames, trackers on {', '.join(BODIES)} "
          f"(noise {args.noise:g} deg, drift {args.drift:g} deg/min); MPJAE main coordinates, RMSE per group [deg]")
    print(head)
    print("-" * len(head))
    for k in order:
        r = runs[k]
        print(f"{k:36s} {r['mpjae']:6.2f} {r['std']:5.2f} {r['frames']:>3d}/{r['truth_frames']:<3d}  "
              + " ".join(f"{r['groups'][g]:9.2f}" for g in GROUPS))
    fused, four = runs["2 cameras + 6 trackers"]["mpjae"], runs["4 cameras"]["mpjae"]
    ok = fused <= four
    print(f"\nGOAL 2 cameras + 6 trackers MPJAE {fused:.2f} <= 4 cameras {four:.2f}: {'PASS' if ok else 'FAIL'}; "
          f"2 cameras alone {runs['2 cameras']['mpjae']:.2f}, trackers alone {runs['6 trackers alone']['mpjae']:.2f} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

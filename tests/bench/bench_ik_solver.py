"""IK solver benchmark: OpenKin's batch solver vs OpenSim's, same scaled model, same TRC, one run.

Per motion (``generated``: openkin.synth's walk/squat/arm raises; ``walk``, ``run``,
``crouch``: real recorded motions, :mod:`openkin.synth.real_motions`), scene
(``clean``: the synth truth keypoints; ``realistic``: OpenKin's own
reconstruction of the corrupted 2D detections) and model (simple, full), the
trial is scaled once (:func:`openkin.kinematics.prepare`) and the same IK job
is solved by both solvers in this process, BLAS pinned to one thread
(threadpoolctl), OpenSim in one process (no chunks). Prints side by side:

- solver seconds and frames/s of each, and the speed ratio (goal >= 20x on the full model);
- agreement: RMS difference per coordinate (goal 0.5 deg, translations 1 mm), listing the
  coordinates over the goal with each solver's own RMSE against the truth;
- marker RMS of each (goal: OpenKin <= OpenSim + 0.5 mm);
- MPJAE (``openkin.evaluate``, main coordinates) of each against the truth, and of OpenKin's
  solver with temporal coupling (``smooth``: not OpenSim's problem any more, so no agreement goal).

At the end, a table motion x scene x model x solver: MPJAE and mean error per
coordinate group (legs, pelvis, trunk, shoulder, elbow) against the truth, and CPU.

Usage::

    .venv/bin/python tests/bench/bench_ik_solver.py                    # 720 frames, both scenes, both models
    .venv/bin/python tests/bench/bench_ik_solver.py --frames 300 --models simple --scenes clean
    .venv/bin/python tests/bench/bench_ik_solver.py --frames 600 --scenes realistic --models full --motions run
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kinematics import accuracy, scene_trc  # noqa: E402
from openkin.evaluate import compare_angles  # noqa: E402
from openkin.formats.mot import read_mot  # noqa: E402
from openkin.kinematics import KinematicsOptions, prepare, write_outputs  # noqa: E402
from openkin.kinematics import ik  # noqa: E402


SMOOTH = 1e-2  # temporal coupling weight of the third column (solver.smooth_pass)
GROUPS = {  # coordinate groups of the accuracy table (degrees, both sides)
    "legs": ("hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r", "ankle_angle_r",
             "hip_flexion_l", "hip_adduction_l", "hip_rotation_l", "knee_angle_l", "ankle_angle_l"),
    "pelvis": ("pelvis_tilt", "pelvis_list", "pelvis_rotation"),
    "trunk": ("L5_S1_Flex_Ext", "L5_S1_Lat_Bending", "L5_S1_axial_rotation"),
    "shoulder": ("arm_flex_r", "arm_add_r", "arm_rot_r", "arm_flex_l", "arm_add_l", "arm_rot_l"),
    "elbow": ("elbow_flex_r", "elbow_flex_l"),
}


def shoulder_geodesic(res, tru) -> float:
    """Mean angle (deg, both sides) between the estimated and true orientation of the humerus in the
    torso: the shoulder's three Euler angles (OpenSim's intrinsic Z-X-Y: arm_flex, arm_add, arm_rot)
    composed, so that equivalent angle sets near the gimbal lock (arm at 90 deg abduction, where only
    flexion minus rotation is defined) count as equal. ``res``/``tru``: :class:`Motion` in degrees."""
    from scipy.spatial.transform import Rotation

    idx = np.searchsorted(np.round(tru.times, 6), np.round(res.times, 6)).clip(0, len(tru.times) - 1)
    ok = np.isclose(tru.times[idx], res.times, atol=1e-6)
    out = []
    for side in "rl":
        names = [f"arm_{c}_{side}" for c in ("flex", "add", "rot")]
        if not all(n in res.names and n in tru.names for n in names):
            continue
        a = Rotation.from_euler("ZXY", res.values[ok][:, [res.names.index(n) for n in names]], degrees=True)
        b = Rotation.from_euler("ZXY", tru.values[idx[ok]][:, [tru.names.index(n) for n in names]], degrees=True)
        out.append(np.degrees((a.inv() * b).magnitude()))
    return float(np.mean(out)) if out else float("nan")


def group_errors(mot: Path, truth: Path) -> dict[str, float]:
    """Mean absolute error (deg) per coordinate group, the shoulder's orientation error (``sh_orient``,
    :func:`shoulder_geodesic`), and MPJAE over the main coordinates."""
    res, tru = read_mot(mot), read_mot(truth)
    every = compare_angles(res, tru)["per_coordinate_deg"]
    out = {g: float(np.mean([every[c]["mae"] for c in cs if c in every])) for g, cs in GROUPS.items()}
    out["sh_orient"] = shoulder_geodesic(res, tru)
    out["MPJAE"] = compare_angles(res, tru, coordinates=["main"])["mpjae"][0]
    return out


def table(rows: list[tuple[str, str, str, str, dict, float]]) -> list[str]:
    """The accuracy table: motion x scene x model x solver -> MPJAE and error per group."""
    cols = ["MPJAE"] + list(GROUPS) + ["sh_orient"]
    lines = ["", "accuracy vs truth (mean abs. error, deg) and solver CPU s",
             f"{'motion':10s}{'scene':11s}{'model':8s}{'solver':16s}" + "".join(f"{c:>10s}" for c in cols)
             + f"{'CPU s':>8s}"]
    for motion, scene, model, solver, err, cpu in rows:
        lines.append(f"{motion:10s}{scene:11s}{model:8s}{solver:16s}" + "".join(f"{err[c]:10.2f}" for c in cols)
                     + f"{cpu:8.2f}")
    return lines


def solve_both(trc: Path, out: Path, simple: bool):
    """(prepared trial, OpenSim result, OpenKin result, OpenKin with temporal coupling), each solver
    timed alone on one thread."""
    from threadpoolctl import threadpool_limits

    out.mkdir(parents=True, exist_ok=True)
    prep = prepare(trc, out, KinematicsOptions(use_simple_model=simple))
    from openkin.kinematics.setup import load_model

    model, state = load_model(prep.job.model_path)
    with threadpool_limits(1):
        c0 = time.process_time()
        theirs = ik.solve(prep.job, model, state)
        c1 = time.process_time()
        ours = ik.solve_openkin(prep.job, model)
        c2 = time.process_time()
        smooth = ik.solve_openkin(prep.job, model, smooth=SMOOTH)
        c3 = time.process_time()
    theirs.extra["cpu"], ours.extra["cpu"] = c1 - c0, c2 - c1  # load-independent on a busy machine
    smooth.extra["cpu"] = c3 - c2
    return prep, theirs, ours, smooth


def write_mot(prep, result, suffix: str) -> Path:
    stem = prep.out_stem
    prep.out_stem = stem.with_name(stem.name + suffix)
    try:
        write_outputs(prep, result, None)
        return prep.out_stem.with_suffix(".mot")
    finally:
        prep.out_stem = stem


def agreement(theirs, ours, truth_mot: Path) -> tuple[list[str], int]:
    """Lines for coordinates whose RMS difference is over the goal; and their count."""
    truth = read_mot(truth_mot)
    lines, over = [], 0
    coupled = set(ours.extra.get("coupled", ()))  # follow their coordinate (units: OpenSim's, not m)
    for i, name in enumerate(ours.coordinate_names):
        rot = ours.rotational[i]
        if name in coupled:
            continue
        f = np.degrees if rot else (lambda v: 1e3 * v)
        d = float(np.sqrt(np.mean((f(ours.q[:, i]) - f(theirs.q[:, i])) ** 2)))
        goal = 0.5 if rot else 1.0
        if d <= goal:
            continue
        over += 1
        err = ""
        if name in truth.names:
            tv = truth.values[:, truth.names.index(name)]
            tv = tv if rot else 1e3 * tv
            n = min(len(tv), len(ours.q))
            e_t = np.sqrt(np.mean((f(theirs.q[:n, i]) - tv[:n]) ** 2))
            e_o = np.sqrt(np.mean((f(ours.q[:n, i]) - tv[:n]) ** 2))
            err = f"   vs truth: OpenSim {e_t:.2f}, OpenKin {e_o:.2f}"
        lines.append(f"    {name:24s} {d:7.2f} {'deg' if rot else 'mm '}{err}")
    return lines, over


def report(scene: str, model: str, prep, theirs, ours, smooth, mots: dict, truth: Path) -> list[str]:
    F = len(ours.q)
    acc = {k: accuracy(m, truth) for k, m in mots.items()}
    fps_t, fps_o = F / theirs.solver_seconds, F / ours.solver_seconds
    ratio = theirs.solver_seconds / ours.solver_seconds
    rms_t, rms_o = 1e3 * np.nanmean(theirs.rms), 1e3 * np.nanmean(ours.rms)
    lines = [f"\n=== {scene} scene, {model} model, {F} frames ===",
             f"{'':26s}{'OpenSim':>10s}{'OpenKin':>10s}",
             f"{'solver s (1 thread)':26s}{theirs.solver_seconds:10.2f}{ours.solver_seconds:10.2f}",
             f"{'frames/s':26s}{fps_t:10.1f}{fps_o:10.1f}",
             f"{'CPU s (incl. set-up)':26s}{theirs.extra['cpu']:10.2f}{ours.extra['cpu']:10.2f}",
             f"{'frames per CPU s':26s}{F / theirs.extra['cpu']:10.1f}{F / ours.extra['cpu']:10.1f}",
             f"{'marker RMS mm':26s}{rms_t:10.2f}{rms_o:10.2f}",
             f"{'MPJAE deg (vs truth)':26s}{acc['opensim']['mpjae']:10.2f}{acc['openkin']['mpjae']:10.2f}",
             f"{'MPJAE lower deg':26s}{acc['opensim']['mpjae_lower']:10.2f}{acc['openkin']['mpjae_lower']:10.2f}",
             f"  OpenKin with temporal coupling (weight {SMOOTH:g}): MPJAE {acc['smooth']['mpjae']:.2f}, "
             f"lower {acc['smooth']['mpjae_lower']:.2f}, marker RMS {1e3 * np.nanmean(smooth.rms):.2f} mm, "
             f"CPU {smooth.extra['cpu']:.2f} s"]
    diff, over = agreement(theirs, ours, truth)
    goal_speed = 20 if model == "full" else None
    cpu_ratio = theirs.extra["cpu"] / ours.extra["cpu"]
    lines.append(f"GOAL speed OpenSim/OpenKin = {ratio:.1f}x wall, {cpu_ratio:.1f}x CPU" + (
        f" (goal >= {goal_speed}x): {'MET' if ratio >= goal_speed else 'NOT MET'}" if goal_speed else ""))
    lines.append(f"GOAL marker RMS OpenKin - OpenSim = {rms_o - rms_t:+.2f} mm (goal <= +0.5): "
                 f"{'MET' if rms_o <= rms_t + 0.5 else 'NOT MET'}")
    if scene.endswith("clean"):
        lines.append(f"GOAL agreement 0.5 deg / 1 mm RMS: {over} coordinates over"
                     f"{':' if over else ' -> MET'}")
    else:
        lines.append(f"agreement 0.5 deg / 1 mm RMS (no goal on noisy data): {over} coordinates over")
    return lines + diff


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=720)
    p.add_argument("--scenes", default="clean,realistic")
    p.add_argument("--models", default="simple,full")
    p.add_argument("--motions", default="generated,walk,run,crouch",
                   help="'generated' and/or real motions of openkin.synth.real_motions")
    p.add_argument("--work", type=Path, default=Path("/tmp/openkin_bench_ik_solver"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lines, rows = [], []
    for motion in args.motions.split(","):
        real = "" if motion == "generated" else motion
        for scene in args.scenes.split(","):
            trc, truth = scene_trc(args.work, scene, args.frames, real)
            for model in args.models.split(","):
                out = args.work / (f"ik_{scene}_{model}_{args.frames}" + (f"_{real}" if real else ""))
                prep, theirs, ours, smooth = solve_both(trc, out, model == "simple")
                mots = {"opensim": write_mot(prep, theirs, "_opensim"), "openkin": write_mot(prep, ours, "_openkin"),
                        "smooth": write_mot(prep, smooth, "_openkin_smooth")}
                block = report(f"{motion} {scene}", model, prep, theirs, ours, smooth, mots, truth)
                print("\n".join(block), flush=True)
                lines += block
                for name, res in (("OpenSim", theirs), ("OpenKin", ours), (f"OpenKin+{SMOOTH:g}", smooth)):
                    key = {"OpenSim": "opensim", "OpenKin": "openkin"}.get(name, "smooth")
                    rows.append((motion, scene, model, name, group_errors(mots[key], truth), res.extra["cpu"]))
    print("\n".join(table(rows)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

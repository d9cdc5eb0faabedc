"""Kinematics benchmark: OpenKin vs Pose2Sim 0.10.49 scaling + IK on the same TRC, against truth.

Prints, per scene (``clean``: the truth keypoints; ``realistic``: OpenKin's own
synchronisation → association → triangulation → filtering of the corrupted 2D
detections) and per model (simple, full):

- MPJAE (``openkin.evaluate``, the ``main`` coordinates) and per-coordinate RMSE
  (hip, knee, ankle flexion; pelvis tilt/list/rotation; lumbar; shoulder; elbow)
  of OpenKin and of Pose2Sim's kinematics on the same TRC;
- scaling + IK wall time and frames/s for both, and their ratio, in one run
  (both timed around the stage call only: no interpreter start or imports);
- OpenSim's own solver time alone (``assemble``/``track`` calls, one process,
  same frames and scaled model), i.e. our overhead (or gain, with parallel chunks).

Usage::

    .venv/bin/python tests/bench/bench_kinematics.py                 # 720 frames, both scenes, both models
    .venv/bin/python tests/bench/bench_kinematics.py --frames 300 --models simple --scenes clean
    .venv/bin/python tests/bench/bench_kinematics.py --no-pose2sim

Goals (issue 4): MPJAE ≤ 0.7 × Pose2Sim's; hip/knee/ankle flexion RMSE < 2° on the
clean scene; speed ≥ 5 × Pose2Sim's on the same TRC and model.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openkin.evaluate import compare_angles  # noqa: E402
from openkin.formats.mot import read_mot  # noqa: E402
from openkin.kinematics import KinematicsOptions, run_trials  # noqa: E402

COORDS = {  # printed label -> coordinates averaged (RMSE over both sides)
    "hip flex": ("hip_flexion_r", "hip_flexion_l"), "knee flex": ("knee_angle_r", "knee_angle_l"),
    "ankle flex": ("ankle_angle_r", "ankle_angle_l"), "pelvis tilt": ("pelvis_tilt",),
    "pelvis list": ("pelvis_list",), "pelvis rot": ("pelvis_rotation",), "lumbar flex": ("L5_S1_Flex_Ext",),
    "shoulder flex": ("arm_flex_r", "arm_flex_l"), "shoulder add": ("arm_add_r", "arm_add_l"),
    "elbow flex": ("elbow_flex_r", "elbow_flex_l"), "hip rot": ("hip_rotation_r", "hip_rotation_l"),
    "shoulder rot": ("arm_rot_r", "arm_rot_l"),
}
FLEXION = ("hip flex", "knee flex", "ankle flex")


def build(work: Path, preset: str, frames: int, motion: str = "") -> Path:
    """The synth scene (cached in ``work``); ``motion``: a real motion (:mod:`openkin.synth.real_motions`)
    or '' (generated)."""
    from openkin.synth import build_scene

    scene = work / (f"scene_{preset}_{frames}" + (f"_{motion}" if motion else ""))
    if not (scene / "truth" / "angles.mot").exists():
        if scene.exists():
            shutil.rmtree(scene)
        build_scene(scene, preset, n_frames=frames, seed=0, **({"motion": motion} if motion else {}))
    return scene


def scene_trc(work: Path, preset: str, frames: int, motion: str = "") -> tuple[Path, Path]:
    """(TRC both tools process, truth angles). Clean: the truth keypoints; else OpenKin's reconstruction."""
    scene = build(work, preset, frames, motion)
    truth = scene / "truth" / "angles.mot"
    if preset == "clean":
        return scene / "truth" / "keypoints.trc", truth
    filt = sorted((scene / "pose-3d").glob("*_filt*.trc")) if (scene / "pose-3d").exists() else []
    if not filt:
        from openkin.cli import run_stages
        run_stages(scene, ["synchronization", "association", "triangulation", "filtering"], progress_bars=False)
        filt = sorted((scene / "pose-3d").glob("*_filt*.trc"))
    if not filt:
        raise RuntimeError(f"OpenKin's reconstruction wrote no filtered TRC in {scene / 'pose-3d'}")
    return filt[0], truth


def accuracy(mot: Path, truth: Path) -> dict:
    """MPJAE (main coordinates) and RMSE per group of COORDS."""
    res, tru = read_mot(mot), read_mot(truth)
    main = compare_angles(res, tru, coordinates=["main"])
    lower = compare_angles(res, tru, coordinates=["lower"])
    every = compare_angles(res, tru)["per_coordinate_deg"]
    rmse = {k: float(np.sqrt(np.mean([every[c]["rmse"] ** 2 for c in cs if c in every]))) for k, cs in COORDS.items()}
    return {"mpjae": main["mpjae"][0], "mpjae_lower": lower["mpjae"][0], "rmse": rmse}


def self_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def run_openkin(trc: Path, out: Path, simple: bool) -> dict:
    """Scaling + IK; CPU = this process + the IK workers' own CPU (whatever their start method)."""
    import tomllib

    if out.exists():
        shutil.rmtree(out)
    c0, t0 = self_cpu(), time.perf_counter()
    mot = run_trials([trc], out, KinematicsOptions(use_simple_model=simple))[0]
    seconds, cpu = time.perf_counter() - t0, self_cpu() - c0
    summary = tomllib.loads(mot.with_name(f"{mot.stem}_kinematics.toml").read_text())
    if summary.get("ik_workers", 1) > 1:
        cpu += summary["ik_cpu_seconds"]
    return {"seconds": seconds, "cpu": cpu, "mot": mot}


def solver_alone(trc: Path, osim_model: Path) -> float:
    """Seconds inside OpenSim's assemble/track for all frames, one process, the scaled model."""
    from openkin.formats.trc import read_trc
    from openkin.kinematics import ik
    from openkin.kinematics.setup import load_model, read_ik_tasks, setup_files

    data = read_trc(trc)
    model, state = load_model(osim_model)
    used = [m for m in data.marker_names if model.getMarkerSet().contains(m)]
    tasks = read_ik_tasks(setup_files("HALPE_26")[1])
    xyz = data.xyz[:, [data.marker_names.index(m) for m in used]]
    keep = np.isfinite(xyz).all(axis=(1, 2))
    job = ik.IkJob(str(osim_model), used, xyz[keep], data.times[keep], tasks.marker_weights, tasks.coordinate_tasks)
    return ik.solve(job, model, state).solver_seconds


_P2S_RUNNER = r"""
import json, os, sys, time, logging
import matplotlib
matplotlib.use("Agg")
from Pose2Sim import Pose2Sim
os.chdir(sys.argv[1])
w, c = time.perf_counter(), time.process_time()
Pose2Sim.kinematics(sys.argv[1])
print("P2S_TIMES " + json.dumps({"wall": time.perf_counter() - w, "cpu": time.process_time() - c}))
"""


def run_pose2sim_kinematics(trc: Path, project: Path, simple: bool, rate: float) -> dict:
    """Pose2Sim's kinematics stage on a copy of ``trc``; wall and CPU seconds of the stage call only."""
    import os
    import subprocess

    from pose2sim_env import ensure_venv, write_config

    if project.exists():
        shutil.rmtree(project)
    (project / "pose-3d").mkdir(parents=True)
    shutil.copy(trc, project / "pose-3d" / trc.name)
    write_config(project, {"project": {"multi_person": False, "frame_rate": rate, "frame_range": "all"},
                           "pose": {"pose_model": "Body_with_feet"},
                           "kinematics": {"use_augmentation": False, "use_simple_model": simple}})
    proc = subprocess.run([str(ensure_venv()), "-c", _P2S_RUNNER, str(project)], capture_output=True, text=True,
                          env=dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore"), timeout=3600)
    line = next((ln for ln in proc.stdout.splitlines()[::-1] if ln.startswith("P2S_TIMES ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"Pose2Sim kinematics failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    times = json.loads(line.split(" ", 1)[1])
    return {"seconds": times["wall"], "cpu": times["cpu"], "mot": project / "kinematics" / f"{trc.stem}.mot"}


def report(scene: str, model: str, frames: int, ours: dict, theirs: dict | None, solver: float) -> list[str]:
    acc_o = accuracy(ours["mot"], ours["truth"])
    lines = [f"\n=== {scene} scene, {model} model, {frames} frames ===",
             f"{'':18s}{'OpenKin':>10s}{'Pose2Sim':>10s}"]
    acc_p = accuracy(theirs["mot"], ours["truth"]) if theirs else None
    fmt = lambda v: f"{v:10.2f}" if v is not None and np.isfinite(v) else f"{'-':>10s}"  # noqa: E731
    lines.append(f"{'MPJAE (deg)':18s}{fmt(acc_o['mpjae'])}{fmt(acc_p['mpjae'] if acc_p else None)}")
    lines.append(f"{'MPJAE lower':18s}{fmt(acc_o['mpjae_lower'])}{fmt(acc_p['mpjae_lower'] if acc_p else None)}")
    for k in COORDS:
        lines.append(f"{k + ' RMSE':18s}{fmt(acc_o['rmse'][k])}{fmt(acc_p['rmse'][k] if acc_p else None)}")
    lines.append(f"{'wall s':18s}{fmt(ours['seconds'])}{fmt(theirs['seconds'] if theirs else None)}")
    lines.append(f"{'frames/s':18s}{fmt(frames / ours['seconds'])}"
                 f"{fmt(frames / theirs['seconds'] if theirs else None)}")
    lines.append(f"{'CPU s':18s}{fmt(ours['cpu'])}{fmt(theirs['cpu'] if theirs else None)}"
                 "   (OpenKin: main process + IK workers)")
    if np.isfinite(solver):
        lines.append(f"OpenSim solver alone (assemble/track, 1 process): {solver:.2f} s = {frames / solver:.0f} frames/s; "
                     f"OpenKin scaling+IK wall / solver alone = {ours['seconds'] / solver:.2f}")
    if acc_p:
        ratio = acc_o["mpjae"] / acc_p["mpjae"]
        speed = theirs["seconds"] / ours["seconds"]
        lines.append(f"GOAL MPJAE ratio OpenKin/Pose2Sim = {ratio:.2f} (goal <= 0.70): {'MET' if ratio <= 0.7 else 'NOT MET'}")
        lines.append(f"GOAL speed ratio Pose2Sim/OpenKin = {speed:.2f}x wall (goal >= 5x): "
                     f"{'MET' if speed >= 5 else 'NOT MET'}; CPU ratio {theirs['cpu'] / ours['cpu']:.2f}x")
    if scene.endswith("clean"):
        worst = max(acc_o["rmse"][k] for k in FLEXION)
        lines.append(f"GOAL hip/knee/ankle flexion RMSE max = {worst:.2f} deg (goal < 2): {'MET' if worst < 2 else 'NOT MET'}")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=720)
    p.add_argument("--scenes", default="clean,realistic")
    p.add_argument("--models", default="simple,full")
    p.add_argument("--motions", default="generated",
                   help="'generated' and/or real motions of openkin.synth.real_motions, e.g. generated,walk,tennis")
    p.add_argument("--no-pose2sim", action="store_true")
    p.add_argument("--no-solver-alone", action="store_true", help="skip timing OpenSim's solver alone")
    p.add_argument("--work", type=Path, default=Path("/tmp/openkin_bench_kinematics"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    out: list[str] = []
    for motion, preset in ((m, s) for m in args.motions.split(",") for s in args.scenes.split(",")):
        real = "" if motion == "generated" else motion
        trc, truth = scene_trc(args.work, preset, args.frames, real)
        rate = read_mot(truth).rate
        from openkin.formats.trc import read_trc
        n_frames = read_trc(trc).n_frames
        for model in args.models.split(","):
            simple = model == "simple"
            tag = f"{preset}_{model}" + (f"_{real}" if real else "")
            ours = run_openkin(trc, args.work / f"openkin_{tag}", simple)
            ours["truth"] = truth
            solver = float("nan") if args.no_solver_alone else solver_alone(trc, ours["mot"].with_suffix(".osim"))
            theirs = None if args.no_pose2sim else run_pose2sim_kinematics(
                trc, args.work / f"pose2sim_{tag}", simple, rate)
            lines = report(f"{motion} {preset}", model, n_frames, ours, theirs, solver)
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            out += lines
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reconstruction benchmark: triangulation throughput, whole-reconstruction speed and accuracy
against Pose2Sim 0.10.49, side by side in one run. Prints its figures (not a test).

    .venv/bin/python tests/bench/bench_reconstruction.py            # everything
    .venv/bin/python tests/bench/bench_reconstruction.py --only throughput
    .venv/bin/python tests/bench/bench_reconstruction.py --only speed,accuracy --frames 300 --scenes mild,multi
    .venv/bin/python tests/bench/bench_reconstruction.py --only speed --repeat 5   # median of 5 pairs

Sections:

1. throughput: frames/s of the triangulation kernels on a synthetic ring rig (4 and 16
   cameras × 26 keypoints) with detector-like corruption (2-3 px noise, 4% confident
   outliers, left/right swaps in two cameras): plain weighted DLT (normal equations vs
   batched SVD), robust DLT (drop-worst-view), and the whole person reconstruction
   (undistortion, swap correction, robust DLT, gap filling). Goals: ≥ 50,000 frames/s
   with 4 cameras, ≥ 5,000 with 16.
2. speed: association → triangulation → filtering on a 600-frame 4-camera synth scene
   ('mild'), OpenKin's stages in this process (JSON reading and writing included) vs
   Pose2Sim's ``personAssociation()``, ``triangulation()``, ``filtering()`` in its own
   venv (see ``pose2sim_env.py``; interpreter start-up not counted). Goal: ≥ 100×. OpenKin is
   timed with ``pose/``'s keypoint cache present (``openkin/cache/``, which the pose stage's
   run record fills: hashing its output parses it) and, for reference, without any cache.
3. accuracy: both pipelines (synchronisation first on scenes with time offsets) on the
   synth scenes (``*_synced``: the same scene without time offsets, so that association
   and triangulation are compared rather than synchronisation); MPJPE / PA-MPJPE (mm) of
   the filtered TRC on the keypoints both write
   (Pose2Sim's 22), raw (unfiltered) MPJPE, % frames, offsets error (frames), identity
   switches. Goals: never worse than Pose2Sim, ≤ 0.7× on realistic scenes, offsets within
   ±0.5 frame, 0 identity switches.

4. cameras: association and triangulation frames/s and MPJPE with 4, 16 and 32 cameras
   (synth 'multi'); Pose2Sim's triangulation does not finish at 16 cameras.

Scenes are built in ``--work`` (default ``~/.cache/openkin/bench/recon-work``) with fixed seeds.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "engine"))  # recon_rig (the test rig)

import pose2sim_env  # noqa: E402
from pose2sim_env import cache_dir, copy_project, run_pose2sim  # noqa: E402
from recon_rig import ring_rig, walking_points  # noqa: E402

from openkin import association, filtering, refinement, synchronization, triangulation  # noqa: E402
from openkin.filtering import stage as filtering_stage  # noqa: E402
from openkin.config import load_config  # noqa: E402
from openkin.evaluate import evaluate_trial  # noqa: E402
from openkin.formats.trc import read_trc  # noqa: E402
from openkin.project import ProjectPaths  # noqa: E402
from openkin.skeletons import HALPE_26  # noqa: E402
from openkin.synth.build import build_scene  # noqa: E402
from openkin.synth import PRESETS  # noqa: E402
from openkin import geometry  # noqa: E402
from openkin.triangulation import swaps  # noqa: E402
from openkin.geometry import Rig, triangulate_robust  # noqa: E402
from openkin.inputs import prepare_points  # noqa: E402
from openkin.triangulation.core import TriangulationParams, reconstruct_person  # noqa: E402

log = logging.getLogger("bench_reconstruction")
P2S_MARKERS = ["Hip", "RHip", "RKnee", "RAnkle", "RBigToe", "RSmallToe", "RHeel", "LHip", "LKnee", "LAnkle",
               "LBigToe", "LSmallToe", "LHeel", "Neck", "Head", "Nose", "RShoulder", "RElbow", "RWrist",
               "LShoulder", "LElbow", "LWrist"]
# name -> (synth preset, overrides). The '_synced' variants drop the time offsets so the
# comparison measures association and triangulation rather than synchronisation.
REFINE = True  # accuracy section: OpenKin's default pipeline (calibration refinement on); --no-refine turns it off
SCENES = {
    "clean": ("clean", {}), "mild": ("mild", {}), "realistic": ("realistic", {}),
    "realistic_synced": ("realistic", {"max_offset_frames": 0.0}), "multi": ("multi", {}),
    "desync": ("desync", {}), "realistic_multi": ("realistic_multi", {}),
    "realistic_multi_synced": ("realistic_multi", {"max_offset_frames": 0.0}),
}
REALISTIC = ("realistic", "realistic_synced", "realistic_multi", "realistic_multi_synced")
SEED = 11


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def best_of(fn, repeat: int = 3, clock=time.perf_counter) -> float:
    """Smallest time of ``repeat`` calls (the machine is shared: the minimum is the least noisy).
    ``clock=time.process_time`` gives this process's CPU time, which other users' load does not
    inflate as much (the kernels are single-threaded)."""
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


# ============================================================================ 1. throughput
def corrupted_views(n_cams: int, n_frames: int, seed: int = 0):
    """Synthetic detections ``(C,F,26,3)`` of a HALPE_26-like body on a ring rig, corrupted."""
    K, R, t, d = ring_rig(n_cams, dist=[-0.05, 0.01, 0.0, 0.0, 0.0])
    names = list(HALPE_26.names)
    X = walking_points(n_frames, 26, seed=seed)
    for i, n in enumerate(names):
        if n[0] == "L" and n[1].isupper():
            X[:, i, 1] = X[:, names.index("R" + n[1:]), 1] + 0.25
    rng = np.random.default_rng(seed)
    from recon_rig import project_distorted

    uv = project_distorted(K, R, t, d, X.reshape(-1, 3)).reshape(n_cams, n_frames, 26, 2)
    uv += rng.normal(0, 2.5, uv.shape)
    out_mask = rng.random(uv.shape[:3]) < 0.04
    ang = rng.uniform(0, 2 * np.pi, out_mask.sum())
    uv[out_mask] += np.stack([np.cos(ang), np.sin(ang)], 1) * rng.uniform(50, 300, out_mask.sum())[:, None]
    mirror = np.arange(26)
    for left, right in swaps.lr_pairs(names).values():
        mirror[left], mirror[right] = right, left
    frames = rng.random(n_frames) < 0.07
    for c in (1, 2):
        uv[c, frames] = uv[c, frames][:, mirror]
    conf = np.clip(rng.normal(0.9, 0.05, uv.shape[:3]), 0, 1)
    kp = np.concatenate([uv, conf[..., None]], axis=-1)
    return kp, Rig(K, R, t, d), names, X


def throughput(frames4: int, frames16: int) -> dict:
    out("\n== 1. Triangulation throughput, frames/s (26 keypoints, detector-like corruption; best of 3;"
        " wall clock, and CPU time of this process in brackets)")
    out(f"{'cameras':>8} {'frames':>7} {'DLT normal eq.':>15} {'DLT batched SVD':>16} {'robust DLT':>20} "
        f"{'whole person':>20} {'goal':>7}")
    res = {}
    for C, F, goal in ((4, frames4, 50_000), (16, frames16, 5_000)):
        kp, rig, names, X = corrupted_views(C, F)
        P = rig.P
        pts, w = prepare_points(kp, rig, True, 0.3)
        flat, wf = pts.reshape(C, -1, 2), w.reshape(C, -1)
        n_svd = min(F, 2000) * 26
        params = TriangulationParams()
        runs = {
            "dlt": lambda: geometry.triangulate_dlt(flat, wf, P),
            "svd": lambda: geometry.triangulate_dlt_svd(flat[:, :n_svd], wf[:, :n_svd], P),
            "robust": lambda: triangulate_robust(flat, wf, P, 15.0, 2),
            "person": lambda: reconstruct_person(*prepare_points(kp, rig, True, 0.3), rig, names, params),
        }
        row = {}
        for key, fn in runs.items():
            n = n_svd / 26 if key == "svd" else F
            row[key] = n / best_of(fn)
            row[key + "_cpu"] = n / best_of(fn, clock=time.process_time)
        r = reconstruct_person(pts, w, rig, names, params)
        row["error_mm"] = float(np.nanmean(np.linalg.norm(r.xyz - X, axis=-1)) * 1000)
        res[C] = row
        met = "met" if max(row["robust"], row["robust_cpu"]) >= goal else "NOT met"
        met_p = "met" if row["person"] >= goal else "NOT met"
        out(f"{C:>8} {F:>7} {row['dlt']:>15,.0f} {row['svd']:>16,.0f} "
            f"{row['robust']:>9,.0f} ({row['robust_cpu']:>7,.0f}) {row['person']:>9,.0f} ({row['person_cpu']:>7,.0f}) "
            f"{goal:>7,} robust DLT {met}, whole person (wall) {met_p}   "
            f"(whole-person error {row['error_mm']:.1f} mm)")
    out("  robust DLT = weighted DLT + drop-worst-view rejection; whole person adds undistortion, "
        "left/right swap correction and gap filling")
    return res


# ============================================================================ pipelines
def openkin_pipeline(scene: Path, sync: bool, refine: bool = False, cpu: dict | None = None) -> dict[str, float]:
    """OpenKin's stages in this process; seconds per stage. ``refine``: the calibration
    refinement stage (on by default in OpenKin; Pose2Sim has no counterpart) before triangulation.
    ``cpu``: filled with each stage's CPU seconds (this process, all threads)."""
    cfg = load_config(scene, overrides={"filtering": {"save_filt_plots": False}})
    paths = ProjectPaths(scene)
    for d in (paths.pose_sync, paths.pose_associated, paths.pose_3d):
        shutil.rmtree(d, ignore_errors=True)
    for stale in paths.calibration.glob("Calib_refined.toml*"):
        stale.unlink()
    stages = ([("synchronization", synchronization)] if sync else []) + [("association", association)] + (
        [("refinement", refinement)] if refine else []) + [("triangulation", triangulation), ("filtering", filtering_stage)]
    times = {}
    for name, mod in stages:
        t0, c0 = time.perf_counter(), time.process_time()
        mod.run_stage(cfg, paths)
        times[name] = time.perf_counter() - t0
        if cpu is not None:
            cpu[name] = time.process_time() - c0
    return times


def pose2sim_pipeline(scene: Path, dest: Path, sync: bool, multi: bool, rate: float) -> dict[str, float]:
    copy_project(scene, dest, keep=("calibration", "pose"))
    stages = (["synchronization"] if sync else []) + ["personAssociation", "triangulation", "filtering"]
    overrides = {"project": {"multi_person": multi, "frame_rate": rate, "frame_range": "all"},
                 "pose": {"pose_model": "Body_with_feet"}}
    return run_pose2sim(dest, stages, overrides=overrides)


# ============================================================================ 2. speed
def compute_only(scene: Path) -> dict[str, float]:
    """OpenKin's work without file I/O: the same kernels on arrays already in memory; seconds."""
    from openkin.calibration import find_calibration
    from openkin.filtering import filter_array
    from openkin.inputs import read_views, skeleton_of
    from openkin.triangulation.stage import params_from_config

    cfg = load_config(scene)
    paths = ProjectPaths(scene)
    t0 = time.perf_counter()
    views = read_views(paths.pose, find_calibration(paths))
    t_read = time.perf_counter() - t0
    names = list(skeleton_of(cfg).names)
    aparams = association.params_from_config(cfg, names)
    tparams = params_from_config(cfg)
    rig = Rig.from_cameras(views.cameras)
    f = cfg.filtering

    def work():
        a = association.associate(views, aparams, multi=False)
        res = reconstruct_person(*prepare_points(a.person_keypoints(0), rig, True, tparams.likelihood_threshold),
                                 rig, names, tparams)
        filter_array(res.xyz[res.start:res.stop], 60.0, f.type, reject_outliers=f.reject_outliers)

    return {"read JSON": t_read, "compute": best_of(work)}


def speed(work: Path, frames: int, repeat: int = 1) -> dict:
    out(f"\n== 2. Whole reconstruction (association → triangulation → filtered TRC), {frames} frames, 4 cameras")
    scene = build_scene(work / "speed_mild", "mild", n_frames=frames, seed=SEED, overwrite=True).path
    cold = openkin_pipeline(scene, sync=False)  # no keypoint cache yet: every pose file parsed
    p2s = pose2sim_pipeline(scene, work / "speed_mild_pose2sim", sync=False, multi=False, rate=60.0)
    ok = openkin_pipeline(scene, sync=False)    # pose/'s cache present, as the pose stage's record leaves it
    ratios = [sum(p2s.values()) / sum(ok.values())]
    cpu_ratios = []
    for _ in range(repeat - 1):  # the pair again (the machine's load changes: each pair is side by side)
        p2s_i = pose2sim_pipeline(scene, work / "speed_mild_pose2sim", sync=False, multi=False, rate=60.0)
        p2s_cpu = sum(pose2sim_env.LAST_CPU.values())
        ok_cpu: dict = {}
        ok_i = openkin_pipeline(scene, sync=False, cpu=ok_cpu)
        ratios.append(sum(p2s_i.values()) / sum(ok_i.values()))
        cpu_ratios.append(p2s_cpu / sum(ok_cpu.values()) if p2s_cpu else float("nan"))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        out(f"  repeat {len(ratios)}: Pose2Sim {sum(p2s_i.values()):.2f} s, OpenKin {sum(ok_i.values()):.3f} s "
            f"= {ratios[-1]:.0f}× wall; CPU {p2s_cpu:.2f} s / {sum(ok_cpu.values()):.3f} s = {cpu_ratios[-1]:.0f}× "
            f"(load {load:.1f})")
    ok_total, cold_total = sum(ok.values()), sum(cold.values())
    p2s_total = sum(p2s.values())
    out(f"{'stage':<16} {'OpenKin s':>10} {'(no cache)':>10} {'Pose2Sim s':>11} {'ratio':>7}")
    for a, b in (("association", "personAssociation"), ("triangulation", "triangulation"), ("filtering", "filtering")):
        out(f"{a:<16} {ok[a]:>10.3f} {cold[a]:>10.3f} {p2s[b]:>11.2f} {p2s[b] / ok[a]:>6.0f}×")
    ratio = p2s_total / ok_total
    out(f"{'total':<16} {ok_total:>10.3f} {cold_total:>10.3f} {p2s_total:>11.2f} {ratio:>6.0f}×   goal ≥ 100×: "
        f"{'met' if ratio >= 100 else 'NOT met'} (no cache at all: {p2s_total / cold_total:.0f}×)")
    comp = compute_only(scene)
    n_files = len(list((scene / "pose").glob("*_json/*.json")))
    out(f"  of which file I/O: reading {n_files} JSON files {comp['read JSON']:.3f} s (and writing as many to "
        f"pose-associated/); the computation alone (association + triangulation + filtering on arrays) "
        f"{comp['compute']:.3f} s = {p2s_total / comp['compute']:.0f}× faster than Pose2Sim's stages")
    if repeat > 1:
        med = float(np.median(ratios))
        out(f"  {repeat} pairs side by side: {', '.join(f'{r:.0f}×' for r in ratios)}; median {med:.0f}× "
            f"(goal ≥ 100×: {'met' if med >= 100 else 'NOT met'}); CPU time (less sensitive to the load; "
            f"leaves out waits for the disk): {', '.join(f'{r:.0f}×' for r in cpu_ratios)}, median "
            f"{float(np.median(cpu_ratios)):.0f}×")
    return {"openkin": ok, "openkin_no_cache": cold, "pose2sim": p2s, "ratio": ratio, "compute_only": comp,
            "compute_ratio": p2s_total / comp["compute"], "ratios": ratios}


# ============================================================================ 4. many cameras
def many_cameras(work: Path, frames: int, counts=(4, 16, 32)) -> list[dict]:
    """Association and triangulation frames/s and accuracy with 4, 16 and 32 cameras (synth
    'multi', two people crossing, synchronised: the stages alone; their JSON reading included).
    Pose2Sim's triangulation does not finish at 16 cameras (its camera-subset search), so it is
    not run here."""
    out(f"\n== 4. Many cameras ({frames} frames, 2 people, synth 'multi'; OpenKin's stages incl. JSON I/O)")
    out(f"{'cameras':>7} {'association f/s':>16} {'triangulation f/s':>18} {'MPJPE mm (P1, P2)':>19} {'ID sw.':>6}")
    rows = []
    for n in counts:
        scene = build_scene(work / f"cams{n}", "multi", n_frames=frames, seed=SEED, overwrite=True, cameras=n).path
        cfg = load_config(scene, overrides={"project": {"multi_person": True}})
        paths = ProjectPaths(scene)
        t0 = time.perf_counter()
        association.run_stage(cfg, paths)
        t1 = time.perf_counter()
        triangulation.run_stage(cfg, paths)
        t2 = time.perf_counter()
        res = evaluate_trial(f"cams{n}", paths.pose_3d, scene / "truth")
        row = {"cameras": n, "association_fps": frames / (t1 - t0), "triangulation_fps": frames / (t2 - t1),
               "mpjpe": [r.mpjpe for r in res], "id_switches": max((r.id_switches for r in res), default=0)}
        rows.append(row)
        out(f"{n:>7} {row['association_fps']:>16.0f} {row['triangulation_fps']:>18.0f} "
            f"{', '.join(f'{m:.1f}' for m in row['mpjpe']):>19} {row['id_switches']:>6}")
    return rows


# ============================================================================ 3. accuracy
def _result_trcs(pose3d: Path, filtered: bool) -> list[Path]:
    return sorted(p for p in pose3d.glob("*.trc") if ("_filt_" in p.name) == filtered)


def _evaluate(scene: Path, trcs: list[Path]) -> list:
    if not trcs:
        return []
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    (tmp / "pose-3d").mkdir()
    for p in trcs:
        shutil.copy(p, tmp / "pose-3d" / p.name)
    try:
        return evaluate_trial(scene.name, tmp, scene, markers=P2S_MARKERS)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def id_switches(scene: Path, trcs: list[Path]) -> int:
    """Identity changes: for each output person, how often the nearest truth person changes."""
    truths = [read_trc(p) for p in sorted((scene / "truth").glob("keypoints*.trc"))]
    if len(truths) < 2:
        return 0
    switches = 0
    for p in trcs:
        res = read_trc(p)
        names = [n for n in P2S_MARKERS if n in res.marker_names]
        ri = [res.marker_names.index(n) for n in names]
        dists = []
        for t in truths:
            ti = [t.marker_names.index(n) for n in names]
            common, a, b = np.intersect1d(res.frame_numbers, t.frame_numbers, return_indices=True)
            d = np.full(len(res.frame_numbers), np.nan)
            with np.errstate(invalid="ignore"):
                d[a] = np.nanmean(np.linalg.norm(res.xyz[a][:, ri] - t.xyz[b][:, ti], axis=-1), axis=1)
            dists.append(d)
        D = np.stack(dists)
        ok = np.isfinite(D).all(0)
        who = np.argmin(np.where(np.isfinite(D), D, np.inf), axis=0)[ok]
        switches += int((np.diff(who) != 0).sum())
    return switches


def offsets_error(scene: Path, sync_dir: Path | None, pose2sim_log: Path | None = None) -> float | None:
    """Largest |recovered - true| offset (frames) relative to the first camera."""
    import tomllib

    truth = tomllib.loads(Path(scene / "truth" / "offsets.toml").read_text())["frames"]
    cams = sorted(truth)
    if sync_dir is not None and (sync_dir / "offsets.toml").is_file():
        got = {c: v["offset_frames"] for c, v in tomllib.loads(Path(sync_dir / "offsets.toml").read_text())["cameras"].items()}
    elif pose2sim_log is not None and pose2sim_log.is_file():
        got = {}
        for m in re.finditer(r"Camera (\S+) and (\S+): (-?\d+) frames offset", pose2sim_log.read_text()):
            got[m.group(1)] = 0.0
            got[m.group(2)] = -float(m.group(3))  # Pose2Sim: file k of cam becomes k - offset
    else:
        return None
    if not got:
        return None
    ref = cams[0]
    if ref not in got:
        return None
    return max(abs((got.get(c, np.nan) - got[ref]) - (truth[c] - truth[ref])) for c in cams)


def accuracy(work: Path, frames: int, scenes: list[str]) -> list[dict]:
    out(f"\n== 3. Accuracy on synth ground-truth scenes ({frames} frames; filtered TRC, Pose2Sim's 22 keypoints; "
        f"OpenKin {'with' if REFINE else 'without'} calibration refinement)")
    out(f"{'scene':<22} {'pipeline':<9} {'MPJPE':>7} {'PA-MPJPE':>9} {'raw MPJPE':>10} {'frames':>7} "
        f"{'offsets':>8} {'ID sw.':>6} {'time s':>7}   ratio / goal")
    rows = []
    for name in scenes:
        preset, overrides = SCENES.get(name, (name, {}))
        if preset not in PRESETS:
            out(f"{name:<22} (no such preset in this version)")
            continue
        spec = {**PRESETS[preset], **overrides}
        sync = bool(spec.get("max_offset_frames", 0))
        multi = spec.get("people", 1) > 1
        scene = build_scene(work / name, preset, n_frames=frames, seed=SEED, overwrite=True, **overrides).path
        t_ok = sum(openkin_pipeline(scene, sync, refine=REFINE).values())
        paths = ProjectPaths(scene)
        try:
            t_p2s = sum(pose2sim_pipeline(scene, work / f"{name}_pose2sim", sync, multi, 60.0).values())
            p2s_dir = work / f"{name}_pose2sim"
        except RuntimeError as exc:
            out(f"{name:<22} Pose2Sim failed: {str(exc).splitlines()[-1]}")
            p2s_dir, t_p2s = None, float("nan")
        entry = {"scene": name}
        for label, pose3d, sync_dir, logf, secs in (
                ("OpenKin", paths.pose_3d, paths.pose_sync if sync else None, None, t_ok),
                ("Pose2Sim", p2s_dir / "pose-3d" if p2s_dir else None, None,
                 p2s_dir / "logs.txt" if (p2s_dir and sync) else None, t_p2s)):
            if pose3d is None or not pose3d.is_dir():
                continue
            filt = _evaluate(scene, _result_trcs(pose3d, True))
            raw = _evaluate(scene, _result_trcs(pose3d, False))
            m = float(np.nanmean([r.mpjpe for r in filt])) if filt else float("nan")
            pa = float(np.nanmean([r.pa_mpjpe for r in filt])) if filt else float("nan")
            rm = float(np.nanmean([r.mpjpe for r in raw])) if raw else float("nan")
            fr = float(np.nanmean([r.frames_pct for r in filt])) if filt else float("nan")
            off = offsets_error(scene, sync_dir, logf) if sync else None
            sw = id_switches(scene, _result_trcs(pose3d, True)) if multi else 0
            entry[label] = {"mpjpe": m, "pa_mpjpe": pa, "raw_mpjpe": rm, "frames_pct": fr, "offsets": off,
                            "id_switches": sw, "seconds": secs}
        rows.append(entry)
        for label in ("OpenKin", "Pose2Sim"):
            e = entry.get(label)
            if not e:
                continue
            verdict = ""
            if label == "Pose2Sim" and "OpenKin" in entry:
                ratio = entry["OpenKin"]["mpjpe"] / e["mpjpe"]
                goal = 0.7 if name in REALISTIC else 1.0
                verdict = f"OpenKin/Pose2Sim {ratio:.2f} (goal ≤ {goal}): {'met' if ratio <= goal else 'NOT met'}"
            off = "-" if e["offsets"] is None else f"{e['offsets']:.2f}"
            out(f"{name:<22} {label:<9} {e['mpjpe']:>7.1f} {e['pa_mpjpe']:>9.1f} {e['raw_mpjpe']:>10.1f} "
                f"{e['frames_pct']:>6.0f}% {off:>8} {e['id_switches']:>6} {e['seconds']:>7.1f}   {verdict}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="throughput,speed,accuracy")
    ap.add_argument("--frames", type=int, default=600, help="frames of the synth scenes")
    ap.add_argument("--scenes", default=",".join(SCENES), help=f"among {', '.join(SCENES)} or any synth preset")
    ap.add_argument("--work", type=Path, default=cache_dir() / "recon-work",
                    help="folder for scenes and results (kept; default in the OpenKin cache; avoid /tmp, "
                         "where creating files measured 40× slower on the benchmark machine)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--repeat", type=int, default=1,
                    help="speed: run the Pose2Sim/OpenKin pair this many times (each side by side) and "
                         "give the median ratio (the machine's load varies)")
    ap.add_argument("--no-refine", action="store_true",
                    help="accuracy without OpenKin's calibration refinement stage (on by default)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    only = set(args.only.split(","))
    global REFINE
    REFINE = not args.no_refine
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    out(f"OpenKin reconstruction benchmark — work folder {work}")
    out(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(1/5/15 min; figures scale with it)")
    figures = {}
    if "throughput" in only:
        figures["throughput"] = throughput(20_000, 4_000)
    if "speed" in only:
        figures["speed"] = speed(work, args.frames, args.repeat)
    if "accuracy" in only:
        figures["accuracy"] = accuracy(work, args.frames, [s for s in args.scenes.split(",") if s])
    if "cameras" in only:
        figures["cameras"] = many_cameras(work, args.frames)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Long-take benchmark: a 10-minute take at 60 fps from 8 cameras (36,000 frames, 288,000
camera-frames, synth 'mild' with time offsets) through synchronization, association,
triangulation, filtering and IK. Prints wall time, CPU time and peak memory (RSS) per stage
(goal: peak ≤ 4 GB). Not a test.

    .venv/bin/python tests/bench/bench_long_take.py                  # 10 min × 8 cameras
    .venv/bin/python tests/bench/bench_long_take.py --minutes 1      # a quicker look

Each stage runs in its own child process (``python -c``; interpreter start-up included, a
few hundred ms), so its peak RSS (``os.wait4``) is the stage's own; a tqdm bar with the time
left is shown per stage on stderr. The scene (its pose JSON and calibration) is built once
into ``--cache`` (default ``~/.cache/openkin/bench/long-take``) and reused by later runs;
every run works on a copy of its ``pose/`` and ``calibration/`` in ``--work``. IK uses
OpenKin's batch solver (``[kinematics] ik_solver = 'openkin'``; OpenSim's InverseKinematicsTool
takes ~10 ms a frame, 6 minutes for 36,000 frames on this machine, and is not what is
measured here); augmentation is off (``use_augmentation = false``), as its LSTM is another stage.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENGINE = HERE.parent.parent / "engine"
sys.path.insert(0, str(ENGINE))

STAGES = [("synchronization", "openkin.synchronization"), ("association", "openkin.association"),
          ("triangulation", "openkin.triangulation"), ("filtering", "openkin.filtering.stage"),
          ("kinematics", "openkin.kinematics")]
OVERRIDES = {"kinematics": {"ik_solver": "openkin", "use_augmentation": False},
             "filtering": {"save_filt_plots": False}, "project": {"frame_range": "all"}}
CHILD = """
import json, sys, time
from openkin.config import load_config
from openkin.project import ProjectPaths
from openkin.progress import tqdm_progress
import importlib
from pathlib import Path
name, module, project, overrides = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
mod = importlib.import_module(module)
cfg = load_config(project, overrides=overrides)
cb, close = tqdm_progress(name)
t0 = time.perf_counter()
try:
    mod.run_stage(cfg, ProjectPaths(project), cb)
finally:
    close()
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def build(cache: Path, minutes: float, cameras: int, seed: int = 7) -> Path:
    """The synth scene in ``cache`` (built once; a ``.done`` stamp names its parameters)."""
    from openkin.synth.build import build_scene

    frames = int(round(minutes * 60 * 60))
    scene = cache / f"mild_{cameras}cam_{frames}f"
    stamp = scene / ".done"
    if stamp.is_file():
        return scene
    t0 = time.perf_counter()
    build_scene(scene, "mild", n_frames=frames, seed=seed, overwrite=True, cameras=cameras,
                max_offset_frames=10.0)
    stamp.write_text(json.dumps({"frames": frames, "cameras": cameras, "seconds": time.perf_counter() - t0}))
    print(f"built the scene in {time.perf_counter() - t0:.0f} s (once; cached in {scene})", flush=True)
    return scene


def run_stage(name: str, module: str, project: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ENGINE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, name, module, str(project), json.dumps(OVERRIDES)],
                            env=env, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {proc.returncode})")
    inner = json.loads(out.strip().splitlines()[-1])["seconds"]
    return {"wall": wall, "stage": inner, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "openkin" / "bench" / "long-take")
    ap.add_argument("--work", type=Path, default=Path("/tmp/openkin-long-take"))
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--stages", default=",".join(n for n, _ in STAGES))
    args = ap.parse_args(argv)
    scene = build(args.cache, args.minutes, args.cameras)
    if args.build_only:
        return 0
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    for sub in ("pose", "calibration"):
        shutil.copytree(scene / sub, args.work / sub, copy_function=os.link)  # hard links: no copy of GBs
    for f in scene.glob("*.toml"):
        shutil.copy2(f, args.work / f.name)
    n_files = sum(1 for _ in (args.work / "pose").glob("*_json/*.json"))
    print(f"long take: {args.minutes:g} min at 60 fps × {args.cameras} cameras = {n_files:,} pose files; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    wanted = args.stages.split(",")
    rows = {}
    for name, module in STAGES:
        if name in wanted:
            rows[name] = run_stage(name, module, args.work)
            r = rows[name]
            print(f"  {name:<16} {r['stage']:8.1f} s  (process {r['wall']:.1f} s, CPU {r['cpu']:.1f} s)  "
                  f"peak {r['peak_mb']:7.0f} MB   load average {os.getloadavg()[0]:.1f}", flush=True)
    peak = max(r["peak_mb"] for r in rows.values())
    total = sum(r["stage"] for r in rows.values())
    print(f"  {'total':<16} {total:8.1f} s   peak {peak:.0f} MB = {peak / 1024:.2f} GB   "
          f"goal ≤ 4 GB: {'met' if peak <= 4096 else 'NOT met'}")
    print(f"  (this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

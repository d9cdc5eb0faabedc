"""Import speed in Blender: OpenKin's add-on vs Pose2Sim_Blender, same files, same bpy, one run.

    .venv/bin/python tests/bench/bench_blender_import.py [--frames 10000]

The capture: a synthetic person (``openkin.synth``, OpenSim forward kinematics) of
N frames at 60 fps — a TRC of 26 markers and the MOT of the 40 coordinates of
Pose2Sim's model, with the model (.osim) and its bone meshes. Each importer builds
the animated markers and the animated skeleton with its meshes from these files
(OpenKin: markers + armature + skinned bone mesh; Pose2Sim_Blender: ``import_trc``
(no TRC rig), ``import_model``, ``apply_mot_to_model``). Prints both times and the
ratio (goal ≥ 20×).

Pose2Sim_Blender (MIT, https://github.com/davidpagnon/Pose2Sim_Blender) is never
part of this repository. The bench uses ``$POSE2SIM_BLENDER_DIR`` (a checkout), or
exports the ``fetch``ed mirror ``/work/.mirror/davidpagnon+Pose2Sim_Blender/repo``
(``$POSE2SIM_BLENDER_MIRROR``) into the cache. Get it with
``git clone https://github.com/davidpagnon/Pose2Sim_Blender`` and set
``POSE2SIM_BLENDER_DIR``. Its one extra dependency, ``anytree``, is pip-installed
into a bench-only folder of the cache on first use.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MIRROR = Path(os.environ.get("POSE2SIM_BLENDER_MIRROR", "/work/.mirror/davidpagnon+Pose2Sim_Blender/repo"))
MODEL = "OpenSim_Setup/Model_Pose2Sim_simple.osim"


def cache_dir() -> Path:
    base = Path(os.environ.get("OPENKIN_CACHE") or Path.home() / ".cache" / "openkin")
    out = base / "bench" / "blender_import"
    out.mkdir(parents=True, exist_ok=True)
    return out


def make_capture(frames: int) -> dict[str, Path]:
    """TRC + MOT + OSIM of a synthetic person, made once per frame count."""
    from openkin.assets import asset_path
    from openkin.synth import build_scene

    root = cache_dir() / f"capture_{frames}"
    if not (root / "truth" / "angles.mot").is_file():
        shutil.rmtree(root, ignore_errors=True)
        build_scene(root, "clean", n_frames=frames, seed=0)
    osim = root / "model.osim"
    if not osim.is_file():
        shutil.copy(asset_path(MODEL), osim)
    return {"trc": root / "truth" / "keypoints.trc", "mot": root / "truth" / "angles.mot", "osim": osim}


def pose2sim_blender() -> Path:
    """Folder that holds the ``Pose2Sim_Blender`` package (exported from the mirror if needed)."""
    env = os.environ.get("POSE2SIM_BLENDER_DIR")
    if env:
        src = Path(env)
        parent = cache_dir() / "p2sb_env"
        link = parent / "Pose2Sim_Blender"
        if not link.exists():
            parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(src.resolve())
        return parent
    if not MIRROR.exists():
        raise SystemExit("Pose2Sim_Blender not found: git clone https://github.com/davidpagnon/Pose2Sim_Blender "
                         "and set POSE2SIM_BLENDER_DIR to the clone")
    parent = cache_dir() / "p2sb_mirror"
    dest = parent / "Pose2Sim_Blender"
    if not (dest / "__init__.py").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", f"--git-dir={MIRROR}", "archive", "HEAD", "__init__.py", "Pose2Sim_Blender"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return parent


def ensure_anytree() -> None:
    try:
        import anytree  # noqa: F401
        return
    except ImportError:
        pass
    deps = cache_dir() / "deps"
    if not (deps / "anytree").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(deps), "anytree"], check=True)
    sys.path.append(str(deps))


def run_openkin(files: dict[str, Path]) -> dict[str, float]:
    import bpy

    from blender_addon.core import capture
    from blender_addon.scene import build
    from openkin import assets

    bpy.ops.wm.read_factory_settings(use_empty=True)
    options = build.BuildOptions(cache_dir=cache_dir() / "addon_cache",
                                 geometry_dirs=[assets.asset_path("OpenSim_Setup/Geometry")])
    person = capture.PersonFiles("P0", files["trc"], files["osim"], files["mot"])
    t0 = time.perf_counter()
    cap = capture.load_capture(capture.CaptureFiles(None, None, [], [person]))
    t1 = time.perf_counter()
    build.build_capture(bpy.context, cap, options)
    t2 = time.perf_counter()
    return {"read + OpenSim body frames": t1 - t0, "scene build": t2 - t1, "total": t2 - t0}


def run_pose2sim_blender(files: dict[str, Path], parent: Path) -> dict[str, float]:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sys.path.insert(0, str(parent))
    ensure_anytree()
    from Pose2Sim_Blender.Pose2Sim_Blender import markers, model, motion

    stl = parent / "Pose2Sim_Blender" / "Pose2Sim_Blender" / "Geometry"
    t0 = time.perf_counter()
    markers.import_trc(str(files["trc"]), direction="zup", target_framerate="auto", armature_type="none")
    t1 = time.perf_counter()
    model.import_model(str(files["osim"]), stlRoot=str(stl))
    t2 = time.perf_counter()
    motion.apply_mot_to_model(str(files["mot"]), str(files["osim"]), direction="zup")
    t3 = time.perf_counter()
    return {"markers (TRC)": t1 - t0, "model": t2 - t1, "motion (MOT)": t3 - t2, "total": t3 - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--skip-reference", action="store_true", help="time OpenKin only")
    args = ap.parse_args()
    import logging
    logging.basicConfig(level=logging.WARNING)
    files = make_capture(args.frames)
    out = sys.stdout
    out.write(f"capture: {args.frames} frames, 26 markers, 22 bodies / 40 coordinates ({files['trc'].parent})\n")
    ours = run_openkin(files)
    out.write("OpenKin add-on:    " + ", ".join(f"{k} {v:.2f} s" for k, v in ours.items()) + "\n")
    if args.skip_reference:
        return 0
    parent = pose2sim_blender()
    ref = run_pose2sim_blender(files, parent)
    out.write("Pose2Sim_Blender:  " + ", ".join(f"{k} {v:.2f} s" for k, v in ref.items()) + "\n")
    out.write(f"speed-up: {ref['total'] / ours['total']:.1f}x (goal >= 20x)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

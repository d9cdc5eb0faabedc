"""Time to retarget and export a long take, per format (issue #13's number).

    .venv/bin/python tests/bench/bench_export.py [--frames 10000] [--rigs skeleton,mixamo] [--formats fbx,bvh,glb,usd,abc]

The take: an armature of OpenKin's humanoid bones (``openkin.character.humanoid``) with N
frames at 60 fps, every bone turning on smooth random curves and the hips walking (the
export tests' character). For each rig: retarget onto it (``blender_addon.retarget``; the
skeleton itself needs none), then export to each format with :mod:`blender_addon.export`
(sampling the evaluated pose on every frame + Blender's exporter writing the file). Prints
seconds per step and the file sizes; run it on an idle machine (or say the load).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "addon"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--rigs", default="skeleton,mixamo", help="skeleton, mixamo, rigify (comma-separated)")
    p.add_argument("--formats", default="fbx,bvh,glb,usd,abc")
    args = p.parse_args(argv)

    import bpy

    from blender_addon.export import export_armatures
    from export_helpers import humanoid_armature

    out = Path(tempfile.mkdtemp(prefix="bench_export_"))
    print(f"take: {args.frames} frames at 60 fps; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'rig':10s} {'step':10s} {'seconds':>9s} {'MB':>8s}")
    for rig in args.rigs.split(","):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.context.scene.render.fps = 60
        t0 = time.perf_counter()
        source = humanoid_armature("P0 animation", 1, args.frames, seed=3)
        source["openkin_role"] = "animation"
        build = time.perf_counter() - t0
        print(f"{rig:10s} {'source':10s} {build:9.2f}")
        target = source
        if rig != "skeleton":
            from blender_addon.retarget import retarget

            t0 = time.perf_counter()
            target = retarget(bpy.context, source, rig, deform=True)
            print(f"{rig:10s} {'retarget':10s} {time.perf_counter() - t0:9.2f}")
        for fmt in args.formats.split(","):
            t0 = time.perf_counter()
            (path,) = export_armatures(bpy.context, [target], out / f"{rig}.{fmt}", fmt)
            dt = time.perf_counter() - t0
            print(f"{rig:10s} {fmt:10s} {dt:9.2f} {path.stat().st_size / 1e6:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retarget fidelity and speed, measured on what Blender evaluates (bpy module).

    .venv/bin/python tests/bench/bench_retarget.py [--frames 10000] [--rigify-frames 1000]
        [--blend FILE --source OBJECT]   # e.g. a .blend with OpenKin's animation armature

Sources: a walking humanoid armature (``blender_addon.retarget.walk``, N frames at 60 fps), or
an armature from a .blend (anim's animation skeleton of the demo). Targets: Mixamo's standard
skeleton (T-pose), a UE-mannequin-named A-pose character with longer legs under an FBX-style
object transform (cm data, rotated, scaled 0.01), and a Rigify rig generated from the human
metarig (FK controls, then DEF bones). Prints per target: the time to retarget, per mapped
joint the mean/max world-position error after scaling by the height ratio (and relative to the
hips), the largest limb-direction error over all frames (goal ≤ 5°), the foot slide per contact
on the target (goal ≤ 5 mm) with the source's next to it, the same without foot locking, and
with the hips path scaled by the height ratio instead of the leg ratio (the default scales it
by the leg ratio so strides fit the legs; over a long walk the world positions then drift from
the height-scaled source by the ratios' difference, which the hips-relative column leaves out).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "engine"), str(ROOT / "tests" / "addon")]


def _report(name, seconds, frames, m, m_free=None):
    joints = m["joints"]
    print(f"\n== {name}: {frames} frames retargeted in {seconds:.2f} s ({frames / seconds:.0f} frames/s)")
    print(f"   {'joint':12s} {'mean mm':>8s} {'max mm':>8s} {'hips-rel max':>12s}")
    for h, (mean, mx) in joints.items():
        print(f"   {h:12s} {mean * 1000:8.1f} {mx * 1000:8.1f} {m['joints_local'][h][1] * 1000:12.1f}")
    worst = max(m["limbs"], key=m["limbs"].get)
    print(f"   limb directions: max {m['limbs'][worst]:.2f} deg ({worst}); goal <= 5 -> "
          f"{'OK' if m['limbs'][worst] <= 5 else 'FAIL'}")
    tgt = np.concatenate([v["target"] for v in m["slide"].values()]) * 1000
    src = np.concatenate([v["source"] for v in m["slide"].values()]) * 1000
    line = f"   foot slide per contact ({len(tgt)} contacts): target max {tgt.max():.2f} mm mean {tgt.mean():.2f}; " \
           f"source max {src.max():.1f} mm mean {src.mean():.1f}"
    if m_free is not None:
        free = np.concatenate([v["target"] for v in m_free["slide"].values()]) * 1000
        line += f"; target without locking max {free.max():.1f} mm"
    print(line + f"; goal <= 5 mm -> {'OK' if tgt.max() <= 5 else 'FAIL'}")


def _run(ctx, src, make_target, name, free=True, **kw):
    from blender_addon.retarget import last_result, metrics, retarget
    from blender_addon.retarget.core import source_map

    target = make_target()
    t0 = time.perf_counter()
    obj = retarget(ctx, src, target, **kw)
    seconds = time.perf_counter() - t0
    r = last_result()
    bones = metrics.RIGIFY_DEF if name.startswith("rigify") else r["bone_map"].bones
    sm = source_map(src)
    src_bones = {h: sm[h] for h in bones if h in sm}
    m = metrics.measure(ctx, src, src_bones, obj, bones, r["result"], r["take"])
    m_free = None
    if free:
        obj2 = retarget(ctx, src, make_target(), lock_feet=False, **kw)
        r2 = last_result()
        m_free = metrics.measure(ctx, src, src_bones, obj2, r2["bone_map"].bones, r2["result"], r2["take"])
    _report(name, seconds, len(r["take"].frames), m, m_free)
    print(f"   height ratio {r['result'].scale:.3f}, hips path x{r['result'].path_scale:.3f} (leg ratio), "
          f"floor offset {r['result'].floor * 1000:.1f} mm")
    if free:  # the hips path scaled by the height ratio instead: world errors = pose errors
        obj3 = retarget(ctx, src, make_target(), hips_scale="height", **kw)
        r3 = last_result()
        m3 = metrics.measure(ctx, src, src_bones, obj3, r3["bone_map"].bones, r3["result"], r3["take"])
        slide = np.concatenate([v["target"] for v in m3["slide"].values()]) * 1000
        worst = max(m3["joints"], key=lambda h: m3["joints"][h][1])
        print(f"   hips_scale='height': world joint error max {m3['joints'][worst][1] * 1000:.1f} mm ({worst}), "
              f"mean over joints {np.mean([v[0] for v in m3['joints'].values()]) * 1000:.1f} mm; limbs max "
              f"{max(m3['limbs'].values()):.2f} deg; slide max {slide.max():.2f} mm")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--rigify-frames", type=int, default=1000, help="0: skip Rigify")
    ap.add_argument("--blend", type=Path, help="a .blend holding the source armature")
    ap.add_argument("--source", help="the source armature's object name in --blend")
    args = ap.parse_args()

    import bpy

    from blender_addon.retarget import build_mixamo
    from blender_addon.retarget.walk import build_walk_source
    from test_retarget_bonemap import build_fbx_style, ue_rows

    def fresh_source(frames):
        if args.blend:
            bpy.ops.wm.open_mainfile(filepath=str(args.blend))
            return bpy.context, bpy.data.objects[args.source]
        bpy.ops.wm.read_factory_settings(use_empty=True)
        return bpy.context, build_walk_source(bpy.context, frames)

    ctx, src = fresh_source(args.frames)
    print(f"source: {src.name}, action {src.animation_data.action.name}")
    _run(ctx, src, lambda: build_mixamo(ctx), "mixamo")
    _run(ctx, src, lambda: build_fbx_style(ctx, ue_rows(), "ue_character"), "ue (A-pose, FBX-style)")
    if args.rigify_frames:
        ctx, src = fresh_source(args.rigify_frames)
        from blender_addon.retarget import build_rigify

        t0 = time.perf_counter()
        rig = build_rigify(ctx)
        print(f"\nRigify rig generated in {time.perf_counter() - t0:.1f} s")
        _run(ctx, src, lambda: rig, "rigify (FK controls; DEF bones measured)", free=False)
        _run(ctx, src, lambda: rig, "rigify deform bake (DEF keys, constraints removed)", free=False, deform=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

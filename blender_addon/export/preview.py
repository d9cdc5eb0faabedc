"""A visible body for an armature without one (a freshly generated Rigify rig), and the demo's
side-by-side still: the OpenSim skeleton | the retargeted character, over one camera's video.

The body is one mesh of capsules (8-sided cylinders), one per deform bone of the limbs and
trunk (face and tiny bones left out), each skinned to its bone, so Workbench renders it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
import numpy as np

log = logging.getLogger(__name__)

SIDES = 12
MIN_LENGTH = 0.03   # m: shorter bones get no capsule
FACE = ("brow", "lid", "ear", "cheek", "nose", "lip", "jaw", "chin", "tongue", "teeth", "temple", "forehead",
        "breast", "eye")   # Rigify face bones (names start with these after the DEF- prefix)
CHARACTER_COLOR = (0.95, 0.55, 0.15, 1.0)


def _kept(bone) -> bool:
    name = bone.name.lower().removeprefix("def-").split(":")[-1]
    return bone.use_deform and bone.length >= MIN_LENGTH and not name.startswith(FACE)


def body_mesh(armature, name: str | None = None, color=CHARACTER_COLOR):
    """A capsule mesh over ``armature``'s deform bones, skinned to them; returns the object
    (linked into the armature's collections)."""
    bones = [b for b in armature.data.bones if _kept(b)]
    ring = np.stack([np.cos(np.arange(SIDES) * 2 * np.pi / SIDES), np.sin(np.arange(SIDES) * 2 * np.pi / SIDES)], 1)
    verts, faces, groups = [], [], []
    for b in bones:
        m = np.array(b.matrix_local)                       # armature space; Y along the bone
        radius = float(np.clip(0.13 * b.length, 0.01, 0.05))
        x, z = m[:3, 0], m[:3, 2]
        base = len(verts) if not verts else sum(len(v) for v in verts)
        rim = [np.array(p) + radius * (c * x + s * z) for p in (b.head_local, b.tail_local) for c, s in ring]
        verts.append(np.array(rim))
        for k in range(SIDES):
            a, n = base + k, base + (k + 1) % SIDES
            faces.append((a, n, n + SIDES, a + SIDES))
        faces.append(tuple(base + k for k in range(SIDES)))
        faces.append(tuple(base + SIDES + k for k in reversed(range(SIDES))))
        groups.append((b.name, base, 2 * SIDES))
    mesh = bpy.data.meshes.new(name or f"{armature.name} body")
    mesh.from_pydata(np.concatenate(verts).tolist(), [], faces)
    mesh.update()
    obj = bpy.data.objects.new(name or f"{armature.name} body", mesh)
    for coll in armature.users_collection:
        coll.objects.link(obj)
    for bone, start, count in groups:
        obj.vertex_groups.new(name=bone).add(range(start, start + count), 1.0, "REPLACE")
    obj.parent = armature
    obj.modifiers.new("Armature", "ARMATURE").object = armature
    mat = bpy.data.materials.new(f"{obj.name} material")
    mat.diffuse_color = color
    mesh.materials.append(mat)
    log.info("character body: %d capsules over %s", len(groups), armature.name)
    return obj


def match_subject(context, rig, rig_bone: str, reference, reference_bone: str, frames: np.ndarray) -> float:
    """Scale and move ``rig`` (object transform) to show a character of another height over the
    subject: scaled by the ratio of the two bones' rest heights above the floor (hips height
    ratio), then moved so its ``rig_bone`` head follows ``reference``'s ``reference_bone`` head
    best over ``frames`` (least squares). Returns the scale."""
    from mathutils import Matrix

    from .bake import Sampler, Take

    heights = [(obj.matrix_world @ obj.data.bones[bone].head_local).z - _floor(obj)
               for obj, bone in ((rig, rig_bone), (reference, reference_bone))]
    scale = float(heights[1] / heights[0])
    paths = []
    for obj, bone in ((rig, rig_bone), (reference, reference_bone)):
        sampler = Sampler(context, Take(obj, int(frames[0]), int(frames[-1]), 1.0, obj.name, [bone]))
        while sampler.fraction < 1:
            sampler.step(200)
        paths.append(sampler.world[:, 0, :3, 3])
    shift = paths[1].mean(0) - scale * paths[0].mean(0)
    rig.matrix_world = Matrix.Translation(shift) @ Matrix.Scale(scale, 4) @ rig.matrix_world
    context.view_layer.update()
    return scale


def _floor(armature) -> float:
    """The lowest rest point (heads and tails) of ``armature``'s bones, in the world: its floor."""
    w = armature.matrix_world
    return min(min((w @ b.head_local).z, (w @ b.tail_local).z) for b in armature.data.bones)


def side_by_side(scene, camera, frame: int, png: Path, left: list, right: list, percentage: int = 50) -> Path:
    """Render ``camera`` at ``frame`` twice, showing only ``left`` then only ``right`` of the
    objects in ``left + right`` (the rest of the scene in both), and write them side by side."""
    import cv2

    from ..scene.snapshot import render_camera

    png = Path(png)
    halves = []
    hidden = {o: o.hide_render for o in left + right}
    try:
        for shown, tag in ((left, "left"), (right, "right")):
            for o in left + right:
                o.hide_render = o not in shown
            half = png.with_name(f".{png.stem}_{tag}.png")
            render_camera(scene, camera, frame, half, percentage=percentage)
            halves.append(half)
        images = [cv2.imread(str(h)) for h in halves]
        if not cv2.imwrite(str(png), cv2.hconcat(images)):
            raise OSError(f"cannot write {png}")
    finally:
        for o, h in hidden.items():
            o.hide_render = h
        for h in halves:
            h.unlink(missing_ok=True)
    return png

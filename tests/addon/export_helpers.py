"""Helpers of the export tests: a humanoid armature (``openkin.character.humanoid``'s bones)
with a take, a markers object with an action of its own (what leaked into FBX files), world
joint positions through the depsgraph, and importing a file into an empty scene with the
importer's default settings."""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

# T-pose heads (metres, character's own frame: Z up, facing -Y, left on +X) and tails
_HEADS = {
    "root": (0, 0, 0), "hips": (0, 0, 0.95), "spine": (0, 0.01, 1.05), "spine.001": (0, 0.01, 1.2),
    "spine.002": (0, 0.0, 1.35), "neck": (0, 0, 1.5), "head": (0, -0.01, 1.6),
    "shoulder.L": (0.03, -0.02, 1.45), "upper_arm.L": (0.18, 0.0, 1.45), "forearm.L": (0.46, 0.01, 1.45),
    "hand.L": (0.72, 0.0, 1.45), "thigh.L": (0.1, 0, 0.92), "shin.L": (0.1, 0.01, 0.5),
    "foot.L": (0.1, 0.03, 0.08), "toe.L": (0.1, -0.12, 0.02),
}
_TAILS = {"head": (0, -0.01, 1.8), "hand.L": (0.9, 0, 1.45), "toe.L": (0.1, -0.2, 0.02), "root": (0, 0.2, 0)}


def _mirror(p):
    return (-p[0], p[1], p[2])


def rest_layout() -> dict[str, tuple[tuple, tuple]]:
    """Bone → (head, tail) of the humanoid contract in a T pose."""
    from openkin.character.humanoid import BONES

    heads = dict(_HEADS)
    tails = dict(_TAILS)
    for k in list(heads):
        if k.endswith(".L"):
            heads[k[:-2] + ".R"] = _mirror(heads[k])
    for k in list(tails):
        if k.endswith(".L"):
            tails[k[:-2] + ".R"] = _mirror(tails[k])
    children = {}
    for n, p in BONES:
        children.setdefault(p, []).append(n)
    out = {}
    for n, _ in BONES:
        tail = tails.get(n) or heads[children[n][0]]
        out[n] = (heads[n], tail)
    return out


def humanoid_armature(name: str = "P0 character", start: int = 1, end: int = 100, seed: int = 0,
                      matrix: Matrix | None = None, prefix: str = ""):
    """An armature with the humanoid contract's bones (names prefixed by ``prefix``) and one
    action over ``start..end``: hips walking along +X, every bone turning on smooth random
    curves. Object transform ``matrix`` (default: turned 30° about Z, moved)."""
    from openkin.character.humanoid import BONES

    scene = bpy.context.scene
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    obj.matrix_world = matrix if matrix is not None else Matrix.Translation((0.4, -0.2, 0.0)) @ Matrix.Rotation(0.52, 4, "Z")
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    layout = rest_layout()
    for n, p in BONES:
        eb = data.edit_bones.new(prefix + n)
        eb.head, eb.tail = Vector(layout[n][0]), Vector(layout[n][1])
        eb.roll = 0.1 if n.endswith(".L") else (-0.1 if n.endswith(".R") else 0.0)
        if p:
            eb.parent = data.edit_bones[prefix + p]
            eb.use_connect = (Vector(layout[p][1]) - eb.head).length < 1e-6 and n != "hips"
    bpy.ops.object.mode_set(mode="OBJECT")
    rng = np.random.default_rng(seed)
    frames = np.arange(start, end + 1)
    t = (frames - start) / 60.0
    from blender_addon.scene import anim

    action = anim.new_action(f"{name} take")
    bag = anim.channelbag_for(action, obj)
    from scipy.spatial.transform import Rotation

    for n, _ in BONES:
        pb = obj.pose.bones[prefix + n]
        pb.rotation_mode = "QUATERNION"
        amp = rng.uniform(0.1, 0.5, 3) * (0.2 if n in ("root", "hips", "spine", "spine.001") else 1.0)
        phase = rng.uniform(0, 2 * np.pi, 3)
        freq = rng.uniform(0.3, 1.5, 3)
        rv = amp[None] * np.sin(2 * np.pi * freq[None] * t[:, None] + phase[None])
        q = Rotation.from_rotvec(rv).as_quat(scalar_first=True)
        path = f'pose.bones["{prefix + n}"]'
        anim.write_channels(bag, f"{path}.rotation_quaternion", frames, q, group=prefix + n)
        if n == "hips":
            walk = np.stack([0.8 * t, 0.05 * np.sin(2 * np.pi * t), 0.03 * np.sin(4 * np.pi * t)], axis=1)
            rest = np.array(data.bones[prefix + n].matrix_local)[:3, :3]
            loc = walk @ rest   # armature-space offsets in the bone's rest axes (rest⁻¹ = restᵀ)
            anim.write_channels(bag, f"{path}.location", frames, loc, group=prefix + n)
    scene.frame_start, scene.frame_end = start, end
    return obj


def markers_object(name: str = "P0 Nose", start: int = 1, end: int = 100):
    """An animated sphere-less empty with its own action (the markers of an import)."""
    from blender_addon.scene import anim

    obj = bpy.data.objects.new(name, None)
    bpy.context.scene.collection.objects.link(obj)
    action = anim.new_action(f"{name} motion")
    bag = anim.channelbag_for(action, obj)
    frames = np.arange(start, end + 1)
    anim.write_channels(bag, "location", frames, np.stack([np.sin(frames / 9.0), 0 * frames, 1.7 + 0 * frames], 1))
    return obj


def world_heads(obj, frames, names=None) -> np.ndarray:
    """(F, B, 3) world head positions of ``names`` (default: all bones) of the armature
    ``obj`` on ``frames``, from the depsgraph-evaluated pose."""
    scene = bpy.context.scene
    names = names or [b.name for b in obj.data.bones]
    out = np.empty((len(frames), len(names), 3))
    for i, f in enumerate(frames):
        scene.frame_set(int(f))
        ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mw = ev.matrix_world
        for j, n in enumerate(names):
            out[i, j] = mw @ ev.pose.bones[n].head
    return out


def world_empties(objs, frames) -> np.ndarray:
    """(F, E, 3) world positions of objects on ``frames`` (depsgraph-evaluated)."""
    scene = bpy.context.scene
    out = np.empty((len(frames), len(objs), 3))
    for i, f in enumerate(frames):
        scene.frame_set(int(f))
        dg = bpy.context.evaluated_depsgraph_get()
        for j, o in enumerate(objs):
            out[i, j] = o.evaluated_get(dg).matrix_world.translation
    return out


def import_into_empty_scene(path: Path, fps: float | None = None):
    """Empty the file, import ``path`` with its importer's default settings; ``fps`` sets the
    empty scene's frame rate first (glTF and Alembic carry none Blender's importers read)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if fps is not None:
        bpy.context.scene.render.fps = round(fps)
        bpy.context.scene.render.fps_base = round(fps) / fps
    ext = Path(path).suffix.lower()
    op = {".fbx": bpy.ops.import_scene.fbx, ".bvh": bpy.ops.import_anim.bvh, ".glb": bpy.ops.import_scene.gltf,
          ".gltf": bpy.ops.import_scene.gltf, ".usd": bpy.ops.wm.usd_import, ".usda": bpy.ops.wm.usd_import, ".abc": bpy.ops.wm.alembic_import}[ext]
    assert op(filepath=str(path)) == {"FINISHED"}
    return bpy.context.scene

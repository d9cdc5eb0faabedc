"""The OpenSim model as an animated armature (one bone per body) with its bone meshes skinned to it."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from ..core import axes, meshes, osim_model, rig
from . import anim

log = logging.getLogger(__name__)

BONE_COLOR = (0.85, 0.82, 0.75, 1.0)


def build_armature(context, person, collection) -> object:
    """Armature object of ``person`` (needs ``person.model``, ``rest_frames``, ``body_frames``)."""
    model = person.model
    names, parents = model.body_names, model.parents
    data = bpy.data.armatures.new(f"{person.name} skeleton")
    data.display_type = "OCTAHEDRAL"
    obj = bpy.data.objects.new(f"{person.name} skeleton", data)
    obj["openkin_person"] = person.name
    obj["openkin_osim"] = str(model.path)
    collection.objects.link(obj)
    _edit_bones(context, obj, names, parents, *rig.bone_layout(person.rest_frames, parents))
    bone_rest = np.stack([np.array(data.bones[n].matrix_local) for n in names])
    channels = rig.pose_channels(person.body_frames, person.rest_frames, bone_rest, parents)
    loc, quat = rig.loc_quat(channels)
    action = anim.new_action(f"{person.name} skeleton motion")
    bag = anim.channelbag_for(action, obj)
    for b, name in enumerate(names):
        obj.pose.bones[name].rotation_mode = "QUATERNION"
        path = f'pose.bones["{name}"]'
        anim.write_channels(bag, f"{path}.location", person.motion_frames, loc[:, b], group=name)
        anim.write_channels(bag, f"{path}.rotation_quaternion", person.motion_frames, quat[:, b], group=name)
    return obj


def _edit_bones(context, obj, names, parents, heads, tails, z_hints) -> None:
    with edit_mode(context, obj):
        add_edit_bones(obj, names, parents, heads, tails, z_hints)


@contextmanager
def edit_mode(context, obj):
    """``obj`` active and in edit mode for the block; object mode and the previous active object after."""
    view_layer = context.view_layer
    previous = view_layer.objects.active
    if context.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        yield
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous


def add_edit_bones(obj, names, parents, heads, tails, z_hints, connect=None) -> None:
    """New edit bones of ``obj`` (in edit mode): ``heads``, ``tails`` ``(N,3)``, rolls aligned to
    ``z_hints (N,3)``, ``parents`` indices (-1: none); ``connect (N,)`` bool: joined to the parent's tail."""
    ebs = []
    for b, name in enumerate(names):
        eb = obj.data.edit_bones.new(name)
        eb.head, eb.tail = Vector(heads[b]), Vector(tails[b])
        eb.align_roll(Vector(z_hints[b]))
        eb.use_connect = False
        ebs.append(eb)
    for b, p in enumerate(parents):
        if p >= 0:
            ebs[b].parent = ebs[p]
            if connect is not None and connect[b]:
                ebs[b].use_connect = True


def build_bone_mesh(person, armature_obj, collection, cache_dir: Path | None,
                    geometry_dirs: list[Path]) -> object | None:
    """One mesh of all bone geometries, each body's part in a vertex group, deformed by the armature."""
    model = person.model
    parts, missing = [], []
    for ref in model.meshes:
        path = osim_model.find_geometry(ref.filename, model.path, geometry_dirs)
        if path is None:
            missing.append(ref.filename)
            continue
        verts, tris = meshes.read_mesh(path, cache_dir)
        world = axes.yup_to_zup_transforms(ref.rest)
        v = (verts * ref.scale) @ world[:3, :3].T + world[:3, 3]
        parts.append((ref.body, v, tris))
    if missing:
        log.warning("%d geometry files not found (e.g. %s)", len(missing), ", ".join(missing[:3]))
    if not parts:
        return None
    mesh = _mesh_from_parts(f"{person.name} bones", parts)
    obj = bpy.data.objects.new(f"{person.name} bones", mesh)
    collection.objects.link(obj)
    start = 0
    groups = {}
    for body, v, _ in parts:
        name = model.body_names[body]
        vg = groups.get(name) or obj.vertex_groups.new(name=name)
        groups[name] = vg
        vg.add(range(start, start + len(v)), 1.0, "REPLACE")
        start += len(v)
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = armature_obj
    obj.parent = armature_obj
    mat = bpy.data.materials.new(f"{person.name} bone")
    mat.diffuse_color = BONE_COLOR
    mesh.materials.append(mat)
    return obj


def _mesh_from_parts(name: str, parts: list) -> object:
    """Triangle mesh from [(body, verts (N, 3), tris (T, 3))] with foreach_set (no Python loops per vertex)."""
    verts = np.concatenate([v for _, v, _ in parts])
    offsets = np.cumsum([0] + [len(v) for _, v, _ in parts[:-1]])
    tris = np.concatenate([t + o for (_, _, t), o in zip(parts, offsets)]).astype(np.int32)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", verts.astype(np.float32).ravel())
    mesh.loops.add(tris.size)
    mesh.loops.foreach_set("vertex_index", tris.ravel())
    mesh.polygons.add(len(tris))
    mesh.polygons.foreach_set("loop_start", np.arange(0, tris.size, 3, dtype=np.int32))
    mesh.update()
    mesh.validate()
    mesh.shade_smooth()
    return mesh

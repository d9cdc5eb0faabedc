"""One function per file format, each writing a baked take (:mod:`.bake`) with settings that
re-import right in Blender's own importers with their default settings (and in game engines).

Conventions (what the importers expect, measured in the ``bpy`` module):
- FBX: time ``t = (frame - 1) / fps`` (Blender's FBX importer adds one frame: its
  ``anim_offset``); one take, the character's only, named after the action; the file's fps.
- BVH: the skeleton written Y-up, -Z forward (the importer's default axes); frame times 1/fps;
  the first frame is imported at frame 1.
- glTF/GLB: ``t = frame / fps`` seconds, computed from the take's real fps (Blender's exporter
  multiplies by ``fps_base`` instead of dividing: the temporary scene is set so both agree);
  the importer maps seconds to frames with the scene's fps (glTF has no fps field).
- USD: a UsdSkel skeleton, time codes = frames, ``timeCodesPerSecond`` = fps.
- Alembic: Alembic has no armatures: one transform (empty) per bone, its world place baked
  on every frame (film pipelines' convention for joints), time sampling 1/fps.
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
from bpy_extras.io_utils import axis_conversion

from openkin.errors import OpenKinError
from openkin.progress import report, scaled

from . import bake

log = logging.getLogger(__name__)

FORMATS = {"fbx": ".fbx", "bvh": ".bvh", "glb": ".glb", "gltf": ".gltf", "usd": ".usd", "abc": ".abc"}
PRESETS = ("unity", "unreal")

# FBX settings shared by both presets: the armature only, no leaf bones, one baked take.
_FBX_COMMON = dict(
    use_selection=True, object_types={"ARMATURE", "MESH"}, add_leaf_bones=False,
    primary_bone_axis="Y", secondary_bone_axis="X", armature_nodetype="NULL",
    bake_anim=True, bake_anim_use_all_bones=True, bake_anim_use_nla_strips=False,
    bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True, bake_anim_step=1.0,
    bake_anim_simplify_factor=0.0, use_armature_deform_only=False, axis_forward="-Z", axis_up="Y",
    use_custom_props=True, path_mode="AUTO", use_mesh_modifiers=True, mesh_smooth_type="FACE",
)
FBX_PRESETS = {
    # Unity: metres with a unit scale of 1 on every object, transforms applied to Unity's axes
    "unity": dict(_FBX_COMMON, global_scale=1.0, apply_unit_scale=True, apply_scale_options="FBX_SCALE_ALL",
                  bake_space_transform=True),
    # Unreal: centimetres (UnitScaleFactor), axes converted by Unreal's FBX import
    "unreal": dict(_FBX_COMMON, global_scale=1.0, apply_unit_scale=True, apply_scale_options="FBX_SCALE_NONE",
                   bake_space_transform=False),
}


def _override(context, scene, obj):
    return context.temp_override(scene=scene, view_layer=scene.view_layers[0], active_object=obj, object=obj,
                                 selected_objects=[obj], selected_editable_objects=[obj])


def _check(result, fmt: str, path: Path) -> None:
    if "FINISHED" not in result or not path.is_file():
        raise OpenKinError(f"Blender's {fmt} exporter did not write the file", path=path,
                           fix="see Blender's messages above")


def _world(context, take, progress, world):
    """The take's sampled world matrices: ``world`` when given (sampled by the caller), else sampled now."""
    return world if world is not None else bake.sample_world(context, take, scaled(progress, 0, 0.6))


def export_fbx(context, take: bake.Take, path: Path, preset: str = "unity", progress=None, world=None) -> Path:
    """``take`` as FBX for ``preset`` ('unity' | 'unreal')."""
    if preset not in FBX_PRESETS:
        raise OpenKinError(f"unknown FBX preset {preset!r}", fix=f"use one of: {', '.join(FBX_PRESETS)}")
    world = _world(context, take, progress, world)
    with bake.temporary_scene(take.name, take.fps) as scene:
        obj = bake.build_baked(context, scene, take, world, frame_shift=-1)
        report(progress, 0.7, "writing FBX")
        with _override(context, scene, obj):
            _check(bpy.ops.export_scene.fbx(filepath=str(path), **FBX_PRESETS[preset]), "FBX", path)
    return path


def export_bvh(context, take: bake.Take, path: Path, progress=None, world=None) -> Path:
    """``take`` as BVH, Y-up and -Z forward as Blender's BVH importer reads it by default."""
    world = _world(context, take, progress, world)
    if take.start != 1:
        log.warning("export: BVH has no start time: Blender's importer puts the take's frame %d at frame 1",
                    take.start)
    to_bvh = axis_conversion(from_forward="-Z", from_up="Y").to_4x4().inverted()
    with bake.temporary_scene(take.name, take.fps) as scene:
        obj = bake.build_baked(context, scene, take, world, space=to_bvh)
        report(progress, 0.7, "writing BVH")
        with _override(context, scene, obj):
            _check(bpy.ops.export_anim.bvh(filepath=str(path), frame_start=take.start, frame_end=take.end,
                                           rotate_mode="NATIVE", root_transform_only=False), "BVH", path)
    return path


def export_gltf(context, take: bake.Take, path: Path, progress=None, world=None) -> Path:
    """``take`` as glTF binary (.glb) or JSON (.gltf), seconds from the take's fps."""
    world = _world(context, take, progress, world)
    with bake.temporary_scene(take.name, take.fps) as scene:
        obj = bake.build_baked(context, scene, take, world)
        # the exporter computes seconds = frame / (fps * fps_base): make that product the real fps
        scene.render.fps = max(1, round(take.fps))
        scene.render.fps_base = take.fps / scene.render.fps
        report(progress, 0.7, "writing glTF")
        fmt = "GLB" if path.suffix.lower() == ".glb" else "GLTF_SEPARATE"
        with _override(context, scene, obj):
            _check(bpy.ops.export_scene.gltf(
                filepath=str(path), export_format=fmt, use_selection=True, use_active_scene=True,
                export_animations=True, export_animation_mode="ACTIVE_ACTIONS", export_frame_range=True,
                export_force_sampling=False, export_frame_step=1, export_anim_slide_to_zero=False,
                export_negative_frame="SLIDE", export_optimize_animation_size=False, export_def_bones=False,
                export_leaf_bone=False, export_yup=True, export_extras=True, export_cameras=False,
                export_lights=False, export_reset_pose_bones=True, export_rest_position_armature=True,
                export_anim_single_armature=True,
                export_nla_strips_merged_animation_name=take.name), "glTF", path)
    return path


def export_usd(context, take: bake.Take, path: Path, progress=None, world=None) -> Path:
    """``take`` as USD (UsdSkel), Z-up metres as Blender writes it, time codes = frames."""
    world = _world(context, take, progress, world)
    with bake.temporary_scene(take.name, take.fps) as scene:
        obj = bake.build_baked(context, scene, take, world)
        report(progress, 0.7, "writing USD")
        with _override(context, scene, obj):
            _check(bpy.ops.wm.usd_export(filepath=str(path), selected_objects_only=True, export_animation=True,
                                         export_armatures=True, only_deform_bones=False, export_cameras=False,
                                         export_lights=False, export_materials=False,
                                         convert_orientation=False), "USD", path)
    return path


def export_abc(context, take: bake.Take, path: Path, progress=None, world=None) -> Path:
    """``take`` as Alembic: one transform per bone (Alembic has no armatures), baked per frame."""
    world = _world(context, take, progress, world)
    with bake.temporary_scene(take.name, take.fps) as scene:
        arm = bake.build_baked(context, scene, take, world)
        joints = bake.build_joints(scene, take, world, arm)
        report(progress, 0.7, "writing Alembic")
        with context.temp_override(scene=scene, view_layer=scene.view_layers[0], active_object=joints[0],
                                   object=joints[0], selected_objects=joints, selected_editable_objects=joints):
            for o in scene.objects:
                o.select_set(o in joints, view_layer=scene.view_layers[0])
            _check(bpy.ops.wm.alembic_export(filepath=str(path), start=take.start, end=take.end, selected=True,
                                             flatten=False, export_hair=False, export_particles=False,
                                             init_scene_frame_range=False, evaluation_mode="RENDER"),
                   "Alembic", path)
    return path

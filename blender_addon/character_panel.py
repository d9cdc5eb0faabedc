"""The Character panel (3D Viewport › Sidebar › OpenKin › Character): retarget a person's
animation skeleton onto a character (Rigify, a Mixamo-named armature, any armature through a
bone-map preset) and export it (FBX for Unity / Unreal, BVH, glTF/GLB, USD, Alembic).

Operators work under ``blender -b`` (execute runs to the end). In the UI, Export samples the
take a few frames per timer tick (:class:`.export.bake.Sampler`), with a progress bar and a
Cancel button (Esc cancels too); the file is written at the end.
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
from bpy.props import EnumProperty, FloatProperty, PointerProperty, StringProperty

from .panel import _Base

log = logging.getLogger(__name__)

FRAMES_PER_TICK = 40
_STATE = {"cancel": False, "running": False}

TARGETS = [("RIGIFY", "Rigify", "a Rigify rig generated from Blender's human metarig (built)"),
           ("MIXAMO", "Mixamo", "a Mixamo-named armature (mixamorig:*) in the scene, or a new one"),
           ("ARMATURE", "Armature", "any humanoid armature, with the automatic bone map or a preset")]
FORMAT_ITEMS = [("fbx", "FBX", "games (Unity / Unreal preset)"), ("bvh", "BVH", "one skeleton, Y up"),
                ("glb", "glTF binary", "web and games (.glb)"), ("gltf", "glTF", "JSON + .bin"),
                ("usd", "USD", "film pipelines (UsdSkel)"), ("abc", "Alembic", "film pipelines (joint transforms)")]
PRESET_ITEMS = [("unity", "Unity", "metres, transforms applied to Unity's axes"),
                ("unreal", "Unreal", "centimetres, Unreal converts the axes")]


def _is_armature(self, obj):
    return obj.type == "ARMATURE"


def _is_skeleton(self, obj):
    from .export.character import is_animation_skeleton

    return is_animation_skeleton(obj)


class OPENKIN_PG_character(bpy.types.PropertyGroup):
    source: PointerProperty(name="Skeleton", type=bpy.types.Object, poll=_is_skeleton,
                            description="the person's animation skeleton (the take to retarget)")
    target_kind: EnumProperty(name="Target", items=TARGETS, default="RIGIFY")
    target: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                            description="the character's armature (Mixamo-named, or any humanoid)")
    bone_map: StringProperty(name="Bone map", default="",
                             description="a saved bone-map preset (name or .json); empty: automatic map")
    character: PointerProperty(name="Character", type=bpy.types.Object, poll=_is_armature,
                               description="the armature to export (set by Retarget)")
    format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="fbx")
    preset: EnumProperty(name="Preset", items=PRESET_ITEMS, default="unity")
    filepath: StringProperty(name="File", subtype="FILE_PATH", default="//export/take.fbx")
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    status: StringProperty(name="Status", default="")
    error: StringProperty(name="Error", default="")


def _settings(context):
    return context.scene.openkin_character


def _fail(op, context, message: str):
    _settings(context).error = message
    op.report({"ERROR"}, message)
    return {"CANCELLED"}


def _source(context):
    """The chosen animation skeleton, else the first in the scene."""
    from .export.character import is_animation_skeleton

    s = _settings(context)
    if s.source is not None:
        return s.source
    return next((o for o in context.scene.objects if is_animation_skeleton(o)), None)


class OPENKIN_OT_character_retarget(bpy.types.Operator):
    """Retarget the animation skeleton's take onto the chosen character (keys only, no constraints)"""

    bl_idname = "openkin.character_retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from openkin.errors import OpenKinError

        s = _settings(context)
        source = _source(context)
        if source is None:
            return _fail(self, context, "no animation skeleton in the scene: import a capture first")
        try:
            from .retarget import load_preset, retarget
        except ImportError:
            return _fail(self, context, "this build of the add-on has no retargeting")
        try:
            if s.target_kind == "RIGIFY":
                target = "rigify"
            elif s.target_kind == "MIXAMO":
                target = s.target or "mixamo"
            else:
                if s.target is None:
                    return _fail(self, context, "choose the character's armature first")
                target = s.target
            bone_map = load_preset(s.bone_map) if s.bone_map and s.target_kind == "ARMATURE" else None
            s.character = retarget(context, source, target, bone_map=bone_map, deform=True)
        except OpenKinError as e:
            return _fail(self, context, str(e))
        s.error = ""
        s.status = f"retargeted onto {s.character.name}"
        return {"FINISHED"}


class OPENKIN_OT_character_export(bpy.types.Operator):
    """Export the character's take (or the skeleton's when nothing was retargeted) with settings
    that work in the chosen format"""

    bl_idname = "openkin.character_export"
    bl_label = "Export"
    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"},
                             description="file to write (default: the panel's)")

    @classmethod
    def poll(cls, context):
        return not _STATE["running"]

    def _prepare(self, context):
        from .export import format_of, take_of

        s = _settings(context)
        arm = s.character or _source(context)
        if arm is None:
            raise _Refused("nothing to export: import a capture (and retarget it) first")
        path = Path(bpy.path.abspath(self.filepath or s.filepath))
        fmt = s.format
        if path.suffix.lower().lstrip(".") != fmt:
            path = path.with_suffix("." + fmt)
        format_of(path, fmt)
        self.path, self.fmt = path, fmt
        self.take = take_of(context.scene, arm)

    def _write(self, context, world):
        from .export import export_take, write_contacts

        s = _settings(context)
        out = export_take(context, self.take, self.path, self.fmt, s.preset, world=world)
        source = _source(context)
        contacts = write_contacts(source, self.take, out) if source is not None else None
        s.status, s.error, s.progress = f"wrote {out}" + (f" (+ {contacts.name})" if contacts else ""), "", 1.0
        self.report({"INFO"}, f"exported {out}")

    def execute(self, context):
        from openkin.errors import OpenKinError

        try:
            self._prepare(context)
            self._write(context, None)
        except (OpenKinError, _Refused) as e:
            return _fail(self, context, str(e))
        return {"FINISHED"}

    def invoke(self, context, event):
        from openkin.errors import OpenKinError

        from .export.bake import Sampler

        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self._prepare(context)
        except (OpenKinError, _Refused) as e:
            return _fail(self, context, str(e))
        self.sampler = Sampler(context, self.take)
        _STATE.update(cancel=False, running=True)
        self.timer = context.window_manager.event_timer_add(0.01, window=context.window)
        context.window_manager.modal_handler_add(self)
        _settings(context).status = f"sampling {self.take.name}"
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        from openkin.errors import OpenKinError

        s = _settings(context)
        if event.type == "ESC" or _STATE["cancel"]:
            self._end(context)
            s.status, s.progress = "export cancelled", 0.0
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        s.progress = 0.9 * self.sampler.step(FRAMES_PER_TICK)
        s.status = f"sampling frame {self.sampler.done}/{len(self.take.frames)}"
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        if self.sampler.fraction < 1:
            return {"RUNNING_MODAL"}
        self._end(context)
        try:
            self._write(context, self.sampler.world)
        except OpenKinError as e:
            return _fail(self, context, str(e))
        return {"FINISHED"}

    def _end(self, context):
        context.window_manager.event_timer_remove(self.timer)
        _STATE["running"] = False


class _Refused(Exception):
    pass


class OPENKIN_OT_character_cancel(bpy.types.Operator):
    """Stop the running export (nothing is written)"""

    bl_idname = "openkin.character_cancel"
    bl_label = "Cancel"

    def execute(self, context):
        _STATE["cancel"] = True
        return {"FINISHED"}


class OPENKIN_PT_character(_Base, bpy.types.Panel):
    bl_label = "Character"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_character(self.layout, context)


def draw_character(layout, context) -> None:
    """The panel's content (a function of the layout, as the main panel's)."""
    s = _settings(context)
    col = layout.column()
    col.prop(s, "source")
    col.prop(s, "target_kind")
    if s.target_kind != "RIGIFY":
        col.prop(s, "target")
    if s.target_kind == "ARMATURE":
        col.prop(s, "bone_map")
    col.operator("openkin.character_retarget", icon="ARMATURE_DATA")
    col.separator()
    col.prop(s, "character")
    row = col.row(align=True)
    row.prop(s, "format", text="")
    if s.format == "fbx":
        row.prop(s, "preset", text="")
    col.prop(s, "filepath")
    col.operator("openkin.character_export", icon="EXPORT")
    if _STATE["running"]:
        box = col.box()
        box.progress(factor=s.progress, type="BAR", text=s.status)
        box.operator("openkin.character_cancel", icon="CANCEL")
    elif s.status:
        col.label(text=s.status)
    if s.error:
        err = col.box()
        err.alert = True
        for line in s.error.splitlines():
            err.label(text=line[:90])


CLASSES = (OPENKIN_PG_character, OPENKIN_OT_character_retarget, OPENKIN_OT_character_export,
           OPENKIN_OT_character_cancel, OPENKIN_PT_character)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.openkin_character = PointerProperty(type=OPENKIN_PG_character)


def unregister():
    del bpy.types.Scene.openkin_character
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

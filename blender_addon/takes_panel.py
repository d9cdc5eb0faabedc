"""The Takes panel (3D Viewport › Sidebar › OpenKin › Takes): import a processed session (every
trial as a take: one skeleton and one markers action per take and person, named after the trial)
and switch between the takes (:mod:`.scene.takes`)."""
from __future__ import annotations

import bpy

from .panel import _Base


class OPENKIN_OT_import_session(bpy.types.Operator):
    """Import every processed trial of a session folder as takes of one scene"""

    bl_idname = "openkin.import_session"
    bl_label = "Import Session"
    bl_options = {"REGISTER", "UNDO"}
    directory: bpy.props.StringProperty(subtype="DIR_PATH")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        from openkin.errors import OpenKinError

        from .operators import _build_options
        from .scene.takes import import_session

        try:
            takes, warnings = import_session(context, self.directory, _build_options(context))
        except OpenKinError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        for w in warnings:
            self.report({"WARNING"}, w)
        self.report({"INFO"}, f"imported {len(takes)} takes: {', '.join(t['name'] for t in takes)}")
        return {"FINISHED"}


class OPENKIN_OT_set_take(bpy.types.Operator):
    """Show this take: its actions on the skeleton and markers, its frame range"""

    bl_idname = "openkin.set_take"
    bl_label = "Set Take"
    bl_options = {"REGISTER", "UNDO"}
    take: bpy.props.StringProperty()

    def execute(self, context):
        from .scene.takes import set_take

        try:
            set_take(context.scene, self.take)
        except KeyError:
            self.report({"ERROR"}, f"no take {self.take!r} in this scene")
            return {"CANCELLED"}
        return {"FINISHED"}


class OPENKIN_PT_takes(_Base, bpy.types.Panel):
    bl_label = "Takes"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        from .scene.takes import current_take, read_takes

        col = self.layout.column()
        col.operator("openkin.import_session", icon="IMPORT")
        shown = current_take(context.scene)
        for take in read_takes(context.scene):
            start, end = take["frame_range"]
            op = col.operator("openkin.set_take", text=f"{take['name']}  ({start}-{end})",
                              depress=take["name"] == shown, icon="ACTION")
            op.take = take["name"]


_CLASSES = (OPENKIN_OT_import_session, OPENKIN_OT_set_take, OPENKIN_PT_takes)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)

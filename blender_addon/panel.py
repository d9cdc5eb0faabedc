"""The OpenKin panel in the 3D viewport sidebar (N panel, "OpenKin" tab)."""
from __future__ import annotations

import bpy

from .operators import current_job


def _wrap(layout, text: str, width: int = 60) -> None:
    import textwrap

    for line in text.splitlines():
        for part in textwrap.wrap(line, width) or [""]:
            layout.label(text=part)


class _Base:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "OpenKin"


def draw_main(layout, context) -> None:
    """The main panel's content (a function of the layout: the tests draw it into a popover)."""
    from .props import OPTIONS

    s = context.scene.openkin
    col = layout.column()
    col.prop(s, "project_dir")
    row = col.row(align=True)
    row.operator("openkin.demo", icon="FILE_FOLDER")
    row.operator("openkin.import_project", icon="IMPORT")
    col.prop(s, "keep_previous")
    box = col.box()
    changed = set(s.changed())
    box.label(text="Options (changed ones override Config.toml)" if changed else "Options (from Config.toml)")
    for name in OPTIONS:
        row = box.row()
        row.prop(s, name)
        if name in changed:
            row.label(text="", icon="MODIFIER_ON")
    row = col.row(align=True)
    row.operator("openkin.run", text="Run All", icon="PLAY").stages = "ALL"
    row = col.row(align=True)
    row.prop(s, "stage", text="")
    row.operator("openkin.run", text="Run Stage").stages = "ONE"
    draw_job(col)
    if s.last_error:
        err = col.box()
        err.alert = True
        _wrap(err, s.last_error)
    if len(s.import_warnings):
        warn = col.box()
        warn.label(text=f"Import warnings ({len(s.import_warnings)})", icon="ERROR")
        for w in s.import_warnings:
            _wrap(warn, w.text)


def draw_job(layout) -> None:
    job = current_job()
    if job is None:
        return
    box = layout.box()
    text = f"{job.stage or job.spec.get('kind', '')}: {job.message}" if job.status == "running" else job.status
    box.progress(factor=job.overall, type="BAR", text=text)
    if job.status == "running":
        box.operator("openkin.cancel", icon="CANCEL")
    if job.error:
        err = box.column()
        err.alert = True
        _wrap(err, job.error)
    for line in list(job.log)[-8:]:
        box.label(text=line[:90])


class OPENKIN_PT_main(_Base, bpy.types.Panel):
    bl_label = "OpenKin"

    def draw(self, context):
        draw_main(self.layout, context)


class OPENKIN_PT_new_project(_Base, bpy.types.Panel):
    bl_label = "New Project"
    bl_parent_id = "OPENKIN_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.openkin
        self.layout.prop(s, "new_videos_dir")
        self.layout.prop(s, "new_calibration")
        self.layout.operator("openkin.new_project", icon="NEWFOLDER")


class OPENKIN_PT_import(_Base, bpy.types.Panel):
    bl_label = "Import Files"
    bl_parent_id = "OPENKIN_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.openkin
        col = self.layout.column()
        for name in ("calibration_file", "markers_file", "osim_file", "mot_file"):
            col.prop(s, name)
        col.prop(s, "marker_radius")
        col.prop(s, "undistort")
        col.prop(s, "bone_meshes")
        for name in ("animation_skeleton", "rest_pose", "root_bone"):
            col.prop(s, name)
        col.operator("openkin.import_files", icon="IMPORT")


class OPENKIN_PT_qa(_Base, bpy.types.Panel):
    bl_label = "Check"
    bl_parent_id = "OPENKIN_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        col = self.layout.column()
        col.operator("openkin.marker_rays", icon="LIGHT_SUN")
        obj = context.active_object
        if obj is not None and "openkin_mean_reprojection_px" in obj:
            col.label(text=f"Mean reprojection error: {obj['openkin_mean_reprojection_px']:.1f} px")
        for cam in [o for o in context.scene.objects if o.type == "CAMERA" and "openkin_resolution" in o]:
            col.operator("openkin.look_through", text=cam.name, icon="CAMERA_DATA").camera = cam.name


CLASSES = (OPENKIN_PT_main, OPENKIN_PT_new_project, OPENKIN_PT_import, OPENKIN_PT_qa)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

"""The Plan panel (3D Viewport › Sidebar › OpenKin › Plan): place virtual cameras and see
what they cover before a shoot — a floor heatmap of coverage or expected 3D error, the
frustums and a stand-in actor — updated live while cameras move (a depsgraph handler
schedules one recomputation 0.2 s later; changes meanwhile ride on that one).
"""
from __future__ import annotations

import logging

import bpy
from bpy.app.handlers import persistent

from .panel import _Base

log = logging.getLogger(__name__)

THROTTLE_S = 0.2
_PENDING = {"timer": False}


def _presets():
    from openkin.plan.presets import PRESETS

    return [(k, k, p.description) for k, p in PRESETS.items()]


def _display_changed(self, context):
    _request(context.scene)


def _live_changed(self, context):
    _set_live(self.live)


class OPENKIN_PG_plan(bpy.types.PropertyGroup):
    preset: bpy.props.EnumProperty(name="Lens", items=_presets(), default="phone_main_16x9")
    portrait: bpy.props.BoolProperty(name="Portrait", default=False)
    auto_volume: bpy.props.BoolProperty(name="Volume around cameras", default=True,
                                        description="a square around the cameras' common look-at point")
    x0: bpy.props.FloatProperty(name="x0", default=-2.0, unit="LENGTH")
    y0: bpy.props.FloatProperty(name="y0", default=-2.0, unit="LENGTH")
    x1: bpy.props.FloatProperty(name="x1", default=2.0, unit="LENGTH")
    y1: bpy.props.FloatProperty(name="y1", default=2.0, unit="LENGTH")
    height: bpy.props.FloatProperty(name="Height", default=2.0, min=0.1, unit="LENGTH")
    spacing: bpy.props.FloatProperty(name="Grid", default=0.25, min=0.05, max=2.0, unit="LENGTH")
    noise_px: bpy.props.FloatProperty(name="2D noise (px)", default=3.0, min=0.1)
    dropout: bpy.props.FloatProperty(name="Dropout", default=0.1, min=0.0, max=0.9)
    display: bpy.props.EnumProperty(name="Show", items=[("COVERAGE", "Coverage", "cameras seeing"),
                                                        ("ERROR", "Error", "expected 3D error")], default="COVERAGE",
                                    update=_display_changed)
    live: bpy.props.BoolProperty(name="Live", default=False, update=_live_changed,
                                 description="recompute while cameras move (throttled)")
    summary: bpy.props.StringProperty(name="Summary", default="")
    error: bpy.props.StringProperty(name="Error", default="")


def _run_update(scene) -> None:
    from openkin.errors import OpenKinError

    from .scene.plan import update_plan

    s = scene.openkin_plan
    try:
        update_plan(scene, s)
        s.error = ""
    except OpenKinError as exc:
        s.error = str(exc)


def _timer():
    _PENDING["timer"] = False
    scene = bpy.context.scene
    if scene is not None and hasattr(scene, "openkin_plan"):
        _run_update(scene)
    return None


def _request(scene) -> None:
    """Schedule one update THROTTLE_S from now unless one is pending."""
    if not _PENDING["timer"]:
        _PENDING["timer"] = True
        bpy.app.timers.register(_timer, first_interval=THROTTLE_S)


@persistent
def _on_depsgraph(scene, depsgraph):
    s = getattr(scene, "openkin_plan", None)
    if s is None or not s.live:
        return
    for u in depsgraph.updates:
        idb = u.id
        if isinstance(idb, bpy.types.Object) and idb.type == "CAMERA" and not idb.name.startswith("Plan View") \
                and ("openkin_plan_size" in idb or "openkin_resolution" in idb):
            _request(scene)
            return
        if isinstance(idb, bpy.types.Camera):
            _request(scene)
            return


def _set_live(on: bool) -> None:
    handlers = bpy.app.handlers.depsgraph_update_post
    if on and _on_depsgraph not in handlers:
        handlers.append(_on_depsgraph)
    elif not on and _on_depsgraph in handlers:
        handlers.remove(_on_depsgraph)
    if on and bpy.context.scene is not None:
        _request(bpy.context.scene)


class OPENKIN_OT_plan_add_camera(bpy.types.Operator):
    """Add a virtual camera with the chosen lens on a ring around the volume, aimed at its centre"""

    bl_idname = "openkin.plan_add_camera"
    bl_label = "Add Camera"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from openkin.plan.presets import PRESETS, intrinsics

        from .scene.plan import add_camera, plan_cameras, ring_position

        s = context.scene.openkin_plan
        p = PRESETS[s.preset]
        K, size = intrinsics(p.hfov_deg, p.size, portrait=s.portrait)
        n = len(plan_cameras(context.scene))
        pos, fwd = ring_position(s, n, max(n + 1, 4))
        add_camera(context.scene, f"plan_cam{n + 1:02d}", K, size, pos, fwd)
        _run_update(context.scene)
        return {"FINISHED"}


class OPENKIN_OT_plan_import(bpy.types.Operator):
    """Plan cameras from a calibration TOML (after a capture: the actual cameras) or a layout TOML"""

    bl_idname = "openkin.plan_import"
    bl_label = "Import Cameras"
    bl_options = {"REGISTER", "UNDO"}
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.toml;*.txt;*.xcp", options={"HIDDEN"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        from openkin.errors import OpenKinError
        from openkin.plan.volume import volume_from_table

        from .scene.plan import import_cameras

        s = context.scene.openkin_plan
        try:
            _, table = import_cameras(context.scene, self.filepath)
            if table is not None:
                vol = volume_from_table(table)
                s.auto_volume = False
                s.x0, s.y0, s.x1, s.y1 = vol.bounds
                s.height = vol.z1
        except OpenKinError as exc:
            s.error = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _run_update(context.scene)
        return {"FINISHED"}


class OPENKIN_OT_plan_update(bpy.types.Operator):
    """Recompute coverage and expected error for the scene's cameras"""

    bl_idname = "openkin.plan_update"
    bl_label = "Update Plan"

    def execute(self, context):
        _run_update(context.scene)
        return {"FINISHED"}


class OPENKIN_OT_plan_actor(bpy.types.Operator):
    """Put a stand-in actor (capsule figure, 1.75 m) at the volume centre"""

    bl_idname = "openkin.plan_actor"
    bl_label = "Add Actor"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from .scene.plan import build_actor

        s = context.scene.openkin_plan
        build_actor(context.scene, ((s.x0 + s.x1) / 2, (s.y0 + s.y1) / 2))
        return {"FINISHED"}


class OPENKIN_PT_plan(_Base, bpy.types.Panel):
    bl_label = "Plan"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.openkin_plan
        col = self.layout.column()
        row = col.row(align=True)
        row.prop(s, "preset", text="")
        row.prop(s, "portrait", text="", icon="ORIENTATION_VIEW")
        row = col.row(align=True)
        row.operator("openkin.plan_add_camera", icon="CAMERA_DATA")
        row.operator("openkin.plan_import", icon="IMPORT")
        box = col.box()
        box.prop(s, "auto_volume")
        sub = box.column(align=True)
        sub.enabled = not s.auto_volume
        r = sub.row(align=True)
        r.prop(s, "x0")
        r.prop(s, "y0")
        r = sub.row(align=True)
        r.prop(s, "x1")
        r.prop(s, "y1")
        box.prop(s, "height")
        r = box.row(align=True)
        r.prop(s, "spacing")
        r.prop(s, "noise_px")
        box.prop(s, "dropout")
        col.row().prop(s, "display", expand=True)
        row = col.row(align=True)
        row.prop(s, "live", toggle=True, icon="REC")
        row.operator("openkin.plan_update", icon="FILE_REFRESH")
        row.operator("openkin.plan_actor", icon="ARMATURE_DATA")
        col.label(text="Colours: Viewport Shading › Color › Attribute (Vertex)")
        for line in s.summary.splitlines():
            col.label(text=line)
        if s.error:
            err = col.box()
            err.alert = True
            for line in s.error.splitlines():
                err.label(text=line)


_CLASSES = (OPENKIN_PG_plan, OPENKIN_OT_plan_add_camera, OPENKIN_OT_plan_import, OPENKIN_OT_plan_update,
            OPENKIN_OT_plan_actor, OPENKIN_PT_plan)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.openkin_plan = bpy.props.PointerProperty(type=OPENKIN_PG_plan)


def unregister():
    _set_live(False)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    _PENDING["timer"] = False
    del bpy.types.Scene.openkin_plan
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)

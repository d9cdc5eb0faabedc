"""QA panel: 2D overlays on the videos, error timelines, fix-and-recompute.

The user picks a frame range (the scene's preview range, or the fields), a camera, a
keypoint or a person, and marks what is wrong there; each button adds one edit to
``PROJECT/openkin/edits.toml`` through the engine's edits API (:mod:`openkin.edits`,
:func:`openkin.recompute.edit.edit_project` when present: checked against the project). Recompute runs
``openkin.recompute.recompute(PROJECT, frames=(a, b))`` in the background job runner
(progress and Cancel in the main panel), then re-imports the capture in place, redraws the
overlays of those frames and rebuilds the timelines. Edit frames are output frames
(TRC ``Frame#``) = scene frame − 1. The overlays' render planes follow the active camera
through the add-on's scene handler (:func:`.scene.overlays.sync_overlays`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, PointerProperty, StringProperty

from . import operators
from .panel import _Base

log = logging.getLogger(__name__)

EDIT_KINDS = [("swap", "Swap Left/Right", "The detector exchanged left and right in this camera on these frames"),
              ("exclude_camera", "Exclude Camera", "Do not use this camera on these frames"),
              ("wrong", "Wrong Detection", "This keypoint's detection in this camera is wrong on these frames"),
              ("person", "Another Person", "This detection (person ID in this camera) is another person (-1: nobody)"),
              ("merge", "Merge IDs", "The two person IDs are one person"),
              ("split", "Split ID", "From the split frame on, this person ID is a new person")]


_ITEMS: dict[str, list] = {"cameras": [], "curves": []}   # Blender needs the enum strings kept alive


def _cameras(self, context):
    objs = [o for o in context.scene.objects if o.type == "CAMERA" and "openkin_resolution" in o]
    _ITEMS["cameras"] = [(o.name, o.name, "") for o in sorted(objs, key=lambda o: o.name)] or [("", "(no camera)", "")]
    return _ITEMS["cameras"]


def _curves(self, context):
    from .scene.timelines import curve_names, qa_object

    obj = qa_object(context.scene)
    names = curve_names(obj) if obj is not None else []
    _ITEMS["curves"] = [(n, n, "") for n in names] or [("", "(no timelines)", "")]
    return _ITEMS["curves"]


class OPENKIN_PG_qa(bpy.types.PropertyGroup):
    use_preview_range: BoolProperty(name="Use Preview Range", default=True,
                                    description="Edit the scene's preview range (else the fields below)")
    first: IntProperty(name="First", default=1, min=1, description="First scene frame of the range")
    last: IntProperty(name="Last", default=1, min=1, description="Last scene frame of the range")
    camera: EnumProperty(name="Camera", items=_cameras)
    keypoint: StringProperty(name="Keypoint", default="RWrist", description="Keypoint name(s), comma-separated")
    person: IntProperty(name="Person", default=-1, min=-1,
                        description="Person ID (swap/exclude/wrong: only this person, -1 all; "
                                    "another person: the detection's ID; split: the person)")
    target: IntProperty(name="Is Person", default=-1, min=-1, description="The person it really is (-1: nobody)")
    keep: IntProperty(name="Keep", default=0, min=0)
    absorbed: IntProperty(name="Absorb", default=1, min=0)
    curve: EnumProperty(name="Curve", items=_curves, description="The timeline 'next worst frame' ranks")


def frame_range(context) -> tuple[int, int]:
    """The chosen range as output frames (scene frame − 1), inclusive."""
    q, s = context.scene.openkin_qa, context.scene
    if q.use_preview_range and s.use_preview_range:
        a, b = s.frame_preview_start, s.frame_preview_end
    elif q.use_preview_range:
        a = b = s.frame_current
    else:
        a, b = q.first, q.last
    return max(0, min(a, b) - 1), max(0, max(a, b) - 1)


def _root(context) -> Path | None:
    return operators._project_dir(context)


def make_edit(kind: str, q, frames: tuple[int, int], scene_frame: int):
    """The :class:`openkin.edits.Edit` the panel's fields describe (id set when stored)."""
    from openkin.edits import Edit

    person = None if q.person < 0 else int(q.person)
    if kind in ("swap", "exclude_camera"):
        return Edit(id=0, kind=kind, camera=q.camera, frames=frames, person=person)
    if kind == "wrong":
        names = tuple(n.strip() for n in q.keypoint.split(",") if n.strip())
        return Edit(id=0, kind=kind, camera=q.camera, keypoints=names, frames=frames, person=person)
    if kind == "person":
        return Edit(id=0, kind=kind, camera=q.camera, person=int(q.person), target=int(q.target), frames=frames)
    if kind == "merge":
        return Edit(id=0, kind=kind, persons=(int(q.keep), int(q.absorbed)), frames=frames)
    return Edit(id=0, kind="split", person=int(max(q.person, 0)), at=max(0, scene_frame - 1))


def store_edit(root: Path, edit):
    """Add ``edit`` to the project's edits (checked against the project when the engine can)."""
    try:
        from openkin.recompute.edit import edit_project
    except ImportError:
        from openkin.edits import add_edit
        return add_edit(root, edit)
    return edit_project(root, edit)


class OPENKIN_OT_qa_edit(bpy.types.Operator):
    """Mark what is wrong on the chosen frames (saved in PROJECT/openkin/edits.toml)"""

    bl_idname = "openkin.qa_edit"
    bl_label = "Add Edit"
    kind: EnumProperty(name="Kind", items=EDIT_KINDS)

    def execute(self, context):
        from openkin.errors import OpenKinError

        root = _root(context)
        if root is None or not root.is_dir():
            return operators._report_error(self, context, "choose the project folder first")
        try:
            edit = store_edit(root, make_edit(self.kind, context.scene.openkin_qa, frame_range(context),
                                              context.scene.frame_current))
        except OpenKinError as e:
            return operators._report_error(self, context, str(e))
        self.report({"INFO"}, f"edit saved: {edit.describe()} (Recompute to apply)")
        return {"FINISHED"}


def refresh_scene(scene_name: str, root: Path) -> None:
    """After a recompute: the capture re-imported in place, overlays and timelines again."""
    from .core.capture import find_project
    from .scene import overlays, timelines

    scene = bpy.data.scenes.get(scene_name)
    if scene is None:
        return
    wm = bpy.context.window_manager
    window = wm.windows[0] if wm and wm.windows else None
    override = {"window": window, "screen": window.screen, "scene": scene} if window else {"scene": scene}
    with bpy.context.temp_override(**override):
        frame = scene.frame_current
        options = operators._build_options(bpy.context, operators._project_config(root))
        summary, _ = operators.import_capture(bpy.context, find_project(root), options)
        overlays.attach_project_overlays(scene, root)
        overlays.reload_overlays(scene)
        timelines.build_qa_object(scene, root)
        scene.frame_set(frame)
    job = operators.current_job()
    if job is not None:
        job.log.append(summary)


class OPENKIN_OT_qa_recompute(operators._JobOperator, bpy.types.Operator):
    """Recompute triangulation → filtering → augmentation → IK on the chosen frames (with the
    edits), in the background; the scene updates when it is done"""

    bl_idname = "openkin.qa_recompute"
    bl_label = "Recompute"

    def execute(self, context):
        root = _root(context)
        if root is None or not root.is_dir():
            return operators._report_error(self, context, "choose the project folder first")
        a, b = frame_range(context)
        scene_name = context.scene.name
        job = operators.start_job({"kind": "recompute", "project": str(root), "frames": [a, b],
                                   "cwd": str(root / "openkin" / "logs")}, "recompute",
                                  then=lambda: refresh_scene(scene_name, root))
        return self.finish(context, job)


class OPENKIN_OT_qa_overlays(operators._JobOperator, bpy.types.Operator):
    """Draw the 2D detections and reprojected markers of every frame (background job) and lay
    them over the cameras' videos"""

    bl_idname = "openkin.qa_overlays"
    bl_label = "2D Overlays"
    redraw: BoolProperty(name="Redraw", default=False,
                         description="Draw them again even when the drawn ones are newer than the results")

    def execute(self, context):
        from .scene import overlays

        root = _root(context)
        if root is None or not root.is_dir():
            return operators._report_error(self, context, "choose the project folder first")
        scene_name = context.scene.name
        if not self.redraw and overlays.overlays_current(root):
            done = overlays.attach_project_overlays(context.scene, root)
            self.report({"INFO"}, f"overlays laid over {', '.join(done) or 'no camera'}")
            return {"FINISHED"}

        def then():
            overlays.attach_project_overlays(bpy.data.scenes[scene_name], root)

        job = operators.start_job({"kind": "overlays", "project": str(root),
                                   "cwd": str(root / "openkin" / "logs")}, "overlays", then=then)
        return self.finish(context, job)


class OPENKIN_OT_qa_toggle_overlay(bpy.types.Operator):
    """Show or hide the 2D overlay of this camera"""

    bl_idname = "openkin.qa_toggle_overlay"
    bl_label = "Toggle Overlay"
    camera: StringProperty()

    def execute(self, context):
        from .scene.overlays import SHOWN, set_shown

        obj = context.scene.objects.get(self.camera)
        if obj is None:
            return {"CANCELLED"}
        set_shown(obj, not bool(obj.get(SHOWN, True)))
        return {"FINISHED"}


class OPENKIN_OT_qa_timelines(bpy.types.Operator):
    """Build the QA timelines (error and cameras used per person and camera, joint angles) as
    F-curves of the 'OpenKin QA' object (Graph Editor)"""

    bl_idname = "openkin.qa_timelines"
    bl_label = "Build Timelines"

    def execute(self, context):
        from openkin.errors import OpenKinError

        from .scene.timelines import build_qa_object

        root = _root(context)
        if root is None or not root.is_dir():
            return operators._report_error(self, context, "choose the project folder first")
        try:
            obj = build_qa_object(context.scene, root)
        except OpenKinError as e:
            return operators._report_error(self, context, str(e))
        self.report({"INFO"}, f"{len(obj.keys()) - 1} QA curves on '{obj.name}'")
        return {"FINISHED"}


class OPENKIN_OT_qa_jump_worst(bpy.types.Operator):
    """Go to the next worst frame of the chosen timeline"""

    bl_idname = "openkin.qa_jump_worst"
    bl_label = "Next Worst Frame"
    curve: StringProperty(description="Curve name (default: the panel's)")

    def execute(self, context):
        from .scene.timelines import jump_to_worst

        name = self.curve or context.scene.openkin_qa.curve
        frame = jump_to_worst(context.scene, name) if name else None
        if frame is None:
            self.report({"WARNING"}, "no timeline values: Build Timelines first")
            return {"CANCELLED"}
        self.report({"INFO"}, f"frame {frame}: {name}")
        return {"FINISHED"}


class OPENKIN_PT_qa_fix(_Base, bpy.types.Panel):
    bl_label = "QA: Overlays, Timelines, Fix"
    bl_idname = "OPENKIN_PT_qa_fix"
    bl_parent_id = "OPENKIN_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_qa(self.layout, context)


def draw_qa(layout, context) -> None:
    from .scene.overlays import SHOWN

    q = context.scene.openkin_qa
    col = layout.column()
    col.operator("openkin.qa_overlays", icon="IMAGE_BACKGROUND")
    for obj in sorted((o for o in context.scene.objects if o.type == "CAMERA" and SHOWN in o), key=lambda o: o.name):
        col.operator("openkin.qa_toggle_overlay", text=f"{obj.name}: {'on' if obj[SHOWN] else 'off'}",
                     icon="HIDE_OFF" if obj[SHOWN] else "HIDE_ON").camera = obj.name
    row = col.row(align=True)
    row.operator("openkin.qa_timelines", icon="GRAPH")
    row.operator("openkin.qa_jump_worst", icon="NEXT_KEYFRAME")
    col.prop(q, "curve")
    box = col.box()
    box.prop(q, "use_preview_range")
    if not q.use_preview_range:
        row = box.row(align=True)
        row.prop(q, "first")
        row.prop(q, "last")
    a, b = frame_range(context)
    box.label(text=f"output frames {a}-{b}")
    box.prop(q, "camera")
    box.prop(q, "keypoint")
    row = box.row(align=True)
    row.prop(q, "person")
    row.prop(q, "target")
    row = box.row(align=True)
    row.prop(q, "keep")
    row.prop(q, "absorbed")
    grid = box.grid_flow(columns=2, align=True)
    for kind, label, _ in EDIT_KINDS:
        grid.operator("openkin.qa_edit", text=label).kind = kind
    col.operator("openkin.qa_recompute", icon="FILE_REFRESH")


_CLASSES = (OPENKIN_PG_qa, OPENKIN_OT_qa_edit, OPENKIN_OT_qa_recompute, OPENKIN_OT_qa_overlays,
            OPENKIN_OT_qa_toggle_overlay, OPENKIN_OT_qa_timelines, OPENKIN_OT_qa_jump_worst, OPENKIN_PT_qa_fix)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.openkin_qa = PointerProperty(type=OPENKIN_PG_qa)


def unregister():
    del bpy.types.Scene.openkin_qa
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)

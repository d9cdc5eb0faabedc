"""The Calibrate panel (3D Viewport › Sidebar › OpenKin › Calibrate): calibrate the cameras in
the field from the people themselves, a board, or scene points clicked on the videos.

- **People**: the pose stage (if the project has no 2D keypoints yet), synchronisation, then
  the calibration from keypoints (``extrinsics_method = 'keypoints'``), in the background job.
- **Board**: a checkerboard every camera sees (``calibration/extrinsics/``).
- **Points**: look through a camera, *Mark Points* and click the listed points (world
  coordinates you measured) on its video; the clicks are saved in Pose2Sim's layout
  (``calibration/Image_points.json`` + ``calibration/extrinsics/<cam>.png``), so ``openkin
  calibration`` computes the same result from the files.

When the job is done the cameras are imported again at their new poses, each with its check
image (detections and reprojections) over its video, and the world axes at the origin.
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
from bpy.props import (CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty,
                       StringProperty)

from . import operators as ops
from .panel import _Base

log = logging.getLogger(__name__)

METHODS = [("PEOPLE", "People", "From the 2D keypoints of a person walking through the volume (no board)"),
           ("BOARD", "Board", "From a checkerboard every camera sees (calibration/extrinsics/)"),
           ("POINTS", "Points", "From points of known coordinates clicked on each camera's video")]


class OPENKIN_PG_calib_point(bpy.types.PropertyGroup):
    name: StringProperty(name="Name", default="P")
    location: FloatVectorProperty(name="World", size=3, subtype="TRANSLATION", unit="LENGTH",
                                  description="Measured world coordinates (m; Z up, floor at Z = 0)")


class OPENKIN_PG_calibrate(bpy.types.PropertyGroup):
    method: EnumProperty(name="From", items=METHODS, default="PEOPLE")
    height: FloatProperty(name="Person's height", default=1.75, min=0.4, max=2.6, unit="LENGTH",
                          description="Standing height of the person filmed: the calibration's metric scale")
    fov_deg: FloatProperty(name="Field of view", default=70.0, min=10.0, max=170.0,
                           description="Horizontal field of view (deg) guessed when no intrinsics exist "
                                       "(refined by the calibration)")
    corners_h: IntProperty(name="Corners H", default=4, min=2)
    corners_w: IntProperty(name="Corners W", default=7, min=2)
    square_mm: FloatProperty(name="Square (mm)", default=60.0, min=1.0)
    points: CollectionProperty(type=OPENKIN_PG_calib_point)
    active_point: IntProperty(name="Point", default=0, min=0)
    summary: StringProperty(name="Summary", default="")


def overrides(s, participant_height: bool = True) -> dict:
    """Config overrides of the chosen method (the UI layer over the project's Config.toml)."""
    method = {"PEOPLE": "keypoints", "BOARD": "board", "POINTS": "scene"}[s.method]
    ext: dict = {"calculate_extrinsics": True, "extrinsics_method": method}
    if s.method == "PEOPLE":
        ext["keypoints"] = {"fov_deg": float(s.fov_deg)}
    elif s.method == "BOARD":
        ext["board"] = {"extrinsics_corners_nb": [int(s.corners_h), int(s.corners_w)],
                        "extrinsics_square_size": float(s.square_mm)}
    else:
        ext["extrinsics_extension"] = "png"
    out = {"calibration": {"calibration_type": "calculate", "calculate": {"extrinsics": ext}}}
    if s.method == "PEOPLE" and participant_height:
        out["project"] = {"participant_height": float(s.height)}
    return out


def stages(method: str, root: Path) -> list[str]:
    """The stages a calibration by ``method`` runs: from people, pose first when the project has
    no 2D keypoints yet, and synchronisation (the videos of phones are not in sync)."""
    if method != "PEOPLE":
        return ["calibration"]
    has_pose = any(d.is_dir() and d.name.endswith("json") for d in (root / "pose").glob("*")) \
        if (root / "pose").is_dir() else False
    return (["pose"] if not has_pose else []) + ["synchronization", "calibration"]


def point_list(s) -> list[tuple[str, tuple[float, float, float]]]:
    return [(p.name, tuple(p.location)) for p in s.points]


class OPENKIN_UL_calib_points(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        from .scene.calibrate import clicks_of

        cam = context.scene.camera
        marked = cam is not None and item.name in clicks_of(cam) if cam and cam.get("openkin_matrix") else False
        row = layout.row(align=True)
        row.prop(item, "name", text="", emboss=False, icon="CHECKMARK" if marked else "DOT")
        row.prop(item, "location", text="")


class OPENKIN_OT_calib_point_add(bpy.types.Operator):
    """Add a point of known world coordinates"""

    bl_idname = "openkin.calib_point_add"
    bl_label = "Add Point"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.openkin_calibrate
        p = s.points.add()
        p.name = f"P{len(s.points)}"
        s.active_point = len(s.points) - 1
        return {"FINISHED"}


class OPENKIN_OT_calib_point_remove(bpy.types.Operator):
    """Remove the selected point"""

    bl_idname = "openkin.calib_point_remove"
    bl_label = "Remove Point"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.openkin_calibrate
        if 0 <= s.active_point < len(s.points):
            s.points.remove(s.active_point)
            s.active_point = max(0, min(s.active_point, len(s.points) - 1))
        return {"FINISHED"}


class OPENKIN_OT_calib_points_from_config(bpy.types.Operator):
    """Load the points of [calibration.calculate.extrinsics.scene] object_coords_3d of the project"""

    bl_idname = "openkin.calib_points_from_config"
    bl_label = "From Config.toml"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from openkin.config import load_config
        from openkin.errors import OpenKinError

        root = ops._project_dir(context)
        try:
            coords = load_config(root).calibration.calculate.extrinsics.scene.object_coords_3d if root else []
        except OpenKinError as e:
            return ops._report_error(self, context, str(e))
        s = context.scene.openkin_calibrate
        s.points.clear()
        for k, xyz in enumerate(coords):
            p = s.points.add()
            p.name, p.location = f"P{k + 1}", tuple(float(v) for v in xyz)
        return {"FINISHED"}


_DRAW = {"handler": None}


def _draw_clicks() -> None:
    """Viewport overlay while marking: clicked points (yellow) and where the current calibration
    puts the listed points (cyan), on the active camera's background."""
    import gpu
    import numpy as np
    from gpu_extras.batch import batch_for_shader

    from .core import clicks
    from .scene.calibrate import clicks_of, engine_camera, frame_corners_region, reprojected_clicks

    context = bpy.context
    scene, rv3d, region = context.scene, context.region_data, context.region
    cam = scene.camera
    if cam is None or cam.get("openkin_matrix") is None or rv3d is None or rv3d.view_perspective != "CAMERA":
        return
    bounds = clicks.frame_bounds(frame_corners_region(region, rv3d, scene, cam))
    undist = bool(cam.get("openkin_background_undistorted", True))
    camera = engine_camera(cam)
    shader = gpu.shader.from_builtin("POINT_UNIFORM_COLOR")
    gpu.state.point_size_set(9.0)
    for colour, uv in (((1.0, 0.85, 0.1, 1.0), list(clicks_of(cam).values())),
                       ((0.1, 0.9, 1.0, 1.0), list(reprojected_clicks(cam, point_list(scene.openkin_calibrate)).values()))):
        if not uv:
            continue
        xy = clicks.video_pixels_to_region(np.array(uv, float), bounds, camera, undist)
        batch = batch_for_shader(shader, "POINTS", {"pos": [(float(x), float(y)) for x, y in xy]})
        shader.uniform_float("color", colour)
        batch.draw(shader)


class OPENKIN_OT_mark_points(bpy.types.Operator):
    """Click the listed points on the video of the camera you look through (left click: mark the
    selected point and go to the next; Backspace: unmark it; Esc or right click: done)"""

    bl_idname = "openkin.mark_points"
    bl_label = "Mark Points"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        cam = context.scene.camera
        rv3d = getattr(context, "region_data", None)
        return (cam is not None and cam.get("openkin_matrix") is not None and rv3d is not None
                and rv3d.view_perspective == "CAMERA" and len(context.scene.openkin_calibrate.points) > 0)

    def invoke(self, context, event):
        if _DRAW["handler"] is None:
            _DRAW["handler"] = bpy.types.SpaceView3D.draw_handler_add(_draw_clicks, (), "WINDOW", "POST_PIXEL")
        context.window_manager.modal_handler_add(self)
        self._status(context)
        return {"RUNNING_MODAL"}

    def _status(self, context):
        s = context.scene.openkin_calibrate
        name = s.points[s.active_point].name if s.points else "-"
        context.workspace.status_text_set(f"OpenKin: click {name} on {context.scene.camera.name} "
                                          "(Backspace: unmark, Esc: done)")

    def modal(self, context, event):
        from .scene.calibrate import click, frame_corners_region, set_click

        s = context.scene.openkin_calibrate
        cam = context.scene.camera
        if event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            return self._finish(context)
        if event.type == "LEFTMOUSE" and event.value == "PRESS":
            corners = frame_corners_region(context.region, context.region_data, context.scene, cam)
            uv = click(cam, s.points[s.active_point].name, (event.mouse_region_x, event.mouse_region_y), corners)
            self.report({"INFO"}, f"{s.points[s.active_point].name} on {cam.name}: ({uv[0]:.1f}, {uv[1]:.1f}) px")
            s.active_point = min(s.active_point + 1, len(s.points) - 1)
        elif event.type == "BACK_SPACE" and event.value == "PRESS":
            set_click(cam, s.points[s.active_point].name, None)
        else:
            return {"PASS_THROUGH"}
        self._status(context)
        context.area.tag_redraw()
        return {"RUNNING_MODAL"}

    def _finish(self, context):
        context.workspace.status_text_set(None)
        context.area.tag_redraw()
        return {"FINISHED"}


class OPENKIN_OT_save_points(bpy.types.Operator):
    """Save the clicked points in the project (calibration/Image_points.json and each camera's
    frame in calibration/extrinsics/), Pose2Sim's layout"""

    bl_idname = "openkin.save_points"
    bl_label = "Save Points"

    def execute(self, context):
        from openkin.errors import OpenKinError

        from .scene.calibrate import save_points

        root = ops._project_dir(context)
        if root is None or not root.is_dir():
            return ops._report_error(self, context, f"project folder not found: {root or '(none chosen)'}")
        try:
            written = save_points(context.scene, root, point_list(context.scene.openkin_calibrate))
        except OpenKinError as e:
            return ops._report_error(self, context, str(e))
        self.report({"INFO"}, f"saved {written[0]} and {len(written) - 1} camera frames")
        return {"FINISHED"}


def after_calibration(scene_name: str, root: Path) -> str:
    """Import the cameras at their new poses, put the check images on them and the world axes in
    the scene; returns a summary of the per-camera errors (also kept in the panel)."""
    from openkin.fileio import read_optional_toml

    from .core.capture import find_project
    from .scene.calibrate import show_check_images, world_axes

    scene = bpy.data.scenes[scene_name]
    wm = bpy.context.window_manager
    window = wm.windows[0] if wm and wm.windows else None
    override = {"window": window, "screen": window.screen, "scene": scene} if window else {"scene": scene}
    with bpy.context.temp_override(**override):
        ops.import_capture(bpy.context, find_project(root), ops._build_options(bpy.context, ops._project_config(root)))
    record = read_optional_toml(root / "openkin" / "calibration.toml")
    show_check_images(scene, root / "calibration", record)
    world_axes(scene)
    summary = _summary(record)
    scene.openkin_calibrate.summary = summary
    return summary


def _summary(record: dict) -> str:
    cams = record.get("extrinsics", {}).get("cameras", {})
    parts = []
    for name, v in cams.items():
        err = v.get("median_px", v.get("rms_px"))
        parts.append(f"{name} {err:.1f} px" if isinstance(err, (int, float)) else name)
    return ("reprojection error: " + ", ".join(parts)) if parts else ""


class OPENKIN_OT_calibrate(ops._JobOperator, bpy.types.Operator):
    """Calibrate the cameras by the chosen method in a separate process, then show them with
    their check images"""

    bl_idname = "openkin.calibrate"
    bl_label = "Calibrate"

    def execute(self, context):
        from openkin.errors import OpenKinError

        root = ops._project_dir(context)
        if root is None or not root.is_dir():
            return ops._report_error(self, context, f"project folder not found: {root or '(none chosen)'}")
        s = context.scene.openkin_calibrate
        if s.method == "POINTS":
            from .scene.calibrate import save_points
            try:
                save_points(context.scene, root, point_list(s))
            except OpenKinError as e:
                return ops._report_error(self, context, str(e))
        names = stages(s.method, root)
        problem = ops.offline_problem(names)
        if problem:
            return ops._report_error(self, context, problem)
        scene_name = context.scene.name
        spec = {"kind": "stages", "project": str(root), "stages": names,
                "overrides": _merge(context.scene.openkin.overrides(), overrides(s)),
                "cwd": str(root / "openkin" / "logs")}
        (root / "openkin" / "logs").mkdir(parents=True, exist_ok=True)
        job = ops.start_job(spec, "calibrate", then=lambda: after_calibration(scene_name, root))
        return self.finish(context, job)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class OPENKIN_PT_calibrate(_Base, bpy.types.Panel):
    bl_label = "Calibrate"
    bl_parent_id = "OPENKIN_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.openkin_calibrate
        col = self.layout.column()
        col.prop(s, "method", expand=True)
        if s.method == "PEOPLE":
            col.prop(s, "height")
            col.prop(s, "fov_deg")
        elif s.method == "BOARD":
            row = col.row(align=True)
            row.prop(s, "corners_h")
            row.prop(s, "corners_w")
            col.prop(s, "square_mm")
        else:
            row = col.row()
            row.template_list("OPENKIN_UL_calib_points", "", s, "points", s, "active_point", rows=4)
            side = row.column(align=True)
            side.operator("openkin.calib_point_add", text="", icon="ADD")
            side.operator("openkin.calib_point_remove", text="", icon="REMOVE")
            row = col.row(align=True)
            row.operator("openkin.calib_points_from_config", icon="FILE_TEXT")
            row.operator("openkin.mark_points", icon="RESTRICT_SELECT_OFF")
            col.operator("openkin.save_points", icon="FILE_TICK")
        col.operator("openkin.calibrate", icon="CAMERA_DATA")
        if s.summary:
            col.label(text=s.summary)


CLASSES = (OPENKIN_PG_calib_point, OPENKIN_PG_calibrate, OPENKIN_UL_calib_points, OPENKIN_OT_calib_point_add,
           OPENKIN_OT_calib_point_remove, OPENKIN_OT_calib_points_from_config, OPENKIN_OT_mark_points,
           OPENKIN_OT_save_points, OPENKIN_OT_calibrate, OPENKIN_PT_calibrate)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.openkin_calibrate = bpy.props.PointerProperty(type=OPENKIN_PG_calibrate)


def unregister():
    if _DRAW["handler"] is not None:
        bpy.types.SpaceView3D.draw_handler_remove(_DRAW["handler"], "WINDOW")
        _DRAW["handler"] = None
    del bpy.types.Scene.openkin_calibrate
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

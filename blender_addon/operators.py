"""Operators: thin — read settings, call one core/scene function, report."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import jobs, paths
from .props import STAGE_ITEMS

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
_STATE: dict = {"job": None}


def current_job() -> jobs.Job | None:
    return _STATE["job"]


def _redraw_panels() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in wm.windows if wm else []:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _poll_timer() -> float | None:
    """``bpy.app.timers`` callback on the main thread: read the child's events."""
    job = _STATE["job"]
    if job is None:
        return None
    running = job.poll()
    _redraw_panels()
    return POLL_SECONDS if running else None


def start_job(spec: dict, name: str) -> jobs.Job:
    """Start a child job; poll it from a timer, or wait for it under ``blender -b``."""
    job_dir = paths.data_dir("jobs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    job = jobs.Job(spec, job_dir).start()
    _STATE["job"] = job
    if bpy.app.background:
        job.wait()
    else:
        bpy.app.timers.register(_poll_timer, first_interval=POLL_SECONDS)
    return job


def _settings(context):
    return context.scene.openkin


def _report_error(op, context, message: str):
    _settings(context).last_error = message
    op.report({"ERROR"}, message)
    return {"CANCELLED"}


def _project_dir(context) -> Path | None:
    raw = _settings(context).project_dir
    return Path(bpy.path.abspath(raw)).resolve() if raw else None


class _JobOperator:
    @classmethod
    def poll(cls, context):
        job = current_job()
        return job is None or job.status != "running"

    def finish(self, context, job: jobs.Job):
        if bpy.app.background and job.status != "done":
            return _report_error(self, context, job.error or f"job {job.status}")
        _settings(context).last_error = ""
        return {"FINISHED"}


class OPENKIN_OT_run(_JobOperator, bpy.types.Operator):
    """Run the pipeline (all stages, or the chosen one) on the project, in a separate process"""

    bl_idname = "openkin.run"
    bl_label = "Run"
    stages: EnumProperty(name="Stages", items=[("ALL", "All", "Every stage in order"),
                                                ("ONE", "Chosen stage", "Only the stage chosen in the panel")])

    def execute(self, context):
        root = _project_dir(context)
        if root is None or not root.is_dir():
            return _report_error(self, context, f"project folder not found: {root or '(none chosen)'}")
        s = _settings(context)
        names = [i[0] for i in STAGE_ITEMS] if self.stages == "ALL" else [s.stage]
        job = start_job({"kind": "stages", "project": str(root), "stages": names,
                         "overrides": s.overrides()}, "run")
        return self.finish(context, job)


class OPENKIN_OT_demo(_JobOperator, bpy.types.Operator):
    """Copy Pose2Sim's single-person demo project (videos + calibration) into a new folder and select it"""

    bl_idname = "openkin.demo"
    bl_label = "Get Demo Project"
    directory: StringProperty(subtype="DIR_PATH")

    def execute(self, context):
        dest = Path(bpy.path.abspath(self.directory)) if self.directory else paths.data_dir("projects") / "Demo_SinglePerson"
        if dest.exists() and any(dest.iterdir()):
            _settings(context).project_dir = str(dest)
            self.report({"INFO"}, f"demo project already at {dest}")
            return {"FINISHED"}
        _settings(context).project_dir = str(dest)
        job = start_job({"kind": "demo", "dest": str(dest), "which": "single"}, "demo")
        return self.finish(context, job)


class OPENKIN_OT_new_project(bpy.types.Operator):
    """Make a project folder from a folder of videos and a calibration file"""

    bl_idname = "openkin.new_project"
    bl_label = "Make Project"
    directory: StringProperty(subtype="DIR_PATH", description="New project folder")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        from .core.project_setup import make_project
        from openkin.errors import OpenKinError

        s = _settings(context)
        try:
            root = make_project(Path(bpy.path.abspath(self.directory)), Path(bpy.path.abspath(s.new_videos_dir)),
                                Path(bpy.path.abspath(s.new_calibration)))
        except OpenKinError as e:
            return _report_error(self, context, str(e))
        s.project_dir = str(root)
        self.report({"INFO"}, f"project made at {root}")
        return {"FINISHED"}


class OPENKIN_OT_cancel(bpy.types.Operator):
    """Stop the running OpenKin process"""

    bl_idname = "openkin.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        job = current_job()
        return job is not None and job.status == "running"

    def execute(self, context):
        current_job().cancel()
        self.report({"WARNING"}, "OpenKin process cancelled")
        return {"FINISHED"}


def _build_options(context):
    from openkin import assets

    from .scene.build import BuildOptions

    s = _settings(context)
    geometry = [assets.assets_dir() / "OpenSim_Setup" / "Geometry"] if assets.is_ready() else []
    return BuildOptions(marker_radius=s.marker_radius, undistort=s.undistort, bone_meshes=s.bone_meshes,
                        cache_dir=paths.data_dir("cache"), geometry_dirs=geometry)


def _import(op, context, files, config=None):
    from openkin.errors import OpenKinError

    from .scene.build import import_files

    options = _build_options(context)
    if config is not None:  # the project's keypoint set and reprojection threshold
        options.pose_model = config.pose.pose_model
        options.reprojection_threshold_px = float(config.triangulation.reproj_error_threshold_triangulation)
    t0 = time.perf_counter()
    try:
        coll, cap = import_files(context, files, options)
    except OpenKinError as e:
        return _report_error(op, context, str(e))
    _settings(context).last_error = ""
    op.report({"INFO"}, f"imported {cap.name}: {len(cap.cameras)} cameras, {len(cap.people)} people "
                        f"in {time.perf_counter() - t0:.1f} s")
    return {"FINISHED"}


class OPENKIN_OT_import_project(bpy.types.Operator):
    """Bring the project's cameras (with their videos), markers and skeletons into the scene"""

    bl_idname = "openkin.import_project"
    bl_label = "Import Capture"
    bl_options = {"REGISTER", "UNDO"}
    directory: StringProperty(subtype="DIR_PATH", description="Project folder (default: the panel's)")

    def execute(self, context):
        from openkin.errors import OpenKinError

        from .core.capture import find_project

        root = Path(bpy.path.abspath(self.directory)) if self.directory else _project_dir(context)
        try:
            files = find_project(root) if root else None
        except OpenKinError as e:
            return _report_error(self, context, str(e))
        if files is None:
            return _report_error(self, context, "choose a project folder first")
        return _import(self, context, files, _project_config(root))


def _project_config(root: Path):
    from openkin.config import load_config
    from openkin.errors import OpenKinError

    try:
        return load_config(root)
    except OpenKinError as e:
        log.warning("cannot read the configuration of %s: %s", root, e)
        return None


class OPENKIN_OT_import_files(bpy.types.Operator):
    """Import single files: a calibration, markers (TRC/C3D), an OpenSim model and its motion"""

    bl_idname = "openkin.import_files"
    bl_label = "Import Files"
    bl_options = {"REGISTER", "UNDO"}
    calibration: StringProperty(subtype="FILE_PATH")
    markers: StringProperty(subtype="FILE_PATH")
    osim: StringProperty(subtype="FILE_PATH")
    mot: StringProperty(subtype="FILE_PATH")

    def execute(self, context):
        from .core.capture import CaptureFiles, PersonFiles

        s = _settings(context)

        def path(own, panel):
            raw = own or panel
            return Path(bpy.path.abspath(raw)) if raw else None

        calib = path(self.calibration, s.calibration_file)
        person = PersonFiles("P0", path(self.markers, s.markers_file), path(self.osim, s.osim_file),
                             path(self.mot, s.mot_file))
        people = [person] if (person.trc or person.osim or person.mot) else []
        if calib is None and not people:
            return _report_error(self, context, "choose at least one file to import")
        return _import(self, context, CaptureFiles(None, calib, [], people))


class OPENKIN_OT_marker_rays(bpy.types.Operator):
    """Draw rays from the selected marker to every camera (they follow the marker over time)"""

    bl_idname = "openkin.marker_rays"
    bl_label = "Rays to Cameras"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and "openkin_marker" in obj

    def execute(self, context):
        from .scene import qa

        rays = qa.build_rays(context.scene, context.active_object)
        if rays is None:
            return _report_error(self, context, "no OpenKin camera in the scene")
        return {"FINISHED"}


class OPENKIN_OT_look_through(bpy.types.Operator):
    """Make this camera active, with its own resolution and pixel aspect"""

    bl_idname = "openkin.look_through"
    bl_label = "Look Through"
    camera: StringProperty()

    def execute(self, context):
        from .scene.cameras import sync_active_camera

        obj = bpy.data.objects.get(self.camera)
        if obj is None or obj.type != "CAMERA":
            return _report_error(self, context, f"no camera named {self.camera!r}")
        context.scene.camera = obj
        sync_active_camera(context.scene)
        return {"FINISHED"}


CLASSES = (OPENKIN_OT_run, OPENKIN_OT_demo, OPENKIN_OT_new_project, OPENKIN_OT_cancel,
           OPENKIN_OT_import_project, OPENKIN_OT_import_files, OPENKIN_OT_marker_rays, OPENKIN_OT_look_through)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    job = current_job()
    if job is not None and job.status == "running":
        job.cancel()
    if bpy.app.timers.is_registered(_poll_timer):
        bpy.app.timers.unregister(_poll_timer)
    _STATE["job"] = None
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

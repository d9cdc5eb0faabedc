"""Operators: thin — read settings, call one core/scene function, report."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import bpy
from bpy.app.handlers import persistent
from bpy.props import BoolProperty, EnumProperty, StringProperty

from . import jobs, paths

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
_STATE: dict = {"job": None, "then": None}


def current_job() -> jobs.Job | None:
    return _STATE["job"]


def _redraw_panels() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in wm.windows if wm else []:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _poll_timer() -> float | None:
    """``bpy.app.timers`` callback on the main thread: read the child's events; when the job
    is over, run what was waiting for it (e.g. the import after the videos are undistorted)."""
    job = _STATE["job"]
    if job is None:
        return None
    running = job.poll()
    _redraw_panels()
    if running:
        return POLL_SECONDS
    _after_job(job)
    return None


def _after_job(job: jobs.Job) -> None:
    then, _STATE["then"] = _STATE.get("then"), None
    if then is None or job.status != "done":
        return
    try:
        then()
    except Exception as e:  # a timer must not raise: show it in the panel instead
        log.exception("after the job")
        job.error = f"{type(e).__name__}: {e}"


def _ensure_timer() -> None:
    if not bpy.app.timers.is_registered(_poll_timer):
        # persistent: the timer survives File › Open (see _on_load_post)
        bpy.app.timers.register(_poll_timer, first_interval=POLL_SECONDS, persistent=True)


@persistent
def _on_load_post(*_args) -> None:
    """File › Open / New while a job runs: keep polling it (its results are files; nothing of
    the old scene is touched), but drop an action bound to the old scene (an automatic import)."""
    job = _STATE["job"]
    if job is None or job.status != "running":
        return
    if _STATE.get("then") is not None:
        _STATE["then"] = None
        job.log.append("another file was opened: the capture will not be imported automatically "
                       "(click Import Capture when the job is done)")
    _ensure_timer()


def start_job(spec: dict, name: str, *, wait: bool | None = None, then=None) -> jobs.Job:
    """Start a child job; poll it from a timer (``then()`` runs on the main thread when it
    succeeds), or wait for it under ``blender -b`` (``wait`` default: ``bpy.app.background``)."""
    job_dir = paths.data_dir("jobs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    job = jobs.Job(spec, job_dir, online=online_access()).start()
    _STATE["job"] = job
    _STATE["then"] = then
    if bpy.app.background if wait is None else wait:
        job.wait()
        _after_job(job)
    else:
        _ensure_timer()
    return job


OFFLINE_FIX = ("Blender's online access is off: turn on Edit › Preferences › System › Network › "
               "Allow Online Access (or start Blender without --offline-mode), then try again")


def online_access() -> bool:
    """Blender's "Allow Online Access" (Preferences › System › Network); off: no downloads."""
    return bool(getattr(bpy.app, "online_access", True))


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
        names = run_stage_names(self.stages, s.stage)
        problem = offline_problem(names)
        if problem:
            return _report_error(self, context, problem)
        job = start_job({"kind": "stages", "project": str(root), "stages": names, "overrides": s.overrides(),
                         "cwd": str(root / "openkin" / "logs")}, "run")
        return self.finish(context, job)


def run_stage_names(which: str, chosen: str) -> list[str]:
    """``ALL``: every stage ``openkin run`` runs (the engine's registry); else the chosen one."""
    from openkin.cli import STAGES

    return [st.name for st in STAGES] if which == "ALL" else [chosen]


ASSET_STAGES = ("augmentation", "kinematics")   # need Pose2Sim's models (downloaded once)


def offline_problem(stages: list[str]) -> str:
    """Why these stages cannot run with online access off ('' when they can)."""
    from openkin import assets

    if online_access() or assets.is_ready():
        return ""
    needing = [st for st in stages if st in ASSET_STAGES]
    if not needing:
        return ""
    return (f"the {', '.join(needing)} stage{'s' if len(needing) > 1 else ''} need{'' if len(needing) > 1 else 's'} "
            f"Pose2Sim's OpenSim models and marker augmenter (~51 MB, downloaded once), and downloads are "
            f"not allowed. {OFFLINE_FIX}")


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
        from openkin import assets

        if not online_access() and not assets.is_ready():
            return _report_error(self, context, "the demo project (Pose2Sim's demo, ~51 MB) is not downloaded yet "
                                                f"and downloads are not allowed. {OFFLINE_FIX}")
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


def _build_options(context, config=None):
    from openkin import assets

    from .scene.build import BuildOptions

    s = _settings(context)
    geometry = [assets.assets_dir() / "OpenSim_Setup" / "Geometry"] if assets.is_ready() else []
    options = BuildOptions(marker_radius=s.marker_radius, undistort=s.undistort, bone_meshes=s.bone_meshes,
                           cache_dir=paths.data_dir("cache"), geometry_dirs=geometry, keep_previous=s.keep_previous,
                           animation_skeleton=s.animation_skeleton, rest_pose=s.rest_pose, root_bone=s.root_bone)
    if config is not None:  # the project's keypoint set and reprojection threshold
        options.pose_model = config.pose.pose_model
        options.reprojection_threshold_px = float(config.triangulation.reproj_error_threshold_triangulation)
    return options


def import_capture(context, files, options) -> tuple[str, list[str]]:
    """Read and build ``files`` (all or nothing); (summary, warnings). Raises ``OpenKinError``.
    The warnings are kept in the panel (``scene.openkin.import_warnings``)."""
    from .scene.build import import_files

    t0 = time.perf_counter()
    _coll, cap = import_files(context, files, options)
    s = context.scene.openkin
    s.last_error = ""
    s.set_warnings(cap.warnings)
    return (f"imported {cap.name}: {len(cap.cameras)} cameras, {len(cap.people)} people "
            f"in {time.perf_counter() - t0:.1f} s"), list(cap.warnings)


def _import(op, context, files, config=None, in_job: bool | None = None):
    """Import now, or (in the UI, when videos still need undistorting) undistort them in a
    background job first and import when it is done. ``in_job``: default ``not bpy.app.background``
    (under ``blender -b`` the undistortion runs here, synchronously)."""
    from openkin.errors import OpenKinError

    from .scene.build import pending_undistortions

    options = _build_options(context, config)
    in_job = not bpy.app.background if in_job is None else in_job
    try:
        todo = pending_undistortions(files, options) if in_job else []
        if todo:
            return _import_later(op, context, files, options, todo)
        summary, warnings = import_capture(context, files, options)
    except OpenKinError as e:
        return _report_error(op, context, str(e))
    for w in warnings:
        op.report({"WARNING"}, w)
    op.report({"INFO"}, summary + (f" ({len(warnings)} warnings: see the panel)" if warnings else ""))
    return {"FINISHED"}


def _import_later(op, context, files, options, todo: list[dict]):
    job = current_job()
    if job is not None and job.status == "running":
        return _report_error(op, context, "an OpenKin job is running: wait for it or cancel it, then import")
    scene_name = context.scene.name

    def then():
        _import_in_timer(scene_name, files, options)

    start_job({"kind": "undistort", "videos": todo}, "undistort", wait=False, then=then)
    op.report({"INFO"}, f"undistorting {len(todo)} video{'s' if len(todo) > 1 else ''} in the background "
                        "(progress and Cancel in the panel); the capture is imported when they are done")
    return {"FINISHED"}


def _import_in_timer(scene_name: str, files, options) -> None:
    """The import that waited for the undistortion job (runs from the job's timer)."""
    from openkin.errors import OpenKinError

    wm = bpy.context.window_manager
    window = wm.windows[0] if wm and wm.windows else None
    scene = bpy.data.scenes.get(scene_name)
    if scene is None:
        return
    override = {"window": window, "screen": window.screen, "scene": scene} if window else {"scene": scene}
    with bpy.context.temp_override(**override):
        try:
            summary, warnings = import_capture(bpy.context, files, options)
        except OpenKinError as e:
            scene.openkin.last_error = str(e)
            return
    job = current_job()
    if job is not None:
        job.log.append(summary)
    _redraw_panels()


class OPENKIN_OT_import_project(bpy.types.Operator):
    """Bring the project's cameras (with their videos), markers and skeletons into the scene
    (replacing its previous import)"""

    bl_idname = "openkin.import_project"
    bl_label = "Import Capture"
    bl_options = {"REGISTER", "UNDO"}
    directory: StringProperty(subtype="DIR_PATH", description="Project folder (default: the panel's)")
    undistort_in_job: BoolProperty(name="Undistort in a job", default=False, options={"HIDDEN", "SKIP_SAVE"},
                                   description="Under blender -b too, undistort the videos in a background job "
                                               "(then import from the job's timer) instead of synchronously")

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
        return _import(self, context, files, _project_config(root), True if self.undistort_in_job else None)


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

        from .scene.build import TAG

        marker = context.active_object
        rays = qa.build_rays(context.scene, marker)
        if rays is None:
            return _report_error(self, context, "no OpenKin camera in the scene")
        if TAG in marker:   # part of that import: replaced with it
            rays[TAG] = rays.data[TAG] = marker[TAG]
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
    if _on_load_post not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load_post)


def unregister():
    if _on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load_post)
    job = current_job()
    if job is not None and job.status == "running":
        job.cancel()
    if bpy.app.timers.is_registered(_poll_timer):
        bpy.app.timers.unregister(_poll_timer)
    _STATE["job"] = None
    _STATE["then"] = None
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

"""Build a whole capture into the scene, all or nothing, replacing its previous import.

Files are read and checked first (:mod:`..core.capture`); then the scene is
built inside :class:`SceneTransaction`: if anything fails, every datablock
created since it began is removed and the scene settings it touched are put back,
so a failed import leaves the scene as it was.

Every datablock an import creates carries ``block["openkin_import"] = key`` (the
project folder, or the imported files). Importing the same capture again replaces
exactly those blocks (the user's own objects, materials and collections are never
removed; user objects inside our collections or parented to our objects are kept
in the scene); with ``keep_previous`` both stay. The previous blocks are renamed
aside while the new ones are built (so the new ones get the plain names, no
``.001``) and removed only once the new import has succeeded.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from ..core import capture as capture_mod
from . import armature, cameras, character, markers

log = logging.getLogger(__name__)

_ID_COLLECTIONS = ("objects", "meshes", "cameras", "armatures", "materials", "images", "actions",
                   "collections", "curves", "movieclips")
_SCENE_SETTINGS = ("frame_start", "frame_end", "camera")
TAG = "openkin_import"          # ID property: which import made this datablock
_ASIDE = "~"                    # suffix of the previous import's names while the new one is built
_NOT_FOREIGN = ("Scene", "WindowManager", "Screen", "WorkSpace")   # users that do not make a block the user's
_RENDER_SETTINGS = ("fps", "fps_base", "resolution_x", "resolution_y", "resolution_percentage",
                    "pixel_aspect_x", "pixel_aspect_y")


class SceneTransaction:
    """Context manager: on an exception, remove new datablocks and restore scene settings."""

    def __init__(self, scene):
        self.scene = scene

    def __enter__(self):
        self.before = {name: set(getattr(bpy.data, name)[:]) for name in _ID_COLLECTIONS}
        self.settings = {k: getattr(self.scene, k) for k in _SCENE_SETTINGS}
        self.render = {k: getattr(self.scene.render, k) for k in _RENDER_SETTINGS}
        self.camera_state = self.scene.get(cameras.STATE_KEY)
        return self

    def new_blocks(self) -> list:
        """Datablocks created since the transaction began."""
        return [b for name in _ID_COLLECTIONS for b in getattr(bpy.data, name) if b not in self.before[name]]

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        for name in _ID_COLLECTIONS:  # objects first: they use the data below
            data = getattr(bpy.data, name)
            for block in [b for b in data if b not in self.before[name]]:
                data.remove(block)
        for k, v in self.settings.items():
            setattr(self.scene, k, v)
        for k, v in self.render.items():
            setattr(self.scene.render, k, v)
        if self.camera_state is None:
            self.scene.pop(cameras.STATE_KEY, None)
        else:
            self.scene[cameras.STATE_KEY] = self.camera_state
        log.info("import failed: scene restored")
        return False


@dataclass
class BuildOptions:
    marker_radius: float = 0.02
    undistort: bool = True
    bone_meshes: bool = True
    reprojection: bool = True
    reprojection_threshold_px: float = 15.0
    cache_dir: Path | None = None
    geometry_dirs: list[Path] = field(default_factory=list)
    pose_model: str = "HALPE_26"
    keep_previous: bool = False   # True: a re-import adds a second copy instead of replacing the first
    animation_skeleton: bool = True   # the humanoid animation armature next to the OpenSim one (.character)
    rest_pose: str = "T"              # its rest pose: "T" or "A"
    root_bone: bool = True            # root motion on a separate root bone (else on hips)


def pending_undistortions(files: capture_mod.CaptureFiles, options: BuildOptions) -> list[dict]:
    """The videos of ``files`` that need an undistorted copy not made yet, as job items for the
    background runner (``{"video", "matrix", "dist", "size", "cache_dir"}``). No scene change."""
    from openkin.formats.calibration import read_calibration

    from ..core import undistort

    if not (options.undistort and options.cache_dir and files.calibration and files.videos):
        return []
    cams = read_calibration(files.calibration)
    by_name = {c.name: c for c in cams}
    out = []
    for name, video in capture_mod.match_videos(cams, list(files.videos), files.calibration).items():
        cam = by_name[name]
        size = (cam.width, cam.height)
        cache = options.cache_dir / "videos"
        if undistort.output_path(video, cam.matrix, cam.distortions, size, cache).is_file():
            continue
        if undistort.needs_undistortion(cam.matrix, cam.distortions, size, video):
            out.append({"video": str(video), "matrix": [list(map(float, r)) for r in cam.matrix],
                        "dist": [float(d) for d in cam.distortions], "size": [int(size[0]), int(size[1])],
                        "cache_dir": str(cache)})
    return out


def prepare_videos(cap, options: BuildOptions, progress=None) -> dict[str, Path]:
    """Camera name → the video to show (undistorted copy when needed). No scene change."""
    from ..core import undistort

    shown = {}
    by_name = {c.name: c for c in cap.cameras}
    for name, video in cap.videos.items():
        cam = by_name[name]
        size = (cam.width, cam.height)
        if options.undistort and options.cache_dir and undistort.needs_undistortion(cam.matrix, cam.distortions, size, video):
            shown[name] = undistort.undistorted_video(video, cam.matrix, cam.distortions, size,
                                                      options.cache_dir / "videos", progress)
        else:
            shown[name] = video
    return shown


def build_capture(context, cap, options: BuildOptions, root: Path | None = None, progress=None,
                  key: str | None = None):
    """Build ``cap`` (a loaded :class:`~..core.capture.Capture`); returns the new top collection.

    ``key`` names the capture (see the module doc): its previous import is replaced unless
    ``options.keep_previous``."""
    videos = prepare_videos(cap, options, progress) if cap.videos else {}
    errors = _reprojection(cap, root, options) if options.reprojection and root else {}
    scene = context.scene
    key = key or f"capture:{cap.name}"
    previous = [] if options.keep_previous else set_aside(key)
    try:
        with SceneTransaction(scene) as tx:
            top = bpy.data.collections.new(f"OpenKin {cap.name}")
            scene.collection.children.link(top)
            top["openkin_capture"] = cap.name
            _set_time(scene, cap)
            if cap.cameras:
                cams = _child(top, "Cameras")
                objs = [cameras.build_camera(c, cams, videos.get(c.name), 1, cap.video_offsets.get(c.name, 0))
                        for c in cap.cameras]   # scene frame 1 = video frame 0 (see core.capture)
                for c, obj in zip(cap.cameras, objs):   # clicks on it are mapped through the lens when True
                    obj["openkin_background_undistorted"] = videos.get(c.name) != cap.videos.get(c.name)
                _choose_active_camera(scene, objs, previous)
            for person in cap.people:
                _build_person(context, person, _child(top, person.name), options, errors.get(person.name), cap.name)
            for block in tx.new_blocks():
                block[TAG] = key
    except BaseException:
        restore_aside(previous)
        raise
    remove_blocks(previous, scene)
    return top


def _choose_active_camera(scene, objs: list, previous: list) -> None:
    """Make one of the new cameras active only when the scene has no camera of the user's:
    none at all, or an OpenKin camera (then the new one of the same name). The render size
    follows an OpenKin camera (see :func:`.cameras.sync_active_camera`); a user camera and
    its render size are left alone."""
    active = scene.camera
    if active is not None and "openkin_resolution" not in active:
        return
    if active is not None and active in previous:
        old_name = active.name.removesuffix(_ASIDE)
        scene.camera = next((o for o in objs if o.name == old_name), objs[0])
    elif active is None:
        scene.camera = objs[0]
    cameras.sync_active_camera(scene)


def tagged_blocks(key: str) -> list:
    """Every datablock made by the import named ``key`` (objects first)."""
    return [b for name in _ID_COLLECTIONS for b in getattr(bpy.data, name) if b.get(TAG) == key]


def set_aside(key: str) -> list:
    """Rename the previous import's blocks out of the way; returns them (see :func:`restore_aside`)."""
    blocks = tagged_blocks(key)
    for b in blocks:
        b.name = b.name + _ASIDE
    return blocks


def restore_aside(blocks: list) -> None:
    """Give blocks renamed by :func:`set_aside` their names back (the new import failed)."""
    for b in blocks:
        if b.name.endswith(_ASIDE):
            b.name = b.name.removesuffix(_ASIDE)


def remove_blocks(blocks: list, scene) -> None:
    """Remove an import's datablocks, but never the user's data: the user's objects linked only
    into our collections move to the scene's collection, the user's objects parented to ours
    keep their place in the world, and a block that user data still uses (our material on the
    user's mesh) is kept (and no longer counts as ours)."""
    if not blocks:
        return
    ours = set(blocks)
    for coll in [b for b in blocks if isinstance(b, bpy.types.Collection)]:
        for obj in coll.objects:
            if obj not in ours and len(obj.users_collection) == 1:
                scene.collection.objects.link(obj)
        for child in coll.children:
            if child not in ours and child.users == 1:
                scene.collection.children.link(child)
    for obj in bpy.data.objects:
        if obj not in ours and obj.parent in ours:
            world = obj.matrix_world.copy()
            obj.parent = None
            obj.matrix_world = world
    users = bpy.data.user_map(subset=ours)
    foreign = {b for b in ours if any(u not in ours and type(u).__name__ not in _NOT_FOREIGN for u in users.get(b, ()))}
    for b in foreign:
        del b[TAG]
        b.name = b.name.removesuffix(_ASIDE)
    bpy.data.batch_remove([b for b in blocks if b not in foreign])
    log.info("previous import removed: %d datablocks (%d kept, used by your data)", len(ours) - len(foreign), len(foreign))


def _child(parent, name: str):
    coll = bpy.data.collections.new(f"{parent.name} {name}")
    parent.children.link(coll)
    return coll


def _set_time(scene, cap) -> None:
    fps = round(cap.fps)
    scene.render.fps = max(1, fps)
    scene.render.fps_base = max(1, fps) / cap.fps
    scene.frame_start, scene.frame_end = cap.frame_range


def _build_person(context, person, coll, options: BuildOptions, errors, trial: str = "capture") -> None:
    if person.markers is not None:
        markers.build_markers(person, coll, options.marker_radius, errors, options.reprojection_threshold_px)
    if person.model is not None:
        arm = armature.build_armature(context, person, coll)
        if options.bone_meshes:
            armature.build_bone_mesh(person, arm, coll, options.cache_dir / "meshes" if options.cache_dir else None,
                                     options.geometry_dirs)
        if options.animation_skeleton:
            character.build_for_import(context, person, coll, trial, rest=options.rest_pose, root_bone=options.root_bone)


def _reprojection(cap, root: Path, options: BuildOptions) -> dict:
    from openkin.skeletons import get_skeleton

    from ..core import reprojection

    pose_dirs = reprojection.find_pose_dirs(root, [c.name for c in cap.cameras])
    if not pose_dirs:
        return {}
    names = get_skeleton(options.pose_model).names
    out = {}
    for person in cap.people:
        if person.markers is not None:
            err = reprojection.person_errors(cap.cameras, pose_dirs, person.markers, person.marker_frames,
                                             person.marker_names, names, root=root, person=person.name)
            if err is not None:
                out[person.name] = err
    return out


def capture_key(files: capture_mod.CaptureFiles) -> str:
    """The name an import's datablocks are tagged with: the project folder, else the files."""
    if files.root is not None:
        return f"project:{Path(files.root).resolve()}"
    parts = [files.calibration] + [f for p in files.people for f in (p.trc, p.osim, p.mot)]
    return "files:" + "|".join(str(Path(f).resolve()) for f in parts if f is not None)


def opensim_log_dir(files: capture_mod.CaptureFiles, options: BuildOptions) -> Path | None:
    """Where OpenSim's own log goes during an import: ``PROJECT/openkin/logs``, else the cache."""
    if files.root is not None:
        return Path(files.root) / "openkin" / "logs"
    return options.cache_dir / "logs" if options.cache_dir else None


def import_files(context, files: capture_mod.CaptureFiles, options: BuildOptions, progress=None):
    """Read ``files`` then build them (replacing their previous import); returns (collection, capture)."""
    cap = capture_mod.load_capture(files, progress=progress, opensim_log_dir=opensim_log_dir(files, options))
    return build_capture(context, cap, options, files.root, progress, key=capture_key(files)), cap

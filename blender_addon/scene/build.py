"""Build a whole capture into the scene, all or nothing.

Files are read and checked first (:mod:`..core.capture`); then the scene is
built inside :class:`SceneTransaction`: if anything fails, every datablock
created since it began is removed and the scene settings it touched are put back,
so a failed import leaves the scene as it was.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from ..core import capture as capture_mod
from . import armature, cameras, markers

log = logging.getLogger(__name__)

_ID_COLLECTIONS = ("objects", "meshes", "cameras", "armatures", "materials", "images", "actions",
                   "collections", "curves", "movieclips")
_SCENE_SETTINGS = ("frame_start", "frame_end", "camera")
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
        return self

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


def build_capture(context, cap, options: BuildOptions, root: Path | None = None, progress=None):
    """Build ``cap`` (a loaded :class:`~..core.capture.Capture`); returns the new top collection."""
    videos = prepare_videos(cap, options, progress) if cap.videos else {}
    errors = _reprojection(cap, root, options) if options.reprojection and root else {}
    scene = context.scene
    with SceneTransaction(scene):
        top = bpy.data.collections.new(f"OpenKin {cap.name}")
        scene.collection.children.link(top)
        top["openkin_capture"] = cap.name
        _set_time(scene, cap)
        if cap.cameras:
            cams = _child(top, "Cameras")
            objs = [cameras.build_camera(c, cams, videos.get(c.name), 1, cap.video_offsets.get(c.name, 0))
                    for c in cap.cameras]   # scene frame 1 = video frame 0 (see core.capture)
            scene.camera = objs[0]
            cameras.sync_active_camera(scene)
        for person in cap.people:
            _build_person(context, person, _child(top, person.name), options, errors.get(person.name))
    return top


def _child(parent, name: str):
    coll = bpy.data.collections.new(f"{parent.name} {name}")
    parent.children.link(coll)
    return coll


def _set_time(scene, cap) -> None:
    fps = round(cap.fps)
    scene.render.fps = max(1, fps)
    scene.render.fps_base = max(1, fps) / cap.fps
    scene.frame_start, scene.frame_end = cap.frame_range


def _build_person(context, person, coll, options: BuildOptions, errors) -> None:
    if person.markers is not None:
        markers.build_markers(person, coll, options.marker_radius, errors, options.reprojection_threshold_px)
    if person.model is not None:
        arm = armature.build_armature(context, person, coll)
        if options.bone_meshes:
            armature.build_bone_mesh(person, arm, coll, options.cache_dir / "meshes" if options.cache_dir else None,
                                     options.geometry_dirs)


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


def import_files(context, files: capture_mod.CaptureFiles, options: BuildOptions, progress=None):
    """Read ``files`` then build them; returns (collection, capture)."""
    cap = capture_mod.load_capture(files, progress=progress)
    return build_capture(context, cap, options, files.root, progress), cap

"""Calibrated cameras: exact intrinsics, Z-up world pose, video backgrounds and image planes.

Per-camera render settings: Blender has one render size per scene, so each
camera stores its own (``openkin_resolution``, ``openkin_pixel_aspect``) and
:func:`sync_active_camera` (run from handlers on frame change, depsgraph update
and render) applies them whenever the scene's active camera is an OpenKin
camera. The same function shows only the active camera's image plane in renders.
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..core import axes

log = logging.getLogger(__name__)

PLANE_DEPTH = 12.0  # m: image planes sit this far in front of their camera (behind the subject)


def build_camera(cam, collection, video: Path | None, frame_start: int, frame_offset: int = 0):
    """One Blender camera from an ``openkin.formats.calibration.Camera``; returns the object.

    ``frame_offset``: the video frame shown at scene frame ``f`` is ``f - frame_start + frame_offset``
    (0-based), so synchronised cameras show the same instant."""
    p = axes.blender_camera_params(cam.matrix, cam.size)
    data = bpy.data.cameras.new(cam.name)
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = p.sensor_width
    data.lens = p.lens
    data.shift_x, data.shift_y = p.shift_x, p.shift_y
    data.clip_start, data.clip_end = 0.05, PLANE_DEPTH * 2
    data.display_size = 0.2
    obj = bpy.data.objects.new(cam.name, data)
    obj.matrix_world = Matrix(axes.camera_matrix_world(cam.rotation, cam.translation).tolist())
    obj["openkin_resolution"] = list(p.resolution)
    obj["openkin_pixel_aspect"] = list(p.pixel_aspect)
    obj["openkin_matrix"] = np.asarray(cam.matrix, float).ravel().tolist()
    obj["openkin_distortions"] = np.asarray(cam.distortions, float).ravel().tolist()
    obj["openkin_rotation"] = np.asarray(cam.rotation, float).ravel().tolist()
    obj["openkin_translation"] = np.asarray(cam.translation, float).ravel().tolist()
    collection.objects.link(obj)
    if video is not None:
        image = _movie(video, cam.name)
        _background(data, image, frame_start, frame_offset)
        _image_plane(obj, cam, image, collection, frame_start, frame_offset)
    return obj


def _movie(path: Path, name: str):
    image = bpy.data.images.load(str(path), check_existing=False)
    image.name = f"{name} video"
    image.source = "MOVIE"
    return image


def _frame_sync(image_user, image, frame_start: int, frame_offset: int) -> None:
    image_user.frame_start = frame_start
    image_user.frame_offset = frame_offset
    image_user.frame_duration = max(1, image.frame_duration)
    image_user.use_auto_refresh = True


def _background(data, image, frame_start: int, frame_offset: int) -> None:
    bg = data.background_images.new()
    bg.source = "IMAGE"
    bg.image = image
    bg.frame_method = "STRETCH"  # the undistorted video has the calibration's size: stretch == exact
    bg.alpha = 1.0
    _frame_sync(bg.image_user, image, frame_start, frame_offset)
    data.show_background_images = True


def _image_plane(cam_obj, cam, image, collection, frame_start: int, frame_offset: int):
    """A textured quad filling the camera's view exactly at :data:`PLANE_DEPTH` (for renders)."""
    corners = axes.image_plane_corners(cam.matrix, cam.size, PLANE_DEPTH)
    mesh = bpy.data.meshes.new(f"{cam.name} image plane")
    mesh.from_pydata(corners.tolist(), [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", [0, 0, 1, 0, 1, 1, 0, 1])
    mesh.materials.append(_plane_material(cam.name, image, frame_start, frame_offset))
    plane = bpy.data.objects.new(f"{cam.name} image plane", mesh)
    plane.parent = cam_obj
    plane.hide_select = True
    plane.hide_viewport = True   # the viewport shows the camera background; renders show the plane
    plane.hide_render = True     # shown only for the active camera (sync_active_camera)
    plane["openkin_plane_of"] = cam.name
    collection.objects.link(plane)
    return plane


def _plane_material(name: str, image, frame_start: int, frame_offset: int):
    mat = bpy.data.materials.new(f"{name} video")
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Closest"
    _frame_sync(tex.image_user, image, frame_start, frame_offset)
    emit = nodes.new("ShaderNodeEmission")
    out = nodes.new("ShaderNodeOutputMaterial")
    links.new(tex.outputs["Color"], emit.inputs["Color"])
    links.new(emit.outputs["Emission"], out.inputs["Surface"])
    nodes.active = tex
    return mat


def apply_camera_settings(scene, cam_obj) -> bool:
    """Set the scene's render size and pixel aspect from an OpenKin camera. False if not one."""
    res = cam_obj.get("openkin_resolution") if cam_obj is not None else None
    if res is None:
        return False
    r = scene.render
    ax, ay = cam_obj["openkin_pixel_aspect"]
    if (r.resolution_x, r.resolution_y, r.pixel_aspect_x, r.pixel_aspect_y) != (res[0], res[1], ax, ay):
        r.resolution_x, r.resolution_y = int(res[0]), int(res[1])
        r.pixel_aspect_x, r.pixel_aspect_y = float(ax), float(ay)
    return True


def sync_active_camera(scene) -> None:
    """Render size of the active camera; only its image plane is rendered."""
    cam = scene.camera
    if not apply_camera_settings(scene, cam):
        return
    for obj in scene.objects:
        owner = obj.get("openkin_plane_of")
        if owner is not None:
            hide = obj.parent is not cam
            if obj.hide_render != hide:
                obj.hide_render = hide

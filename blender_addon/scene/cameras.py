"""Calibrated cameras: exact intrinsics, Z-up world pose, video backgrounds and image planes.

Per-camera render settings: Blender has one render size per scene, so each
camera stores its own (``openkin_resolution``, ``openkin_pixel_aspect``) and
:func:`sync_active_camera` (run from handlers on frame change, depsgraph update
and render) applies them when the scene's active camera *becomes* an OpenKin
camera (a size the user then types in stays), and gives the user's own size back
when the active camera becomes a camera of the user's. The same function shows only
the active camera's image plane in renders.
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


def camera_data(cam):
    """A Blender camera datablock with the exact intrinsics of an engine ``Camera`` (focal,
    sensor fit and principal-point shift for its image size), and the parameters used
    (:class:`core.axes.BlenderCameraParams`: resolution, pixel aspect, ...)."""
    p = axes.blender_camera_params(cam.matrix, cam.size)
    data = bpy.data.cameras.new(cam.name)
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = p.sensor_width
    data.lens = p.lens
    data.shift_x, data.shift_y = p.shift_x, p.shift_y
    return data, p


def build_camera(cam, collection, video: Path | None, frame_start: int, frame_offset: int = 0):
    """One Blender camera from an ``openkin.formats.calibration.Camera``; returns the object.

    ``frame_offset``: the video frame shown at scene frame ``f`` is ``f - frame_start + frame_offset``
    (0-based), so synchronised cameras show the same instant."""
    data, p = camera_data(cam)
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
    obj["openkin_fisheye"] = bool(getattr(cam, "fisheye", False))
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
    mesh = image_quad(f"{cam.name} image plane", cam.matrix, cam.size, PLANE_DEPTH)
    mesh.materials.append(_plane_material(cam.name, image, frame_start, frame_offset))
    plane = bpy.data.objects.new(f"{cam.name} image plane", mesh)
    plane.parent = cam_obj
    plane.hide_select = True
    plane.hide_viewport = True   # the viewport shows the camera background; renders show the plane
    plane.hide_render = True     # shown only for the active camera (sync_active_camera)
    plane["openkin_plane_of"] = cam.name
    collection.objects.link(plane)
    return plane


def image_quad(name: str, matrix, size, depth: float):
    """A quad mesh covering a camera's image exactly at ``depth`` m, in its Blender camera axes, UV 0..1."""
    corners = axes.image_plane_corners(matrix, size, depth)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(corners.tolist(), [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", [0, 0, 1, 0, 1, 1, 0, 1])
    return mesh


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


STATE_KEY = "openkin_render_state"   # scene ID property: what sync_active_camera last applied


def _camera_settings(cam_obj) -> list | None:
    res = cam_obj.get("openkin_resolution") if cam_obj is not None else None
    if res is None:
        return None
    ax, ay = cam_obj["openkin_pixel_aspect"]
    return [float(res[0]), float(res[1]), float(ax), float(ay)]


def _render_settings(scene) -> list:
    r = scene.render
    return [float(r.resolution_x), float(r.resolution_y), float(r.pixel_aspect_x), float(r.pixel_aspect_y)]


def _same(a, b) -> bool:
    """Equal render settings (pixel aspects are stored as 32-bit floats)."""
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= 1e-5 * max(1.0, abs(float(y))) for x, y in zip(a, b))


def _set_render(scene, values) -> None:
    r = scene.render
    if not _same(_render_settings(scene), values):
        r.resolution_x, r.resolution_y = int(values[0]), int(values[1])
        r.pixel_aspect_x, r.pixel_aspect_y = float(values[2]), float(values[3])


def apply_camera_settings(scene, cam_obj) -> bool:
    """Set the scene's render size and pixel aspect from an OpenKin camera. False if not one."""
    values = _camera_settings(cam_obj)
    if values is None:
        return False
    _set_render(scene, values)
    return True


def _sync_render_size(scene, cam) -> None:
    """Apply ``cam``'s size when the active camera changed to it; keep the user's size
    (saved the first time an OpenKin camera took over) and give it back afterwards."""
    raw = scene.get(STATE_KEY)
    state = raw.to_dict() if hasattr(raw, "to_dict") else {}
    wanted = _camera_settings(cam)
    if wanted is None:   # a camera of the user's (or none): their own size back, once
        user = state.get("user")
        if user is not None and _same(state.get("applied", []), _render_settings(scene)):
            _set_render(scene, user)
        if state:
            scene.pop(STATE_KEY, None)
        return
    if state.get("camera") == cam.name and _same(state.get("applied", []), wanted):
        return            # same camera as last time: leave whatever size is set now
    if "user" not in state:
        state["user"] = _render_settings(scene)
    _set_render(scene, wanted)
    state["camera"], state["applied"] = cam.name, wanted
    scene[STATE_KEY] = state


def sync_active_camera(scene) -> None:
    """Render size of the active camera (see the module doc); only its image plane is rendered."""
    cam = scene.camera
    _sync_render_size(scene, cam)
    if _camera_settings(cam) is None:
        return
    for obj in scene.objects:
        owner = obj.get("openkin_plane_of")
        if owner is not None:
            hide = obj.parent is not cam
            if obj.hide_render != hide:
                obj.hide_render = hide

"""The engine's QA overlays (:mod:`openkin.overlays`: 2D detections and reprojected markers,
one RGBA PNG per camera and frame) laid over each camera's video.

Per camera: a second background image (the image sequence, alpha over the video) for the
viewport, and a textured plane just in front of the video's image plane for renders (the
Workbench engine shows the plane's image with its alpha). The sequence is numbered by
reference frame; scene frame ``f`` shows reference frame ``f - 1`` (as the TRC rows).
Shown per camera (``cam["openkin_overlay_shown"]``, :func:`set_shown`); the plane is rendered
only when its camera is the active one (:func:`sync_overlays`, run from the add-on's handlers).
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy
import numpy as np


log = logging.getLogger(__name__)

OVERLAY_OF = "openkin_overlay_of"      # object ID property: the overlay plane of this camera
SHOWN = "openkin_overlay_shown"        # camera object ID property: overlay on/off
DEPTH_FACTOR = 0.98                    # the plane sits just in front of the video's plane
TAG = "openkin_import"                 # :data:`.build.TAG`: the overlay goes with its camera's import


def _sequence(folder: Path, cam: str, lo: int, hi: int):
    first = folder / f"{cam}_{lo:06d}.png"
    image = bpy.data.images.load(str(first), check_existing=False)
    image.name = f"{cam} overlay"
    image.source = "SEQUENCE"
    image.alpha_mode = "STRAIGHT"
    return image


def _frame_sync(image_user, lo: int, hi: int) -> None:
    """Scene frame f → file of reference frame f - 1 (Blender: file = f - start + 1 + offset)."""
    image_user.frame_start = lo + 1
    image_user.frame_offset = lo - 1
    image_user.frame_duration = hi - lo + 1
    image_user.use_auto_refresh = True


def remove_overlay(cam_obj) -> None:
    """Remove the overlay of ``cam_obj`` (background entry, plane, its material and image)."""
    data = cam_obj.data
    for bg in [b for b in data.background_images if b.image is not None and b.image.get(OVERLAY_OF) == cam_obj.name]:
        data.background_images.remove(bg)
    for obj in [o for o in bpy.data.objects if o.get(OVERLAY_OF) == cam_obj.name]:
        mesh = obj.data
        mats = list(mesh.materials)
        bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(mesh)
        for m in mats:
            if m is not None and m.users == 0:
                bpy.data.materials.remove(m)
    for image in [i for i in bpy.data.images if i.get(OVERLAY_OF) == cam_obj.name and i.users == 0]:
        bpy.data.images.remove(image)


def attach_overlay(cam_obj, folder: Path, lo: int, hi: int, size: tuple[int, int]):
    """Lay ``folder``'s sequence (reference frames ``lo..hi``, drawn for an image of ``size``
    (W, H)) over ``cam_obj`` (an OpenKin camera); replaces its previous overlay. Returns the plane."""
    remove_overlay(cam_obj)
    image = _sequence(folder, cam_obj.name, lo, hi)
    image[OVERLAY_OF] = cam_obj.name
    bg = cam_obj.data.background_images.new()
    bg.source = "IMAGE"
    bg.image = image
    bg.frame_method = "STRETCH"
    bg.alpha = 1.0
    _frame_sync(bg.image_user, lo, hi)
    cam_obj.data.show_background_images = True
    plane = _plane(cam_obj, image, size, lo, hi)
    key = cam_obj.get(TAG)
    for block in (image, plane, plane.data, plane.data.materials[0]):
        if key is not None:
            block[TAG] = key
    if SHOWN not in cam_obj:
        cam_obj[SHOWN] = True
    set_shown(cam_obj, bool(cam_obj[SHOWN]))
    return plane


def _plane(cam_obj, image, size, lo: int, hi: int):
    from .cameras import PLANE_DEPTH, image_quad

    K = np.asarray(cam_obj["openkin_matrix"], float).reshape(3, 3)
    mesh = image_quad(f"{cam_obj.name} overlay", K, size, PLANE_DEPTH * DEPTH_FACTOR)
    mesh.materials.append(_material(cam_obj.name, image, lo, hi))
    plane = bpy.data.objects.new(f"{cam_obj.name} overlay", mesh)
    plane.parent = cam_obj
    plane.hide_select = True
    plane.hide_viewport = True     # the viewport shows the background image
    plane.hide_render = True       # sync_overlays shows it for the active camera
    plane[OVERLAY_OF] = cam_obj.name
    for coll in cam_obj.users_collection:
        coll.objects.link(plane)
    return plane


def _material(name: str, image, lo: int, hi: int):
    """Emission of the overlay's colour, transparent where its alpha is 0 (Workbench: the
    active image node with alpha; EEVEE/Cycles: the shader mix)."""
    mat = bpy.data.materials.new(f"{name} overlay")
    mat.surface_render_method = "BLENDED"
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Closest"
    _frame_sync(tex.image_user, lo, hi)
    emit, clear = nodes.new("ShaderNodeEmission"), nodes.new("ShaderNodeBsdfTransparent")
    mix, out = nodes.new("ShaderNodeMixShader"), nodes.new("ShaderNodeOutputMaterial")
    links.new(tex.outputs["Color"], emit.inputs["Color"])
    links.new(tex.outputs["Alpha"], mix.inputs["Fac"])
    links.new(clear.outputs[0], mix.inputs[1])
    links.new(emit.outputs[0], mix.inputs[2])
    links.new(mix.outputs[0], out.inputs["Surface"])
    nodes.active = tex
    return mat


def set_shown(cam_obj, shown: bool) -> None:
    """Overlay of ``cam_obj`` on or off (viewport background and renders)."""
    cam_obj[SHOWN] = bool(shown)
    for bg in cam_obj.data.background_images:
        if bg.image is not None and bg.image.get(OVERLAY_OF) == cam_obj.name:
            bg.show_background_image = bool(shown)
    sync_overlays(bpy.context.scene)


def sync_overlays(scene) -> None:
    """Render only the active camera's overlay plane, and only when that overlay is shown."""
    if scene is None:
        return
    cam = scene.camera
    for obj in scene.objects:
        owner = obj.get(OVERLAY_OF)
        if owner is None:
            continue
        hide = not (obj.parent is cam and cam is not None and bool(cam.get(SHOWN, True)))
        if obj.hide_render != hide:
            obj.hide_render = hide


def attach_project_overlays(scene, root: Path) -> list[str]:
    """Lay the overlays drawn for project ``root`` (``openkin/overlays``) over the scene's
    cameras of the same names; returns the cameras done."""
    from openkin.overlays import FOLDER, read_index

    index = read_index(root)
    if index is None:
        return []
    lo, hi = (int(v) for v in index["frames"])
    done = []
    for obj in [o for o in scene.objects if o.type == "CAMERA" and "openkin_resolution" in o]:
        entry = index["cameras"].get(obj.name)
        if entry is None:
            continue
        folder = Path(root) / FOLDER / entry["folder"]
        if not (folder / f"{obj.name}_{lo:06d}.png").is_file():
            log.warning("%s: overlay images missing in %s", obj.name, folder)
            continue
        attach_overlay(obj, folder, lo, hi, tuple(entry["size"]))
        done.append(obj.name)
    return done


def overlays_current(root: Path) -> bool:
    """True when the project's overlays exist and are newer than every result they show
    (2D detections, TRC and reprojection files)."""
    from openkin.overlays import FOLDER, INDEX

    index = Path(root) / FOLDER / INDEX
    if not index.is_file():
        return False
    sources = [p for folder in ("pose-3d", "pose-associated", "pose-sync", "pose") if (Path(root) / folder).is_dir()
               for p in (Path(root) / folder).iterdir()]
    return all(p.stat().st_mtime <= index.stat().st_mtime for p in sources)


def reload_overlays(scene) -> None:
    """Read the overlay images again from disk (after a partial redraw)."""
    for image in bpy.data.images:
        if image.get(OVERLAY_OF) is not None:
            image.reload()

"""Markers as animated spheres (one shared mesh), keys written in bulk."""
from __future__ import annotations

import bmesh
import bpy
import numpy as np

from . import anim

MARKER_COLOR = (0.1, 0.9, 0.2, 1.0)


def error_colors(errors_px: np.ndarray, threshold_px: float) -> np.ndarray:
    """Reprojection errors (...,) px → RGBA (..., 4): green at 0, yellow at threshold/2, red at ≥ threshold.
    NaN (no 2D observation) → grey."""
    e = np.clip(np.asarray(errors_px, float) / max(threshold_px, 1e-9), 0.0, 1.0)
    rgba = np.stack([np.clip(2 * e, 0, 1), np.clip(2 - 2 * e, 0, 1), np.full_like(e, 0.1), np.ones_like(e)], axis=-1)
    rgba[np.isnan(errors_px)] = (0.5, 0.5, 0.5, 1.0)
    return rgba


def _sphere(name: str, radius: float):
    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_icosphere(bm, subdivisions=2, radius=radius)
    bm.to_mesh(mesh)
    bm.free()
    mesh.shade_smooth()
    return mesh


def _material(name: str, color) -> object:
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = tuple(color)
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = tuple(color)
    return mat


def build_markers(person, collection, radius: float = 0.02, errors: np.ndarray | None = None,
                  threshold_px: float = 15.0) -> list:
    """Animated marker objects of one person. ``errors``: (F, M) px reprojection errors or None."""
    mesh = _sphere(f"{person.name} marker", radius)
    action = anim.new_action(f"{person.name} markers")
    frames = person.marker_frames
    objects = []
    mean_err = np.full(len(person.marker_names), np.nan)
    if errors is not None:
        with np.errstate(all="ignore"):
            counts = np.isfinite(errors).sum(axis=0)
            mean_err = np.where(counts > 0, np.nansum(errors, axis=0) / np.maximum(counts, 1), np.nan)
    for m, name in enumerate(person.marker_names):
        obj = bpy.data.objects.new(f"{person.name} {name}", mesh)
        obj["openkin_marker"] = name
        obj["openkin_person"] = person.name
        color = MARKER_COLOR if errors is None else tuple(error_colors(mean_err[m], threshold_px))
        obj.color = color
        if errors is not None:
            obj["openkin_mean_reprojection_px"] = float(mean_err[m]) if np.isfinite(mean_err[m]) else -1.0
        collection.objects.link(obj)
        _set_object_material(obj, _material(f"{person.name} {name}", color))
        bag = anim.channelbag_for(action, obj, name)
        anim.write_channels(bag, "location", frames, person.markers[:, m], group=name)
        if errors is not None:
            anim.write_channels(bag, "color", frames, error_colors(errors[:, m], threshold_px), group=name)
        objects.append(obj)
    return objects


def _set_object_material(obj, mat) -> None:
    """Per-object material on a shared mesh (material slot linked to the object)."""
    if not obj.data.materials:
        obj.data.materials.append(None)
    obj.material_slots[0].link = "OBJECT"
    obj.material_slots[0].material = mat

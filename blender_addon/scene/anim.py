"""Bulk animation writing on Blender 5 slotted actions (action → slot → channelbag → fcurves).

Keys are written with ``keyframe_points.add(n)`` + ``foreach_set`` (as glTF-Blender-IO
does), never ``keyframe_insert``: one call per fcurve instead of one per key.
"""
from __future__ import annotations

import numpy as np

LINEAR = 1  # BEZT_IPO_LIN: mocap samples, no overshoot between keys


def new_action(name: str):
    """An empty layered action with one layer and one keyframe strip."""
    import bpy

    action = bpy.data.actions.new(name)
    layer = action.layers.new("Layer")
    layer.strips.new(type="KEYFRAME")
    return action


def channelbag_for(action, id_block, slot_name: str | None = None):
    """Give ``id_block`` its own slot in ``action``, assign both, return the slot's channelbag."""
    slot = action.slots.new(id_type=id_block.id_type, name=slot_name or id_block.name)
    ad = id_block.animation_data or id_block.animation_data_create()
    ad.action = action
    ad.action_slot = slot
    return action.layers[0].strips[0].channelbag(slot, ensure=True)


def write_channels(channelbag, data_path: str, frames: np.ndarray, values: np.ndarray,
                   group: str | None = None) -> list:
    """One fcurve per column of ``values``.

    ``frames``: (F,) scene frames; ``values``: (F, C). Rows with a NaN in a column are
    skipped for that column (gaps are bridged by interpolation). Returns the fcurves.
    """
    values = np.asarray(values, dtype=float).reshape(len(frames), -1)
    frames = np.asarray(frames, dtype=float)
    curves = []
    for index in range(values.shape[1]):
        ok = np.isfinite(values[:, index])
        n = int(ok.sum())
        fc = channelbag.fcurves.new(data_path, index=index, group_name=group or "")
        if n:
            fc.keyframe_points.add(n)
            co = np.empty((n, 2), np.float32)
            co[:, 0] = frames[ok]
            co[:, 1] = values[ok, index]
            fc.keyframe_points.foreach_set("co", co.ravel())
            fc.keyframe_points.foreach_set("interpolation", np.full(n, LINEAR, np.int32))
            fc.update()
        curves.append(fc)
    return curves

"""OpenKin for Blender: run the markerless motion-capture pipeline from a panel and bring
the capture (exact cameras with their videos, markers, the OpenSim skeleton) into the scene.

Layout: ``core/`` is bpy-free (axes, rig maths, meshes, capture reading, OpenSim);
``scene/`` builds Blender data; ``runner.py`` is the child-process entry point;
``jobs.py`` starts and polls it; ``operators.py``, ``panel.py``, ``props.py`` are the UI.
Heavy modules (OpenSim, OpenCV, the engine's stages) load only when used.
"""
from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import calib_panel, character_panel, operators, panel, plan_panel, props, qa_panel, takes_panel

_MODULES = (props, operators, panel, plan_panel, calib_panel, character_panel, qa_panel, takes_panel)


@persistent
def _on_scene_change(scene, _depsgraph=None):
    from .scene.cameras import sync_active_camera
    from .scene.overlays import sync_overlays

    sync_active_camera(scene)
    sync_overlays(scene)


@persistent
def _on_frame_change(scene, _depsgraph=None):
    from .scene.qa import update_rays

    update_rays(scene)


_HANDLERS = (
    (bpy.app.handlers.depsgraph_update_post, _on_scene_change),
    (bpy.app.handlers.frame_change_pre, _on_scene_change),
    (bpy.app.handlers.render_pre, _on_scene_change),
    (bpy.app.handlers.frame_change_post, _on_frame_change),
)


def register():
    for module in _MODULES:
        module.register()
    for handlers, fn in _HANDLERS:
        if fn not in handlers:
            handlers.append(fn)


def unregister():
    for handlers, fn in _HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
    for module in reversed(_MODULES):
        module.unregister()

"""A still of one camera: its video frame with the markers and bone meshes over it (Workbench)."""
from __future__ import annotations

from pathlib import Path

import bpy

from .cameras import sync_active_camera


def render_camera(scene, camera_obj, frame: int, path: str | Path, percentage: int = 50,
                  lighting: str = "STUDIO") -> Path:
    """Render ``camera_obj`` at ``frame`` to a PNG with the Workbench engine (fast, headless).

    Studio lighting shades the bone meshes (the video plane is dimmed a little);
    ``lighting="FLAT"`` shows the video at its true colours but the bones as flat
    silhouettes. Markers keep their (reprojection) colours.
    """
    scene.camera = camera_obj
    scene.frame_set(frame)
    sync_active_camera(scene)
    render = scene.render
    render.engine = "BLENDER_WORKBENCH"
    render.resolution_percentage = percentage
    render.film_transparent = False
    render.image_settings.file_format = "PNG"
    shading = scene.display.shading
    shading.light = lighting
    shading.color_type = "TEXTURE"
    scene.view_settings.view_transform = "Standard"
    render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return Path(path)

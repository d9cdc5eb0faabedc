"""QA drawings: rays from a marker to every camera, kept up to date on frame change."""
from __future__ import annotations

import bpy
import numpy as np

RAYS_KEY = "openkin_rays_of"


def _cameras(scene) -> list:
    return [o for o in scene.objects if o.type == "CAMERA" and "openkin_resolution" in o]


def build_rays(scene, marker_obj):
    """A mesh with one edge per camera, from the marker to the camera centre (through its image)."""
    cams = _cameras(scene)
    if not cams:
        return None
    name = f"Rays {marker_obj.name}"
    old = bpy.data.objects.get(name)
    if old is not None:
        bpy.data.objects.remove(old)
    mesh = bpy.data.meshes.new(name)
    n = len(cams)
    mesh.from_pydata([(0.0, 0.0, 0.0)] * (2 * n), [(2 * i, 2 * i + 1) for i in range(n)], [])
    obj = bpy.data.objects.new(name, mesh)
    obj[RAYS_KEY] = marker_obj.name
    obj["openkin_cameras"] = [c.name for c in cams]
    obj.display_type = "WIRE"
    obj.show_in_front = True
    for coll in marker_obj.users_collection:
        coll.objects.link(obj)
        break
    update_rays(scene)
    return obj


def update_rays(scene) -> None:
    """Move every ray mesh's vertices to its marker and cameras at the current frame."""
    for obj in scene.objects:
        marker = bpy.data.objects.get(obj.get(RAYS_KEY, "")) if RAYS_KEY in obj else None
        if marker is None:
            continue
        cams = [bpy.data.objects.get(n) for n in obj["openkin_cameras"]]
        start = np.array(marker.matrix_world.translation)
        co = np.zeros((len(cams), 2, 3))
        co[:, 0] = start
        for i, cam in enumerate(cams):
            co[i, 1] = cam.matrix_world.translation if cam is not None else start
        obj.data.vertices.foreach_set("co", co.astype(np.float32).ravel())
        obj.data.update()

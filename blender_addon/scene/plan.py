"""The Plan view: virtual cameras, a coloured floor heatmap of coverage or expected error,
each camera's frustum, a stand-in actor and a legend, all in the "OpenKin Plan" collection.

The numbers come from the engine's planner (:mod:`openkin.plan`): cameras are read back
from the Blender objects (pose from ``matrix_world``, intrinsics from the lens, sensor,
shift and the camera's own resolution), evaluated on the volume's grid, and each floor
cell is coloured by the fewest cameras seeing a point of its column (coverage) or by the
largest expected error over the height (error; grey where fewer than two cameras see).
Plan cameras carry ``openkin_plan_size``; cameras imported with a capture
(``openkin_resolution``) take part too, so the same view shows the actual calibration.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..core import axes
from .cameras import camera_data

log = logging.getLogger(__name__)

COLLECTION = "OpenKin Plan"
HEATMAP = "Plan Heatmap"
LEGEND = "Plan Legend"
ACTOR = "Plan Actor"
COLOR_ATTR = "plan_color"
FRUSTUM_DEPTH = 1.2        # m: how far the drawn frustum reaches
GREY = (0.35, 0.35, 0.35, 1.0)
COVERAGE_COLORS = np.array([(0.80, 0.10, 0.10, 1), (0.95, 0.55, 0.15, 1), (0.95, 0.85, 0.20, 1),
                            (0.45, 0.80, 0.30, 1), (0.10, 0.60, 0.35, 1)])   # 0, 1, 2, 3, 4+ cameras
CAMERA_COLORS = np.array([(0.2, 0.6, 1.0, 1), (1.0, 0.4, 0.8, 1), (0.3, 1.0, 0.9, 1), (1.0, 1.0, 1.0, 1),
                          (0.7, 0.5, 1.0, 1), (1.0, 0.7, 0.3, 1), (0.6, 1.0, 0.4, 1), (0.9, 0.9, 0.5, 1)])


# ---------------------------------------------------------------- colours (numpy)
def coverage_colors(counts: np.ndarray) -> np.ndarray:
    """(M,) cameras seeing → (M, 4) RGBA: red 0, orange 1, yellow 2, light green 3, green 4+."""
    return COVERAGE_COLORS[np.clip(np.asarray(counts, int), 0, len(COVERAGE_COLORS) - 1)]


def error_colors(err_mm: np.ndarray, vmax: float) -> np.ndarray:
    """(M,) expected error → (M, 4): green (0) → yellow → red (≥ vmax); grey where NaN."""
    t = np.clip(np.nan_to_num(err_mm / max(vmax, 1e-9), nan=0.0), 0.0, 1.0)
    rgb = np.stack([np.clip(2 * t, 0, 1), np.clip(2 * (1 - t), 0, 1) * 0.85, 0.15 * np.ones_like(t)], 1)
    out = np.concatenate([rgb, np.ones((len(t), 1))], 1)
    out[~np.isfinite(err_mm)] = GREY
    return out


# ---------------------------------------------------------------- cameras
def _collection(scene):
    coll = bpy.data.collections.get(COLLECTION)
    if coll is None:
        coll = bpy.data.collections.new(COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    return coll


def plan_cameras(scene) -> list:
    """Camera objects taking part: plan cameras and cameras imported with a capture, by name."""
    objs = [o for o in scene.objects if o.type == "CAMERA"
            and ("openkin_plan_size" in o or "openkin_resolution" in o)]
    return sorted(objs, key=lambda o: o.name)


def add_camera(scene, name: str, matrix: np.ndarray, size, position, forward) -> object:
    """A plan camera object: intrinsics ``matrix`` (3, 3), ``size`` (W, H), at ``position``
    (3,) looking along ``forward`` (3,) with the image level."""
    from openkin.plan.layout import make_camera

    cam = make_camera(name, position, forward, np.asarray(matrix, float), np.asarray(size, float))
    return camera_object(scene, cam)


def camera_object(scene, cam) -> object:
    """A plan camera object from an engine ``Camera`` (exact K, pose)."""
    data, p = camera_data(cam)
    data.display_size = 0.3
    obj = bpy.data.objects.new(cam.name, data)
    obj.matrix_world = Matrix(axes.camera_matrix_world(cam.rotation, cam.translation).tolist())
    obj["openkin_plan_size"] = [int(cam.size[0]), int(cam.size[1])]
    obj["openkin_plan_pixel_aspect"] = list(p.pixel_aspect)
    if np.any(cam.distortions != 0):
        obj["openkin_plan_distortions"] = np.asarray(cam.distortions, float).tolist()
    _collection(scene).objects.link(obj)
    return obj


def camera_from_object(obj):
    """The engine ``Camera`` an object stands for (pinhole from the Blender lens; a plan
    camera's stored distortion kept)."""
    from openkin.formats.calibration import Camera

    w, h = (obj.get("openkin_plan_size") or obj.get("openkin_resolution"))[:2]
    data = obj.data
    if data.sensor_fit == "VERTICAL":
        unit, f = h, data.lens / data.sensor_height * h
    else:                                    # HORIZONTAL: the width; AUTO: the larger side
        unit = w if data.sensor_fit == "HORIZONTAL" else max(w, h)
        f = data.lens / data.sensor_width * unit
    ax, ay = obj.get("openkin_plan_pixel_aspect") or obj.get("openkin_pixel_aspect") or (1.0, 1.0)
    ycor = ay / ax                           # fy = fx / ycor
    cx = w / 2 - data.shift_x * unit - 0.5   # inverse of core.axes.blender_camera_params
    cy = h / 2 + data.shift_y * unit / ycor - 0.5
    K = np.array([[f, 0, cx], [0, f / ycor, cy], [0, 0, 1.0]])
    m = np.array(obj.matrix_world)
    rot = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)
    R = (rot @ axes.CV_TO_BL_CAM).T
    dist = np.asarray(obj.get("openkin_plan_distortions", obj.get("openkin_distortions", [0, 0, 0, 0])), float)
    return Camera(name=obj.name, size=[w, h], matrix=K, distortions=dist, rotation=_rodrigues(R),
                  translation=-R @ m[:3, 3])


def _rodrigues(R: np.ndarray) -> np.ndarray:
    from openkin.geometry import rotation_vector

    return rotation_vector(R)


def import_cameras(scene, path: str | Path) -> tuple[list, dict | None]:
    """Plan cameras from a calibration or layout file; returns (objects, the layout's volume table)."""
    from openkin.plan.layout import load_setup

    setup = load_setup(path)
    for cam in setup.cameras:
        old = bpy.data.objects.get(cam.name)
        if old is not None and ("openkin_plan_size" in old):
            bpy.data.objects.remove(old)
    return [camera_object(scene, c) for c in setup.cameras], setup.volume


# ---------------------------------------------------------------- evaluation
def evaluate_scene(scene, settings) -> dict:
    """Run the planner on the scene's cameras. ``settings``: the Plan property group."""
    from openkin.plan.kernel import PlanSettings, evaluate
    from openkin.plan.volume import box_volume, default_volume, make_grid

    objs = plan_cameras(scene)
    cams = [camera_from_object(o) for o in objs]
    if not cams:
        return {"cameras": [], "error": "no cameras: add one from a preset or import a calibration"}
    if settings.auto_volume:
        vol = default_volume(np.stack([c.center for c in cams]), np.stack([c.R[2] for c in cams]), settings.height)
        settings.x0, settings.y0, settings.x1, settings.y1 = vol.bounds
    else:
        vol = box_volume(settings.x0, settings.y0, settings.x1, settings.y1, settings.height)
    grid = make_grid(vol, settings.spacing)
    ps = PlanSettings(noise_px=settings.noise_px, dropout=settings.dropout)
    res = evaluate(cams, grid.points, ps)
    return {"cameras": cams, "objects": objs, "volume": vol, "grid": grid, "result": res}


def column_values(grid, result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per floor column inside the volume: (M, 2) xy, (M,) fewest cameras over the height,
    (M,) worst expected error over the height (NaN where any point has < 2 cameras)."""
    count = grid.to_cube(result.cameras_seeing.astype(float))
    err = grid.to_cube(np.where(result.cameras_seeing >= 2, result.expected_error_mm, np.nan))
    ix, iy = np.nonzero(grid.columns)
    fewest = np.nanmin(count[ix, iy], axis=1)
    with np.errstate(invalid="ignore"):
        col_err = np.where(fewest >= 2, np.nanmax(np.where(np.isnan(err[ix, iy]), -np.inf, err[ix, iy]), axis=1),
                           np.nan)
    col_err[~np.isfinite(col_err)] = np.nan
    return np.stack([grid.xs[ix], grid.ys[iy]], 1), fewest, col_err


def summary(ev: dict) -> list[str]:
    """Short lines for the panel and the legend."""
    if ev.get("error"):
        return [ev["error"]]
    res = ev["result"]
    ok = res.cameras_seeing >= 2
    err = res.expected_error_mm[ok & np.isfinite(res.expected_error_mm)]
    lines = [f"{len(ev['cameras'])} cameras, {len(res.cameras_seeing)} points",
             f"seen by ≥2: {100 * ok.mean():.0f}%   ≥3: {100 * (res.cameras_seeing >= 3).mean():.0f}%"]
    if err.size:
        lines.append(f"error median {np.median(err):.0f} mm, 95% {np.percentile(err, 95):.0f} mm")
    blind = [c.name for c, s in zip(ev["cameras"], res.seen) if not s.any()]
    if blind:
        lines.append(f"sees nothing of the volume: {', '.join(blind)}")
    return lines


# ---------------------------------------------------------------- scene objects
def _mesh_object(scene, name: str):
    obj = bpy.data.objects.get(name)
    if obj is None:
        obj = bpy.data.objects.new(name, bpy.data.meshes.new(name))
        _collection(scene).objects.link(obj)
    return obj


def _set_mesh(mesh, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray | None) -> None:
    """Replace ``mesh`` geometry: verts (V, 3), faces (F, n) vertex indices, colors (V, 4) or None."""
    mesh.clear_geometry()
    n = faces.shape[1] if len(faces) else 4
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", np.asarray(verts, np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", np.asarray(faces, np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, n, dtype=np.int32))
    mesh.update()
    if colors is not None:
        attr = mesh.color_attributes.get(COLOR_ATTR) or mesh.color_attributes.new(COLOR_ATTR, "FLOAT_COLOR", "POINT")
        attr.data.foreach_set("color", np.asarray(colors, np.float32).ravel())
        mesh.color_attributes.active_color = attr
        mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index


def update_heatmap(scene, ev: dict, mode: str, vmax: float | None = None) -> float:
    """Floor cells (quads at z = 0.005) coloured by coverage or error; returns the error scale."""
    xy, fewest, err = column_values(ev["grid"], ev["result"])
    d = ev["grid"].xs[1] - ev["grid"].xs[0] if len(ev["grid"].xs) > 1 else 0.25
    finite = err[np.isfinite(err)]
    vmax = vmax or (float(np.ceil(np.percentile(finite, 95) / 5) * 5) if finite.size else 50.0)
    colors = coverage_colors(fewest) if mode == "COVERAGE" else error_colors(err, vmax)
    h = 0.48 * d
    corners = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    verts = np.concatenate([(xy[:, None, :] + corners[None]).reshape(-1, 2), np.full((4 * len(xy), 1), 0.005)], 1)
    faces = np.arange(4 * len(xy)).reshape(-1, 4)
    _set_mesh(_mesh_object(scene, HEATMAP).data, verts, faces, np.repeat(colors, 4, axis=0))
    return vmax


def frustum_geometry(cam, depth: float = FRUSTUM_DEPTH) -> np.ndarray:
    """(5, 3) world points: the camera centre and the image corners at ``depth`` m."""
    w, h = cam.size
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    rays = np.linalg.solve(cam.matrix, np.concatenate([corners, np.ones((4, 1))], 1).T).T   # (4, 3) z = 1
    pts_cam = rays * depth
    return np.vstack([cam.center, (pts_cam - cam.translation) @ cam.R])


def update_frustums(scene, ev: dict) -> None:
    """One wireframe pyramid per camera (apex at the camera), coloured per camera."""
    names = set()
    for i, cam in enumerate(ev["cameras"]):
        name = f"Plan Frustum {cam.name}"
        names.add(name)
        obj = _mesh_object(scene, name)
        pts = frustum_geometry(cam)
        faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
        color = np.repeat(CAMERA_COLORS[i % len(CAMERA_COLORS)][None], len(pts), 0)
        _set_mesh(obj.data, pts, faces, color)
        if "wire" not in obj.modifiers:
            mod = obj.modifiers.new("wire", "WIREFRAME")
            mod.thickness = 0.02
            mod.use_replace = True
        label = f"Plan Label {cam.name}"
        names.add(label)
        _text(scene, label, cam.name, (cam.center[0] - 0.2, cam.center[1] + 0.15, cam.center[2] + 0.1), 0.25)
    for obj in [o for o in bpy.data.objects if o.name.startswith(("Plan Frustum ", "Plan Label ")) and o.name not in names]:
        bpy.data.objects.remove(obj)


def _text(scene, name: str, body: str, location, size: float):
    """A flat text object (on the XY plane, readable from above)."""
    obj = bpy.data.objects.get(name)
    if obj is None:
        obj = bpy.data.objects.new(name, bpy.data.curves.new(name, "FONT"))
        _collection(scene).objects.link(obj)
    obj.data.body = body
    obj.data.size = size
    obj.location = location
    return obj


def update_legend(scene, ev: dict, mode: str, vmax: float) -> None:
    """Below the volume: colour swatches with their values, what they mean, the summary."""
    x0, y0, x1, y1 = ev["volume"].bounds
    if mode == "COVERAGE":
        head = "Floor: fewest cameras seeing the column (0 to 2 m)"
        colors, labels = COVERAGE_COLORS, ["0", "1", "2", "3", "4+"]
    else:
        head = "Floor: worst expected 3D error over the height (grey: < 2 cameras)"
        values = np.linspace(0, vmax, 6)
        colors, labels = error_colors(values, vmax), [f"{v:.0f}" for v in values[:-1]] + [f"{vmax:.0f}+ mm"]
    top = y0 - 0.35
    _text(scene, LEGEND, head, (x0, top, 0.01), 0.2)
    side = 0.3
    quads, cols = [], []
    for i, c in enumerate(colors):
        qx = x0 + i * (side + 0.25)
        quads.append([[qx, top - 0.55, 0.01], [qx + side, top - 0.55, 0.01], [qx + side, top - 0.25, 0.01],
                      [qx, top - 0.25, 0.01]])
        cols += [c] * 4
        _text(scene, f"{LEGEND} {i}", labels[i], (qx + side + 0.03, top - 0.5, 0.01), 0.16)
    for j in range(len(colors), 8):
        old = bpy.data.objects.get(f"{LEGEND} {j}")
        if old is not None:
            bpy.data.objects.remove(old)
    verts = np.array(quads).reshape(-1, 3)
    _set_mesh(_mesh_object(scene, f"{LEGEND} swatches").data, verts, np.arange(len(verts)).reshape(-1, 4),
              np.array(cols))
    _text(scene, f"{LEGEND} summary", "\n".join(summary(ev)), (x0, top - 0.85, 0.01), 0.2)


def update_plan(scene, settings) -> dict:
    """Evaluate and redraw heatmap, frustums and legend; store the summary on ``settings``."""
    ev = evaluate_scene(scene, settings)
    settings.summary = "\n".join(summary(ev))
    if ev.get("error"):
        return ev
    vmax = update_heatmap(scene, ev, settings.display)
    update_frustums(scene, ev)
    update_legend(scene, ev, settings.display, vmax)
    return ev


def build_actor(scene, centre=(0.0, 0.0), height: float = 1.75, facing_deg: float = 90.0):
    """The stand-in actor: capsules (cylinder + end spheres) in one mesh, skin-coloured."""
    import bmesh

    from openkin.plan.actor import capsules

    bm = bmesh.new()
    for x0, y0, z0, x1, y1, z1, r in capsules(centre, height, facing_deg):
        a, b = np.array([x0, y0, z0]), np.array([x1, y1, z1])
        axis = b - a
        length = float(np.linalg.norm(axis))
        rot = _align_z(axis / max(length, 1e-9))
        mid = Matrix.Translation(((a + b) / 2).tolist()) @ rot
        if length > 1e-6:
            bmesh.ops.create_cone(bm, cap_ends=False, segments=16, radius1=r, radius2=r, depth=length, matrix=mid)
        for p in (a, b):
            bmesh.ops.create_uvsphere(bm, u_segments=16, v_segments=8, radius=r, matrix=Matrix.Translation(p.tolist()))
    obj = _mesh_object(scene, ACTOR)
    bm.to_mesh(obj.data)
    bm.free()
    mesh = obj.data
    attr = mesh.color_attributes.get(COLOR_ATTR) or mesh.color_attributes.new(COLOR_ATTR, "FLOAT_COLOR", "POINT")
    normals = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("normal", normals)
    light = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    shade = 0.35 + 0.65 * np.clip(normals.reshape(-1, 3) @ light, 0, 1)    # Lambert, baked: FLAT renders show form
    rgb = np.array([0.85, 0.62, 0.48])[None] * shade[:, None]
    attr.data.foreach_set("color", np.concatenate([rgb, np.ones((len(rgb), 1))], 1).astype(np.float32).ravel())
    mesh.color_attributes.active_color = attr
    for p in mesh.polygons:
        p.use_smooth = True
    return obj


def _align_z(direction: np.ndarray) -> Matrix:
    """4×4 rotation taking +Z to ``direction`` (3,) unit."""
    from mathutils import Vector

    return Vector((0, 0, 1)).rotation_difference(Vector(direction.tolist())).to_matrix().to_4x4()


# ---------------------------------------------------------------- render
def render_plan_view(scene, ev: dict, path: str | Path, size=(1280, 960)) -> Path:
    """A still of the Plan view from above and behind the volume (Workbench, headless)."""
    x0, y0, x1, y1 = ev["volume"].bounds
    pts = np.vstack([np.stack([c.center for c in ev["cameras"]]), [[x0, y0, 0], [x1, y1, 0]]])
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2 - 0.6, 0.0])
    span = float(np.ptp(pts[:, :2], axis=0).max())
    eye = centre + np.array([0.0, -0.75 * span, 1.25 * span])
    name = "Plan View"
    obj = bpy.data.objects.get(name)
    if obj is None:
        obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        _collection(scene).objects.link(obj)
    forward = centre - eye
    obj.matrix_world = Matrix(_look_matrix(eye, forward).tolist())
    obj.data.lens = 30
    obj.data.clip_end = 200
    scene.camera = obj
    r = scene.render
    r.engine = "BLENDER_WORKBENCH"
    r.resolution_x, r.resolution_y = size
    r.resolution_percentage = 100
    r.image_settings.file_format = "PNG"
    shading = scene.display.shading
    shading.light = "FLAT"                    # true heatmap colours (the actor carries baked shading)
    shading.color_type = "VERTEX"        # the active colour attribute
    shading.show_object_outline = False
    if scene.world is None:
        scene.world = bpy.data.worlds.new("Plan World")
    scene.world.color = (0.015, 0.015, 0.02)
    scene.view_settings.view_transform = "Standard"
    r.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return Path(path)


def _look_matrix(eye: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Blender camera matrix_world at ``eye`` looking along ``forward`` (image level)."""
    f = forward / np.linalg.norm(forward)
    right = np.cross(f, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, -f, eye
    return m


def ring_position(settings, index: int, n_total: int, radius_factor: float = 1.4, height: float = 1.6):
    """Where the ``index``-th added camera goes: a ring around the volume, aimed at its centre."""
    cx, cy = (settings.x0 + settings.x1) / 2, (settings.y0 + settings.y1) / 2
    r = radius_factor * 0.5 * math.hypot(settings.x1 - settings.x0, settings.y1 - settings.y0)
    a = -math.pi / 2 + 2 * math.pi * index / max(n_total, 1)
    pos = np.array([cx + r * math.cos(a), cy + r * math.sin(a), height])
    return pos, np.array([cx, cy, 1.0]) - pos

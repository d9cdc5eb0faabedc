"""The Plan view in Blender: cameras from the demo's calibration round-trip exactly, the floor
heatmap shows what the engine's planner computes, a moved camera updates it through the
throttled depsgraph handler, and a render of the view is written to demo/output/plan_view.png."""
import time

import bpy
import numpy as np

from addon_helpers import ROOT, addon  # noqa: F401  (fixtures)

DEMO_CALIB = "Demo_SinglePerson/calibration/Calib.qca.txt"


def _demo_cameras():
    from openkin.assets import asset_path
    from openkin.formats.calib_converters import convert_calibration

    return asset_path(DEMO_CALIB), convert_calibration(asset_path(DEMO_CALIB), "qualisys")


def _heatmap_colors():
    from blender_addon.scene.plan import COLOR_ATTR, HEATMAP

    mesh = bpy.data.objects[HEATMAP].data
    col = np.empty(len(mesh.vertices) * 4, np.float32)
    mesh.color_attributes[COLOR_ATTR].data.foreach_get("color", col)
    return col.reshape(-1, 4)[::4]                   # one colour per floor cell (4 corners each)


def test_plan_panel_registers_and_live_handler_toggles(addon):
    assert hasattr(bpy.types, "OPENKIN_PT_plan") and hasattr(bpy.types, "OPENKIN_OT_plan_add_camera")
    s = bpy.context.scene.openkin_plan
    n = len(bpy.app.handlers.depsgraph_update_post)
    s.live = True
    assert len(bpy.app.handlers.depsgraph_update_post) == n + 1
    s.live = False
    assert len(bpy.app.handlers.depsgraph_update_post) == n


def test_imported_cameras_round_trip_exactly(addon):
    from blender_addon.scene.plan import camera_from_object, import_cameras

    path, truth = _demo_cameras()
    objs, _ = import_cameras(bpy.context.scene, path)
    assert [o.name for o in objs] == [c.name for c in truth]
    for obj, cam in zip(objs, truth):
        back = camera_from_object(obj)
        assert np.allclose(back.matrix, cam.matrix, atol=1e-6 * cam.matrix[0, 0])
        assert np.allclose(back.R, cam.R, atol=1e-6)
        assert np.allclose(back.translation, cam.translation, atol=1e-5)
        assert np.allclose(back.size, cam.size)


def test_heatmap_is_the_engine_result_and_follows_a_moved_camera(addon):
    from openkin.plan import evaluate, make_grid, default_volume
    from blender_addon import plan_panel
    from blender_addon.scene.plan import column_values, coverage_colors, import_cameras

    scene = bpy.context.scene
    path, truth = _demo_cameras()
    import_cameras(scene, path)
    s = scene.openkin_plan
    s.spacing, s.dropout = 0.25, 0.1
    t0 = time.perf_counter()
    assert bpy.ops.openkin.plan_update() == {"FINISHED"}
    seconds = time.perf_counter() - t0
    print(f"\nPlan update (4 cameras, {s.spacing} m grid, heatmap + frustums + legend): {seconds * 1000:.0f} ms")
    assert seconds < 0.5
    # the same numbers straight from the engine on the file's cameras
    vol = default_volume(np.stack([c.center for c in truth]), np.stack([c.R[2] for c in truth]))
    grid = make_grid(vol, 0.25)
    _, fewest, _ = column_values(grid, evaluate(truth, grid.points))
    assert np.allclose(_heatmap_colors(), coverage_colors(fewest), atol=1e-6)
    assert "seen by ≥2" in s.summary and len([o for o in scene.objects if o.name.startswith("Plan Frustum")]) == 4
    # live: turning cam03 away triggers one throttled update; its area loses coverage
    before = _heatmap_colors().copy()
    s.live, s.auto_volume = True, False
    plan_panel._PENDING["timer"] = False
    cam = scene.objects["cam03"]
    cam.rotation_euler.z += np.pi
    bpy.context.view_layer.update()                  # fires depsgraph_update_post
    assert plan_panel._PENDING["timer"] and bpy.app.timers.is_registered(plan_panel._timer)
    bpy.app.timers.unregister(plan_panel._timer)
    plan_panel._timer()                              # what the timer does when it fires
    after = _heatmap_colors()
    assert not np.allclose(before, after)
    s.live = False
    assert "cam03" in s.summary                      # named: it sees nothing of the volume now


def test_render_plan_view(addon):
    import cv2

    from blender_addon.scene.plan import build_actor, import_cameras, render_plan_view, update_plan

    scene = bpy.context.scene
    path, _ = _demo_cameras()
    import_cameras(scene, path)
    s = scene.openkin_plan
    s.spacing = 0.2
    s.display = "COVERAGE"
    ev = update_plan(scene, s)
    build_actor(scene, ((s.x0 + s.x1) / 2, (s.y0 + s.y1) / 2))
    out = ROOT / "demo" / "output" / "plan_view.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    render_plan_view(scene, ev, out)
    img = cv2.imread(str(out))
    assert img.shape == (960, 1280, 3)
    # the heatmap's palette is on screen: green (4 cameras) and orange/red (1 or 0) cells
    b, g, r = (img[..., i].astype(int) for i in range(3))
    green = (g > 90) & (g > r + 40) & (g > b + 20)
    orange = (r > 150) & (r > g + 40) & (b < 90)
    assert green.mean() > 0.02 and orange.mean() > 0.005, (green.mean(), orange.mean())
    out_err = ROOT / "demo" / "output" / "plan_view_error.png"
    s.display = "ERROR"
    ev = update_plan(scene, s)
    render_plan_view(scene, ev, out_err)
    assert cv2.imread(str(out_err)).shape == (960, 1280, 3)

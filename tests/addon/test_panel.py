"""The panels' ``draw`` with a real ``bpy`` UI layout.

The bpy module has no regions to draw panels into, but ``WindowManager.popover(draw_func)``
hands a draw function a real ``UILayout`` headless, and ``UILayout.introspect()`` lists
what was drawn. The popup itself then crashes the headless process (bpy 5.2), so the
drawing runs in a child Python that writes the introspection and leaves from inside the
draw function (``os._exit``), before the popup is shown.
"""
import json
import subprocess
import sys

from addon_helpers import ROOT, synth_project  # noqa: F401  (fixture)

SCRIPT = r'''
import json, os, sys, types
sys.path.insert(0, sys.argv[1])
import bpy
import blender_addon
from blender_addon import operators, panel

bpy.ops.wm.read_factory_settings(use_empty=True)
blender_addon.register()
assert bpy.ops.openkin.import_project(directory=sys.argv[2]) == {"FINISHED"}
s = bpy.context.scene.openkin
s.filter_type = "kalman"                       # a changed option
s.last_error = "calibration/Calib.toml: a problem\n  fix: the fix"
bpy.context.view_layer.objects.active = bpy.context.scene.objects["P0 Nose"]
job = operators.start_job({"kind": "synth", "out": sys.argv[3], "preset": "realistic", "frames": 20000},
                          "synth", wait=False)

def draw(popup, context):
    out = {}
    for cls in panel.CLASSES:
        layout = popup.layout.column()
        cls.draw(types.SimpleNamespace(layout=layout), context)
        out[cls.__name__] = layout.introspect()
    job.cancel()
    with open(sys.argv[4], "w") as f:
        json.dump(out, f)
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)

bpy.context.window_manager.popover(draw)
'''


def _items(tree):
    for node in tree if isinstance(tree, list) else [tree]:
        yield node
        yield from _items(node.get("items", []))


def test_panels_draw_with_a_real_layout(synth_project, tmp_path):
    script = tmp_path / "draw.py"
    script.write_text(SCRIPT)
    out = tmp_path / "layout.json"
    proc = subprocess.run([sys.executable, str(script), str(ROOT), str(synth_project), str(tmp_path / "job"), str(out)],
                          capture_output=True, text=True, timeout=300)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0 and out.is_file(), said[-3000:]
    assert "property not found" not in said and "unknown operator" not in said, said[-3000:]
    drawn = json.loads(out.read_text())
    main = list(_items(drawn["OPENKIN_PT_main"]))
    ops = [n["operator"] for n in main if "operator" in n]
    props = {n["rna"].split("[")[0] for n in main if "rna" in n}
    texts = [n.get("draw_string", "") for n in main]
    assert any(o.startswith("bpy.ops.openkin.run(") and "'ALL'" in o for o in ops), ops
    assert any(o.startswith("bpy.ops.openkin.run(") and "'ONE'" in o for o in ops), ops
    assert {"bpy.ops.openkin.demo()", "bpy.ops.openkin.import_project()", "bpy.ops.openkin.cancel()"} <= set(ops)
    assert {f"OPENKIN_PG_settings.{p}" for p in ("project_dir", "keep_previous", "pose_mode", "pose_backend",
                                                  "multi_person", "filter_type", "simple_model", "stage")} <= props
    assert "Options (changed ones override Config.toml)" in texts
    assert "Import warnings (1)" in texts and any("no videos in" in t for t in texts)
    assert any("fix: the fix" in t for t in texts)
    qa = list(_items(drawn["OPENKIN_PT_qa"]))
    assert sorted(n["draw_string"] for n in qa if "look_through" in n.get("operator", "")) == \
        ["cam01", "cam02", "cam03", "cam04"]
    assert any(n.get("operator") == "bpy.ops.openkin.marker_rays()" for n in qa)
    imp = {n["rna"].split("[")[0] for n in _items(drawn["OPENKIN_PT_import"]) if "rna" in n}
    assert {"OPENKIN_PG_settings.markers_file", "OPENKIN_PG_settings.undistort"} <= imp
    assert any(n.get("operator") == "bpy.ops.openkin.new_project()" for n in _items(drawn["OPENKIN_PT_new_project"]))

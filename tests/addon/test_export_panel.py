"""The Character panel's operators under ``blender -b``: Export writes the chosen format with the
panel's settings (re-imported with the importer's defaults: same joints within 1 mm), refuses
clearly when there is nothing to export; the panel draws (a real UILayout, headless)."""
from __future__ import annotations

import json
import subprocess
import sys

import bpy
import numpy as np
import pytest

from addon_helpers import ROOT, addon  # noqa: F401  (fixture)
from export_helpers import humanoid_armature, import_into_empty_scene, markers_object, world_heads


def test_export_operator_writes_fbx_for_unreal(addon, tmp_path):
    scene = bpy.context.scene
    scene.render.fps = 60
    markers_object()
    arm = humanoid_armature("P0 skeleton", 1, 60)
    arm["openkin_person"] = "P0"
    ref = world_heads(arm, np.arange(1, 61))
    names = [b.name for b in arm.data.bones]
    s = scene.openkin_character
    assert s.source is None   # the panel finds the person's skeleton itself
    s.format, s.preset = "fbx", "unreal"
    s.filepath = str(tmp_path / "take.fbx")
    assert bpy.ops.openkin.character_export() == {"FINISHED"}, s.error
    assert s.status == f"wrote {tmp_path / 'take.fbx'}" and s.error == ""
    scene = import_into_empty_scene(tmp_path / "take.fbx")
    (got,) = [o for o in scene.objects if o.type == "ARMATURE"]
    assert tuple(got.animation_data.action.frame_range) == (1, 60)
    err = np.linalg.norm(world_heads(got, np.arange(1, 61), names) - ref, axis=-1)
    assert err.max() < 1e-3


def test_export_operator_extension_follows_the_format(addon, tmp_path):
    arm = humanoid_armature("P0 skeleton", 1, 20)
    s = bpy.context.scene.openkin_character
    s.character = arm
    s.format = "bvh"
    s.filepath = str(tmp_path / "take.fbx")
    assert bpy.ops.openkin.character_export() == {"FINISHED"}, s.error
    assert (tmp_path / "take.bvh").read_text().startswith("HIERARCHY") and not (tmp_path / "take.fbx").exists()


def test_export_operator_with_nothing_to_export(addon, tmp_path):
    s = bpy.context.scene.openkin_character
    s.filepath = str(tmp_path / "take.fbx")
    with pytest.raises(RuntimeError, match="nothing to export"):   # bpy.ops raises on an ERROR report
        bpy.ops.openkin.character_export()
    assert "nothing to export" in s.error and not (tmp_path / "take.fbx").exists()


SCRIPT = r'''
import json, os, sys, types
sys.path.insert(0, sys.argv[1])
import bpy
import blender_addon
from blender_addon import character_panel

bpy.ops.wm.read_factory_settings(use_empty=True)
blender_addon.register()
s = bpy.context.scene.openkin_character
s.target_kind = "ARMATURE"
s.error = "a problem"

def draw(popup, context):
    layout = popup.layout.column()
    character_panel.OPENKIN_PT_character.draw(types.SimpleNamespace(layout=layout), context)
    with open(sys.argv[2], "w") as f:
        json.dump(layout.introspect(), f)
    os._exit(0)

bpy.context.window_manager.popover(draw)
'''


def test_panel_draws(tmp_path):
    out = tmp_path / "drawn.json"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(out)], capture_output=True, text=True, timeout=300)
    assert out.is_file(), r.stderr[-2000:]
    text = json.dumps(json.loads(out.read_text()))
    for expected in ("openkin.character_retarget", "openkin.character_export", "bone_map", "a problem"):
        assert expected in text, expected


def test_retarget_then_export_from_the_panel(addon, tmp_path):
    """Retarget (Mixamo target built by the retarget package) then Export: one armature of
    mixamorig: bones with the take's frame range, as the panel's settings say."""
    scene = bpy.context.scene
    scene.render.fps = 60
    source = humanoid_armature("P0 animation", 1, 40)
    source["openkin_role"], source["openkin_person"] = "animation", "P0"
    s = scene.openkin_character
    s.target_kind = "MIXAMO"
    assert bpy.ops.openkin.character_retarget() == {"FINISHED"}, s.error
    assert s.character is not None and s.character != source
    s.format, s.filepath = "fbx", str(tmp_path / "mixamo.fbx")
    assert bpy.ops.openkin.character_export() == {"FINISHED"}, s.error
    scene = import_into_empty_scene(tmp_path / "mixamo.fbx")
    (arm,) = [o for o in scene.objects if o.type == "ARMATURE"]
    assert all(b.name.startswith("mixamorig:") for b in arm.data.bones)
    assert tuple(arm.animation_data.action.frame_range) == (1, 40)

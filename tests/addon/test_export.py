"""Round trip of every export format: export a character's take from a busy scene (markers
with actions of their own, a second character, a camera) → import the file into an empty
scene with the importer's DEFAULT settings → every joint's world position within 1 mm of the
exported armature's (depsgraph-evaluated) on every frame, same frame range and fps, one
armature and one action. Also: the user's scene is left as it was, several people give one
file per person with a warning."""
from __future__ import annotations

import json
import logging
import struct

import bpy
import numpy as np
import pytest

from addon_helpers import ROOT  # noqa: F401  (puts the repository on sys.path)
from export_helpers import (humanoid_armature, import_into_empty_scene, markers_object, world_empties,
                            world_heads)

FPS = 60
START, END = 1, 100
TOL_M = 1e-3  # the goal: 1 mm


def _busy_scene(fps=FPS):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    markers_object("P0 Nose")
    arm = humanoid_armature("P0 character", START, END, seed=1)
    other = humanoid_armature("P1 character", START, END + 30, seed=2, prefix="other_")
    markers_object("P1 Nose", START, END + 30)
    cam = bpy.data.objects.new("cam01", bpy.data.cameras.new("cam01"))
    scene.collection.objects.link(cam)
    scene.frame_start, scene.frame_end = 1, 250   # the scene's range is not the take's
    return scene, arm, other


def _state():
    s = bpy.context.scene
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted(a.name for a in bpy.data.armatures), len(bpy.data.scenes), s.frame_start, s.frame_end,
            s.frame_current, s.render.fps)


def _usd_name(name: str) -> str:
    return name.replace(".", "_").replace(":", "_")


def _exported(tmp_path, fmt, preset="unity"):
    """Export P0's take; returns (reference heads (F, B, 3), bone names, file)."""
    from blender_addon.export import export_armatures

    scene, arm, _ = _busy_scene()
    frames = np.arange(START, END + 1)
    ref = world_heads(arm, frames)
    names = [b.name for b in arm.data.bones]
    before = _state()
    ext = {"usd": "usda"}.get(fmt, fmt)
    (path,) = export_armatures(bpy.context, [arm], tmp_path / f"take.{ext}", fmt, preset=preset)
    assert _state() == before, "the export changed the user's scene"
    return ref, names, path


def _only_armature_and_action(scene):
    arms = [o for o in scene.objects if o.type == "ARMATURE"]
    assert len(arms) == 1, [o.name for o in scene.objects]
    assert len(bpy.data.actions) == 1, [a.name for a in bpy.data.actions]
    action = arms[0].animation_data.action
    assert action is bpy.data.actions[0]
    return arms[0], action


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_fbx_round_trip(tmp_path, preset):
    ref, names, path = _exported(tmp_path, "fbx", preset)
    scene = import_into_empty_scene(path)
    arm, action = _only_armature_and_action(scene)
    assert arm.name == "P0 character" and sorted(b.name for b in arm.data.bones) == sorted(names)
    assert tuple(action.frame_range) == (START, END)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(FPS)   # the importer sets the file's fps
    got = world_heads(arm, np.arange(START, END + 1), names)
    err = np.linalg.norm(got - ref, axis=-1)
    print(f"FBX {preset}: max joint error {err.max() * 1000:.4f} mm over {err.size} joint-frames")
    assert err.max() < TOL_M


def test_bvh_round_trip_upright(tmp_path):
    ref, names, path = _exported(tmp_path, "bvh")
    text = path.read_text()
    assert f"Frames: {END - START + 1}\n" in text
    assert float(text.split("Frame Time:")[1].split()[0]) == pytest.approx(1 / FPS, abs=1e-6)
    scene = import_into_empty_scene(path)
    arm, action = _only_armature_and_action(scene)
    assert tuple(action.frame_range) == (START, END)
    got = world_heads(arm, np.arange(START, END + 1), names)
    err = np.linalg.norm(got - ref, axis=-1)
    print(f"BVH: max joint error {err.max() * 1000:.4f} mm")
    assert err.max() < TOL_M
    # upright: the head above the hips on every frame, as exported
    head, hips = names.index("head"), names.index("hips")
    assert np.all(got[:, head, 2] - got[:, hips, 2] > 0.3)


def _glb_times(path) -> np.ndarray:
    """Key times (s) of the GLB's first animation sampler, read from the file's JSON + buffer."""
    data = path.read_bytes()
    (json_len,) = struct.unpack_from("<I", data, 12)
    gltf = json.loads(data[20:20 + json_len])
    binary = data[20 + json_len + 8:]
    acc = gltf["accessors"][gltf["animations"][0]["samplers"][0]["input"]]
    view = gltf["bufferViews"][acc["bufferView"]]
    off = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(binary, np.float32, acc["count"], off), gltf


def test_glb_round_trip_and_timing(tmp_path):
    ref, names, path = _exported(tmp_path, "glb")
    times, gltf = _glb_times(path)
    assert len(gltf["animations"]) == 1 and gltf["animations"][0]["name"] == "P0 character take"
    assert np.allclose(times, np.arange(START, END + 1) / FPS, atol=1e-6)   # seconds from the real fps
    scene = import_into_empty_scene(path, fps=FPS)   # glTF has no fps: the importer uses the scene's
    arm, action = _only_armature_and_action(scene)
    assert tuple(action.frame_range) == (START, END)
    got = world_heads(arm, np.arange(START, END + 1), names)
    err = np.linalg.norm(got - ref, axis=-1)
    print(f"GLB: max joint error {err.max() * 1000:.4f} mm")
    assert err.max() < TOL_M
    # fps-independent: in a 24 fps scene, second t is at frame 24 t (frames 5, 10, ... → 2, 4, ...)
    scene = import_into_empty_scene(path, fps=24)
    arm, _ = _only_armature_and_action(scene)
    at = np.arange(5, END + 1, 5)
    got24 = world_heads(arm, at * 24 // FPS, names)
    assert np.linalg.norm(got24 - ref[at - START], axis=-1).max() < TOL_M


def test_usd_round_trip(tmp_path):
    ref, names, path = _exported(tmp_path, "usd")
    header = path.read_text()[:2000]
    assert "timeCodesPerSecond = 60" in header and "startTimeCode = 1" in header and "endTimeCode = 100" in header
    scene = import_into_empty_scene(path)
    arm, action = _only_armature_and_action(scene)
    assert tuple(action.frame_range) == (START, END)
    got = world_heads(arm, np.arange(START, END + 1), [_usd_name(n) for n in names])
    err = np.linalg.norm(got - ref, axis=-1)
    print(f"USD: max joint error {err.max() * 1000:.4f} mm")
    assert err.max() < TOL_M


def test_alembic_round_trip_and_timing(tmp_path):
    ref, names, path = _exported(tmp_path, "abc")
    scene = import_into_empty_scene(path, fps=FPS)   # Alembic's time sampling is in seconds
    assert (scene.frame_start, scene.frame_end) == (START, END)
    joints = [scene.objects[_usd_name(n)] for n in names]
    assert len(scene.objects) == len(names)
    got = world_empties(joints, np.arange(START, END + 1))
    err = np.linalg.norm(got - ref, axis=-1)
    print(f"Alembic: max joint error {err.max() * 1000:.4f} mm")
    assert err.max() < TOL_M
    scene = import_into_empty_scene(path, fps=24)
    joints = [scene.objects[_usd_name(n)] for n in names]
    at = np.arange(5, END + 1, 5)
    assert np.linalg.norm(world_empties(joints, at * 24 // FPS) - ref[at - START], axis=-1).max() < TOL_M


def test_several_people_one_file_each_with_a_warning(tmp_path, caplog):
    from blender_addon.export import export_armatures

    _, arm, other = _busy_scene()
    with caplog.at_level(logging.WARNING):
        paths = export_armatures(bpy.context, [arm, other], tmp_path / "take.bvh")
    assert [p.name for p in paths] == ["take_P0_character.bvh", "take_P1_character.bvh"]
    assert "one file per person" in caplog.text and "take_P1_character.bvh" in caplog.text
    other_text = paths[1].read_text()
    assert "other_hips" in other_text and f"Frames: {END + 30 - START + 1}\n" in other_text


def test_unknown_format_and_preset(tmp_path):
    from openkin.errors import OpenKinError

    from blender_addon.export import export_armatures

    _, arm, _ = _busy_scene()
    with pytest.raises(OpenKinError, match="unknown export format 'obj'"):
        export_armatures(bpy.context, [arm], tmp_path / "x.obj")
    with pytest.raises(OpenKinError, match="unknown FBX preset"):
        export_armatures(bpy.context, [arm], tmp_path / "x.fbx", preset="godot")

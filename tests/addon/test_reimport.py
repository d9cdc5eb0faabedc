"""Importing a capture again replaces it (no ``.001`` copies), never the user's own data;
"keep previous" keeps both; a failed re-import leaves the earlier import in place; the
user's camera and render size are left alone."""
import bpy
import numpy as np
import pytest

from addon_helpers import addon, demo_project, scene_snapshot, synth_project  # noqa: F401  (fixtures)

KINDS = ("objects", "meshes", "cameras", "armatures", "materials", "images", "actions", "collections")


def _import(root, **kw):
    assert bpy.ops.openkin.import_project(directory=str(root), **kw) == {"FINISHED"}, \
        bpy.context.scene.openkin.last_error


def _counts():
    return {k: len(getattr(bpy.data, k)) for k in KINDS}


def _dotted():
    return sorted(b.name for k in KINDS for b in getattr(bpy.data, k) if b.name[-4:-3] == "." and b.name[-3:].isdigit())


def test_import_twice_replaces_the_capture(addon, demo_project):
    """The demo's videos with a synthetic person: 4 cameras, their image planes and movies, 26
    markers, the skeleton, its bone mesh and the animation skeleton; a second import leaves exactly as many."""
    _import(demo_project)
    first = _counts()
    names = scene_snapshot()
    assert (first["objects"], first["cameras"], first["images"], first["armatures"]) == (4 + 4 + 26 + 3, 4, 4, 2)
    _import(demo_project)
    assert _counts() == first
    assert _dotted() == []
    assert scene_snapshot() == names
    assert bpy.context.scene.camera.name == "cam01"
    # the new import is the live one: its markers are animated and tagged
    nose = bpy.context.scene.objects["P0 Nose"]
    assert nose["openkin_import"].startswith("project:") and nose.animation_data.action is not None


def test_reimport_keeps_the_users_data(addon, synth_project):
    """The user's objects survive a re-import: a cube of theirs, a sphere they put into our
    collection, an empty they parented to our camera (keeping its place), and a mesh of
    theirs that uses one of our materials (the material stays)."""
    _import(synth_project)
    scene = bpy.context.scene
    cube = bpy.data.objects.new("My cube", bpy.data.meshes.new("My cube"))
    scene.collection.objects.link(cube)
    ours = bpy.data.collections["OpenKin trial P0"]
    sphere = bpy.data.objects.new("My sphere", bpy.data.meshes.new("My sphere"))
    ours.objects.link(sphere)
    empty = bpy.data.objects.new("My empty", None)
    scene.collection.objects.link(empty)
    empty.parent = scene.objects["cam02"]
    empty.location = (0.1, 0.2, 0.3)
    bpy.context.view_layer.update()
    where = np.array(empty.matrix_world)
    borrowed = scene.objects["P0 Nose"].material_slots[0].material
    cube.data.materials.append(borrowed)
    _import(synth_project)
    assert {"My cube", "My sphere", "My empty"} <= {o.name for o in scene.objects}
    assert sphere.users_collection and empty.parent is None
    assert np.allclose(np.array(empty.matrix_world), where, atol=1e-6)
    assert cube.data.materials[0] == borrowed and "openkin_import" not in borrowed
    assert _dotted() == ["P0 Nose.001"]   # the kept material (the user's now) beside the new import's


def test_keep_previous_keeps_both(addon, synth_project):
    _import(synth_project)
    first = _counts()
    bpy.context.scene.openkin.keep_previous = True
    _import(synth_project)
    again = _counts()
    assert again["objects"] == 2 * first["objects"] and again["materials"] == 2 * first["materials"]
    assert "cam01.001" in bpy.data.objects


def test_failed_reimport_keeps_the_previous_one(addon, synth_project, monkeypatch):
    from blender_addon.scene import armature
    from openkin.errors import OpenKinError

    _import(synth_project)
    before = scene_snapshot()

    def fail(*args, **kwargs):
        raise OpenKinError("simulated failure while building the armature")

    monkeypatch.setattr(armature, "build_armature", fail)
    with pytest.raises(RuntimeError, match="simulated failure"):
        bpy.ops.openkin.import_project(directory=str(synth_project))
    assert scene_snapshot() == before
    assert bpy.data.objects["cam01"].name == "cam01"


def test_import_leaves_the_users_camera_and_render_size(addon, synth_project):
    scene = bpy.context.scene
    mine = bpy.data.objects.new("My camera", bpy.data.cameras.new("My camera"))
    scene.collection.objects.link(mine)
    scene.camera = mine
    scene.render.resolution_x, scene.render.resolution_y = 1280, 720
    _import(synth_project)
    scene.frame_set(10)   # handlers run
    assert scene.camera == mine
    assert (scene.render.resolution_x, scene.render.resolution_y) == (1280, 720)
    # looking through an OpenKin camera applies its size; back to the user's camera, the
    # user's own size returns
    assert bpy.ops.openkin.look_through(camera="cam01") == {"FINISHED"}
    assert (scene.render.resolution_x, scene.render.resolution_y) == (1088, 1920)
    scene.camera = mine
    scene.frame_set(11)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (1280, 720)
    # a size typed in while looking through an OpenKin camera is never overwritten
    assert bpy.ops.openkin.look_through(camera="cam02") == {"FINISHED"}
    scene.render.resolution_x = 544
    scene.frame_set(12)
    assert scene.render.resolution_x == 544
    scene.camera = mine
    scene.frame_set(13)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (544, 1920)


def test_first_import_into_an_empty_scene_sets_camera_and_size(addon, synth_project):
    _import(synth_project)
    scene = bpy.context.scene
    assert scene.camera.name == "cam01"
    assert (scene.render.resolution_x, scene.render.resolution_y) == (1088, 1920)


def test_rays_go_with_their_import(addon, synth_project):
    """Rays drawn from a marker belong to that import: a re-import removes them too."""
    _import(synth_project)
    scene = bpy.context.scene
    bpy.context.view_layer.objects.active = scene.objects["P0 Nose"]
    assert bpy.ops.openkin.marker_rays() == {"FINISHED"}
    assert "Rays P0 Nose" in bpy.data.objects
    _import(synth_project)
    assert "Rays P0 Nose" not in bpy.data.objects and "Rays P0 Nose" not in bpy.data.meshes
    assert _dotted() == []


def test_reimport_renders_the_same(addon, demo_project, tmp_path):
    """The replaced capture looks exactly like the first import from cam01 (video, markers, bones)."""
    import cv2

    from addon_helpers import ROOT
    from blender_addon.scene.snapshot import render_camera

    shots = []
    for i in range(2):
        _import(demo_project)
        scene = bpy.context.scene
        out = (ROOT / "demo" / "output" / "blender_reimport_cam01.png") if i else tmp_path / "first.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        render_camera(scene, scene.objects["cam01"], 50, out, percentage=25)
        shots.append(cv2.imread(str(out)).astype(float))
    assert shots[0].shape == (480, 272, 3)
    assert np.abs(shots[0] - shots[1]).mean() < 0.5

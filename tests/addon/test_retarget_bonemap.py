"""The automatic bone map on real armatures built in Blender (Mixamo's standard skeleton, a UE
mannequin-named A-pose rig imported FBX-style, Unity humanoid names, Blender's Rigify metarig,
a rig with meaningless names), the error for a rig that is not humanoid enough, presets."""
import json

import bpy
import numpy as np
import pytest

from addon_helpers import fresh_scene

# a UE-mannequin-like body (metres, world: Z up, facing -Y), A-pose, longer legs than the source
_UE_LEFT = {
    "clavicle_l": ("spine_03", (0.03, 0, 1.42), (0.16, 0, 1.42)),
    "upperarm_l": ("clavicle_l", (0.16, 0, 1.42), (0.351, 0, 1.229)),
    "upperarm_twist_01_l": ("upperarm_l", (0.25, 0, 1.33), (0.30, 0, 1.28)),
    "lowerarm_l": ("upperarm_l", (0.351, 0, 1.229), (0.528, 0, 1.052)),
    "hand_l": ("lowerarm_l", (0.528, 0, 1.052), (0.585, 0, 0.995)),
    "thigh_l": ("pelvis", (0.10, 0, 0.98), (0.10, -0.01, 0.53)),
    "thigh_twist_01_l": ("thigh_l", (0.10, 0, 0.80), (0.10, 0, 0.70)),
    "calf_l": ("thigh_l", (0.10, -0.01, 0.53), (0.10, 0.01, 0.09)),
    "foot_l": ("calf_l", (0.10, 0.01, 0.09), (0.10, -0.12, 0.02)),
    "ball_l": ("foot_l", (0.10, -0.12, 0.02), (0.10, -0.20, 0.02)),
}
_UE_CENTRE = {
    "root": (None, (0, 0, 0), (0, 0.25, 0)),
    "pelvis": ("root", (0, 0, 1.00), (0, 0, 1.08)),
    "spine_01": ("pelvis", (0, 0, 1.08), (0, 0, 1.20)),
    "spine_02": ("spine_01", (0, 0, 1.20), (0, 0, 1.32)),
    "spine_03": ("spine_02", (0, 0, 1.32), (0, 0, 1.46)),
    "neck_01": ("spine_03", (0, -0.01, 1.48), (0, -0.01, 1.58)),
    "head": ("neck_01", (0, -0.01, 1.58), (0, -0.01, 1.80)),
}
UE_TRUTH = {"hips": "pelvis", "spine": "spine_01", "spine.001": "spine_02", "spine.002": "spine_03",
            "neck": "neck_01", "head": "head", "shoulder.L": "clavicle_l", "upper_arm.L": "upperarm_l",
            "forearm.L": "lowerarm_l", "hand.L": "hand_l", "thigh.L": "thigh_l", "shin.L": "calf_l",
            "foot.L": "foot_l", "toe.L": "ball_l"}
UE_TRUTH.update({k.replace(".L", ".R"): v[:-2] + "_r" for k, v in UE_TRUTH.items() if k.endswith(".L")})
UNITY = {"pelvis": "Hips", "spine_01": "Spine", "spine_02": "Chest", "spine_03": "UpperChest", "neck_01": "Neck",
         "head": "Head", "clavicle_l": "LeftShoulder", "upperarm_l": "LeftUpperArm", "lowerarm_l": "LeftLowerArm",
         "hand_l": "LeftHand", "thigh_l": "LeftUpperLeg", "calf_l": "LeftLowerLeg", "foot_l": "LeftFoot",
         "ball_l": "LeftToes", "root": "Armature_root", "upperarm_twist_01_l": "LeftArmTwist",
         "thigh_twist_01_l": "LeftLegTwist"}
UNITY.update({k[:-2] + "_r": v.replace("Left", "Right") for k, v in UNITY.items() if k.endswith("_l")})


def ue_rows() -> list[tuple[str, str | None, tuple, tuple]]:
    """(name, parent, head, tail) in world metres of the UE-like body, both sides."""
    rows = [(n, p, h, t) for n, (p, h, t) in _UE_CENTRE.items()]
    for side in (False, True):
        for n, (p, h, t) in _UE_LEFT.items():
            if side:
                n, p = n[:-2] + "_r", (p[:-2] + "_r" if p.endswith("_l") else p)
                h, t = (-h[0], h[1], h[2]), (-t[0], t[1], t[2])
            rows.append((n, p, h, t))
    return rows


def build_fbx_style(context, rows, name="character", rename=None):
    """An armature as Blender's FBX importer leaves a Y-up centimetre rig: data in cm (Y up),
    object rotated 90° about X and scaled 0.01 — in the world it stands Z up, facing -Y."""
    from blender_addon.retarget.targets import build_armature

    def to_data(p):
        x, y, z = p
        return (100 * x, 100 * z, -100 * y)

    rename = rename or {}
    data_rows = [(rename.get(n, n), rename.get(p, p) if p else None, to_data(h), to_data(t)) for n, p, h, t in rows]
    obj = build_armature(context, name, data_rows)
    obj.rotation_euler = (np.pi / 2, 0, 0)
    obj.scale = (0.01, 0.01, 0.01)
    context.view_layer.update()
    return obj


@pytest.fixture()
def ctx():
    fresh_scene()
    return bpy.context


def test_mixamo_names_map_every_humanoid_bone(ctx):
    from blender_addon.retarget import auto_bone_map, build_mixamo

    bm = auto_bone_map(build_mixamo(ctx))
    assert bm.missing == []
    assert bm.bones["hips"] == "mixamorig:Hips"
    assert bm.bones["upper_arm.L"] == "mixamorig:LeftArm" and bm.bones["shin.R"] == "mixamorig:RightLeg"
    assert [bm.bones[s] for s in ("spine", "spine.001", "spine.002")] == [
        "mixamorig:Spine", "mixamorig:Spine1", "mixamorig:Spine2"]
    assert bm.bones["toe.L"] == "mixamorig:LeftToeBase" and bm.bones["shoulder.R"] == "mixamorig:RightShoulder"


def test_ue_mannequin_names_fbx_style_rig(ctx):
    from blender_addon.retarget import auto_bone_map

    bm = auto_bone_map(build_fbx_style(ctx, ue_rows()))
    assert bm.bones == UE_TRUTH and bm.missing == []


def test_unity_humanoid_names(ctx):
    from blender_addon.retarget import auto_bone_map

    bm = auto_bone_map(build_fbx_style(ctx, ue_rows(), rename=UNITY))
    assert bm.bones == {h: UNITY[b] for h, b in UE_TRUTH.items()}


def test_meaningless_names_are_mapped_by_topology(ctx):
    """Bones called B0..Bn: the hips, legs, spine, arms, neck and head come from the rest pose."""
    from blender_addon.retarget import auto_bone_map

    rows = ue_rows()
    rename = {n: f"B{i:02d}" for i, (n, _, _, _) in enumerate(rows)}
    bm = auto_bone_map(build_fbx_style(ctx, rows, rename=rename))
    assert "topology" in bm.convention
    assert bm.bones == {h: rename[b] for h, b in UE_TRUTH.items()}


def test_rigify_metarig_numbering(ctx):
    """Rigify counts its spine from the pelvis (spine = hips, spine.006 = head)."""
    import addon_utils

    from blender_addon.retarget import auto_bone_map

    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    bm = auto_bone_map(ctx.view_layer.objects.active)
    assert {h: bm.bones[h] for h in ("hips", "spine", "spine.002", "neck", "head")} == {
        "hips": "spine", "spine": "spine.001", "spine.002": "spine.003", "neck": "spine.004", "head": "spine.006"}
    assert bm.bones["upper_arm.L"] == "upper_arm.L" and bm.bones["toe.R"] == "toe.R" and bm.missing == []


def test_not_humanoid_lists_the_unmapped_bones_and_the_fix(ctx):
    from blender_addon.retarget import auto_bone_map
    from blender_addon.retarget.targets import build_armature
    from openkin.errors import OpenKinError

    arm = build_armature(ctx, "tentacle", [("Base", None, (0, 0, 0), (0, 0, 0.5)), ("Mid", "Base", (0, 0, 0.5), (0, 0, 1)),
                                           ("hand.L", "Mid", (0, 0, 1), (0.2, 0, 1))])
    bm = auto_bone_map(arm)
    with pytest.raises(OpenKinError) as err:
        bm.require()
    text = str(err.value)
    for bone in ("hips", "forearm.L", "thigh.R", "foot.L", "head"):
        assert bone in text
    assert "hand.L (" not in text  # the one bone it could map is not listed
    assert "LeftForeArm, lowerarm_l" in text and "preset" in text and "bone-map" in text


def test_preset_round_trip_edit_and_reload(ctx, tmp_path, monkeypatch):
    from blender_addon.retarget import auto_bone_map, build_mixamo, load_preset, presets, save_preset
    from openkin.errors import OpenKinError

    monkeypatch.setattr(presets, "preset_dir", lambda: tmp_path / "config")
    bm = auto_bone_map(build_mixamo(ctx))
    path = save_preset(bm)
    assert path == tmp_path / "config" / "mixamo.json"
    assert load_preset("mixamo").bones == bm.bones
    data = json.loads(path.read_text())
    data["bones"]["toe.L"] = "mixamorig:LeftToe_End"  # the user's edit
    del data["bones"]["neck"]
    side = tmp_path / "scene" / "my_rig.json"
    side.parent.mkdir()
    side.write_text(json.dumps(data))
    edited = load_preset(side)
    assert edited.bones["toe.L"] == "mixamorig:LeftToe_End" and "neck" in edited.missing
    side.write_text("{not json")
    with pytest.raises(OpenKinError, match="not valid JSON"):
        load_preset(side)
    side.write_text(json.dumps({"bones": {"elbow.L": "x"}}))
    with pytest.raises(OpenKinError, match="elbow.L"):
        load_preset(side)
    with pytest.raises(OpenKinError, match="not found"):
        load_preset(tmp_path / "missing.json")


def test_preset_beside_the_blend_wins_by_name(ctx, tmp_path, monkeypatch):
    from blender_addon.retarget import auto_bone_map, build_mixamo, load_preset, presets, save_preset

    monkeypatch.setattr(presets, "preset_dir", lambda: tmp_path / "config")
    bm = auto_bone_map(build_mixamo(ctx))
    save_preset(bm)  # user config
    (tmp_path / "shot").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot" / "shot.blend"))
    bm.bones["toe.L"] = "mixamorig:LeftToe_End"
    beside = save_preset(bm, beside_blend=True)
    assert beside == tmp_path / "shot" / "mixamo.json"
    assert load_preset("mixamo").bones["toe.L"] == "mixamorig:LeftToe_End"
    assert presets.list_presets() == [beside, tmp_path / "config" / "mixamo.json"]


def test_stored_bone_map_is_used_for_retarget(ctx):
    """A map the user edited on the armature is the one retarget uses (here: toes left out)."""
    from blender_addon.retarget import auto_bone_map, bone_map_of, build_mixamo, last_result, retarget, store_bone_map
    from blender_addon.retarget.walk import build_walk_source

    src = build_walk_source(ctx, 30)
    target = build_mixamo(ctx)
    bm = auto_bone_map(target)
    del bm.bones["toe.L"]
    store_bone_map(target, bm)
    assert bone_map_of(target).bones == bm.bones
    retarget(ctx, src, target)
    assert "toe.L" not in last_result()["bone_map"].bones
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    ad = target.animation_data
    keyed = {fc.data_path.split('"')[1] for fc in action_get_channelbag_for_slot(ad.action, ad.action_slot).fcurves}
    assert "mixamorig:LeftToeBase" not in keyed and "mixamorig:RightToeBase" in keyed


def test_retarget_onto_a_non_humanoid_says_what_to_map(ctx):
    from blender_addon.retarget import retarget
    from blender_addon.retarget.targets import build_armature
    from blender_addon.retarget.walk import build_walk_source
    from openkin.errors import OpenKinError

    src = build_walk_source(ctx, 20)
    tail = build_armature(ctx, "tail", [("Base", None, (0, 0, 0), (0, 0, 0.5)), ("Tip", "Base", (0, 0, 0.5), (0, 0, 1))])
    with pytest.raises(OpenKinError) as err:
        retarget(ctx, src, tail)
    assert "'tail' is not humanoid enough" in str(err.value) and "upper_arm.L" in str(err.value)
    assert err.value.fix and "preset" in err.value.fix
    assert tail.animation_data is None  # nothing written

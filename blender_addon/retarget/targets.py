"""Ready-made targets: a Rigify rig generated from Blender's human metarig, and a Mixamo-named
skeleton (Mixamo's standard bone list and adult proportions, T-pose, Z up, facing −Y)."""
from __future__ import annotations

import logging

from openkin.errors import OpenKinError

log = logging.getLogger(__name__)

# Mixamo's standard skeleton (Y Bot-like, metres): name → (parent, head, tail), left side.
_SPINE = (
    ("Hips", None, (0, 0, 1.00), (0, 0, 1.09)),
    ("Spine", "Hips", (0, 0, 1.09), (0, 0, 1.21)),
    ("Spine1", "Spine", (0, 0, 1.21), (0, 0, 1.34)),
    ("Spine2", "Spine1", (0, 0, 1.34), (0, 0, 1.50)),
    ("Neck", "Spine2", (0, 0, 1.50), (0, 0, 1.60)),
    ("Head", "Neck", (0, 0, 1.60), (0, 0, 1.78)),
    ("HeadTop_End", "Head", (0, 0, 1.78), (0, 0, 1.84)),
)
_LEFT = (
    ("LeftShoulder", "Spine2", (0.06, 0, 1.45), (0.17, 0, 1.45)),
    ("LeftArm", "LeftShoulder", (0.17, 0, 1.45), (0.45, 0, 1.45)),
    ("LeftForeArm", "LeftArm", (0.45, 0, 1.45), (0.71, 0, 1.45)),
    ("LeftHand", "LeftForeArm", (0.71, 0, 1.45), (0.80, 0, 1.45)),
    ("LeftUpLeg", "Hips", (0.09, 0, 0.95), (0.09, 0, 0.52)),
    ("LeftLeg", "LeftUpLeg", (0.09, 0, 0.52), (0.09, 0, 0.09)),
    ("LeftFoot", "LeftLeg", (0.09, 0, 0.09), (0.09, -0.13, 0.025)),
    ("LeftToeBase", "LeftFoot", (0.09, -0.13, 0.025), (0.09, -0.21, 0.025)),
    ("LeftToe_End", "LeftToeBase", (0.09, -0.21, 0.025), (0.09, -0.24, 0.025)),
)
_FINGERS = {"Thumb": (-0.03, -0.035), "Index": (0.09, -0.025), "Middle": (0.095, 0.0),
            "Ring": (0.09, 0.02), "Pinky": (0.08, 0.04)}


def mixamo_bones() -> list[tuple[str, str | None, tuple, tuple]]:
    """(name, parent, head, tail) of Mixamo's standard skeleton (without the ``mixamorig:``
    prefix), both sides and five 4-bone fingers per hand, T-pose, metres."""
    bones = list(_SPINE) + list(_LEFT)
    for finger, (dx, dy) in _FINGERS.items():
        parent, x = "LeftHand", 0.80 + min(dx, 0.0)
        for k in range(1, 5):
            name = f"LeftHand{finger}{k}"
            step = 0.03 if finger != "Thumb" else 0.025
            head = (x, dy, 1.45 - (0.02 if finger == "Thumb" else 0))
            bones.append((name, parent, head, (x + step, dy, head[2])))
            parent, x = name, x + step
    right = [(n.replace("Left", "Right"), p and p.replace("Left", "Right"), (-h[0], h[1], h[2]), (-t[0], t[1], t[2]))
             for n, p, h, t in bones if n.startswith("Left")]
    return bones + right


def build_armature(context, name: str, bones, prefix: str = ""):
    """A new armature object ``name`` from (name, parent, head, tail) rows, linked to the scene."""
    import bpy

    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    context.scene.collection.objects.link(obj)
    view_layer = context.view_layer
    if context.object and context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for bone_name, parent, head, tail in bones:
        eb = data.edit_bones.new(prefix + bone_name)
        eb.head, eb.tail = head, tail
        if parent:
            eb.parent = data.edit_bones[prefix + parent]
            eb.use_connect = (tuple(eb.parent.tail) == tuple(head))
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def build_mixamo(context, name: str = "mixamo"):
    """A Mixamo-named armature (``mixamorig:Hips`` …), T-pose, 1.84 m, Z up, facing −Y."""
    return build_armature(context, name, mixamo_bones(), prefix="mixamorig:")


def build_rigify(context, name: str = "rig"):
    """A Rigify rig generated from Blender's human metarig (the metarig is removed)."""
    import addon_utils
    import bpy

    addon_utils.enable("rigify", default_set=True)
    if context.object and context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    before = set(bpy.data.objects)
    bpy.ops.object.armature_human_metarig_add()
    meta = context.view_layer.objects.active
    meta.location = (0, 0, 0)
    if bpy.ops.pose.rigify_generate() != {"FINISHED"}:
        raise OpenKinError("Rigify could not generate a rig from the human metarig",
                           fix="enable the Rigify add-on (Preferences › Add-ons) and try again")
    rig = next(o for o in bpy.data.objects if o not in before and o is not meta and o.type == "ARMATURE")
    bpy.data.objects.remove(meta)
    rig.name = name
    log.info("generated Rigify rig %s (%d bones)", rig.name, len(rig.pose.bones))
    return rig

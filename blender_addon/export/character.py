"""The character an export writes: OpenKin's animation skeleton of a person, or a rig
(Rigify, Mixamo-named, the user's own armature) retargeted from it.

The animation skeleton (``openkin.character.humanoid``'s bones) is built by the import next to
the OpenSim skeleton; retargeting is :mod:`blender_addon.retarget`'s. This module only finds
and chains them, with clear errors when a piece is missing.
"""
from __future__ import annotations

import logging
from pathlib import Path

import bpy

from openkin.errors import OpenKinError

log = logging.getLogger(__name__)

RIGS = ("skeleton", "mixamo", "rigify")
_CORE = ("hips", "spine", "neck", "head", "thigh.L", "thigh.R", "upper_arm.L", "upper_arm.R")


def is_animation_skeleton(obj) -> bool:
    """Whether ``obj`` is OpenKin's animation skeleton (``openkin_role``), or an armature with the
    humanoid contract's bones."""
    if obj is None or obj.type != "ARMATURE":
        return False
    return obj.get("openkin_role") == "animation" or all(n in obj.data.bones for n in _CORE)


def people(scene) -> dict[str, dict[str, object]]:
    """Person name (``P0``...) → {"opensim": OpenSim skeleton, "animation": animation skeleton or
    None} of the imported capture in ``scene``, sorted by name."""
    out: dict[str, dict[str, object]] = {}
    for obj in scene.objects:
        name = obj.get("openkin_person")
        if obj.type != "ARMATURE" or not name:
            continue
        slot = out.setdefault(str(name), {"opensim": None, "animation": None})
        slot["animation" if is_animation_skeleton(obj) else "opensim"] = obj
    return dict(sorted(out.items()))


def choose_people(scene, person: int | None) -> list[tuple[str, dict]]:
    """The people to export: all, or person ``P<person>``; errors name what exists."""
    found = people(scene)
    if not found:
        raise OpenKinError("the project has no skeleton to export (no kinematics results were imported)",
                           fix="run the pipeline up to the kinematics stage first (`openkin run PROJECT`)")
    if person is None:
        return list(found.items())
    name = f"P{person}"
    if name not in found:
        raise OpenKinError(f"person {person} ({name}) is out of range: the project has {len(found)} "
                           f"({', '.join(found)})", fix=f"give --person between 0 and {len(found) - 1}")
    return [(name, found[name])]


def load_blend_armature(context, blend: Path):
    """The armature of the user's character in ``blend`` (the one with most bones), linked
    into the scene."""
    blend = Path(blend)
    if not blend.is_file():
        raise OpenKinError("no such .blend file", path=blend, fix="give the .blend file of your character")
    with bpy.data.libraries.load(str(blend), link=False) as (src, dst):
        dst.objects = list(src.objects)
    arms = [o for o in dst.objects if o is not None and o.type == "ARMATURE"]
    if not arms:
        for o in dst.objects:
            if o is not None:
                bpy.data.objects.remove(o)
        raise OpenKinError("this .blend file holds no armature", path=blend,
                           fix="save your character's armature (and its meshes) in the .blend file")
    keep = [o for o in dst.objects if o is not None and (o.type == "ARMATURE" or (o.parent in arms))]
    for o in keep:
        context.scene.collection.objects.link(o)
    for o in dst.objects:
        if o is not None and o not in keep:
            bpy.data.objects.remove(o)
    return max(arms, key=lambda o: len(o.data.bones))


def character(context, person: str, found: dict, rig: str):
    """The armature to export for ``person`` on ``rig`` ('skeleton' | 'mixamo' | 'rigify' |
    a .blend file's path)."""
    source = found.get("animation")
    if rig == "skeleton":
        if source is not None:
            return source
        log.warning("export: %s has no animation skeleton in this build: exporting its OpenSim skeleton", person)
        return found["opensim"]
    if source is None:
        raise OpenKinError(f"{person} has no animation skeleton to retarget from",
                           fix="import the capture with the animation skeleton (Character panel), "
                               "or export --rig skeleton")
    try:
        from ..retarget import retarget
    except ImportError:
        raise OpenKinError("this build of the add-on has no retargeting", fix="export --rig skeleton") from None
    if rig in ("mixamo", "rigify"):
        target = rig
    elif str(rig).lower().endswith(".blend"):
        target = load_blend_armature(context, Path(rig))
    else:
        raise OpenKinError(f"unknown rig {rig!r}", fix="use skeleton, mixamo, rigify or a .blend file")
    return retarget(context, source, target, deform=True)

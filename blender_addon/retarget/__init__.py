"""Retargeting OpenKin's animation skeleton onto characters: a Rigify rig generated from the
human metarig, Mixamo-named skeletons, or any humanoid armature through an automatic bone map
(names and topology) that the user can edit and save as a JSON preset.

``retarget(context, source, target)`` → the target armature with one new action of keys.
Modules: :mod:`.names` + :mod:`.bonemap` (bpy-free bone map), :mod:`.solve` (array maths),
:mod:`.core` (sampling the source, solving), :mod:`.bake` (keys; Rigify), :mod:`.targets`,
:mod:`.presets`, :mod:`.metrics`.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from openkin.errors import OpenKinError

from .bonemap import BoneMap
from .core import (auto_bone_map, bone_map_of, sample_source, solve_take, source_map, store_bone_map, sub_skeleton,
                   world_rest)
from .presets import load_preset, save_preset
from .targets import build_mixamo, build_rigify

__all__ = ["retarget", "auto_bone_map", "bone_map_of", "store_bone_map", "BoneMap", "save_preset", "load_preset", "build_mixamo",
           "build_rigify", "last_result"]
log = logging.getLogger(__name__)
_LAST: dict = {}


def retarget(context, source_obj, target="rigify", *, bone_map: BoneMap | None = None, lock_feet: bool = True,
             root_at_origin: bool = False, deform: bool = False, hips_scale: str = "legs"):
    """Retarget ``source_obj``'s action (OpenKin's humanoid bones, or any humanoid the automatic
    map reads) onto ``target``: ``"rigify"`` / ``"mixamo"`` (built first) or an armature object.

    Rotations are transferred with per-bone rest-offset compensation (world bone directions
    follow the source's, whatever the rest pose: T or A), the hips path is scaled (``hips_scale``:
    ``"legs"``, the default, by the leg-length ratio so strides fit the legs; ``"height"`` by the
    height ratio), the feet are put on the floor and, with ``lock_feet``, held still during
    contacts (the hips take the contact feet's mean correction, analytic two-bone leg IK the rest). The result is one new action named ``<source action>_<target>``
    of keys only (no constraints left). ``root_at_origin`` starts the path at the world origin;
    ``deform`` (Rigify) also keys the DEF bones and removes their constraints. Without
    ``bone_map``, the map stored on the target (:func:`store_bone_map`) or the automatic one.
    Returns the target armature object.
    """
    from . import bake

    t0 = time.perf_counter()
    if source_obj is None or source_obj.type != "ARMATURE":
        raise OpenKinError(f"'{getattr(source_obj, 'name', source_obj)}' is not an armature",
                           fix="pick OpenKin's animation armature as the retarget source")
    src_bones = source_map(source_obj)
    take = sample_source(context, source_obj, src_bones)
    obj = _target(context, target)
    rigify = bake.is_rigify_rig(obj)
    if rigify and bone_map is None:
        bone_map = BoneMap({h: o for h, o in bake.RIGIFY_ORG.items() if o in obj.data.bones}, [], obj.name, "rigify")
    bone_map = bone_map or bone_map_of(obj)
    bone_map.armature = bone_map.armature or obj.name
    bone_map.require(list(obj.data.bones.keys()))
    names, parents, rest = world_rest(obj)
    skel_tails = _world_tails(obj)
    if rigify:  # the ORG skeleton alone, its spine chained as the humanoid's (Rigify chains it via tweaks)
        names, parents, sel = sub_skeleton(names, parents, [n for n in names if n.startswith("ORG-")],
                                           _logical_parents(bone_map.bones))
        rest, skel_tails = rest[sel], skel_tails[sel]
    height = _height(skel_tails, rest)
    result = solve_take(take, names, parents, rest, skel_tails, bone_map.bones, height,
                        lock_feet=lock_feet, root_at_origin=root_at_origin, hips_scale=hips_scale)
    action_name = f"{take.action}_{obj.name}"
    if rigify:
        action = bake.bake_rigify(context, obj, result, take.frames, action_name, deform)
    else:
        keyed = [bone_map.bones[h] for h in bone_map.bones if h in take.world]
        action = bake.bake_plain(obj, result, take.frames, action_name, keyed, bone_map.bones["hips"])
    _LAST.update(take=take, result=result, bone_map=bone_map, target=obj.name, action=action.name,
                 seconds=time.perf_counter() - t0)
    log.info("retargeted %s (%d frames) onto %s in %.2f s", take.action, len(take.frames), obj.name,
             _LAST["seconds"])
    return obj


def last_result() -> dict:
    """What the last :func:`retarget` computed (take, result, bone_map, action, seconds): for
    measurements and reports."""
    return dict(_LAST)


def _target(context, target):
    if isinstance(target, str):
        if target == "rigify":
            return build_rigify(context)
        if target == "mixamo":
            return build_mixamo(context)
        raise OpenKinError(f"unknown retarget target '{target}'",
                           fix="use 'rigify', 'mixamo' or an armature object")
    if getattr(target, "type", None) != "ARMATURE":
        raise OpenKinError(f"'{getattr(target, 'name', target)}' is not an armature",
                           fix="pick an armature object as the retarget target")
    return target


def _world_tails(obj) -> np.ndarray:
    mw = np.array(obj.matrix_world)
    tails = np.array([tuple(b.tail_local) for b in obj.data.bones]).reshape(-1, 3)
    return (np.c_[tails, np.ones(len(tails))] @ mw.T)[:, :3]


def _height(tails: np.ndarray, rest: np.ndarray) -> float:
    """A skeleton's standing height: lowest to highest bone head or tail (rest pose, world)."""
    z = np.r_[tails[:, 2], rest[:, 2, 3]]
    return float(np.ptp(z))


def _logical_parents(bones: dict[str, str]) -> dict[str, str]:
    """Target bone → the target bone of its humanoid parent (for rigs whose deform chain is not
    parented bone to bone)."""
    from openkin.character.humanoid import PARENT

    out = {}
    for h, b in bones.items():
        p = PARENT.get(h)
        while p is not None and p not in bones:
            p = PARENT.get(p)
        if p is not None:
            out[b] = bones[p]
    return out

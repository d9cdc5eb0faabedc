"""The animation armature: OpenKin's humanoid skeleton (``openkin.character``) next to the OpenSim one.

API (retargeting and export call these)::

    obj = build_animation_skeleton(context, person, collection, rest="T", root_bone=True, trial="trial")
    objs = animation_armatures(scene)          # every animation armature in the scene

``person`` is a :class:`..core.capture.Person` with its OpenSim model and motion loaded
(``person.model.path``, ``person.mot_path``, ``person.motion_frames``). The armature object
(named ``"<person> animation"``, at the identity: the skeleton stays in the capture's world)
carries ``obj["openkin_role"] = "animation"``, ``obj["openkin_person"]``, ``obj["openkin_rest"]``
("T"/"A") and ``obj["openkin_motion_bone"]`` ("root"/"hips"). Blender conventions: Z up,
facing -Y at rest, ``.L``/``.R`` names, mirror-symmetric rolls, quaternion rotations.

One action per take and person, ``"<trial>_<person>"`` (trial = the project folder's name):
rotation keys on every bone, location keys only on the motion bone, and the feet's contacts
as custom property curves ``["contact_L"]``/``["contact_R"]`` (0/1, constant interpolation)
that game engines read. No constraints.
"""
from __future__ import annotations

import logging

import bpy
import numpy as np

from . import anim

log = logging.getLogger(__name__)

ROLE = "animation"
CONSTANT = 0              # BEZT_IPO_CONST
CONNECT_TOLERANCE = 1e-6  # metres: a head this close to its parent's tail is connected


def animation_armatures(scene) -> list:
    """The animation armatures (``openkin_role == "animation"``) of ``scene``."""
    return [o for o in scene.objects if o.type == "ARMATURE" and o.get("openkin_role") == ROLE]


def action_name(trial: str, person: str) -> str:
    """``<trial>_<person>``."""
    return f"{trial}_{person}"


def skeleton_for(person, *, rest: str = "T", root_bone: bool = True):
    """The engine's :class:`~openkin.character.skeleton.AnimationSkeleton` of ``person`` (no scene change)."""
    from openkin.character.skeleton import animation_skeleton

    return animation_skeleton(person.model.path, person.mot_path, rest=rest, root_bone=root_bone)


def build_animation_skeleton(context, person, collection, *, rest: str = "T", root_bone: bool = True,
                             trial: str | None = None, skeleton=None, contacts: bool = True,
                             smooth_hz: float | None = None, key_tolerance: float | None = None):
    """Build ``person``'s animation armature into ``collection``; returns the armature object.

    ``skeleton``: an engine skeleton already computed (else computed here); ``smooth_hz``:
    low-pass the rotations (quaternion-safe) at this cut-off; ``key_tolerance``: drop keys that
    linear interpolation reproduces within this (quaternion component / metres)."""
    from openkin.character import cleanup

    sk = skeleton if skeleton is not None else skeleton_for(person, rest=rest, root_bone=root_bone)
    frames = np.asarray(person.motion_frames, float)
    rotations = sk.rotations
    if smooth_hz:
        rotations = cleanup.smooth_rotations(rotations, _rate(sk.times), smooth_hz)
    trial = trial or "capture"
    name = f"{person.name} animation"
    data = bpy.data.armatures.new(name)
    data.display_type = "OCTAHEDRAL"
    obj = bpy.data.objects.new(name, data)
    obj["openkin_role"] = ROLE
    obj["openkin_person"] = person.name
    obj["openkin_rest"] = sk.rest_pose
    obj["openkin_motion_bone"] = sk.motion_bone
    collection.objects.link(obj)
    _edit_bones(context, obj, sk)
    write_motion(obj, sk, frames, rotations, anim.new_action(action_name(trial, person.name)), contacts=contacts,
                 key_tolerance=key_tolerance)
    return obj


def write_motion(obj, sk, frames: np.ndarray, rotations: np.ndarray, action, *, contacts: bool = True,
                 key_tolerance: float | None = None):
    """Key ``sk``'s motion on the animation armature ``obj`` into ``action`` (a slot for ``obj``):
    rotations ``(F,N,4)`` of every bone, the motion bone's location, the contact curves. Also what
    a session's other takes write on the first take's armature (:mod:`.takes`). Returns ``action``."""
    from openkin.character.contacts import foot_contacts

    bag = anim.channelbag_for(action, obj)
    for b, bone in enumerate(sk.names):
        obj.pose.bones[bone].rotation_mode = "QUATERNION"
        path = f'pose.bones["{bone}"]'
        _write(bag, f"{path}.rotation_quaternion", frames, rotations[:, b], bone, key_tolerance)
    _write(bag, f'pose.bones["{sk.motion_bone}"].location', frames, sk.location, sk.motion_bone, key_tolerance)
    if contacts:
        found = foot_contacts(sk.landmarks, sk.times)
        for side, on in found.items():
            key = f"contact_{side}"
            obj[key] = float(on[0]) if len(on) else 0.0
            for fc in anim.write_channels(bag, f'["{key}"]', frames, on.astype(float)[:, None], group="contacts"):
                fc.keyframe_points.foreach_set("interpolation", np.full(len(fc.keyframe_points), CONSTANT, np.int32))
                fc.update()
    return action


def _rate(times: np.ndarray) -> float:
    dt = np.diff(times)
    return float(1.0 / np.median(dt)) if len(dt) else 1.0


def _write(bag, data_path: str, frames: np.ndarray, values: np.ndarray, group: str, tolerance: float | None) -> None:
    if not tolerance:
        anim.write_channels(bag, data_path, frames, values, group=group)
        return
    from openkin.character.cleanup import reduce_keys

    keep = reduce_keys(frames, values, tolerance)
    anim.write_channels(bag, data_path, frames[keep], values[keep], group=group)


def _edit_bones(context, obj, sk) -> None:
    from .armature import add_edit_bones, edit_mode

    connect = [p >= 0 and bool(np.linalg.norm(sk.heads[b] - sk.tails[p]) < CONNECT_TOLERANCE)
               for b, p in enumerate(sk.parents)]
    with edit_mode(context, obj):
        add_edit_bones(obj, sk.names, sk.parents, sk.heads, sk.tails, sk.z_axes, connect)


def build_for_import(context, person, collection, trial: str, *, rest: str = "T", root_bone: bool = True):
    """The import's call: the animation armature, or None (with a warning) when the model is not a
    humanoid the engine can map (the OpenSim skeleton is still built)."""
    from openkin.errors import OpenKinError

    if getattr(person, "mot_path", None) is None:
        return None
    try:
        sk = skeleton_for(person, rest=rest, root_bone=root_bone)
    except OpenKinError as e:
        log.warning("no animation skeleton for %s: %s", person.name, e)
        return None
    return build_animation_skeleton(context, person, collection, rest=rest, root_bone=root_bone, trial=trial,
                                    skeleton=sk)

"""A session as takes in one scene: one skeleton action, one markers action and one animation-skeleton
action (``<trial>_<person>``) per take and person, named after the trial, and switching between them.

:func:`import_session` imports the session's first trial with the project importer
(:func:`.build.import_files`: cameras, markers, the armature, bone meshes); every other trial is
read with the same reader (:func:`..core.capture.load_capture`) and becomes actions only,
``"<trial> <person> skeleton"`` and ``"<trial> <person> markers"``, on the same objects (kept with
a fake user, so that an action not shown survives saving). :func:`set_take` assigns a take's
actions to the armature and the marker objects and sets the scene's frame range. The takes are
recorded on the scene (``scene["openkin_takes"]``, JSON) for the panel (:mod:`..takes_panel`).

The armature's rest pose is the first take's scaled model: another take's skeleton action
moves each bone onto that take's body frames (the bone keeps its offset from its body as in the
first take), so every take's bodies are placed exactly; only the bone lengths drawn (and the
bone meshes) are the first take's. Cameras show the first take's videos.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import bpy
import numpy as np

from ..core import capture as capture_mod
from ..core import rig
from . import anim
from .build import BuildOptions, import_files, opensim_log_dir

log = logging.getLogger(__name__)

TAKES_KEY = "openkin_takes"      # scene ID property: JSON list of takes (see read_takes)
CURRENT_KEY = "openkin_take"     # scene ID property: the take shown


def session_trials(session: str | Path) -> list[tuple[str, Path]]:
    """``(name, folder)`` of the session's trials (the engine's rule, :func:`openkin.batch.find_trials`)."""
    from openkin.batch import find_trials

    return [(t.name, t.path) for t in find_trials(session)]


def import_session(context, session: str | Path, options: BuildOptions, progress=None) -> tuple[list[dict], list[str]]:
    """Import every trial of ``session`` with results as takes; show the first. Returns the takes
    (see :func:`read_takes`) and warnings (trials without results, people not in the first take)."""
    from openkin.errors import OpenKinError

    warnings: list[str] = []
    found = []
    for name, folder in session_trials(session):
        try:
            files = capture_mod.find_project(folder)
        except OpenKinError as e:
            warnings.append(f"{name}: not imported ({e.problem})")
            continue
        if files.people:
            found.append((name, files))
        else:
            warnings.append(f"{name}: no results (pose-3d, kinematics) to import")
    if not found:
        raise OpenKinError("no trial of this session has results to import", path=Path(session),
                           fix="run the session first: `openkin batch SESSION`")
    (first_name, first_files), rest = found[0], found[1:]
    top, cap0 = import_files(context, first_files, options)
    people = _people_objects(top, cap0)
    takes = [_first_take(first_name, cap0, people)]
    for name, files in rest:
        cap = capture_mod.load_capture(files, opensim_log_dir=opensim_log_dir(files, options))
        takes.append(_take(name, cap, cap0, people, warnings))
    context.scene[TAKES_KEY] = json.dumps(takes)
    set_take(context.scene, takes[0]["name"])
    return takes, warnings + list(cap0.warnings)


def _people_objects(top, cap) -> list[dict]:
    """Per person of ``cap``: its armature object (or None) and marker objects by marker name."""
    objs = list(top.all_objects)
    out = []
    from .character import ROLE

    for person in cap.people:
        mine = [o for o in objs if o.get("openkin_person") == person.name]
        arm = next((o for o in mine if o.type == "ARMATURE" and o.get("openkin_role") != ROLE), None)
        animation = next((o for o in mine if o.type == "ARMATURE" and o.get("openkin_role") == ROLE), None)
        out.append({"armature": arm, "animation": animation,
                    "markers": {o["openkin_marker"]: o for o in mine if "openkin_marker" in o}})
    return out


def _action_of(obj):
    ad = obj.animation_data if obj is not None else None
    return ad.action if ad is not None else None


def _first_take(name: str, cap, people: list[dict]) -> dict:
    """The first take: the actions the importer made, renamed after the trial."""
    entries = []
    for person, objs in zip(cap.people, people):
        skeleton, markers = _action_of(objs["armature"]), _action_of(next(iter(objs["markers"].values()), None))
        for action, kind in ((skeleton, "skeleton"), (markers, "markers")):
            if action is not None:
                action.name = f"{name} {person.name} {kind}"
                action.use_fake_user = True
        animation = _action_of(objs["animation"])
        if animation is not None:
            from .character import action_name

            animation.name = action_name(name, person.name)   # the trial's path in the session
            animation.use_fake_user = True
        entries.append(_entry(person.name, objs, skeleton, markers, animation))
    return {"name": name, "frame_range": list(cap.frame_range), "people": entries}


def _entry(person: str, objs: dict, skeleton, markers, animation=None) -> dict:
    return {"person": person, "armature": objs["armature"].name if objs["armature"] else None,
            "skeleton_action": skeleton.name if skeleton else None,
            "markers": sorted(o.name for o in objs["markers"].values()),
            "markers_action": markers.name if markers else None,
            "animation": objs["animation"].name if objs.get("animation") else None,
            "animation_action": animation.name if animation else None}


def _take(name: str, cap, cap0, people: list[dict], warnings: list[str]) -> dict:
    """Actions of one more take on the first take's objects (people matched in order)."""
    entries = []
    for i, person in enumerate(cap.people):
        if i >= len(people):
            warnings.append(f"{name}: {person.name} has no counterpart in the first take: not imported")
            continue
        objs = people[i]
        skeleton = _skeleton_action(f"{name} {person.name} skeleton", person, cap0.people[i], objs["armature"],
                                    warnings)
        markers = _markers_action(f"{name} {person.name} markers", person, objs["markers"], warnings)
        animation = _animation_action(name, person, objs.get("animation"), warnings)
        entries.append(_entry(person.name, objs, skeleton, markers, animation))
    return {"name": name, "frame_range": list(cap.frame_range), "people": entries}


def _new_action(name: str):
    action = anim.new_action(name)
    action.use_fake_user = True
    return action


def _bag(action, id_type: str, slot_name: str):
    slot = action.slots.new(id_type=id_type, name=slot_name)
    return action.layers[0].strips[0].channelbag(slot, ensure=True)


def _skeleton_action(name: str, person, first, arm, warnings: list[str]):
    """The skeleton motion of ``person`` on the first take's armature ``arm`` (see the module doc)."""
    if arm is None or person.body_frames is None:
        return None
    if person.model.body_names != first.model.body_names:
        warnings.append(f"{name}: its model's bodies differ from the first take's: no skeleton motion")
        return None
    names, parents = first.model.body_names, first.model.parents
    bone_rest = np.stack([np.array(arm.data.bones[n].matrix_local) for n in names])
    loc, quat = rig.loc_quat(rig.pose_channels(person.body_frames, first.rest_frames, bone_rest, parents))
    action = _new_action(name)
    bag = _bag(action, "OBJECT", arm.name)
    for b, bone in enumerate(names):
        path = f'pose.bones["{bone}"]'
        anim.write_channels(bag, f"{path}.location", person.motion_frames, loc[:, b], group=bone)
        anim.write_channels(bag, f"{path}.rotation_quaternion", person.motion_frames, quat[:, b], group=bone)
    return action


def _animation_action(trial: str, person, obj, warnings: list[str]):
    """This take's motion on the first take's animation armature ``obj``, as action
    ``<trial>_<person>``: rotations relative to the same T or A rest pose, so they apply as they
    are; the motion bone's path is this take's."""
    from openkin.errors import OpenKinError

    from .character import action_name, skeleton_for, write_motion

    if obj is None or getattr(person, "mot_path", None) is None:
        return None
    try:
        sk = skeleton_for(person, rest=obj.get("openkin_rest", "T"),
                          root_bone=obj.get("openkin_motion_bone", "root") == "root")
    except OpenKinError as e:
        warnings.append(f"{trial}: {person.name}: no animation skeleton ({e.problem})")
        return None
    action = _new_action(action_name(trial, person.name))
    return write_motion(obj, sk, np.asarray(person.motion_frames, float), sk.rotations, action)


def _markers_action(name: str, person, objects: dict, warnings: list[str]):
    """One slot per marker object (named after its marker) with its locations in this take."""
    if person.markers is None or not objects:
        return None
    missing = [m for m in objects if m not in person.marker_names]
    if missing:
        warnings.append(f"{name}: markers {', '.join(missing)} not in this take: they keep no motion")
    action = _new_action(name)
    for marker in objects:
        if marker in person.marker_names:
            bag = _bag(action, "OBJECT", marker)
            anim.write_channels(bag, "location", person.marker_frames,
                                person.markers[:, person.marker_names.index(marker)], group=marker)
    return action


# ------------------------------------------------------------------ switching
def read_takes(scene) -> list[dict]:
    """The scene's takes: ``[{"name", "frame_range": [start, end], "people": [{"person", "armature",
    "skeleton_action", "markers", "markers_action", "animation", "animation_action"}]}]`` ([] when
    none; "animation": the animation skeleton, its action ``<trial>_<person>``)."""
    text = scene.get(TAKES_KEY)
    return json.loads(text) if text else []


def current_take(scene) -> str:
    return scene.get(CURRENT_KEY, "")


def _assign(obj, action, slot_name: str | None) -> None:
    """Show ``action`` on ``obj`` through its slot ``slot_name`` (the first slot when None)."""
    if obj is None or action is None:
        return
    slot = action.slots[0] if slot_name is None else next(
        (s for s in action.slots if s.name_display == slot_name), None)
    ad = obj.animation_data or obj.animation_data_create()
    ad.action = action
    if slot is not None:
        ad.action_slot = slot


def set_take(scene, name: str) -> dict:
    """Show take ``name``: its actions on the armatures and markers, its frame range. KeyError when
    the scene has no such take."""
    take = next((t for t in read_takes(scene) if t["name"] == name), None)
    if take is None:
        raise KeyError(name)
    for p in take["people"]:
        _assign(bpy.data.objects.get(p["armature"] or ""), bpy.data.actions.get(p["skeleton_action"] or ""), None)
        _assign(bpy.data.objects.get(p.get("animation") or ""), bpy.data.actions.get(p.get("animation_action") or ""),
                None)
        markers = bpy.data.actions.get(p["markers_action"] or "")
        for obj_name in p["markers"]:
            obj = bpy.data.objects.get(obj_name)
            if obj is not None:
                _assign(obj, markers, obj.get("openkin_marker"))
    scene.frame_start, scene.frame_end = take["frame_range"]
    scene.frame_set(max(scene.frame_start, min(scene.frame_current, scene.frame_end)))
    scene[CURRENT_KEY] = name
    return take

"""A clean, baked copy of one character's take: the armature every exporter writes.

Exporters of Blender read the scene as it is: every action in the file (FBX's "all actions"
takes the markers' action), the object's transform (BVH ignores it), constraints and drivers
(Rigify), the scene's frame range and fps. :func:`bake_take` makes a temporary scene holding
one armature whose bones follow the source's bones exactly (their world matrices, evaluated
through the depsgraph frame by frame), keyed on every frame with location + quaternion, at
an identity object transform, with one action, the take's frame range and fps. It can be laid
out in another frame (``space``, e.g. Y-up for BVH) and shifted in time (``frame_shift``,
e.g. FBX's one-frame import offset). Nothing of the user's scene is changed.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix

from ..core.rig import loc_quat
from ..scene import anim
from ..scene.armature import add_edit_bones
from openkin.progress import report

log = logging.getLogger(__name__)


@dataclass
class Take:
    """What to export: ``armature`` (object) over scene frames ``start..end`` at ``fps``."""
    armature: object
    start: int
    end: int
    fps: float
    name: str
    bones: list[str] | None = None   # bones to keep (default: deform bones, or all when none deform)
    object_name: str = ""            # the exported armature's name (default: the source's)

    def __post_init__(self):
        self.object_name = self.object_name or self.armature.name

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.start, self.end + 1)


def take_of(scene, armature, name: str | None = None, frame_range: tuple[int, int] | None = None,
            deform_only: bool = True) -> Take:
    """The take of ``armature``: its action's frame range (else the scene's), the scene's fps,
    named after the action (else the object)."""
    action = armature.animation_data.action if armature.animation_data else None
    if frame_range is None:
        if action is not None:
            a, b = action.frame_range
            frame_range = (int(round(a)), int(round(b)))
        else:
            frame_range = (scene.frame_start, scene.frame_end)
    fps = scene.render.fps / scene.render.fps_base
    bones = [b.name for b in armature.data.bones if b.use_deform] if deform_only else []
    return Take(armature, int(frame_range[0]), int(frame_range[1]), fps,
                name or (action.name if action is not None else armature.name), bones or None)


def _rigid(m: np.ndarray) -> np.ndarray:
    """(..., 4, 4) → the same with unit-length, orthogonal rotation columns (scale removed)."""
    out = m.copy()
    u, _, vt = np.linalg.svd(m[..., :3, :3])
    r = u @ vt
    flip = np.linalg.det(r) < 0
    if np.any(flip):
        u[flip, :, -1] *= -1
        r = u @ vt
    out[..., :3, :3] = r
    return out


def _kept_parents(armature, bones: list[str]) -> list[int]:
    """Index in ``bones`` of each bone's nearest kept ancestor (-1: none)."""
    index = {n: i for i, n in enumerate(bones)}
    out = []
    for n in bones:
        p = armature.data.bones[n].parent
        while p is not None and p.name not in index:
            p = p.parent
        out.append(index[p.name] if p is not None else -1)
    return out


def _order(bones: list[str], armature) -> list[str]:
    """``bones`` in the armature's order (parents before children)."""
    keep = set(bones)
    return [b.name for b in armature.data.bones if b.name in keep]


class Sampler:
    """World matrices (F, B, 4, 4) of a take's bones on each of its frames, from the
    depsgraph-evaluated pose (constraints, drivers, NLA included), sampled a few frames at a
    time (:meth:`step`) so a modal operator can show progress and cancel between steps."""

    def __init__(self, context, take: Take):
        self.context, self.take = context, take
        arm = take.armature
        names = take.bones or [b.name for b in arm.data.bones]
        self.index = np.array([arm.pose.bones.find(n) for n in names])
        self.world = np.empty((len(take.frames), len(names), 4, 4))
        self.buf = np.empty(len(arm.pose.bones) * 16, np.float32)
        self.done = 0

    @property
    def fraction(self) -> float:
        return self.done / len(self.take.frames)

    def step(self, count: int = 50) -> float:
        """Sample the next ``count`` frames (the scene's current frame is put back); returns the fraction done."""
        scene = self.context.scene
        keep = scene.frame_current, scene.frame_subframe
        try:
            for i in range(self.done, min(self.done + count, len(self.take.frames))):
                scene.frame_set(int(self.take.frames[i]))
                ev = self.take.armature.evaluated_get(self.context.evaluated_depsgraph_get())
                ev.pose.bones.foreach_get("matrix", self.buf)
                mats = self.buf.reshape(-1, 4, 4).transpose(0, 2, 1)[self.index]   # column-major in Blender
                self.world[i] = np.array(ev.matrix_world) @ mats
                self.done = i + 1
        finally:
            scene.frame_set(keep[0], subframe=keep[1])
        return self.fraction


def sample_world(context, take: Take, progress=None) -> np.ndarray:
    """World matrices (F, B, 4, 4) of ``take``'s bones on each of its frames (:class:`Sampler`)."""
    sampler = Sampler(context, take)
    while sampler.fraction < 1:
        report(progress, sampler.step(100), f"sampling {take.name}: frame {sampler.done}/{len(take.frames)}")
    return sampler.world


def rest_world(take: Take) -> np.ndarray:
    """(B, 4, 4) rest matrices of the take's bones in the world."""
    arm = take.armature
    names = take.bones or [b.name for b in arm.data.bones]
    w = np.array(arm.matrix_world)
    return np.stack([w @ np.array(arm.data.bones[n].matrix_local) for n in names])


@contextmanager
def names_free(take: Take):
    """Rename the source armature (object and data) aside while the baked copy is made, so
    the copy gets the plain names (no ``.001``) in the file."""
    obj, data = take.armature, take.armature.data
    old = obj.name, data.name
    obj.name, data.name = old[0] + "~export", old[1] + "~export"
    try:
        yield
    finally:
        obj.name, data.name = old


@contextmanager
def temporary_scene(name: str, fps: float):
    """A new scene (removed afterwards with everything made in it) at ``fps``."""
    scene = bpy.data.scenes.new(name)
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps
    before = {k: set(getattr(bpy.data, k)[:]) for k in ("objects", "armatures", "actions", "meshes")}
    try:
        yield scene
    finally:
        bpy.data.scenes.remove(scene)
        for k, old in before.items():
            data = getattr(bpy.data, k)
            for block in [b for b in data if b not in old]:
                data.remove(block)


def build_baked(context, scene, take: Take, world: np.ndarray, space: Matrix | None = None,
                frame_shift: int = 0, name: str | None = None):
    """An armature in ``scene`` whose bones follow ``world`` (F, B, 4, 4), laid out by
    ``space`` (4x4, world → export frame), keyed at the take's frames + ``frame_shift``.
    Returns the object (active and selected in ``scene``)."""
    src = take.armature
    names = _order(take.bones or [b.name for b in src.data.bones], src)
    order = [(take.bones or [b.name for b in src.data.bones]).index(n) for n in names]
    world = world[:, order]
    parents = _kept_parents(src, names)
    s = np.array(space) if space is not None else np.eye(4)
    rest = s @ rest_world(Take(src, 0, 0, 1, "", names))     # (B, 4, 4) in the export frame, maybe scaled
    lengths = np.array([src.data.bones[n].length for n in names]) * np.linalg.norm(rest[:, :3, 1], axis=1)
    rest = _rigid(rest)
    pose = _rigid(s[None, None] @ world)
    data = bpy.data.armatures.new(name or take.object_name)
    obj = bpy.data.objects.new(name or take.object_name, data)
    scene.collection.objects.link(obj)
    _edit_bones(context, scene, obj, names, parents, rest, lengths)
    bone_rest = np.stack([np.array(data.bones[n].matrix_local) for n in names])
    par = np.asarray(parents)
    parent_rest = np.where((par >= 0)[:, None, None], bone_rest[np.maximum(par, 0)], np.eye(4))
    parent_pose = np.where((par >= 0)[None, :, None, None], pose[:, np.maximum(par, 0)], np.eye(4))
    # Blender: pose_b = pose_p (rest_p⁻¹ rest_b) basis_b  →  basis_b = rest_b⁻¹ rest_p pose_p⁻¹ pose_b
    basis = np.linalg.inv(bone_rest)[None] @ parent_rest[None] @ np.linalg.inv(parent_pose) @ pose
    loc, quat = loc_quat(basis)
    action = anim.new_action(take.name)
    bag = anim.channelbag_for(action, obj)
    frames = take.frames + frame_shift
    for b, n in enumerate(names):
        obj.pose.bones[n].rotation_mode = "QUATERNION"
        path = f'pose.bones["{n}"]'
        anim.write_channels(bag, f"{path}.location", frames, loc[:, b], group=n)
        anim.write_channels(bag, f"{path}.rotation_quaternion", frames, quat[:, b], group=n)
    scene.frame_start, scene.frame_end = int(frames[0]), int(frames[-1])
    scene.frame_current = int(frames[0])
    for o in scene.objects:
        o.select_set(o == obj, view_layer=scene.view_layers[0])
    scene.view_layers[0].objects.active = obj
    return obj


def _edit_bones(context, scene, obj, names, parents, rest: np.ndarray, lengths: np.ndarray) -> None:
    with context.temp_override(scene=scene, view_layer=scene.view_layers[0], active_object=obj, object=obj):
        scene.view_layers[0].objects.active = obj
        bpy.ops.object.mode_set(mode="EDIT")
        try:
            heads = rest[:, :3, 3]
            tails = heads + rest[:, :3, 1] * np.maximum(np.asarray(lengths, float), 1e-3)[:, None]
            add_edit_bones(obj, names, parents, heads, tails, rest[:, :3, 2])
        finally:
            bpy.ops.object.mode_set(mode="OBJECT")


def build_joints(scene, take: Take, world: np.ndarray, armature) -> list:
    """One empty per bone of ``armature`` (built by :func:`build_baked` from ``world``), in a
    hierarchy like the bones', each keyed with its bone's head place and orientation on every
    frame. For formats without armatures (Alembic). Returns the empties, parents first."""
    src = take.armature
    all_names = take.bones or [b.name for b in src.data.bones]
    names = [b.name for b in armature.data.bones]
    world = _rigid(world[:, [all_names.index(n) for n in names]])
    parents = [names.index(b.parent.name) if b.parent else -1 for b in armature.data.bones]
    par = np.asarray(parents)
    parent_world = np.where((par >= 0)[None, :, None, None], world[:, np.maximum(par, 0)], np.eye(4))
    local = np.linalg.inv(parent_world) @ world
    loc, quat = loc_quat(local)
    empties = []
    for b, n in enumerate(names):
        e = bpy.data.objects.new(n, None)
        e.empty_display_type = "ARROWS"
        e.empty_display_size = 0.05
        scene.collection.objects.link(e)
        if parents[b] >= 0:
            e.parent = empties[parents[b]]
        e.rotation_mode = "QUATERNION"
        action = anim.new_action(f"{take.name} {n}")
        bag = anim.channelbag_for(action, e)
        anim.write_channels(bag, "location", take.frames, loc[:, b])
        anim.write_channels(bag, "rotation_quaternion", take.frames, quat[:, b])
        empties.append(e)
    return empties

"""Retarget fidelity measured on what Blender evaluates (not on the solver's arrays): joint
positions after scaling by the height ratio, limb directions, foot slide during contacts."""
from __future__ import annotations

import numpy as np

from . import solve
from .core import CHILD, LIMBS

# a Rigify rig is measured on its DEF bones (what a game engine gets)
RIGIFY_DEF = {"hips": "DEF-spine", "spine": "DEF-spine.001", "spine.001": "DEF-spine.002",
              "spine.002": "DEF-spine.003", "neck": "DEF-spine.004", "head": "DEF-spine.006"}
for _s in "LR":
    RIGIFY_DEF.update({f"{b}.{_s}": f"DEF-{b}.{_s}" for b in
                       ("shoulder", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe")})


def joint_tracks(context, obj, bones: dict[str, str], frames) -> dict[str, np.ndarray]:
    """World positions of the heads of ``bones`` (humanoid → bone) on ``frames``: {humanoid: (F, 3)}."""
    scene = context.scene
    keep = scene.frame_current
    names = [b.name for b in obj.pose.bones]
    idx = [names.index(bones[h]) for h in bones]
    buf = np.empty(len(names) * 3, np.float32)
    out = np.empty((len(frames), len(idx), 3))
    mw = np.array(obj.matrix_world)
    for f_i, f in enumerate(frames):
        scene.frame_set(int(f))
        obj.pose.bones.foreach_get("head", buf)
        p = buf.reshape(-1, 3)[idx]
        out[f_i] = p @ mw[:3, :3].T + mw[:3, 3]
    scene.frame_set(keep)
    return {h: out[:, i] for i, h in enumerate(bones)}


def measure(context, source_obj, src_bones: dict, target_obj, tgt_bones: dict, result, take) -> dict:
    """Fidelity of a retarget: per humanoid joint the mean/max distance (m, source scale)
    between the target's joint brought back by the height ratio and the source's (``joints``:
    world; ``joints_local``: relative to the hips, the pose without the path); per limb the
    max angle (°) between target and source segment directions over all frames; per foot the
    slide (m) of the ankle in each contact on the target and on the source."""
    common = [h for h in tgt_bones if h in src_bones]
    src = joint_tracks(context, source_obj, {h: src_bones[h] for h in common}, take.frames)
    tgt = joint_tracks(context, target_obj, {h: tgt_bones[h] for h in common}, take.frames)
    back = {h: (tgt[h] - result.shift) / result.scale + result.origin for h in common}
    joints = {h: _mean_max(back[h] - src[h]) for h in common}
    local = {h: _mean_max((tgt[h] - tgt["hips"]) / result.scale - (src[h] - src["hips"])) for h in common}
    limbs = {}
    for h in LIMBS:
        c = CHILD.get(h)
        if h in common and c in common:
            limbs[h] = float(solve.angle_deg(tgt[c] - tgt[h], src[c] - src[h]).max())
    slide = {}
    for side in "LR":
        key = f"foot.{side}"
        if key in common and side in take.contacts:
            slide[side] = {"target": solve.slide_per_contact(tgt[key], take.contacts[side]),
                           "source": solve.slide_per_contact(src[key], take.contacts[side])}
    return {"joints": joints, "joints_local": local, "limbs": limbs, "slide": slide}


def _mean_max(d: np.ndarray) -> tuple[float, float]:
    n = np.linalg.norm(d, axis=1)
    return float(n.mean()), float(n.max())

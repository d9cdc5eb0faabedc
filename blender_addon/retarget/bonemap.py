"""The bone map: OpenKin humanoid bone → target armature bone, found from names, then topology.

Names first (:mod:`.names`: Mixamo, Rigify DEF/ORG, UE mannequin, Unity humanoid, 3ds Max biped,
``.L``/``_r``/``Left`` sides); bones the names leave unmapped are found from the rest pose
(world space, Z up, facing −Y, left on +X): the hips are where two chains go down (legs) and
one up (spine); the chest is where the spine branches sideways (arms); the spine bones between
hips and neck are spread over ``spine``, ``spine.001``, ``spine.002``. bpy-free: works on a
:class:`RestSkeleton` read from the armature by :func:`rest_skeleton`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from openkin.character.humanoid import NAMES
from openkin.errors import OpenKinError

from . import names as nm

log = logging.getLogger(__name__)

MAPPED = tuple(n for n in NAMES if n != "root")
REQUIRED = ("hips", "head", "upper_arm.L", "forearm.L", "hand.L", "upper_arm.R", "forearm.R", "hand.R",
            "thigh.L", "shin.L", "foot.L", "thigh.R", "shin.R", "foot.R")
EXAMPLES = {"hips": "Hips, pelvis", "spine": "Spine, spine_01", "spine.001": "Spine1, spine_02",
            "spine.002": "Spine2, spine_03, Chest", "neck": "Neck, neck_01", "head": "Head",
            "shoulder": "LeftShoulder, clavicle_l", "upper_arm": "LeftArm, upperarm_l",
            "forearm": "LeftForeArm, lowerarm_l", "hand": "LeftHand, hand_l", "thigh": "LeftUpLeg, thigh_l",
            "shin": "LeftLeg, calf_l", "foot": "LeftFoot, foot_l", "toe": "LeftToeBase, ball_l"}


@dataclass
class RestSkeleton:
    """An armature's rest pose in world space: ``heads``/``tails`` (B, 3), ``parents`` (B,) indices
    (-1 for roots), ``names`` (B,), ``deform`` (B,) bools."""

    names: list[str]
    parents: np.ndarray
    heads: np.ndarray
    tails: np.ndarray
    deform: np.ndarray

    def children(self, i: int) -> list[int]:
        return [int(j) for j in np.flatnonzero(self.parents == i)]

    def depth(self, i: int) -> int:
        d = 0
        while self.parents[i] >= 0:
            i, d = int(self.parents[i]), d + 1
        return d

    def subtree(self, i: int) -> list[int]:
        out, todo = [], [i]
        while todo:
            j = todo.pop()
            out.append(j)
            todo.extend(self.children(j))
        return out

    def height(self) -> float:
        pts = np.vstack([self.heads, self.tails])
        return float(np.ptp(pts[:, 2]))


@dataclass
class BoneMap:
    """``bones``: humanoid name → target bone name; ``missing``: humanoid names left unmapped;
    ``armature``: the target armature's name; ``convention``: how the names were recognised."""

    bones: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    armature: str = ""
    convention: str = "names"

    def to_dict(self) -> dict:
        return {"armature": self.armature, "convention": self.convention, "bones": dict(self.bones)}

    @classmethod
    def from_dict(cls, data: dict) -> BoneMap:
        bones = {str(k): str(v) for k, v in dict(data.get("bones", {})).items() if v}
        unknown = sorted(set(bones) - set(MAPPED))
        if unknown:
            raise OpenKinError(f"unknown humanoid bones in the bone map: {', '.join(unknown)}",
                               fix=f"use OpenKin's humanoid names: {', '.join(MAPPED)}")
        return cls(bones, [n for n in MAPPED if n not in bones], str(data.get("armature", "")),
                   str(data.get("convention", "preset")))

    def require(self, target_bones: list[str] | None = None) -> BoneMap:
        """Raise an OpenKinError listing the required humanoid bones that are unmapped (or mapped
        to bones the armature does not have) and how to map them; else return self."""
        absent = [] if target_bones is None else [h for h, t in self.bones.items() if t not in target_bones]
        missing = [h for h in REQUIRED if h not in self.bones or h in absent]
        if not missing:
            return self
        lines = [f"{h} (e.g. {_example(h)})" for h in missing]
        raise OpenKinError(
            f"armature '{self.armature}' is not humanoid enough to retarget: no bone for "
            + "; ".join(lines),
            fix="map these bones in the OpenKin bone-map panel, or write a preset JSON "
                '{"bones": {"<humanoid bone>": "<your bone>", ...}} (save_preset writes one to edit) '
                "and pass load_preset(path) as bone_map")


def _example(humanoid: str) -> str:
    base, _, side = humanoid.partition(".")
    if humanoid.startswith("spine"):
        return EXAMPLES[humanoid]
    text = EXAMPLES.get(base, base)
    return text.replace("Left", "Right").replace("_l", "_r") if side == "R" else text


def auto_map(skel: RestSkeleton, armature: str = "") -> BoneMap:
    """The bone map of ``skel``: names first, then topology for what names left unmapped."""
    rigify = nm.is_rigify(skel.names)
    bones = _map_by_names(skel, rigify)
    convention = "rigify" if rigify else "names"
    before = len(bones)
    _fill_by_topology(skel, bones)
    if len(bones) > before:
        convention += "+topology"
    missing = [n for n in MAPPED if n not in bones]
    log.info("bone map of %s (%s): %d mapped, missing %s", armature, convention, len(bones), missing)
    return BoneMap({h: skel.names[i] for h, i in bones.items()}, missing, armature, convention)


def _map_by_names(skel: RestSkeleton, rigify: bool) -> dict[str, int]:
    found: dict[str, list[int]] = {}
    for i, name in enumerate(skel.names):
        role, side = nm.classify(name, rigify)
        if role is None:
            continue
        key = f"{role}.{side}" if side else role
        found.setdefault(key, []).append(i)
    bones = {}
    for key, idx in found.items():
        if key == "spine_chain":
            continue  # spread over the spine chain by topology
        # deform bones first, then the one nearest the root
        bones[key] = min(idx, key=lambda i: (not skel.deform[i], skel.depth(i)))
    return bones


def _fill_by_topology(skel: RestSkeleton, bones: dict[str, int]) -> None:
    height = skel.height()
    if "hips" not in bones:
        hips = _find_hips(skel, height)
        if hips is None:
            return
        bones["hips"] = hips
    hips = bones["hips"]
    for side, chain in _legs(skel, hips, height).items():
        for role, i in zip(("thigh", "shin", "foot", "toe"), chain):
            bones.setdefault(f"{role}.{side}", i)
    spine, chest = _spine(skel, hips, bones, height)
    if chest is not None:
        for side, chain in _arms(skel, chest, height).items():
            roles = ("shoulder", "upper_arm", "forearm", "hand") if len(chain) >= 4 else ("upper_arm", "forearm", "hand")
            for role, i in zip(roles, chain):
                bones.setdefault(f"{role}.{side}", i)
        ups = [c for c in skel.children(chest) if _goes(skel, c, height, up=True)]
        if ups:
            neck_chain = _chain(skel, ups[0])
            if len(neck_chain) >= 2:
                bones.setdefault("neck", neck_chain[0])
                bones.setdefault("head", neck_chain[1])
            else:
                bones.setdefault("head", neck_chain[0])
    if spine and not any(k in bones for k in ("spine", "spine.001", "spine.002")):
        picks = np.unique(np.round(np.linspace(0, len(spine) - 1, min(3, len(spine)))).astype(int))
        roles = ("spine", "spine.001", "spine.002")[-len(picks):] if len(picks) < 3 else ("spine", "spine.001", "spine.002")
        for role, k in zip(roles, picks):
            bones[role] = spine[int(k)]


def _lowest(skel: RestSkeleton, i: int) -> float:
    sub = skel.subtree(i)
    return float(min(skel.heads[sub, 2].min(), skel.tails[sub, 2].min()))


def _goes(skel: RestSkeleton, i: int, height: float, up: bool) -> bool:
    sub = skel.subtree(i)
    if up:
        return float(skel.tails[sub, 2].max()) > skel.heads[i, 2] + 0.1 * height and \
            abs(float(skel.tails[sub, 0].mean() - skel.heads[i, 0])) < 0.1 * height
    return _lowest(skel, i) < skel.heads[i, 2] - 0.3 * height


def _find_hips(skel: RestSkeleton, height: float) -> int | None:
    order = sorted(range(len(skel.names)), key=skel.depth)
    for i in order:
        downs = [c for c in skel.children(i) if _goes(skel, c, height, up=False)]
        if len(downs) >= 2:
            return i
    return None


def _chain(skel: RestSkeleton, start: int) -> list[int]:
    """Bones from ``start`` down the largest subtree, stopping after a bone that branches into 3+."""
    out, i = [start], start
    while True:
        kids = skel.children(i)
        if not kids or len(kids) >= 3:
            return out
        i = max(kids, key=lambda c: len(skel.subtree(c)))
        out.append(i)


def _side(skel: RestSkeleton, chain: list[int]) -> str:
    return "L" if float(skel.tails[chain, 0].mean()) > 0 else "R"


def _legs(skel: RestSkeleton, hips: int, height: float) -> dict[str, list[int]]:
    out = {}
    for c in skel.children(hips):
        if _goes(skel, c, height, up=False):
            chain = _chain(skel, c)
            out.setdefault(_side(skel, chain), chain)
    return out


def _spine(skel: RestSkeleton, hips: int, bones: dict[str, int], height: float) -> tuple[list[int], int | None]:
    """The spine bones between hips and neck (exclusive) and the chest (where the arms branch)."""
    top = bones.get("neck", bones.get("head"))
    if top is not None:
        path = []
        i = int(skel.parents[top])
        while i >= 0 and i != hips:
            path.append(i)
            i = int(skel.parents[i])
        if i == hips:
            path.reverse()
            chest = path[-1] if path else hips
            return path, chest
    ups = [c for c in skel.children(hips) if _goes(skel, c, height, up=True)]
    if not ups:
        return [], None
    path, i = [], ups[0]
    while True:
        path.append(i)
        sideways = [c for c in skel.children(i) if not _goes(skel, c, height, up=True)
                    and np.ptp(np.r_[skel.tails[skel.subtree(c), 0], skel.heads[i, 0]]) > 0.15 * height]
        if len(sideways) >= 2:
            return path, i
        ups = [c for c in skel.children(i) if _goes(skel, c, height, up=True)]
        if not ups:
            return path, None
        i = ups[0]


def _arms(skel: RestSkeleton, chest: int, height: float) -> dict[str, list[int]]:
    out = {}
    for c in skel.children(chest):
        sub = skel.subtree(c)
        if np.ptp(np.r_[skel.tails[sub, 0], skel.heads[chest, 0]]) > 0.15 * height:
            chain = _chain(skel, c)
            out.setdefault(_side(skel, chain), chain)
    return out

"""Bone names of common humanoid conventions → OpenKin's humanoid bones (bpy-free).

A name is split into a side (``L``/``R``/None) and a lower-case alphanumeric key with the
usual prefixes removed (``mixamorig:``, ``DEF-``, ``ORG-``, ``Bip01``, ``CC_Base_``), e.g.
``mixamorig:LeftForeArm`` → ("L", "forearm"), ``upperarm_l`` → ("L", "upperarm"),
``DEF-thigh.R`` → ("R", "thigh"). Spine bones get the role ``spine_chain``; the bone
map then distributes them over ``spine``, ``spine.001``, ``spine.002``.
"""
from __future__ import annotations

import re

# key → humanoid base name (without side); "spine_chain" bones are spread over the humanoid's
# spine, spine.001, spine.002 by topology (the bone map).
ROLE_KEYS: dict[str, tuple[str, ...]] = {
    "hips": ("hips", "hip", "pelvis", "root_hips"),
    "spine_chain": ("spine", "spine1", "spine2", "spine3", "spine4", "spine5", "spine01", "spine02",
              "spine03", "spine04", "spine05", "spine001", "spine002", "spine003", "spine004",
              "spine005", "chest", "upperchest", "chest1", "abdomen", "abdomen2", "torso", "waist",
              "lowerback", "upperback", "ribcage"),
    "neck": ("neck", "neck1", "neck01", "neck001", "necktwist01"),
    "head": ("head",),
    "shoulder": ("shoulder", "clavicle", "collar", "collarbone"),
    "upper_arm": ("arm", "upperarm", "uparm", "upper_arm", "humerus"),
    "forearm": ("forearm", "lowerarm", "lowarm", "elbow", "radius"),
    "hand": ("hand", "wrist"),
    "thigh": ("upleg", "thigh", "upperleg", "femur", "uplegroll"),
    "shin": ("leg", "shin", "calf", "lowerleg", "lowleg", "knee", "tibia"),
    "foot": ("foot", "ankle"),
    "toe": ("toe", "toes", "toebase", "ball", "toe0", "toe1"),
}
KEY_ROLE: dict[str, str] = {k: role for role, keys in ROLE_KEYS.items() for k in keys}
SIDED = {"shoulder", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe"}

# Rigify numbers its spine from the pelvis: spine = hips ... spine.006 = head.
RIGIFY_SPINE = {"spine": "hips", "spine001": "spine", "spine002": "spine.001", "spine003": "spine.002",
                "spine004": "neck", "spine006": "head"}

_PREFIX = re.compile(r"^(mixamorig\d*[:_]|def[-_]|org[-_]|mch[-_]|bip\d*[ _]?|cc_base_|b_|j_|bn_|bone_)",
                     re.IGNORECASE)
_SUFFIX_SIDE = re.compile(r"(?:[._\- ])([lr])$", re.IGNORECASE)
_PREFIX_SIDE = re.compile(r"^([lr])(?:[._\- ])", re.IGNORECASE)
_WORD_SIDE = re.compile(r"(left|right)", re.IGNORECASE)
_INNER_SIDE = re.compile(r"(?:^|[._\- ])([lr])(?:[._\- ])", re.IGNORECASE)


def split_side(name: str) -> tuple[str | None, str]:
    """(side, rest) of a bone name: ``.L``/``_l``/``-R`` suffixes, ``L_``/``Left``/``Right`` prefixes,
    `` L `` in the middle (3ds Max biped)."""
    base = _PREFIX.sub("", name.strip())
    for pattern in (_SUFFIX_SIDE, _PREFIX_SIDE, _WORD_SIDE, _INNER_SIDE):
        m = pattern.search(base)
        if m:
            side = m.group(1)[0].upper()
            return side, (base[:m.start()] + " " + base[m.end():]).strip()
    return None, base


def numbered_suffix(name: str) -> bool:
    """Rigify's ``.001`` segment bones (``DEF-upper_arm.L.001``) are not joints of their own."""
    return re.search(r"\.L\.\d{3}$|\.R\.\d{3}$", name) is not None


def name_key(name: str) -> tuple[str | None, str]:
    """(side, key): the side and the lower-case alphanumeric rest of a bone name."""
    side, rest = split_side(name)
    return side, re.sub(r"[^a-z0-9]", "", rest.lower())


def classify(name: str, rigify: bool = False) -> tuple[str | None, str | None]:
    """(role, side) of a bone name; role None when the name is not a known body bone.

    ``rigify``: the armature uses Rigify's numbering, where ``spine`` is the pelvis."""
    if numbered_suffix(name):
        return None, None
    side, key = name_key(name)
    if rigify and key in RIGIFY_SPINE and side is None:
        return RIGIFY_SPINE[key], None
    role = KEY_ROLE.get(key)
    if role is None:
        return None, None
    if (role in SIDED) != (side is not None):
        return None, None
    return role, side


def is_rigify(names: list[str]) -> bool:
    """Rigify's DEF/ORG skeleton (or its metarig): a ``spine.006`` or ``DEF-spine`` bone."""
    return any(re.fullmatch(r"((DEF|ORG)-)?spine(\.00[3-6])?", n) for n in names if "." in n or "-" in n)

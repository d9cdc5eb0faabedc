"""The bones of OpenKin's animation skeleton: names, parents, sides (the shared contract).

Blender conventions: Z up, the character faces -Y, left side on +X, ``.L``/``.R`` suffixes,
mirror-symmetric bone rolls. The skeleton stays in the capture's world frame (so it overlays
the videos); a retargeted character may be re-rooted at the origin.

``root`` is an optional separate root bone on the floor under the hips (root motion on the
root bone); without it root motion is on ``hips``. Every other bone has rotation-only keys.
Finger bones exist only when the capture has hand keypoints.
"""
from __future__ import annotations

# (name, parent) in hierarchy order: a parent always comes before its children.
BONES: tuple[tuple[str, str | None], ...] = (
    ("root", None),
    ("hips", "root"),
    ("spine", "hips"),
    ("spine.001", "spine"),
    ("spine.002", "spine.001"),
    ("neck", "spine.002"),
    ("head", "neck"),
    ("shoulder.L", "spine.002"),
    ("upper_arm.L", "shoulder.L"),
    ("forearm.L", "upper_arm.L"),
    ("hand.L", "forearm.L"),
    ("shoulder.R", "spine.002"),
    ("upper_arm.R", "shoulder.R"),
    ("forearm.R", "upper_arm.R"),
    ("hand.R", "forearm.R"),
    ("thigh.L", "hips"),
    ("shin.L", "thigh.L"),
    ("foot.L", "shin.L"),
    ("toe.L", "foot.L"),
    ("thigh.R", "hips"),
    ("shin.R", "thigh.R"),
    ("foot.R", "shin.R"),
    ("toe.R", "foot.R"),
)

NAMES: tuple[str, ...] = tuple(n for n, _ in BONES)
PARENT: dict[str, str | None] = dict(BONES)

FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def finger_bones(side: str) -> tuple[tuple[str, str], ...]:
    """Finger bones ``<finger>.0<k>.<side>`` (k = 1..3) with their parents, for hand keypoints."""
    out = []
    for finger in FINGERS:
        parent = f"hand.{side}"
        for k in (1, 2, 3):
            name = f"{finger}.0{k}.{side}"
            out.append((name, parent))
            parent = name
    return tuple(out)


def mirror_name(name: str) -> str:
    """``upper_arm.L`` <-> ``upper_arm.R``; names without a side are their own mirror."""
    if name.endswith(".L"):
        return name[:-2] + ".R"
    if name.endswith(".R"):
        return name[:-2] + ".L"
    return name

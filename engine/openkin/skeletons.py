"""Keypoint sets: names by index, as the pose models emit them, and their trees.

A :class:`Skeleton` gives ``names[i]`` for keypoint index ``i`` of the model's
output, and ``parent[i]`` (``-1`` for roots) for drawing bones and for
segment lengths. Names follow Pose2Sim's so its OpenSim marker sets match.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import OpenKinError


@dataclass(frozen=True)
class Skeleton:
    """A keypoint set. ``names``: (K,) in model output order; ``parents``: (K,) index or -1."""

    name: str
    names: tuple[str, ...]
    parents: tuple[int, ...]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise OpenKinError(
                f"keypoint {name!r} is not in the {self.name} skeleton",
                fix=f"use one of: {', '.join(self.names)}",
            ) from None

    @property
    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) index pairs."""
        return [(p, c) for c, p in enumerate(self.parents) if p >= 0]


def _build(name: str, spec: list[tuple[str, str | None]]) -> Skeleton:
    names = tuple(n for n, _ in spec)
    parents = tuple(names.index(p) if p else -1 for _, p in spec)
    return Skeleton(name, names, parents)


# RTMPose Body_with_feet / AlphaPose HALPE_26, in model output order.
HALPE_26 = _build("HALPE_26", [
    ("Nose", "Head"), ("LEye", "Nose"), ("REye", "Nose"), ("LEar", "LEye"), ("REar", "REye"),
    ("LShoulder", "Neck"), ("RShoulder", "Neck"), ("LElbow", "LShoulder"), ("RElbow", "RShoulder"),
    ("LWrist", "LElbow"), ("RWrist", "RElbow"), ("LHip", "Hip"), ("RHip", "Hip"),
    ("LKnee", "LHip"), ("RKnee", "RHip"), ("LAnkle", "LKnee"), ("RAnkle", "RKnee"),
    ("Head", "Neck"), ("Neck", "Hip"), ("Hip", None),
    ("LBigToe", "LAnkle"), ("RBigToe", "RAnkle"), ("LSmallToe", "LBigToe"), ("RSmallToe", "RBigToe"),
    ("LHeel", "LAnkle"), ("RHeel", "RAnkle"),
])

# MoveNet / RTMPose Body / COCO-17, in model output order.
COCO_17 = _build("COCO_17", [
    ("Nose", None), ("LEye", "Nose"), ("REye", "Nose"), ("LEar", "LEye"), ("REar", "REye"),
    ("LShoulder", "Nose"), ("RShoulder", "Nose"), ("LElbow", "LShoulder"), ("RElbow", "RShoulder"),
    ("LWrist", "LElbow"), ("RWrist", "RElbow"), ("LHip", "LShoulder"), ("RHip", "RShoulder"),
    ("LKnee", "LHip"), ("RKnee", "RHip"), ("LAnkle", "LKnee"), ("RAnkle", "RKnee"),
])

# MediaPipe BlazePose 33 landmarks, in model output order.
BLAZEPOSE = _build("BLAZEPOSE", [
    ("Nose", None), ("LEyeInner", "Nose"), ("LEye", "Nose"), ("LEyeOuter", "Nose"),
    ("REyeInner", "Nose"), ("REye", "Nose"), ("REyeOuter", "Nose"), ("LEar", "LEye"), ("REar", "REye"),
    ("MouthLeft", "Nose"), ("MouthRight", "Nose"), ("LShoulder", "Nose"), ("RShoulder", "Nose"),
    ("LElbow", "LShoulder"), ("RElbow", "RShoulder"), ("LWrist", "LElbow"), ("RWrist", "RElbow"),
    ("LPinky", "LWrist"), ("RPinky", "RWrist"), ("LIndex", "LWrist"), ("RIndex", "RWrist"),
    ("LThumb", "LWrist"), ("RThumb", "RWrist"), ("LHip", "LShoulder"), ("RHip", "RShoulder"),
    ("LKnee", "LHip"), ("RKnee", "RHip"), ("LAnkle", "LKnee"), ("RAnkle", "RKnee"),
    ("LHeel", "LAnkle"), ("RHeel", "RAnkle"), ("LBigToe", "LAnkle"), ("RBigToe", "RAnkle"),
])

# --------------------------------------------------------------------------- Pose2Sim's other models
# Names and output ids as in Pose2Sim's skeletons.py (BSD-3, perfanalytics/pose2sim); keypoints its
# trees leave out (eyes and ears of OpenPose's models, hand roots, face points) are named here so
# every model output has a name. Pose2Sim's virtual roots without an id (CHip, Hip, Neck of
# COCO_17) are not model outputs: their children are roots here.

def _side(side: str, names: tuple[str, ...]) -> list[str]:
    return [side + n for n in names]


# One hand of 21 points (hand root, then 4 joints per finger from the palm out): Pose2Sim's
# names, where Thumb = 2nd thumb joint, Index and Pinky = 1st joints (the OpenSim markers).
_HAND_21 = ("HandRoot", "Thumb1", "Thumb", "Thumb3", "Thumb4", "Index", "Index2", "Index3", "Index4",
            "Middle1", "Middle2", "Middle3", "Middle4", "Ring1", "Ring2", "Ring3", "Ring4",
            "Pinky", "Pinky2", "Pinky3", "Pinky4")
_HAND_21_PARENT = (None, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)  # None: the wrist
# 68 face points (iBUG order): jaw 17, right and left eyebrow 5 + 5, nose 9, right and left eye 6 + 6,
# mouth 20; each group a chain from its first point, hung on the body's Nose.
_FACE_GROUPS = (("Jaw", 17), ("EyebrowR", 5), ("EyebrowL", 5), ("Nose", 9), ("REye", 6), ("LEye", 6),
                ("Mouth", 20))


def _hand(side: str) -> list[tuple[str, str | None]]:
    names = _side(side, _HAND_21)
    return [(n, side + "Wrist" if p is None else names[p]) for n, p in zip(names, _HAND_21_PARENT)]


def _face() -> list[tuple[str, str | None]]:
    out = []
    for group, n in _FACE_GROUPS:
        out += [(f"{group}{k}", "Nose" if k == 1 else f"{group}{k - 1}") for k in range(1, n + 1)]
    return out


def _numbered(prefix: str, n: int, parent: str, named: dict[int, str]) -> list[tuple[str, str | None]]:
    """``n`` points ``prefix0..`` (or the name Pose2Sim gives an offset in ``named``), all on ``parent``."""
    return [(named.get(k, f"{prefix}{k}"), parent) for k in range(n)]


_HALPE_26_SPEC = list(zip(HALPE_26.names, [HALPE_26.names[p] if p >= 0 else None for p in HALPE_26.parents]))
_COCO_17_SPEC = list(zip(COCO_17.names, [COCO_17.names[p] if p >= 0 else None for p in COCO_17.parents]))

# OpenPose BODY_25B (experimental; Pose2Sim's default in 2024). 17 UpperNeck -> Neck, 18 HeadTop -> Head.
_BODY_25B_SPEC = [
    ("Nose", "Head"), ("LEye", "Nose"), ("REye", "Nose"), ("LEar", "LEye"), ("REar", "REye"),
    ("LShoulder", "Neck"), ("RShoulder", "Neck"), ("LElbow", "LShoulder"), ("RElbow", "RShoulder"),
    ("LWrist", "LElbow"), ("RWrist", "RElbow"), ("LHip", None), ("RHip", None),
    ("LKnee", "LHip"), ("RKnee", "RHip"), ("LAnkle", "LKnee"), ("RAnkle", "RKnee"),
    ("Neck", None), ("Head", "Neck"),
    ("LBigToe", "LAnkle"), ("LSmallToe", "LBigToe"), ("LHeel", "LAnkle"),
    ("RBigToe", "RAnkle"), ("RSmallToe", "RBigToe"), ("RHeel", "RAnkle"),
]
BODY_25B = _build("BODY_25B", _BODY_25B_SPEC)

# OpenPose BODY_25 (standard). 8 MidHip -> CHip.
BODY_25 = _build("BODY_25", [
    ("Nose", "Neck"), ("Neck", "CHip"), ("RShoulder", "Neck"), ("RElbow", "RShoulder"), ("RWrist", "RElbow"),
    ("LShoulder", "Neck"), ("LElbow", "LShoulder"), ("LWrist", "LElbow"), ("CHip", None),
    ("RHip", "CHip"), ("RKnee", "RHip"), ("RAnkle", "RKnee"), ("LHip", "CHip"), ("LKnee", "LHip"),
    ("LAnkle", "LKnee"), ("REye", "Nose"), ("LEye", "Nose"), ("REar", "REye"), ("LEar", "LEye"),
    ("LBigToe", "LAnkle"), ("LSmallToe", "LBigToe"), ("LHeel", "LAnkle"),
    ("RBigToe", "RAnkle"), ("RSmallToe", "RBigToe"), ("RHeel", "RAnkle"),
])

# OpenPose BODY_135 (experimental): BODY_25B, left hand 25-44, right hand 45-64 (20 points each, no
# hand root), face 65-134 (70). Pose2Sim names LThumb 27, LIndex 30, LPinky 42, RThumb 48, RIndex 51,
# RPinky 63; the other hand and face points are numbered.
BODY_135 = _build("BODY_135", _BODY_25B_SPEC
                  + _numbered("LHand", 20, "LWrist", {2: "LThumb", 5: "LIndex", 17: "LPinky"})
                  + _numbered("RHand", 20, "RWrist", {3: "RThumb", 6: "RIndex", 18: "RPinky"})
                  + _numbered("Face", 70, "Nose", {}))

# COCO-WholeBody 133 (RTMW / RTMPose Whole_body): COCO_17, feet 17-22, face 23-90, left hand 91-111,
# right hand 112-132. Pose2Sim's Whole_body_wrist (COCO_133_WRIST) is the same model output.
COCO_133 = _build("COCO_133", _COCO_17_SPEC + [
    ("LBigToe", "LAnkle"), ("LSmallToe", "LBigToe"), ("LHeel", "LAnkle"),
    ("RBigToe", "RAnkle"), ("RSmallToe", "RBigToe"), ("RHeel", "RAnkle"),
] + _face() + _hand("L") + _hand("R"))

# AlphaPose HALPE_68 (body and hands) and HALPE_136 (body, face and hands).
HALPE_68 = _build("HALPE_68", _HALPE_26_SPEC + _hand("L") + _hand("R"))
HALPE_136 = _build("HALPE_136", _HALPE_26_SPEC + _face() + _hand("L") + _hand("R"))

# OpenPose COCO (18 points).
COCO = _build("COCO", [
    ("Nose", "Neck"), ("Neck", None), ("RShoulder", "Neck"), ("RElbow", "RShoulder"), ("RWrist", "RElbow"),
    ("LShoulder", "Neck"), ("LElbow", "LShoulder"), ("LWrist", "LElbow"), ("RHip", "Neck"), ("RKnee", "RHip"),
    ("RAnkle", "RKnee"), ("LHip", "Neck"), ("LKnee", "LHip"), ("LAnkle", "LKnee"),
    ("REye", "Nose"), ("LEye", "Nose"), ("REar", "REye"), ("LEar", "LEye"),
])

# OpenPose MPII (15 points). OpenPose names 0 "Head" (the head top) and 14 "Chest"; Pose2Sim calls
# them Nose and CHip, which would put them on the OpenSim model's nose and pelvis markers: the true
# names are kept here, so IK never pulls the nose marker to the head top.
MPII = _build("MPII", [
    ("Head", "Neck"), ("Neck", "Chest"), ("RShoulder", "Neck"), ("RElbow", "RShoulder"), ("RWrist", "RElbow"),
    ("LShoulder", "Neck"), ("LElbow", "LShoulder"), ("LWrist", "LElbow"), ("RHip", "Chest"), ("RKnee", "RHip"),
    ("RAnkle", "RKnee"), ("LHip", "Chest"), ("LKnee", "LHip"), ("LAnkle", "LKnee"), ("Chest", None),
])

SKELETONS = {s.name: s for s in (HALPE_26, COCO_17, BLAZEPOSE, BODY_25B, BODY_25, BODY_135, COCO_133,
                                 HALPE_68, HALPE_136, COCO, MPII)}

# Pose2Sim's pose_model values → keypoint set.
POSE_MODEL_SKELETON = {
    "BODY_WITH_FEET": "HALPE_26", "HALPE_26": "HALPE_26", "LOWER_BODY": "HALPE_26", "HALPE_26_LOWER": "HALPE_26",
    "BODY": "COCO_17", "COCO_17": "COCO_17",
    "WHOLE_BODY": "COCO_133", "WHOLE_BODY_WRIST": "COCO_133", "COCO_133": "COCO_133",
    "COCO_133_WRIST": "COCO_133",
    "BLAZEPOSE": "BLAZEPOSE",
    "BODY_25B": "BODY_25B", "BODY_25": "BODY_25", "BODY_135": "BODY_135",
    "HALPE_68": "HALPE_68", "HALPE_136": "HALPE_136", "COCO": "COCO", "MPII": "MPII",
}


def get_skeleton(pose_model: str) -> Skeleton:
    """The keypoint set of a Pose2Sim ``pose_model`` name (case-insensitive)."""
    key = POSE_MODEL_SKELETON.get(pose_model.upper(), pose_model.upper())
    if key not in SKELETONS:
        raise OpenKinError(
            f"unknown pose_model {pose_model!r}",
            fix=f"set [pose] pose_model to one of: {', '.join(sorted(POSE_MODEL_SKELETON))}, "
                "or the name of a custom skeleton [[pose.<NAME>]] defined in Config.toml",
        )
    return SKELETONS[key]

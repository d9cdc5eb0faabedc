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

SKELETONS = {s.name: s for s in (HALPE_26, COCO_17, BLAZEPOSE)}

# Pose2Sim's pose_model values → keypoint set.
POSE_MODEL_SKELETON = {
    "BODY_WITH_FEET": "HALPE_26", "HALPE_26": "HALPE_26",
    "BODY": "COCO_17", "COCO_17": "COCO_17",
    "BLAZEPOSE": "BLAZEPOSE",
}


def get_skeleton(pose_model: str) -> Skeleton:
    """The keypoint set of a Pose2Sim ``pose_model`` name (case-insensitive)."""
    key = POSE_MODEL_SKELETON.get(pose_model.upper(), pose_model.upper())
    if key not in SKELETONS:
        raise OpenKinError(
            f"unknown pose_model {pose_model!r}",
            fix=f"set [pose] pose_model to one of: {', '.join(sorted(POSE_MODEL_SKELETON))}",
        )
    return SKELETONS[key]

"""Map BlazePose's 33 landmarks onto the keypoint sets later stages understand.

Default: HALPE_26 (RTMPose Body_with_feet order), so the association,
triangulation, LSTM marker augmentation and OpenSim ``Markers_Halpe26.xml``
work unchanged whatever backend made the 2D poses. The derived points:

- ``Hip`` and ``Neck``: midpoints of the hips and of the shoulders (as HALPE_26
  defines them), confidence the smaller of the two.
- ``Head`` (HALPE's head top): mid-eyes plus 1.6 × (mid-eyes − mid-mouth),
  i.e. about one face height above the eyes; confidence 0.8 × the smaller of
  the eyes' and the mouth's (it is an extrapolation).
- ``BigToe``: BlazePose's foot index (tip of the foot, near the 2nd toe).
- ``SmallToe``: BlazePose has none. Estimated from the foot's own
  weak-perspective 3D landmarks (heel, ankle, foot index with their z): a point
  0.1 foot lengths back from the tip and 0.1 foot lengths lateral, lateral
  being the foot plane's normal on the side away from the other foot;
  confidence 0.8 × the foot's. The anatomical offset is about twice that, but
  BlazePose's z is noisy: on the Pose2Sim demo the full offset made the point
  much less consistent between cameras (median reprojection 27 px vs 17 px for
  this one and 17 px for BigToe). An approximation (a few cm), documented so
  nobody mistakes it for a detection; it lets the augmenter, which needs
  SmallToe, run.

``BLAZEPOSE`` passes the 33 landmarks through (Pose2Sim's Markers_BlazePose.xml);
``COCO_17`` keeps the 17 COCO points.
"""
from __future__ import annotations

import numpy as np

from ..errors import OpenKinError
from ..skeletons import BLAZEPOSE, COCO_17, HALPE_26, Skeleton

# BlazePose landmark index of each directly corresponding keypoint name.
_BP = {n: i for i, n in enumerate(BLAZEPOSE.names)}
_MOUTH = (9, 10)


def _direct(lm: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(P, 39, 5) landmarks → (P, K, 3) with the names BlazePose has; NaN/0 elsewhere."""
    out = np.full(lm.shape[:1] + (len(skeleton.names), 3), np.nan)
    out[..., 2] = 0.0
    for k, name in enumerate(skeleton.names):
        src = _BP.get(name)
        if src is not None:
            out[:, k, :2] = lm[:, src, :2]
            out[:, k, 2] = lm[:, src, 3]
    return out


def _midpoint(lm: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(P, 39, 5) → midpoint (P, 2) and confidence (P,)."""
    return (lm[:, a, :2] + lm[:, b, :2]) / 2, np.minimum(lm[:, a, 3], lm[:, b, 3])


def _head_top(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eyes, c_eyes = _midpoint(lm, _BP["LEye"], _BP["REye"])
    mouth, c_mouth = _midpoint(lm, *_MOUTH)
    return eyes + 1.6 * (eyes - mouth), 0.8 * np.minimum(c_eyes, c_mouth)


def _small_toe(lm: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Estimated small-toe tip of one foot: (P, 2) pixels and confidence (P,)."""
    other = "R" if side == "L" else "L"
    heel, ankle, toe = (lm[:, _BP[side + n], :3] for n in ("Heel", "Ankle", "BigToe"))
    foot = toe - heel
    length = np.linalg.norm(foot, axis=1, keepdims=True)
    normal = np.cross(foot, ankle - heel)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    away = lm[:, _BP[side + "Ankle"], :3] - lm[:, _BP[other + "Ankle"], :3]
    sign = np.where(np.sum(normal * away, axis=1, keepdims=True) < 0, -1.0, 1.0)
    point = toe - 0.1 * foot + 0.1 * length * sign * normal
    conf = 0.8 * np.min(lm[:, [_BP[side + "Heel"], _BP[side + "Ankle"], _BP[side + "BigToe"]], 3], axis=1)
    return point[:, :2], conf


def _set(out: np.ndarray, skeleton: Skeleton, name: str, xy_conf: tuple[np.ndarray, np.ndarray]) -> None:
    k = skeleton.index(name)
    out[:, k, :2], out[:, k, 2] = xy_conf


def blazepose_to(lm: np.ndarray, skeleton_name: str) -> np.ndarray:
    """Landmarks (P, 39, 5) → keypoints (P, K, 3) [x, y, confidence] of ``skeleton_name``."""
    if skeleton_name == "BLAZEPOSE":
        return np.concatenate([lm[:, :33, :2], lm[:, :33, 3:4]], axis=2)
    if skeleton_name == "COCO_17":
        return _direct(lm, COCO_17)
    if skeleton_name != "HALPE_26":
        raise OpenKinError(f"the offline backend cannot produce the {skeleton_name} keypoint set",
                           fix="set [pose] pose_model to 'Body_with_feet', 'Body' or 'BlazePose', "
                               "or use backend = 'rtmlib'")
    out = _direct(lm, HALPE_26)
    _set(out, HALPE_26, "Hip", _midpoint(lm, _BP["LHip"], _BP["RHip"]))
    _set(out, HALPE_26, "Neck", _midpoint(lm, _BP["LShoulder"], _BP["RShoulder"]))
    _set(out, HALPE_26, "Head", _head_top(lm))
    for side in "LR":
        _set(out, HALPE_26, side + "SmallToe", _small_toe(lm, side))
    return out

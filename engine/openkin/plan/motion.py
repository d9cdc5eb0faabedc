"""Along an actor's motion: per joint, which cameras see it, with self-occlusion, and the
expected error of triangulating it.

The actor is ``openkin.synth``'s walking/squatting/arm-raising person (OpenSim forward
kinematics of Pose2Sim's model, HALPE_26 keypoints) on a 0.55 m circle around the
volume centre. The body is approximated by capsules on the skeleton's bones (radii in
``BONE_RADII``): a camera does not see a keypoint when its line of sight passes through a
capsule that does not hold the keypoint itself, short of one capsule diameter before the
keypoint (a keypoint inside a capsule — a hip inside the pelvis-to-neck trunk — or on its
near surface is on that body part, which capsules cannot orient; one behind it is hidden). Coverage and error then follow
:mod:`openkin.plan.kernel` with those cameras removed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .kernel import CameraTerms, PlanSettings, camera_terms, evaluate_terms

log = logging.getLogger(__name__)

# Capsule radius (m) per HALPE_26 bone (parent, child names); bones not listed (the face) hide nothing.
BONE_RADII = {("Hip", "Neck"): 0.13, ("Neck", "Head"): 0.09, ("Neck", "LShoulder"): 0.06,
              ("Neck", "RShoulder"): 0.06, ("LShoulder", "LElbow"): 0.045, ("RShoulder", "RElbow"): 0.045,
              ("LElbow", "LWrist"): 0.04, ("RElbow", "RWrist"): 0.04, ("Hip", "LHip"): 0.09,
              ("Hip", "RHip"): 0.09, ("LHip", "LKnee"): 0.07, ("RHip", "RKnee"): 0.07,
              ("LKnee", "LAnkle"): 0.05, ("RKnee", "RAnkle"): 0.05, ("LAnkle", "LBigToe"): 0.035,
              ("RAnkle", "RBigToe"): 0.035}


@dataclass
class MotionPlan:
    """Per joint (K,): ``names``; ``seen2`` fraction of frames seen by ≥ 2 unoccluded cameras;
    ``occluded`` fraction of (frame, in-view camera) pairs hidden by the body; ``error_mm``
    median expected error over the frames seen by ≥ 2 (NaN if none). ``frames`` F."""

    names: list[str]
    seen2: np.ndarray
    occluded: np.ndarray
    error_mm: np.ndarray
    frames: int


def actor_motion(centre_xy, seconds: float = 6.0, rate: float = 30.0) -> tuple[list[str], np.ndarray]:
    """The synth actor's HALPE_26 keypoints around ``centre_xy`` (world x, y) →
    (names, (F, K, 3) world metres, Z up)."""
    from ..formats.trc import yup_to_zup
    from ..skeletons import HALPE_26
    from ..synth.forward import forward_kinematics, load_body
    from ..synth.motion import MotionSpec, generate_motion, ground_offsets

    body = load_body(HALPE_26)
    times = np.arange(int(round(seconds * rate))) / rate
    coords = generate_motion(times, MotionSpec(center=(float(centre_xy[1]), float(centre_xy[0]))))  # ground x, z = world y, x
    names = list(coords)
    pts = forward_kinematics(body, names, np.stack([coords[n] for n in names], axis=1))
    ground = pts[:, :body.n_keypoints].copy()
    ground[..., 1] += ground_offsets(pts[:, body.n_keypoints:, 1])[:, None]
    return list(body.keypoint_names), yup_to_zup(ground)


def segment_distance(p1, q1, p2, q2) -> np.ndarray:
    """Closest distance between segments [p1, q1] and [p2, q2] ((..., 3) broadcast → (...)),
    after Ericson, Real-Time Collision Detection, 5.1.9."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e = (d1 * d1).sum(-1), (d2 * d2).sum(-1)
    b, c, f = (d1 * d2).sum(-1), (d1 * r).sum(-1), (d2 * r).sum(-1)
    denom = a * e - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 1e-12 * a * e, np.clip((b * f - c * e) / denom, 0, 1), 0.0)
        t = (b * s + f) / e
        s = np.where(t < 0, np.clip(-c / a, 0, 1), np.where(t > 1, np.clip((b - c) / a, 0, 1), s))
    t = np.clip(t, 0, 1)
    return np.linalg.norm(p1 + d1 * s[..., None] - (p2 + d2 * t[..., None]), axis=-1)


def capsules_of(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Bones (B, 2) keypoint indices and radii (B,) of :data:`BONE_RADII` present in ``names``."""
    idx = {n: i for i, n in enumerate(names)}
    pairs = [(idx[a], idx[b], r) for (a, b), r in BONE_RADII.items() if a in idx and b in idx]
    return np.array([p[:2] for p in pairs], int).reshape(-1, 2), np.array([p[2] for p in pairs])


def occluded(centers: np.ndarray, joints: np.ndarray, bones: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """``centers`` (C, 3), ``joints`` (F, K, 3), ``bones`` (B, 2), ``radii`` (B,) → (C, F, K) bool:
    the line of sight passes through a capsule that does not hold the joint. The sight line
    is tested up to one capsule diameter short of the joint, so a keypoint on the near
    surface of a limb (an ear beside the head) is not hidden by that limb, one behind it is."""
    a, b = joints[:, bones[:, 0]], joints[:, bones[:, 1]]                          # (F, B, 3)
    holds = segment_distance(joints[:, :, None], joints[:, :, None], a[:, None], b[:, None]) < radii  # (F, K, B)
    out = np.zeros((len(centers),) + joints.shape[:2], bool)
    for c, centre in enumerate(centers):
        to_cam = centre - joints                                                   # (F, K, 3)
        u = to_cam / np.linalg.norm(to_cam, axis=-1, keepdims=True)
        end = joints[:, :, None] + u[:, :, None] * (2 * radii)[:, None]            # (F, K, B, 3)
        dist = segment_distance(centre, end, a[:, None], b[:, None])               # (F, K, B)
        out[c] = np.any((dist < radii) & ~holds, axis=-1)
    return out


def plan_motion(cameras: list, names: list[str], joints: np.ndarray, settings: PlanSettings) -> MotionPlan:
    """Coverage and expected error per joint along ``joints`` (F, K, 3) world metres."""
    F, K, _ = joints.shape
    terms = camera_terms(cameras, joints.reshape(-1, 3), settings)
    hidden = occluded(np.stack([c.center for c in cameras]), joints, *capsules_of(names)).reshape(len(cameras), -1)
    in_view = terms.seen.copy()
    keep = terms.seen & ~hidden
    terms = CameraTerms(keep, terms.gram * keep[:, None], terms.depth, terms.rays)
    res = evaluate_terms(terms, settings)
    seen2 = (res.cameras_seeing >= 2).reshape(F, K)
    err = np.where(seen2, res.expected_error_mm.reshape(F, K), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        occl = (in_view & hidden).reshape(-1, F, K).sum((0, 1)) / np.maximum(in_view.reshape(-1, F, K).sum((0, 1)), 1)
    med = np.array([np.median(e[np.isfinite(e)]) if np.isfinite(e).any() else np.nan for e in err.T])
    return MotionPlan(list(names), seen2.mean(0), occl, med, F)


def motion_lines(plan: MotionPlan) -> list[str]:
    """The per-joint table, worst joints first."""
    order = np.lexsort((-np.nan_to_num(plan.error_mm, nan=np.inf), plan.seen2))
    lines = [f"along the actor's motion ({plan.frames} frames, self-occlusion by capsules), per joint:",
             f"  {'joint':<10s} {'seen by ≥2':>10s} {'hidden':>7s} {'median error':>13s}"]
    for k in order:
        e = "n/a" if not np.isfinite(plan.error_mm[k]) else f"{plan.error_mm[k]:.1f} mm"
        lines.append(f"  {plan.names[k]:<10s} {100 * plan.seen2[k]:9.0f}% {100 * plan.occluded[k]:6.0f}% {e:>13s}")
    return lines

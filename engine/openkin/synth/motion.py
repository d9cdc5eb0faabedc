"""Joint-angle motions for ground-truth scenes: walking on a closed path, squats,
arm raises — smooth, periodic functions of time with realistic ranges.

A motion is a schedule of segments (``walk``, ``squat``, ``arms``) blended with
raised-cosine envelopes. Gait uses Fourier-like curves of the gait phase
(right heel strike at phase 0, left leg half a cycle later):

========================  ===========================
hip flexion               -10° … +30°
knee flexion              0° … ~60° (loading peak ~12°, swing peak ~60°)
ankle dorsiflexion        -16° … +10°
pelvis tilt/list/rotation ±2-5°, lumbar ±2-5°, arm swing ±18°, elbow 10-30°
squat                     hip +100°, knee +105°, ankle +25°, pelvis tilt -25°
arm raise                 shoulder abduction 10° → 80°
========================  ===========================

The pelvis walks along an ellipse (a circle by default) at the walking speed,
facing its direction of travel. ``pelvis_ty`` is set afterwards so that the
lowest foot point touches the floor (see :func:`ground_offsets`).

Angles are in OpenSim's conventions for ``Model_Pose2Sim_simple.osim``:
radians / metres, ground Y-up, +X the model's forward, +Z its right.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEG = np.pi / 180.0


@dataclass(frozen=True)
class MotionSpec:
    """Parameters of one person's motion.

    ``center``: (x, z) of the path centre in ground (metres); ``radii``: (a, b)
    semi-axes along ground x and z; ``start``: path angle at t=0 (radians);
    ``direction``: +1 turns from +x towards +z (clockwise seen from above, Y up), -1 the other way;
    ``schedule``: (segment, seconds) repeated over the whole duration;
    ``variation``: relative random variation of the amplitudes (seeded).
    """

    center: tuple[float, float] = (0.0, 0.0)
    radii: tuple[float, float] = (0.55, 0.55)
    start: float = 0.0
    direction: int = 1
    speed: float = 0.65             # m/s while walking
    stride_frequency: float = 0.85  # strides (gait cycles) per second
    squat_frequency: float = 0.45   # squats per second inside a squat segment
    arms_frequency: float = 0.5     # arm raises per second inside an arms segment
    schedule: tuple[tuple[str, float], ...] = (("walk", 5.0), ("squat", 2.5), ("arms", 2.5))
    transition: float = 0.6         # seconds of blending between segments
    variation: float = 0.1
    seed: int = 0


SEGMENTS = ("walk", "squat", "arms", "stand")


def envelopes(times: np.ndarray, spec: MotionSpec) -> dict[str, np.ndarray]:
    """Weight of each segment kind at each time, summing to 1. (F,) → {kind: (F,)}."""
    period = sum(d for _, d in spec.schedule)
    tau = np.mod(times, period)
    out = {k: np.zeros_like(times) for k in SEGMENTS}
    start = 0.0
    half = spec.transition / 2
    for kind, dur in spec.schedule:
        for shift in (-period, 0.0, period):  # wrap-around blending
            a, b = start + shift, start + dur + shift
            out[kind] += _window(tau, a, b, half)
        start += dur
    total = sum(out.values())
    return {k: v / np.maximum(total, 1e-9) for k, v in out.items()}


def _window(t: np.ndarray, a: float, b: float, half: float) -> np.ndarray:
    """Smooth box from a to b with raised-cosine edges of half-width ``half``. (F,) → (F,)."""
    rise = np.clip((t - (a - half)) / (2 * half), 0, 1)
    fall = np.clip(((b + half) - t) / (2 * half), 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))


def _bump(phase: np.ndarray, mu: float, kappa: float) -> np.ndarray:
    """Periodic smooth bump in [0, 1] centred at fraction ``mu`` of the cycle (von Mises shape)."""
    return np.exp(kappa * (np.cos(phase - 2 * np.pi * mu) - 1.0))


def _cumulative(rate_values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Trapezoidal running integral of (F,) values over (F,) times, 0 at times[0]."""
    dt = np.diff(times)
    steps = 0.5 * (rate_values[1:] + rate_values[:-1]) * dt
    return np.concatenate([[0.0], np.cumsum(steps)])


def _leg(phase: np.ndarray, amp: dict[str, float]) -> dict[str, np.ndarray]:
    """Gait angles of one leg (degrees) at gait phase (F,) radians."""
    return {
        "hip_flexion": amp["hip"] * (10 + 20 * np.cos(phase)),
        "hip_adduction": amp["add"] * (3 * np.sin(phase + 0.4)),
        "hip_rotation": amp["rot"] * (-3 + 5 * np.sin(phase)),
        "knee_angle": amp["knee"] * (5 + 12 * _bump(phase, 0.12, 8) + 55 * _bump(phase, 0.72, 6)),
        "ankle_angle": amp["ankle"] * (2 + 8 * _bump(phase, 0.42, 5) - 18 * _bump(phase, 0.63, 12)),
        "subtalar_angle": amp["sub"] * (4 * np.sin(phase + 1.0)),
        "mtp_angle": amp["mtp"] * (-15 * _bump(phase, 0.57, 10)),
    }


def _amplitudes(rng: np.random.Generator, variation: float) -> dict[str, float]:
    keys = ("hip", "add", "rot", "knee", "ankle", "sub", "mtp", "pelvis", "lumbar", "arm", "elbow",
            "squat", "raise", "neck")
    return {k: float(1 + variation * rng.uniform(-1, 1)) for k in keys}


def generate_motion(times: np.ndarray, spec: MotionSpec) -> dict[str, np.ndarray]:
    """Coordinate values over time. (F,) seconds → {coordinate: (F,)} radians / metres.

    ``pelvis_ty`` is returned at 0 (standing height comes from :func:`ground_offsets`).
    """
    times = np.asarray(times, dtype=float)
    rng = np.random.default_rng(spec.seed)
    amp = _amplitudes(rng, spec.variation)
    env = envelopes(times, spec)
    w, s, a = env["walk"], env["squat"], env["arms"]
    phase = 2 * np.pi * spec.stride_frequency * _cumulative(w, times) + rng.uniform(0, 2 * np.pi)
    deg: dict[str, np.ndarray] = {}
    for side, ph in (("r", phase), ("l", phase + np.pi)):
        for name, v in _leg(ph, amp).items():
            deg[f"{name}_{side}"] = w * v
    depth = s * 0.5 * (1 - np.cos(2 * np.pi * spec.squat_frequency * _cumulative(s, times)))
    raise_ = a * 0.5 * (1 - np.cos(2 * np.pi * spec.arms_frequency * _cumulative(a, times)))
    _add_squat(deg, depth, amp["squat"])
    _add_trunk(deg, phase, w, depth, amp, times)
    _add_arms(deg, phase, w, depth, raise_, amp)
    out = {k: v * DEG for k, v in deg.items()}
    out.update(_pelvis_path(times, w, phase, spec, amp))
    return out


def _add_squat(deg: dict, depth: np.ndarray, k: float) -> None:
    for side in ("r", "l"):
        deg[f"hip_flexion_{side}"] = deg[f"hip_flexion_{side}"] + 100 * k * depth
        deg[f"knee_angle_{side}"] = deg[f"knee_angle_{side}"] + 105 * k * depth
        deg[f"ankle_angle_{side}"] = deg[f"ankle_angle_{side}"] + 25 * k * depth
        deg[f"hip_adduction_{side}"] = deg[f"hip_adduction_{side}"] - 8 * k * depth  # knees apart


def _add_trunk(deg: dict, phase, w, depth, amp, times) -> None:
    deg["pelvis_tilt"] = w * amp["pelvis"] * (-2 + 2 * np.cos(2 * phase)) - 25 * amp["squat"] * depth
    deg["pelvis_list"] = w * amp["pelvis"] * 3 * np.sin(phase)
    deg["L5_S1_Flex_Ext"] = w * amp["lumbar"] * 2 * np.cos(2 * phase) - 10 * amp["squat"] * depth
    deg["L5_S1_Lat_Bending"] = w * amp["lumbar"] * (-2 * np.sin(phase))
    deg["L5_S1_axial_rotation"] = w * amp["lumbar"] * (-5 * np.sin(phase))
    deg["neck_flexion"] = amp["neck"] * (-5 + 6 * np.sin(2 * np.pi * 0.23 * times)) + 15 * depth
    deg["neck_rotation"] = amp["neck"] * 15 * np.sin(2 * np.pi * 0.17 * times + 0.5)
    deg["neck_bending"] = amp["neck"] * 3 * np.sin(2 * np.pi * 0.11 * times)


def _add_arms(deg: dict, phase, w, depth, raise_, amp) -> None:
    for side, sign in (("r", -1.0), ("l", 1.0)):
        swing = sign * 18 * amp["arm"] * np.cos(phase)
        deg[f"arm_flex_{side}"] = w * (5 + swing) + 70 * amp["squat"] * depth
        deg[f"arm_add_{side}"] = -10 - 70 * amp["raise"] * raise_
        deg[f"arm_rot_{side}"] = 5 + 0 * w
        deg[f"elbow_flex_{side}"] = 12 + w * amp["elbow"] * (10 - sign * 8 * np.cos(phase)) + 15 * depth
        # No keypoint sees the forearm's twist or the wrist: keep them at the model's defaults
        # (pro_sup 1.57 rad) so that no pipeline is scored on what it cannot observe.
        deg[f"pro_sup_{side}"] = np.degrees(1.57) + 0 * w
        deg[f"wrist_flex_{side}"] = 0 * w
        deg[f"wrist_dev_{side}"] = 0 * w


def _pelvis_path(times, w, phase, spec: MotionSpec, amp) -> dict[str, np.ndarray]:
    """Pelvis translations and yaw along the elliptic path. → {coordinate: (F,)}."""
    a, b = spec.radii
    mean_radius = np.sqrt((a * a + b * b) / 2)
    # path angle advances so that the speed along the ellipse is ~spec.speed
    theta = spec.start + spec.direction * _cumulative(w * spec.speed / max(mean_radius, 1e-6), times)
    x = spec.center[0] + a * np.cos(theta)
    z = spec.center[1] + b * np.sin(theta)
    dx = -a * np.sin(theta) * spec.direction
    dz = b * np.cos(theta) * spec.direction
    heading = np.unwrap(np.arctan2(-dz, dx))  # yaw about +Y turns +X towards -Z
    # side-to-side sway of the pelvis (+-2 cm) perpendicular to travel, with the gait
    sway = 0.02 * w * np.sin(phase)
    norm = np.hypot(dx, dz) + 1e-12
    x = x + sway * (-dz / norm)  # the model's right, (-dz, dx) in (x, z)
    z = z + sway * (dx / norm)
    return {
        "pelvis_tx": x, "pelvis_tz": z, "pelvis_ty": np.zeros_like(times),
        "pelvis_rotation": heading + w * amp["pelvis"] * 5 * DEG * np.sin(phase),
    }


def ground_offsets(feet_heights: np.ndarray, softness: float = 0.01) -> np.ndarray:
    """Vertical shift putting the lowest foot point on the floor, smoothly.

    ``feet_heights``: (F, J) heights (metres) of foot keypoints with the pelvis at
    height 0 → (F,) shift = -softmin_j(height) (a log-sum-exp soft minimum with
    ``softness`` metres, so the shift is smooth when the supporting point changes).
    """
    h = np.asarray(feet_heights, dtype=float)
    m = h.min(axis=1, keepdims=True)
    soft = m[:, 0] - softness * np.log(np.exp(-(h - m) / softness).sum(axis=1))
    return -soft

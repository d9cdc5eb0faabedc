"""A stand-in actor: a standing person of capsules (what the Plan view shows in the volume).

``capsules(centre, height, facing_deg)`` → (K, 7) rows ``x0, y0, z0, x1, y1, z1, radius``
in world metres (Z up), for a person of ``height`` standing at ``centre`` (x, y) and
facing ``facing_deg`` (about Z, from +X). Proportions after Winter's anthropometric
segment lengths (fractions of body height H: shoulder 0.818 H, hip 0.530 H, knee
0.285 H, ankle 0.039 H, elbow 0.630 H, wrist 0.485 H).
"""
from __future__ import annotations

import math

import numpy as np

# (segment, start, end, radius) with points as (lateral, forward, height) in units of H.
_SEGMENTS = (
    ("head", (0.0, 0.0, 0.87), (0.0, 0.0, 0.95), 0.055),
    ("neck", (0.0, 0.0, 0.818), (0.0, 0.0, 0.87), 0.03),
    ("torso", (0.0, 0.0, 0.56), (0.0, 0.0, 0.80), 0.085),
    ("pelvis", (-0.05, 0.0, 0.53), (0.05, 0.0, 0.53), 0.075),
    ("shoulders", (-0.10, 0.0, 0.805), (0.10, 0.0, 0.805), 0.04),
    ("upper_arm_l", (-0.13, 0.0, 0.805), (-0.14, 0.0, 0.63), 0.026),
    ("forearm_l", (-0.14, 0.0, 0.63), (-0.15, 0.03, 0.485), 0.022),
    ("upper_arm_r", (0.13, 0.0, 0.805), (0.14, 0.0, 0.63), 0.026),
    ("forearm_r", (0.14, 0.0, 0.63), (0.15, 0.03, 0.485), 0.022),
    ("thigh_l", (-0.055, 0.0, 0.52), (-0.06, 0.0, 0.285), 0.04),
    ("shank_l", (-0.06, 0.0, 0.285), (-0.06, 0.0, 0.039), 0.03),
    ("foot_l", (-0.06, -0.02, 0.02), (-0.065, 0.11, 0.02), 0.022),
    ("thigh_r", (0.055, 0.0, 0.52), (0.06, 0.0, 0.285), 0.04),
    ("shank_r", (0.06, 0.0, 0.285), (0.06, 0.0, 0.039), 0.03),
    ("foot_r", (0.06, -0.02, 0.02), (0.065, 0.11, 0.02), 0.022),
)
NAMES = tuple(s[0] for s in _SEGMENTS)


def capsules(centre=(0.0, 0.0), height: float = 1.75, facing_deg: float = 90.0) -> np.ndarray:
    """(K, 7) capsules of a standing person; see the module docstring."""
    f = math.radians(facing_deg)
    forward = np.array([math.cos(f), math.sin(f), 0.0])
    lateral = np.array([math.sin(f), -math.cos(f), 0.0])              # the person's right
    basis = np.stack([lateral, forward, [0.0, 0.0, 1.0]])             # rows: lateral, forward, up
    origin = np.array([centre[0], centre[1], 0.0])
    rows = []
    for _, a, b, r in _SEGMENTS:
        pa = origin + height * (np.array(a) @ basis)
        pb = origin + height * (np.array(b) @ basis)
        rows.append([*pa, *pb, r * height])
    return np.array(rows)

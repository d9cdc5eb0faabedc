"""Simulated 6-DoF trackers for ground-truth scenes (``openkin synth --trackers pelvis,torso,...``).

Each tracker gives its body's orientation in OpenSim's ground frame (Y up), from the
truth motion by OpenSim's forward kinematics (``Body.getTransformInGround`` on the
scene's model), on the truth frames, as :mod:`openkin.kinematics.trackers` expects it
(the sensor-to-body mounting rotation already removed). Written as an OpenSim IMU
orientation file (:mod:`openkin.formats.imu`), column ``<body>_imu`` per tracker, to
``trackers/<scene>_orientations.sto``; the scene's Config.toml declares them.

Corruptions (seeded):

- ``tracker_noise_deg``: white noise, a rotation by a vector whose components are
  N(0, noise) degrees, in the body frame, independent per sample;
- ``tracker_drift_deg_min``: heading drift (what magnetometer-free IMUs do): each
  tracker's reading turns about the vertical at this rate (degrees per minute, sign
  random per tracker), from 0 at the first frame.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import OpenKinError
from ..formats.imu import Orientations

log = logging.getLogger(__name__)


def sensor_name(body: str) -> str:
    """OpenSense's column name of a sensor on ``body``."""
    return f"{body}_imu"


def body_rotations(body, coords: dict[str, np.ndarray], bodies: list[str]) -> np.ndarray:
    """(F, S, 3, 3) rotations in ground of ``bodies`` for the motion ``coords`` {name: (F,)} (radians/metres),
    by OpenSim (``body``: :class:`openkin.synth.forward.Body`)."""
    model, state = body.model, body.state
    bset = model.getBodySet()
    known = [bset.get(i).getName() for i in range(bset.getSize())]
    unknown = [b for b in bodies if b not in known]
    if unknown:
        raise OpenKinError(f"--trackers: no body {', '.join(unknown)} in the scene's model",
                           fix=f"choose among: {', '.join(known)}")
    objs = [bset.get(b) for b in bodies]
    index = {n: i for i, n in enumerate(body.coordinate_names)}
    given = [(body.coordinates[index[n]], v) for n, v in coords.items() if n in index]
    for c in body.coordinates:
        c.setValue(state, c.getDefaultValue(), False)
    F = len(next(iter(coords.values())))
    out = np.empty((F, len(bodies), 3, 3))
    for f in range(F):
        for c, v in given:
            c.setValue(state, float(v[f]), False)
        model.realizePosition(state)
        for s, b in enumerate(objs):
            m = b.getTransformInGround(state).R().asMat33()
            out[f, s] = [[m.get(i, j) for j in range(3)] for i in range(3)]
    return out


def corrupt(rng: np.random.Generator, R: np.ndarray, times: np.ndarray, noise_deg: float,
            drift_deg_min: float) -> np.ndarray:
    """``R`` (F, S, 3, 3) with body-frame white noise and heading drift (see module doc)."""
    F, S = R.shape[:2]
    out = R.copy()
    if noise_deg > 0:
        out = out @ Rotation.from_rotvec(np.radians(rng.normal(0, noise_deg, (F * S, 3)))).as_matrix().reshape(F, S, 3, 3)
    if drift_deg_min > 0:
        sign = rng.choice([-1.0, 1.0], S)
        ang = np.radians(drift_deg_min / 60.0) * (times - times[0])[:, None] * sign[None, :]   # (F, S)
        yaw = Rotation.from_rotvec(ang.reshape(-1, 1) * np.array([0.0, 1.0, 0.0])).as_matrix().reshape(F, S, 3, 3)
        out = yaw @ out
    return out


def simulate(body, coords: dict[str, np.ndarray], times: np.ndarray, bodies: list[str], rate: float,
             noise_deg: float, drift_deg_min: float, seed: int) -> Orientations:
    """The trackers' readings on the truth frames ``times`` (F,); ``coords`` {name: (F,)}."""
    R = body_rotations(body, coords, bodies)
    R = corrupt(np.random.default_rng([seed, 23]), R, times, noise_deg, drift_deg_min)
    quat = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat(canonical=True, scalar_first=True)
    return Orientations([sensor_name(b) for b in bodies], times, quat.reshape(len(times), len(bodies), 4), rate)

"""Ground truth for the kinematics and augmentation tests: a *scaled* OpenSim model
(known per-body factors) driven by a known walking-like motion, keypoints by
OpenSim forward kinematics. Independent of :mod:`openkin.synth` (whose subject is
the unscaled generic model), so scaling itself is tested."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from openkin.assets import asset_path

TRUE_FACTORS = {"femur": 1.12, "tibia": 1.08, "humerus": 1.05, "radius": 1.05, "ulna": 1.05, "hand": 1.05,
                "torso": 1.06, "pelvis": 1.1, "head": 1.04}
DEFAULT_FACTOR = 1.1


def body_factor(body: str) -> float:
    base = body[:-2] if body.endswith(("_r", "_l")) else body
    return TRUE_FACTORS.get(base, DEFAULT_FACTOR)


def motion(names: list[str], n: int, rate: float, lumbar: bool) -> np.ndarray:
    """(n, C) coordinate values (radians/metres) of a gait-like motion with arm swing."""
    t = np.arange(n) / rate
    q = np.zeros((n, len(names)))
    w = 2 * np.pi * 0.9
    d = np.radians

    def put(name, v):
        q[:, names.index(name)] = v

    put("pelvis_tx", 1.1 * t)
    put("pelvis_ty", 0.98 + 0.02 * np.sin(2 * w * t))
    put("pelvis_list", d(3 * np.sin(w * t + 1)))
    put("pelvis_rotation", d(6 * np.sin(w * t)))
    for side, ph in (("r", 0.0), ("l", np.pi)):
        put(f"hip_flexion_{side}", d(12 + 22 * np.sin(w * t + ph)))
        put(f"hip_adduction_{side}", d(3 * np.sin(w * t + ph + 0.5)))
        put(f"hip_rotation_{side}", d(4 * np.sin(w * t + ph + 1)))
        put(f"knee_angle_{side}", d(28 + 28 * np.sin(w * t + ph + 1.2)))
        put(f"ankle_angle_{side}", d(4 + 11 * np.sin(w * t + ph + 2)))
        put(f"arm_flex_{side}", d(-18 * np.sin(w * t + ph)))
        put(f"arm_add_{side}", d(-12 + 3 * np.sin(w * t)))
        put(f"elbow_flex_{side}", d(35 + 15 * np.sin(w * t + ph)))
        put(f"pro_sup_{side}", d(60))
    put("L5_S1_axial_rotation", d(4 * np.sin(w * t)))
    if lumbar:  # lumbar flexion: with HALPE_26's colinear pelvis keypoints it trades with pelvis tilt
        put("L5_S1_Flex_Ext", d(-4 + 3 * np.sin(2 * w * t)))
    return q


def _couple(osim, model, names: list[str], q: np.ndarray) -> None:
    """Set coordinates driven by CoordinateCouplerConstraints (full model) from their functions."""
    cons = model.getConstraintSet()
    for i in range(cons.getSize()):
        c = osim.CoordinateCouplerConstraint.safeDownCast(cons.get(i))
        if c is None:
            continue
        ind = c.getIndependentCoordinateNames()
        cols = [names.index(ind.get(k)) for k in range(ind.getSize())]
        dep, fn = names.index(c.getDependentCoordinateName()), c.getFunction()
        for f in range(len(q)):
            v = osim.Vector(len(cols), 0.0)
            for k, col in enumerate(cols):
                v.set(k, float(q[f, col]))
            q[f, dep] = fn.calcValue(v)


def marker_positions(model, state, coords: list, q: np.ndarray) -> tuple[list, np.ndarray]:
    """OpenSim forward kinematics: the model's markers and their ground positions (F, M, 3) for the
    coordinate values ``q`` (F, C) of ``coords``."""
    ms = model.getMarkerSet()
    markers = [ms.get(i) for i in range(ms.getSize())]
    xyz = np.empty((len(q), len(markers), 3))
    for f in range(len(q)):
        for c, v in zip(coords, q[f]):
            c.setValue(state, float(v), False)
        model.realizePosition(state)
        for k, m in enumerate(markers):
            xyz[f, k] = m.getLocationInGround(state).to_numpy()
    return markers, xyz


@lru_cache(maxsize=4)
def scene(n: int = 150, rate: float = 60.0, lumbar: bool = False, marker_file: str = "Markers_Halpe26.xml",
          model_file: str = "Model_Pose2Sim_simple.osim"):
    """(marker names (M,), xyz (n, M, 3) Y-up metres, coordinate names (C,), truth (n, C) degrees
    for rotations / metres, body -> true factor)."""
    import opensim as osim

    osim.Logger.setLevelString("error")
    model = osim.Model(str(asset_path(f"OpenSim_Setup/{model_file}")))
    model.set_MarkerSet(osim.MarkerSet(str(asset_path(f"OpenSim_Setup/{marker_file}"))))
    state = model.initSystem()
    scales = osim.ScaleSet()
    bodies = [model.getBodySet().get(i).getName() for i in range(model.getBodySet().getSize())]
    for b in bodies:
        sc = osim.Scale()
        sc.setSegmentName(b)
        f = body_factor(b)
        sc.setScaleFactors(osim.Vec3(f, f, f))
        sc.setApply(True)
        scales.cloneAndAppend(sc)
    model.scale(state, scales, True, -1.0)
    state = model.initSystem()
    cs = model.getCoordinateSet()
    coords = [cs.get(i) for i in range(cs.getSize())]
    names = [c.getName() for c in coords]
    q = motion(names, n, rate, lumbar)
    _couple(osim, model, names, q)
    markers, xyz = marker_positions(model, state, coords, q)
    rot = np.array([c.getMotionType() == 1 for c in coords])
    truth = q.copy()
    truth[:, rot] = np.degrees(truth[:, rot])
    return [m.getName() for m in markers], xyz, names, truth, {b: body_factor(b) for b in bodies}

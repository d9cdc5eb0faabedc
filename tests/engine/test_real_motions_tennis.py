"""The tennis serve: a real capture with arms overhead, reaching and the trunk turning (issue 11).

Truth chain, independent of the solver under test: a Plug-in-Gait C3D capture (Kinetics Toolkit,
Apache 2.0) retargeted onto Pose2Sim's model with OpenSim's own tools (``scripts/retarget_c3d.py``)
→ OpenSim's forward kinematics (``openkin synth``) → truth keypoints → scaling + OpenKin's IK →
coordinates compared with the motion's. The error bounds are the product's goals for a raised arm
on clean keypoints, not today's values.
"""
from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from openkin.synth import real_motions as rm

osim = pytest.importorskip("opensim")

SHOULDER_ORIENT_GOAL = 10.0   # deg: mean angle between the estimated and true humerus orientation
ELBOW_GOAL = 3.0              # deg: elbow flexion RMSE
SHOULDER_EULER_GOAL = 10.0    # deg: RMSE of arm_flex/arm_add over both sides


def _table(name: str) -> tuple[list[str], np.ndarray]:
    text = rm.original_bytes(name).decode().splitlines()
    start = next(i for i, line in enumerate(text) if line.strip() == "endheader") + 1
    return text[start].split(), np.array([[float(v) for v in line.split()] for line in text[start + 1:]])


def test_tennis_is_pinned_and_maps_onto_the_model_unchanged():
    entry = rm.REAL_MOTIONS["tennis"]
    raw = gzip.decompress((rm.DATA / entry.file).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == entry.sha256
    assert entry.native and "kineticstoolkit" in entry.repo
    cols, table = _table("tennis")
    model = osim.Model(str(__import__("openkin.assets", fromlist=["x"]).asset_path(
        "OpenSim_Setup/Model_Pose2Sim_simple.osim")))
    cs = model.getCoordinateSet()
    ranges = {cs.get(i).getName(): (cs.get(i).getRangeMin(), cs.get(i).getRangeMax()) for i in range(cs.getSize())}
    times, coords = rm.on_model("tennis", ranges)
    assert np.allclose(times, table[:, 0]) and np.isclose(times[-1] - times[0], 21.82)
    for name in ("knee_angle_r", "L5_S1_Flex_Ext", "arm_add_l", "arm_rot_r", "elbow_flex_r"):
        assert np.allclose(np.degrees(coords[name]), table[:, cols.index(name)], atol=1e-6), name  # no flip, no clip
    # what it is there for: arms raised overhead (humeral elevation past 110 deg), the trunk turning
    for side in "rl":
        f, a = (np.radians(table[:, cols.index(f"arm_{c}_{side}")]) for c in ("flex", "add"))
        elevation = np.degrees(np.arccos(np.cos(f) * np.cos(a)))  # angle of the humerus from hanging
        assert elevation.max() > 110, side
    assert np.ptp(table[:, cols.index("pelvis_rotation")]) > 90
    assert np.ptp(table[:, cols.index("L5_S1_axial_rotation")]) > 20


@pytest.mark.xfail(strict=True, reason="goal of issue 11 not met yet: shoulder orientation error 24.8 deg on these "
                   "clean keypoints (Pose2Sim 4.8 deg on the 600-frame bench scene; OpenKin without the arm-rotation "
                   "prior 3.7 deg): frames with the elbow bent 20-35 deg and the humerus rotated 75-105 deg, where "
                   "the weak prior toward 0 (kinematics.WEAK_PRIORS, scaled by setup.elbow_observability) still wins")
def test_openkin_ik_follows_the_raised_arm_on_clean_keypoints(tmp_path):
    from scipy.spatial.transform import Rotation

    from openkin.formats.mot import read_mot
    from openkin.kinematics import KinematicsOptions, ik, prepare
    from openkin.kinematics.setup import load_model
    from openkin.synth import build_scene

    info = build_scene(tmp_path / "scene", "clean", n_frames=300, seed=0, motion="tennis", rate=25)
    truth = read_mot(info.truth_mot[0])
    prep = prepare(info.truth_trc[0], tmp_path / "kin", KinematicsOptions(workers=1, use_simple_model=True))
    model, _ = load_model(prep.job.model_path)
    res = ik.solve_openkin(prep.job, model)
    names, tv = res.coordinate_names, truth.values[:len(res.q)]
    assert len(res.q) == 300
    elev = []
    for side in "rl":
        euler = [f"arm_{c}_{side}" for c in ("flex", "add", "rot")]
        e = Rotation.from_euler("ZXY", np.degrees(res.q[:, [names.index(c) for c in euler]]), degrees=True)
        t = Rotation.from_euler("ZXY", tv[:, [truth.names.index(c) for c in euler]], degrees=True)
        elev.append(np.degrees((e.inv() * t).magnitude()))
    rmse = {c: float(np.sqrt(np.mean((np.degrees(res.q[:, names.index(c)]) - tv[:, truth.names.index(c)]) ** 2)))
            for c in ("elbow_flex_r", "elbow_flex_l", "arm_flex_r", "arm_flex_l", "arm_add_r", "arm_add_l")}
    orient = float(np.mean(elev))
    print(f"tennis clean: shoulder orientation error {orient:.1f} deg (max {np.max(elev):.0f}), RMSE {rmse}")
    assert orient < SHOULDER_ORIENT_GOAL
    assert max(rmse["elbow_flex_r"], rmse["elbow_flex_l"]) < ELBOW_GOAL
    assert max(rmse[c] for c in rmse if c.startswith("arm_")) < SHOULDER_EULER_GOAL

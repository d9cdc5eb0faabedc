"""6-DoF trackers (issue #11): the OpenSim IMU orientation .sto, the orientation residuals of the batch
IK solver, simulated trackers of ``openkin synth``, and bad inputs.

Independent truths: OpenSim's own reader (``TimeSeriesTableQuaternion``) for the file format; OpenSim's
forward kinematics (``Body.getTransformInGround`` on a state set from the truth coordinates) for the
trackers' targets and for what IK must recover; central finite differences for the Jacobian.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from openkin.assets import asset_path
from openkin.errors import OpenKinError
from openkin.formats.imu import Orientations, read_orientations, write_orientations
from openkin.formats.mot import read_mot
from openkin.kinematics import ik, model_tree, solver
from openkin.kinematics.setup import load_model
from openkin.kinematics.trackers import load_targets

osim = pytest.importorskip("opensim")
SIMPLE = "OpenSim_Setup/Model_Pose2Sim_simple.osim"
MARKERS = "OpenSim_Setup/Markers_Halpe26.xml"
# a tracker on each body whose joint the test checks: pelvis (free joint's rotations), torso (lumbar),
# femur (hip), tibia (knee), humerus (shoulder), ulna (elbow)
TRACKED = {"pelvis_imu": "pelvis", "torso_imu": "torso", "femur_r_imu": "femur_r", "tibia_r_imu": "tibia_r",
           "humerus_r_imu": "humerus_r", "ulna_r_imu": "ulna_r", "femur_l_imu": "femur_l", "tibia_l_imu": "tibia_l"}
RECOVERED = ("pelvis_tilt", "pelvis_list", "pelvis_rotation", "L5_S1_Flex_Ext", "L5_S1_Lat_Bending",
             "L5_S1_axial_rotation", "hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r",
             "arm_flex_r", "arm_add_r", "arm_rot_r", "elbow_flex_r", "hip_flexion_l", "knee_angle_l")


# ----------------------------------------------------------------------------- file format
def _quats(draw_rng: np.random.Generator, F: int, S: int) -> np.ndarray:
    q = Rotation.random(F * S, rng=draw_rng).as_quat(canonical=True, scalar_first=True).reshape(F, S, 4)
    return q


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(F=st.integers(1, 12), S=st.integers(1, 5), seed=st.integers(0, 2 ** 31), rate=st.floats(1, 2000),
       missing=st.floats(0, 0.5), names=st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,12}_imu", fullmatch=True),
                                                  min_size=5, max_size=5, unique=True))
def test_orientations_round_trip(tmp_path, F, S, seed, rate, missing, names):
    rng = np.random.default_rng(seed)
    q = _quats(rng, F, S)
    q[rng.random((F, S)) < missing] = np.nan
    data = Orientations(names[:S], np.arange(F) / rate, q, rate)
    path = tmp_path / "o.sto"
    write_orientations(path, data)
    back = read_orientations(path)
    assert back.names == data.names
    assert np.allclose(back.times, data.times, rtol=0, atol=1e-8)
    assert back.rate == pytest.approx(rate, rel=1e-6, abs=1e-6)
    assert np.array_equal(np.isnan(back.quat), np.isnan(q))
    assert np.allclose(np.nan_to_num(back.quat), np.nan_to_num(q), atol=2e-8)


def test_opensim_reads_what_we_write(tmp_path):
    rng = np.random.default_rng(3)
    q = _quats(rng, 7, 3)
    path = tmp_path / "walk_orientations.sto"
    write_orientations(path, Orientations(["pelvis_imu", "torso_imu", "tibia_r_imu"], np.arange(7) / 60, q, 60))
    table = osim.TimeSeriesTableQuaternion(str(path))
    assert list(table.getColumnLabels()) == ["pelvis_imu", "torso_imu", "tibia_r_imu"]
    assert table.getNumRows() == 7
    got = np.array([[[table.getRowAtIndex(f).getElt(0, s).get(k) for k in range(4)] for s in range(3)]
                    for f in range(7)])
    assert np.allclose(got, q, atol=1e-8)
    assert np.allclose(np.array(table.getIndependentColumn()), np.arange(7) / 60, atol=1e-6)
    assert float(table.getTableMetaDataAsString("DataRate")) == 60.0


# ----------------------------------------------------------------------------- OpenSim truth
def _truth_motion(names: list[str], n: int) -> np.ndarray:
    """(n, C) a varied motion (radians/metres) on the model's coordinates."""
    t = np.arange(n) / 30.0
    q = np.zeros((n, len(names)))
    d = np.radians
    wave = {"pelvis_tilt": (-8, 6), "pelvis_list": (3, 4), "pelvis_rotation": (25, 30), "L5_S1_Flex_Ext": (-10, 8),
            "L5_S1_Lat_Bending": (0, 6), "L5_S1_axial_rotation": (0, 10), "hip_flexion_r": (20, 30),
            "hip_adduction_r": (0, 8), "hip_rotation_r": (0, 10), "knee_angle_r": (40, 35), "hip_flexion_l": (10, 25),
            "knee_angle_l": (30, 25), "arm_flex_r": (20, 40), "arm_add_r": (-20, 15), "arm_rot_r": (10, 20),
            "elbow_flex_r": (60, 40), "pro_sup_r": (60, 0)}
    for k, (name, (mean, amp)) in enumerate(wave.items()):
        q[:, names.index(name)] = d(mean + amp * np.sin(2 * np.pi * 0.4 * t + 0.7 * k))
    q[:, names.index("pelvis_ty")] = 0.95
    q[:, names.index("pelvis_tx")] = 0.5 * t
    return q


def _opensim_rotations(model, state, q: np.ndarray, bodies: list[str]) -> np.ndarray:
    """(F, S, 3, 3) by OpenSim: coordinates set, positions realised, body transforms in ground."""
    cs = model.getCoordinateSet()
    out = np.empty((len(q), len(bodies), 3, 3))
    for f in range(len(q)):
        for i in range(cs.getSize()):
            cs.get(i).setValue(state, float(q[f, i]), False)
        model.realizePosition(state)
        for s, b in enumerate(bodies):
            R = model.getBodySet().get(b).getTransformInGround(state).R().asMat33()
            out[f, s] = [[R.get(i, j) for j in range(3)] for i in range(3)]
    return out


@pytest.fixture(scope="module")
def simple_model():
    model, state = load_model(asset_path(SIMPLE), asset_path(MARKERS))
    names = [model.getCoordinateSet().get(i).getName() for i in range(model.getCoordinateSet().getSize())]
    return model, state, names


def _write_trackers(folder, R: np.ndarray, sensors: list[str], rate: float) -> None:
    quat = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat(canonical=True, scalar_first=True)
    write_orientations(folder / "trial_orientations.sto",
                       Orientations(sensors, np.arange(len(R)) / rate, quat.reshape(R.shape[:2] + (4,)), rate))


def _tracker_folder(tmp_path, model, state, q_true: np.ndarray, rate: float):
    """PROJECT/trackers with one orientations .sto of the TRACKED sensors: OpenSim's body orientations
    of the truth ``q_true`` (F, C)."""
    sensors = list(TRACKED)
    folder = tmp_path / "trackers"
    folder.mkdir()
    _write_trackers(folder, _opensim_rotations(model, state, q_true, [TRACKED[s] for s in sensors]), sensors, rate)
    return folder


def test_orientation_only_ik_recovers_truth(tmp_path, simple_model):
    """Trackers alone (every marker missing): the coordinates of the tracked bodies' joints come back
    (< 0.3 deg), the targets being OpenSim's own body orientations of the truth."""
    model, state, names = simple_model
    F, rate = 40, 30.0
    q_true = _truth_motion(names, F)
    folder = _tracker_folder(tmp_path, model, state, q_true, rate)
    times = np.arange(F) / rate
    bodies = [model.getBodySet().get(i).getName() for i in range(model.getBodySet().getSize())]
    targets = load_targets(folder, TRACKED, {}, times, bodies)
    ms = model.getMarkerSet()
    marker_names = [ms.get(i).getName() for i in range(ms.getSize())]
    job = ik.IkJob(str(asset_path(SIMPLE)), marker_names, np.full((F, len(marker_names), 3), np.nan), times, {},
                   trackers=targets)
    result = ik.solve_openkin(job, model)
    assert np.isnan(result.rms).all()  # no marker to measure
    for name in RECOVERED:
        k = names.index(name)
        err = np.degrees(np.abs(result.q[:, k] - q_true[:, k])).max()
        assert err < 0.3, f"{name}: {err:.3f} deg"


def test_positions_observe_the_pelvis_translation(tmp_path, simple_model):
    """Trackers alone with the pelvis tracker's position (a TRC column named like the sensor): the pelvis
    translation is recovered too (< 1 mm), which orientations alone leave unobserved."""
    from openkin.formats.trc import Trc, write_trc

    model, state, names = simple_model
    F, rate = 20, 30.0
    q_true = _truth_motion(names, F)
    folder = _tracker_folder(tmp_path, model, state, q_true, rate)
    cs = model.getCoordinateSet()
    origin = np.empty((F, 1, 3))
    for f in range(F):
        for i in range(cs.getSize()):
            cs.get(i).setValue(state, float(q_true[f, i]), False)
        model.realizePosition(state)
        origin[f, 0] = model.getBodySet().get("pelvis").getPositionInGround(state).to_numpy()
    write_trc(folder / "positions.trc", Trc(["pelvis_imu"], rate, origin))
    times = np.arange(F) / rate
    tree = model_tree.read_tree(model)
    targets = load_targets(folder, TRACKED, {}, times, list(tree.bodies))
    assert np.isnan(targets.p[:, 1:]).all() and np.isfinite(targets.p[:, 0]).all()
    job = ik.IkJob(str(asset_path(SIMPLE)), list(tree.marker_names), np.full((F, len(tree.marker_names), 3), np.nan),
                   times, {}, trackers=targets)
    result = ik.solve_openkin(job, model)
    for name in ("pelvis_tx", "pelvis_ty", "pelvis_tz"):
        k = names.index(name)
        assert np.abs(result.q[:, k] - q_true[:, k]).max() < 1e-3, name


def test_fusion_fills_frames_without_markers(tmp_path, simple_model):
    """Markers on half the frames, trackers on all: the markerless frames follow the trackers, and the
    marked frames keep a sub-millimetre fit (markers and trackers agree: both from the truth)."""
    model, state, names = simple_model
    F, rate = 30, 30.0
    q_true = _truth_motion(names, F)
    folder = _tracker_folder(tmp_path, model, state, q_true, rate)
    tree = model_tree.read_tree(model)
    xyz = model_tree.forward(tree, q_true).markers
    xyz[F // 2:] = np.nan
    times = np.arange(F) / rate
    bodies = list(tree.bodies)
    job = ik.IkJob(str(asset_path(SIMPLE)), list(tree.marker_names), xyz, times, {},
                   trackers=load_targets(folder, TRACKED, {}, times, bodies))
    result = ik.solve_openkin(job, model)
    assert np.nanmax(result.rms[: F // 2]) < 1e-3
    for name in RECOVERED:
        k = names.index(name)
        assert np.degrees(np.abs(result.q[F // 2:, k] - q_true[F // 2:, k])).max() < 0.3, name


def test_fusion_leaves_out_swapped_markers(tmp_path, simple_model):
    """Left/right keypoints swapped on a third of the frames (what two cameras swapping at once give):
    the trackers hold the pose, the swapped markers are left out, the tracked joints stay on the truth
    and the legs' markers fit again on the swapped frames."""
    model, state, names = simple_model
    F, rate = 30, 30.0
    q_true = _truth_motion(names, F)
    folder = _tracker_folder(tmp_path, model, state, q_true, rate)
    tree = model_tree.read_tree(model)
    xyz = model_tree.forward(tree, q_true).markers
    mk = list(tree.marker_names)
    pairs = [(mk.index(n), mk.index("R" + n[1:])) for n in mk if n.startswith("L") and "R" + n[1:] in mk]
    swapped = np.arange(F) % 3 == 1
    for a, b in pairs:
        xyz[swapped, a], xyz[swapped, b] = xyz[swapped, b].copy(), xyz[swapped, a].copy()
    times = np.arange(F) / rate
    job = ik.IkJob(str(asset_path(SIMPLE)), mk, xyz, times, {},
                   trackers=load_targets(folder, TRACKED, {}, times, list(tree.bodies)))
    result = ik.solve_openkin(job, model)
    for name in RECOVERED:
        k = names.index(name)
        assert np.degrees(np.abs(result.q[:, k] - q_true[:, k])).max() < 0.5, name


def test_orientation_jacobian_matches_finite_differences(simple_model):
    model, _, _ = simple_model
    tree = model_tree.read_tree(model)
    rng = np.random.default_rng(0)
    F, n = 4, len(tree.free)
    x = tree.default[tree.free] + rng.normal(0, 0.3, (F, n))
    bodies = [tree.bodies.index(b) for b in ("pelvis", "torso", "humerus_r", "tibia_l", "hand_r")]
    q, _ = model_tree.full_coordinates(tree, x + rng.normal(0, 0.6, (F, n)))  # targets far from x: large errors
    pose = model_tree.forward(tree, q, np.zeros(0, int))
    R = pose.body_R[bodies].transpose(1, 0, 2, 3)
    p = pose.body_p[bodies].transpose(1, 0, 2)
    p[:, 1:3] = np.nan                    # positions for some sensors only
    R[2, 0] = np.nan                      # a missing sample
    markers = np.arange(len(tree.marker_names))
    obs = model_tree.forward(tree, q, markers).markers
    obs[1] = np.nan                       # a frame without markers
    pb = solver.Problem(tree, markers, solver.pack_targets(obs, R, p), np.ones(len(markers)), np.array([0]),
                        np.array([0.1]), np.array([0.0]), trk_body=np.array(bodies), trk_w=np.array([1, 2, .5, 1, 3.]))
    r, J = solver.residuals(pb, x, pb.obs)
    assert r.shape[1] == 3 * len(markers) + 1 + 6 * len(bodies)
    eps = 1e-6
    num = np.empty_like(J)
    for k in range(n):
        dx = np.zeros(n)
        dx[k] = eps
        num[:, :, k] = (solver.residuals(pb, x + dx, pb.obs, jac=False)[0]
                        - solver.residuals(pb, x - dx, pb.obs, jac=False)[0]) / (2 * eps)
    trk = slice(-6 * len(bodies), None)
    assert np.abs(num[:, trk]).max() > 1.0  # the tracker rows do depend on x
    assert np.allclose(J[:, trk], num[:, trk], atol=1e-6)
    assert np.allclose(J, num, atol=1e-6)
    cols = np.array([0, 3, 7, 12])
    assert np.array_equal(solver.residuals(pb, x, pb.obs, cols=cols)[1], J[:, :, cols])


def test_synth_trackers_are_opensim_body_orientations(tmp_path, simple_model):
    """``synth --trackers``: without noise, each reading is OpenSim's body orientation for the truth
    angles.mot read back (< 1e-5 rad); with noise the error has the asked spread; declared in Config.toml."""
    from openkin.config import load_config
    from openkin.synth import build_scene

    model, state, names = simple_model
    bodies = ["pelvis", "torso", "humerus_r", "humerus_l", "tibia_r", "tibia_l"]
    info = build_scene(tmp_path / "s", "clean", n_frames=25, trackers=tuple(bodies))
    data = read_orientations(tmp_path / "s" / "trackers" / "s_orientations.sto")
    assert data.names == [f"{b}_imu" for b in bodies]
    mot = read_mot(info.truth_mot[0])
    q = np.zeros((len(mot.times), len(names)))
    for k, n in enumerate(names):
        q[:, k] = model.getCoordinateSet().get(n).getDefaultValue()
        if n in mot.names:
            v = mot.column(n)
            q[:, k] = v if n.endswith(("_tx", "_ty", "_tz")) else np.radians(v)
    truth = _opensim_rotations(model, state, q, bodies)
    got = Rotation.from_quat(data.quat.reshape(-1, 4), scalar_first=True)
    err = (got.inv() * Rotation.from_matrix(truth.reshape(-1, 3, 3))).magnitude()
    assert np.allclose(data.times, mot.times, rtol=0, atol=1e-7) and err.max() < 1e-5
    assert load_config(tmp_path / "s").kinematics.trackers == {f"{b}_imu": b for b in bodies}

    build_scene(tmp_path / "n", "clean", n_frames=25, trackers=tuple(bodies), tracker_noise_deg=2.0)
    noisy = read_orientations(tmp_path / "n" / "trackers" / "n_orientations.sto")
    rv = (Rotation.from_quat(noisy.quat.reshape(-1, 4), scalar_first=True).inv() * got).as_rotvec()
    assert np.degrees(rv.std(0)) == pytest.approx([2.0] * 3, rel=0.2)


# ----------------------------------------------------------------------------- bad inputs
def _one_file(tmp_path, names=("pelvis_imu",), text: str | None = None):
    folder = tmp_path / "trackers"
    folder.mkdir(exist_ok=True)
    path = folder / "t_orientations.sto"
    if text is None:
        write_orientations(path, Orientations(list(names), np.arange(3) / 60.0,
                                              np.tile([1.0, 0, 0, 0], (3, len(names), 1)), 60.0))
    else:
        path.write_text(text)
    return folder, path


BODIES = ["pelvis", "torso", "femur_r"]


def test_unknown_body_is_named(tmp_path):
    folder, _ = _one_file(tmp_path)
    with pytest.raises(OpenKinError) as e:
        load_targets(folder, {"pelvis_imu": "pelvic"}, {}, np.arange(3) / 60.0, BODIES, "Config.toml")
    assert "pelvic" in e.value.problem and "'pelvis'" in e.value.fix


def test_file_matching_no_sensor(tmp_path):
    folder, path = _one_file(tmp_path, names=("wrist_imu",))
    with pytest.raises(OpenKinError) as e:
        load_targets(folder, {"pelvis_imu": "pelvis"}, {}, np.arange(3) / 60.0, BODIES)
    assert e.value.path == path and "wrist_imu" in e.value.problem and "declare" in e.value.fix


def test_declared_sensor_in_no_file(tmp_path):
    folder, _ = _one_file(tmp_path)
    with pytest.raises(OpenKinError) as e:
        load_targets(folder, {"pelvis_imu": "pelvis", "torso_imu": "torso"}, {}, np.arange(3) / 60.0, BODIES)
    assert "torso_imu" in e.value.problem


def test_no_tracker_folder(tmp_path):
    with pytest.raises(OpenKinError) as e:
        load_targets(tmp_path / "trackers", {"pelvis_imu": "pelvis"}, {}, np.arange(3) / 60.0, BODIES)
    assert "no tracker file" in e.value.problem


def test_not_a_quaternion_file(tmp_path):
    text = "Coordinates\nversion=1\nDataType=double\nendheader\ntime\tpelvis_imu\n0\t1.0\n"
    _, path = _one_file(tmp_path, text=text)
    with pytest.raises(OpenKinError) as e:
        read_orientations(path)
    assert e.value.path == path and "quaternion" in e.value.problem and "DataType=Quaternion" in e.value.fix


def test_zero_quaternion(tmp_path):
    text = ("DataRate=60\nDataType=Quaternion\nversion=3\nendheader\ntime\tpelvis_imu\ttorso_imu\n"
            "0\t1,0,0,0\t1,0,0,0\n0.0166\t1,0,0,0\t0,0,0,0\n")
    _, path = _one_file(tmp_path, text=text)
    with pytest.raises(OpenKinError) as e:
        read_orientations(path)
    assert "torso_imu" in e.value.problem and "zero norm" in e.value.problem and "row 2" in e.value.problem


@pytest.mark.parametrize("cell", ["1,0,0", "1,0,x,0"])
def test_malformed_cell(tmp_path, cell):
    text = f"DataRate=60\nDataType=Quaternion\nendheader\ntime\tpelvis_imu\n0\t{cell}\n"
    _, path = _one_file(tmp_path, text=text)
    with pytest.raises(OpenKinError) as e:
        read_orientations(path)
    assert "line 5" in e.value.problem


def test_opensim_solver_warns_it_ignores_trackers(tmp_path, simple_model, caplog):
    model, state, names = simple_model
    folder, _ = _one_file(tmp_path)
    tree = model_tree.read_tree(model)
    q = np.tile(tree.default, (3, 1))
    job = ik.IkJob(str(asset_path(SIMPLE)), list(tree.marker_names), model_tree.forward(tree, q).markers,
                   np.arange(3) / 60.0, {}, trackers=load_targets(folder, {"pelvis_imu": "pelvis"}, {},
                                                                  np.arange(3) / 60.0, list(tree.bodies)))
    path = tmp_path / "m.osim"
    model.printToXML(str(path))
    job.model_path = str(path)
    with caplog.at_level(logging.WARNING):
        ik.solve_all([job], 1, None, "opensim")
    assert any("does not use the 6-DoF trackers" in r.getMessage() for r in caplog.records)

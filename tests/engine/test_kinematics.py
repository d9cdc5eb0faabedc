"""Kinematics stage: scaling + IK recover known angles; each OpenSim pitfall gets a clear error."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("opensim")

from kinematics_truth import scene  # noqa: E402

from openkin.errors import OpenKinError  # noqa: E402
from openkin.formats.mot import read_mot  # noqa: E402
from openkin.formats.trc import Trc, read_trc, write_trc  # noqa: E402
from openkin.kinematics import KinematicsOptions, run_stage, run_trials  # noqa: E402
from openkin.kinematics import checks, ik, measure, scaling  # noqa: E402
from openkin.kinematics.setup import load_model, read_ik_tasks, read_measurements, setup_files  # noqa: E402

SIMPLE = KinematicsOptions(use_simple_model=True, workers=1)


def _write(path: Path, names, xyz, rate=60.0, units="m") -> Path:
    write_trc(path, Trc(list(names), rate, xyz), units=units)
    return path


def _rmse(mot, names, truth, coord) -> float:
    e = mot.column(coord) - truth[:, names.index(coord)]
    return float(np.sqrt(np.mean(((e + 180) % 360 - 180) ** 2)))


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory):
    """The kinematics stage on a TRC of a scaled subject (150 frames, simple model, 2 workers)."""
    from openkin.config import load_config
    from openkin.project import ProjectPaths

    root = tmp_path_factory.mktemp("trial")
    markers, xyz, coords, truth, factors = scene(150)
    _write(root / "pose-3d" / "walk_filt_butterworth.trc", markers, xyz.copy())
    (root / "Config.toml").write_text(
        "[project]\nframe_rate = 60\nparticipant_mass = 75.0\n[pose]\npose_model = 'HALPE_26'\n"
        "[kinematics]\nuse_augmentation = false\nuse_simple_model = true\nparallel_workers_kinematics = 2\n")
    paths = ProjectPaths(root)
    elsewhere = tmp_path_factory.mktemp("shell")
    cwd = os.getcwd()
    os.chdir(elsewhere)  # the user's shell folder: OpenSim must not leave its log there
    try:
        run_stage(load_config(root), paths)
    finally:
        os.chdir(cwd)
    assert list(elsewhere.iterdir()) == []
    return paths, coords, truth, factors


def test_opensim_log_goes_to_the_projects_log_folder(stage_run):
    paths = stage_run[0]
    assert (paths.logs / "opensim.log").is_file()
    assert not list(paths.root.rglob("opensim.log"))[1:]  # that one only


def test_stage_recovers_known_angles(stage_run):
    paths, coords, truth, _ = stage_run
    mot = read_mot(paths.kinematics / "walk_filt_butterworth.mot")
    assert len(mot.times) == 150
    tol = {"knee_angle_r": 0.5, "knee_angle_l": 0.5, "hip_flexion_r": 1.0, "hip_flexion_l": 1.0,
           "hip_adduction_r": 1.0, "hip_rotation_r": 1.5, "ankle_angle_r": 1.5, "ankle_angle_l": 1.5,
           "pelvis_list": 1.0, "pelvis_rotation": 1.0, "L5_S1_axial_rotation": 1.5,
           "arm_flex_r": 2.0, "arm_add_r": 1.5, "elbow_flex_r": 1.5, "elbow_flex_l": 1.5}
    errors = {c: _rmse(mot, coords, truth, c) for c in tol}
    assert all(errors[c] < tol[c] for c in tol), errors
    # pelvis translation (m)
    assert np.sqrt(np.mean((mot.column("pelvis_tx") - truth[:, coords.index("pelvis_tx")]) ** 2)) < 0.01


def test_stage_writes_model_errors_and_summary(stage_run):
    import tomllib

    paths, _, _, factors = stage_run
    k = paths.kinematics
    assert (k / "walk_filt_butterworth.osim").is_file()
    errors = np.loadtxt(k / "walk_filt_butterworth_marker_errors.csv", delimiter=",", skiprows=1)
    assert errors.shape == (150, 4) and np.all(errors[:, 2] < 0.004)  # per-frame RMS < 4 mm
    summary = tomllib.loads(Path(k / "walk_filt_butterworth_kinematics.toml").read_text())
    assert summary["mass_kg"] == 75.0
    for body in ("femur_r", "tibia_l", "humerus_r", "pelvis", "torso"):
        assert summary["scale_factors"][body] == pytest.approx(factors[body], abs=0.015), body
    model, _ = load_model(k / "walk_filt_butterworth.osim")
    assert model.getMarkerSet().getSize() == 22


def test_refined_scaling_beats_default_pose_ratios():
    """Pose2Sim's default-pose ratios are biased for pairs spanning joints; refinement fixes it."""
    markers, xyz, _, _, truth_factors = scene(150)
    marker_file, ik_file, scale_file = setup_files("HALPE_26")
    from openkin.assets import asset_path
    model, state = load_model(asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim"), marker_file)
    times = np.arange(len(xyz)) / 60.0
    args = (xyz, times, list(markers), model, state, read_measurements(scale_file), read_ik_tasks(ik_file))
    plain, _ = scaling.estimate_factors(*args, refine=0)
    refined, _ = scaling.estimate_factors(*args, refine=2)
    bodies = ["femur_r", "tibia_r", "humerus_r", "radius_r", "torso", "pelvis", "calcn_r"]
    err = lambda f: max(abs(f[b] - truth_factors[b]) for b in bodies)  # noqa: E731
    assert err(refined) < 0.01
    assert err(refined) < 0.5 * err(plain), (err(plain), err(refined))


def test_time_chunks_in_parallel_match_one_pass(stage_run):
    """Chunks solved in parallel give the one-pass solution within the solver's accuracy: the same
    values for well-determined coordinates, errors no worse for weakly determined ones (ankle/mtp)."""
    from openkin.kinematics import with_priors

    paths, coords, truth, _ = stage_run
    markers, xyz, *_ = scene(150)
    tasks = with_priors(read_ik_tasks(setup_files("HALPE_26")[1]))
    job = ik.IkJob(str(paths.kinematics / "walk_filt_butterworth.osim"), list(markers), xyz,
                   np.arange(150) / 60.0, tasks.marker_weights, tasks.coordinate_tasks)
    one = ik.solve_all([job], 1)[0]
    two = ik.solve_all([job], 2)[0]
    assert two.q.shape == one.q.shape == (150, len(one.coordinate_names))
    names = one.coordinate_names
    for c in ("knee_angle_r", "knee_angle_l", "hip_flexion_r", "pelvis_list"):
        i = names.index(c)
        assert np.degrees(np.abs(two.q[:, i] - one.q[:, i])).max() < 0.25, c
    # the elbow trades with the humerus' rotation, whose weak prior (3e-4) leaves it to OpenSim's warm start
    for c in ("ankle_angle_r", "hip_rotation_l", "subtalar_angle_l", "arm_flex_r", "elbow_flex_l"):
        i, j = names.index(c), coords.index(c)
        err1 = np.abs(np.degrees(one.q[:, i]) - truth[:, j]).max()
        err2 = np.abs(np.degrees(two.q[:, i]) - truth[:, j]).max()
        assert err2 < err1 + 0.1, c


def test_full_model_short_trial(tmp_path):
    markers, xyz, coords, truth, _ = scene(24, model_file="Model_Pose2Sim_muscles_flex.osim")
    trc = _write(tmp_path / "t.trc", markers, xyz.copy())
    mot = read_mot(run_trials([trc], tmp_path / "kin", KinematicsOptions(workers=1))[0])
    assert "knee_angle_r_beta" in mot.names and "L4_L5_Flex_Ext" in mot.names  # the full model's coordinates
    for c, tol in {"knee_angle_r": 1.0, "knee_angle_l": 1.0, "ankle_angle_r": 1.5, "hip_adduction_r": 1.0,
                   "hip_flexion_l": 1.0, "elbow_flex_r": 1.5}.items():
        assert _rmse(mot, coords, truth, c) < tol, c


# ------------------------------------------------------------------ pitfalls
def test_millimetres_are_caught(tmp_path):
    markers, xyz, *_ = scene(150)
    trc = _write(tmp_path / "mm.trc", markers, xyz[:20] * 1000.0)  # header says m, values are mm
    with pytest.raises(OpenKinError, match="millimetres") as e:
        run_trials([trc], tmp_path / "kin", SIMPLE)
    assert "mm.trc" in str(e.value) and "Units" in str(e.value)


def test_nan_markers_error_policy_names_markers_and_frames(tmp_path):
    markers, xyz, *_ = scene(150)
    bad = xyz[:80].copy()
    bad[10:15, markers.index("RKnee")] = np.nan
    trc = _write(tmp_path / "nan.trc", markers, bad)
    with pytest.raises(OpenKinError, match=r"RKnee \(5 frames: 10-14\)") as e:
        run_trials([trc], tmp_path / "kin", KinematicsOptions(use_simple_model=True, missing_markers="error"))
    assert "missing_markers" in str(e.value)


def test_nan_markers_interpolated_or_dropped(tmp_path):
    markers, xyz, coords, truth, _ = scene(150)
    bad = xyz[:90].copy()
    bad[10:13, markers.index("RKnee")] = np.nan     # short gap: filled
    bad[40:70, markers.index("LAnkle")] = np.nan    # 30 frames > interp_gap_max: frames dropped
    trc = _write(tmp_path / "gaps.trc", markers, bad)
    mot = read_mot(run_trials([trc], tmp_path / "kin", SIMPLE)[0])
    assert len(mot.times) == 60
    kept = np.r_[0:40, 70:90]
    assert _rmse(mot, coords, truth[kept], "knee_angle_r") < 1.0
    frames = np.loadtxt(tmp_path / "kin" / "gaps_marker_errors.csv", delimiter=",", skiprows=1)[:, 0]
    assert list(frames.astype(int)) == list(kept)


def test_markers_the_model_does_not_have(tmp_path):
    markers, xyz, *_ = scene(150)
    renamed = [f"marker_{m.lower()}" for m in markers]
    trc = _write(tmp_path / "names.trc", renamed, xyz[:20].copy())
    with pytest.raises(OpenKinError, match="only 0 of the TRC's 22 markers") as e:
        run_trials([trc], tmp_path / "kin", SIMPLE)
    assert "pose_model" in str(e.value) and "RKnee" in str(e.value)


@pytest.mark.parametrize("content,match", [
    (None, "not found"),
    ("this is not xml <<<", "not valid XML"),
    ('<?xml version="1.0"?><OpenSimDocument Version="40000"><Model name="m"><BodySet><objects>'
     '<Body name="b"><mass>oops</mass></Body></objects></BodySet></Model></OpenSimDocument>', "cannot load"),
])
def test_model_file_that_does_not_load(tmp_path, content, match):
    markers, xyz, *_ = scene(150)
    trc = _write(tmp_path / "t.trc", markers, xyz[:20].copy())
    model = tmp_path / "broken.osim"
    if content is not None:
        model.write_text(content)
    with pytest.raises(OpenKinError, match=match) as e:
        run_trials([trc], tmp_path / "kin", KinematicsOptions(osim_model=str(model), workers=1))
    assert "broken.osim" in str(e.value)


def test_user_model_without_markers_gets_the_keypoint_markers(tmp_path):
    from openkin.assets import asset_path
    markers, xyz, coords, truth, _ = scene(150)
    trc = _write(tmp_path / "t.trc", markers, xyz[:30].copy())
    user = asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim")  # a model with no marker set
    mot = read_mot(run_trials([trc], tmp_path / "kin", KinematicsOptions(osim_model=str(user), workers=1))[0])
    assert _rmse(mot, coords, truth[:30], "knee_angle_l") < 1.0


# ------------------------------------------------------------------ measurements
def test_trimmed_mean_drops_extremes():
    v = np.r_[np.full(8, 1.0), 100.0, -100.0, np.nan]
    assert measure.trimmed_mean(v, 20) == pytest.approx(1.0)
    assert np.isnan(measure.trimmed_mean(np.array([np.nan]), 50))


def test_crouched_fast_and_frozen_frames_are_not_measured():
    markers, xyz, *_ = scene(150)
    xyz = xyz.copy()
    xyz[100:] = xyz[99]  # frozen (out of view, last position repeated)
    idx = measure.select_frames(xyz, list(markers), 90.0)
    assert not np.any(idx >= 101) and len(idx) < 100
    flex = measure.hip_knee_flexion(xyz, list(markers))
    low = measure.select_frames(xyz[:100], list(markers), float(np.percentile(flex[:100], 60)))
    assert np.all(flex[low] <= np.percentile(flex[:100], 60))


def test_frame_ranges_text():
    assert checks.frame_ranges(np.array([3, 4, 5, 9, 12, 13])) == "3-5, 9, 12-13"


def test_trc_roundtrip_units_mm_header_is_fine(tmp_path):
    """A TRC that says mm in its header is converted by the reader: no false alarm."""
    markers, xyz, *_ = scene(150)
    trc = _write(tmp_path / "mm_ok.trc", markers, xyz[:5].copy(), units="mm")
    checks.check_units(read_trc(trc).xyz, trc)


def test_augmented_trc_markers_are_registered_on_the_scaled_model(tmp_path):
    """LSTM markers sit where the augmenter's training subjects had them, not where the generic model
    has them: placing them from keypoint-IK poses keeps their offsets out of the joint angles."""
    from openkin.augmentation import augment

    markers, xyz, coords, truth, _ = scene(150)
    names, extra = augment(list(markers), xyz, 1.85, 75.0)
    trc = _write(tmp_path / "walk_LSTM.trc", list(markers) + names, np.concatenate([xyz, extra], axis=1))
    mot = read_mot(run_trials([trc], tmp_path / "kin", KinematicsOptions(marker_set="LSTM", use_simple_model=True))[0])
    for c, tol in {"hip_flexion_r": 3.0, "pelvis_tilt": 2.0, "knee_angle_l": 4.0, "ankle_angle_r": 4.0}.items():
        assert _rmse(mot, coords, truth, c) < tol, c
    import tomllib
    summary = tomllib.loads(Path(tmp_path / "kin" / "walk_LSTM_kinematics.toml").read_text())
    assert summary["markers_registered_mm"]["r.ASIS_study"] > 10  # it did move
    assert "RKnee" in summary["markers"] and "r_knee_study" in summary["markers"]  # keypoints + augmented


def test_filter_ik_smooths_angles_with_the_filtering_section(tmp_path):
    from openkin.config import load_config
    from openkin.kinematics import angles_motion, options_from_config

    (tmp_path / "Config.toml").write_text("[kinematics]\nfilter_ik = true\nik_filter_type = 'butterworth'\n"
                                          "[filtering.butterworth]\ncut_off_frequency = 6\n")
    opts = options_from_config(load_config(tmp_path), augmented=False)
    assert opts.filter == ("butterworth", {"order": 4, "cut_off_frequency": 6.0})
    t = np.arange(240) / 60.0
    clean = np.radians(30 * np.sin(2 * np.pi * t))
    noisy = clean + np.radians(np.random.default_rng(0).normal(0, 2.0, t.size))
    res = ik.IkResult(["knee_angle_r", "pelvis_tx"], [True, False], np.column_stack([noisy, t]),
                      np.zeros(t.size), np.zeros(t.size))
    mot = angles_motion(res, t, opts.filter, 60.0)
    err = lambda v: np.sqrt(np.mean((v - np.degrees(clean))[20:-20] ** 2))  # noqa: E731
    assert err(mot.column("knee_angle_r")) < 0.6 * err(np.degrees(noisy))  # 6 Hz of 30 Hz: noise × ~0.45
    assert np.allclose(mot.column("pelvis_tx"), t, atol=1e-3)  # translations stay metres


def test_two_people_solved_in_parallel_workers(tmp_path):
    markers, xyz, coords, truth, _ = scene(150)
    a = _write(tmp_path / "trial_P1.trc", markers, xyz[:40].copy())
    b = _write(tmp_path / "trial_P2.trc", markers, xyz[40:80] + np.array([1.5, 0.0, -2.0]))
    mots = run_trials([a, b], tmp_path / "kin", KinematicsOptions(use_simple_model=True, workers=2))
    assert [m.name for m in mots] == ["trial_P1.mot", "trial_P2.mot"]
    assert _rmse(read_mot(mots[0]), coords, truth[:40], "knee_angle_r") < 1.0
    assert _rmse(read_mot(mots[1]), coords, truth[40:80], "knee_angle_r") < 1.0


@pytest.mark.parametrize("marker_set,marker_file", [("COCO_17", "Markers_Coco17.xml"),
                                                    ("BLAZEPOSE", "Markers_BlazePose.xml")])
def test_other_keypoint_sets(tmp_path, marker_set, marker_file):
    markers, xyz, coords, truth, _ = scene(60, marker_file=marker_file)
    keep = [i for i, m in enumerate(markers) if m != "Neck"]  # detectors give no neck: the TRC has none
    trc = _write(tmp_path / "t.trc", [markers[i] for i in keep], xyz[:, keep])
    mot = read_mot(run_trials([trc], tmp_path / "kin", KinematicsOptions(marker_set=marker_set, use_simple_model=True,
                                                                         workers=1))[0])
    for c in ("knee_angle_r", "elbow_flex_l", "hip_adduction_r"):
        assert _rmse(mot, coords, truth, c) < 1.5, c

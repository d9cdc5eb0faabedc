"""Config: defaults, session → trial → overrides, unknown keys, types, resolved files."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from openkin.config import (DEFAULT_CONFIG_PATH, Config, _all_keys, load_config, read_toml,
                            write_resolved_config)
from openkin.errors import OpenKinError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _session(tmp_path: Path, session: str | None, trial: str | None) -> Path:
    trial_dir = tmp_path / "session" / "trial"
    trial_dir.mkdir(parents=True)
    if session is not None:
        _write(tmp_path / "session" / "Config.toml", session)
    if trial is not None:
        _write(trial_dir / "Config.toml", trial)
    return trial_dir


def _leaf_keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out |= _leaf_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


def test_default_toml_is_exactly_the_dataclass_defaults(tmp_path):
    shipped = Config().with_overrides(read_toml(DEFAULT_CONFIG_PATH))
    assert shipped == Config()
    # ... and documents every key (a key missing from the file would also parse to its default).
    raw = read_toml(DEFAULT_CONFIG_PATH)
    assert _leaf_keys(raw) == _leaf_keys(Config().to_dict())
    sections = {k for k in _all_keys(Config) if isinstance(_get(Config().to_dict(), k), dict)}
    assert sections == set(_sections(raw))  # empty tables too


def _get(d, dotted):
    for part in dotted.split("."):
        d = d[part]
    return d


def _sections(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield prefix + k
            yield from _sections(v, f"{prefix}{k}.")


def test_attribute_names_are_pose2sim_names():
    c = Config()
    assert c.personAssociation.single_person.tracked_keypoint == "Neck"
    assert c.filtering.butterworth.cut_off_frequency == 6.0
    assert c.filtering.loess.nb_values_used == 5
    assert c.triangulation.reproj_error_threshold_triangulation == 15.0
    assert c.calibration.convert.qualisys.binning_factor == 1
    assert c.calibration.calculate.extrinsics.scene.object_coords_3d[2] == (-2.0, 0.0, 0.05)
    assert c.markerAugmentation.feet_on_floor is False and c.kinematics.use_simple_model is False


def test_merge_order_defaults_session_trial_overrides(tmp_path):
    trial = _session(
        tmp_path,
        session="[filtering]\ntype = 'kalman'\n[filtering.butterworth]\ncut_off_frequency = 8\norder = 2\n"
                "[project]\nframe_rate = 30\n",
        trial="[filtering.butterworth]\ncut_off_frequency = 10\n[project]\nmulti_person = true\n")
    c = load_config(trial, overrides={"project": {"frame_rate": 120}})
    assert c.filtering.type == "kalman"                   # session
    assert c.filtering.butterworth.order == 2             # session, not replaced by trial's table
    assert c.filtering.butterworth.cut_off_frequency == 10.0  # trial beats session
    assert c.project.multi_person is True                 # trial
    assert c.project.frame_rate == 120.0                  # overrides beat session
    assert c.filtering.one_euro.beta == 1.5               # default
    assert c.sources == (str(tmp_path / "session" / "Config.toml"), str(trial / "Config.toml"), "overrides")


def test_trial_alone_and_no_file(tmp_path):
    lone = tmp_path / "lone"
    _write(lone / "Config.toml", "[pose]\ndet_frequency = 2\n")
    assert load_config(lone).pose.det_frequency == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_config(empty) == Config(project=Config().project.__class__(project_dir=str(empty.resolve())))


def test_trial_without_own_file_inherits_session(tmp_path):
    trial = _session(tmp_path, session="[pose]\ndet_frequency = 7\n", trial=None)
    assert load_config(trial).pose.det_frequency == 7


def test_project_dir_resolved_against_trial(tmp_path):
    trial = _session(tmp_path, session="[project]\nproject_dir = '.'\n", trial="")
    assert load_config(trial).project.project_dir == str(trial.resolve())
    other = _session(tmp_path / "b", session=None, trial="[project]\nproject_dir = '../data'\n")
    assert load_config(other).project.project_dir == str((other / ".." / "data").resolve())


def test_unknown_key_names_key_file_and_closest(tmp_path):
    trial = _session(tmp_path, session=None, trial="[filtering.butterworth]\ncut_of_frequency = 6\n")
    with pytest.raises(OpenKinError) as e:
        load_config(trial)
    msg = str(e.value)
    assert "filtering.butterworth.cut_of_frequency" in msg
    assert str(trial / "Config.toml") in msg
    assert "filtering.butterworth.cut_off_frequency" in msg


def test_unknown_key_in_session_names_session_file(tmp_path):
    trial = _session(tmp_path, session="[triangulation]\nreproj_error_treshold_triangulation = 10\n", trial="")
    with pytest.raises(OpenKinError) as e:
        load_config(trial)
    assert str(tmp_path / "session" / "Config.toml") in str(e.value)
    assert "reproj_error_threshold_triangulation" in e.value.fix


def test_unknown_key_in_wrong_section_suggests_its_home(tmp_path):
    trial = _session(tmp_path, session=None, trial="[filtering]\ncut_off_frequency = 6\n")
    with pytest.raises(OpenKinError) as e:
        load_config(trial)
    assert "filtering.butterworth.cut_off_frequency" in e.value.fix or "cut_off_frequency" in e.value.fix


def test_unknown_section_and_override(tmp_path):
    trial = _session(tmp_path, session=None, trial="[filterring]\ntype = 'kalman'\n")
    with pytest.raises(OpenKinError, match="filtering"):
        load_config(trial)
    ok = _session(tmp_path / "b", session=None, trial="")
    with pytest.raises(OpenKinError) as e:
        load_config(ok, overrides={"pose": {"det_frequncy": 3}})
    assert "overrides" in str(e.value) and "pose.det_frequency" in e.value.fix


@pytest.mark.parametrize("text, words", [
    ("[filtering.butterworth]\ncut_off_frequency = 'six'\n", "a number"),
    ("[project]\nmulti_person = 'yes'\n", "true or false"),
    ("[pose]\ndet_frequency = 2.5\n", "whole number"),
    ("[project]\nframe_range = [1, 2, 3]\n", "list of 2"),
    ("[filtering]\ntype = 'butterwort'\n", "'butterworth'"),
    ("[project]\nparticipant_height = 'tall'\n", "'auto'"),
    ("[filtering]\nbutterworth = 3\n", "must be a table"),
])
def test_wrong_types_are_errors(tmp_path, text, words):
    trial = _session(tmp_path, session=None, trial=text)
    with pytest.raises(OpenKinError) as e:
        load_config(trial)
    assert words in str(e.value)
    assert str(trial / "Config.toml") in str(e.value)


def test_union_values_and_normalisation(tmp_path):
    trial = _session(tmp_path, session=None, trial=(
        "[project]\nparticipant_height = [1.72, 1.4]\nframe_range = [10, 300]\nframe_rate = 59.94\n"
        "[filtering]\ntype = 'loess'\n[filtering.gcv_spline]\ncut_off_frequency = 5\n"
        "[pose]\nparallel_workers_pose = false\nsave_video = ['to_video', 'to_images']\n"
        "[kinematics]\nparallel_workers_kinematics = 3\n"))
    c = load_config(trial)
    assert c.project.participant_height == (1.72, 1.4)
    assert c.project.frame_range == (10, 300)
    assert c.filtering.type == "LOESS"  # case-insensitive, stored in the listed spelling
    assert c.filtering.gcv_spline.cut_off_frequency == 5.0
    assert c.pose.parallel_workers_pose is False
    assert c.kinematics.parallel_workers_kinematics == 3
    assert c.pose.save_video == ("to_video", "to_images")


def test_malformed_toml_names_line(tmp_path):
    trial = _session(tmp_path, session=None, trial="[project]\nmulti_person = true\nframe_rate = auto\n")
    with pytest.raises(OpenKinError) as e:
        load_config(trial)
    assert "line 3" in str(e.value) and "Config.toml" in str(e.value)


def test_custom_skeleton_tree(tmp_path):
    trial = _session(tmp_path, session=None, trial=(
        "[pose]\npose_model = 'MINE'\n"
        "[[pose.MINE]]\nname = 'Hip'\nid = 2\n"
        "  [[pose.MINE.children]]\n  name = 'RKnee'\n  id = 0\n"
        "  [[pose.MINE.children]]\n  name = 'LKnee'\n  id = 1\n"))
    c = load_config(trial)
    sk = c.pose.custom_skeleton("MINE")
    assert sk.names == ("RKnee", "LKnee", "Hip") and sk.parents == (2, 2, -1)
    # Written back as the same tree.
    assert c.to_dict()["pose"]["MINE"][0]["children"][1] == {"name": "LKnee", "id": 1}
    # Survives a round trip through to_dict and further overrides.
    again = c.with_overrides({"pose": {"det_frequency": 2}})
    assert again.pose.custom_skeleton("MINE") == sk and again.pose.det_frequency == 2
    bad = _session(tmp_path / "b", session=None, trial="[[pose.X]]\nname = 'Hip'\nidx = 2\n")
    with pytest.raises(OpenKinError, match="idx"):
        load_config(bad)


def test_pose2sim_demo_config_loads_as_is(tmp_path):
    from importlib.resources import files

    # Pose2Sim's key set is ours: a file written with every default key round-trips.
    text = (files("openkin") / "data" / "Config.toml").read_text(encoding="utf-8")
    trial = _session(tmp_path, session=None, trial=text + "\n[[pose.CUSTOM]]\nname = 'Hip'\nid = 19\n")
    assert load_config(trial).pose.custom_skeletons["CUSTOM"][0].id == 19


def test_resolved_config_and_versions_written(tmp_path):
    trial = _session(tmp_path, session="[pose]\ndet_frequency = 3\n", trial="[filtering]\ntype = 'kalman'\n")
    c = load_config(trial)
    out = tmp_path / "out"
    resolved, versions = write_resolved_config(c, out)
    assert resolved == out / "resolved_config.toml" and versions == out / "versions.toml"
    text = resolved.read_text()
    assert str(trial / "Config.toml") in text  # provenance header
    assert load_config(trial).with_overrides(tomllib.loads(text)) == c  # usable as a Config.toml
    v = tomllib.loads(versions.read_text())
    assert {"python", "openkin", "numpy", "scipy", "opencv", "onnxruntime", "opensim"} <= set(v)
    assert not list(out.glob(".*.tmp"))  # atomic writes left no temporaries


def test_keys_of_other_pose2sim_versions(tmp_path, caplog):
    """Older (and newer) Pose2Sim files load: renamed keys are read under their current name,
    keys with no effect here are dropped with a warning; a current key set too wins."""
    trial = _session(tmp_path, session=None, trial=(
        "[project]\nframe_range = []\n"
        "[pose]\nvid_img_extension = 'mp4'\naverage_likelihood_threshold_pose = 0.6\n"
        "[synchronization]\nlikelihood_threshold = 0.45\n"
        "[personAssociation]\ntracked_keypoint = 'RHip'\n"
        "[triangulation]\nlikelihood_threshold = 0.2\nlikelihood_threshold_triangulation = 0.35\n"
        "[filtering.LOESS]\nnb_values_used = 9\n"
        "[calibration.calculate.extrinsics.scene]\nextrinsics_extension = 'jpg'\n"
        "[opensim]\nstatic_trial = ['S00_P00_T00_StaticTrial']\nuse_augmentation = false\n"
        "[kinematics]\nmake_bvh = true\n"
        "[pose.CUSTOM]\nname = 'Hip'\nid = '19'\n  [[pose.CUSTOM.children]]\n  name = 'RHip'\n  id = 12\n"))
    c = load_config(trial)
    assert c.project.frame_range == "all"
    assert c.pose.average_likelihood_threshold == 0.6
    assert c.synchronization.likelihood_threshold_synchronization == 0.45
    assert c.personAssociation.single_person.tracked_keypoint == "RHip"
    assert c.triangulation.likelihood_threshold_triangulation == 0.35  # the current name wins
    assert c.filtering.loess.nb_values_used == 9
    assert c.calibration.calculate.extrinsics.extrinsics_extension == "jpg"
    assert c.kinematics.use_augmentation is False
    assert c.pose.custom_skeletons["CUSTOM"][0].id == 19
    assert c.pose.custom_skeletons["CUSTOM"][0].children[0].name == "RHip"
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    for key in ("pose.vid_img_extension", "kinematics.make_bvh", "opensim", "triangulation.likelihood_threshold"):
        assert key in warned


# --------------------------------------------------------------------------- values checked at load
BAD_VALUES = [
    # (section, key, bad value as TOML, words of the valid range in the message)
    ("project", "participant_mass", "-70", "between 1 and 500 kg"),
    ("project", "participant_mass", "[70.0, 0.0]", "between 1 and 500 kg"),
    ("project", "participant_mass", "70000", "looks like grams"),
    ("project", "participant_height", "0", "between 0.4 and 2.6 m"),
    ("project", "participant_height", "175", "looks like centimetres"),
    ("project", "participant_height", "[1.72, -1.4]", "between 0.4 and 2.6 m"),
    ("project", "frame_rate", "0", "> 0 fps"),
    ("project", "frame_rate", "-30", "> 0 fps"),
    ("project", "frame_range", "[100, 10]", "0 <= start < stop"),
    ("project", "frame_range", "[-5, 10]", "0 <= start < stop"),
    ("project", "frame_range", "[10, 10]", "0 <= start < stop"),
    ("pose", "det_frequency", "0", ">= 1"),
    ("pose", "average_likelihood_threshold", "1.5", "between 0 and 1"),
    ("pose", "max_distance_px", "-1", "> 0 px"),
    ("pose", "min_iou", "-0.1", "between 0 and 1"),
    ("pose", "max_unseen_frames", "-1", ">= 0"),
    ("pose", "parallel_workers_pose", "-2", ">= 0"),
    ("synchronization", "likelihood_threshold_synchronization", "2", "between 0 and 1"),
    ("synchronization", "filter_cutoff", "0", "> 0 Hz"),
    ("synchronization", "filter_order", "0", "between 1 and 12"),
    ("synchronization", "time_range_around_maxspeed", "0", "> 0"),
    ("synchronization", "approx_time_maxspeed", "[1.0, -2.0]", ">= 0"),
    ("calibration.convert.qualisys", "binning_factor", "0", ">= 1"),
    ("calibration.calculate.intrinsics", "intrinsics_square_size", "-60", "> 0"),
    ("calibration.calculate.intrinsics", "intrinsics_corners_nb", "[1, 7]", ">= 2"),
    ("calibration.calculate.extrinsics.board", "extrinsics_square_size", "[60, 0]", "> 0"),
    ("personAssociation.single_person", "likelihood_threshold_association", "-0.3", "between 0 and 1"),
    ("personAssociation.single_person", "reproj_error_threshold_association", "0", "> 0 px"),
    ("personAssociation.multi_person", "reconstruction_error_threshold", "-0.1", "> 0"),
    ("personAssociation.multi_person", "min_affinity", "1.2", "between 0 and 1"),
    ("refinement", "likelihood_threshold", "1.01", "between 0 and 1"),
    ("refinement", "loss_scale_px", "0", "> 0 px"),
    ("refinement", "max_rotation_deg", "-5", "> 0"),
    ("refinement", "max_iterations", "0", ">= 1"),
    ("triangulation", "reproj_error_threshold_triangulation", "-15", "> 0 px"),
    ("triangulation", "likelihood_threshold_triangulation", "1.3", "between 0 and 1"),
    ("triangulation", "min_cameras_for_triangulation", "1", ">= 2"),
    ("triangulation", "interp_if_gap_smaller_than", "-1", ">= 0"),
    ("triangulation", "min_chunk_size", "0", ">= 1"),
    ("filtering.butterworth", "cut_off_frequency", "-6", "> 0 Hz"),
    ("filtering.butterworth", "order", "0", "between 1 and 12"),
    ("filtering.butterworth_on_speed", "order", "40", "between 1 and 12"),
    ("filtering.kalman", "trust_ratio", "0", "> 0"),
    ("filtering.one_euro", "beta", "-1", ">= 0"),
    ("filtering.gcv_spline", "cut_off_frequency", "-1", "> 0 Hz"),
    ("filtering.loess", "nb_values_used", "2", ">= 3"),
    ("filtering.gaussian", "sigma_kernel", "0", "> 0"),
    ("filtering.median", "kernel_size", "4", "an odd number >= 1"),
    ("kinematics", "default_height", "170", "looks like centimetres"),
    ("kinematics", "trimmed_extrema_percent", "100", "< 100 %"),
    ("kinematics", "large_hip_knee_angles", "200", "<= 180 degrees"),
    ("kinematics", "interp_gap_max", "-3", ">= 0"),
]


@pytest.mark.parametrize("section, key, value, valid", BAD_VALUES,
                         ids=[f"{s}.{k}={v}" for s, k, v, _ in BAD_VALUES])
def test_bad_values_name_key_file_value_and_range(tmp_path, section, key, value, valid):
    trial = _session(tmp_path, session=f"[{section}]\n{key} = {value}\n", trial="")
    with pytest.raises(OpenKinError) as e:
        load_config(trial)
    msg = str(e.value)
    assert f"{section}.{key} = " in msg and valid in msg
    assert str(tmp_path / "session" / "Config.toml") in msg  # the session file, not the trial's
    assert value.replace(" ", "").strip("[]").split(",")[0].lstrip("-") in msg  # the bad value itself


@pytest.mark.parametrize("section, key, value, valid", BAD_VALUES[:6])
def test_bad_override_names_overrides(tmp_path, section, key, value, valid):
    parsed = tomllib.loads(f"v = {value}")["v"]
    node = override = {}
    for part in section.split("."):
        node = node.setdefault(part, {})
    node[key] = parsed
    with pytest.raises(OpenKinError) as e:
        load_config(_session(tmp_path, None, None), overrides=override)
    assert str(e.value).startswith("overrides: ") and valid in str(e.value)
    with pytest.raises(OpenKinError, match="overrides"):
        Config().with_overrides(override)


@pytest.mark.parametrize("text", [
    "[project]\nframe_range = 'all'\nframe_rate = 29.97\nparticipant_height = 1.72\nparticipant_mass = [70, 55.5]\n",
    "[project]\nframe_range = 'AUTO'\nframe_rate = 'auto'\nparticipant_height = 'auto'\n",
    "[project]\nframe_range = []\n",  # Pose2Sim before 0.10: every frame
    "[project]\nframe_range = [0, 1]\n[triangulation]\nmin_cameras_for_triangulation = 3\n",
    "[filtering.median]\nkernel_size = 5\n[filtering.gcv_spline]\ncut_off_frequency = 'auto'\n",
])
def test_valid_edge_values_load(tmp_path, text):
    load_config(_session(tmp_path, None, text))


def test_cut_off_at_or_above_nyquist_of_a_set_rate(tmp_path):
    trial = _session(tmp_path, session="[project]\nframe_rate = 20\n",
                     trial="[filtering.butterworth]\ncut_off_frequency = 10\n")
    with pytest.raises(OpenKinError) as e:
        load_config(trial)
    msg = str(e.value)
    assert msg.startswith(str(trial / "Config.toml"))  # the cut-off's file
    assert "filtering.butterworth.cut_off_frequency = 10 Hz" in msg and "Nyquist frequency 10 Hz" in msg
    assert f"project.frame_rate = 20 (set in {tmp_path / 'session' / 'Config.toml'})" in msg
    # only the filters in use count: the same cut-off under an unused filter type is fine
    ok = _session(tmp_path / "b", None, "[project]\nframe_rate = 20\n[filtering]\ntype = 'kalman'\n"
                                        "[filtering.butterworth]\ncut_off_frequency = 10\n")
    assert load_config(ok).filtering.butterworth.cut_off_frequency == 10
    with pytest.raises(OpenKinError, match="filtering.one_euro.cut_off_frequency = 4 Hz"):
        load_config(ok, overrides={"project": {"frame_rate": 8}, "filtering": {"type": "one_euro"},
                                   "synchronization": {"filter_cutoff": 2}})


def test_optitrack_is_refused_with_the_converters_that_exist(tmp_path):
    trial = _session(tmp_path, None, "[calibration.convert]\nconvert_from = 'optitrack'\n")
    with pytest.raises(OpenKinError) as e:
        load_config(trial)
    assert "no OptiTrack converter" in str(e.value) and "qualisys" in e.value.fix and "freemocap" in e.value.fix
    assert str(trial / "Config.toml") in str(e.value)
    calc = _session(tmp_path / "c", None, "[calibration]\ncalibration_type = 'calculate'\n"
                                          "[calibration.convert]\nconvert_from = 'optitrack'\n")
    load_config(calc)  # not used when calculating: no error


def test_engine_defaults_to_the_full_model_as_pose2sim():
    assert Config().kinematics.use_simple_model is False


def _cli(*args, cwd):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(__import__("openkin").__file__).parents[1]))
    return subprocess.run([sys.executable, "-m", "openkin.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("setting, words", [
    ("project.participant_mass=-70", "project.participant_mass = -70"),
    ("project.participant_height=175", "looks like centimetres"),
    ("triangulation.likelihood_threshold_triangulation=1.5", "between 0 and 1"),
])
def test_cli_bad_set_exits_2_without_traceback(tmp_path, setting, words):
    trial = _session(tmp_path, None, "")
    done = _cli("run", str(trial), "--stages", "triangulation", "--set", setting, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert words in out and "overrides" in out and "Traceback" not in out


def test_cli_bad_file_value_exits_2_naming_the_file(tmp_path):
    trial = _session(tmp_path, None, "[project]\nframe_range = [300, 10]\n")
    done = _cli("run", str(trial), "--stages", "triangulation", cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert str(trial / "Config.toml") in out and "project.frame_range = [300, 10]" in out
    assert "Traceback" not in out


def test_synth_list_needs_no_output_folder(tmp_path):
    done = _cli("synth", "--list", cwd=tmp_path)
    assert done.returncode == 0 and "presets:" in done.stdout and "clean" in done.stdout
    assert list(tmp_path.iterdir()) == []  # wrote nothing
    missing = _cli("synth", cwd=tmp_path)
    assert missing.returncode == 2 and "no output folder" in missing.stdout + missing.stderr

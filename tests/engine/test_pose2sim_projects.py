"""Pose2Sim project folders, configs and keypoint models run as they are.

- pose-only projects (pose/ JSON, no videos/) run with no flags;
- the batch layout: three Config.toml levels, the calibration in the session folder;
- Pose2Sim's own 2024 demo session (tests/data/pose2sim_s00) runs from its trial folder with no
  flags, and its 3D keypoints reproject onto the OpenPose detections at least as well as
  Pose2Sim's own TRC of that trial (same function, same detections: OpenCV's projectPoints);
- every keypoint model Pose2Sim reads: names at Pose2Sim's ids, OpenSim markers by name, and
  triangulation of a synthetic scene re-labelled into the model.
"""
from __future__ import annotations

import json
import logging
import shutil
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from openkin import cli
from openkin.calibration import find_calibration
from openkin.config import load_config
from openkin.context import calibration_in_use
from openkin.errors import OpenKinError
from openkin.formats.openpose import read_openpose_dir, write_openpose_dir
from openkin.formats.trc import read_trc, yup_to_zup
from openkin.project import ProjectPaths, find_calibration_dir, match_camera_names, project_levels
from openkin.skeletons import SKELETONS, get_skeleton

DATA = Path(__file__).resolve().parents[1] / "data"
S00 = DATA / "pose2sim_s00"
TRIAL = Path("S00_Demo_Session/S00_P00_SingleParticipant/S00_P00_T01_BalancingTrial")


# ----------------------------------------------------------------------------- pose-only projects
def _pose_only(root: Path) -> ProjectPaths:
    (root / "pose" / "cam01_json").mkdir(parents=True)
    write_openpose_dir(root / "pose" / "cam01_json", "cam01", np.ones((2, 1, 26, 3)))
    return ProjectPaths(root)


def test_pose_stage_skipped_when_pose_json_and_no_videos(tmp_path, caplog):
    from openkin import pose

    paths = _pose_only(tmp_path / "trial")
    before = sorted(p.stat().st_mtime_ns for p in paths.pose.rglob("*.json"))
    caplog.set_level(logging.INFO)
    pose.run_stage(load_config(paths.root), paths)
    assert sorted(p.stat().st_mtime_ns for p in paths.pose.rglob("*.json")) == before
    assert any("no videos/ folder" in r.message and "cam01_json" in r.message for r in caplog.records)


def test_no_videos_and_no_pose_is_a_clear_error(tmp_path):
    from openkin import pose

    (tmp_path / "trial").mkdir()
    paths = ProjectPaths(tmp_path / "trial")
    with pytest.raises(OpenKinError) as err:
        pose.run_stage(load_config(paths.root), paths)
    text = str(err.value)
    assert str(paths.root) in text and "videos" in text and "pose/<cam>_json" in text


# ----------------------------------------------------------------------------- batch layout
def _batch(tmp_path: Path) -> Path:
    session = tmp_path / "S00_Session"
    trial = session / "S00_P00_Participant" / "S00_P00_T01_Trial"
    trial.mkdir(parents=True)
    (session / "Config.toml").write_text("[project]\nframe_rate = 50\nparticipant_mass = 80.0\n"
                                         "[filtering.butterworth]\norder = 2\n")
    (session / "S00_P00_Participant" / "Config.toml").write_text("[project]\nparticipant_mass = 65.0\n"
                                                                 "[filtering.butterworth]\ncut_off_frequency = 5\n")
    (trial / "Config.toml").write_text("[filtering.butterworth]\ncut_off_frequency = 8\n")
    (session / "S00_Calibration").mkdir()
    return trial


def test_three_config_levels_later_wins(tmp_path):
    trial = _batch(tmp_path)
    config = load_config(trial)
    assert len(config.sources) == 3
    assert config.project.frame_rate == 50  # session
    assert config.project.participant_mass == 65.0  # participant over session
    assert config.filtering.butterworth.cut_off_frequency == 8  # trial over participant
    assert config.filtering.butterworth.order == 2  # session, untouched below


def test_calibration_found_in_the_session_folder(tmp_path):
    trial = _batch(tmp_path)
    session = trial.parents[1]
    assert project_levels(trial) == [session, trial.parent, trial]
    assert ProjectPaths(trial).calibration == session / "S00_Calibration"
    (trial / "calibration").mkdir()  # the trial's own calibration wins
    assert find_calibration_dir(trial) == trial / "calibration"


def test_calibration_not_searched_outside_the_project(tmp_path):
    (tmp_path / "calibration_of_something_else").mkdir()
    trial = tmp_path / "trial"
    trial.mkdir()
    assert find_calibration_dir(trial) is None
    assert ProjectPaths(trial).calibration == trial / "calibration"


@pytest.mark.parametrize("calib, folders, expected", [
    (["cam01", "cam02"], ["cam02_json", "cam01_json"], {"cam01": "cam01_json", "cam02": "cam02_json"}),
    (["cam_01", "cam_02"], ["cam01_json", "cam02_json"], {"cam_01": "cam01_json", "cam_02": "cam02_json"}),
    (["Camera1", "Camera2"], ["cam_2_json", "cam_1_json"], {"Camera1": "cam_1_json", "Camera2": "cam_2_json"}),
    (["int_cam01_img", "int_cam02_img"], ["c2", "c1"], {"int_cam01_img": "c1", "int_cam02_img": "c2"}),
    (["cam01", "cam02", "cam03"], ["cam03_json", "cam01_json"], {"cam01": "cam01_json", "cam03": "cam03_json"}),
    (["left", "right"], ["A_json", "B_json"], {"left": "A_json", "right": "B_json"}),  # by order
])
def test_match_camera_names(calib, folders, expected):
    assert match_camera_names(calib, folders) == expected


def test_match_camera_names_refuses_a_guess_it_cannot_make():
    with pytest.raises(OpenKinError, match="cannot tell which"):
        match_camera_names(["left", "right"], ["a", "b", "c"])


# ----------------------------------------------------------------------------- Pose2Sim's S00 demo session
def _reprojection_px(trc_path: Path, calib_path: Path, pose_dir: Path, names: tuple[str, ...],
                     markers: set[str]) -> np.ndarray:
    """Pixel distances between a TRC's markers projected by OpenCV through the calibration and the
    detections (confidence >= 0.3) of the same keypoints; rows of the TRC = JSON frames 0..F-1;
    in each camera and frame the detected person closest (median) to the projection. Only
    ``markers`` are judged; ``names``: the detections' keypoint names by index."""
    trc = read_trc(trc_path)
    xyz = yup_to_zup(trc.xyz)
    calib = [c for c in tomllib.loads(calib_path.read_text()).values() if isinstance(c, dict) and "matrix" in c]
    common = [m for m in trc.marker_names if m in markers]
    cols, ids = [trc.marker_names.index(m) for m in common], [names.index(m) for m in common]
    errors = []
    for k, cam in enumerate(calib):
        kp = read_openpose_dir(pose_dir / f"cam{k + 1:02d}_json")[0][:, :, ids]  # (F, P, M, 3)
        for f in range(min(len(xyz), len(kp))):
            pts = xyz[f, cols]
            ok = np.isfinite(pts).all(axis=1)
            proj = cv2.projectPoints(pts[ok].reshape(-1, 1, 3), np.array(cam["rotation"]), np.array(cam["translation"]),
                                     np.array(cam["matrix"]), np.array(cam["distortions"]))[0].reshape(-1, 2)
            det = kp[f][:, ok]  # (P, m, 3)
            seen = det[..., 2] >= 0.3
            dist = np.where(seen, np.linalg.norm(det[..., :2] - proj, axis=-1), np.nan)
            people = [p for p in range(len(det)) if seen[p].any()]
            if people:
                best = min(people, key=lambda p: np.median(dist[p][seen[p]]))
                errors.append(dist[best][seen[best]])
    return np.concatenate(errors)


@pytest.fixture(scope="module")
def s00_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("s00")
    shutil.copytree(S00 / "S00_Demo_Session", root / "S00_Demo_Session")
    trial = root / TRIAL
    assert cli.main(["run", "--no-progress", str(trial)]) == 0  # no flags
    return trial


def test_s00_demo_trial_runs_unchanged_with_no_flags(s00_run):
    trial = s00_run
    assert not (trial / "videos").exists()
    assert load_config(trial).pose.pose_model == "BODY_25B"  # from the session's Config.toml
    assert find_calibration(ProjectPaths(trial)).parent.name == "S00_Calibration"
    # the session's calibration is shared by its trials: a trial's refinement stays in the trial
    assert not (trial.parents[1] / "S00_Calibration" / "Calib_refined.toml").exists()
    assert calibration_in_use(ProjectPaths(trial)) == trial / "openkin" / "Calib_refined.toml"
    assert sorted(p.name for p in (trial / "pose-3d").glob("*.trc"))
    assert list((trial / "kinematics").glob("*.mot"))


def test_s00_reprojection_at_least_as_good_as_pose2sims_trc(s00_run):
    trial = s00_run
    ours_trc = next(p for p in (trial / "pose-3d").glob("S00_P00_T01_BalancingTrial_*.trc")
                    if "_filt" not in p.name and "_LSTM" not in p.name)
    names = get_skeleton("BODY_25B").names
    theirs_trc = S00 / "reference" / "S00_P00_T01_BalancingTrial_0-100.trc"
    markers = set(read_trc(ours_trc).marker_names) & set(read_trc(theirs_trc).marker_names)  # Pose2Sim's 21
    ours = _reprojection_px(ours_trc, calibration_in_use(ProjectPaths(trial)), trial / "pose", names, markers)
    theirs = _reprojection_px(theirs_trc, S00 / "reference" / "Calib_qualisys.toml", trial / "pose", names, markers)
    print(f"S00 balancing trial reprojection px: OpenKin mean {ours.mean():.2f} median {np.median(ours):.2f} "
          f"(n={ours.size}); Pose2Sim mean {theirs.mean():.2f} median {np.median(theirs):.2f} (n={theirs.size})")
    assert abs(ours.size - theirs.size) <= 0.02 * theirs.size  # the same detections judged
    assert ours.mean() <= theirs.mean()
    assert np.median(ours) <= np.median(theirs)


# ----------------------------------------------------------------------------- keypoint models
TREES = json.loads((DATA / "pose2sim_skeleton_trees.json").read_text())["trees"]
MODELS = ["HALPE_26", "COCO_17", "BLAZEPOSE", "BODY_25B", "BODY_25", "BODY_135", "COCO_133", "HALPE_68",
          "HALPE_136", "COCO", "MPII"]
# Deliberate differences from Pose2Sim's names: its BLAZEPOSE typo, and MPII's head top and chest,
# which Pose2Sim calls Nose and CHip (they would pull the model's nose and pelvis markers).
RENAMED = {("BLAZEPOSE", 25): "LKnee", ("MPII", 0): "Head", ("MPII", 14): "Chest"}


@pytest.mark.parametrize("model", MODELS + ["COCO_133_WRIST"])
def test_names_at_pose2sims_ids(model):
    skeleton = get_skeleton(model)
    assert len(set(skeleton.names)) == len(skeleton.names)
    for name, id_, _ in TREES[model]:
        if id_ is not None:
            assert skeleton.names[id_] == RENAMED.get((model if model != "COCO_133_WRIST" else "COCO_133", id_), name)
    assert all(-1 <= p < len(skeleton.names) for p in skeleton.parents)


@pytest.mark.parametrize("pose_model, model", [("Body_with_feet", "HALPE_26"), ("Whole_body", "COCO_133"),
                                               ("Whole_body_wrist", "COCO_133"), ("Body", "COCO_17"),
                                               ("body_25b", "BODY_25B"), ("HALPE_136", "HALPE_136")])
def test_pose_model_names(pose_model, model):
    assert get_skeleton(pose_model) is SKELETONS[model]


# Markers of the OpenSim files a model maps to that the model does not output (IK runs without them).
NOT_OUTPUT = {"COCO_17": {"Neck"}, "MPII": {"Nose", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel"}}
HANDS = ("RThumb", "RIndex", "RPinky", "LThumb", "LIndex", "LPinky")


@pytest.mark.parametrize("model", MODELS)
def test_kinematics_markers_by_name(model):
    from openkin.kinematics.setup import marker_file_names, read_ik_tasks, setup_files

    markers = marker_file_names(model)
    names = set(get_skeleton(model).names)
    assert set(markers) - names == NOT_OUTPUT.get(model, set())
    weights = read_ik_tasks(setup_files(model)[1]).marker_weights
    tracked = [m for m in markers if m in names and weights.get(m, 0) > 0]
    assert len(tracked) >= 13
    if model in ("BLAZEPOSE", "BODY_135", "COCO_133", "HALPE_68", "HALPE_136"):
        assert set(HANDS) <= set(tracked)  # hand keypoints go to the model's hand markers


def test_custom_skeleton_maps_to_the_closest_marker_set(tmp_path):
    from openkin.kinematics import options_from_config

    trial = tmp_path / "t"
    trial.mkdir()
    nodes = "\n".join(f'  [[pose.MYNET.children]]\n  name = "{n}"\n  id = {i + 1}'
                      for i, n in enumerate(("RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "Neck", "Nose",
                                             "RShoulder", "LShoulder", "RWrist", "LWrist", "RBigToe")))
    (trial / "Config.toml").write_text(f'[pose]\npose_model = "MYNET"\n[[pose.MYNET]]\nname = "CHip"\nid = 0\n{nodes}\n')
    config = load_config(trial)
    assert options_from_config(config, augmented=False).marker_set == "BODY_25"  # the only one with CHip


@pytest.fixture(scope="module")
def synth_scene(tmp_path_factory):
    from openkin.synth import build_scene

    out = tmp_path_factory.mktemp("synth") / "scene"
    build_scene(out, "clean", n_frames=30, seed=3)
    return out


@pytest.mark.parametrize("model", MODELS)
def test_triangulation_of_a_scene_relabelled_into_each_model(model, synth_scene, tmp_path):
    """A clean synthetic scene (HALPE_26) re-labelled into ``model`` by keypoint name (others
    undetected) triangulates every shared keypoint to within 10 mm of the truth."""
    source = get_skeleton("HALPE_26")
    target = get_skeleton(model)
    trial = tmp_path / "trial"
    shutil.copytree(synth_scene / "calibration", trial / "calibration")
    for cam_dir in sorted((synth_scene / "pose").glob("*_json")):
        kp, frames, ids = read_openpose_dir(cam_dir)
        out = np.zeros(kp.shape[:2] + (len(target.names), 3))
        out[..., :2] = np.nan
        for k, name in enumerate(target.names):
            if name in source.names:
                out[:, :, k] = kp[:, :, source.index(name)]
        write_openpose_dir(trial / "pose" / cam_dir.name, cam_dir.name.removesuffix("_json"), out, frames, ids)
    (trial / "Config.toml").write_text(f"[project]\nframe_rate = 30\n[pose]\npose_model = '{model}'\n"
                                       "[refinement]\nrefine_extrinsics = false\n")
    assert cli.main(["run", "--no-progress", "--no-report", "--stages", "pose,association,triangulation",
                     str(trial)]) == 0
    result = read_trc(next((trial / "pose-3d").glob("*.trc")))
    truth = read_trc(synth_scene / "truth" / "keypoints.trc")
    assert result.marker_names == list(target.names)
    shared = [n for n in target.names if n in truth.marker_names]
    assert len(shared) >= 12
    f = np.searchsorted(truth.frame_numbers, result.frame_numbers)
    err = np.linalg.norm(result.xyz[:, [result.marker_names.index(n) for n in shared]]
                         - truth.xyz[f][:, [truth.marker_names.index(n) for n in shared]], axis=-1)
    assert np.isfinite(err).all() and err.mean() < 0.010
    others = result.xyz[:, [k for k, n in enumerate(target.names) if n not in source.names]]
    assert np.all(np.isnan(others) | (others == 0))  # nothing invented for undetected keypoints (0 or NaN)

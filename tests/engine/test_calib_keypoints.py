"""Calibration from the people themselves (extrinsics_method = 'keypoints').

Ground truth: synthetic scenes (OpenSim motion projected through the demo's real cameras, with
detector noise); the calibration comes out in its own world frame (the person's floor and first
steps), so it is scored after the similarity that best maps its camera centres onto the truth's
(tests/engine/calib_scoring.py). Goals (the product's): centres within 1% of the
camera-to-subject distance, orientations within 0.5 deg, focal lengths within 1% when refined,
scale within 1% given the person's height."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from openkin.calibration import guess_intrinsics
from openkin.calibration_keypoints import KeypointParams, calibrate_from_keypoints, pick_person
from openkin.cli import run_stages
from openkin.errors import OpenKinError
from openkin.formats.calibration import Camera, read_calibration
from openkin.fileio import read_optional_toml
from openkin.skeletons import get_skeleton
from openkin.synth import build_scene
from openkin.synth.cameras import look_at_point
from openkin.inputs import read_views

sys.path.insert(0, str(Path(__file__).parent))
from calib_scoring import score  # noqa: E402

NAMES = list(get_skeleton("HALPE_26").names)
KEYPOINTS_CONFIG = """
[calibration]
calibration_type = 'calculate'
[calibration.calculate.extrinsics]
extrinsics_method = 'keypoints'
"""


def _scene(tmp_path_factory, preset: str, **kw) -> Path:
    root = tmp_path_factory.mktemp(preset) / "scene"
    build_scene(root, preset, n_frames=300, seed=1, **kw)
    return root


@pytest.fixture(scope="module")
def mild(tmp_path_factory) -> Path:
    return _scene(tmp_path_factory, "mild")


@pytest.fixture(scope="module")
def realistic(tmp_path_factory) -> Path:
    """Realistic detector errors (correlated noise, outliers, swaps, occlusions), synchronised:
    the method assumes synchronised inputs (pose-sync/ when synchronisation ran)."""
    return _scene(tmp_path_factory, "realistic", max_offset_frames=0.0)


def _points(root: Path):
    views = read_views(root / "pose", root / "truth" / "Calib_exact.toml")
    return pick_person(views.keypoints), views.cameras


def _height(root: Path) -> float:
    return float(read_optional_toml(root / "Config.toml")["project"]["participant_height"])


def _run_stage(root: Path) -> list[Camera]:
    with open(root / "Config.toml", "a") as f:
        f.write(KEYPOINTS_CONFIG)
    run_stages(root, ["calibration"], progress_bars=False)
    return read_calibration(root / "calibration" / "Calib_keypoints.toml")


def _check_goals(found: list[Camera], truth: list[Camera]) -> dict:
    s = score(found, truth, look_at_point(truth, height=0.9))
    assert abs(s["scale"] - 1) < 0.01, s
    assert s["centre_pct"].max() < 1.0, s
    assert s["orient_deg"].max() < 0.5, s
    return s


# ------------------------------------------------------------------ accuracy against the truth
def test_mild_scene_stage_writes_calibration_within_goals(mild):
    found = _run_stage(mild)
    truth = read_calibration(mild / "truth" / "Calib_exact.toml")
    s = _check_goals(found, truth)
    assert s["vertical_deg"] < 1.0, s  # Z up from the floor under the feet
    record = read_optional_toml(mild / "openkin" / "calibration.toml")
    assert record["extrinsics"]["method"] == "keypoints"
    assert record["synchronisation"].startswith("pose/")
    assert set(record["extrinsics"]["cameras"]) == {c.name for c in truth}
    assert all(v["median_px"] < 3.0 for v in record["extrinsics"]["cameras"].values())  # 1.5 px noise
    floor = record["extrinsics"]["floor"]
    assert floor["normal_from"] == "floor plane" and "warning" not in floor
    # origin on the floor: the lowest foot keypoints near Z = 0
    text = (mild / "calibration" / "Calib_keypoints.toml").read_text()
    assert 'units = "m"' in text


def test_realistic_detector_errors_within_goals(realistic):
    pts, truth = _points(realistic)
    res = calibrate_from_keypoints(pts, truth, NAMES, _height(realistic))
    _check_goals(res.cameras, truth)


def test_focal_length_refined_from_a_wrong_guess(mild):
    """Intrinsics guessed 8% too long (as a wrong field of view would): refined to within 1%."""
    pts, truth = _points(mild)
    guessed = [Camera(c.name, c.size, np.diag([1.08, 1.08, 1.0]) @ c.matrix, c.distortions, np.zeros(3),
                      np.zeros(3)) for c in truth]
    for g, c in zip(guessed, truth):
        g.matrix[:2, 2] = c.matrix[:2, 2]  # principal point known, focal lengths 8% off
    res = calibrate_from_keypoints(pts, guessed, NAMES, _height(mild), KeypointParams(refine_focal=True))
    s = _check_goals(res.cameras, truth)
    assert np.abs(s["focal_ratio"] - 1).max() < 0.01, s


def test_guess_intrinsics_from_field_of_view():
    K = guess_intrinsics((1920, 1080), 90.0)
    assert K[0, 0] == pytest.approx(960.0) and K[1, 1] == pytest.approx(960.0)
    assert (K[0, 2], K[1, 2]) == pytest.approx((959.5, 539.5))


# ------------------------------------------------------------------ bad input: clear errors, nothing written
def test_camera_that_never_sees_the_person_is_named(mild):
    pts, truth = _points(mild)
    pts = pts.copy()
    pts[2] = np.nan
    with pytest.raises(OpenKinError, match="camera cam03 sees the person clearly in only 0 frames") as e:
        calibrate_from_keypoints(pts, truth, NAMES, 1.7)
    assert "film someone walking" in e.value.fix


def test_cameras_sharing_no_view_are_named(mild):
    """cam01+cam02 see the first half only, cam03+cam04 the second half: two separate rigs."""
    pts, truth = _points(mild)
    pts = pts.copy()
    half = pts.shape[1] // 2
    pts[:2, half:] = np.nan
    pts[2:, :half] = np.nan
    with pytest.raises(OpenKinError, match="share too few views of the person") as e:
        calibrate_from_keypoints(pts, truth, NAMES, 1.7)
    assert "cam0" in e.value.problem and "overlapping views" in e.value.fix


def test_too_few_frames(mild):
    pts, truth = _points(mild)
    with pytest.raises(OpenKinError, match="only 20 frames"):
        calibrate_from_keypoints(pts[:, :20], truth, NAMES, 1.7)


def test_person_standing_still(mild):
    """One frame repeated (with 1 px noise): the still pose cannot place the cameras."""
    pts, truth = _points(mild)
    still = np.repeat(pts[:, 100:101], 120, axis=1).copy()
    still[..., :2] += np.random.default_rng(0).normal(0, 1.0, still[..., :2].shape)
    with pytest.raises(OpenKinError, match="hardly moves") as e:
        calibrate_from_keypoints(still, truth, NAMES, 1.7)
    assert "walking across" in e.value.fix


def test_large_error_is_refused_not_written(mild):
    """A camera whose detections are another time's (unsynchronised by 40 frames): refused."""
    pts, truth = _points(mild)
    pts = pts.copy()
    pts[3] = np.roll(pts[3], 40, axis=0)
    with pytest.raises(OpenKinError, match="cam04") as e:
        calibrate_from_keypoints(pts, truth, NAMES, 1.7)
    assert "synchronised" in e.value.fix


def test_stage_without_height_or_pose_says_what_to_do(tmp_path, mild):
    root = tmp_path / "p"
    shutil.copytree(mild, root)
    (root / "calibration" / "Calib_keypoints.toml").unlink(missing_ok=True)  # made by another test
    text = (root / "Config.toml").read_text().replace(KEYPOINTS_CONFIG, "")
    text = text.replace("participant_height = 1.7", "participant_height = 'auto'")
    (root / "Config.toml").write_text(text + KEYPOINTS_CONFIG)
    with pytest.raises(OpenKinError, match="needs the person's height"):
        run_stages(root, ["calibration"], progress_bars=False)
    shutil.rmtree(root / "pose")
    with pytest.raises(OpenKinError, match="run the pose stage first"):
        run_stages(root, ["calibration"], progress_bars=False)
    assert not (root / "calibration" / "Calib_keypoints.toml").exists()


# ------------------------------------------------------------------ real footage: Pose2Sim's demo
@pytest.fixture(scope="module")
def demo_figures(tmp_path_factory) -> dict:
    """Pose2Sim's single-person demo (4 real videos, 100 frames) through the offline pose stage,
    calibrated from its keypoints with the Qualisys intrinsics, compared with the Qualisys
    calibration (tests/bench/bench_calibration.py:demo_figures)."""
    from openkin.measure import participant_height

    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    from bench_calibration import demo_figures as figures
    from bench_calibration import demo_poses

    root = demo_poses(tmp_path_factory.mktemp("demo") / "trial")
    return figures(root, participant_height)


def test_demo_orientation_scale_and_reprojection_against_qualisys(demo_figures):
    s = demo_figures["score"]
    assert s["orient_deg"].max() < 2.0, s["orient_deg"]
    assert abs(s["scale"] - 1) < 0.03, s["scale"]
    assert demo_figures["keypoints_px"]["median"] <= demo_figures["qualisys_px"]["median"]
    assert demo_figures["keypoints_px"]["mean"] <= demo_figures["qualisys_px"]["mean"]


@pytest.mark.xfail(strict=True, reason="goal 5 cm not met: measured camera centres 30, 22, 54, 58 mm from the "
                                       "Qualisys calibration after similarity alignment (offline BlazePose, "
                                       "100 frames)")
def test_demo_camera_centres_within_5_cm_of_qualisys(demo_figures):
    assert demo_figures["score"]["centre_m"].max() < 0.05, demo_figures["score"]["centre_m"]


def test_pipeline_runs_pose_and_synchronization_before_a_keypoint_calibration(tmp_path):
    from openkin.calibration import pipeline_order
    from openkin.cli import STAGES
    from openkin.config import load_config

    (tmp_path / "Config.toml").write_text(KEYPOINTS_CONFIG)
    order = [s.name for s in pipeline_order(list(STAGES), load_config(tmp_path))]
    assert order.index("calibration") == order.index("synchronization") + 1
    assert order.index("pose") < order.index("calibration") < order.index("triangulation")
    (tmp_path / "Config.toml").write_text("")
    assert [s.name for s in pipeline_order(list(STAGES), load_config(tmp_path))] == [s.name for s in STAGES]


@pytest.fixture(scope="module")
def fov_guess(tmp_path_factory, mild) -> tuple[list[Camera], list[Camera], dict]:
    """The mild scene without any intrinsics: the frame size read from videos/ (2 black frames per
    camera), the focal length from fov_deg = 38 (6% longer than the truth's 35.9 deg), the principal
    point at the image centre (the truth's is 3-30 px off it)."""
    import cv2

    root = tmp_path_factory.mktemp("fov") / "p"
    shutil.copytree(mild, root)
    for f in (root / "calibration").glob("*.toml"):
        f.unlink()
    truth = read_calibration(mild / "truth" / "Calib_exact.toml")
    (root / "videos").mkdir()
    for cam in truth:
        w, h = cam.width, cam.height
        out = cv2.VideoWriter(str(root / "videos" / f"{cam.name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 60, (w, h))
        for _ in range(2):
            out.write(np.zeros((h, w, 3), np.uint8))
        out.release()
    text = (root / "Config.toml").read_text().replace(KEYPOINTS_CONFIG, "")
    (root / "Config.toml").write_text(text + KEYPOINTS_CONFIG + "[calibration.calculate.extrinsics.keypoints]\n"
                                      "fov_deg = 38.0\n")
    run_stages(root, ["calibration"], progress_bars=False)
    found = read_calibration(root / "calibration" / "Calib_keypoints.toml")
    return found, truth, read_optional_toml(root / "openkin" / "calibration.toml")


def test_stage_without_intrinsics_guesses_focal_from_fov_and_refines_it(fov_guess):
    found, truth, record = fov_guess
    s = score(found, truth, look_at_point(truth, height=0.9))
    assert np.abs(s["focal_ratio"] - 1).max() < 0.01, s
    assert abs(s["scale"] - 1) < 0.01 and s["centre_pct"].max() < 1.0, s
    assert record["intrinsics_from"] == "fov_deg" and record["extrinsics"]["refine_focal"] is True


@pytest.mark.xfail(strict=True, reason="goal 0.5 deg not met with guessed intrinsics: measured 0.97 deg for cam03, "
                                       "whose true principal point is 30 px from the image centre the guess assumes "
                                       "(atan(30/1681) = 1.0 deg); the principal point is not refined")
def test_orientations_with_guessed_intrinsics(fov_guess):
    found, truth, _ = fov_guess
    assert score(found, truth, look_at_point(truth, height=0.9))["orient_deg"].max() < 0.5

"""Synchronization: offset kernels on known signals, and the stage on ground-truth desync scenes."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest
import tomllib

from openkin import synchronization as S
from openkin.synchronization.epipolar import _sample
from openkin.synchronization.solve import _connected
from openkin.config import load_config
from openkin.errors import OpenKinError
from openkin.formats.openpose import list_json, write_openpose_dir
from openkin.project import ProjectPaths
from openkin.synth import build_scene


# ------------------------------------------------------------------ kernels
def band_limited(n: int, channels: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """(n, channels) smooth random signals, delayed by ``shift`` frames (Fourier shift)."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.normal(size=(n, channels)), axis=0)
    f = np.fft.rfftfreq(n)
    spec *= (f < 0.05)[:, None]  # 3 Hz at 60 fps
    return np.fft.irfft(spec * np.exp(-2j * np.pi * f * shift)[:, None], n, axis=0)


def test_correlation_finds_fractional_lag():
    a = band_limited(2000, 5, seed=0)
    b = band_limited(2000, 5, seed=0, shift=-7.3)  # b's frame k shows a's frame k + 7.3
    a, b = a[200:800], b[200:800]
    b[100:140, 2] = np.nan  # gaps are masked, not zero-filled
    peak = S.find_peak(*S.lagged_correlation(a, b, 60))
    assert peak.lag == pytest.approx(7.3, abs=0.1)
    assert peak.r > 0.95 and peak.prominence > 0.3


def test_least_squares_survives_one_bad_pair():
    truth = np.array([0.0, 3.2, -7.5, 12.1])
    d = truth[None, :] - truth[:, None]
    d[1, 3] += 40.0  # a periodic-motion false peak
    d[3, 1] -= 40.0
    w = np.ones((4, 4))
    w[1, 3] = w[3, 1] = 5.0  # and the most confident one
    offsets, inliers = S.solve_offsets(d, w, reference=0)
    np.testing.assert_allclose(offsets, truth, atol=1e-9)
    assert not inliers[1, 3]


def test_epipolar_cost_is_lowest_at_the_true_lag():
    from openkin.synth.cameras import demo_cameras

    cams = demo_cameras()[:2]
    t = np.arange(300) / 60.0
    pts = np.stack([np.sin(2 * np.pi * 0.7 * t) * 0.8, np.cos(2 * np.pi * 0.4 * t) * 0.6,
                    0.9 + 0.3 * np.sin(2 * np.pi * 1.3 * t)], axis=-1)[:, None, :]  # one moving point, Z up
    from openkin.geometry import project_points

    xy_i = project_points(cams[0], pts.reshape(-1, 3)).reshape(300, 1, 2)
    xy_j = project_points(cams[1], pts.reshape(-1, 3)).reshape(300, 1, 2)
    xy_j = _sample(xy_j, np.arange(300) - 4.4)  # camera j started 4.4 frames early: offset -4.4
    F = S.fundamental_matrix(cams[0], cams[1])
    peak, _, _ = S.geometric_offset(xy_i, xy_j, F, 30, min_pairs=50)
    assert peak.lag == pytest.approx(-4.4, abs=0.15)


def test_shifted_names():
    assert S.shifted_name("cam01_000012.json", 3) == "cam01_000015.json"
    assert S.shifted_name("cam01_000012.json", -12) == "cam01_000000.json"
    assert S.shifted_name("cam01_000012.json", -13) is None
    assert S.shifted_name("run2_cam01_1234567.json", 1) == "run2_cam01_1234568.json"


def test_keypoint_selection():
    names = ["Nose", "LWrist", "RWrist", "RAnkle"]
    assert S.keypoint_ids(names, "all") == [0, 1, 2, 3]
    assert S.keypoint_ids(names, "right") == [2, 3]
    assert S.keypoint_ids(names, ("RWrist",)) == [2]
    with pytest.raises(OpenKinError, match="Wrist2"):
        S.keypoint_ids(names, ("Wrist2",))


# ------------------------------------------------------------------ the stage on ground-truth scenes
def _run(root: Path, **sync) -> dict:
    config = load_config(root, {"synchronization": {"save_sync_plots": False, **sync}})
    S.run_stage(config, ProjectPaths(root))
    return tomllib.loads((root / "pose-sync" / "offsets.toml").read_text())


def _errors(root: Path, found: dict) -> dict[str, float]:
    truth = tomllib.loads((root / "truth" / "offsets.toml").read_text())["frames"]
    ref = found["reference"]
    return {c: v["offset_frames"] - (truth[c] - truth[ref]) for c, v in found["cameras"].items()}


@pytest.fixture(scope="module")
def desync_scene(tmp_path_factory) -> tuple[Path, dict]:
    """A desync scene (offsets up to 20 frames, fractional), synchronised with the defaults."""
    root = tmp_path_factory.mktemp("desync") / "trial"
    build_scene(root, "desync", n_frames=480, seed=11)  # 8 s: Pose2Sim asks 5-10 s for correlation
    return root, _run(root, save_sync_plots=True)


def test_offsets_recovered_within_half_a_frame(desync_scene):
    root, found = desync_scene
    assert found["method"] == "epipolar"  # the scene has a calibration
    truth = tomllib.loads((root / "truth" / "offsets.toml").read_text())["frames"]
    assert max(abs(v) for v in truth.values()) == pytest.approx(20.0)
    assert any(v != round(v) for v in truth.values())
    errors = _errors(root, found)
    assert max(abs(e) for e in errors.values()) < 0.5, errors
    assert min(v["confidence"] for v in found["cameras"].values()) > 0.5


def test_pose_sync_files_are_renamed_by_the_shift(desync_scene):
    root, found = desync_scene
    png = root / "pose-sync" / "synchronization.png"
    if importlib.util.find_spec("matplotlib") is not None:  # optional: plots only
        assert png.read_bytes()[:4] == b"\x89PNG"
    for cam, v in found["cameras"].items():
        _, src = list_json(root / "pose" / f"{cam}_json")
        _, dst = list_json(root / "pose-sync" / f"{cam}_json")
        expected = src + v["shift_frames"]
        np.testing.assert_array_equal(dst, expected[expected >= 0])
        assert v["residual_frames"] == pytest.approx(v["offset_frames"] - v["shift_frames"], abs=1e-3)
    residuals = S.read_offsets(root / "pose-sync" / "offsets.toml")
    assert set(residuals) == set(found["cameras"]) and max(map(abs, residuals.values())) <= 0.5


def test_correlation_without_calibration(desync_scene):
    """Pose2Sim's signal (vertical speeds), as used when there is no calibration (runs last: it
    rewrites pose-sync)."""
    root, _ = desync_scene
    found = _run(root, sync_method="correlation")
    assert found["method"] == "correlation"
    errors = _errors(root, found)
    assert max(abs(e) for e in errors.values()) < 0.5, errors


def test_realistic_scene_offsets(tmp_path):
    """Detector-like corruptions (8 px correlated noise, outliers, swaps, a lost second,
    perturbed calibration): the epipolar method still recovers the offsets."""
    build_scene(tmp_path / "real", "realistic", n_frames=300, seed=2)
    errors = _errors(tmp_path / "real", _run(tmp_path / "real"))
    assert max(abs(e) for e in errors.values()) < 0.5, errors


def test_synchronised_rig_comes_out_at_zero(tmp_path):
    """Realistic detector corruptions, no offset at all: the small offsets the noise suggests
    do not beat 'in sync' significantly, so every camera comes out at exactly 0."""
    build_scene(tmp_path / "sync", "realistic", n_frames=300, seed=2, max_offset_frames=0.0)
    found = _run(tmp_path / "sync")
    assert all(v["offset_frames"] == 0.0 and v["shift_frames"] == 0 for v in found["cameras"].values()), found
    test = found["in_sync_test"]
    assert not test["kept"] and any(abs(o) > 0.05 for o in test["offsets_found"])


def test_small_offsets_beat_the_in_sync_test(tmp_path):
    """Offsets of 0.5-2 frames under realistic corruptions are significant: kept, within half a frame."""
    build_scene(tmp_path / "small", "realistic", n_frames=300, seed=3, max_offset_frames=2.0)
    found = _run(tmp_path / "small")
    assert found["in_sync_test"]["kept"] and found["in_sync_test"]["z"] >= 3.0
    errors = _errors(tmp_path / "small", found)
    assert max(abs(e) for e in errors.values()) < 0.5, errors


# ------------------------------------------------------------------ real footage
DEMO_CONFIG = """[project]
frame_range = [0, 60]
[pose]
pose_model = 'Body_with_feet'
pose_backend = 'offline'
save_video = 'none'
[calibration]
calibration_type = 'convert'
[calibration.convert]
convert_from = 'qualisys'
"""


@pytest.fixture(scope="module")
def demo_poses(tmp_path_factory) -> Path:
    """Pose2Sim's single-person demo (4 hardware-synchronised Qualisys video cameras, 60 fps),
    its first 60 frames through the calibration and the offline (BlazePose) pose stage (~20 s)."""
    from openkin.assets import demo_project
    from openkin.cli import run_stages

    root = tmp_path_factory.mktemp("demo") / "trial"
    demo_project(root)
    (root / "Config.toml").write_text(DEMO_CONFIG)
    run_stages(root, ["calibration", "pose"], progress_bars=False)
    return root


def test_hardware_synchronised_demo_comes_out_in_sync(demo_poses):
    """Real BlazePose detections of a rig synchronised in hardware: every camera within half a
    frame of 0 (the detector's biases once made the epipolar method shift them 1-2 frames)."""
    found = _run(demo_poses)
    assert found["method"] == "epipolar"
    assert len(found["cameras"]) == 4
    offsets = {c: v["offset_frames"] for c, v in found["cameras"].items()}
    assert all(abs(o) <= 0.5 for o in offsets.values()), (offsets, found.get("in_sync_test"))
    assert all(v["shift_frames"] == 0 for v in found["cameras"].values())
    for cam, v in found["cameras"].items():  # pose-sync holds the same frames, unrenamed
        assert list_json(demo_poses / "pose-sync" / f"{cam}_json")[1].tolist() == list(range(60))


# ------------------------------------------------------------------ degenerate inputs
def _still_project(root: Path, n_cams: int, moving: bool = False, empty_cam: int | None = None) -> ProjectPaths:
    rng = np.random.default_rng(0)
    base = rng.uniform(300, 700, (1, 1, 26, 2))
    for c in range(n_cams):
        xy = np.repeat(base, 120, axis=0) + rng.normal(0, 0.2, (120, 1, 26, 2))
        if moving:
            xy[..., 1] += 40 * np.sin(np.arange(120) / 9.0)[:, None, None]
        kp = np.concatenate([xy, np.full((120, 1, 26, 1), 0.9)], axis=-1)
        if c == empty_cam:
            kp[:] = np.nan
        write_openpose_dir(root / "pose" / f"cam{c + 1:02d}_json", f"cam{c + 1:02d}", kp)
    (root / "Config.toml").write_text("[project]\nframe_rate = 60\n")
    return ProjectPaths(root)


def test_still_person_gives_a_clear_warning(tmp_path, caplog):
    paths = _still_project(tmp_path, 3)
    with caplog.at_level(logging.WARNING, logger="openkin.synchronization"):
        S.run_stage(load_config(tmp_path, {"synchronization": {"save_sync_plots": False}}), paths)
    assert "too little motion" in caplog.text
    assert (paths.pose_sync / "offsets.toml").exists()


def test_one_camera_is_copied_with_a_warning(tmp_path, caplog):
    paths = _still_project(tmp_path, 1, moving=True)
    with caplog.at_level(logging.WARNING, logger="openkin.synchronization"):
        S.run_stage(load_config(tmp_path), paths)
    assert "only one camera" in caplog.text
    assert len(list((paths.pose_sync / "cam01_json").glob("*.json"))) == 120


def test_camera_without_detections_is_left_unshifted(tmp_path, caplog):
    paths = _still_project(tmp_path, 3, moving=True, empty_cam=2)
    with caplog.at_level(logging.WARNING, logger="openkin.synchronization"):
        S.run_stage(load_config(tmp_path, {"synchronization": {"save_sync_plots": False}}), paths)
    found = tomllib.loads((paths.pose_sync / "offsets.toml").read_text())["cameras"]
    assert found["cam03"]["shift_frames"] == 0 and found["cam03"]["confidence"] == 0
    assert abs(found["cam02"]["offset_frames"]) < 0.2  # the two others are in sync
    assert "cam03" in caplog.text


def test_no_pose_folder_says_what_to_do(tmp_path):
    (tmp_path / "Config.toml").write_text("[project]\nframe_rate = 60\n")
    with pytest.raises(OpenKinError, match="pose stage"):
        S.run_stage(load_config(tmp_path), ProjectPaths(tmp_path))


def test_rerun_replaces_earlier_output_whole(tmp_path):
    paths = _still_project(tmp_path, 2, moving=True)
    stale = paths.pose_sync / "cam01_json" / "cam01_000999.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    S.run_stage(load_config(tmp_path, {"synchronization": {"save_sync_plots": False}}), paths)
    assert not stale.exists()
    assert not [p for p in paths.pose_sync.iterdir() if p.name.startswith(".")]


def test_search_windows_around_given_times():
    windows, max_lag = S.search_windows([600, 600, 580], 60.0, (2.0, 3.0, 2.5), 1.0)
    assert windows == [(60, 180), (120, 240), (90, 210)] and max_lag == 60
    windows, _ = S.search_windows([600, 600], 60.0, (5.0,), 1.0)  # one time for all cameras
    assert windows == [(240, 360), (240, 360)]
    with pytest.raises(OpenKinError, match="approx_time_maxspeed"):
        S.search_windows([600, 600, 600], 60.0, (2.0, 3.0), 1.0)


def test_windowed_search_finds_offsets_relative_to_camera_frames(tmp_path):
    """approx_time_maxspeed: each camera searched around its own time; offsets still in frames."""
    paths = _still_project(tmp_path, 2, moving=True)
    # camera 2 sees everything 7 frames later than camera 1: its frame k shows cam01's k - 7
    cam2 = paths.pose / "cam02_json"
    for f in sorted(cam2.glob("*.json"), reverse=True):
        f.rename(cam2 / S.shifted_name(f.name, 7))
    config = load_config(tmp_path, {"synchronization": {"save_sync_plots": False, "sync_method": "correlation",
                                                        "approx_time_maxspeed": [1.0, 1.1],
                                                        "time_range_around_maxspeed": 0.8}})
    S.run_stage(config, paths)
    found = tomllib.loads((paths.pose_sync / "offsets.toml").read_text())["cameras"]
    assert found["cam02"]["offset_frames"] - found["cam01"]["offset_frames"] == pytest.approx(-7.0, abs=0.3)


def test_frame_range_limits_the_search():
    windows = S.clip_to_frame_range([(0, 600), (0, 590)], [0, 10], (100, 400))
    assert windows == [(100, 400), (90, 390)]
    assert S.clip_to_frame_range([(0, 600)], [0], "auto") == [(0, 600)]
    with pytest.raises(OpenKinError, match="frame_range"):
        S.clip_to_frame_range([(0, 600)], [0], (700, 800))


def test_camera_folder_without_files_is_an_error_naming_it(tmp_path):
    """No JSON file at all (not "nobody seen"): the pose stage did not finish for that camera;
    an error naming that folder, before anything is written."""
    paths = _still_project(tmp_path, 3, moving=True)
    for f in (paths.pose / "cam03_json").glob("*.json"):
        f.unlink()
    with pytest.raises(OpenKinError) as e:
        S.run_stage(load_config(tmp_path, {"synchronization": {"save_sync_plots": False}}), paths)
    assert e.value.path == paths.pose / "cam03_json" and "no JSON file" in e.value.problem
    assert "pose stage" in e.value.fix
    assert not (paths.pose_sync / "offsets.toml").exists()


def test_many_cameras_measure_a_connected_subset_of_pairs():
    assert len(S.camera_pairs(4)) == 6
    pairs = S.camera_pairs(16)
    assert len(pairs) == 64
    use = np.zeros((16, 16), bool)
    for i, j in pairs:
        use[i, j] = use[j, i] = True
    assert _connected(use, 0).all() and (use.sum(1) == 8).all()

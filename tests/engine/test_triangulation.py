"""Triangulation: kernels on small synthetic rigs, the stage on synth ground-truth scenes."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from recon_rig import project_distorted, ring_rig, walking_points  # noqa: E402

from openkin import association, geometry, triangulation  # noqa: E402
from openkin.config import load_config  # noqa: E402
from openkin.errors import OpenKinError  # noqa: E402
from openkin.evaluate import evaluate_trial  # noqa: E402
from openkin.formats.c3d import read_c3d  # noqa: E402
from openkin.formats.trc import read_trc  # noqa: E402
from openkin.project import ProjectPaths  # noqa: E402
from openkin.skeletons import HALPE_26  # noqa: E402
from openkin.synth.build import build_scene  # noqa: E402
from openkin.formats.calibration import read_calibration  # noqa: E402
from openkin.geometry import Rig, triangulate_robust  # noqa: E402
from openkin.triangulation import gaps, swaps  # noqa: E402
from openkin.inputs import prepare_points  # noqa: E402
from openkin.triangulation.core import TriangulationParams, reconstruct_person  # noqa: E402

NAMES = list(HALPE_26.names)


def _rig(n=4, dist=None):
    K, R, t, d = ring_rig(n, dist=dist)
    return K, R, t, d, geometry.projection_matrices(K, R, t)


def _points(n=500, seed=0):
    return np.random.default_rng(seed).uniform([-0.5, -0.5, 0.0], [0.5, 0.5, 1.8], (n, 3))


# ------------------------------------------------------------------ kernels
def test_dlt_is_exact_without_noise_and_matches_svd_with_noise():
    *_, P = _rig(4)
    X = _points()
    uv = geometry.project(P, X)
    w = np.ones(uv.shape[:2])
    assert np.abs(geometry.triangulate_dlt(uv, w, P) - X).max() < 1e-9
    noisy = uv + np.random.default_rng(1).normal(0, 2.0, uv.shape)
    a = geometry.triangulate_dlt(noisy, w, P)
    b = geometry.triangulate_dlt_svd(noisy, w, P)
    assert np.abs(a - b).max() < 1e-3  # 1 mm: same estimator up to its normalisation
    assert np.abs(a - X).mean() < 0.01


def test_zero_weight_and_nan_views_are_ignored():
    *_, P = _rig(4)
    X = _points(50)
    uv = geometry.project(P, X)
    uv[0] += 400.0          # garbage in camera 0 ...
    w = np.ones(uv.shape[:2])
    w[0] = 0.0              # ... carrying no weight
    uv[1, :10] = np.nan     # and missing points in camera 1
    assert np.abs(geometry.triangulate_dlt(uv, w, P) - X).max() < 1e-9


def test_undistorted_points_triangulate_exactly():
    K, R, t, d, P = _rig(4, dist=[-0.25, 0.08, 0.001, -0.001, 0.0])
    X = _points(200)
    uv = project_distorted(K, R, t, d, X)
    und = geometry.undistort_points(uv, K, d)
    w = np.ones(uv.shape[:2])
    assert np.abs(geometry.triangulate_dlt(und, w, P) - X).max() < 1e-5
    assert np.abs(geometry.triangulate_dlt(uv, w, P) - X).max() > 1e-3  # distortion matters here


def test_points_seen_by_one_camera_or_parallel_rays_are_nan():
    *_, P = _rig(4)
    X = _points(20)
    uv = geometry.project(P, X)
    w = np.zeros(uv.shape[:2])
    w[0] = 1.0  # one view only
    assert np.isnan(geometry.triangulate_dlt(uv, w, P)).all()
    # two cameras nearly in line with the point (0.5° apart): no depth → NaN, not a wild guess
    K, R, t, _ = ring_rig(2)
    target = np.array([0.0, 0.0, 0.9])
    c0 = -R[0].T @ t[0]
    away = (c0 - target) / np.linalg.norm(c0 - target)
    side = np.cross(away, [0.0, 0.0, 1.0])
    c1 = c0 + 0.5 * away + np.tan(np.radians(0.5)) * (np.linalg.norm(c0 - target) + 0.5) * side
    R[1] = R[0]
    t[1] = -R[1] @ c1
    P2 = geometry.projection_matrices(K, R, t)
    uv2 = geometry.project(P2, target[None]) + [[[0.3, -0.2]], [[0.0, 0.0]]]
    r = triangulate_robust(uv2, np.ones((2, 1)), P2, threshold=15.0)
    assert np.isnan(r.X).all() and not r.used.any()


@pytest.mark.parametrize("n_cams", [4, 16])
def test_robust_rejects_confident_outliers(n_cams):
    *_, P = _rig(n_cams)
    X = _points(3000, seed=2)
    rng = np.random.default_rng(3)
    uv = geometry.project(P, X) + rng.normal(0, 1.0, (n_cams, len(X), 2))
    out = rng.random((n_cams, len(X))) < 0.05
    angle = rng.uniform(0, 2 * np.pi, out.sum())
    uv[out] += np.stack([np.cos(angle), np.sin(angle)], 1) * rng.uniform(60, 300, out.sum())[:, None]
    w = np.ones((n_cams, len(X)))
    plain = np.linalg.norm(geometry.triangulate_dlt(uv, w, P) - X, axis=1)
    r = triangulate_robust(uv, w, P, threshold=15.0, min_cameras=2)
    err = np.linalg.norm(r.X - X, axis=1)
    single = out.sum(0) == 1
    assert np.nanmean(plain[single]) > 0.03
    assert np.nanmax(err[single]) < 0.02               # every single outlier was caught
    assert (~r.used[out]).mean() > 0.95                # and its view dropped
    assert r.used[~out].mean() > 0.98                  # good views kept
    assert np.isfinite(r.X).all(1).mean() > 0.99


def _swap_scene(F=240, seed=0):
    K, R, t, d, P = _rig(4)
    X = walking_points(F, 26, seed=3)
    for i, n in enumerate(NAMES):  # put every left keypoint 25 cm to the side of its right one
        if n[0] == "L" and n[1].isupper():
            X[:, i, 1] = X[:, NAMES.index("R" + n[1:]), 1] + 0.25
    uv = geometry.project(P, X.reshape(-1, 3)).reshape(4, F, 26, 2)
    uv += np.random.default_rng(seed).normal(0, 2.0, uv.shape)
    return X, uv, P, K, R, t, d


def _apply_swaps(uv, swapped):
    mirror = np.arange(26)
    for part, (left, right) in swaps.lr_pairs(NAMES).items():
        mirror[left], mirror[right] = right, left
    out = uv.copy()
    for c in range(uv.shape[0]):
        out[c, swapped[c]] = uv[c, swapped[c]][:, mirror]
    return out


def test_lr_swaps_in_two_of_four_cameras_are_found_and_undone():
    X, uv, P, *_ = _swap_scene()
    rng = np.random.default_rng(4)
    swapped = np.zeros((4, uv.shape[1]), bool)
    frames = np.zeros(uv.shape[1], bool)
    for start in rng.choice(np.arange(5, 230, 12), 8, replace=False):
        frames[start:start + rng.integers(2, 8)] = True
    swapped[1] = swapped[2] = frames                       # two cameras at once: a 2-2 tie
    swapped[3, 100:104] = True                             # and one camera alone
    bad = _apply_swaps(uv, swapped)
    fixed, _, found = swaps.correct_lr_swaps(bad, np.ones(bad.shape[:3]), P, NAMES, 15.0)
    for part in ("arms", "legs", "face"):
        assert (found[part] == swapped).all(), part
    assert np.nanmax(np.abs(fixed - uv)) < 1e-9


def test_no_swap_found_on_clean_views():
    _, uv, P, *_ = _swap_scene(F=120, seed=5)
    _, _, found = swaps.correct_lr_swaps(uv, np.ones(uv.shape[:3]), P, NAMES, 15.0)
    assert not any(s.any() for s in found.values())


def test_lr_pairs_group_body_parts():
    pairs = swaps.lr_pairs(NAMES)
    assert set(pairs) == {"face", "arms", "legs"}
    left, right = pairs["legs"]
    assert [NAMES[i] for i in left][:3] == ["LHip", "LKnee", "LAnkle"]
    assert all(NAMES[r] == "R" + NAMES[l][1:] for l, r in zip(left, right))


# ------------------------------------------------------------------ gaps
@pytest.mark.parametrize("kind", ["linear", "slinear", "quadratic", "cubic"])
def test_small_gaps_interpolated_large_ones_kept(kind):
    F = 100
    tt = np.arange(F, dtype=float)
    xyz = np.stack([tt, 2 * tt, -tt], axis=-1)[:, None, :].repeat(2, axis=1)   # linear: every kind is exact
    xyz[10:15, 0] = np.nan      # 5 frames: filled
    xyz[40:70, 0] = np.nan      # 30 frames: kept
    xyz[:3, 1] = np.nan         # leading gap: never extrapolated
    out, filled = gaps.interpolate_gaps(xyz, 20, kind)
    assert np.allclose(out[10:15, 0], np.stack([tt, 2 * tt, -tt], -1)[10:15])
    assert np.isnan(out[40:70, 0]).all() and np.isnan(out[:3, 1]).all()
    assert filled[10:15, 0].all() and filled.sum() == 5
    assert gaps.interpolate_gaps(xyz, 20, "none")[1].sum() == 0


def test_sections_and_fill_policies():
    valid = np.zeros(100, bool)
    valid[5:20] = True      # 15
    valid[30:35] = True     # 5 < min_chunk_size
    valid[50:90] = True     # 40
    assert gaps.keep_sections(valid, 10, "all") == (5, 90)
    assert gaps.keep_sections(valid, 10, "largest") == (50, 90)
    assert gaps.keep_sections(valid, 10, "first") == (5, 20)
    assert gaps.keep_sections(valid, 10, "last") == (50, 90)
    assert gaps.keep_sections(valid, 50, "all") == (0, 0)
    xyz = np.arange(30, dtype=float).reshape(10, 1, 3)
    xyz[0] = xyz[4:6] = np.nan
    last = gaps.fill_large_gaps(xyz, "last_value")
    assert (last[0] == xyz[1]).all() and (last[4] == xyz[3]).all() and (last[5] == xyz[3]).all()
    assert (gaps.fill_large_gaps(xyz, "zeros")[4] == 0).all()
    assert np.isnan(gaps.fill_large_gaps(xyz, "nan")[4]).all()


def test_all_nan_keypoint_stays_empty_and_remove_incomplete_frames():
    K, R, t, d, P = _rig(4)
    F = 60
    X = walking_points(F, 26, seed=1)
    kp = np.concatenate([geometry.project(P, X.reshape(-1, 3)).reshape(4, F, 26, 2),
                         np.full((4, F, 26, 1), 0.9)], axis=-1)
    kp[:, :, 3] = np.nan                 # LEar never detected
    kp[:, 20:25, 7] = np.nan             # LElbow missing 5 frames
    rig = Rig(K, R, t, d)
    pts, w = prepare_points(kp, rig, True, 0.3)
    res = reconstruct_person(pts, w, rig, NAMES, TriangulationParams(fill_large_gaps_with="nan"))
    assert (res.start, res.stop) == (0, F)
    assert np.isnan(res.xyz[:, 3]).all()
    assert np.abs(res.xyz[:, 7] - X[:, 7]).max() < 0.01 and res.interpolated[20:25, 7].all()
    strict = reconstruct_person(pts, w, rig, NAMES, TriangulationParams(remove_incomplete_frames=True))
    assert strict.empty                  # no frame has every keypoint


# ------------------------------------------------------------------ stage on synth scenes
def _run(scene: Path, **overrides):
    cfg = load_config(scene, overrides=overrides or None)
    paths = ProjectPaths(scene)
    association.run_stage(cfg, paths)
    triangulation.run_stage(cfg, paths)
    return paths


@pytest.fixture(scope="module")
def clean_scene(tmp_path_factory):
    return build_scene(tmp_path_factory.mktemp("tri") / "clean", "clean", n_frames=90, seed=3).path


@pytest.fixture(scope="module")
def realistic_scene(tmp_path_factory):
    return build_scene(tmp_path_factory.mktemp("tri") / "real", "realistic", n_frames=240, seed=5,
                       max_offset_frames=0.0).path


def test_clean_scene_is_exact_with_pose2sim_outputs(clean_scene):
    paths = _run(clean_scene)
    trc = paths.pose_3d / "clean_0-89.trc"
    assert trc.exists() and trc.with_suffix(".c3d").exists()
    rows = evaluate_trial("clean", trc, clean_scene)
    assert rows[0].mpjpe < 1.0 and rows[0].frames_pct == 100.0       # mm
    truth = read_trc(clean_scene / "truth" / "keypoints.trc")
    out = read_trc(trc)
    assert out.marker_names == NAMES and out.rate == truth.rate
    assert np.nanmax(np.abs(out.xyz - truth.xyz)) < 0.005             # Y-up like the truth (Pose2Sim)
    c3d = read_c3d(trc.with_suffix(".c3d"))
    assert np.nanmax(np.abs(c3d.xyz - out.xyz)) < 1e-4
    rep = json.loads((paths.pose_3d / "triangulation_report.json").read_text())
    p = rep["persons"][0]
    assert p["frame_range"] == [0, 89] and p["reprojection_error_px"] < 0.5
    assert set(p["keypoints"]["LKnee"]) >= {"reprojection_error_px", "reprojection_error_mm",
                                            "cameras_excluded_mean", "frames_interpolated"}
    assert set(p["cameras"]) == {"cam01", "cam02", "cam03", "cam04"}
    assert all(c["excluded_rate"] == 0 for c in p["cameras"].values())


def test_realistic_scene_swaps_corrected_outliers_rejected(realistic_scene):
    paths = _run(realistic_scene)
    rep = json.loads((paths.pose_3d / "triangulation_report.json").read_text())
    import tomllib
    events = tomllib.loads(Path(realistic_scene / "truth" / "scene.toml").read_text())["events"]
    for cam, ev in events.items():  # swaps while a camera has lost the person are invisible
        n_true = len(set(f for f in ev["swapped_frames"] if f < 240) - set(ev["lost_frames"]))
        assert rep["persons"][0]["cameras"][cam]["lr_swaps_corrected_frames"] == n_true, cam
    assert rep["persons"][0]["cameras_excluded_mean"] > 0.05          # outliers were dropped
    trc = next(p for p in paths.pose_3d.glob("real_*.trc"))
    with_swaps = evaluate_trial("real", trc, realistic_scene)[0].mpjpe
    assert with_swaps < 38.0  # mm, unfiltered (8 px correlated noise, perturbed calibration)
    off = _run(realistic_scene, triangulation={"handle_LR_swap": False})
    trc = next(p for p in off.pose_3d.glob("real_*.trc"))
    assert evaluate_trial("real", trc, realistic_scene)[0].mpjpe > with_swaps + 5.0


def test_fisheye_scene_triangulates_as_well_as_the_pinhole_one(clean_scene, tmp_path):
    """The same clean scene seen through fisheye lenses (synth 'fisheye': the demo rig with
    FISHEYE_K, projected by cv2.fisheye): the stage honours the calibration's fisheye flag."""
    from openkin.inputs import read_views

    fish = build_scene(tmp_path / "fish", "fisheye", n_frames=90, seed=3).path
    cams = read_calibration(fish / "calibration" / "Calib_scene.toml")
    assert all(c.fisheye for c in cams)
    pin = evaluate_trial("clean", next(_run(clean_scene).pose_3d.glob("clean_*.trc")), clean_scene)[0]
    paths = _run(fish)
    fe = evaluate_trial("fish", next(paths.pose_3d.glob("fish_*.trc")), fish)[0]
    assert abs(fe.mpjpe - pin.mpjpe) < 0.5 and fe.frames_pct == pin.frames_pct == 100.0     # mm
    rep = json.loads((paths.pose_3d / "triangulation_report.json").read_text())
    assert rep["persons"][0]["reprojection_error_px"] < 0.5
    # the former defect: the same detections taken through the pinhole model are centimetres off
    views = read_views(fish / "pose", fish / "calibration" / "Calib_scene.toml")
    kp = views.keypoints[:, :, 0]
    as_pinhole = Rig.from_cameras(cams)
    as_pinhole.fisheye[:] = False
    truth = read_trc(fish / "truth" / "keypoints.trc").xyz
    for rig, lo, hi in ((Rig.from_cameras(cams), 0.0, 1.0), (as_pinhole, 5.0, np.inf)):
        res = reconstruct_person(*prepare_points(kp, rig, True, 0.3), rig, NAMES, TriangulationParams())
        err_mm = np.nanmean(np.linalg.norm(geometry.zup_to_yup(res.raw) - truth, axis=-1)) * 1000
        assert lo <= err_mm < hi, err_mm


def test_triangulation_writes_the_per_frame_reprojection_errors(realistic_scene):
    """pose-3d/<trc stem>_reprojection.npz: per frame and keypoint, the mean over the views kept
    of |undistorted detection − projection| (checked against cv2 on a few points), the
    figures the report averages. Left/right swap correction off, so that the detections used are
    those of the pose-associated files as they are."""
    import cv2

    from openkin.formats.openpose import read_openpose_dir
    from openkin.triangulation.reprojection import find_reprojection, read_reprojection

    paths = _run(realistic_scene, triangulation={"handle_LR_swap": False})
    trc_path = next(paths.pose_3d.glob("real_*.trc"))
    data = read_reprojection(find_reprojection(trc_path))
    trc = read_trc(trc_path)
    assert data.keypoints == trc.marker_names and np.array_equal(data.frame_numbers, trc.frame_numbers)
    rep = json.loads((paths.pose_3d / "triangulation_report.json").read_text())["persons"][0]
    for k, name in enumerate(NAMES):
        assert rep["keypoints"][name]["reprojection_error_px"] == pytest.approx(np.nanmean(data.error_px[:, k]),
                                                                               abs=1e-3)
    cams = read_calibration(next(paths.calibration.glob("*.toml")))
    det = [read_openpose_dir(paths.pose_associated / f"{c.name}_json") for c in cams]
    world = geometry.yup_to_zup(trc.xyz)
    rng = np.random.default_rng(0)
    picks = [tuple(ix) for ix in np.argwhere(np.isfinite(data.error_px))]
    checked = 0
    for f, k in [picks[i] for i in rng.choice(len(picks), 25, replace=False)]:
        errs = []
        for c, cam in enumerate(cams):
            if not data.used[c, f, k]:
                continue
            kp, frames, _ = det[c]
            uv = kp[list(frames).index(data.frame_numbers[f]), 0, k, :2]
            seen = cv2.undistortPoints(uv.reshape(1, 1, 2), cam.matrix, cam.distortions, P=cam.matrix).ravel()
            proj = cv2.projectPoints(world[f, k].reshape(1, 1, 3), cam.rotation, cam.translation, cam.matrix,
                                     None)[0].ravel()
            errs.append(np.linalg.norm(seen - proj))
        assert data.error_px[f, k] == pytest.approx(np.mean(errs), abs=1e-6)
        checked += 1
    assert checked == 25 and (data.used.sum(0)[np.isfinite(data.error_px)] >= 2).all()


def test_triangulation_reads_pose_associated_from_disk(clean_scene, tmp_path):
    paths = _run(clean_scene)
    (paths.pose_associated / association.STAMP).write_text("changed\n")  # the in-memory copy is stale
    cfg = load_config(clean_scene)
    triangulation.run_stage(cfg, paths)
    rep = json.loads((paths.pose_3d / "triangulation_report.json").read_text())
    assert rep["source"] == "pose-associated" and rep["persons"][0]["reprojection_error_px"] < 0.5


def _copy_scene(src: Path, dst: Path, keep_cams: list[str]) -> Path:
    import shutil

    shutil.copytree(src / "calibration", dst / "calibration")
    shutil.copy(src / "Config.toml", dst / "Config.toml")
    for cam in keep_cams:
        shutil.copytree(src / "pose" / f"{cam}_json", dst / "pose" / f"{cam}_json")
    return dst


def test_one_camera_is_a_clear_error(clean_scene, tmp_path):
    scene = _copy_scene(clean_scene, tmp_path / "one", ["cam01"])
    cfg = load_config(scene)
    with pytest.raises(OpenKinError, match="pose folders|at least two"):
        triangulation.run_stage(cfg, ProjectPaths(scene))


def test_camera_without_detections_is_ignored_with_a_warning(clean_scene, tmp_path, caplog):
    scene = _copy_scene(clean_scene, tmp_path / "empty", ["cam01", "cam02", "cam03", "cam04"])
    for f in (scene / "pose" / "cam02_json").glob("*.json"):
        f.write_text('{"version": 1.3, "people": []}')
    with caplog.at_level(logging.WARNING):
        paths = _run(scene)
    assert "no detection" in caplog.text
    rows = evaluate_trial("empty", next(paths.pose_3d.glob("empty_*.trc")), clean_scene)
    assert rows[0].mpjpe < 1.0


def test_only_one_camera_with_detections_is_a_clear_error(clean_scene, tmp_path):
    scene = _copy_scene(clean_scene, tmp_path / "blind", ["cam01", "cam02"])
    for f in (scene / "pose" / "cam02_json").glob("*.json"):
        f.write_text('{"version": 1.3, "people": []}')
    cfg = load_config(scene)
    with pytest.raises(OpenKinError):
        triangulation.run_stage(cfg, ProjectPaths(scene))


def test_subframe_shift_resamples_each_camera():
    from openkin.inputs import shift_subframe

    F = 20
    kp = np.zeros((2, F, 1, 3))
    kp[:, :, 0, 0] = np.arange(F) * 2.0            # x moves 2 px per frame
    kp[:, :, 0, 2] = 0.9
    kp[1, 7, 0] = np.nan                           # a missing sample: the nearer neighbour, if any, is used
    out = shift_subframe(kp, np.array([0.0, 0.25]))
    assert np.array_equal(out[0], kp[0])
    assert np.allclose(out[1, 2:6, 0, 0], (np.arange(2, 6) - 0.25) * 2.0)  # value at k - residual
    assert np.isnan(out[1, 7, 0, 0])               # 6.75: nearer sample (7) missing
    assert out[1, 8, 0, 0] == 16.0                 # 7.75: one side missing, the nearer (8) kept


def test_desynchronised_scene_end_to_end(tmp_path):
    from openkin import synchronization

    scene = build_scene(tmp_path / "desync", "desync", n_frames=180, seed=4, noise_px=0.0, dropout_rate=0.0,
                        max_offset_frames=8.0).path
    cfg = load_config(scene)
    paths = ProjectPaths(scene)
    synchronization.run_stage(cfg, paths)
    association.run_stage(cfg, paths)
    triangulation.run_stage(cfg, paths)
    rep = json.loads((paths.pose_3d / "triangulation_report.json").read_text())
    assert rep["source"] == "pose-associated" and "subframe_offsets" in rep
    trc = next(paths.pose_3d.glob("desync_*.trc"))
    assert evaluate_trial("desync", trc, scene)[0].mpjpe < 3.0  # mm: offsets recovered, sub-frame applied


def test_no_detection_anywhere_is_a_clear_error(clean_scene, tmp_path):
    scene = _copy_scene(clean_scene, tmp_path / "nobody", ["cam01", "cam02", "cam03"])
    for f in (scene / "pose").glob("*_json/*.json"):
        f.write_text('{"version": 1.3, "people": []}')
    cfg = load_config(scene)
    with pytest.raises(OpenKinError, match="no person detected"):
        association.run_stage(cfg, ProjectPaths(scene))
    with pytest.raises(OpenKinError, match="no person detected"):
        triangulation.run_stage(cfg, ProjectPaths(scene))


@pytest.mark.parametrize("dist", [[-0.05, 0.01, 0.0, 0.0, 0.0], [0.2, -0.3, 0.001, -0.002, 0.05],
                                  [-0.4, 0.1, 0.0, 0.0], [1.5, -8.0, 0.01, 0.01, 30.0]])
def test_array_undistortion_matches_opencv(dist):
    import cv2

    from openkin.geometry import undistort_points

    rng = np.random.default_rng(4)
    K = np.array([[[1100.0, 0.0, 960.0], [0.0, 1080.0, 540.0], [0.0, 0.0, 1.0]]])
    pts = rng.uniform([-600, -400], [2600, 1500], size=(1, 5000, 2))       # also far outside the image
    pts[0, :7] = np.nan
    ours = undistort_points(pts, K, [np.array(dist)])
    ref = cv2.undistortPoints(pts[0].reshape(-1, 1, 2), K[0], np.array(dist), P=K[0]).reshape(-1, 2)
    np.testing.assert_allclose(ours[0], ref, atol=1e-6, equal_nan=True)
    assert np.isnan(ours[0, :7]).all()


def test_vectorised_linear_gaps_match_interp1d():
    from scipy.interpolate import interp1d

    from openkin.triangulation import gaps

    rng = np.random.default_rng(5)
    for _ in range(30):
        F, K, max_gap = int(rng.integers(1, 150)), int(rng.integers(1, 5)), int(rng.integers(0, 25))
        xyz = rng.normal(size=(F, K, 3)).cumsum(0)
        xyz[rng.random((F, K)) < rng.uniform(0, 0.8)] = np.nan
        got, filled = gaps.interpolate_gaps(xyz, max_gap, "linear")
        want, want_filled = xyz.copy(), np.zeros((F, K), bool)
        for k in range(K):  # the reference: interp1d over each interior gap of at most max_gap frames
            good = np.isfinite(xyz[:, k]).all(-1)
            r = gaps.runs(~good)
            r = r[(r[:, 0] > 0) & (r[:, 1] < F) & (r[:, 1] - r[:, 0] <= max_gap)]
            if good.sum() < 2 or len(r) == 0:
                continue
            target = np.concatenate([np.arange(a, b) for a, b in r])
            want[target, k] = interp1d(np.flatnonzero(good), xyz[good, k], axis=0)(target)
            want_filled[target, k] = True
        np.testing.assert_array_equal(filled, want_filled)
        np.testing.assert_allclose(got, want, atol=1e-12, equal_nan=True)

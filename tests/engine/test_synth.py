"""Ground-truth scenes: real OpenSim forward kinematics, the demo calibration, corruptions."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from openkin import cli
from openkin.config import load_config
from openkin.errors import OpenKinError
from openkin.formats.calibration import read_calibration
from openkin.formats.mot import read_mot
from openkin.formats.openpose import read_openpose_dir
from openkin.formats.trc import read_trc, yup_to_zup
from openkin.progress import Cancelled
from openkin.skeletons import HALPE_26
from openkin.synth import build_scene, make_spec

pytest.importorskip("opensim")


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return build_scene(tmp_path_factory.mktemp("s") / "clean", "clean", n_frames=120, seed=3)


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    return build_scene(tmp_path_factory.mktemp("s") / "real", "realistic", n_frames=400, seed=5)


def project_points(cam, points):
    """OpenCV's projection (the independent truth for synth's): ``points (N,3)`` → ``(N,2)`` px."""
    obj = np.ascontiguousarray(points, dtype=float).reshape(-1, 1, 3)
    if cam.fisheye:
        uv = cv2.fisheye.projectPoints(obj, cam.rotation, cam.translation, cam.matrix, cam.distortions)[0]
    else:
        uv = cv2.projectPoints(obj, cam.rotation, cam.translation, cam.matrix, cam.distortions)[0]
    return uv.reshape(-1, 2)


def rotation_vector(R):
    return cv2.Rodrigues(np.asarray(R, float))[0].ravel()


def _json(scene, cam):
    kp, frames, _ = read_openpose_dir(scene.path / "pose" / f"{cam}_json")
    return kp, frames


def test_clean_layout_and_config(clean):
    root = clean.path
    for rel in ("Config.toml", "calibration/Calib_scene.toml", "truth/keypoints.trc", "truth/angles.mot",
                "truth/offsets.toml", "truth/scene.toml", "truth/corruptions.npz"):
        assert (root / rel).is_file(), rel
    config = load_config(root)
    assert config.project.frame_rate == 60 and config.project.multi_person is False
    assert config.project.participant_height == pytest.approx(1.70, abs=0.02)
    assert config.pose.pose_model == "Body_with_feet"
    cams = read_calibration(root / "calibration" / "Calib_scene.toml")
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    assert sorted(p.name for p in (root / "pose").iterdir()) == [f"cam0{i}_json" for i in range(1, 5)]
    trc = read_trc(root / "truth" / "keypoints.trc")
    assert trc.marker_names == list(HALPE_26.names) and trc.xyz.shape == (120, 26, 3)
    assert np.isfinite(trc.xyz).all()


def test_clean_json_is_the_exact_projection_of_the_truth(clean):
    trc = read_trc(clean.path / "truth" / "keypoints.trc")
    world = yup_to_zup(trc.xyz)
    for cam in read_calibration(clean.path / "calibration" / "Calib_scene.toml"):
        kp, frames = _json(clean, cam.name)
        assert kp.shape == (120, 1, 26, 3) and list(frames) == list(range(120))
        uv = project_points(cam, world.reshape(-1, 3)).reshape(120, 26, 2)
        seen = np.isfinite(kp[:, 0, :, 0])
        assert seen.mean() > 0.97  # the person stays in view
        assert np.abs(kp[:, 0, :, :2][seen] - uv[seen]).max() < 1e-6
        conf = kp[:, 0, :, 2][seen]
        assert conf.min() > 0.5 and conf.max() <= 1.0


def test_fisheye_scene_projects_through_the_fisheye_lens(tmp_path):
    from openkin.synth.spec import FISHEYE_K

    info = build_scene(tmp_path / "f", "fisheye", n_frames=30, seed=3)
    world = yup_to_zup(read_trc(info.path / "truth" / "keypoints.trc").xyz)
    for name in ("Calib_scene.toml", "../truth/Calib_exact.toml"):
        for cam in read_calibration(info.path / "calibration" / name):
            assert cam.fisheye and np.array_equal(cam.distortions, FISHEYE_K)
    for cam in info.cameras:
        kp, _ = _json(info, cam.name)
        uv = project_points(cam, world.reshape(-1, 3)).reshape(30, 26, 2)
        seen = np.isfinite(kp[:, 0, :, 0])
        assert seen.mean() > 0.97
        assert np.abs(kp[:, 0, :, :2][seen] - uv[seen]).max() < 1e-6
        pinhole = cv2.projectPoints(world.reshape(-1, 1, 3), cam.rotation, cam.translation, cam.matrix,
                                    None)[0].reshape(30, 26, 2)
        assert np.abs(kp[:, 0, :, :2][seen] - pinhole[seen]).max() > 10   # the lens matters (up to ~18 px here)


def test_truth_is_anatomically_sane(clean):
    trc = read_trc(clean.path / "truth" / "keypoints.trc")
    xyz = trc.xyz
    for a, b in [("LHip", "RHip"), ("LShoulder", "RShoulder"), ("Nose", "LEar"), ("LBigToe", "LSmallToe")]:
        length = np.linalg.norm(trc.marker(a) - trc.marker(b), axis=1)
        assert length.std() < 1e-6 and 0.02 < length.mean() < 0.5  # points on one rigid body
    feet = xyz[:, [HALPE_26.index(n) for n in ("LHeel", "RHeel", "LBigToe", "RBigToe")], 1]
    assert np.all(feet.min(axis=1) > -0.005) and np.all(feet.min(axis=1) < 0.03)  # on the floor (Y up)
    assert 1.5 < trc.marker("Head")[:, 1].max() < 1.85
    mot = read_mot(clean.path / "truth" / "angles.mot")
    assert mot.in_degrees and len(mot.names) == 40
    assert -15 < mot.column("hip_flexion_r").min() and mot.column("knee_angle_r").max() < 130


def test_angles_reproduce_the_keypoints(realistic):
    """The MOT (degrees) set on a freshly loaded OpenSim model gives the TRC back (independent of
    openkin.synth.forward: plain OpenSim API, Pose2Sim's model and marker file)."""
    import opensim as osim

    from openkin.assets import asset_path

    model = osim.Model(str(asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim")))
    model.updateMarkerSet(osim.MarkerSet(str(asset_path("OpenSim_Setup/Markers_Halpe26.xml"))))
    state = model.initSystem()
    mot = read_mot(realistic.path / "truth" / "angles.mot")  # 400 frames: walk, squat, arm raise
    trc = read_trc(realistic.path / "truth" / "keypoints.trc")
    assert mot.column("pelvis_tilt").min() < -15  # the squat tilts the pelvis forward (degrees)
    markers = model.getMarkerSet()
    worst = 0.0
    for f in range(0, len(mot.times), 15):
        for name, v in zip(mot.names, mot.values[f]):
            coord = model.getCoordinateSet().get(name)
            rotational = coord.getMotionType() == 1  # degrees in the MOT, radians in OpenSim
            coord.setValue(state, np.radians(v) if rotational else v, False)
        model.realizePosition(state)
        for j in range(markers.getSize()):
            m = markers.get(j)
            worst = max(worst, np.linalg.norm(m.getLocationInGround(state).to_numpy() - trc.marker(m.getName())[f]))
    assert worst < 1e-6


def test_realistic_corruptions_match_the_spec(realistic):
    spec = realistic.spec
    stats = realistic.stats
    outliers = np.mean([s["outliers"] for s in stats.values()])
    assert 0.025 < outliers < 0.045
    swapping = [c for c, s in stats.items() if s["swapped_frames"]]
    assert len(swapping) == 2
    frac = stats[swapping[0]]["swapped_frames"] / spec.n_frames
    assert 0.05 <= frac <= 0.10
    npz = np.load(realistic.path / "truth" / "corruptions.npz")
    assert np.array_equal(npz[f"{swapping[0]}/swapped"], npz[f"{swapping[1]}/swapped"])  # same frames
    lost = [c for c, s in stats.items() if s["lost_frames"]]
    assert len(lost) == 1 and stats[lost[0]]["lost_frames"] == 60
    lost_frames = np.flatnonzero(npz[f"{lost[0]}/lost"][:, 0])
    assert np.all(np.diff(lost_frames) == 1)
    kp, _ = _json(realistic, lost[0])
    assert np.all(np.isnan(kp[lost_frames, 0, :, 0]))
    offsets = realistic.offsets
    assert offsets["cam01"] == 0 and max(abs(v) for v in offsets.values()) == pytest.approx(20, abs=1e-3)


def test_realistic_noise_is_correlated_with_the_requested_size(realistic):
    npz = np.load(realistic.path / "truth" / "corruptions.npz")
    cam = "cam01"
    kp, _ = _json(realistic, cam)
    clean = ~(npz[f"{cam}/outlier"] | npz[f"{cam}/occluded"] | npz[f"{cam}/swapped"][:, :, None])[:, 0]
    err = kp[:, 0, :, :2] - npz[f"{cam}/uv_true"][:, 0]
    ok = clean & np.isfinite(err[..., 0])
    sigma = np.sqrt(8.0 ** 2 + 1.0 ** 2)
    assert np.std(err[ok]) == pytest.approx(sigma, rel=0.15)
    e = np.where(ok[..., None], err, np.nan)[..., 0]
    lag1 = np.nanmean(e[1:] * e[:-1]) / np.nanmean(e * e)
    assert lag1 > 0.8  # time-correlated, not white


def test_written_calibration_is_perturbed_truth_is_exact(realistic):
    exact = read_calibration(realistic.path / "truth" / "Calib_exact.toml")
    written = read_calibration(realistic.path / "calibration" / "Calib_scene.toml")
    for a, b in zip(exact, written):
        assert np.linalg.norm(a.center - b.center) == pytest.approx(0.01, abs=1e-6)
        angle = np.degrees(np.linalg.norm(rotation_vector(b.R @ a.R.T)))
        assert angle == pytest.approx(0.5, abs=1e-6)


def test_offsets_shift_the_time_of_each_camera(tmp_path):
    info = build_scene(tmp_path / "d", "desync", n_frames=200, seed=2, noise_px=0.0, dropout_rate=0.0,
                       max_offset_frames=6.0, fractional_offsets=False)
    trc = read_trc(info.path / "truth" / "keypoints.trc")
    world = yup_to_zup(trc.xyz)
    cams = {c.name: c for c in read_calibration(info.path / "calibration" / "Calib_scene.toml")}
    for name, d in info.offsets.items():
        assert float(d).is_integer()
        kp, _ = _json(info, name)
        k = np.arange(10, 180)
        uv = project_points(cams[name], world[k + int(d)].reshape(-1, 3)).reshape(len(k), 26, 2)
        got = kp[k, 0, :, :2]
        ok = np.isfinite(got[..., 0])
        assert np.abs(got[ok] - uv[ok]).max() < 1e-6


def test_multi_two_people_crossing(tmp_path):
    info = build_scene(tmp_path / "m", "multi", n_frames=240, seed=1)
    config = load_config(info.path)
    assert config.project.multi_person is True and len(config.project.participant_height) == 2
    p1 = read_trc(info.path / "truth" / "keypoints.trc")
    p2 = read_trc(info.path / "truth" / "keypoints_P2.trc")
    assert (info.path / "truth" / "angles_P2.mot").is_file()
    dist = np.linalg.norm(p1.marker("Hip")[:, [0, 2]] - p2.marker("Hip")[:, [0, 2]], axis=1)
    assert dist.min() > 0.3  # they do not walk through each other
    assert dist.max() - dist.min() > 0.8  # but their distance changes a lot (crossing)
    kp, _ = _json(info, "cam01")
    assert kp.shape[1] == 2 and np.mean(np.isfinite(kp[:, 1, 0, 0])) > 0.3
    order = np.load(info.path / "truth" / "corruptions.npz")["cam01/order"]
    both = (order >= 0).all(axis=1)
    assert 0 < np.mean(order[both, 0] == 1) < 1  # detectors list people in no fixed order


def test_more_cameras_on_a_ring_coco_and_blazepose(tmp_path):
    info = build_scene(tmp_path / "r", "clean", n_frames=30, cameras=8, keypoints="COCO_17")
    cams = read_calibration(info.path / "calibration" / "Calib_scene.toml")
    assert [c.name for c in cams][4:] == ["cam05", "cam06", "cam07", "cam08"]
    for c in cams[4:]:
        assert info.stats[c.name]["detected"] > 0.95
    assert read_trc(info.truth_trc[0]).marker_names == ["Nose", "LEye", "REye", "LEar", "REar", "LShoulder",
                                                       "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist",
                                                       "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle"]
    assert load_config(info.path).pose.pose_model == "Body"
    blaze = build_scene(tmp_path / "b", "clean", n_frames=10, cameras=2, keypoints="BLAZEPOSE")
    trc = read_trc(blaze.truth_trc[0])
    assert len(trc.marker_names) == 33 and np.isfinite(trc.xyz).all()
    assert load_config(blaze.path).pose.pose_model == "BLAZEPOSE"


def test_same_seed_same_scene(tmp_path):
    a = build_scene(tmp_path / "a", "mild", n_frames=40, seed=9)
    b = build_scene(tmp_path / "b", "mild", n_frames=40, seed=9)
    c = build_scene(tmp_path / "c", "mild", n_frames=40, seed=10)
    ka, kb, kc = (_json(s, "cam02")[0] for s in (a, b, c))
    assert np.array_equal(ka, kb, equal_nan=True) and not np.array_equal(ka, kc, equal_nan=True)


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(OpenKinError, match="realistic"):
        make_spec("realistc")
    with pytest.raises(OpenKinError, match="outlier_rate"):
        make_spec("clean", outlier_rat=0.1)
    with pytest.raises(OpenKinError, match="cameras"):
        make_spec("realistic", cameras=1)


def test_no_overwrite_and_no_partial_output(tmp_path):
    out = tmp_path / "scene"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    with pytest.raises(OpenKinError, match="not empty"):
        build_scene(out, "clean", n_frames=20)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]

    def cancel_late(fraction, message=""):
        return fraction < 0.8  # cancel while the JSON files are being written

    with pytest.raises(Cancelled):
        build_scene(out, "clean", n_frames=20, overwrite=True, progress=cancel_late)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]  # no temporary folders left


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli.main(["synth", str(out), "--scene", "mild", "--frames", "30", "--set", "noise_px=2",
                     "--set", "outlier_px=[60, 90]"]) == 0
    assert (out / "truth" / "keypoints.trc").is_file()
    assert cli.main(["synth", str(out), "--scene", "mild", "--frames", "30"]) == 2  # exists
    assert cli.main(["synth", str(tmp_path / "x"), "--set", "bogus=1"]) == 2
    assert cli.main(["synth", "unused", "--list"]) == 0
    assert "realistic" in capsys.readouterr().out


def test_truth_angles_stay_within_the_model_ranges(realistic):
    """IK cannot reach angles outside a clamped coordinate's range: the truth never goes there."""
    import opensim as osim

    from openkin.assets import asset_path

    model = osim.Model(str(asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim")))
    mot = read_mot(realistic.path / "truth" / "angles.mot")
    coords = model.getCoordinateSet()
    for name in mot.names:
        c = coords.get(name)
        if not c.get_clamped():
            continue
        lo, hi = np.degrees([c.getRangeMin(), c.getRangeMax()])
        v = mot.column(name)
        assert lo - 1e-6 <= v.min() and v.max() <= hi + 1e-6, name


def test_degenerate_rigs_for_later_stages(tmp_path):
    """One camera, and a camera that never sees the person (lost for the whole clip)."""
    one = build_scene(tmp_path / "one", "clean", n_frames=20, cameras=1)
    assert [c.name for c in read_calibration(one.path / "calibration" / "Calib_scene.toml")] == ["cam01"]
    blind = build_scene(tmp_path / "blind", "clean", n_frames=20, lost_cameras=1, lost_seconds=100.0)
    (name,) = [c for c, s in blind.stats.items() if s["lost_frames"]]
    assert blind.stats[name]["lost_frames"] == 20
    kp, _ = _json(blind, name)
    assert np.isnan(kp).all()
    pair = build_scene(tmp_path / "pair", "clean", n_frames=20, cameras=2, collinear_pair=True)
    a, b = read_calibration(pair.path / "calibration" / "Calib_scene.toml")
    assert np.linalg.norm(b.center - a.center) == pytest.approx(1.0)
    assert np.degrees(np.arccos(min(1.0, b.R[2] @ (a.center - b.center)))) < 1e-3  # cam01 sits on cam02's line of sight
    assert pair.stats["cam02"]["detected"] > 0.9

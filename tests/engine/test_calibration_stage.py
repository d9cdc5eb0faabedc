"""Calibration stage on the real demo data: checkerboard intrinsics, scene and board
extrinsics, conversion with reuse, and its errors."""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from openkin import calibration
from openkin.assets import demo_project
from openkin.config import load_config
from openkin.errors import OpenKinError
from openkin.formats.calibration import Camera, read_calibration, write_calibration
from openkin.project import ProjectPaths

# Qualisys focal lengths of the demo cameras (focalLengthU / 64 in Calib.qca.txt), px.
QUALISYS_FX = {"cam01": 1681.2, "cam02": 1673.7, "cam03": 1681.6, "cam04": 1675.2}
CALCULATE = {"calibration": {"calibration_type": "calculate"}}


def _run(project: Path, overrides: dict | None = None) -> None:
    calibration.run_stage(load_config(project, overrides=overrides), ProjectPaths(project))


def _demo_calib_only(dest: Path, source: Path) -> Path:
    """A project with only the demo's calibration folder (videos not needed here)."""
    shutil.copytree(source / "calibration", dest / "calibration")
    shutil.copy(source / "Config.toml", dest / "Config.toml")
    return dest


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return demo_project(tmp_path_factory.mktemp("demo") / "project")


@pytest.fixture(scope="module")
def intrinsics_project(demo, tmp_path_factory) -> Path:
    """Demo calibration folder with intrinsics computed once from the checkerboard images."""
    project = _demo_calib_only(tmp_path_factory.mktemp("intr") / "p", demo)
    _run(project, {"calibration": {"calibration_type": "calculate",
                                   "calculate": {"extrinsics": {"calculate_extrinsics": False}}}})
    return project


def test_intrinsics_from_demo_checkerboards(intrinsics_project):
    out = intrinsics_project / "calibration" / "Calib_scene.toml"
    cams = read_calibration(out)
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    record = tomllib.loads((intrinsics_project / "openkin" / "calibration.toml").read_text())
    for cam in cams:
        assert tuple(cam.size) == (1088, 1920)
        assert cam.matrix[0, 0] == pytest.approx(QUALISYS_FX[cam.name], rel=0.02)
        assert cam.matrix[0, 2] == pytest.approx(544, abs=40) and cam.matrix[1, 2] == pytest.approx(960, abs=40)
        assert 0 < record["intrinsics"][cam.name]["rms_px"] < 1.5
        assert record["intrinsics"][cam.name]["images"] >= 6


def _ground_truth_poses() -> list[tuple[np.ndarray, np.ndarray]]:
    """Four cameras around the origin looking at it from ~3.5 m (world Z up)."""
    poses = []
    for k in range(4):
        az = np.deg2rad(45 + 90 * k)
        center = np.array([3.0 * np.cos(az), 3.0 * np.sin(az), 1.8])
        forward = -center / np.linalg.norm(center)
        right = np.cross(forward, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        R = np.stack([right, down, forward])
        poses.append((cv2.Rodrigues(R)[0].ravel(), -R @ center))
    return poses


def _write_image_points(project: Path, cams: list[Camera], poses, hide: int | None = None) -> None:
    config = load_config(project)
    obj = np.array(config.calibration.calculate.extrinsics.scene.object_coords_3d)
    entries = []
    for k, (cam, (r, t)) in enumerate(zip(cams, poses)):
        uv = cv2.projectPoints(obj, r, t, cam.matrix, cam.distortions)[0].reshape(-1, 2)
        flat = [float(v) for v in uv.ravel()]
        if hide is not None and k == 0:
            flat[2 * hide:2 * hide + 2] = [None, None]
        entries.append({"cam_name": f"{cam.name}_ext.png", "image_points_2d": flat})
    (project / "calibration" / "Image_points.json").write_text(json.dumps({"intrinsics": [], "extrinsics": entries}))


def test_scene_extrinsics_from_image_points(intrinsics_project, tmp_path):
    project = _demo_calib_only(tmp_path / "p", intrinsics_project)
    cams = read_calibration(project / "calibration" / "Calib_scene.toml")
    poses = _ground_truth_poses()
    _write_image_points(project, cams, poses, hide=3)
    _run(project, CALCULATE)  # overwrite_intrinsics = false: reuses the intrinsics above
    out = read_calibration(project / "calibration" / "Calib_scene.toml")
    for cam, ref, (r, t) in zip(out, cams, poses):
        np.testing.assert_allclose(cam.matrix, ref.matrix)  # intrinsics kept
        np.testing.assert_allclose(cam.center, -cv2.Rodrigues(r)[0].T @ t, atol=1e-3)
    record = tomllib.loads((project / "openkin" / "calibration.toml").read_text())
    assert record["extrinsics"]["cameras"]["cam01"]["points"] == 7  # one hidden point dropped
    assert all(v["rms_px"] < 0.01 for v in record["extrinsics"]["cameras"].values())
    assert len(list((project / "calibration" / "debug").glob("*_reprojection.jpg"))) == 4


def test_scene_without_image_points_says_what_to_write(intrinsics_project, tmp_path):
    project = _demo_calib_only(tmp_path / "p", intrinsics_project)
    before = (project / "calibration" / "Calib_scene.toml").read_bytes()
    with pytest.raises(OpenKinError) as e:
        _run(project, CALCULATE)
    assert "Image_points.json" in str(e.value) and "image_points_2d" in e.value.fix
    assert (project / "calibration" / "Calib_scene.toml").read_bytes() == before  # nothing overwritten


def test_board_extrinsics_on_real_checkerboard(intrinsics_project, tmp_path):
    project = _demo_calib_only(tmp_path / "p", intrinsics_project)
    ext = project / "calibration" / "extrinsics"
    shutil.rmtree(ext)
    for cam in ("cam01", "cam02", "cam03", "cam04"):  # a checkerboard view of each camera as its extrinsics image
        (ext / cam).mkdir(parents=True)
        board = project / "calibration" / "intrinsics" / f"int_{cam}_img" / f"{cam}_01_int.jpg"
        shutil.copy(board, ext / cam / "board.jpg")
    _run(project, {"calibration": {"calibration_type": "calculate", "calculate": {"extrinsics": {
        "extrinsics_method": "board", "extrinsics_extension": "jpg"}}}})
    out = read_calibration(project / "calibration" / "Calib_board.toml")
    record = tomllib.loads((project / "openkin" / "calibration.toml").read_text())
    for cam in out:
        assert record["extrinsics"]["cameras"][cam.name]["rms_px"] < 1.0
        assert 0.3 < np.linalg.norm(cam.center) < 3.0  # held at arm's length, in metres


def test_keypoints_extrinsics_not_available(intrinsics_project, tmp_path):
    project = _demo_calib_only(tmp_path / "p", intrinsics_project)
    with pytest.raises(OpenKinError, match="keypoints"):
        _run(project, {"calibration": {"calibration_type": "calculate",
                                       "calculate": {"extrinsics": {"extrinsics_method": "keypoints"}}}})


def test_too_few_boards_is_an_error(demo, tmp_path):
    project = _demo_calib_only(tmp_path / "p", demo)
    folder = project / "calibration" / "intrinsics" / "int_cam01_img"
    for img in sorted(folder.glob("*.jpg"))[2:]:
        img.unlink()
    with pytest.raises(OpenKinError, match="only .* of 2 images of cam01"):
        _run(project, CALCULATE)
    assert not (project / "calibration" / "Calib_scene.toml").exists()


def test_board_points_layouts():
    h = calibration.board_points((4, 7), 0.06, "horizontal")
    assert h.shape == (28, 3) and np.all(h[:, 2] == 0)
    assert h[1].tolist() == pytest.approx([0.06, 0, 0]) and h[4].tolist() == pytest.approx([0, 0.06, 0])
    v = calibration.board_points((4, 7), 0.06, "vertical")
    assert np.all(v[:, 1] == 0) and v[:, 0].max() == pytest.approx(0.36) and v[:, 2].max() == pytest.approx(0.18)


# --------------------------------------------------------------------------- find_calibration
def _cam(name: str) -> Camera:
    return Camera(name, [640, 480], [[500, 0, 320], [0, 500, 240], [0, 0, 1]], [0, 0, 0, 0], [0, 0, 0], [0, 0, 2])


def test_find_calibration_rules(tmp_path):
    d = tmp_path / "calibration"
    with pytest.raises(OpenKinError, match="no calibration folder"):
        calibration.find_calibration(d)
    d.mkdir()
    with pytest.raises(OpenKinError, match="no calibration TOML"):
        calibration.find_calibration(d)
    write_calibration(d / "anipose.toml", [_cam("a")])
    assert calibration.find_calibration(d).name == "anipose.toml"
    write_calibration(d / "Calib_scene.toml", [_cam("a")])
    assert calibration.find_calibration(ProjectPaths(tmp_path)).name == "Calib_scene.toml"


def test_toml_kinds_need_no_conversion(tmp_path):
    write_calibration(tmp_path / "calibration" / "calibration.toml", [_cam("a"), _cam("b")])
    (tmp_path / "Config.toml").write_text("[calibration.convert]\nconvert_from = 'anipose'\n")
    _run(tmp_path)
    assert sorted(p.name for p in (tmp_path / "calibration").iterdir()) == ["calibration.toml"]


def test_missing_source_names_the_pattern(tmp_path):
    (tmp_path / "calibration").mkdir()
    (tmp_path / "Config.toml").write_text("[calibration.convert]\nconvert_from = 'vicon'\n")
    with pytest.raises(OpenKinError, match=r"no \*\.xcp file"):
        _run(tmp_path)
    (tmp_path / "Config.toml").write_text("[calibration.convert]\nconvert_from = 'optitrack'\n")
    with pytest.raises(OpenKinError, match="optitrack"):
        _run(tmp_path)


# --------------------------------------------------------------------------- convert
@pytest.fixture()
def converted(demo, tmp_path) -> Path:
    project = _demo_calib_only(tmp_path / "p", demo)
    _run(project)  # the demo's Config.toml: convert_from = 'qualisys'
    return project


def test_convert_qualisys_demo(converted):
    out = converted / "calibration" / "Calib_qualisys.toml"
    cams = read_calibration(out)
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    for cam in cams:
        assert cam.matrix[0, 0] == pytest.approx(QUALISYS_FX[cam.name], abs=1.0)
        assert 2.0 < np.linalg.norm(cam.center) < 6.0  # cameras a few metres from the origin
    record = tomllib.loads((converted / "openkin" / "calibration.toml").read_text())
    assert record["convert_from"] == "qualisys" and "Calib.qca.txt" in record["sources"]
    assert calibration.find_calibration(converted / "calibration") == out


def test_convert_reuses_then_redoes_when_source_changes(converted):
    out = converted / "calibration" / "Calib_qualisys.toml"
    stamp = out.stat().st_mtime_ns
    _run(converted)
    assert out.stat().st_mtime_ns == stamp  # unchanged source: reused
    src = converted / "calibration" / "Calib.qca.txt"
    src.write_text(src.read_text().replace('focalLengthU="107599.671875"', 'focalLengthU="108240.0"'))
    _run(converted)
    assert read_calibration(out)[0].matrix[0, 0] == pytest.approx(108240.0 / 64, rel=1e-6)
    _run(converted, {"calibration": {"convert": {"qualisys": {"binning_factor": 2}}}})
    assert read_calibration(out)[0].matrix[0, 0] == pytest.approx(108240.0 / 128, rel=1e-6)


def test_convert_keeps_a_hand_edited_output(converted):
    out = converted / "calibration" / "Calib_qualisys.toml"
    edited = out.read_text().replace('name = "cam01"', 'name = "left"')
    out.write_text(edited)
    src = converted / "calibration" / "Calib.qca.txt"
    src.write_text(src.read_text() + "\n")
    _run(converted)
    assert out.read_text() == edited


def test_scene_extrinsics_recover_the_qualisys_poses(converted):
    """Image points of object_coords_3d as the Qualisys cameras see them in the demo's
    extrinsics images -> solvePnP with the (reused) Qualisys intrinsics -> the same poses."""
    cams = read_calibration(converted / "calibration" / "Calib_qualisys.toml")
    _write_image_points(converted, cams, [(c.rotation, c.translation) for c in cams])
    _run(converted, CALCULATE)
    out = read_calibration(converted / "calibration" / "Calib_scene.toml")
    for cam, ref in zip(out, cams):
        np.testing.assert_allclose(cam.matrix, ref.matrix)
        np.testing.assert_allclose(cam.center, ref.center, atol=1e-3)


def test_existing_calibration_used_when_the_source_is_gone(converted):
    (converted / "calibration" / "Calib.qca.txt").unlink()
    out = converted / "calibration" / "Calib_qualisys.toml"
    stamp = out.stat().st_mtime_ns
    _run(converted)
    assert out.stat().st_mtime_ns == stamp


def test_intrinsics_from_a_checkerboard_video(demo, tmp_path):
    """A camera's checkerboard video (here made of the demo's images, 2 s each) is sampled every second."""
    project = _demo_calib_only(tmp_path / "p", demo)
    intr = project / "calibration" / "intrinsics"
    for folder in sorted(intr.iterdir())[1:]:
        shutil.rmtree(folder)
    folder = intr / "int_cam01_img"
    images = sorted(folder.glob("*.jpg"))
    first = cv2.imread(str(images[0]))
    writer = cv2.VideoWriter(str(folder / "board.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 2.0,
                             (first.shape[1], first.shape[0]))
    for img in images:
        frame = cv2.imread(str(img))
        writer.write(frame)
        writer.write(frame)
        img.unlink()
    writer.release()
    _run(project, {"calibration": {"calibration_type": "calculate", "calculate": {
        "intrinsics": {"intrinsics_extension": "avi", "extract_every_N_sec": 1.0},
        "extrinsics": {"calculate_extrinsics": False}}}})
    cam = read_calibration(project / "calibration" / "Calib_scene.toml")[0]
    record = tomllib.loads((project / "openkin" / "calibration.toml").read_text())
    assert record["intrinsics"]["cam01"]["images"] == 6  # 7 sampled frames, one without a detectable board
    assert cam.matrix[0, 0] == pytest.approx(QUALISYS_FX["cam01"], rel=0.03)


def test_missing_source_suggests_the_kind_present(converted):
    (converted / "calibration" / "Calib_qualisys.toml").unlink()
    (converted / "Config.toml").write_text("[calibration.convert]\nconvert_from = 'vicon'\n")
    with pytest.raises(OpenKinError) as e:
        _run(converted)
    assert "convert_from = 'qualisys'" in e.value.fix

"""Round trips and bad input for TRC, MOT/STO, calibration TOML and OpenPose JSON."""
import json
import logging
import re

import numpy as np
import pytest

from openkin.errors import OpenKinError
from openkin import geometry as geo
from openkin.formats import calibration as cal
from openkin.formats import openpose
from openkin.formats.mot import Motion, read_mot, write_mot
from openkin.formats.openpose import read_openpose_dir, write_openpose_dir
from openkin.formats.trc import Trc, read_trc, write_trc, yup_to_zup, zup_to_yup

RNG = np.random.default_rng(7)


def make_trc(n=40, m=5, rate=60.0, start=0):
    xyz = RNG.normal(size=(n, m, 3))
    xyz[3 % n, 1 % m] = np.nan
    xyz[10:14, m - 1] = np.nan
    return Trc([f"M{i}" for i in range(m)], rate, xyz, frame_numbers=np.arange(start, start + n))


def make_cameras():
    """Four cameras around the origin looking at it, Z-up world, 1 px-level distortion."""
    cams = []
    for i, angle in enumerate(np.linspace(0, 2 * np.pi, 4, endpoint=False)):
        centre = np.array([4 * np.cos(angle), 4 * np.sin(angle), 1.5])
        z = -centre / np.linalg.norm(centre)
        x = np.cross(z, [0, 0, 1.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z])
        K = [[1500 + 10 * i, 0, 540], [0, 1500 + 10 * i, 960], [0, 0, 1]]
        cams.append(cal.Camera(f"cam{i + 1:02d}", [1088, 1920], K, [-0.05, 0.1, 0.001, -0.0005],
                               geo.rotation_vector(R), -R @ centre))
    return cams


def assert_same_cameras(a, b, atol=1e-9):
    assert [c.name for c in a] == [c.name for c in b]
    for x, y in zip(a, b):
        for key in ("size", "matrix", "distortions", "rotation", "translation"):
            np.testing.assert_allclose(getattr(x, key), getattr(y, key), atol=atol, err_msg=key)


# ---------------------------------------------------------------- TRC
def test_trc_round_trip_with_nan(tmp_path):
    trc = make_trc(start=12)
    read = read_trc(write_trc(tmp_path / "a.trc", trc))
    assert read.marker_names == trc.marker_names
    assert read.rate == 60.0
    np.testing.assert_array_equal(read.frame_numbers, np.arange(12, 52))
    np.testing.assert_allclose(read.times, trc.times, atol=1e-9)
    np.testing.assert_allclose(read.xyz, trc.xyz, atol=1e-8)
    assert np.isnan(read.xyz[3, 1]).all() and np.isnan(read.xyz[10:14, 4]).all() and not np.isnan(read.xyz[0]).any()


def test_trc_layout_matches_pose2sim(tmp_path):
    path = write_trc(tmp_path / "walk.trc", make_trc(n=3, m=2, rate=30))
    lines = path.read_text().split("\n")
    assert lines[0] == "PathFileType\t4\t(X/Y/Z)\twalk.trc"
    assert lines[1] == "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames"
    assert lines[2] == "30\t30\t3\t2\tm\t30\t0\t3"
    assert lines[3] == "Frame#\tTime\tM0\t\t\tM1\t\t\t"
    assert lines[4] == "\t\tX1\tY1\tZ1\tX2\tY2\tZ2\t"
    assert lines[5].startswith("0\t0\t") and len(lines[5].split("\t")) == 8


def test_trc_mm_is_read_as_metres_and_opensim_blank_line(tmp_path):
    trc = make_trc(n=5, m=3)
    write_trc(tmp_path / "mm.trc", trc, units="mm")
    text = (tmp_path / "mm.trc").read_text().split("\n")
    assert text[2].split("\t")[4] == "mm"
    text.insert(5, "")  # OpenSim writes a blank line after the header
    (tmp_path / "mm.trc").write_text("\n".join(text))
    np.testing.assert_allclose(read_trc(tmp_path / "mm.trc").xyz, trc.xyz, atol=1e-9)
    first = float(text[6].split("\t")[2])
    assert first == pytest.approx(trc.xyz[0, 0, 0] * 1000, rel=1e-8)


def test_trc_reads_nan_literals(tmp_path):
    path = write_trc(tmp_path / "a.trc", make_trc(n=2, m=1))
    lines = path.read_text().splitlines()
    lines[5] = "0\t0\tnan\tNaN\t1.5"
    path.write_text("\n".join(lines) + "\n")
    xyz = read_trc(path).xyz
    assert np.isnan(xyz[0, 0, :2]).all() and xyz[0, 0, 2] == 1.5
    lines[6] = "1\t0.0166\t2.5"  # a short row: trailing missing values left out
    path.write_text("\r\n".join(lines) + "\r\n")
    xyz = read_trc(path).xyz
    assert xyz[1, 0, 0] == 2.5 and np.isnan(xyz[1, 0, 1:]).all() and xyz[0, 0, 2] == 1.5


def test_opensim_reads_our_trc(tmp_path):
    opensim = pytest.importorskip("opensim")
    trc = make_trc(n=6, m=3, rate=30)
    table = opensim.TimeSeriesTableVec3(str(write_trc(tmp_path / "a.trc", trc)))
    assert list(table.getColumnLabels()) == trc.marker_names and table.getNumRows() == 6
    assert table.getTableMetaDataAsString("Units") == "m"
    value = table.getDependentColumn("M0")[1]
    np.testing.assert_allclose([value.get(i) for i in range(3)], trc.xyz[1, 0], rtol=1e-9)
    missing = table.getDependentColumn("M1")[3]
    assert np.isnan([missing.get(i) for i in range(3)]).all()  # empty cells are NaN for OpenSim too


def test_zup_yup_inverse_and_direction():
    p = RNG.normal(size=(4, 3))
    np.testing.assert_array_equal(yup_to_zup(zup_to_yup(p)), p)
    np.testing.assert_array_equal(zup_to_yup([[1.0, 2.0, 3.0]]), [[2.0, 3.0, 1.0]])  # up (Z=3) becomes Y


@pytest.mark.parametrize("text, words", [
    ("hello\n", "PathFileType"),
    ("PathFileType\t4\t(X/Y/Z)\ta.trc\nDataRate\tUnits\n30\tm\nFrame#\tTime\tA\t\t\n\t\tX1\tY1\tZ1\n0\t0\t1\tx\t3\n",
     "line 6, column 4"),
    ("PathFileType\t4\t(X/Y/Z)\ta.trc\nDataRate\tUnits\n30\tm\nFrame#\tTime\tA\t\t\n\t\tX1\tY1\tZ1\n", "no data rows"),
    ("PathFileType\t4\t(X/Y/Z)\ta.trc\nDataRate\tUnits\n30\tinch\nFrame#\tTime\tA\t\t\n\t\tX1\tY1\tZ1\n0\t0\t1\t2\t3\n",
     "units"),
    ("PathFileType\t4\t(X/Y/Z)\ta.trc\nDataRate\tUnits\n30\tm\nFrame#\tTime\tA\t\t\n\t\tX1\tY1\tZ1\n0\t0\t1\t2\t3\t4\t5\n",
     "more than"),
])
def test_trc_malformed(tmp_path, text, words):
    path = tmp_path / "bad.trc"
    path.write_text(text)
    with pytest.raises(OpenKinError) as err:
        read_trc(path)
    assert words in str(err.value) and "bad.trc" in str(err.value) and err.value.fix


def test_trc_missing_file_and_wrong_shapes(tmp_path):
    with pytest.raises(OpenKinError, match="not found"):
        read_trc(tmp_path / "none.trc")
    with pytest.raises(OpenKinError, match="shape"):
        Trc(["a"], 30, np.zeros((4, 1, 2)))
    with pytest.raises(OpenKinError, match="marker names"):
        Trc(["a", "b"], 30, np.zeros((4, 1, 3)))


def _disk_full(*args):
    raise OSError(28, "No space left on device")


def test_failed_writes_keep_earlier_files(tmp_path, monkeypatch):
    """A write that fails half-way (disk full at flush) leaves every earlier output intact."""
    paths = [write_trc(tmp_path / "a.trc", make_trc(n=3)), write_mot(tmp_path / "a.mot", make_motion(6)),
             write_mot(tmp_path / "a.sto", make_motion(6)),
             cal.write_calibration(tmp_path / "Calib.toml", make_cameras())]
    before = {p: p.read_bytes() for p in paths}
    with pytest.raises(OpenKinError):
        write_trc(paths[0], make_trc(n=3), units="furlong")
    monkeypatch.setattr("openkin.fileio.os.fsync", _disk_full)
    writers = [lambda p: write_trc(p, make_trc(n=9)), lambda p: write_mot(p, make_motion(9)),
               lambda p: write_mot(p, make_motion(9)), lambda p: cal.write_calibration(p, make_cameras()[:2])]
    for path, write in zip(paths, writers):
        with pytest.raises(OpenKinError, match="no space left") as info:
            write(path)
        assert info.value.path == path and "free some disk space" in info.value.fix
    assert {p: p.read_bytes() for p in paths} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


# ---------------------------------------------------------------- MOT / STO
def make_motion(n=30):
    values = RNG.normal(size=(n, 3)) * 20
    values[4, 2] = np.nan
    return Motion(["pelvis_tilt", "hip_flexion_r", "knee_angle_r"], np.arange(n) / 100, values)


@pytest.mark.parametrize("suffix", [".mot", ".sto"])
def test_mot_sto_round_trip(tmp_path, suffix):
    motion = make_motion()
    motion.in_degrees = suffix == ".mot"
    read = read_mot(write_mot(tmp_path / f"ik{suffix}", motion))
    assert read.names == motion.names and read.in_degrees == motion.in_degrees
    np.testing.assert_allclose(read.times, motion.times, atol=1e-12)
    np.testing.assert_allclose(read.values, motion.values, rtol=1e-9)
    assert read.rate == pytest.approx(100.0)


def test_mot_and_sto_headers_differ_and_opensim_reads_both(tmp_path):
    motion = make_motion(5)
    mot = write_mot(tmp_path / "a.mot", motion).read_text().splitlines()
    sto = write_mot(tmp_path / "a.sto", motion).read_text().splitlines()
    assert mot[:5] == ["Coordinates", "version=1", "nRows=5", "nColumns=4", "inDegrees=yes"]
    assert sto[:3] == ["inDegrees=yes", "DataType=double", "version=3"]
    opensim = pytest.importorskip("opensim")
    for path in (tmp_path / "a.mot", tmp_path / "a.sto"):
        table = opensim.TimeSeriesTable(str(path))
        assert list(table.getColumnLabels()) == motion.names
        assert table.getNumRows() == 5
        assert table.getDependentColumn("knee_angle_r")[3] == pytest.approx(motion.values[3, 2])


def test_mot_reads_opensim_storage_output(tmp_path):
    opensim = pytest.importorskip("opensim")
    write_mot(tmp_path / "a.sto", make_motion(6))
    storage = opensim.Storage(str(tmp_path / "a.sto"))
    storage.printResult(storage, "b", str(tmp_path), -1, ".mot")  # OpenSim's own .mot writer
    read = read_mot(tmp_path / "b.mot")
    assert read.names == make_motion(6).names and len(read.times) == 6 and read.in_degrees


@pytest.mark.parametrize("text, words", [
    ("version=1\ntime\ta\n0\t1\n", "endheader"),
    ("endheader\nframe\ta\n0\t1\n", "not 'time'"),
    ("endheader\ntime\ta\n0\tabc\n", "'abc' is not a number"),
    ("endheader\ntime\ta\n0\t1\t2\n", "column labels"),
])
def test_mot_malformed(tmp_path, text, words):
    path = tmp_path / "bad.mot"
    path.write_text(text)
    with pytest.raises(OpenKinError) as err:
        read_mot(path)
    assert words in str(err.value) and "bad.mot" in str(err.value)


def test_motion_wrong_shape_and_missing_file(tmp_path):
    with pytest.raises(OpenKinError, match="shape"):
        Motion(["a", "b"], np.arange(3), np.zeros((3, 3)))
    with pytest.raises(OpenKinError, match="motion file not found") as err:
        read_mot(tmp_path / "ik.mot")
    assert "ik.mot" in str(err.value)


# ---------------------------------------------------------------- calibration
def test_calibration_round_trip_and_layout(tmp_path):
    cams = make_cameras()
    path = cal.write_calibration(tmp_path / "Calib.toml", cams, error=0.42)
    assert_same_cameras(cal.read_calibration(path), cams, atol=0)
    text = path.read_text()
    assert text.startswith('[cam_0]\nname = "cam01"\nsize = [ 1088, 1920 ]\nmatrix = [ [ ')
    assert "[metadata]\nadjusted = false\nerror = 0.42\n" in text


def test_camera_geometry_and_projection():
    cam = make_cameras()[1]
    np.testing.assert_allclose(cam.center, [0, 4, 1.5], atol=1e-12)
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    # the world origin projects near the principal point (distortion is 0 at the centre)
    np.testing.assert_allclose(geo.project_points(cam, np.zeros((1, 3))), [[540, 960]], atol=1e-9)
    pts = RNG.uniform(-0.8, 0.8, size=(50, 3))
    pts[5] = np.nan
    uv = geo.project_points(cam, pts)
    assert np.isnan(uv[5]).all()
    undist = geo.undistort_camera_points(cam, uv)
    linear = geo.project_linear(cam.projection, pts)
    np.testing.assert_allclose(undist, linear, atol=1e-3, equal_nan=True)
    assert np.nanmax(np.abs(uv - linear)) > 0.5  # distortion moved the points


def test_vectorised_projection_matches_opencv():
    cams = make_cameras()
    for c in cams:
        c.distortions = np.zeros(4)
    pts = RNG.uniform(-1, 1, size=(7, 3, 3))
    lin = geo.project_linear(geo.camera_projections(cams), pts)
    assert lin.shape == (4, 7, 3, 2)
    np.testing.assert_allclose(lin, geo.project_points_all(cams, pts), atol=1e-8)
    assert np.all(geo.camera_depths(cams, pts) > 0)


def test_calibration_reads_anipose_caliscope_variants(tmp_path):
    cams = make_cameras()[:2]
    R = cams[1].R
    text = (
        "[charuco]\ncolumns = 4\nrows = 5\nmatrix = 'not a camera'\n\n"
        "[cam_0]\nport = 0\n" + _table_body(cams[0], with_name=False) + "\n"
        "[cam_1]\n" + _table_body(cams[1]).replace(
            f"rotation = {cams[1].rotation.tolist()}", f"rotation = {R.tolist()}") + "\n"
        "[capture_volume]\nstage = 1\n"
    )
    (tmp_path / "config.toml").write_text(text)
    read = cal.read_calibration(tmp_path / "config.toml")
    assert [c.name for c in read] == ["cam_0", "cam02"]
    np.testing.assert_allclose(read[1].rotation, cams[1].rotation, atol=1e-9)
    # Caliscope's camera_array.toml: nested [cameras.N], port numbers, uncalibrated cameras ignored
    text = ("[cameras.0]\nport = 0\nignore = true\nsize = [1280, 720]\n\n"
            "[cameras.1]\nport = 1\nignore = false\nerror = 0.37\n" + _table_body(cams[0], with_name=False)
            + "\n[cameras.2]\nport = 2\nignore = true\n" + _table_body(cams[1], with_name=False)
            + "\n[cameras.3]\nport = 3\n" + _table_body(cams[1], with_name=False))
    (tmp_path / "camera_array.toml").write_text(text)
    read = cal.read_calibration(tmp_path / "camera_array.toml")
    assert [c.name for c in read] == ["cam_1", "cam_3"]
    assert_same_cameras(read, [cal.Camera("cam_1", *_fields(cams[0])), cal.Camera("cam_3", *_fields(cams[1]))])


def _fields(cam):
    return cam.size, cam.matrix, np.append(cam.distortions, 0.0), cam.rotation, cam.translation


def _table_body(cam, with_name=True):
    return ((f"name = '{cam.name}'\n" if with_name else "")
            + f"size = {cam.size.tolist()}\nmatrix = {cam.matrix.tolist()}\n"
            + f"distortions = {cam.distortions.tolist() + [0.0]}\nrotation = {cam.rotation.tolist()}\n"
            + f"translation = {cam.translation.tolist()}\n")


def test_freemocap_millimetres_detected(tmp_path, caplog):
    """FreeMoCap's layout: first camera at the origin, others in mm, trailing commas, odd metadata."""
    cams = make_cameras()[:3]
    R0, t0 = cams[0].R, cams[0].translation
    for c in cams:  # re-express in camera 0's frame, as FreeMoCap does
        R = c.R @ R0.T
        c.translation, c.rotation = (c.translation - R @ t0) * 1000, geo.rotation_vector(R)
    text = "".join(f"[cam_{i}]\nname = \"{c.name}\"\nsize = [ 1088, 1920,]\n"
                   f"matrix = {c.matrix.tolist()}\ndistortions = [ -0.3, 0.0, 0.0, 0.0, 0.0,]\n"
                   f"rotation = {c.rotation.tolist()}\ntranslation = {c.translation.tolist()}\n\n"
                   for i, c in enumerate(cams))
    text += '[metadata]\ncharuco_square_size = 58.0\ncharuco_board_object = "CharucoBoardDefinition(...)"\n'
    (tmp_path / "fmc.toml").write_text(text)
    with caplog.at_level(logging.WARNING):
        read = cal.read_calibration(tmp_path / "fmc.toml")
    assert "millimetres" in caplog.text
    np.testing.assert_allclose(read[0].translation, 0, atol=1e-12)
    baseline = np.linalg.norm(make_cameras()[1].center - make_cameras()[0].center)
    assert np.linalg.norm(read[1].center - read[0].center) == pytest.approx(baseline, rel=1e-9)
    forced = cal.read_calibration(tmp_path / "fmc.toml", units="m")
    assert np.linalg.norm(forced[1].translation) > 1000


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.replace("]\nname", "\nname", 1), "malformed TOML"),
    (lambda t: t.replace("rotation = [ ", "rotation = [ 0.5, ", 1), "'rotation' has shape (4,)"),
    (lambda t: re.sub(r"rotation = \[ [^,]+,", "rotation = [ nan,", t, count=1), "'rotation' contains NaN"),
    (lambda t: t.replace("matrix = [ [ ", "matrix = [ [ inf, ", 1), "'matrix' must be 3 x 3 numbers"),
    (lambda t: t.replace("translation = [ ", "translation = [ nan, 0.0, 0.0 ]\nold = [ ", 1), "NaN"),
    (lambda t: t.replace("distortions", "distortion", 1), "lacks distortions"),
    (lambda t: t.replace("size = [ 1088, 1920 ]", "size = [ 1088 ]", 1), "'size' has shape"),
    (lambda t: t.replace('"cam02"', '"cam01"'), "names repeat"),
    (lambda t: "[metadata]\nerror = 0.0\n", "no camera"),
])
def test_calibration_bad_input(tmp_path, edit, words):
    path = cal.write_calibration(tmp_path / "Calib.toml", make_cameras())
    path.write_text(edit(path.read_text()))
    with pytest.raises(OpenKinError) as err:
        cal.read_calibration(path)
    assert words in str(err.value), str(err.value)
    assert "Calib.toml" in str(err.value) and err.value.fix


def test_calibration_missing_file_and_failed_write(tmp_path):
    with pytest.raises(OpenKinError, match="calibration file not found"):
        cal.read_calibration(tmp_path / "Calib.toml")
    with pytest.raises(OpenKinError, match="non-empty list of Camera"):
        cal.write_calibration(tmp_path / "Calib.toml", [])
    with pytest.raises(OpenKinError, match="distortions must have 4 or 5"):
        cal.Camera("a", [10, 10], np.eye(3), [0.1, 0.2], [0, 0, 0], [0, 0, 1])
    path = cal.write_calibration(tmp_path / "Calib.toml", make_cameras())
    before = path.read_bytes()
    cams = make_cameras()
    cams[3].translation = np.array([np.nan, 0, 0])  # set after validation: caught while writing
    with pytest.raises(OpenKinError, match="non-finite"):
        cal.write_calibration(path, cams)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Calib.toml"]


# ---------------------------------------------------------------- OpenPose JSON
def test_openpose_round_trip_multi_person(tmp_path):
    kp = RNG.uniform(0, 1000, size=(25, 3, 26, 3))
    kp[..., 2] = RNG.uniform(0.1, 1, size=(25, 3, 26))
    kp[2, 0] = np.nan          # absent person before present ones keeps its slot
    kp[4, 1:] = np.nan         # trailing absent people are not written
    kp[6, 2, 5] = np.nan       # one missing keypoint
    ids = np.tile([0, 1, 2], (25, 1))
    frames = np.arange(100, 125)
    files = write_openpose_dir(tmp_path / "cam01_json", "cam01", kp, frames, ids)
    assert files[0].name == "cam01_000100.json"
    data = json.loads(files[4].read_text())
    assert data["version"] == 1.3 and len(data["people"]) == 1
    assert data["people"][0]["person_id"] == [0] and data["people"][0]["face_keypoints_2d"] == []
    read, read_frames, read_ids = read_openpose_dir(tmp_path / "cam01_json")
    np.testing.assert_array_equal(read_frames, frames)
    np.testing.assert_allclose(read, kp, equal_nan=True)
    np.testing.assert_array_equal(read_ids[4], [0, -1, -1])
    np.testing.assert_array_equal(read_ids[0], [0, 1, 2])


def test_openpose_reads_pose2sim_files(tmp_path):
    folder = tmp_path / "cam02_json"
    folder.mkdir()
    person = {"person_id": [-1], "pose_keypoints_2d": [10.5, 20.0, 0.9, 0, 0, 0, 3.0, 4.0, 0.0]}
    (folder / "cam02_000003.json").write_text(json.dumps({"version": 1.3, "people": [person]}))
    (folder / "cam02_000001.json").write_text('{"version": 1.3, "people": [{"person_id": [-1], '
                                              '"pose_keypoints_2d": [NaN, NaN, NaN, 1, 2, 0.5, 1, 1, 1]}]}')
    (folder / "cam02_000002.json").write_text('{"version": 1.3, "people": []}')
    kp, frames, ids = read_openpose_dir(folder)
    assert kp.shape == (3, 1, 3, 3) and frames.tolist() == [1, 2, 3] and ids.tolist() == [[-1]] * 3
    assert np.isnan(kp[0, 0, 0]).all() and np.isnan(kp[1]).all() and np.isnan(kp[2, 0, 1]).all()
    np.testing.assert_array_equal(kp[2, 0, 2], [3.0, 4.0, 0.0])  # zero confidence with a position is kept


def test_openpose_rewrite_replaces_old_frames_only_when_complete(tmp_path, monkeypatch):
    folder = tmp_path / "cam01_json"
    write_openpose_dir(folder, "cam01", np.ones((5, 1, 4, 3)))
    (folder / "notes.txt").write_text("keep me")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(OpenKinError):
        write_openpose_dir(folder, "cam01", np.ones((3, 1, 4, 3)), frame_numbers=[0, 0, 1])
    calls = []

    def fail_third_frame(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_frame(*args)

    real_frame = openpose.openpose_frame
    monkeypatch.setattr(openpose, "openpose_frame", fail_third_frame)
    with pytest.raises(OpenKinError, match="no space left"):
        write_openpose_dir(folder, "cam01", np.full((8, 1, 4, 3), 2.0))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["cam01_json"]
    write_openpose_dir(folder, "cam01", np.full((2, 1, 4, 3), 2.0))
    assert sorted(p.name for p in folder.iterdir()) == ["cam01_000000.json", "cam01_000001.json", "notes.txt"]


@pytest.mark.parametrize("content, words", [
    ('{"version": 1.3, "people": [', "malformed JSON"),
    ('{"version": 1.3}', "no 'people' list"),
    ('{"version": 1.3, "people": [{"pose_keypoints_2d": [1, 2]}]}', "triples"),
])
def test_openpose_malformed(tmp_path, content, words):
    folder = tmp_path / "cam01_json"
    write_openpose_dir(folder, "cam01", np.ones((2, 1, 4, 3)))
    (folder / "cam01_000001.json").write_text(content)
    with pytest.raises(OpenKinError) as err:
        read_openpose_dir(folder)
    assert words in str(err.value) and "cam01_000001.json" in str(err.value)


def test_openpose_folder_problems(tmp_path):
    with pytest.raises(OpenKinError, match="pose folder not found"):
        read_openpose_dir(tmp_path / "nope_json")
    (tmp_path / "empty_json").mkdir()
    with pytest.raises(OpenKinError, match="no JSON pose files"):
        read_openpose_dir(tmp_path / "empty_json")
    folder = tmp_path / "mixed_json"
    write_openpose_dir(folder, "cam01", np.ones((2, 1, 4, 3)))
    write_openpose_dir(folder, "cam02", np.ones((2, 1, 5, 3)))
    with pytest.raises(OpenKinError, match="several files for frame 0"):
        read_openpose_dir(folder)
    assert read_openpose_dir(folder, stem="cam02")[0].shape == (2, 1, 5, 3)
    with pytest.raises(OpenKinError, match="people"):
        write_openpose_dir(folder, "cam01", np.ones((2, 4, 3)))


def _read_validating(folder):
    """The per-file json path of ``read_openpose_dir`` (the reference its fast path must match)."""
    files, frames = openpose.list_json(folder)
    keypoints, ids = openpose._stack(folder, files, [openpose.read_openpose_json(p) for p in files])
    return keypoints, frames, ids


@pytest.mark.parametrize("variant", ["plain", "indented", "key_order", "int_id", "empty_list", "empty_person"])
def test_openpose_fast_reader_matches_validating_reader(tmp_path, variant):
    folder = tmp_path / "cam01_json"
    kp = RNG.uniform(0, 1000, size=(6, 2, 4, 3))
    kp[1, 0] = np.nan
    kp[3, 1] = np.nan
    kp[2, 1, 2] = np.nan
    write_openpose_dir(folder, "cam01", kp, np.arange(6) * 3, np.tile([4, 7], (6, 1)))
    person = {"person_id": 5, "pose_keypoints_2d": [1.5, 2.5, 0.5] * 4} if variant == "int_id" else \
        {"pose_keypoints_2d": [1.5, 2.5, 0.5] * 4, "person_id": [9]}
    people = {"plain": [person], "indented": [person, person], "key_order": [person],
              "int_id": [person], "empty_list": [{"person_id": [1], "pose_keypoints_2d": []}, person],
              "empty_person": [{}, person]}[variant]
    text = json.dumps({"version": 1.3, "people": people}, indent=2 if variant == "indented" else None)
    (folder / "cam01_000009.json").write_text(text)
    fast = openpose._read_dir_fast(folder, None)
    if variant == "empty_person":
        assert fast is None  # `{}` people go through the validating path
    else:
        for a, b in zip((fast.keypoints, fast.frames, fast.ids), _read_validating(folder)):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(read_openpose_dir(folder), _read_validating(folder)):
        np.testing.assert_array_equal(a, b)
    listed = openpose.read_openpose_folder(folder)
    assert listed.names[3] == "cam01_000009.json" and listed.names[0] == "cam01_000000.json"
    assert listed.listed.tolist() == [2, 2, 2, len(people), 2, 2]

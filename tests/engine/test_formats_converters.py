"""Calibration converters: each vendor file is BUILT here from known cameras, converted,
and compared with the cameras it came from (and checked on the real Qualisys demo file)."""
import logging
import pickle

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from openkin import assets
from openkin.errors import OpenKinError
from openkin import geometry as geo
from openkin.formats import calibration as cal
from openkin.formats.calib_converters import convert_calibration, natural_key
from test_formats import assert_same_cameras, make_cameras

RX_PI = np.diag([1.0, -1.0, -1.0])


def num(value):
    """Exact text of a float (numpy 2 reprs carry the type name)."""
    return repr(float(value))


def rig(names=("cam01", "cam02", "cam03", "cam04"), radial_only=False):
    cams = make_cameras()
    for c, n in zip(cams, names):
        c.name = n
        if radial_only:
            c.distortions = np.array([c.distortions[0], c.distortions[1], 0.0, 0.0])
    return cams


# ---------------------------------------------------------------- Qualisys
def qca_text(cams, binning=1, left=0, top=0, extra_marker_camera=True):
    """A .qca.txt as QTM exports it: 1/64 sub-pixel intrinsics of the full sensor, pose camera→world in mm."""
    blocks = []
    for c in cams:
        b = binning
        w, h = c.size
        M = RX_PI @ c.R  # QTM camera axes: y up, z backward
        r = " ".join(f'r{i + 1}{j + 1}="{num(M[i, j])}"' for i in range(3) for j in range(3))
        x, y, z = c.center * 1000
        k1, k2, p1, p2 = c.distortions[:4] * 64 * b
        blocks.append(
            f'<camera active="1" avg-residual="0.4" model="none" serial="{c.name}" viewrotation="0">'
            f'<fov_video left="{left}" top="{top}" right="{left + w * b - 1}" bottom="{top + h * b - 1}"/>'
            f'<transform {r} x="{num(x)}" y="{num(y)}" z="{num(z)}"/>'
            f'<intrinsic focalLengthU="{num(c.matrix[0, 0] * 64 * b)}" focalLengthV="{num(c.matrix[1, 1] * 64 * b)}" '
            f'centerPointU="{num((c.matrix[0, 2] + left) * 64 * b)}" centerPointV="{num((c.matrix[1, 2] + top) * 64 * b)}" '
            f'radialDistortion1="{num(k1)}" radialDistortion2="{num(k2)}" radialDistortion3="0" '
            f'tangentalDistortion1="{num(p1)}" tangentalDistortion2="{num(p2)}"/></camera>')
    if extra_marker_camera:
        blocks.append('<camera model="Miqus M3" serial="999"><fov_video left="0"/></camera>')
    return f"<?xml version='1.0'?><calibration><cameras>{''.join(blocks)}</cameras></calibration>"


@pytest.mark.parametrize("binning, left, top", [(1, 0, 0), (2, 16, 8)])
def test_qualisys_round_trip(tmp_path, binning, left, top):
    cams = rig(("cam10", "cam2", "cam1", "cam3"))
    (tmp_path / "Calib.qca.txt").write_text(qca_text(cams, binning, left, top))
    out = convert_calibration(tmp_path / "Calib.qca.txt", "qualisys", binning_factor=binning)
    expected = sorted(cams, key=lambda c: natural_key(c.name))
    assert [c.name for c in out] == ["cam1", "cam2", "cam3", "cam10"]
    assert_same_cameras(out, expected, atol=1e-9)
    folder = convert_calibration(tmp_path, "qualisys", binning_factor=binning)  # the folder works too
    assert_same_cameras(folder, expected, atol=1e-9)


def test_qualisys_demo_file_is_physically_right():
    """The demo's real calibration: Z-up world, cameras ~2 m high, all looking at the capture volume."""
    path = assets.asset_path("Demo_SinglePerson/calibration/Calib.qca.txt")
    cams = convert_calibration(path, "qualisys")
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    centres = np.array([c.center for c in cams])
    np.testing.assert_allclose(centres[0], [1.4602323709, -1.9091590482, 1.8965058524], atol=1e-9)
    assert np.all((centres[:, 2] > 1.5) & (centres[:, 2] < 2.2))  # heights: Z is up
    volume = np.array([[0, 0, 0], [0, 0, 1.0], [0, 0, 1.8]])  # floor origin, 1 m and 1.8 m above
    assert np.all(geo.camera_depths(cams, volume) > 2)
    for c in cams:
        uv = geo.project_points(c, volume)
        assert np.all((uv > 0) & (uv < c.size)), c.name
        head, foot = geo.project_points(c, volume[[1, 0]])
        assert head[1] < foot[1]  # higher in the world is higher in the image (y down)
    # Pose2Sim 0.10.49's calib_qca_fun gives these for cam01 (regression reference)
    np.testing.assert_allclose(cams[0].rotation, [1.68827548, 1.04832205, -0.41955852], atol=1e-7)
    np.testing.assert_allclose(cams[0].translation, [0.32110489, 0.95633206, 2.89071305], atol=1e-7)


# ---------------------------------------------------------------- Vicon
def xcp_text(cams):
    blocks = []
    for c in cams:
        qx, qy, qz, qw = Rotation.from_matrix(c.R).as_quat()
        fx, fy = c.matrix[0, 0], c.matrix[1, 1]
        pos = " ".join(num(v) for v in c.center * 1000)
        blocks.append(
            f'<Camera DEVICEID="{c.name}" TYPE="VideoCamera" SENSOR_SIZE="{int(c.size[0])} {int(c.size[1])}" '
            f'PIXEL_ASPECT_RATIO="{num(fx / fy)}"><KeyFrames><KeyFrame FOCAL_LENGTH="{num(fx)}" '
            f'PRINCIPAL_POINT="{num(c.matrix[0, 2])} {num(c.matrix[1, 2])}" ORIENTATION="{num(qx)} {num(qy)} {num(qz)} {num(qw)}" '
            f'POSITION="{pos}" VICON_RADIAL2="3 {c.matrix[0, 2]} {c.matrix[1, 2]} '
            f'{num(c.distortions[0])} {num(c.distortions[1])} 0" WORLD_ERROR="0.2"/></KeyFrames></Camera>')
    blocks.append('<Camera DEVICEID="77" TYPE="VANTAGE" SENSOR_SIZE="2048 1088"/>')
    return f"<?xml version='1.0'?><Cameras>{''.join(blocks)}</Cameras>"


def test_vicon_round_trip(tmp_path):
    cams = rig(radial_only=True)
    (tmp_path / "calib.xcp").write_text(xcp_text(cams[::-1]))
    assert_same_cameras(convert_calibration(tmp_path / "calib.xcp", "vicon"), cams, atol=1e-9)


# ---------------------------------------------------------------- OpenCap
# OpenCap's world comes from a vertical board: x_o = -x, y_o = -z (down), z_o = -y in our Z-up world.
OURS_TO_OPENCAP = np.array([[-1.0, 0, 0], [0, 0, -1], [0, -1, 0]])


def write_opencap(folder, cams):
    folder.mkdir(exist_ok=True)
    for i, c in enumerate(cams):
        data = {"imageSize": np.array([[c.size[1]], [c.size[0]]]), "intrinsicMat": c.matrix,
                "distortion": np.append(c.distortions, 0.0)[None], "rotation": c.R @ OURS_TO_OPENCAP.T,
                "translation": c.translation[:, None] * 1000}
        (folder / f"cam{i}.pickle").write_bytes(pickle.dumps(data))


def test_opencap_round_trip(tmp_path):
    cams = rig()
    write_opencap(tmp_path / "calib", cams)
    out = convert_calibration(tmp_path / "calib", "opencap")
    assert [c.name for c in out] == ["cam_00", "cam_01", "cam_02", "cam_03"]
    for c in out:
        c.name = cams[out.index(c)].name
        c.distortions = c.distortions[:4]
    assert_same_cameras(out, cams, atol=1e-9)
    pts = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    np.testing.assert_allclose(geo.project_points(out[0], pts), geo.project_points(cams[0], pts), atol=1e-6)


# ---------------------------------------------------------------- EasyMocap
def write_easymocap(folder, cams):
    folder.mkdir(exist_ok=True)
    intri = cv2.FileStorage(str(folder / "intri.yml"), cv2.FILE_STORAGE_WRITE)
    extri = cv2.FileStorage(str(folder / "extri.yml"), cv2.FILE_STORAGE_WRITE)
    for fs in (intri, extri):
        fs.write("names", [c.name for c in cams])
    for c in cams:
        intri.write(f"K_{c.name}", c.matrix)
        intri.write(f"dist_{c.name}", np.append(c.distortions, 0.0)[None])
        extri.write(f"R_{c.name}", c.rotation[:, None])
        extri.write(f"Rot_{c.name}", c.R)
        extri.write(f"T_{c.name}", c.translation[:, None])
    intri.release()
    extri.release()


def test_easymocap_round_trip(tmp_path, caplog):
    cams = rig()
    write_easymocap(tmp_path / "calib", cams)
    assert (tmp_path / "calib" / "intri.yml").read_text().startswith("%YAML")
    out = convert_calibration(tmp_path / "calib" / "intri.yml", "easymocap", size=(1088, 1920))
    for c in out:
        c.distortions = c.distortions[:4]
    assert_same_cameras(out, cams, atol=1e-9)
    with caplog.at_level(logging.WARNING):
        guessed = convert_calibration(tmp_path / "calib", "easymocap")
    assert "twice the principal point" in caplog.text
    np.testing.assert_allclose(guessed[0].size, [1080, 1920])


# ---------------------------------------------------------------- bioCV
def write_biocv(folder, cams):
    folder.mkdir(exist_ok=True)
    for i, c in enumerate(cams):
        K = [" ".join(num(v) for v in row) for row in c.matrix]
        RT = [" ".join(num(v) for v in row) for row in np.hstack([c.R, c.translation[:, None] * 1000])]
        lines = [str(int(c.size[0])), str(int(c.size[1])), *K, "", *RT, "0 0 0 1", "",
                 " ".join(num(v) for v in c.distortions) + " 0"]
        (folder / f"{i:02d}.calib").write_text("\n".join(lines) + "\n")


def test_biocv_round_trip(tmp_path):
    cams = rig()
    write_biocv(tmp_path / "calib", cams)
    out = convert_calibration(tmp_path / "calib", "biocv")
    assert [c.name for c in out] == ["cam_00", "cam_01", "cam_02", "cam_03"]
    for c, ref in zip(out, cams):
        c.name = ref.name
    assert_same_cameras(out, cams, atol=1e-9)


# ---------------------------------------------------------------- TOML kinds
@pytest.mark.parametrize("kind", ["caliscope", "anipose", "freemocap"])
def test_toml_kinds(tmp_path, kind, caplog):
    cams = rig()
    if kind == "freemocap":
        for c in cams:
            c.translation = c.translation * 1000
    path = cal.write_calibration(tmp_path / "camera_array.toml", cams)
    path.write_text(path.read_text().replace('units = "m"\n', ""))  # as other tools write it: units unsaid
    with caplog.at_level(logging.WARNING):
        out = convert_calibration(tmp_path, kind)
    assert ("millimetres" in caplog.text) == (kind == "freemocap")
    assert_same_cameras(out, rig(), atol=1e-9)


# ---------------------------------------------------------------- bad input
def test_converter_bad_input(tmp_path):
    cams = rig()
    with pytest.raises(OpenKinError, match="unknown calibration kind"):
        convert_calibration(tmp_path, "optitrack")
    with pytest.raises(OpenKinError, match="not found"):
        convert_calibration(tmp_path / "none.qca.txt", "qualisys")
    with pytest.raises(OpenKinError, match=r"no \*\.xcp file"):
        convert_calibration(tmp_path, "vicon")
    with pytest.raises(OpenKinError, match="bad option"):
        (tmp_path / "a.qca.txt").write_text(qca_text(cams))
        convert_calibration(tmp_path / "a.qca.txt", "qualisys", binning=2)


@pytest.mark.parametrize("edit, words", [
    (lambda t: t[:-30], "malformed qualisys XML"),
    (lambda t: t.replace('x="', 'x="nan" old="', 1), "x is nan"),
    (lambda t: t.replace('focalLengthU="', 'fU="', 1), "missing 'focalLengthU'"),
    (lambda t: t.replace('model="none"', 'model="Oqus"'), "no video camera"),
])
def test_qualisys_bad_files(tmp_path, edit, words):
    path = tmp_path / "Calib.qca.txt"
    path.write_text(edit(qca_text(rig())))
    with pytest.raises(OpenKinError) as err:
        convert_calibration(path, "qualisys")
    assert words in str(err.value) and "Calib.qca.txt" in str(err.value) and err.value.fix


def test_other_bad_files(tmp_path):
    cams = rig()
    (tmp_path / "v.xcp").write_text(xcp_text(cams).replace('ORIENTATION="', 'ORIENTATION="2 '))
    with pytest.raises(OpenKinError, match="unit quaternion"):
        convert_calibration(tmp_path / "v.xcp", "vicon")
    (tmp_path / "oc").mkdir()
    (tmp_path / "oc" / "a.pickle").write_bytes(pickle.dumps({"imageSize": [1, 2]}))
    with pytest.raises(OpenKinError, match="lacks"):
        convert_calibration(tmp_path / "oc", "opencap")
    (tmp_path / "oc" / "a.pickle").write_bytes(b"garbage")
    with pytest.raises(OpenKinError, match="not a readable OpenCap pickle"):
        convert_calibration(tmp_path / "oc", "opencap")
    write_easymocap(tmp_path / "em", cams)
    (tmp_path / "em" / "extri.yml").unlink()
    with pytest.raises(OpenKinError, match="extri.yml"):
        convert_calibration(tmp_path / "em", "easymocap")
    write_easymocap(tmp_path / "em2", cams)
    (tmp_path / "em2" / "extri.yml").write_text("%YAML:1.0\nnames: [\n")
    with pytest.raises(OpenKinError, match="YAML"):
        convert_calibration(tmp_path / "em2", "easymocap")
    write_biocv(tmp_path / "bc", cams[:1])
    (tmp_path / "bc" / "00.calib").write_text("1920\n1080\n1 2\n")
    with pytest.raises(OpenKinError, match="not a bioCV calibration"):
        convert_calibration(tmp_path / "bc", "biocv")

"""ChArUco intrinsics on synthetic images: a board rendered by OpenCV (``board.generateImage``),
seen through a known camera (K, distortion) in many poses, each image made by casting every
pixel's ray (OpenCV's own undistortion of the known model) onto the board plane. Goals: focal
within 0.5%, principal point within 2 px, RMS < 0.5 px."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from openkin.calibration_charuco import CharucoSpec, calibrate_charuco, coverage_image
from openkin.errors import OpenKinError

SPEC = CharucoSpec(squares=(9, 7), square_m=0.04, marker_m=0.03, dictionary="DICT_4X4_50")
SIZE = (1280, 720)
K = np.array([[900.0, 0, 652.3], [0, 903.0, 355.8], [0, 0, 1]])
DIST = np.array([-0.21, 0.07, 0.0008, -0.0005, -0.01])
K_FISH = np.array([[520.0, 0, 641.2], [0, 521.0, 362.4], [0, 0, 1]])
DIST_FISH = np.array([0.05, -0.02, 0.01, -0.003])
BOARD_PX_PER_M = 4000  # board texture resolution


def _rays(fisheye: bool) -> np.ndarray:
    """(H, W, 2) normalised ray of every pixel of the known camera."""
    w, h = SIZE
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pix = np.stack([u, v], -1).reshape(-1, 1, 2)
    if fisheye:
        n = cv2.fisheye.undistortPoints(pix, K_FISH, DIST_FISH)
    else:
        n = cv2.undistortPoints(pix, K, DIST, criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10))
    return n.reshape(h, w, 2)


def _render(rays: np.ndarray, texture: np.ndarray, rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """The board (texture, ``BOARD_PX_PER_M`` px/m, origin at its top-left) seen from pose (rvec, tvec)."""
    R = cv2.Rodrigues(rvec)[0]
    d = np.concatenate([rays, np.ones(rays.shape[:2] + (1,))], -1)      # ray directions (camera)
    d_b = d @ R                                                           # in board coords: R^T d
    o_b = -R.T @ tvec                                                     # camera centre in board coords
    s = -o_b[2] / d_b[..., 2]
    p = o_b[:2] + s[..., None] * d_b[..., :2]
    mx = (p[..., 0] * BOARD_PX_PER_M).astype(np.float32)
    my = (p[..., 1] * BOARD_PX_PER_M).astype(np.float32)
    img = cv2.remap(texture, mx, my, cv2.INTER_LINEAR, borderValue=128)
    return cv2.GaussianBlur(img, (3, 3), 0.6)


def _views(fisheye: bool, n: int = 30, seed: int = 0):
    board = SPEC.board()
    bw, bh = SPEC.squares[0] * SPEC.square_m, SPEC.squares[1] * SPEC.square_m
    texture = board.generateImage((int(bw * BOARD_PX_PER_M), int(bh * BOARD_PX_PER_M)), marginSize=0, borderBits=1)
    rays = _rays(fisheye)
    rng = np.random.default_rng(seed)
    for i in range(n):
        tilt = rng.uniform(-45, 45, 2)
        R = cv2.Rodrigues(np.radians([tilt[0], tilt[1], rng.uniform(-20, 20)]))[0]
        wide = 2.2 if fisheye else 1.0  # the fisheye sees wider: spread the board over its whole image
        dist = rng.uniform(0.45, 0.8) / (1.5 if fisheye else 1.0)
        aim = np.array([wide * rng.uniform(-0.45, 0.45), wide * rng.uniform(-0.3, 0.3), 1.0])  # board centre
        centre = dist * aim / np.linalg.norm(aim)
        t = centre - R @ np.array([bw / 2, bh / 2, 0])
        yield f"view{i:02d}", _render(rays, texture, cv2.Rodrigues(R)[0].ravel(), t)


@pytest.mark.parametrize("fisheye", [False, True], ids=["pinhole", "fisheye"])
def test_charuco_recovers_known_intrinsics(fisheye, tmp_path):
    res = calibrate_charuco(_views(fisheye), SPEC, "cam01", fisheye=fisheye, max_views=25)
    Kt = K_FISH if fisheye else K
    assert abs(res.matrix[0, 0] / Kt[0, 0] - 1) < 0.005, (res.matrix, res.rms)
    assert abs(res.matrix[1, 1] / Kt[1, 1] - 1) < 0.005, (res.matrix, res.rms)
    assert np.hypot(*(res.matrix[:2, 2] - Kt[:2, 2])) < 2.0, res.matrix
    assert res.rms < 0.5
    assert res.used >= 10 and res.coverage > 0.5
    png = tmp_path / "coverage.png"
    cv2.imwrite(str(png), coverage_image(res))
    assert cv2.imread(str(png)).shape == (SIZE[1], SIZE[0], 3)


def test_corners_only_in_the_middle_warn(caplog):
    """Board far away, always in the centre of the image: a warning says to film the edges."""
    board = SPEC.board()
    bw, bh = SPEC.squares[0] * SPEC.square_m, SPEC.squares[1] * SPEC.square_m
    texture = board.generateImage((int(bw * BOARD_PX_PER_M), int(bh * BOARD_PX_PER_M)), marginSize=0, borderBits=1)
    rays = _rays(False)
    rng = np.random.default_rng(1)

    def frames():
        for i in range(12):
            R = cv2.Rodrigues(np.radians([*rng.uniform(-30, 30, 2), 0.0]))[0]
            t = np.array([0, 0, 1.1]) - R @ np.array([bw / 2, bh / 2, 0])
            yield f"v{i}", _render(rays, texture, cv2.Rodrigues(R)[0].ravel(), t)

    res = calibrate_charuco(frames(), SPEC, "cam02")
    assert res.warnings and "only in the middle" in res.warnings[0]


def test_no_board_is_a_clear_error():
    blank = [(f"f{i}", np.full((480, 640), 127, np.uint8)) for i in range(5)]
    with pytest.raises(OpenKinError, match="found in 0 of 5 frames") as e:
        calibrate_charuco(blank, SPEC, "cam03")
    assert "dictionary" in e.value.fix


def test_calibration_stage_with_charuco_images(tmp_path):
    """[calibration.calculate.intrinsics] intrinsics_board = 'charuco': images in calibration/intrinsics/cam01/
    → the calibration file's K within the goals, the record and the coverage PNG."""
    from openkin.cli import run_stages
    from openkin.fileio import read_optional_toml
    from openkin.formats.calibration import read_calibration

    folder = tmp_path / "calibration" / "intrinsics" / "cam01"
    folder.mkdir(parents=True)
    for label, img in _views(False, n=20, seed=3):
        cv2.imwrite(str(folder / f"{label}.png"), img)
    (tmp_path / "Config.toml").write_text(
        "[calibration]\ncalibration_type = 'calculate'\n[calibration.calculate.intrinsics]\n"
        "intrinsics_extension = 'png'\nintrinsics_board = 'charuco'\ncharuco_squares_nb = [9, 7]\n"
        "intrinsics_square_size = 40\ncharuco_marker_size = 30\ncharuco_dictionary = 'DICT_4X4_50'\n"
        "[calibration.calculate.extrinsics]\ncalculate_extrinsics = false\n")
    run_stages(tmp_path, ["calibration"], progress_bars=False)
    cam = read_calibration(next((tmp_path / "calibration").glob("Calib_*.toml")))[0]
    assert abs(cam.matrix[0, 0] / K[0, 0] - 1) < 0.005 and np.hypot(*(cam.matrix[:2, 2] - K[:2, 2])) < 2.0
    record = read_optional_toml(tmp_path / "openkin" / "calibration.toml")["intrinsics"]["cam01"]
    assert record["board"] == "charuco" and record["rms_px"] < 0.5
    assert (tmp_path / "calibration" / "debug" / record["coverage_png"]).is_file()

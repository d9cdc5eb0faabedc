"""Calibration units: metres vs millimetres decided from camera spacing, never from the distance
to a world origin that may be far away; ``[calibration] units`` says it when the file does not.

Truth: a rig built here (camera centres chosen in metres), written as plain TOML text (not
by OpenKin's writer), and OpenCV's projection with the true pose.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from openkin.config import load_config
from openkin.errors import OpenKinError
from openkin.formats.calibration import read_calibration, write_calibration

K = [[1000.0, 0.0, 320.0], [0.0, 1000.0, 240.0], [0.0, 0.0, 1.0]]


def look_at(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rvec, t) world->camera of a camera at ``centre`` looking at ``target`` (Z up)."""
    z = (target - centre) / np.linalg.norm(target - centre)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return cv2.Rodrigues(R)[0].ravel(), -R @ centre


def rig(origin_offset=(0.0, 0.0, 0.0), radius=3.0, n=4) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """[(centre, rvec, t)] metres: cameras on a circle around a volume at ``origin_offset``."""
    target = np.asarray(origin_offset, float) + [0, 0, 1.0]
    out = []
    for k in range(n):
        a = 2 * np.pi * k / n
        centre = target + [radius * np.cos(a), radius * np.sin(a), 1.0]
        out.append((centre, *look_at(centre, target)))
    return out


def toml_text(cams, scale=1.0, metadata="[metadata]\nadjusted = false\nerror = 0.0\n") -> str:
    text = ""
    for i, (_, rvec, t) in enumerate(cams):
        text += (f"[cam_{i}]\nname = \"cam{i + 1:02d}\"\nsize = [640, 480]\nmatrix = {K}\n"
                 f"distortions = [0.0, 0.0, 0.0, 0.0]\nrotation = {rvec.tolist()}\n"
                 f"translation = {(np.asarray(t) * scale).tolist()}\nfisheye = false\n\n")
    return text + metadata


def centres(cameras) -> np.ndarray:
    return np.array([c.center for c in cameras])


def test_metric_calibration_60_m_from_its_origin_stays_metres(tmp_path, caplog):
    cams = rig(origin_offset=(60.0, 0.0, 0.0))
    path = tmp_path / "Calib.toml"
    path.write_text(toml_text(cams))
    with caplog.at_level(logging.WARNING):
        read = read_calibration(path)
    np.testing.assert_allclose(centres(read), [c for c, _, _ in cams], atol=1e-9)
    assert caplog.text == ""  # cameras 4-6 m apart: clearly metres, nothing to warn about
    point = np.array([[60.2, 0.1, 1.3]])
    _, rvec, t = cams[0]
    truth = cv2.projectPoints(point, rvec, t, np.array(K), np.zeros(4))[0].reshape(2)
    from openkin.geometry import project_points

    assert np.allclose(project_points(read[0], point)[0], truth, atol=1e-6)


def test_freemocap_millimetres_convert(tmp_path, caplog):
    """FreeMoCap's layout: world = first camera, translations in mm, charuco metadata."""
    cams = rig(radius=0.03, n=3)  # cameras 52 mm apart: ambiguous spacing, the metadata tells
    R0 = cv2.Rodrigues(cams[0][1])[0]
    t0 = cams[0][2]
    fmc = []
    for centre, rvec, t in cams:
        R = cv2.Rodrigues(rvec)[0] @ R0.T
        fmc.append((centre, cv2.Rodrigues(R)[0].ravel(), (t - R @ t0) * 1000.0))
    path = tmp_path / "fmc_calibration.toml"
    path.write_text(toml_text(fmc, metadata='[metadata]\ncharuco_square_size = 39.0\n'))
    with caplog.at_level(logging.WARNING):
        read = read_calibration(path)
    assert "FreeMoCap" in caplog.text and "millimetres" in caplog.text
    truth = np.linalg.norm(cams[1][0] - cams[0][0])
    assert np.linalg.norm(read[1].center - read[0].center) == pytest.approx(truth, rel=1e-9)
    assert np.allclose(read[0].translation, 0, atol=1e-12)


def test_millimetre_spacing_is_clear_without_metadata(tmp_path, caplog):
    cams = rig()
    path = tmp_path / "anipose.toml"
    path.write_text(toml_text(cams, scale=1000.0))
    with caplog.at_level(logging.WARNING):
        read = read_calibration(path)
    np.testing.assert_allclose(centres(read), [c for c, _, _ in cams], atol=1e-9)
    assert "millimetres" in caplog.text and "units = 'm'" in caplog.text


def test_ambiguous_spacing_is_metres_with_a_warning_naming_file_and_setting(tmp_path, caplog):
    cams = rig(radius=30.0)  # 42-60 m apart: a stadium in metres, or 5 cm in millimetres
    path = tmp_path / "Calib_far.toml"
    path.write_text(toml_text(cams))
    with caplog.at_level(logging.WARNING):
        read = read_calibration(path)
    np.testing.assert_allclose(centres(read), [c for c, _, _ in cams], atol=1e-9)
    assert str(path) in caplog.text and "[calibration] units" in caplog.text


def test_explicit_units_are_honoured(tmp_path):
    cams = rig(origin_offset=(60.0, 0.0, 0.0))
    path = tmp_path / "Calib.toml"
    path.write_text(toml_text(cams))
    as_mm = read_calibration(path, units="mm")
    np.testing.assert_allclose(centres(as_mm), [c / 1000.0 for c, _, _ in cams], atol=1e-12)
    big = tmp_path / "big.toml"
    big.write_text(toml_text(cams, scale=1000.0))
    as_m = read_calibration(big, units="m")
    np.testing.assert_allclose(centres(as_m), [c * 1000.0 for c, _, _ in cams], atol=1e-6)
    with pytest.raises(OpenKinError, match="unknown calibration units 'cm'"):
        read_calibration(path, units="cm")


def test_files_openkin_writes_stay_metres_whatever_the_setting(tmp_path):
    """A refined calibration written by OpenKin must not be divided again under units = 'mm'."""
    cams = rig()
    src = tmp_path / "fmc.toml"
    src.write_text(toml_text(cams, scale=1000.0))
    written = write_calibration(tmp_path / "Calib_refined.toml", read_calibration(src, units="mm"))
    again = read_calibration(written, units="mm")
    np.testing.assert_allclose(centres(again), [c for c, _, _ in cams], atol=1e-9)


def test_units_setting_in_config(tmp_path):
    (tmp_path / "Config.toml").write_text("[calibration]\nunits = 'MM'\n")
    assert load_config(tmp_path).calibration.units == "mm"
    (tmp_path / "Config.toml").write_text("[calibration]\nunits = 'cm'\n")
    with pytest.raises(OpenKinError) as e:
        load_config(tmp_path)
    assert "calibration.units = 'cm'" in str(e.value) and str(tmp_path / "Config.toml") in str(e.value)


def test_units_reach_the_triangulation_inputs(tmp_path):
    """[calibration] units is what read_views uses: a metric file read as mm shrinks the rig."""
    from openkin.formats.openpose import write_openpose_dir
    from openkin.inputs import read_views

    cams = rig()
    calib = tmp_path / "calibration" / "Calib.toml"
    calib.parent.mkdir()
    calib.write_text(toml_text(cams))
    for i in range(len(cams)):
        write_openpose_dir(tmp_path / "pose" / f"cam{i + 1:02d}_json", f"cam{i + 1:02d}",
                           np.full((2, 1, 3, 3), 100.0))
    views = read_views(tmp_path / "pose", calib, units="mm")
    np.testing.assert_allclose(centres(views.cameras), [c / 1000.0 for c, _, _ in cams], atol=1e-12)

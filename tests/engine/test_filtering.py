"""Filtering kernels on known signals, and the filtering stage on a TRC project."""
from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from openkin.config import default_config
from openkin.errors import OpenKinError
from openkin.filtering import FILTERS, filter_array, hampel
from openkin.filtering.stage import run_stage
from openkin.filtering.kernels import _second_difference_gram
from openkin.formats.c3d import read_c3d
from openkin.formats.trc import Trc, read_trc, write_trc
from openkin.project import ProjectPaths

RATE = 60.0


def human_like(n_frames: int = 300, n_markers: int = 4, seed: int = 0) -> np.ndarray:
    """Smooth (F, M, 3) trajectories in metres: 0.2-1 Hz sines of 0.05-0.2 m around offsets."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None, None] / RATE
    freq = rng.uniform(0.2, 1.0, (1, n_markers, 3))
    amp = rng.uniform(0.05, 0.2, (1, n_markers, 3))
    phase = rng.uniform(0, 2 * np.pi, (1, n_markers, 3))
    return rng.uniform(-1, 1, (1, n_markers, 3)) + amp * np.sin(2 * np.pi * freq * t + phase)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((a - b) ** 2)))


@pytest.mark.parametrize("method", sorted(FILTERS))
def test_each_filter_reduces_noise(method):
    truth = human_like()
    noisy = truth + np.random.default_rng(1).normal(0, 0.01, truth.shape)
    out = filter_array(noisy, RATE, method)
    assert out.shape == truth.shape
    assert rmse(out, truth) < 0.85 * rmse(noisy, truth), (method, rmse(out, truth), rmse(noisy, truth))


@pytest.mark.parametrize("method", sorted(FILTERS))
def test_nan_gaps_are_kept(method):
    truth = human_like(n_frames=240)
    noisy = truth + np.random.default_rng(2).normal(0, 0.005, truth.shape)
    noisy[50:70, 1] = np.nan  # one marker lost for 20 frames
    noisy[150:152] = np.nan  # everything lost for 2 frames
    noisy[:, 3] = np.nan  # a marker never seen
    out = filter_array(noisy, RATE, method)
    assert np.array_equal(np.isnan(out), np.isnan(noisy))
    assert rmse(out, truth) < rmse(noisy, truth)


def _amplitude(freq: float, rate: float, **params) -> float:
    """Output amplitude of a unit sine through the Butterworth, away from the ends."""
    t = np.arange(int(4 * rate)) / rate
    out = filter_array(np.sin(2 * np.pi * freq * t)[:, None], rate, "butterworth", **params)[:, 0]
    middle = out[int(rate): int(3 * rate)]
    return float(np.sqrt(2) * middle.std())


def test_butterworth_cut_off():
    assert _amplitude(2.0, 100.0, cut_off_frequency=6, order=4) == pytest.approx(1.0, abs=0.01)
    assert _amplitude(20.0, 100.0, cut_off_frequency=6, order=4) < 0.05
    # the cut-off is the -3 dB point of the zero-phase filter (Winter's double-pass correction)
    assert _amplitude(6.0, 100.0, cut_off_frequency=6, order=4) == pytest.approx(2 ** -0.5, abs=0.02)


def test_butterworth_rejects_cut_off_above_nyquist():
    with pytest.raises(OpenKinError, match="half the frame rate"):
        filter_array(np.zeros((100, 3)), 30.0, "butterworth", cut_off_frequency=20)


def test_hampel_removes_spikes():
    truth = human_like(n_frames=300, n_markers=3)
    rng = np.random.default_rng(3)
    noisy = truth + rng.normal(0, 0.003, truth.shape)
    frames = rng.choice(np.arange(5, 295), 12, replace=False)
    markers = rng.integers(0, 3, 12)
    noisy[frames, markers, 1] += rng.choice([-1, 1], 12) * rng.uniform(0.2, 0.5, 12)
    cleaned = hampel(noisy)
    err = np.linalg.norm(cleaned - truth, axis=-1)[frames, markers]
    assert err.max() < 0.02, err
    # with the spikes gone, a Butterworth afterwards gets close to the truth
    assert rmse(filter_array(noisy, RATE, "butterworth", reject_outliers=True), truth) < 0.003


def test_hampel_keeps_clean_data_and_nan():
    x = human_like(n_frames=200, n_markers=2)
    x[20:30, 0] = np.nan
    out = hampel(x)
    assert np.array_equal(np.isnan(out), np.isnan(x))
    assert np.nanmax(np.abs(out - x)) < 1e-3  # a smooth signal has no outlier


def test_local_fits_keep_straight_lines():
    line = (0.5 + 0.01 * np.arange(120))[:, None] * np.array([1.0, -2.0, 0.5])
    for method, params in [("loess", {}), ("acc_minimizing", {}), ("gcv_spline", {"cut_off_frequency": 6})]:
        np.testing.assert_allclose(filter_array(line, RATE, method, **params), line, atol=1e-9, err_msg=method)


def test_whittaker_band_matches_sparse_matrix():
    n, lam = 9, 3.5
    d2 = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n)).toarray()
    full = np.eye(n) + lam * d2.T @ d2
    ab = _second_difference_gram(n, lam)
    for k in range(3):
        np.testing.assert_allclose(ab[2 - k, k:], np.diagonal(full, k))


def test_kalman_smoother_beats_causal_filter():
    truth = human_like()
    noisy = truth + np.random.default_rng(4).normal(0, 0.01, truth.shape)
    smooth = filter_array(noisy, RATE, "kalman", trust_ratio=50, smooth=True)
    causal = filter_array(noisy, RATE, "kalman", trust_ratio=50, smooth=False)
    assert rmse(smooth, truth) < rmse(causal, truth)


def test_filter_array_rejects_bad_requests():
    x = np.zeros((50, 2, 3))
    with pytest.raises(OpenKinError, match="unknown filter type"):
        filter_array(x, RATE, "wavelet")
    with pytest.raises(OpenKinError, match="no parameter"):
        filter_array(x, RATE, "butterworth", cutoff=6)
    with pytest.raises(OpenKinError, match="frame rate"):
        filter_array(x, 0, "butterworth")
    assert filter_array(x, RATE, "LOESS").shape == x.shape  # Pose2Sim's spelling


def test_short_segments_are_left_alone():
    x = np.full((30, 1), np.nan)
    x[5:9, 0] = [0.0, 1.0, 0.0, 1.0]  # 4 frames: too short for a 4th-order Butterworth
    out = filter_array(x, RATE, "butterworth")
    np.testing.assert_array_equal(out[5:9, 0], x[5:9, 0])


# ------------------------------------------------------------------ the stage
def _project(tmp_path: Path, n_frames: int = 180) -> tuple[ProjectPaths, np.ndarray]:
    truth = human_like(n_frames=n_frames, n_markers=5)
    noisy = truth + np.random.default_rng(5).normal(0, 0.01, truth.shape)
    noisy[40, 2] += 0.4  # a triangulation outlier
    paths = ProjectPaths(tmp_path)
    names = ["Hip", "RKnee", "LKnee", "RAnkle", "LAnkle"]
    write_trc(paths.pose_3d / f"{tmp_path.name}_0-{n_frames - 1}.trc", Trc(names, RATE, noisy))
    return paths, truth


def _config(**filtering):
    config = default_config()
    return dataclasses.replace(config, filtering=dataclasses.replace(config.filtering, **filtering))


def test_stage_writes_filtered_trc_c3d_and_plot(tmp_path):
    paths, truth = _project(tmp_path)
    run_stage(_config(save_filt_plots=True), paths)
    out = paths.pose_3d / f"{tmp_path.name}_0-179_filt_butterworth.trc"
    filtered = read_trc(out)
    assert filtered.marker_names[0] == "Hip" and filtered.rate == RATE
    assert rmse(filtered.xyz, truth) < 0.005
    c3d = read_c3d(out.with_suffix(".c3d"))
    np.testing.assert_allclose(c3d.xyz, filtered.xyz, atol=1e-4)
    png = paths.pose_3d / "plots" / f"{out.stem}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # matplotlib is a dependency (and ships in the extension)
    # a second run does not filter the filtered file again; the first run's output, no longer
    # current, is set aside (openkin/stale/), so no later stage takes it for a second person
    run_stage(_config(save_filt_plots=False, type="kalman"), paths)
    assert sorted(p.name for p in paths.pose_3d.glob("*.trc")) == sorted(
        [f"{tmp_path.name}_0-179.trc", f"{tmp_path.name}_0-179_filt_kalman.trc"])
    assert [p.name for p in (paths.reports / "stale").rglob("*.trc")] == [out.name]


def test_stage_frame_range_and_no_c3d(tmp_path):
    paths, _ = _project(tmp_path)
    config = _config(save_filt_plots=False, make_c3d=False, type="gaussian")
    config = dataclasses.replace(config, project=dataclasses.replace(config.project, frame_range=(20, 120)))
    run_stage(config, paths)
    out = read_trc(paths.pose_3d / f"{tmp_path.name}_20-119_filt_gaussian.trc")
    assert out.frame_numbers[0] == 20 and out.n_frames == 100
    assert not list(paths.pose_3d.glob("*.c3d"))


def test_stage_failure_keeps_earlier_output(tmp_path):
    paths, _ = _project(tmp_path)
    run_stage(_config(save_filt_plots=False, make_c3d=False), paths)
    out = paths.pose_3d / f"{tmp_path.name}_0-179_filt_butterworth.trc"
    before = out.read_bytes()
    bad = _config(save_filt_plots=False, make_c3d=False)
    bad = dataclasses.replace(bad, filtering=dataclasses.replace(
        bad.filtering, butterworth=dataclasses.replace(bad.filtering.butterworth, cut_off_frequency=45.0)))
    with pytest.raises(OpenKinError, match="cut-off"):
        run_stage(bad, paths)
    assert out.read_bytes() == before
    assert not [p for p in paths.pose_3d.iterdir() if p.name.startswith(".")]  # no temp file left


def test_stage_without_trc_says_what_to_do(tmp_path):
    with pytest.raises(OpenKinError, match="triangulation"):
        run_stage(_config(), ProjectPaths(tmp_path))


def test_stage_without_matplotlib_still_filters(tmp_path, monkeypatch, caplog):
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    paths, _ = _project(tmp_path)
    with caplog.at_level(logging.WARNING, logger="openkin.filtering"):
        run_stage(_config(save_filt_plots=True, make_c3d=False), paths)
    assert (paths.pose_3d / f"{tmp_path.name}_0-179_filt_butterworth.trc").exists()
    assert "matplotlib is not installed" in caplog.text

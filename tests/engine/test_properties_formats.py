"""Property tests (hypothesis) for every reader and writer: calibration TOML, TRC, MOT/STO,
C3D, OpenPose JSON.

- Round trips: write → read gives back what was written, within the format's precision
  (TRC/MOT ``%.10g``: 10 significant digits; C3D float32; TOML and JSON exact).
- Malformed inputs (random bytes, truncated valid files, random edits of valid files)
  raise :class:`OpenKinError` or read cleanly — never any other exception.
"""
from __future__ import annotations

import logging
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import format_fuzz as fz
from openkin.errors import OpenKinError
from openkin.formats import calibration as cal
from openkin.formats.c3d import read_c3d, write_c3d
from openkin.formats.mot import Motion, read_mot, write_mot
from openkin.formats.openpose import read_openpose_dir, write_openpose_dir
from openkin.formats.trc import Trc, read_trc, write_trc

QUICK = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAME = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)


@pytest.fixture(autouse=True)
def _quiet():
    """Readers warn on truncated files; thousands of warnings only slow the run down."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="openkin-prop-"))


def _finite(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _with_nan(lo, hi):
    return st.one_of(_finite(lo, hi), st.just(float("nan")))


# ---------------------------------------------------------------- round trips
@st.composite
def cameras(draw):
    n = draw(st.integers(1, 4))
    names = draw(st.lists(st.text(string.ascii_letters + string.digits + "_-. '\"\\é", min_size=1, max_size=10),
                          min_size=n, max_size=n, unique=True))
    cams = []
    for name in names:
        f = draw(_finite(1.0, 1e5))
        K = [[f, 0, draw(_finite(-1e4, 1e4))], [0, draw(_finite(1.0, 1e5)), draw(_finite(-1e4, 1e4))], [0, 0, 1]]
        dist = draw(st.lists(_finite(-10, 10), min_size=4, max_size=5))
        size = draw(st.tuples(st.integers(1, 20000), st.integers(1, 20000)))
        cams.append(cal.Camera(name, size, K, dist, draw(st.lists(_finite(-3, 3), min_size=3, max_size=3)),
                               draw(st.lists(_finite(-20, 20), min_size=3, max_size=3)), fisheye=draw(st.booleans())))
    return cams


@QUICK
@given(cameras())
def test_calibration_round_trip_is_exact(cams):
    read = cal.read_calibration(cal.write_calibration(_tmp() / "Calib.toml", cams), units="m")
    assert [c.name for c in read] == [c.name for c in cams]
    for a, b in zip(read, cams):
        for key in ("size", "matrix", "distortions", "rotation", "translation"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
        assert a.fisheye == b.fisheye


@st.composite
def trcs(draw):
    n, m = draw(st.integers(1, 20)), draw(st.integers(1, 6))
    names = draw(st.lists(NAME, min_size=m, max_size=m, unique=True))
    xyz = draw(hnp.arrays(float, (n, m, 3), elements=_with_nan(-1e5, 1e5)))
    start = draw(st.integers(0, 10_000))
    rate = draw(_finite(0.5, 2000))
    return Trc(names, rate, xyz, frame_numbers=np.arange(start, start + n))


@QUICK
@given(trcs(), st.sampled_from(["m", "mm"]))
def test_trc_round_trip(trc, units):
    read = read_trc(write_trc(_tmp() / "a.trc", trc, units=units))
    assert read.marker_names == trc.marker_names
    np.testing.assert_array_equal(read.frame_numbers, trc.frame_numbers)
    np.testing.assert_allclose(read.rate, trc.rate, rtol=1e-12)
    np.testing.assert_allclose(read.times, trc.times, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(read.xyz, trc.xyz, rtol=1e-9, atol=1e-300)
    assert np.array_equal(np.isnan(read.xyz), np.isnan(trc.xyz))


@st.composite
def motions(draw):
    n, c = draw(st.integers(1, 20)), draw(st.integers(1, 5))
    names = draw(st.lists(NAME.filter(lambda s: s.lower() != "time"), min_size=c, max_size=c, unique=True))
    times = np.cumsum(draw(hnp.arrays(float, n, elements=_finite(1e-3, 1.0))))
    values = draw(hnp.arrays(float, (n, c), elements=_with_nan(-1e6, 1e6)))
    return Motion(names, times, values, in_degrees=draw(st.booleans()))


@QUICK
@given(motions(), st.sampled_from([".mot", ".sto"]))
def test_mot_sto_round_trip(motion, suffix):
    read = read_mot(write_mot(_tmp() / f"a{suffix}", motion))
    assert read.names == motion.names and read.in_degrees == motion.in_degrees
    np.testing.assert_allclose(read.times, motion.times, rtol=1e-9)
    np.testing.assert_allclose(read.values, motion.values, rtol=1e-9, atol=1e-300)
    assert np.array_equal(np.isnan(read.values), np.isnan(motion.values))


@QUICK
@given(trcs(), st.sampled_from(["mm", "m"]))
def test_c3d_round_trip_float32(trc, units):
    trc.xyz = np.clip(trc.xyz, -1e3, 1e3)
    read = read_c3d(write_c3d(_tmp() / "a.c3d", trc, units=units))
    assert read.marker_names == trc.marker_names
    np.testing.assert_array_equal(read.frame_numbers, trc.frame_numbers)
    np.testing.assert_allclose(read.rate, trc.rate, rtol=1e-6)
    expected = np.where(np.isnan(trc.xyz).any(axis=-1, keepdims=True), np.nan, trc.xyz)  # a point is whole or missing
    scale = 1e-3 if units == "mm" else 1.0
    np.testing.assert_allclose(read.xyz, expected, rtol=2e-7, atol=1e-38 / scale)


@st.composite
def poses(draw):
    f, p, k = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 8))
    xy = draw(hnp.arrays(float, (f, p, k, 2), elements=_finite(-1e4, 1e4)))
    conf = draw(hnp.arrays(float, (f, p, k, 1), elements=_finite(0.01, 1.0)))
    kp = np.concatenate([xy, conf], axis=-1)
    kp[draw(hnp.arrays(bool, (f, p, k)))] = np.nan
    frames = np.sort(draw(st.lists(st.integers(0, 10**6), min_size=f, max_size=f, unique=True)))
    ids = draw(hnp.arrays(int, (f, p), elements=st.integers(-1, 50)))
    return kp, np.array(frames), ids


@QUICK
@given(poses())
def test_openpose_round_trip_is_exact(pose):
    kp, frames, ids = pose
    folder = _tmp() / "cam01_json"
    write_openpose_dir(folder, "cam01", kp, frame_numbers=frames, person_ids=ids)
    read, read_frames, read_ids = read_openpose_dir(folder)
    np.testing.assert_array_equal(read_frames, frames)
    present = ~np.all(np.isnan(kp), axis=(0, 2, 3))  # people slots present in some frame
    used = int(np.flatnonzero(present)[-1]) + 1 if present.any() else 0
    assert read.shape[1] == used
    if used == 0:  # nobody anywhere: the keypoint count is unknowable from the files
        return
    np.testing.assert_array_equal(read, kp[:, :used])
    person_there = ~np.all(np.isnan(kp[:, :used]), axis=(2, 3))
    np.testing.assert_array_equal(read_ids[person_there], ids[:, :used][person_there])


# ---------------------------------------------------------------- malformed inputs
FORMATS = ["calibration", "trc", "mot", "sto", "c3d", "openpose"]
_VALID: dict[str, bytes] = {}


def _valid(fmt: str) -> bytes:
    if fmt not in _VALID:
        _VALID[fmt] = fz.write_sample(fmt, _tmp() / f"valid{fz.SUFFIX[fmt]}", np.random.default_rng(0)).read_bytes()
    return _VALID[fmt]


def _only_openkin_errors(fmt: str, data: bytes) -> None:
    path = _tmp() / f"case{fz.SUFFIX[fmt]}"
    path.write_bytes(data)
    try:
        fz.read(fmt, path)
    except OpenKinError as exc:
        assert exc.path is not None and exc.fix, f"error without a file or a fix: {exc}"


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.binary(max_size=3000))
def test_random_bytes_raise_only_openkin_error(fmt, data):
    _only_openkin_errors(fmt, data)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(cut=st.floats(0, 1))
def test_truncated_files_raise_only_openkin_error(fmt, cut):
    valid = _valid(fmt)
    _only_openkin_errors(fmt, valid[:int(cut * len(valid))])


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=100, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_edits_raise_only_openkin_error(fmt, seed):
    _only_openkin_errors(fmt, fz.mutate(_valid(fmt), np.random.default_rng(seed)))


@pytest.mark.parametrize("fmt", ["trc", "mot"])
def test_truncated_text_files_warn_with_the_frames_lost(fmt, tmp_path, caplog):
    """A file cut after some rows keeps them and says which frames were lost (never quietly shorter)."""
    valid = _valid(fmt).decode()
    header = 5 if fmt == "trc" else valid.splitlines().index("endheader") + 2
    path = tmp_path / f"cut{fz.SUFFIX[fmt]}"
    path.write_text("".join(valid.splitlines(keepends=True)[:header + 4]))
    logging.disable(logging.NOTSET)
    with caplog.at_level(logging.WARNING):
        out = fz.read(fmt, path)
    assert len(out.times) == 4
    assert str(path) in caplog.text and "declares 12 frames" in caplog.text
    assert ("frames 7-14 lost" if fmt == "trc" else "the last 8 lost") in caplog.text
    path.write_text("".join(valid.splitlines(keepends=True)[:header]))
    with pytest.raises(OpenKinError, match="no complete data row"):
        fz.read(fmt, path)

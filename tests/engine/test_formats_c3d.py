"""C3D through ezc3d: round trips (mm and m, NaN, first frame, rate) and bad input."""
import numpy as np
import pytest

from openkin.errors import OpenKinError
from openkin.formats import c3d as c3d_mod
from openkin.formats.c3d import read_c3d, write_c3d
from openkin.formats.trc import Trc, read_trc, write_trc

RNG = np.random.default_rng(3)


def make_trc(n=50, m=6, rate=120.0, start=0):
    xyz = RNG.normal(size=(n, m, 3))
    xyz[7 % n, 2] = np.nan
    xyz[20:30, 5] = np.nan
    return Trc([f"Marker{i}" for i in range(m)], rate, xyz, frame_numbers=np.arange(start, start + n))


@pytest.mark.parametrize("units", ["mm", "m"])
def test_c3d_round_trip(tmp_path, units):
    trc = make_trc(start=15)
    read = read_c3d(write_c3d(tmp_path / "a.c3d", trc, units=units))
    assert read.marker_names == trc.marker_names
    assert read.rate == 120.0
    np.testing.assert_array_equal(read.frame_numbers, trc.frame_numbers)
    np.testing.assert_allclose(read.times, trc.times)
    # float32 storage: ~1e-7 relative; in mm that is < 1 micrometre for metre-scale data
    np.testing.assert_allclose(read.xyz, trc.xyz, atol=2e-6, equal_nan=True)
    assert np.isnan(read.xyz[7, 2]).all() and np.isnan(read.xyz[20:30, 5]).all()
    assert np.isfinite(read.xyz[0]).all()


def test_c3d_stores_millimetres_by_default(tmp_path):
    import ezc3d
    trc = make_trc(n=3)
    write_c3d(tmp_path / "a.c3d", trc)
    raw = ezc3d.c3d(str(tmp_path / "a.c3d"))
    assert raw["parameters"]["POINT"]["UNITS"]["value"] == ["mm"]
    np.testing.assert_allclose(raw["data"]["points"][0, 0, 0], trc.xyz[0, 0, 0] * 1000, rtol=1e-6)


def test_trc_to_c3d_to_trc(tmp_path):
    trc = make_trc(n=10)
    write_trc(tmp_path / "a.trc", trc)
    write_c3d(tmp_path / "a.c3d", read_trc(tmp_path / "a.trc"))
    back = read_trc(write_trc(tmp_path / "b.trc", read_c3d(tmp_path / "a.c3d")))
    np.testing.assert_allclose(back.xyz, trc.xyz, atol=2e-6, equal_nan=True)


def test_c3d_bad_input(tmp_path):
    with pytest.raises(OpenKinError, match="C3D file not found"):
        read_c3d(tmp_path / "none.c3d")
    (tmp_path / "bad.c3d").write_bytes(b"this is not a c3d file" * 10)
    with pytest.raises(OpenKinError) as err:
        read_c3d(tmp_path / "bad.c3d")
    assert "bad.c3d" in str(err.value) and err.value.fix
    with pytest.raises(OpenKinError, match="units"):
        write_c3d(tmp_path / "x.c3d", make_trc(n=2), units="inch")
    assert not (tmp_path / "x.c3d").exists()


def test_c3d_failed_write_keeps_earlier_file(tmp_path, monkeypatch):
    path = write_c3d(tmp_path / "a.c3d", make_trc(n=4))
    before = path.read_bytes()

    class HalfWriter:
        def write(self, target):
            with open(target, "wb") as f:
                f.write(b"partial")
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(c3d_mod, "_build", lambda *args: HalfWriter())
    with pytest.raises(OpenKinError, match="no space left"):
        write_c3d(path, make_trc(n=8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.c3d"]

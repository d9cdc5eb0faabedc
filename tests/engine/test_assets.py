"""Assets from the pinned pose2sim wheel: real download/cache, hash checks, offline message."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from openkin import assets, cli
from openkin.errors import OpenKinError


@pytest.fixture(scope="module")
def real_wheel() -> Path:
    """The real wheel in the user's cache (downloaded once, ~51 MB, on a fresh machine)."""
    assets.ensure_assets()
    return assets.obtain_wheel()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(assets.CACHE_ENV, str(cache))
    monkeypatch.delenv(assets.WHEEL_ENV, raising=False)
    return cache


def _offline_pip(monkeypatch, tmp_path):
    """Make pip deterministic and unreachable: no config files, no index, empty find-links."""
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))


def test_real_wheel_assets(real_wheel):
    assert assets.sha256_file(real_wheel) == assets.WHEEL_SHA256
    osim = assets.asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim")
    assert osim.is_file() and b"<OpenSimDocument" in osim.read_bytes()[:2000]
    assert assets.asset_path("MarkerAugmenter/LSTM/v0.3_lower/model.onnx").stat().st_size > 100_000
    assert assets.asset_path("Demo_SinglePerson/calibration/Calib.qca.txt").is_file()
    assert assets.asset_path("Demo_MultiPerson/Config.toml").is_file()
    assert assets.verify_assets() == []
    # Only what we use is extracted (no Pose2Sim source, no Demo_Batch).
    names = {p.name for p in assets.assets_dir().iterdir()}
    assert "Demo_Batch" not in names and "common.py" not in names


def test_cli_path_and_verify(real_wheel, capsys):
    assert cli.main(["assets", "path", "OpenSim_Setup/Markers_Halpe26.xml"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.endswith("Markers_Halpe26.xml") and Path(out).is_file()
    assert cli.main(["assets", "verify"]) == 0


def test_unknown_asset_suggests_close_names(real_wheel):
    with pytest.raises(OpenKinError) as e:
        assets.asset_path("OpenSim_Setup/Model_Pose2Sim_simpel.osim")
    assert "Model_Pose2Sim_simple.osim" in str(e.value)
    with pytest.raises(OpenKinError):
        assets.asset_path("../../etc/passwd")


def test_fetch_from_local_wheel_then_detect_modified_file(real_wheel, empty_cache, monkeypatch):
    monkeypatch.setenv(assets.WHEEL_ENV, str(real_wheel))
    osim = assets.asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim")
    assert str(osim).startswith(str(empty_cache))
    assert assets.verify_assets() == []
    osim.write_text("tampered")
    assert any("modified" in p and "Model_Pose2Sim_simple.osim" in p for p in assets.verify_assets())
    osim.unlink()
    with pytest.raises(OpenKinError, match="fetch --force"):
        assets.asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim")
    assets.ensure_assets(force=True)
    assert assets.verify_assets() == []


def test_wrong_hash_is_refused_and_cache_untouched(empty_cache, monkeypatch, tmp_path):
    fake = tmp_path / assets.WHEEL_NAME
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("Pose2Sim/OpenSim_Setup/Model_Pose2Sim_simple.osim", "<not a model/>")
    monkeypatch.setenv(assets.WHEEL_ENV, str(fake))
    with pytest.raises(OpenKinError) as e:
        assets.asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim")
    msg = str(e.value)
    assert str(fake) in msg and assets.WHEEL_SHA256 in msg and assets.sha256_file(fake) in msg
    assert "fix:" in msg
    assert not assets.assets_dir().exists() and not assets.cached_wheel_path().exists()


def test_corrupt_member_leaves_no_partial_extraction(empty_cache, tmp_path):
    """A wheel whose RECORD disagrees with a member: nothing half-extracted remains."""
    bad = tmp_path / "bad.whl"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("Pose2Sim/OpenSim_Setup/a.xml", "aaa")
        zf.writestr("Pose2Sim/OpenSim_Setup/b.xml", "bbb")
        zf.writestr(assets._RECORD_MEMBER, "Pose2Sim/OpenSim_Setup/b.xml,sha256=AAAA,3\n")
    empty_cache.mkdir(parents=True)
    with pytest.raises(OpenKinError, match="RECORD"):
        assets._install(bad, None)
    assert list(empty_cache.iterdir()) == []


def test_offline_with_nothing_cached_says_how_to_preseed(empty_cache, monkeypatch, tmp_path):
    _offline_pip(monkeypatch, tmp_path)
    with pytest.raises(OpenKinError) as e:
        assets.asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim")
    msg = str(e.value)
    assert assets.WHEEL_ENV in msg and "pip download --no-deps pose2sim==0.10.49" in msg
    assert not assets.assets_dir().exists()
    assert not assets.cached_wheel_path().exists()
    assert cli.main(["assets", "path", "OpenSim_Setup/Model_Pose2Sim_simple.osim"]) == 2


def test_wheel_env_pointing_nowhere(empty_cache, monkeypatch, tmp_path):
    monkeypatch.setenv(assets.WHEEL_ENV, str(tmp_path / "missing.whl"))
    with pytest.raises(OpenKinError) as e:
        assets.ensure_assets()
    assert assets.WHEEL_ENV in str(e.value) and "missing.whl" in str(e.value)
    assert not assets.assets_dir().exists()


def test_demo_project_copy_and_no_overwrite(real_wheel, tmp_path):
    dest = assets.demo_project(tmp_path / "demo")
    assert (dest / "Config.toml").is_file() and (dest / "videos" / "cam01.mp4").is_file()
    with pytest.raises(OpenKinError, match="not empty"):
        assets.demo_project(dest)


def test_import_does_not_touch_the_cache(tmp_path):
    cache = tmp_path / "c"
    env = dict(os.environ, OPENKIN_CACHE=str(cache))
    subprocess.run([sys.executable, "-c", "import openkin.assets, openkin.cli; openkin.cli.build_parser()"],
                   env=env, check=True)
    assert not cache.exists()


def test_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch, real_wheel):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(assets.CACHE_ENV, str(blocker / "cache"))
    monkeypatch.setenv(assets.WHEEL_ENV, str(real_wheel))
    with pytest.raises(OpenKinError, match=assets.CACHE_ENV):
        assets.ensure_assets()

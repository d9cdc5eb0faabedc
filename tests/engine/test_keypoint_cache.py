"""The columnar keypoint cache (openkin.keypoint_cache) and the manifest's folder hash it shares.

Truths: the folder read without any cache (formats.openpose's validating per-file path) and
sha256 computed here with hashlib over the files, never the cache's own answers."""
from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import pytest

from openkin import keypoint_cache
from openkin.errors import OpenKinError
from openkin.formats import openpose
from openkin.formats.openpose import write_openpose_dir
from openkin.manifest import folder_sha256

RNG = np.random.default_rng(5)


def _project(tmp_path, frames=40, people=2):
    (tmp_path / "openkin").mkdir()
    folder = tmp_path / "pose" / "cam01_json"
    kp = RNG.uniform(1, 1000, size=(frames, people, 5, 3))
    kp[3, -1] = np.nan
    kp[min(7, frames - 1), 0, 2] = np.nan
    write_openpose_dir(folder, "cam01", kp, np.arange(frames) + 10, np.tile(np.arange(people), (frames, 1)))
    return folder


def _truth(folder):
    """The folder through the validating per-file reader (json.loads per file)."""
    files, frames = openpose.list_json(folder)
    keypoints, ids = openpose._stack(folder, files, [openpose.read_openpose_json(p) for p in files])
    return keypoints, frames, ids


def _hash_truth(folder):
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256((folder / name).read_bytes()).digest())
    return h.hexdigest()


def _same(pf, truth):
    for a, b in zip((pf.keypoints, pf.frames, pf.ids), truth):
        np.testing.assert_array_equal(a, b)


def test_cache_written_once_and_equal_to_the_files(tmp_path):
    folder = _project(tmp_path)
    cache = keypoint_cache.cache_file(folder)
    assert cache == tmp_path / "openkin" / "cache" / "pose" / "cam01_json.kpc"
    assert not cache.exists()
    _same(keypoint_cache.read_folder(folder), _truth(folder))
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    again = keypoint_cache.read_folder(folder)
    _same(again, _truth(folder))
    assert cache.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert again.names == sorted(p.name for p in folder.iterdir())
    assert again.listed.tolist() == [2, 2, 2, 1] + [2] * 36  # frame 3: its last person absent, not written


def test_cache_follows_rewritten_added_and_removed_files(tmp_path):
    folder = _project(tmp_path)
    keypoint_cache.read_folder(folder)
    kp = RNG.uniform(1, 1000, size=(40, 1, 5, 3))
    write_openpose_dir(folder, "cam01", kp, np.arange(40) + 10)  # same names, new contents
    _same(keypoint_cache.read_folder(folder), _truth(folder))
    (folder / "cam01_000049.json").unlink()
    _same(keypoint_cache.read_folder(folder), _truth(folder))
    (folder / "cam01_000099.json").write_text((folder / "cam01_000010.json").read_text())
    got = keypoint_cache.read_folder(folder)
    _same(got, _truth(folder))
    assert got.frames[-1] == 99


def test_cache_sees_a_rewrite_in_the_same_clock_tick(tmp_path):
    """Same size, same mtime, new inode (our writers replace files): still seen."""
    folder = _project(tmp_path, frames=5, people=1)
    keypoint_cache.read_folder(folder)
    f = folder / "cam01_000011.json"
    text = f.read_text()
    i = text.index("[", text.index("pose_keypoints_2d")) + 1  # first digit of the first x
    new = text[:i] + ("7" if text[i] != "7" else "3") + text[i + 1:]
    st = f.stat()
    tmp = folder / ".tmp"
    tmp.write_text(new)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, f)
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    _same(keypoint_cache.read_folder(folder), _truth(folder))


def test_folder_hash_equals_hashlib_and_fills_the_cache(tmp_path):
    folder = _project(tmp_path)
    assert folder_sha256(folder) == _hash_truth(folder)
    assert keypoint_cache.cache_file(folder).is_file()  # the hash parsed the folder too
    _same(keypoint_cache.read_folder(folder), _truth(folder))
    time.sleep(0.01)
    (folder / "cam01_000012.json").write_text('{"version": 1.3, "people": []}')
    assert folder_sha256(folder) == _hash_truth(folder)
    _same(keypoint_cache.read_folder(folder), _truth(folder))
    keypoint_cache._RECENT.clear()  # from the cache file, as a later process finds it
    assert folder_sha256(folder) == _hash_truth(folder)


def test_bad_file_raises_the_readers_error_every_time(tmp_path):
    folder = _project(tmp_path, frames=5, people=1)
    keypoint_cache.read_folder(folder)
    (folder / "cam01_000012.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
    with pytest.raises(OpenKinError) as direct:
        openpose.read_openpose_folder(folder)
    for _ in range(2):
        with pytest.raises(OpenKinError) as cached:
            keypoint_cache.read_folder(folder)
        assert str(cached.value) == str(direct.value)
    assert folder_sha256(folder) == _hash_truth(folder)  # hashing a bad folder works
    with pytest.raises(OpenKinError):
        keypoint_cache.read_folder(folder)


def test_corrupt_cache_is_ignored(tmp_path):
    folder = _project(tmp_path)
    keypoint_cache.read_folder(folder)
    keypoint_cache.cache_file(folder).write_bytes(b"PK\x03\x04 not a zip")
    keypoint_cache._RECENT.clear()
    _same(keypoint_cache.read_folder(folder), _truth(folder))
    assert folder_sha256(folder) == _hash_truth(folder)


def test_outside_a_project_nothing_is_cached(tmp_path):
    folder = tmp_path / "loose" / "cam01_json"
    write_openpose_dir(folder, "cam01", RNG.uniform(1, 9, size=(4, 1, 5, 3)))
    assert keypoint_cache.cache_file(folder) is None
    _same(keypoint_cache.read_folder(folder), _truth(folder))
    assert folder_sha256(folder) == _hash_truth(folder)
    assert not list(tmp_path.rglob("*.kpc"))

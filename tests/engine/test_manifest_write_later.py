"""Writes whose fsync and rename run in the background (fileio.write_later, used for the manifest's
stage-start record) and the keypoint cache's file format: order on disk, no temporary file left
by an interrupted process, never a half-written file under its final name, exact round trips."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from openkin import keypoint_cache
from openkin.fileio import atomic_write, settle, write_later
from openkin.manifest import Manifest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
BIG = "x" * (16 << 20)  # 16 MB: its fsync takes long enough for a missing wait to show


def test_a_later_publish_waits_for_the_background_write(tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.trc"
    write_later(first, BIG)
    with atomic_write(second) as f:
        f.write("after")
    # 'second' exists under its name: 'first' must already be there, whole
    assert second.read_text() == "after"
    assert first.stat().st_size == len(BIG)
    assert not list(tmp_path.glob(".*.tmp"))


def test_begin_record_is_read_back_by_a_new_manifest(tmp_path):
    (tmp_path / "openkin").mkdir()
    m = Manifest(tmp_path)
    m.begin("association", "run-1")
    again = Manifest.load(tmp_path)  # waits for the background write
    assert again.stages["association"]["status"] == "running"
    assert not list((tmp_path / "openkin").glob(".*.tmp"))


def test_later_writes_land_in_call_order(tmp_path):
    target = tmp_path / "m.json"
    for i in range(20):
        write_later(target, f"{i}" * (1000 + i))
    settle()
    assert target.read_text() == "19" * 1019


def test_interrupted_process_leaves_no_temporary_and_no_partial_file(tmp_path):
    """A process leaving at once (the CLI's exit on Ctrl-C: remove_pending_temporaries, os._exit)
    while background writes are in flight: the targets are absent or whole, no temporary remains."""
    code = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from openkin.fileio import write_later, remove_pending_temporaries
        out = Path({str(tmp_path)!r})
        for i in range(6):
            write_later(out / f"m{{i}}.json", str(i) * {len(BIG) // 4})
        remove_pending_temporaries()
        os._exit(130)
    """)
    env = {**os.environ, "PYTHONPATH": str(ENGINE)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert not list(tmp_path.glob(".*.tmp"))
    for p in tmp_path.glob("m*.json"):
        i = p.stem[1:]
        assert p.read_text() == i * (len(BIG) // 4)  # whole, never a prefix


def test_background_error_is_raised_by_the_next_publish(tmp_path):
    missing = tmp_path / "gone"
    missing.mkdir()
    write_later(missing / "m.json", "text")
    missing.joinpath("m.json").mkdir()  # the rename over a folder fails
    try:
        settle()
    except OSError:
        pass
    else:
        raise AssertionError("the background write's error was lost")
    settle()  # reported once
    assert not list(missing.glob(".*.tmp"))


# ------------------------------------------------------------------ keypoint cache file
_arrays = st.fixed_dictionaries({
    "names": hnp.arrays(np.dtype("<U12"), st.integers(0, 6), elements=st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)),
    "sig": hnp.arrays(np.int64, st.tuples(st.integers(0, 6), st.just(3))),
    "digests": hnp.arrays(np.uint8, st.tuples(st.integers(0, 6), st.just(32))),
    "keypoints": hnp.arrays(np.float64, st.tuples(st.integers(0, 5), st.integers(0, 3), st.just(4), st.just(3)),
                            elements=st.floats(allow_nan=True, allow_infinity=True)),
    "frames": hnp.arrays(np.int64, st.integers(0, 5)),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_arrays)
def test_cache_file_round_trip(tmp_path, data):
    path = tmp_path / "cache" / "cam01_json.kpc"
    keypoint_cache._save(path, data)
    back = keypoint_cache._load(path)
    assert set(back) == set(data)
    for k, v in data.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)
        assert back[k].flags.writeable
    head = keypoint_cache._load(path, keypoints=False)
    assert set(head) == {"names", "sig", "digests"}
    raw = path.read_bytes()
    for cut in (len(raw) - 1, len(raw) // 2, 10, 0):
        if any(v.nbytes for v in data.values()) or cut < len(raw) - 1:
            path.write_bytes(raw[:cut])
            assert keypoint_cache._load(path) is None  # truncated: ignored, never garbage


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_does_not_wait_for_the_parents_writes(tmp_path):
    """Kinematics forks its workers right after the stage's record was handed to the background:
    a child publishing a file must not wait for a thread it does not have."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return
    write_later(tmp_path / "parent.json", BIG)
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_writes, args=(str(tmp_path / "child.txt"),))
    child.start()
    child.join(60)
    alive = child.is_alive()
    if alive:
        child.kill()
    settle()
    assert not alive and child.exitcode == 0
    assert (tmp_path / "child.txt").read_text() == "child"
    assert (tmp_path / "parent.json").stat().st_size == len(BIG)


def _child_writes(path: str) -> None:
    with atomic_write(path) as f:
        f.write("child")

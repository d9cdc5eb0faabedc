"""Time chunks of the heavy stages as Dask tasks (a LocalCluster of two worker processes, the
cluster ``openkin run --workers 2`` starts), against the same stages run in this process.

- IK: a synthetic take (``openkin.synth``, 480 frames) through every stage, then the kinematics
  stage in chunks of 120 frames (the chunk constants lowered so that a test-sized take is long):
  serially and on the cluster, every ``kinematics/*.mot`` byte-identical; and the chunked
  solution equal to the whole-take solve within 1e-6 deg / 1e-9 m (rounded as the .mot writes);
- pose: two of Pose2Sim's demo videos (real footage, the offline backend), 32 frames in chunks of
  8: the (camera, chunk) tasks on the cluster write the same JSON bytes, same names, as the
  chunks one after the other here; cameras as whole tasks (a short video) the same bytes as one
  pass here; the first chunk (nothing before it) the same bytes as one pass;
- ``openkin pose TRIAL --workers 2`` (the CLI starting its own cluster): the serial bytes;
- chunks submitted from inside a Dask task (a batch trial on a cluster): the serial result.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from openkin import chunks
from openkin.assets import asset_path
from openkin.cluster import client_for
from openkin.config import load_config
from openkin.formats.mot import read_mot
from openkin.kinematics import chunked as ik_chunked
from openkin.pipeline import STAGES, run_stages
from openkin.pose import chunked as pose_chunked
from openkin.pose import run_stage as run_pose
from openkin.project import ProjectPaths

pytest.importorskip("distributed")
FRAMES = 480
POSE_FRAMES = 32


@pytest.fixture(scope="module")
def client():
    with client_for(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def ik_take(tmp_path_factory) -> Path:
    """A synthetic take through every stage before kinematics."""
    from openkin.synth import build_scene

    root = tmp_path_factory.mktemp("ik") / "take"
    build_scene(root, "clean", n_frames=FRAMES, seed=3)
    run_stages(root, [s.name for s in STAGES if s.name != "kinematics"], progress_bars=False)
    return root


def _kinematics(src: Path, dest: Path, client=None) -> dict[str, bytes]:
    shutil.copytree(src, dest)
    with chunks.use_client(client):
        run_stages(dest, ["kinematics"], progress_bars=False)
    mots = {p.name: p.read_bytes() for p in sorted((dest / "kinematics").glob("*.mot"))}
    assert mots
    return mots


def test_ik_chunks_on_dask_are_the_serial_bytes(ik_take, client, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ik_chunked, "CHUNK", 120)
    monkeypatch.setattr(ik_chunked, "LONG_TAKE", 200)
    caplog.set_level(logging.INFO, logger="openkin")
    serial = _kinematics(ik_take, tmp_path / "serial")
    assert "IK: %d frames in 4 chunks" % FRAMES in caplog.text and "on Dask" not in caplog.text
    caplog.clear()
    dask = _kinematics(ik_take, tmp_path / "dask", client)
    assert "ik-chunk: 4 chunk task(s) on Dask" in caplog.text
    assert dask == serial

    monkeypatch.setattr(ik_chunked, "LONG_TAKE", 10 ** 9)
    whole = _kinematics(ik_take, tmp_path / "whole")
    assert whole.keys() == serial.keys()
    for name in whole:
        a, b = read_mot(tmp_path / "whole" / "kinematics" / name), read_mot(tmp_path / "serial" / "kinematics" / name)
        assert a.names == b.names and len(a.times) == FRAMES
        np.testing.assert_array_equal(a.times, b.times)
        assert np.abs(a.values - b.values).max() < 1e-6  # degrees (rotations) and metres, as written


def _pose_project(root: Path) -> tuple[ProjectPaths, object]:
    (root / "videos").mkdir(parents=True)
    for cam in ("cam01", "cam02"):
        shutil.copy(asset_path(f"Demo_SinglePerson/videos/{cam}.mp4"), root / "videos" / f"{cam}.mp4")
    config = load_config(root, overrides={"project": {"frame_range": [0, POSE_FRAMES]},
                                          "pose": {"pose_backend": "offline", "save_video": "none",
                                                   "parallel_workers_pose": False}})
    return ProjectPaths(root), config


def _pose(root: Path, client=None) -> dict[str, str]:
    paths, config = _pose_project(root)
    with chunks.use_client(client):
        run_pose(config, paths)
    return {f.relative_to(paths.pose).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(paths.pose.rglob("*.json"))}


def test_pose_chunks_on_dask_are_the_serial_bytes(client, tmp_path, monkeypatch):
    whole = _pose(tmp_path / "whole")
    assert _pose(tmp_path / "whole_dask", client) == whole  # cameras as tasks
    monkeypatch.setattr(pose_chunked, "CHUNK", 8)
    monkeypatch.setattr(pose_chunked, "LONG_VIDEO", 0)
    serial = _pose(tmp_path / "serial")
    dask = _pose(tmp_path / "dask", client)
    names = {f"{cam}_json/{cam}_{i:06d}.json" for cam in ("cam01", "cam02") for i in range(POSE_FRAMES)}
    assert set(serial) == set(whole) == names
    assert dask == serial
    first = [n for n in names if int(n[-11:-5]) < 8]
    assert {n: serial[n] for n in first} == {n: whole[n] for n in first}


def test_cli_pose_with_workers_is_the_serial_bytes(tmp_path):
    """``openkin pose TRIAL --workers 2``: the cameras as tasks of a LocalCluster it starts and stops."""
    from openkin.cli import main

    digests = {}
    for name, extra in (("serial", []), ("workers", ["--workers", "2"])):
        root = tmp_path / name
        _pose_project(root)
        assert main(["pose", str(root), "--no-progress", "--set", "project.frame_range=[0, 8]",
                     "--set", "pose.pose_backend='offline'", "--set", "pose.save_video='none'", *extra]) == 0
        pose = root / "pose"
        digests[name] = {f.relative_to(pose).as_posix(): f.read_bytes() for f in sorted(pose.rglob("*.json"))}
    assert len(digests["serial"]) == 16 and digests["workers"] == digests["serial"]


def test_chunks_from_inside_a_dask_task(client, tmp_path):
    """A batch trial's task submits its chunks to the cluster it runs on (``worker_client``): the
    IK of a take solved in 4 chunks from inside a task equals the chunks solved here."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
    from openkin.kinematics import ik
    from test_chunks import turning_take

    job, _ = turning_take(400, tmp_path)
    here = ik_chunked.solve(job, ik.solve_openkin, size=100, long_take=0)
    where, there = client.submit(lambda j: (chunks.where(), ik_chunked.solve(j, ik.solve_openkin, size=100, long_take=0)),
                                 job, pure=False).result()
    assert where == "worker"
    assert there.q.tobytes() == here.q.tobytes() and there.rms.tobytes() == here.rms.tobytes()

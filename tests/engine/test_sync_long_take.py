"""Long takes through synchronization in bounded time and memory (#16), and pose-sync's keypoint
cache seeded from pose's without changing what a fresh read of the files gives.

Truth: the time offsets the tracks are made with (a smooth 3D motion sampled at each camera's
own instants and projected by Pose2Sim's demo cameras), and for the cache, the pose JSON files
parsed again by the reader and hashed by hashlib."""
from __future__ import annotations

import functools
import hashlib
import time
import tracemalloc

import numpy as np
import pytest

from openkin import keypoint_cache
from openkin import synchronization as S
from openkin.config import load_config
from openkin.formats.openpose import read_openpose_folder
from openkin.geometry import project_points
from openkin.manifest import folder_sha256
from openkin.project import ProjectPaths
from openkin.synth import build_scene

RATE = 60.0
OFFSETS = np.array([0.0, 7.3, -12.6, 41.45])  # camera c's frame k shows camera 0's frame k + offset


def _motion(seconds: np.ndarray, n_points: int = 17, seed: int = 3) -> np.ndarray:
    """Points of a body-sized cloud moving smoothly and aperiodically: times (T,) -> (T, n, 3) m, Z up.
    Sums of sinusoids, so any fractional instant is exact."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-0.3, -0.3, 0.1], [0.3, 0.3, 1.7], size=(n_points, 3))
    out = np.repeat(base[None], len(seconds), axis=0)
    for _ in range(6):
        freq = rng.uniform(0.05, 1.5, size=(n_points, 3))
        phase = rng.uniform(0, 2 * np.pi, size=(n_points, 3))
        amp = rng.uniform(0.02, 0.12, size=(n_points, 3))
        out += amp * np.sin(2 * np.pi * freq * seconds[:, None, None] + phase)
    return out


def _tracks(n_frames: int, noise_px: float = 1.0):
    """(cameras, tracks: 4 arrays (F, K, 2) px) of one person seen with :data:`OFFSETS`."""
    from openkin.synth.cameras import demo_cameras

    cams = demo_cameras()
    rng = np.random.default_rng(5)
    tracks = []
    for cam, off in zip(cams, OFFSETS):
        pts = _motion((np.arange(n_frames) + off) / RATE)
        xy = project_points(cam, pts.reshape(-1, 3)).reshape(n_frames, -1, 2)
        xy = xy + rng.normal(0.0, noise_px, xy.shape)
        xy[rng.random(xy.shape[:2]) < 0.05] = np.nan  # missed detections
        tracks.append(xy)
    return cams, tracks


def _synchronize(n_frames: int) -> tuple[np.ndarray, float, float]:
    """Offsets found, CPU seconds and peak traced memory (MB) of synchronising ``n_frames``."""
    cams, tracks = _tracks(n_frames)
    tracemalloc.start()
    cpu = time.process_time()
    try:
        result = S.synchronize(tracks, np.zeros(4), n_frames // 2, 0, cams, rate=RATE)
        cpu = time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return result.offsets, cpu, peak


@functools.lru_cache(maxsize=None)
def _synchronized(n_frames: int) -> tuple[np.ndarray, float, float]:
    """:func:`_synchronize` with the default settings, once per module."""
    return _synchronize(n_frames)


def test_long_take_syncs_in_bounded_time_and_memory():
    """6,000 frames (100 s at 60 fps) x 4 cameras, offsets searched over +-50 s (6,001 lags:
    the coarse-to-fine scan): sub-frame offsets, CPU and memory linear in the frames."""
    offsets, cpu, peak = _synchronized(6000)
    np.testing.assert_allclose(offsets, OFFSETS, atol=0.25)
    assert cpu < 20.0, cpu  # s (measured 4.2 s on this machine's 2 cores)
    assert peak < 100.0, peak  # MB of numpy arrays (the tracks are 4 x 1.6 MB; measured 18 MB)
    half_offsets, half_cpu, half_peak = _synchronized(3000)
    np.testing.assert_allclose(half_offsets, OFFSETS, atol=0.25)
    assert cpu < 3.0 * half_cpu, (cpu, half_cpu)  # linear: twice the frames, twice the time (quadratic: 4x)
    assert peak < 3.0 * half_peak, (peak, half_peak)


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    root = tmp_path_factory.mktemp("sync-cache") / "trial"
    build_scene(root, "desync", n_frames=240, seed=11)
    config = load_config(root, {"synchronization": {"save_sync_plots": False}})
    S.run_stage(config, ProjectPaths(root))
    return root


def test_pose_sync_cache_is_what_reading_the_files_gives(synced):
    for folder in sorted((synced / "pose-sync").glob("*_json")):
        cache = keypoint_cache.cache_file(folder)
        assert cache.is_file()  # seeded by the stage from pose/'s cache
        cached = keypoint_cache.read_folder(folder)
        fresh = read_openpose_folder(folder)
        np.testing.assert_array_equal(cached.keypoints, fresh.keypoints)
        np.testing.assert_array_equal(cached.frames, fresh.frames)
        np.testing.assert_array_equal(cached.ids, fresh.ids)
        np.testing.assert_array_equal(cached.listed, fresh.listed)
        assert cached.names == fresh.names
        h = hashlib.sha256()
        for f in sorted(p for p in folder.iterdir() if p.is_file()):
            h.update(f.name.encode() + b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
        assert folder_sha256(folder) == h.hexdigest()


def test_pose_sync_cache_not_seeded_from_other_files(synced, tmp_path):
    """A destination holding other files than the renamed source's is left to a fresh read."""
    src = synced / "pose" / "cam01_json"
    dst = synced / "pose-sync" / "cam01_json"
    assert not keypoint_cache.derive_renamed(src, dst, lambda name: ("x" + name, 0))  # names differ


def test_refinement_of_a_long_take_uses_a_bounded_window(monkeypatch):
    """Takes longer than REFINE_MAX_FRAMES refine their sub-frame lag on that many frames of the
    overlap: the same offsets (to 0.25 frame of the truth, 0.1 of the full-length refinement)."""
    from openkin.synchronization import epipolar

    full = _synchronized(3000)[0]
    monkeypatch.setattr(epipolar, "REFINE_MAX_FRAMES", 900)
    windowed, _, _ = _synchronize(3000)
    np.testing.assert_allclose(windowed, OFFSETS, atol=0.25)
    np.testing.assert_allclose(windowed, full, atol=0.1)

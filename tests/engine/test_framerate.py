"""Frame rate: read from real videos written by OpenCV at known rates, never a silent 30 fps.

Truth: the rate each video was written with (cv2.VideoWriter), the DataRate of a
TRC written at a known rate, Pose2Sim's documented default (60 fps).
"""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from openkin.config import load_config
from openkin.errors import OpenKinError
from openkin.formats.trc import Trc, write_trc
from openkin.framerate import DEFAULT_RATE, resolve_frame_rate, stream_rate, video_rate
from openkin.project import ProjectPaths


def write_video(path, rate: float, n: int = 12, fourcc: str = "mp4v") -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), rate, (64, 48))
    assert w.isOpened()
    for i in range(n):
        w.write(np.full((48, 64, 3), (10 * i) % 256, np.uint8))
    w.release()


def project(root, rates: dict[str, float], config: str = "") -> tuple:
    (root / "videos").mkdir(parents=True)
    for name, rate in rates.items():
        write_video(root / "videos" / name, rate)
    if config:
        (root / "Config.toml").write_text(config)
    return load_config(root), ProjectPaths(root)


@pytest.mark.parametrize("rate", [29.97, 25.0, 60.0])
@pytest.mark.parametrize("ext, fourcc", [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_auto_reads_every_video_exactly(tmp_path, rate, ext, fourcc):
    (tmp_path / "videos").mkdir()
    for cam in ("cam01", "cam02", "cam03"):
        write_video(tmp_path / "videos" / f"{cam}{ext}", rate, fourcc=fourcc)
    got = resolve_frame_rate(load_config(tmp_path), ProjectPaths(tmp_path))
    assert got == pytest.approx(rate, rel=1e-6)  # 29.97 stays 29.97, not round()ed to 30


def test_stream_timestamps_give_the_written_rate(tmp_path):
    """The fallback for containers whose rate is 0 or nonsense: frame timestamps."""
    for rate in (29.97, 25.0, 60.0):
        write_video(tmp_path / f"v{rate}.mp4", rate, n=30)
        assert stream_rate(tmp_path / f"v{rate}.mp4") == pytest.approx(rate, rel=1e-6)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    assert video_rate(tmp_path / "broken.mp4") is None


def test_mixed_rates_are_an_error_naming_each_camera(tmp_path):
    config, paths = project(tmp_path, {"cam01.mp4": 30.0, "cam02.mp4": 25.0, "cam03.mp4": 30.0})
    with pytest.raises(OpenKinError) as e:
        resolve_frame_rate(config, paths)
    msg = str(e.value)
    assert "different frame rates" in msg and "cam01.mp4 30 fps" in msg and "cam02.mp4 25 fps" in msg
    assert "fix:" in msg


def test_2997_and_30_are_different_rates(tmp_path):
    config, paths = project(tmp_path, {"cam01.mp4": 30.0, "cam02.mp4": 29.97})
    with pytest.raises(OpenKinError, match="cam02.mp4 29.97 fps"):
        resolve_frame_rate(config, paths)


def test_explicit_rate_wins_and_a_disagreeing_video_is_named(tmp_path, caplog):
    config, paths = project(tmp_path, {"cam01.mp4": 25.0}, "[project]\nframe_rate = 50\n")
    with caplog.at_level(logging.WARNING):
        assert resolve_frame_rate(config, paths) == 50.0
    assert "cam01.mp4 25 fps" in caplog.text


def test_pose_only_project_takes_the_trc_rate(tmp_path):
    (tmp_path / "pose" / "cam01_json").mkdir(parents=True)
    (tmp_path / "pose-3d").mkdir()
    write_trc(tmp_path / "pose-3d" / "trial.trc", Trc(["Hip"], 50.0, np.zeros((5, 1, 3))))
    assert resolve_frame_rate(load_config(tmp_path), ProjectPaths(tmp_path)) == 50.0


def test_pose_summary_records_the_rate_of_videos_since_removed(tmp_path):
    (tmp_path / "openkin").mkdir()
    summary = {"cameras": [{"name": "cam01", "fps": 29.97}, {"name": "cam02", "fps": 29.97}]}
    (tmp_path / "openkin" / "pose_summary.json").write_text(json.dumps(summary))
    assert resolve_frame_rate(load_config(tmp_path), ProjectPaths(tmp_path)) == 29.97


def test_synthetic_scene_record(tmp_path):
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "scene.toml").write_text("preset = 'clean'\n[spec]\nrate = 120.0\n")
    assert resolve_frame_rate(load_config(tmp_path), ProjectPaths(tmp_path)) == 120.0


def test_no_information_is_pose2sim_default_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="openkin.framerate"):
        assert resolve_frame_rate(load_config(tmp_path), ProjectPaths(tmp_path)) == 60.0 == DEFAULT_RATE
    assert "60 fps" in caplog.text and "[project] frame_rate" in caplog.text


def test_image_folders_are_60_fps_as_the_default_config_says(tmp_path, caplog):
    images = tmp_path / "videos" / "cam01"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "img_000.png"), np.zeros((8, 8, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="openkin.framerate"):
        assert resolve_frame_rate(load_config(tmp_path), ProjectPaths(tmp_path)) == 60.0
    assert "image folders" in caplog.text
    from openkin.config import DEFAULT_CONFIG_PATH

    assert "60 fps (Pose2Sim's default)" in DEFAULT_CONFIG_PATH.read_text()


def test_auto_rate_below_twice_the_cutoff_is_an_error(tmp_path):
    """10 fps videos: Nyquist 5 Hz, the default Butterworth cut-off is 6 Hz."""
    config, paths = project(tmp_path, {"cam01.mp4": 10.0}, "[synchronization]\nfilter_cutoff = 3\n")
    with pytest.raises(OpenKinError) as e:
        resolve_frame_rate(config, paths)
    assert "filtering.butterworth.cut_off_frequency = 6 Hz" in str(e.value)
    assert "Nyquist frequency 5 Hz" in str(e.value) and "frame_rate = 'auto': 10 fps" in str(e.value)


def test_the_run_context_uses_the_same_function(tmp_path):
    """Every stage takes the rate from the run context, which resolves it with this function."""
    from openkin.context import RunContext
    from openkin.manifest import Manifest

    config, paths = project(tmp_path, {"cam01.mp4": 29.97})
    ctx = RunContext(config=config, paths=paths, manifest=Manifest.load(paths.root))
    assert ctx.frame_rate == resolve_frame_rate(config, paths) == pytest.approx(29.97)

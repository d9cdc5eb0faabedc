"""The pose stage end to end on real demo videos, and on broken inputs.

Bad inputs are made from the real demo videos: a byte-truncated mp4 (its index
is at the end, so nothing opens), a truncated and a corrupted MJPG AVI (frames
decode up to the damage), an empty camera folder, an image folder with an
unreadable image, a video shorter than the others.
"""
from __future__ import annotations

import json
import logging
import os
import shutil

import cv2
import numpy as np
import pytest

from openkin.assets import asset_path
from openkin.config import load_config
from openkin.errors import OpenKinError
from openkin.formats.openpose import read_openpose_dir
from openkin.pose import run_stage
from openkin.project import ProjectPaths

N = 4  # frames per camera in these tests (speed)


def demo_video(cam: str):
    return asset_path(f"Demo_SinglePerson/videos/{cam}.mp4")


def make_project(root, cams=("cam01", "cam02"), **pose):
    (root / "videos").mkdir(parents=True)
    for cam in cams:
        shutil.copy(demo_video(cam), root / "videos" / f"{cam}.mp4")
    overrides = {"project": {"frame_range": [0, N]},
                 "pose": {"pose_backend": "offline", "save_video": "none", "parallel_workers_pose": False} | pose}
    return ProjectPaths(root), load_config(root, overrides=overrides)


def demo_frames(cam: str, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(demo_video(cam)))
    frames = [cap.read()[1] for _ in range(count)]
    cap.release()
    return frames


def write_avi(path, frames) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 60, frames[0].shape[1::-1])
    for f in frames:
        w.write(f)
    w.release()


def test_stage_writes_pose2sim_json_with_person_ids(tmp_path):
    paths, config = make_project(tmp_path / "trial", save_video=["to_video", "to_images"])
    run_stage(config, paths)
    for cam in ("cam01", "cam02"):
        kp, frames, ids = read_openpose_dir(paths.pose / f"{cam}_json")
        assert kp.shape == (N, 1, 26, 3) and list(frames) == list(range(N))
        assert (ids == 0).all()
        assert np.isfinite(kp[..., :2]).mean() > 0.95
        assert (paths.pose / f"{cam}_pose.mp4").stat().st_size > 10_000
        assert len(list((paths.pose / f"{cam}_img").glob("*.jpg"))) == N
    assert not [p for p in paths.pose.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    assert (paths.reports / "pose_summary.json").is_file()


def test_parallel_workers_give_the_same_result(tmp_path):
    paths, config = make_project(tmp_path / "seq")
    run_stage(config, paths)
    ppaths, pconfig = make_project(tmp_path / "par", parallel_workers_pose=2)
    run_stage(pconfig, ppaths)
    for cam in ("cam01", "cam02"):
        a = read_openpose_dir(paths.pose / f"{cam}_json")[0]
        b = read_openpose_dir(ppaths.pose / f"{cam}_json")[0]
        assert np.allclose(a, b, atol=0.5, equal_nan=True)


def test_overwrite_false_keeps_existing_output(tmp_path, caplog):
    paths, config = make_project(tmp_path / "trial")
    run_stage(config, paths)
    f = paths.pose / "cam01_json" / "cam01_000000.json"
    mtime = f.stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        run_stage(config, paths)
    assert f.stat().st_mtime_ns == mtime
    assert "keeping the existing 2D poses" in caplog.text


def test_truncated_and_corrupt_videos_other_cameras_processed_nothing_overwritten(tmp_path):
    paths, config = make_project(tmp_path / "trial", overwrite_pose=True)
    data = demo_video("cam03").read_bytes()
    (paths.videos / "cam03.mp4").write_bytes(data[: len(data) // 2])  # mp4 index at the end: unopenable
    (paths.videos / "cam04.mp4").write_bytes(os.urandom(50_000))
    earlier = paths.pose / "cam03_json"
    earlier.mkdir(parents=True)
    (earlier / "cam03_000000.json").write_text('{"version": 1.3, "people": []}')
    with pytest.raises(OpenKinError) as err:
        run_stage(config, paths)
    msg = str(err.value)
    assert "cam03" in msg and "cam04" in msg and "written for: cam01, cam02" in msg
    assert "cannot open the video" in msg and "fix:" in msg
    # the fix matches the options given: with overwrite_pose = true nothing is "kept"
    assert "overwrite_pose = true every camera is redone" in err.value.fix
    assert (earlier / "cam03_000000.json").read_text() == '{"version": 1.3, "people": []}'
    assert not (paths.pose / "cam04_json").exists()
    for cam in ("cam01", "cam02"):
        assert read_openpose_dir(paths.pose / f"{cam}_json")[0].shape == (N, 1, 26, 3)


def test_truncated_avi_keeps_decoded_frames_and_says_so(tmp_path, caplog):
    paths, config = make_project(tmp_path / "trial", cams=("cam01",))
    write_avi(tmp_path / "full.avi", demo_frames("cam02", 8))
    data = (tmp_path / "full.avi").read_bytes()
    (paths.videos / "cam02.avi").write_bytes(data[: int(len(data) * 0.45)])
    config = config.with_overrides({"project": {"frame_range": [0, 8]}})
    with caplog.at_level(logging.WARNING):
        run_stage(config, paths)
    kp, numbers, _ = read_openpose_dir(paths.pose / "cam02_json")
    assert 1 <= len(numbers) <= 5
    assert "decoding stopped at frame" in caplog.text and "cam02.avi" in caplog.text
    assert f"{8 - len(numbers)} frame(s) lost" in caplog.text  # 8 written, the rest decoded
    assert "cam02: %d frames, other cameras up to 8" % len(numbers) in caplog.text
    summary = json.loads((paths.reports / "pose_summary.json").read_text())
    cam02 = next(c for c in summary["cameras"] if c["name"] == "cam02")
    assert cam02["frames_lost"] == 8 - len(numbers) and cam02["fps"] == 60.0


def test_every_camera_truncated_warns_about_the_common_range(tmp_path, caplog):
    paths, config = make_project(tmp_path / "trial", cams=())
    for cam, keep in (("cam01", 0.45), ("cam02", 0.7)):
        write_avi(tmp_path / f"{cam}.avi", demo_frames(cam, 8))
        data = (tmp_path / f"{cam}.avi").read_bytes()
        (paths.videos / f"{cam}.avi").write_bytes(data[: int(len(data) * keep)])
    config = config.with_overrides({"project": {"frame_range": "all"}})
    with caplog.at_level(logging.WARNING):
        run_stage(config, paths)
    decoded = {cam: len(read_openpose_dir(paths.pose / f"{cam}_json")[1]) for cam in ("cam01", "cam02")}
    assert all(n < 8 for n in decoded.values())
    for cam, n in decoded.items():  # each camera named with the frames it lost
        assert f"{cam}.avi: decoding stopped at frame {n} of 8 announced: {8 - n} frame(s) lost" in caplog.text
    assert "every camera ended before its announced length" in caplog.text
    assert f"{max(decoded.values())} at most of the 8 announced" in caplog.text


def test_unreadable_frame_in_video_is_written_empty(tmp_path, caplog):
    paths, config = make_project(tmp_path / "trial", cams=())
    frames = demo_frames("cam01", 5)
    write_avi(tmp_path / "ok.avi", frames)
    data = bytearray((tmp_path / "ok.avi").read_bytes())
    jpegs = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    data[jpegs[2]:jpegs[2] + 3000] = bytes(3000)  # wipe frame 2's JPEG header
    (paths.videos / "cam01.avi").write_bytes(bytes(data))
    config = config.with_overrides({"project": {"frame_range": [0, 5]}})
    with caplog.at_level(logging.WARNING):
        run_stage(config, paths)
    kp, numbers, _ = read_openpose_dir(paths.pose / "cam01_json")
    assert list(numbers) == [0, 1, 2, 3, 4]
    found = np.isfinite(kp[:, :, :, 0]).any(axis=(1, 2))
    assert list(found) == [True, True, False, True, True]
    assert "1 unreadable frame(s) (first 2)" in caplog.text


def test_empty_camera_folder_and_image_folders(tmp_path, caplog):
    paths, config = make_project(tmp_path / "trial", cams=())
    images = paths.videos / "cam02"
    images.mkdir()
    for i, f in enumerate(demo_frames("cam02", 3)):
        cv2.imwrite(str(images / f"img_{i:03d}.jpg"), f)
    (images / "img_003.jpg").write_bytes(b"not an image")
    (paths.videos / "cam05").mkdir()
    with caplog.at_level(logging.WARNING):
        with pytest.raises(OpenKinError, match="cam05: camera folder has no video and no images"):
            run_stage(config, paths)
    kp, numbers, _ = read_openpose_dir(paths.pose / "cam02_json")
    assert list(numbers) == [0, 1, 2, 3]
    assert np.isfinite(kp[:3, 0, :, 0]).all(axis=1).sum() >= 2 and not np.isfinite(kp[3]).any()
    assert "cam02: 1 unreadable frame(s) (first 3)" in caplog.text


def test_no_input_at_all(tmp_path):
    paths, config = make_project(tmp_path / "trial", cams=())
    with pytest.raises(OpenKinError, match="no video file and no image folder"):
        run_stage(config, paths)
    with pytest.raises(OpenKinError, match="cannot produce pose_model"):
        _, cfg = make_project(tmp_path / "t2", cams=("cam01",), pose_model="Whole_body")
        run_stage(cfg, ProjectPaths(tmp_path / "t2"))


def test_cancel_leaves_earlier_output_and_no_temporary_files(tmp_path):
    from openkin.progress import Cancelled

    paths, config = make_project(tmp_path / "trial", cams=("cam01",), overwrite_pose=True)
    earlier = paths.pose / "cam01_json"
    earlier.mkdir(parents=True)
    (earlier / "cam01_000000.json").write_text('{"version": 1.3, "people": []}')
    with pytest.raises(Cancelled):
        run_stage(config, paths, progress=lambda fraction, message="": fraction < 0.3)
    assert [p.name for p in earlier.iterdir()] == ["cam01_000000.json"]
    assert [p.name for p in paths.pose.iterdir()] == ["cam01_json"]


def rotated_copy(src, dest) -> None:
    """Copy an mp4 with its track's display matrix set to a 90° rotation (as phones write it)."""
    import struct

    data = bytearray(src.read_bytes())
    box = data.find(b"tkhd") - 4
    matrix = box + (48 if data[box + 8] == 0 else 60)
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    dest.write_bytes(bytes(data))


def test_rotation_metadata_frames_are_upright_and_keypoints_follow(tmp_path, caplog):
    paths, config = make_project(tmp_path / "trial", cams=("cam01",))
    rotated_copy(demo_video("cam01"), paths.videos / "cam05.mp4")
    config = config.with_overrides({"project": {"frame_range": [0, 2]}})
    with caplog.at_level(logging.INFO):
        run_stage(config, paths)
    assert "cam05.mp4: rotation metadata 90°" in caplog.text
    plain = read_openpose_dir(paths.pose / "cam01_json")[0][:, 0]
    turned = read_openpose_dir(paths.pose / "cam05_json")[0][:, 0]
    height = cv2.VideoCapture(str(demo_video("cam01"))).get(cv2.CAP_PROP_FRAME_HEIGHT)
    expected = np.stack([height - 1 - plain[..., 1], plain[..., 0]], axis=-1)  # 90° clockwise
    good = (plain[..., 2] > 0.5) & (turned[..., 2] > 0.5)
    dist = np.linalg.norm(turned[..., :2] - expected, axis=-1)[good]
    assert good.sum() > 30 and np.median(dist) < 15, f"median {np.median(dist):.1f} px"

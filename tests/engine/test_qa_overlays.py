"""QA overlays (openkin.overlays) and the swaps the triangulation records, on a synthetic scene
with left/right swaps injected in cam01 over known frames (truth/scene.toml), 1.5 px noise and 2 % confident
outliers (views the triangulation excludes).

Truth is independent of the code under test: the JSON's 2D coordinates undistorted with
``cv2.undistortPoints`` (the image the Blender background shows), the TRC's points projected
with ``cv2.projectPoints`` without distortion, the synth's own record of the swapped frames."""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

SCALE = 0.5
N_FRAMES = 60


@pytest.fixture(scope="module")
def swap_project(tmp_path_factory) -> Path:
    import openkin
    from openkin.synth import build_scene

    root = tmp_path_factory.mktemp("qa") / "trial"
    build_scene(root, "clean", n_frames=N_FRAMES, seed=1, swap_fraction=0.15, swap_cameras=1, noise_px=1.5,
                outlier_rate=0.02)
    assert openkin.run(root, stages=["triangulation"]).ok
    return root


def _truth_swaps(root: Path) -> dict[str, list[int]]:
    events = tomllib.loads((root / "truth" / "scene.toml").read_text())["events"]
    return {cam: e["swapped_frames"] for cam, e in events.items()}


def _npz(root: Path):
    from openkin.triangulation.reprojection import read_reprojection

    return read_reprojection(next((root / "pose-3d").glob("*_reprojection.npz")))


def test_triangulation_records_the_swaps_it_corrected(swap_project):
    truth = _truth_swaps(swap_project)
    data = _npz(swap_project)
    assert sum(map(len, truth.values())) > 5
    for c, cam in enumerate(data.cameras):
        frames = data.frame_numbers[data.swapped[c].any(axis=-1)]
        assert sorted(frames.tolist()) == sorted(truth[cam]), cam
    legs = [data.keypoints.index(n) for n in ("LKnee", "RKnee", "LAnkle", "RAnkle")]
    f = truth["cam01"][0]
    assert data.swapped[0, list(data.frame_numbers).index(f)][legs].all()
    assert not data.swapped[0, :, data.keypoints.index("Nose")].any()   # no left/right pair


def test_reprojection_file_without_swaps_reads_as_none_swapped(tmp_path, swap_project):
    from openkin.triangulation.reprojection import read_reprojection

    src = next((swap_project / "pose-3d").glob("*_reprojection.npz"))
    with np.load(src) as z:
        old = {k: z[k] for k in z.files if k != "swapped"}
    np.savez(tmp_path / "old_reprojection.npz", **old)
    data = read_reprojection(tmp_path / "old_reprojection.npz")
    assert data.swapped.shape == data.used.shape and not data.swapped.any()


@pytest.fixture(scope="module")
def overlays(swap_project):
    from openkin.overlays import write_overlays

    return write_overlays(swap_project, scale=SCALE)


def _camera(root, name):
    from openkin.formats.calibration import read_calibration

    return next(c for c in read_calibration(next((root / "calibration").glob("*.toml"))) if c.name == name)


def _overlay_px(uv):
    return np.round((np.asarray(uv) + 0.5) * SCALE - 0.5).astype(int)


def test_overlay_index_and_one_png_per_frame(swap_project, overlays):
    index = json.loads((overlays / "overlays.json").read_text())
    assert index["frames"] == [0, N_FRAMES - 1] and index["scale"] == SCALE
    for cam, entry in index["cameras"].items():
        files = sorted((overlays / entry["folder"]).glob("*.png"))
        assert len(files) == N_FRAMES
        img = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
        w, h = entry["size"]
        assert img.shape == (round(h * SCALE), round(w * SCALE), 4)


def test_detection_drawn_where_opencv_undistorts_it(swap_project, overlays):
    from openkin.skeletons import HALPE_26

    cam = _camera(swap_project, "cam02")
    frame = 30
    path = next((swap_project / "pose" / "cam02_json").glob(f"*{frame:06d}.json"))
    doc = json.loads(path.read_text())
    kp = np.asarray(doc["people"][0]["pose_keypoints_2d"], float).reshape(-1, 3)
    img = cv2.imread(str(overlays / "cam02" / f"cam02_{frame:06d}.png"), cv2.IMREAD_UNCHANGED)
    checked = 0
    for name in ("LWrist", "RKnee", "Head"):
        x, y, conf = kp[HALPE_26.index(name)]
        if conf < 0.5:
            continue
        und = cv2.undistortPoints(np.array([[[x, y]]]), cam.matrix, cam.distortions, P=cam.matrix)[0, 0]
        u, v = _overlay_px(und)
        patch = img[v - 1:v + 2, u - 1:u + 2]
        assert (patch[..., 3] == 255).all(), (name, u, v)
        b, g, r = patch[..., :3].reshape(-1, 3).astype(int).T
        assert ((g > 150) & (b < 80) & (r < 120)).all(), (name, patch[..., :3])   # confidence >= 0.5: green
        checked += 1
    assert checked >= 2


def test_reprojected_marker_drawn_where_opencv_projects_it(swap_project, overlays):
    from openkin.formats.trc import read_trc

    cam = _camera(swap_project, "cam03")
    trc = read_trc(next((swap_project / "pose-3d").glob("*.trc")))
    frame = 20
    row = list(trc.frame_numbers).index(frame)
    k = trc.marker_names.index("RKnee")
    y_up = trc.xyz[row, k]
    world = np.array([y_up[2], y_up[0], y_up[1]])            # TRC Y-up → calibration Z-up
    uv, _ = cv2.projectPoints(world[None], cam.rotation, cam.translation, cam.matrix, np.zeros(5))
    u, v = _overlay_px(uv[0, 0])
    img = cv2.imread(str(overlays / "cam03" / f"cam03_{frame:06d}.png"), cv2.IMREAD_UNCHANGED)
    # the cross's arms (its centre lies under the detection's dot, drawn over it)
    arms = np.array([img[v, u + 6], img[v, u - 6], img[v + 6, u], img[v - 6, u]]).astype(int)
    magenta = (arms[:, 3] == 255) & (arms[:, 2] > 200) & (arms[:, 0] > 200) & (arms[:, 1] < 80)
    assert magenta.sum() >= 2, arms     # a bone line may cross an arm


def test_swapped_frames_are_marked(swap_project, overlays):
    swapped = set(_truth_swaps(swap_project)["cam01"])
    cyan = {}
    for f in range(N_FRAMES):
        img = cv2.imread(str(overlays / "cam01" / f"cam01_{f:06d}.png"), cv2.IMREAD_UNCHANGED)
        cyan[f] = int(((img[..., 0] == 255) & (img[..., 1] == 255) & (img[..., 2] == 0) & (img[..., 3] == 255)).sum())
    assert all(cyan[f] > 50 for f in swapped)
    assert all(cyan[f] == 0 for f in range(N_FRAMES) if f not in swapped)


def test_partial_redraw_keeps_other_frames(swap_project, overlays, tmp_path):
    from openkin.overlays import write_overlays

    copy = tmp_path / "p"
    shutil.copytree(swap_project, copy)
    before = {p.name: p.read_bytes() for p in (copy / "openkin" / "overlays" / "cam01").glob("*.png")}
    for p in (copy / "openkin" / "overlays" / "cam01").glob("*.png"):
        p.write_bytes(b"old")
    write_overlays(copy, scale=SCALE, frames=(10, 12))
    after = {p.name: p.read_bytes() for p in (copy / "openkin" / "overlays" / "cam01").glob("*.png")}
    redrawn = {f"cam01_{f:06d}.png" for f in (10, 11, 12)}
    assert all(after[n] == before[n] for n in redrawn)
    assert all(after[n] == b"old" for n in after if n not in redrawn)


def test_no_detections_is_a_clear_error(tmp_path, swap_project):
    from openkin.errors import OpenKinError
    from openkin.overlays import write_overlays

    copy = tmp_path / "p"
    shutil.copytree(swap_project, copy, ignore=shutil.ignore_patterns("pose"))
    with pytest.raises(OpenKinError) as e:
        write_overlays(copy)
    assert "2D detections" in e.value.problem and e.value.fix


def test_excluded_views_are_marked(swap_project, overlays):
    """Where the triangulation dropped a confident detection (the synth's outliers), an orange
    ring is drawn around that detection (undistorted by OpenCV)."""
    from openkin.skeletons import HALPE_26

    data = _npz(swap_project)
    tri = np.isfinite(data.error_px)                                   # (F, K)
    checked = 0
    for c, name in enumerate(data.cameras):
        cam = _camera(swap_project, name)
        for i, k in zip(*np.nonzero(~data.used[c] & tri)):
            f = int(data.frame_numbers[i])
            path = next((swap_project / "pose" / f"{name}_json").glob(f"*{f:06d}.json"))
            people = json.loads(path.read_text())["people"]
            if not people:
                continue
            x, y, conf = np.asarray(people[0]["pose_keypoints_2d"], float).reshape(-1, 3)[
                HALPE_26.index(data.keypoints[k])]
            if conf < 0.5 or data.swapped[c, i, k]:
                continue
            und = cv2.undistortPoints(np.array([[[x, y]]]), cam.matrix, cam.distortions, P=cam.matrix)[0, 0]
            u, v = _overlay_px(und)
            img = cv2.imread(str(overlays / name / f"{name}_{f:06d}.png"), cv2.IMREAD_UNCHANGED)
            box = img[max(0, v - 12):v + 13, max(0, u - 12):u + 13]
            orange = (box[..., 2] == 255) & (box[..., 1] == 140) & (box[..., 0] == 0) & (box[..., 3] == 255)
            assert orange.sum() > 10, (name, f, data.keypoints[k])
            checked += 1
            if checked >= 8:
                return
    assert checked >= 3


def test_cli_redraws_a_frame_range(swap_project, overlays, tmp_path):
    import subprocess
    import sys

    copy = tmp_path / "p"
    shutil.copytree(swap_project, copy)
    target = copy / "openkin" / "overlays" / "cam02" / "cam02_000007.png"
    target.write_bytes(b"old")
    done = subprocess.run([sys.executable, "-m", "openkin.cli", "overlays", str(copy), "--frames", "7-7",
                           "--cameras", "cam02"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert cv2.imread(str(target), cv2.IMREAD_UNCHANGED).shape[2] == 4
    bad = subprocess.run([sys.executable, "-m", "openkin.cli", "overlays", str(copy), "--frames", "9-3"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "frame range" in (bad.stderr + bad.stdout)

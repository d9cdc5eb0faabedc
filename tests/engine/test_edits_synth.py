"""Each kind of edit on synthetic scenes with known truth: a corruption injected in a known
camera, keypoint and frame range (or a known association), the edit, and the result against
the scene's truth and the unedited run."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import openkin
from openkin.cli import main as cli
from openkin.formats.openpose import read_openpose_dir, write_openpose_dir
from openkin.formats.trc import read_trc
from openkin.synth.build import build_scene
from openkin.triangulation.reprojection import read_reprojection

RANGE = (60, 99)
SL = slice(RANGE[0], RANGE[1] + 1)
TRC = "pose-3d/take_0-199.trc"


def shift(root: Path, cam: str, px: float, keypoint: int | None = None) -> None:
    """Move ``cam``'s detections (one keypoint, or all) of RANGE by ``px`` pixels in x: a bias
    below the triangulation's rejection threshold, so it pulls the 3D points."""
    folder = root / "pose" / f"{cam}_json"
    kp, fr, _ = read_openpose_dir(folder)
    sel = (fr >= RANGE[0]) & (fr <= RANGE[1])
    if keypoint is None:
        kp[sel, :, :, 0] += px
    else:
        kp[sel, :, keypoint, 0] += px
    write_openpose_dir(folder, cam, kp, frame_numbers=fr)


def errors(root: Path) -> tuple[np.ndarray, list[str]]:
    """Per-frame, per-keypoint error (mm) of the triangulated person against the truth → (F,K)."""
    truth, res = read_trc(root / "truth/keypoints.trc"), read_trc(root / TRC)
    idx = [truth.marker_names.index(n) for n in res.marker_names]
    return 1000 * np.linalg.norm(res.xyz - truth.xyz[res.frame_numbers][:, idx], axis=-1), res.marker_names


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = build_scene(tmp_path_factory.mktemp("kinds") / "clean" / "take", "mild", n_frames=200, seed=21).path
    assert openkin.run(root, stages=["triangulation"], report=False).ok
    return root


def corrupted(clean: Path, dest: Path, **how) -> Path:
    root = dest / "take"
    shutil.copytree(clean, root)
    shift(root, **how)
    assert openkin.run(root, stages=["triangulation"], report=False).ok
    return root


def test_exclude_camera(clean, tmp_path):
    root = corrupted(clean, tmp_path, cam="cam03", px=10.0)
    before = errors(root)[0][SL].mean()
    assert before > errors(clean)[0][SL].mean() + 3
    assert cli(["edit", str(root), "--exclude-camera", "cam03", "--frames", f"{RANGE[0]}-{RANGE[1]}"]) == 0
    assert cli(["recompute", str(root)]) == 0                           # the frames of the edits
    after = errors(root)[0][SL].mean()
    assert after < errors(clean)[0][SL].mean() + 1.5, (before, after)   # three good cameras left
    used = read_reprojection(root / "pose-3d/take_0-199_reprojection.npz").used
    assert not used[2, SL].any() and used[2, :RANGE[0]].mean() > 0.9


def test_wrong_detection(clean, tmp_path):
    from openkin.skeletons import get_skeleton

    kp = list(get_skeleton("HALPE_26").names).index("RAnkle")
    root = corrupted(clean, tmp_path, cam="cam01", px=10.0, keypoint=kp)
    err, names = errors(root)
    assert names[kp] == "RAnkle"
    clean_err = errors(clean)[0][SL, kp].mean()
    assert err[SL, kp].mean() > clean_err + 3
    assert cli(["edit", str(root), "--wrong", "cam01", "--keypoint", "RAnkle", "--frames",
                f"{RANGE[0]}-{RANGE[1]}"]) == 0
    assert cli(["recompute", str(root), "--frames", f"{RANGE[0]}-{RANGE[1]}"]) == 0
    assert errors(root)[0][SL, kp].mean() < clean_err + 1.5
    used = read_reprojection(root / "pose-3d/take_0-199_reprojection.npz").used
    assert not used[0, SL, kp].any() and used[0, SL, kp + 1].all()     # only that keypoint dropped


def test_swap_edit_with_automatic_correction_on(clean, tmp_path):
    """A swap edit holds even where the automatic correction runs (it leaves edited frames alone)."""
    from openkin.skeletons import get_skeleton
    from openkin.synth import corrupt

    root = tmp_path / "take"
    shutil.copytree(clean, root)
    folder = root / "pose/cam04_json"
    kp, fr, _ = read_openpose_dir(folder)
    uv, conf = kp[..., :2].copy(), kp[..., 2].copy()
    corrupt.swap_left_right(uv, conf, (fr >= RANGE[0]) & (fr <= RANGE[1]), corrupt.mirror_index(get_skeleton("HALPE_26")))
    write_openpose_dir(folder, "cam04", np.concatenate([uv, conf[..., None]], -1), frame_numbers=fr)
    assert openkin.run(root, stages=["triangulation"], report=False).ok
    assert cli(["edit", str(root), "--swap", "cam04", "--frames", f"{RANGE[0]}-{RANGE[1]}"]) == 0
    assert cli(["recompute", str(root)]) == 0
    assert abs(errors(root)[0][SL].mean() - errors(clean)[0][SL].mean()) < 0.2


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    root = build_scene(tmp_path_factory.mktemp("multi") / "take", "multi", n_frames=120, seed=4).path
    assert openkin.run(root, stages=["association", "triangulation"], report=False).ok
    return root


def run_people(root: Path) -> None:
    assert cli(["run", str(root), "--stages", "association,triangulation", "--no-report", "--no-progress"]) == 0


def test_another_person_edit_drops_that_detection(multi, tmp_path):
    root = tmp_path / "take"
    shutil.copytree(multi, root)
    assert cli(["edit", str(root), "--person", "cam02:0", "--as", "-1", "--frames", "30-59"]) == 0
    assert cli(["recompute", str(root), "--frames", "30-59"]) == 0
    npz = sorted((root / "pose-3d").glob("take_P0_*_reprojection.npz"))[0]
    rep = read_reprojection(npz)
    inside = (rep.frame_numbers >= 30) & (rep.frame_numbers <= 59)
    assert not rep.used[1][inside].any() and rep.used[1][~inside].mean() > 0.8
    cam02, _, _ = read_openpose_dir(root / "pose-associated/cam02_json")
    before, _, _ = read_openpose_dir(multi / "pose-associated/cam02_json")
    assert np.isnan(cam02[30:60, 0]).all()                              # person 0's slot empty there
    np.testing.assert_array_equal(cam02[:30], before[:30])
    np.testing.assert_array_equal(cam02[30:60, 1], before[30:60, 1])    # person 1 untouched


def test_exchange_people_in_one_camera(multi, tmp_path):
    root = tmp_path / "take"
    shutil.copytree(multi, root)
    assert cli(["edit", str(root), "--person", "cam03:0", "--as", "1", "--frames", "30-59"]) == 0
    run_people(root)
    after, _, _ = read_openpose_dir(root / "pose-associated/cam03_json")
    before, _, _ = read_openpose_dir(multi / "pose-associated/cam03_json")
    np.testing.assert_array_equal(after[30:60, 0], before[30:60, 1])
    np.testing.assert_array_equal(after[30:60, 1], before[30:60, 0])
    np.testing.assert_array_equal(after[60:], before[60:])


def test_split_then_merge_gives_back_the_person(multi, tmp_path):
    root = tmp_path / "take"
    shutil.copytree(multi, root)
    original = {p.name: p.read_bytes() for p in (multi / "pose-3d").glob("*.trc")}
    p0 = next(n for n in original if n.startswith("take_P0_"))
    assert cli(["edit", str(root), "--split", "0", "--at", "70"]) == 0
    run_people(root)
    names = sorted(p.name for p in (root / "pose-3d").glob("*.trc"))
    assert any(n.startswith("take_P0_") and n.endswith("-69.trc") for n in names) and any(n.startswith("take_P2_70-") for n in names), names
    assert cli(["edit", str(root), "--merge", "0", "2"]) == 0
    assert cli(["recompute", str(root)]) == 0
    assert (root / "pose-3d" / p0).read_bytes() == original[p0]          # the unedited person, byte for byte
    assert cli(["edit", str(root), "--merge", "0", "5"]) == 2            # no person 5: clear error

"""openkin recompute: a --swap edit on a synthetic take with left/right swaps injected in one
camera over known frames (swap correction off), recomputed on that range only.

Truth: the synthetic scene's 3D keypoints, the same scene triangulated without the injected
swaps (the clean level), and a full rerun of the stages with the same edit. Unchanged frames
are compared byte for byte (TRC/MOT/CSV lines, C3D and NPZ arrays).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import openkin
from openkin.cli import main as cli
from openkin.formats.c3d import read_c3d
from openkin.formats.openpose import read_openpose_dir, write_openpose_dir
from openkin.formats.trc import read_trc
from openkin.manifest import Manifest
from openkin.skeletons import get_skeleton
from openkin.synth import corrupt
from openkin.synth.build import build_scene
from openkin.triangulation.reprojection import read_reprojection

SWAP = (120, 150)       # frames injected in cam02, inclusive
STAGES = ["triangulation", "filtering", "augmentation", "kinematics"]
OVERRIDES = {"triangulation": {"handle_LR_swap": False}, "kinematics": {"ik_solver": "openkin"}}
SETS = ["--set", "triangulation.handle_LR_swap=false", "--set", "kinematics.ik_solver='openkin'"]
RAW, FILT = "pose-3d/take_0-299.trc", "pose-3d/take_0-299_filt_butterworth.trc"
LSTM, MOT = "pose-3d/take_0-299_filt_butterworth_LSTM.trc", "kinematics/take_0-299_filt_butterworth_LSTM.mot"


def inject_swap(root: Path, cam: str, first: int, last: int) -> None:
    """Left/right swapped in ``cam``'s detections of frames first..last (the synth's corruption)."""
    folder = root / "pose" / f"{cam}_json"
    kp, fr, _ = read_openpose_dir(folder)
    uv, conf = kp[..., :2].copy(), kp[..., 2].copy()
    corrupt.swap_left_right(uv, conf, (fr >= first) & (fr <= last), corrupt.mirror_index(get_skeleton("HALPE_26")))
    write_openpose_dir(folder, cam, np.concatenate([uv, conf[..., None]], -1), frame_numbers=fr)


def mpjpe(root: Path, rel: str = RAW) -> np.ndarray:
    """Per-frame mean keypoint error (mm) of a TRC against the scene's truth → (F,)."""
    truth, res = read_trc(root / "truth/keypoints.trc"), read_trc(root / rel)
    idx = [truth.marker_names.index(n) for n in res.marker_names if n in truth.marker_names]
    cols = [i for i, n in enumerate(res.marker_names) if n in truth.marker_names]
    return 1000 * np.linalg.norm(res.xyz[:, cols] - truth.xyz[res.frame_numbers][:, idx], axis=-1).mean(-1)


@pytest.fixture(scope="module")
def takes(tmp_path_factory):
    """(clean, swapped) projects, both run through every stage; the swapped one has cam02's
    left/right exchanged on SWAP."""
    base = tmp_path_factory.mktemp("recompute")
    clean = build_scene(base / "clean" / "take", "mild", n_frames=300, seed=11).path
    swapped = base / "swapped" / "take"
    shutil.copytree(clean, swapped)
    inject_swap(swapped, "cam02", *SWAP)
    for root, stages in ((clean, STAGES[:3]), (swapped, STAGES)):  # the clean level needs no IK
        result = openkin.run(root, stages=stages, overrides=OVERRIDES, report=False)
        assert result.ok, result.error
    return clean, swapped


def copy_of(src: Path, dest: Path) -> Path:
    out = dest / "take"
    shutil.copytree(src, out)
    return out


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def replaced_rows(before: Path, after: Path, rel: str) -> np.ndarray:
    """Indices of the lines of ``rel`` that differ (same line count asserted)."""
    a, b = lines(before / rel), lines(after / rel)
    assert len(a) == len(b)
    return np.array([i for i, (x, y) in enumerate(zip(a, b)) if x != y], int)


@pytest.fixture(scope="module")
def edited(takes, tmp_path_factory):
    """The swapped take after ``openkin edit --swap`` and ``openkin recompute`` of SWAP, and the
    recompute's JSON output."""
    _, swapped = takes
    root = copy_of(swapped, tmp_path_factory.mktemp("edited"))
    assert cli(["edit", str(root), "--swap", "cam02", "--frames", f"{SWAP[0]}-{SWAP[1]}"]) == 0
    states = {n: r["status"] for n, r in Manifest.load(root).stages.items() if n in STAGES}
    assert states == dict.fromkeys(STAGES, "outdated")  # the edit outdates what it changes
    assert cli(["recompute", str(root), "--frames", f"{SWAP[0]}-{SWAP[1]}", *SETS]) == 0
    return root


def test_swap_edit_brings_the_range_back_to_the_clean_level(takes, edited):
    clean, swapped = takes
    sl = slice(SWAP[0], SWAP[1] + 1)
    clean_err, bad_err, fixed_err = mpjpe(clean)[sl].mean(), mpjpe(swapped)[sl].mean(), mpjpe(edited)[sl].mean()
    assert bad_err > clean_err + 1.5        # the injected swaps hurt (robust DLT alone does not undo them)
    assert abs(fixed_err - clean_err) < 0.2, (clean_err, bad_err, fixed_err)  # mm: the clean level
    for rel in (FILT, LSTM):                # and so do the later stages' outputs
        assert abs(mpjpe(edited, rel)[sl].mean() - mpjpe(clean, rel)[sl].mean()) < 0.3


def test_frames_outside_the_replaced_rows_are_byte_identical(takes, edited):
    _, swapped = takes
    rows = {rel: replaced_rows(swapped, edited, rel) for rel in (RAW, FILT, LSTM, MOT)}
    assert rows[RAW].min() - 5 >= SWAP[0] and rows[RAW].max() - 5 <= SWAP[1]      # TRC data from line 5
    for rel in (FILT, LSTM):  # wider: the filter's margin, the augmenter's memory; never the whole file
        assert rows[rel].min() - 5 >= SWAP[0] - 40 and rows[rel].max() - 5 <= SWAP[1] + 40 + 90
    mot_rows = rows[MOT] - 11                                  # .mot: 11 header lines, a row per frame
    assert len(mot_rows) and mot_rows.min() >= rows[LSTM].min() - 5 and mot_rows.max() <= rows[LSTM].max() - 5
    for rel in (RAW, FILT, LSTM):
        a, b = read_c3d(swapped / rel.replace(".trc", ".c3d")), read_c3d(edited / rel.replace(".trc", ".c3d"))
        keep = np.ones(a.n_frames, bool)
        keep[rows[rel] - 5] = False
        np.testing.assert_array_equal(a.xyz[keep], b.xyz[keep])   # float32 values, bit for bit
        assert not np.array_equal(a.xyz[~keep], b.xyz[~keep])
        assert (swapped / rel.replace(".trc", ".c3d")).stat().st_size == (edited / rel.replace(".trc", ".c3d")).stat().st_size
    a, b = read_reprojection(swapped / "pose-3d/take_0-299_reprojection.npz"), \
        read_reprojection(edited / "pose-3d/take_0-299_reprojection.npz")
    out = (a.frame_numbers < SWAP[0]) | (a.frame_numbers > SWAP[1])
    np.testing.assert_array_equal(a.error_px[out], b.error_px[out])
    np.testing.assert_array_equal(a.used[:, out], b.used[:, out])
    assert np.nanmean(b.error_px[~out]) < np.nanmean(a.error_px[~out]) - 0.5           # px: the swap is gone
    assert np.nanmean(b.error_px[~out]) < np.nanmean(b.error_px[out]) + 0.3           # as low as elsewhere


def test_recompute_matches_a_full_rerun_with_the_edit(takes, edited, tmp_path):
    _, swapped = takes
    full = copy_of(swapped, tmp_path)
    shutil.copy(edited / "openkin/edits.toml", full / "openkin/edits.toml")
    assert openkin.run(full, stages=STAGES[:3], overrides=OVERRIDES, report=False).ok
    for rel, tol_mm in ((RAW, 1e-9), (FILT, 1e-4), (LSTM, 0.02)):
        diff = 1000 * np.nanmax(np.abs(read_trc(edited / rel).xyz - read_trc(full / rel).xyz))
        assert diff <= tol_mm, (rel, diff)
    assert lines(edited / RAW) == lines(full / RAW)  # triangulation is per frame: the same bytes


def test_manifest_records_the_recompute(edited):
    man = Manifest.load(edited)
    for name in STAGES:
        rec = man.done(name)
        assert rec is not None and rec["summary"]["recomputed"]["frames"] == list(SWAP)
    tri = man.done("triangulation")
    assert any(i["path"] == "openkin/edits.toml" for i in tri["inputs"])
    from openkin.fileio import sha256_file

    for e in tri["outputs"]:
        assert e["sha256"] == sha256_file(edited / e["path"]) or (edited / e["path"]).is_dir()
    assert not (edited / "openkin" / "stale").exists()      # nothing set aside: the same files


def test_marker_errors_of_the_recomputed_ik_stay_at_the_full_runs_level(edited):
    import csv

    rows = list(csv.DictReader((edited / "kinematics/take_0-299_filt_butterworth_LSTM_marker_errors.csv").open()))
    rms = np.array([float(r["rms_m"]) for r in rows])
    frames = np.array([int(r["frame"]) for r in rows])
    inside = (frames >= SWAP[0]) & (frames <= SWAP[1])
    assert rms[inside].mean() < 1.5 * rms[~inside].mean()


def test_recompute_without_a_run_is_a_clear_error(tmp_path):
    scene = build_scene(tmp_path / "bare", "clean", n_frames=20, seed=1).path
    assert cli(["recompute", str(scene), "--frames", "1-5"]) == 2
    assert cli(["edit", str(scene), "--swap", "cam09", "--frames", "1-5"]) == 2
    assert cli(["edit", str(scene), "--swap", "cam02"]) == 2          # --frames needed
    assert not (scene / "openkin" / "edits.toml").exists()


@pytest.mark.parametrize("marker_set", ["LSTM", "HALPE_26"])
def test_window_ik_tasks_are_the_full_runs(marker_set):
    """The frame-range IK reads its tasks from the setup files without loading the models: the
    same tasks as the full run's setup (which loads them)."""
    from openkin.augmentation import LOWER_RESPONSES, UPPER_RESPONSES
    from openkin.kinematics import KinematicsOptions, _load_setup, _window_tasks

    names = list(get_skeleton("HALPE_26").names) + (list(LOWER_RESPONSES + UPPER_RESPONSES) if marker_set == "LSTM" else [])
    opts = KinematicsOptions(marker_set=marker_set)
    assert _window_tasks(opts, names) == _load_setup(opts, names).tasks


@pytest.mark.parametrize("lo, hi", [(0, 9), (200, 259), (480, 499)])
def test_splicing_rows_gives_the_file_a_full_write_gives(tmp_path, lo, hi):
    """Splicing frames into a TRC / C3D gives, byte for byte, the file the writers make from the
    changed values (the truth: write_trc / write_c3d of the whole array)."""
    from openkin.formats.c3d import write_c3d
    from openkin.formats.trc import Trc, write_trc
    from openkin.recompute.splice import splice_c3d, splice_trc

    rng = np.random.default_rng(lo)
    names = [f"k{i}" for i in range(12)]
    fn = np.arange(100, 600)
    xyz = rng.normal(size=(500, 12, 3))
    xyz[5:15, 3] = np.nan
    new = xyz.copy()
    new[lo:hi + 1] = rng.normal(size=(hi + 1 - lo, 12, 3))
    new[lo, 2] = np.nan
    old, full = tmp_path / "old", tmp_path / "full"
    for suffix, write in ((".trc", write_trc), (".c3d", write_c3d)):
        write(old / f"x{suffix}", Trc(names, 60, xyz, frame_numbers=fn))   # same name: the TRC header holds it
        write(full / f"x{suffix}", Trc(names, 60, new, frame_numbers=fn))
    rows = Trc(names, 60, new[lo:hi + 1], frame_numbers=fn[lo:hi + 1])
    splice_trc(old / "x.trc", rows)
    splice_c3d(old / "x.c3d", rows.frame_numbers, rows.xyz)
    for suffix in (".trc", ".c3d"):
        assert (old / f"x{suffix}").read_bytes() == (full / f"x{suffix}").read_bytes()

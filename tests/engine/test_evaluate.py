"""Evaluation: metric kernels against known perturbations, file matching, the CLI."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from openkin import cli, metrics
from openkin.errors import OpenKinError
from openkin.evaluate import average, evaluate, format_table, match_frames, to_csv
from openkin.formats.c3d import write_c3d
from openkin.formats.mot import Motion, read_mot, write_mot
from openkin.formats.trc import Trc, read_trc, write_trc, yup_to_zup
from openkin.skeletons import HALPE_26

pytest.importorskip("opensim")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from openkin.synth import build_scene

    return build_scene(tmp_path_factory.mktemp("e") / "walk", "clean", n_frames=240, seed=4).path


@pytest.fixture(scope="module")
def truth(scene):
    return read_trc(scene / "truth" / "keypoints.trc")


def _rot(axis, deg):
    import cv2

    return cv2.Rodrigues(np.asarray(axis, float) / np.linalg.norm(axis) * np.radians(deg))[0]


def _write(path, trc):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_trc(path, trc)
    return path


# ----------------------------------------------------------------------------- kernels
def test_kernels_on_known_perturbations(truth):
    g = truth.xyz
    assert np.all(metrics.mpjpe(g, g) == 0.0)  # exactly
    shifted = g + np.array([0.006, -0.008, 0.0])  # 10 mm
    assert metrics.mpjpe(shifted, g) == pytest.approx(np.full(len(g), 0.010), abs=1e-12)
    assert np.max(metrics.pa_mpjpe(shifted, g)) < 1e-9
    R = _rot([0.3, 1.0, -0.2], 25.0)
    moved = 1.3 * np.einsum("ij,fkj->fki", R, g) + np.array([0.5, 0.1, -2.0])
    assert np.min(metrics.mpjpe(moved, g)) > 0.1
    assert np.max(metrics.pa_mpjpe(moved, g)) < 1e-9  # rotation, scale, translation removed
    assert np.max(metrics.pa_mpjpe(moved, g, scale=False)) > 1e-3  # without scale it is not


def test_gaussian_noise_gives_the_expected_magnitude(truth):
    rng = np.random.default_rng(0)
    sigma = 0.005
    g = truth.xyz
    noisy = g + rng.normal(0, sigma, g.shape)
    expected = sigma * np.sqrt(8 / np.pi)  # mean of a 3D Gaussian vector's norm (Maxwell)
    assert np.mean(metrics.mpjpe(noisy, g)) == pytest.approx(expected, rel=0.01)
    pa = np.mean(metrics.pa_mpjpe(noisy, g))
    assert 0.85 * expected < pa < expected  # Procrustes absorbs a little of the noise


def test_procrustes_ignores_missing_points_and_reflection(truth):
    g = truth.xyz[:5].copy()
    p = g.copy()
    p[:, 3] = np.nan
    aligned = metrics.similarity_align(p, g)
    assert np.isnan(aligned[:, 3]).all() and np.allclose(aligned[:, :3], g[:, :3], atol=1e-12)
    mirrored = g * np.array([1, 1, -1])  # a reflection is not a rotation: error must remain
    assert np.min(metrics.pa_mpjpe(mirrored, g)) > 1e-3
    few = np.full_like(g, np.nan)
    few[:, :2] = g[:, :2]
    assert np.isnan(metrics.pa_mpjpe(few, g)).all()


def test_angle_errors_wrap():
    a = np.array([[179.0, 10.0]])
    b = np.array([[-179.0, 12.0]])
    assert np.allclose(metrics.angle_errors(a, b), [[2.0, 2.0]])
    assert metrics.mpjae(a, b) == pytest.approx([2.0])


def test_match_frames_by_time():
    truth_t = np.arange(100) / 60
    res_t = (np.arange(20, 60) + 0.1) / 60
    ri, ti = match_frames(res_t, truth_t, 60.0)
    assert np.array_equal(ti, np.arange(20, 60)) and len(ri) == 40
    ri, ti = match_frames(res_t + 0.4 / 60, truth_t, 60.0)
    assert len(ri) == 0  # half a frame apart is no match


# ----------------------------------------------------------------------------- files and trials
def test_truth_against_itself_is_zero(scene):
    rows = evaluate(scene / "truth", scene)
    (row,) = rows
    assert row.mpjpe == 0.0 and row.mpjpe_std == 0.0 and row.mpjae == 0.0
    assert row.pa_mpjpe < 1e-9 and row.frames_pct == 100.0 and len(row.markers) == 26
    assert len(row.coordinates) == 37  # 40 coordinates minus the 3 pelvis translations


def test_offset_project_trimmed_and_angles(scene, truth, tmp_path):
    """A project folder with a 10 mm-offset, trimmed TRC and angles +2 degrees."""
    proj = tmp_path / "walk"
    keep = slice(40, 200)
    trc = Trc(truth.marker_names, truth.rate, truth.xyz[keep] + [0.0, 0.01, 0.0],
              frame_numbers=truth.frame_numbers[keep])
    _write(proj / "pose-3d" / "walk_40-200.trc", trc)
    _write(proj / "pose-3d" / "walk_40-200_filt_butterworth.trc", trc)  # filtered one preferred
    mot = read_mot(scene / "truth" / "angles.mot")
    values = mot.values + np.where([n.endswith(("_tx", "_ty", "_tz")) for n in mot.names], 0.05, 2.0)
    (proj / "kinematics").mkdir()
    write_mot(proj / "kinematics" / "walk.mot", Motion(mot.names, mot.times, values))
    (row,) = evaluate(proj, scene)
    assert row.mpjpe == pytest.approx(10.0, abs=1e-6) and row.mpjpe_std < 1e-6
    assert row.pa_mpjpe < 1e-6
    assert row.mpjae == pytest.approx(2.0, abs=1e-6) and row.mpjae_std < 1e-6
    assert row.frames_pct == pytest.approx(100 * 160 / 240)
    assert row.result_files[0].endswith("_filt_butterworth.trc")
    assert row.per_coordinate_deg["knee_angle_r"]["rmse"] == pytest.approx(2.0, abs=1e-6)
    (flex,) = evaluate(proj, scene, coordinates=["flexion"])
    assert len(flex.coordinates) == 6 and flex.mpjae == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(OpenKinError, match="knee_angle_x"):
        evaluate(proj, scene, coordinates=["knee_angle_x"])


def test_missing_frames_and_markers(truth, scene, tmp_path):
    xyz = truth.xyz.copy()
    xyz[:60] = np.nan  # first quarter not reconstructed
    xyz[:, HALPE_26.index("Nose")] = np.nan
    path = _write(tmp_path / "r.trc", Trc(truth.marker_names, truth.rate, xyz))
    (row,) = evaluate(path, scene)
    assert row.frames_pct == pytest.approx(75.0) and row.mpjpe == 0.0
    assert np.isnan(row.per_marker_mm["Nose"])


def test_time_shift_auto_recovers_renumbered_frames(truth, scene, tmp_path):
    trc = Trc(truth.marker_names, truth.rate, truth.xyz[30:])  # renumbered from 0: 30 frames early
    path = _write(tmp_path / "shifted.trc", trc)
    assert evaluate(path, scene)[0].mpjpe > 10.0  # compared at the wrong times
    (row,) = evaluate(path, scene, time_shift="auto")
    assert row.time_shift_frames == 30 and row.mpjpe == 0.0


def test_c3d_in_zup_is_detected(truth, scene, tmp_path):
    zup = Trc(truth.marker_names, truth.rate, yup_to_zup(truth.xyz))
    path = tmp_path / "r.c3d"
    write_c3d(path, zup)
    (row,) = evaluate(path, scene)
    assert row.axes == "zup" and row.mpjpe < 1e-3  # C3D stores float32 millimetres


def test_people_are_paired_with_the_truth(tmp_path):
    rng = np.random.default_rng(1)
    names = list(HALPE_26.names)
    a = rng.normal(0, 0.3, (50, 26, 3))
    b = a + [2.0, 0.0, 0.0]
    truth_dir = tmp_path / "scene" / "truth"
    _write(truth_dir / "keypoints.trc", Trc(names, 60, a))
    _write(truth_dir / "keypoints_P2.trc", Trc(names, 60, b))
    res = tmp_path / "res"
    _write(res / "pose-3d" / "t_P1.trc", Trc(names, 60, b + 0.001))  # listed in the other order
    _write(res / "pose-3d" / "t_P2.trc", Trc(names, 60, a + [0.002, 0, 0]))
    rows = evaluate(res, tmp_path / "scene")
    assert [r.trial for r in rows] == ["scene/P1", "scene/P2"]
    assert rows[0].mpjpe == pytest.approx(2.0) and rows[1].mpjpe == pytest.approx(np.sqrt(3))
    assert rows[0].id_switches == 0
    swapped = np.concatenate([a[:20], b[20:]])  # the tracks exchange people at frame 20
    other = np.concatenate([b[:20], a[20:]])
    _write(res / "pose-3d" / "t_P1.trc", Trc(names, 60, swapped))
    _write(res / "pose-3d" / "t_P2.trc", Trc(names, 60, other))
    rows = evaluate(res, tmp_path / "scene")
    assert rows[0].id_switches == 2 and rows[1].id_switches == 2  # one switch per track, per trial
    assert "id_switches" in to_csv(rows).splitlines()[0]
    assert average(rows).id_switches == 2


def test_session_of_trials_with_average_row(scene, tmp_path):
    truth_root, result_root = tmp_path / "truths", tmp_path / "results"
    for name, off in (("t1", 0.004), ("t2", 0.008)):
        shutil.copytree(scene / "truth", truth_root / name / "truth")
        t = read_trc(scene / "truth" / "keypoints.trc")
        _write(result_root / name / "pose-3d" / f"{name}.trc", Trc(t.marker_names, t.rate, t.xyz + [off, 0, 0]))
    shutil.copytree(scene / "truth", truth_root / "t3" / "truth")  # no result for t3
    rows = evaluate(result_root, truth_root)
    assert [r.trial for r in rows] == ["t1", "t2", "t3"]
    assert rows[0].mpjpe == pytest.approx(4.0) and rows[1].mpjpe == pytest.approx(8.0)
    assert rows[2].frames_pct == 0.0 and np.isnan(rows[2].mpjpe)
    table = format_table(rows)
    assert "average" in table.splitlines()[-1] and "6.00" in table.splitlines()[-1]
    csv_text = to_csv(rows).splitlines()
    assert csv_text[0].startswith("trial,mpjpe") and csv_text[-1].startswith("average,6.0")


def test_bad_inputs_are_clear(scene, tmp_path):
    other = _write(tmp_path / "other.trc", Trc(["A", "B"], 60, np.zeros((10, 2, 3))))
    with pytest.raises(OpenKinError, match="no marker name in common"):
        evaluate(other, scene)
    with pytest.raises(OpenKinError, match="does not exist"):
        evaluate(tmp_path / "nope", scene)
    late = _write(tmp_path / "late.trc", Trc(list(HALPE_26.names), 60, np.zeros((10, 26, 3)),
                                              frame_numbers=np.arange(5000, 5010)))
    with pytest.raises(OpenKinError, match="time-shift"):
        evaluate(late, scene)
    (tmp_path / "empty_project").mkdir()
    with pytest.raises(OpenKinError, match="run the pipeline first"):
        evaluate(tmp_path / "empty_project", scene)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(OpenKinError, match=r"\.txt"):
        evaluate(tmp_path / "x.txt", scene)


def test_cli_table_json_csv(scene, tmp_path, capsys):
    out_json, out_csv = tmp_path / "e.json", tmp_path / "e.csv"
    assert cli.main(["evaluate", str(scene / "truth"), str(scene), "--json", str(out_json),
                     "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    assert "MPJPE [mm]" in printed and "PA-MPJPE [mm]" in printed and "MPJAE [deg]" in printed
    doc = json.loads(out_json.read_text())
    assert doc["trials"][0]["mpjpe"] == 0.0 and doc["average"]["frames_pct"] == 100.0
    assert out_csv.read_text().splitlines()[1].startswith("walk,0.0")
    assert cli.main(["evaluate", str(tmp_path / "missing"), str(scene)]) == 2


def test_cli_compares_several_methods(scene, truth, tmp_path, capsys):
    better = _write(tmp_path / "a" / "ours.trc", Trc(truth.marker_names, truth.rate, truth.xyz + [0.002, 0, 0]))
    worse = _write(tmp_path / "b" / "theirs.trc", Trc(truth.marker_names, truth.rate, truth.xyz + [0.005, 0, 0]))
    out_json = tmp_path / "cmp.json"
    assert cli.main(["evaluate", str(better), str(worse), str(scene), "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["trial", "method"]
    assert [ln.split()[1] for ln in lines if ln.startswith("average")] == ["ours.trc", "theirs.trc"]
    doc = json.loads(out_json.read_text())
    assert doc["methods"]["ours.trc"]["average"]["mpjpe"] == pytest.approx(2.0)
    assert doc["methods"]["theirs.trc"]["trials"][0]["mpjpe"] == pytest.approx(5.0)
    assert cli.main(["evaluate", str(scene)]) == 2  # the truth alone is not enough

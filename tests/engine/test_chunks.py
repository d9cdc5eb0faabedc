"""Time chunks of a long take (:mod:`openkin.chunks`, :mod:`openkin.kinematics.chunked`), in this process.

- the plan: the kept frames of the chunks tile the take once, in order; each chunk's processed
  frames hold its kept ones, within the take; boundaries on the alignment grid (property test);
- IK: a take whose subject turns one and a half times, solved in chunks, equals the whole-take
  solve (tolerance 1e-6 deg / 1e-9 m; observed: equal to the bit) — the chunks start on the
  coarse pass's grid and the heading is carried across the seams by whole turns;
- seams: two chunks' solutions a whole turn apart on a free rotation are brought together, a
  translation or a pair that is not a whole turn apart is left alone (hand-made values).

Serial vs Dask (a LocalCluster of two processes): tests/e2e/test_dask_chunks.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openkin import chunks
from openkin.assets import asset_path
from openkin.kinematics import chunked, ik, with_priors
from openkin.kinematics.setup import read_ik_tasks, setup_files

from kinematics_truth import _couple, marker_positions, motion


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 5000), size=st.integers(1, 2000), overlap=st.integers(0, 200), align=st.integers(1, 8),
       first=st.integers(0, 100))
def test_plan_tiles_the_take(n, size, overlap, align, first):
    plan = chunks.plan(n, size, overlap, align, first)
    assert plan[0].keep == first and plan[-1].stop_keep == first + n
    assert len(plan) <= max(1, n // size)
    for a, b in zip(plan, plan[1:]):
        assert a.stop_keep == b.keep  # no gap, no frame kept twice
    for c in plan:
        assert first <= c.start <= c.keep < c.stop_keep <= c.stop <= first + n
        assert c.start == max(first, c.keep - overlap) and c.stop == min(first + n, c.stop_keep + overlap)
        assert (c.keep - first) % align == 0
        assert c.kept == slice(c.keep - c.start, c.stop_keep - c.start)


def test_run_tasks_here_in_order():
    assert chunks.where() == "here"
    assert chunks.run_tasks(divmod, [(7, 2), (9, 4), (1, 1)], "t") == [(3, 1), (2, 1), (1, 0)]


def test_whole_turns_only_for_rotations_a_turn_apart():
    a = np.zeros((5, 4))
    b = np.zeros((5, 4))
    b[:, 0] = 2 * np.pi + 0.01            # rotation, one turn (+ solver noise)
    b[:, 1] = -4 * np.pi                  # rotation, minus two turns
    b[:, 2] = 2 * np.pi                   # translation: never shifted
    b[:, 3] = 2.0                         # rotation, not a whole turn: another pose, left alone
    shift = chunked.whole_turns(a, b, [True, True, False, True])
    np.testing.assert_allclose(shift, [2 * np.pi, -4 * np.pi, 0, 0])


def turning_take(n: int, tmp_path, model_file: str = "Model_Pose2Sim_simple.osim"):
    """An IK job: a generic model (Halpe26 markers) walking and turning 1.5 times, markers with
    1 cm noise; the coordinates (n, C) it was made from. (Also tests/bench/bench_chunks.py's take.)"""
    import opensim as osim

    osim.Logger.setLevelString("error")
    model = osim.Model(str(asset_path(f"OpenSim_Setup/{model_file}")))
    model.set_MarkerSet(osim.MarkerSet(str(asset_path("OpenSim_Setup/Markers_Halpe26.xml"))))
    state = model.initSystem()
    cs = model.getCoordinateSet()
    coords = [cs.get(i) for i in range(cs.getSize())]
    names = [c.getName() for c in coords]
    q = motion(names, n, 60.0, False)
    q[:, names.index("pelvis_rotation")] += np.linspace(0, 3 * np.pi, n)
    _couple(osim, model, names, q)
    markers, xyz = marker_positions(model, state, coords, q)
    xyz += np.random.default_rng(0).normal(0, 0.01, xyz.shape)
    path = str(tmp_path / "model.osim")
    model.printToXML(path)
    tasks = with_priors(read_ik_tasks(setup_files("HALPE_26")[1]))
    return ik.IkJob(path, [m.getName() for m in markers], xyz, np.arange(n) / 60, tasks.marker_weights,
                    tasks.coordinate_tasks), q


def test_ik_in_chunks_equals_the_whole_take(tmp_path):
    pytest.importorskip("opensim")
    job, truth = turning_take(600, tmp_path)
    whole = ik.solve_openkin(job)
    parts = chunked.solve(job, ik.solve_openkin, size=150, long_take=0)  # 4 chunks, 48 frames of overlap
    assert parts.q.shape == whole.q.shape == truth.shape
    rot = np.array(whole.rotational)
    assert np.degrees(np.abs(parts.q[:, rot] - whole.q[:, rot])).max() < 1e-6
    assert np.abs(parts.q[:, ~rot] - whole.q[:, ~rot]).max() < 1e-9
    np.testing.assert_allclose(parts.rms, whole.rms, atol=1e-9)
    heading = parts.q[:, list(whole.coordinate_names).index("pelvis_rotation")]
    assert heading[-1] - heading[0] > 2.5 * np.pi  # carried across the seams, not wrapped
    assert np.abs(np.diff(heading)).max() < 1.0  # noise, never a turn (2 pi) at a seam


def test_a_short_take_is_solved_whole(tmp_path, monkeypatch):
    pytest.importorskip("opensim")
    job, _ = turning_take(40, tmp_path)
    calls = []
    monkeypatch.setattr(chunks, "run_tasks", lambda *a: calls.append(a))
    r = chunked.solve(job, ik.solve_openkin)  # 40 frames <= LONG_TAKE
    assert calls == [] and r.q.shape[0] == 40


def test_pose_chunks_end_a_truncated_video_where_one_pass_does(tmp_path, monkeypatch):
    """A byte-truncated MJPG AVI (real demo frames) of 24 frames: in chunks of 4 frames the same
    frames are written, with the same count of frames lost, as in one pass (the decoder finds the
    damage in whichever chunk holds it; the chunks after it are dropped)."""
    import json
    import shutil

    import cv2

    from openkin.config import load_config
    from openkin.formats.openpose import read_openpose_dir
    from openkin.pose import chunked as pose_chunked
    from openkin.pose import run_stage
    from openkin.project import ProjectPaths

    cap = cv2.VideoCapture(str(asset_path("Demo_SinglePerson/videos/cam01.mp4")))
    frames = [cap.read()[1] for _ in range(24)]
    cap.release()
    w = cv2.VideoWriter(str(tmp_path / "full.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 60, frames[0].shape[1::-1])
    for f in frames:
        w.write(f)
    w.release()
    data = (tmp_path / "full.avi").read_bytes()
    out = {}
    for name, long_video in (("whole", 10 ** 9), ("chunks", 0)):
        root = tmp_path / name
        (root / "videos").mkdir(parents=True)
        (root / "videos" / "cam01.avi").write_bytes(data[: int(len(data) * 0.6)])
        paths = ProjectPaths(root)
        config = load_config(root, overrides={"project": {"frame_range": "all"},
                                              "pose": {"pose_backend": "offline", "save_video": "none",
                                                       "parallel_workers_pose": False}})
        monkeypatch.setattr(pose_chunked, "CHUNK", 4)
        monkeypatch.setattr(pose_chunked, "LONG_VIDEO", long_video)
        run_stage(config, paths)
        numbers = read_openpose_dir(paths.pose / "cam01_json")[1]
        cam = json.loads((paths.reports / "pose_summary.json").read_text())["cameras"][0]
        out[name] = (list(numbers), cam["frames"], cam["frames_lost"], cam["expected_frames"])
        shutil.rmtree(root / "videos")
    assert 4 < len(out["whole"][0]) < 24 and out["whole"][2] > 0  # the damage is past the first chunk
    assert out["chunks"] == out["whole"]

"""Person association on synth ground-truth scenes: who is who, stable over time."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from openkin import association
from openkin.config import load_config
from openkin.formats.openpose import read_openpose_dir
from openkin.project import ProjectPaths
from openkin.synth.build import build_scene
from openkin.inputs import read_views, skeleton_of
from openkin.calibration import find_calibration


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    return build_scene(tmp_path_factory.mktemp("assoc") / "multi", "multi", n_frames=240, seed=1).path


def _truth_slots(scene, cams):
    """``(C,F,P)`` truth person of each JSON slot (-1 empty), from the scene's corruption record."""
    z = np.load(scene / "truth" / "corruptions.npz")
    return np.stack([z[f"{c}/order"] for c in cams])


def _inputs(scene, multi_person=True):
    cfg = load_config(scene, overrides={"project": {"multi_person": multi_person}})
    paths = ProjectPaths(scene)
    views = read_views(paths.pose, find_calibration(paths))
    params = association.params_from_config(cfg, list(skeleton_of(cfg).names))
    return cfg, paths, views, params


def _who(choice, truth):
    """Truth person behind each chosen slot: ``choice (T,C,F)`` → ``(T,C,F)`` (-1 none)."""
    T = choice.shape[0]
    out = np.full(choice.shape, -1)
    for t in range(T):
        picked = np.take_along_axis(truth, np.maximum(choice[t], 0)[..., None], axis=2)[..., 0]
        out[t] = np.where(choice[t] >= 0, picked, -1)
    return out


def test_multi_person_ids_stable_through_the_crossing(multi):
    cfg, paths, views, params = _inputs(multi)
    assoc = association.associate(views, params, multi=True)
    assert assoc.choice.shape[0] == 2
    who = _who(assoc.choice, _truth_slots(multi, [c.name for c in views.cameras]))
    for t in range(2):
        seen = who[t][who[t] >= 0]
        person = np.bincount(seen).argmax()
        assert (seen == person).mean() > 0.995, f"person {t} mixes truth people"   # 0 identity switches
        # frame by frame, the 3D identity never changes
        per_frame = np.array([np.bincount(w[w >= 0], minlength=2).argmax() if (w >= 0).any() else -1
                              for w in who[t].T])
        assert set(per_frame[per_frame >= 0]) == {person}
    assert {np.bincount(who[t][who[t] >= 0]).argmax() for t in range(2)} == {0, 1}


def test_single_person_mode_keeps_one_person(multi):
    cfg, paths, views, params = _inputs(multi, multi_person=False)
    assoc = association.associate(views, params, multi=False)
    assert assoc.choice.shape[0] == 1
    who = _who(assoc.choice, _truth_slots(multi, [c.name for c in views.cameras]))[0]
    seen = who[who >= 0]
    person = np.bincount(seen).argmax()
    assert (seen == person).mean() > 0.97  # the same person, camera after camera, frame after frame
    assert (assoc.choice[0] >= 0).mean() > 0.5


def test_person_leaving_and_coming_back(multi):
    cfg, paths, views, params = _inputs(multi)
    truth = _truth_slots(multi, [c.name for c in views.cameras])
    kp = views.keypoints.copy()
    away = np.zeros(kp.shape[1], bool)
    away[100:140] = True                                      # person 1 leaves for 40 frames
    gone = (truth == 1) & away[None, :, None]
    kp[gone] = np.nan
    left_views = dataclasses.replace(views, keypoints=kp)
    back = association.associate(left_views, params, multi=True)
    who = _who(back.choice, truth)
    owner = [np.bincount(w[w >= 0]).argmax() for w in who]
    t1 = owner.index(1)
    assert len(back.choice) == 2                               # within max_unseen_frames: same identity
    assert not (back.choice[t1][:, 100:140] >= 0).any()
    assert (back.choice[t1][:, 140:] >= 0).any()
    short = association.associate(left_views, dataclasses.replace(params, max_unseen_frames=10), multi=True)
    owners = [np.bincount(w[w >= 0]).argmax() for w in _who(short.choice, truth)]
    assert len(short.choice) == 3 and sorted(owners) == [0, 1, 1]   # after a long absence: a new identity


def _run_in_context(cfg, paths):
    """The stage as ``openkin run`` runs it; returns the run context (it holds the association)."""
    from openkin.context import run_alone

    return run_alone("association", association.run, cfg, paths, None)


def test_stage_writes_pose2sim_layout_and_keeps_memory_copy(multi):
    cfg, paths, views, params = _inputs(multi)
    ctx = _run_in_context(cfg, paths)
    folders = sorted(p.name for p in paths.pose_associated.iterdir() if p.is_dir())
    assert folders == ["cam01_json", "cam02_json", "cam03_json", "cam04_json"]
    kp, frames, ids = read_openpose_dir(paths.pose_associated / "cam01_json")
    assert len(frames) == 240 and kp.shape[1] == 2 and set(np.unique(ids)) <= {-1, 0, 1}
    cached = ctx.association
    assert cached is not None
    np.testing.assert_allclose(kp, np.stack([cached.person_keypoints(t)[0] for t in range(2)], axis=1),
                               atol=1e-3)  # written with 3 decimals (px) and 4 (confidence)
    assert [o["path"] for o in ctx.outputs] == [f"pose-associated/{f}" for f in folders]
    assert ctx.summary["people"] == 2


def test_single_detection_per_camera_is_kept(tmp_path):
    scene = build_scene(tmp_path / "one", "mild", n_frames=40, seed=2).path
    cfg, paths, views, params = _inputs(scene, multi_person=False)
    assoc = association.associate(views, params, multi=False)
    present = np.isfinite(views.keypoints[:, :, 0, :, 0]).any(-1)
    assert ((assoc.choice[0] == 0) == present).all()


def _frame_file(folder, frame):
    return next(folder.glob(f"*_{frame:06d}.json"))


@pytest.mark.parametrize("links_work", [True, False])
def test_unchanged_frames_are_linked_and_read_back_the_same(tmp_path, monkeypatch, links_work):
    import json
    import os

    scene = build_scene(tmp_path / "link", "mild", n_frames=30, seed=3).path
    cfg = load_config(scene, overrides={"project": {"multi_person": False}})
    paths = ProjectPaths(scene)
    src = paths.pose / "cam02_json"
    extra = _frame_file(src, 7)
    data = json.loads(extra.read_text())
    far = dict(data["people"][0], pose_keypoints_2d=[v + 400.0 if i % 3 != 2 else v for i, v in
                                                      enumerate(data["people"][0]["pose_keypoints_2d"])])
    extra.write_text(json.dumps({"version": 1.3, "people": [far, data["people"][0]]}))  # a second person first
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    if not links_work:
        def no_link(*args):
            raise OSError(1, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_link)
    for _ in range(2):  # the second run replaces a folder of links
        ctx = _run_in_context(cfg, paths)
    out = paths.pose_associated / "cam02_json"
    linked = [os.path.samefile(_frame_file(out, f), _frame_file(src, f)) for f in range(30)]
    assert linked == ([f != 7 for f in range(30)] if links_work else [False] * 30)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    assert len(json.loads(_frame_file(out, 7).read_text())["people"]) == 1   # the person, moved to slot 0
    cached = ctx.association
    kp, frames, _ = read_openpose_dir(out)
    assert cached.choice[0, 1, 7] == 1 and frames.tolist() == list(range(30)) and kp.shape[1] == 1
    np.testing.assert_allclose(kp[:, 0], cached.person_keypoints(0)[1], atol=1e-3)

"""16 and 32 cameras through synchronization, association and triangulation with the same
correctness as 4 (Pose2Sim's triangulation hangs at 16). Truth: the synth scene's own record
(the true time offsets, the true 3D keypoints of each person). Association accuracy is judged
in 3D: a person mixed up in any camera shows as a larger MPJPE, fewer frames or an identity
switch of the triangulated tracks against the truth people."""
from __future__ import annotations

import tomllib

import numpy as np
import pytest

from openkin import association, synchronization, triangulation
from openkin.config import load_config
from openkin.evaluate import evaluate_trial
from openkin.project import ProjectPaths
from openkin.synth.build import build_scene

FRAMES = 120
OFFSETS = 3.0  # frames, fractional, per camera


def _run(tmp_path_factory, cameras: int, offsets: float) -> dict:
    scene = build_scene(tmp_path_factory.mktemp(f"cams{cameras}") / "scene", "multi", n_frames=FRAMES, seed=4,
                        cameras=cameras, max_offset_frames=offsets).path
    config = load_config(scene, overrides={"project": {"multi_person": True}, "filtering": {"save_filt_plots": False}})
    paths = ProjectPaths(scene)
    if offsets:
        synchronization.run_stage(config, paths)
    association.run_stage(config, paths)
    triangulation.run_stage(config, paths)
    out = {"scene": scene, "paths": paths, "rows": evaluate_trial("t", paths.pose_3d, scene / "truth")}
    if offsets:
        truth = tomllib.loads((scene / "truth" / "offsets.toml").read_text())["frames"]
        got = {c: v["offset_frames"] for c, v in
               tomllib.loads((paths.pose_sync / "offsets.toml").read_text())["cameras"].items()}
        ref = sorted(truth)[0]
        out["offset_error"] = max(abs((got[c] - got[ref]) - (truth[c] - truth[ref])) for c in truth)
    return out


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    return _run(tmp_path_factory, 4, OFFSETS)


@pytest.mark.parametrize("cameras", [16, 32])
def test_many_cameras_as_correct_as_four(tmp_path_factory, four, cameras):
    many = _run(tmp_path_factory, cameras, OFFSETS if cameras == 16 else 0.0)
    assert len(many["rows"]) == 2 and len(four["rows"]) == 2
    for m, f in zip(many["rows"], four["rows"]):
        assert m.frames_pct >= f.frames_pct - 1.0
        assert m.mpjpe <= max(f.mpjpe + 2.0, 10.0), (cameras, m.mpjpe, f.mpjpe)   # mm
        assert m.id_switches == 0
    if "offset_error" in many:
        assert many["offset_error"] <= max(four["offset_error"], 0.5)  # frames

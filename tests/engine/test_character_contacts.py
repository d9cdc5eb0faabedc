"""Foot contacts (openkin.character.contacts) against contacts known by construction.

Synthetic truth: openkin.synth's walk (joint angles of ``synth.motion.generate_motion``) on
Pose2Sim's simple model, with the pelvis moved so that the supporting foot does not slide:
on every frame the lowest of the four foot points (heels, toe tips) is put on the floor
(z = 0) and the pelvis' horizontal motion is minus that point's own velocity. The supporting
foot is thus planted by construction (truth: contact), a foot more than 2 cm above the floor
is in the air (truth: no contact); other frames (the other foot near the floor) are not
scored. Supports shorter than 0.1 s are the generated swing foot grazing the floor, not
steps: not scored either. The detector sees the skeleton of the moved motion, with its
default thresholds, with and without IK-like noise on the joint angles."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

RATE = 60
SWING = 0.02          # m: a foot higher than this is in the air
MIN_STEP = 0.1        # s: shorter supports are not steps


def _skeleton(tree, q, times):
    from openkin.character.motion import body_motion_from_tree
    from openkin.character.skeleton import skeleton_from_motion

    return skeleton_from_motion(body_motion_from_tree(tree, q, times))


def _feet(sk) -> np.ndarray:
    """(F, 2 feet L/R, 2 points heel/toe, 3)."""
    return np.stack([np.stack([sk.landmarks[f"heel.{s}"], sk.landmarks[f"toe.{s}"]], 1) for s in "LR"], 1)


def planted_walk(seed: int, seconds: float = 6.0):
    """(tree, q (F, C) with the planted pelvis, times (F,), support foot (F,) 0=L 1=R)."""
    from openkin.assets import asset_path
    from openkin.character.motion import motion_coordinates, read_tree_file
    from openkin.synth.motion import MotionSpec, generate_motion

    times = np.arange(int(seconds * RATE)) / RATE
    spec = MotionSpec(radii=(2.0, 2.0), schedule=(("walk", seconds),), seed=seed)
    coords = generate_motion(times, spec)
    for n in ("pelvis_tx", "pelvis_ty", "pelvis_tz"):
        coords[n] = np.zeros_like(times)
    tree = read_tree_file(asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim"))
    names = list(coords)
    q = motion_coordinates(tree, names, np.stack([coords[n] for n in names], 1), False)
    pts = _feet(_skeleton(tree, q, times))
    F = len(times)
    lowest = np.argmin(pts[..., 2].reshape(F, 4), axis=1)
    foot, point = lowest // 2, lowest % 2
    v = np.gradient(pts, times, axis=0)[np.arange(F), foot, point]
    shift = -np.concatenate([[np.zeros(3)], np.cumsum(0.5 * (v[1:] + v[:-1]) * np.diff(times)[:, None], 0)])
    shift[:, 2] = -pts[..., 2].reshape(F, 4).min(1)
    # OpenSim's ground is Y-up: world (x, y, z) = (pelvis_tz, pelvis_tx, pelvis_ty)
    for world_axis, coord in enumerate(("pelvis_tz", "pelvis_tx", "pelvis_ty")):
        q[:, tree.coord_names.index(coord)] += shift[:, world_axis]
    return tree, q, times, foot


def score(found: dict, support: np.ndarray, sk, times) -> dict:
    """Frame precision/recall over scored frames, and onset/offset errors (frames) per step."""
    from openkin.character.contacts import runs

    tp = fp = fn = 0
    onsets, offsets = [], []
    min_frames = int(round(MIN_STEP * RATE))
    for i, s in enumerate("LR"):
        low = np.minimum(sk.landmarks[f"heel.{s}"][:, 2], sk.landmarks[f"toe.{s}"][:, 2])
        steps = np.zeros(len(times), bool)
        for a, b in runs(support == i):
            if b - a + 1 >= min_frames:
                steps[a:b + 1] = True
                hits = [(c, d) for c, d in runs(found[s]) if c <= b and d >= a]
                if hits:
                    onsets.append(hits[0][0] - a)
                    offsets.append(hits[-1][1] - b)
        air = low > SWING
        tp += int((found[s] & steps).sum())
        fn += int((~found[s] & steps).sum())
        fp += int((found[s] & air).sum())
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1), "steps": len(onsets),
            "onset": np.array(onsets), "offset": np.array(offsets)}


@pytest.mark.parametrize("seed", [1, 3])
@pytest.mark.parametrize("noise_deg, worst", [(0.0, 3), (1.0, 12)])
def test_contacts_on_a_planted_synthetic_walk(seed, noise_deg, worst):
    """Frames at 60 fps. Goals: precision ≥ 0.95, recall ≥ 0.85, 90 % of onsets and offsets within
    3 frames (50 ms); the worst within 3 frames without noise (with noise a step may end early)."""
    from openkin.character.contacts import foot_contacts

    tree, q, times, support = planted_walk(seed)
    clean_sk = _skeleton(tree, q, times)
    planted = _feet(clean_sk)[np.arange(len(times)), support]
    assert np.abs(np.min(planted[..., 2], axis=1)).max() < 1e-9            # the support foot is on the floor
    if noise_deg:   # IK-like errors: smooth (0.1 s) random errors of this RMS on every rotational coordinate
        from scipy.ndimage import gaussian_filter1d

        rng = np.random.default_rng(seed)
        rot = np.flatnonzero(tree.rotational)
        err = gaussian_filter1d(rng.normal(0, 1, (len(q), len(rot))), 0.1 * RATE, axis=0)
        q = q.copy()
        q[:, rot] += np.radians(noise_deg) * err / err.std(axis=0)
    sk = _skeleton(tree, q, times)
    found = foot_contacts(sk.landmarks, times)
    s = score(found, support, clean_sk, times)
    print(f"seed {seed} noise {noise_deg}°: precision {s['precision']:.3f} recall {s['recall']:.3f} steps {s['steps']} "
          f"onset frames mean {s['onset'].mean():+.1f} max|{np.abs(s['onset']).max()}| "
          f"offset mean {s['offset'].mean():+.1f} max|{np.abs(s['offset']).max()}|")
    assert s["steps"] >= 8
    assert s["precision"] >= 0.95 and s["recall"] >= 0.85
    events = np.abs(np.concatenate([s["onset"], s["offset"]]))
    assert np.percentile(events, 90) <= 3 and events.max() <= worst


def test_contacts_clean_and_intervals():
    from openkin.character.contacts import clean, contact_intervals, runs

    on = np.array([0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1], bool)
    assert runs(on) == [(1, 1), (3, 5), (7, 10), (14, 15)]
    out = clean(on, min_frames=2, max_gap_frames=1)
    assert runs(out) == [(3, 10), (14, 15)]
    assert contact_intervals(out, np.arange(16) / 10.0) == [(0.3, 1.0), (1.4, 1.5)]


def _demo_kinematics(tmp: Path) -> tuple[Path, Path]:
    """The demo's scaled model and IK motion: from $OPENKIN_DEMO_PROJECT (a finished demo run,
    copied), else `openkin demo --no-blend` (offline pose backend) run here."""
    given = os.environ.get("OPENKIN_DEMO_PROJECT")
    if given:
        shutil.copytree(Path(given) / "kinematics", tmp / "kinematics")
    else:
        out = subprocess.run([sys.executable, "-m", "openkin.cli", "demo", "--out", str(tmp / "project"),
                              "--no-progress", "--no-blend", "--set", "pose.pose_backend='offline'"],
                             capture_output=True, text=True, timeout=1800)
        assert out.returncode == 0, out.stderr[-2000:]
        tmp = tmp / "project"
    kin = tmp / "kinematics"
    return next(kin.glob("*.osim")), next(kin.glob("*.mot"))


def test_contacts_and_joints_on_the_demo(tmp_path):
    """Pose2Sim's demo (a real capture): the skeleton's joints vs the model's joint centres (the
    engine's FK, checked against OpenSim's API in test_character) and the contacts found, printed; the subject keeps its left foot down while the right one lifts."""
    from openkin.character.contacts import contact_intervals, foot_contacts
    from openkin.character.skeleton import JOINT_HEADS, animation_skeleton

    osim, mot = _demo_kinematics(tmp_path)
    sk = animation_skeleton(osim, mot)
    heads = sk.posed_heads()
    worst = {j: float(np.linalg.norm(heads[:, sk.index(b)] - sk.landmarks[j], axis=1).max() * 1000)
             for j, b in JOINT_HEADS.items()}
    print("demo joints max mm:", {k: round(v, 3) for k, v in worst.items()})
    found = foot_contacts(sk.landmarks, sk.times)
    for side, on in found.items():
        print(f"demo contacts {side}: {[(round(a, 2), round(b, 2)) for a, b in contact_intervals(on, sk.times)]} "
              f"({on.mean():.0%} of the frames)")
    for j, v in worst.items():   # knee, ankle: the walker knee's centre slides along the femur (see test_character)
        side = j[-1]
        slide = 500 * np.ptp(np.linalg.norm(sk.landmarks[f"knee.{side}"] - sk.landmarks[f"hip.{side}"], axis=1))
        assert v <= (max(1.0, slide + 1e-3) if j.startswith(("knee", "ankle")) else 1.0), (j, v, slide)
    assert found["L"].mean() > 0.6 and found["R"].mean() < found["L"].mean()

"""Done-when of ``openkin export`` (issue #13): on a processed project (Pose2Sim's demo videos and
calibration with a synthetic person's 3D keypoints and IK as results), ``openkin export
--rig mixamo --format fbx``, ``--rig rigify --format glb`` and ``--rig skeleton --format bvh``
each write a file that re-imports into an empty ``bpy`` scene (importer defaults) as one
armature with the rig's bones and one action over the take at the capture's fps, whose hips
follow the subject: the hips path against the midpoint of the TRC's hips (an independent
truth: the triangulated keypoints, not the IK), up to the rig's height scale and offset."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bpy
import numpy as np
import pytest

from addon_helpers import ROOT, demo_project, synth_project  # noqa: F401  (fixtures)
from export_helpers import import_into_empty_scene, world_heads

HIPS = {"mixamo": "mixamorig:Hips", "rigify": "DEF-spine", "skeleton": "hips"}


def _export(project: Path, rig: str, fmt: str, out: Path) -> Path:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "engine"))
    r = subprocess.run([sys.executable, "-m", "openkin.cli", "export", str(project), "--rig", rig, "--format", fmt,
                        "--out", str(out)], capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    contacts = out.with_name(f"{out.stem}_contacts.csv")
    assert r.stdout.split() == [str(out), str(contacts)]
    return out


def _subject_hips(project: Path) -> tuple[np.ndarray, float]:
    """(F, 3) midpoint of the TRC's LHip and RHip in the Z-up world, and the TRC's rate."""
    from openkin.formats.trc import read_trc
    from openkin.geometry.axes import yup_to_zup

    (trc_path,) = sorted((project / "pose-3d").glob("*.trc"))
    trc = read_trc(trc_path)
    n = trc.marker_names
    return yup_to_zup((trc.xyz[:, n.index("LHip")] + trc.xyz[:, n.index("RHip")]) / 2), trc.rate


def _check_contacts(csv: Path, project: Path, frames: int, rate: float) -> None:
    """The contacts track beside the file: one row per frame; a foot flagged planted is lower
    and slower than when it is not (its heel keypoint in the TRC, an independent truth)."""
    from openkin.formats.trc import read_trc
    from openkin.geometry.axes import yup_to_zup

    rows = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert rows.shape == (frames, 4) and np.allclose(np.diff(rows[:, 1]), 1 / rate, atol=1e-5)
    (trc_path,) = sorted((project / "pose-3d").glob("*.trc"))
    trc = read_trc(trc_path)
    for side, col in (("L", 2), ("R", 3)):
        heel = yup_to_zup(trc.xyz[:, trc.marker_names.index(f"{side}Heel")])
        speed = np.r_[0, np.linalg.norm(np.diff(heel, axis=0), axis=1)] * rate
        down = rows[:, col] > 0.5
        assert 0 < down.sum() < frames, f"{side}: no contact change in the take"
        assert heel[down, 2].mean() < heel[~down, 2].mean() and speed[down].mean() < speed[~down].mean()


def _fit_scale_offset(path: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares s, t with path ≈ s·truth + t over the floor plane (XY); returns s and the residuals (F,)."""
    a, b = truth[:, :2] - truth[:, :2].mean(0), path[:, :2] - path[:, :2].mean(0)
    s = float((a * b).sum() / (a * a).sum())
    return s, np.linalg.norm(b - s * a, axis=1)


@pytest.mark.parametrize("rig,fmt,prefix", [("mixamo", "fbx", "mixamorig:"), ("rigify", "glb", "DEF-"),
                                            ("skeleton", "bvh", "")])
def test_export_reimports_as_one_take_following_the_subject(demo_project, tmp_path, rig, fmt, prefix):
    truth, rate = _subject_hips(demo_project)
    path = _export(demo_project, rig, fmt, tmp_path / f"take.{fmt}")
    scene = import_into_empty_scene(path, fps=rate if fmt == "glb" else None)   # glTF carries no fps
    arms = [o for o in scene.objects if o.type == "ARMATURE"]
    assert len(arms) == 1 and len(bpy.data.actions) == 1
    arm = arms[0]
    assert arm.animation_data.action == bpy.data.actions[0]
    assert all(b.name.startswith(prefix) for b in arm.data.bones) and HIPS[rig] in arm.data.bones
    start, end = map(int, arm.animation_data.action.frame_range)
    assert (start, end) == (1, len(truth))
    if fmt == "fbx":
        assert scene.render.fps / scene.render.fps_base == pytest.approx(rate)
    if fmt == "bvh":
        assert float(path.read_text().split("Frame Time:")[1].split()[0]) == pytest.approx(1 / rate, abs=1e-6)
    hips = world_heads(arm, np.arange(start, end + 1), [HIPS[rig]])[:, 0]
    scale, residual = _fit_scale_offset(hips, truth)
    travel = np.linalg.norm(truth[-1, :2] - truth[0, :2])
    print(f"{rig} {fmt}: hips travel {travel:.3f} m, scale {scale:.3f}, residual RMS "
          f"{np.sqrt((residual ** 2).mean()) * 1000:.1f} mm, max {residual.max() * 1000:.1f} mm")
    assert 0.7 < scale < 1.4                       # a character's height ratio, not a broken path
    _check_contacts(path.with_name(f"{path.stem}_contacts.csv"), demo_project, len(truth), rate)
    assert np.sqrt((residual ** 2).mean()) < 0.02  # follows the subject within 2 cm RMS on the floor


def test_demo_character_render_is_in_the_report(demo_project):
    """The demo's closing figure: cam01 rendered twice side by side, the OpenSim skeleton | the
    retargeted Rigify character; the report shows it with a caption saying what it shows."""
    import cv2

    from openkin.demo import CHARACTER_NAME, save_character_render
    from openkin.project import ProjectPaths
    from openkin.report import write_report

    png = save_character_render(demo_project)
    paths = ProjectPaths(demo_project)
    assert png == paths.reports / CHARACTER_NAME
    image = cv2.imread(str(png))
    h, w = image.shape[:2]
    assert w % 2 == 0 and abs(h / (w / 2) - 1920 / 1080) < 0.02   # two portrait 1080x1920 frames, side by side
    left, right = image[:, : w // 2].astype(int), image[:, w // 2:].astype(int)
    differs = np.abs(left - right).sum(axis=2) > 60
    assert 0.002 < differs.mean() < 0.2   # the same video frame; the skeleton and the character differ
    facts = json.loads(png.with_suffix(".json").read_text())
    assert facts["camera"] == "cam01" and facts["rig"] == "rigify" and facts["capsules"] > 20
    html = write_report(paths).read_text()
    assert CHARACTER_NAME in html and "Rigify character" in html and "cam01, frame" in html

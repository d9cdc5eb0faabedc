"""``openkin export``: bad input is refused with a clear message (exit 2, no traceback) before or
inside Blender, and a good request writes the file (the re-import checks are in
tests/addon/test_export_cli_demo.py, which needs bpy in the test process)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openkin.errors import OpenKinError
from openkin.export import check_request

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openkin.cli", "export", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A synthetic capture (OpenSim forward kinematics through the demo calibration) laid out as
    the pipeline writes its results (pose-3d/, kinematics/)."""
    from openkin.assets import asset_path
    from openkin.synth import build_scene

    root = tmp_path_factory.mktemp("export") / "trial"
    build_scene(root, "clean", n_frames=40, seed=0)
    (root / "pose-3d").mkdir()
    (root / "kinematics").mkdir()
    shutil.copy(root / "truth" / "keypoints.trc", root / "pose-3d" / "trial_0-40.trc")
    shutil.copy(root / "truth" / "angles.mot", root / "kinematics" / "trial_0-40.mot")
    shutil.copy(asset_path("OpenSim_Setup/Model_Pose2Sim_simple.osim"), root / "kinematics" / "trial_0-40_scaled.osim")
    return root


def test_no_kinematics_says_to_run_the_pipeline(tmp_path):
    (tmp_path / "videos").mkdir()
    r = _cli(tmp_path, "--rig", "skeleton", "--format", "bvh", "--out", tmp_path / "x.bvh")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no kinematics results yet" in r.stderr and "openkin run" in r.stderr


def test_unknown_rig_and_missing_blend(project, tmp_path):
    with pytest.raises(OpenKinError, match="unknown rig 'metahuman'"):
        check_request(project, "metahuman", "fbx", tmp_path / "x.fbx", None)
    r = _cli(project, "--rig", tmp_path / "nope.blend", "--format", "fbx", "--out", tmp_path / "x.fbx")
    assert r.returncode == 2 and "no such .blend file" in r.stderr and "Traceback" not in r.stderr
    r = _cli(project, "--rig", "metahuman", "--format", "fbx", "--out", tmp_path / "x.fbx")
    assert r.returncode == 2 and "unknown rig 'metahuman'" in r.stderr


def test_unknown_format_is_refused_by_the_parser(project, tmp_path):
    r = _cli(project, "--rig", "skeleton", "--format", "obj", "--out", tmp_path / "x.obj")
    assert r.returncode == 2 and "invalid choice: 'obj'" in r.stderr


def test_person_out_of_range(project, tmp_path):
    """Checked in Blender (it knows the people): the message names the people there are."""
    r = _cli(project, "--rig", "skeleton", "--format", "bvh", "--out", tmp_path / "x.bvh", "--person", "3")
    assert r.returncode == 2, r.stderr
    assert "person 3 (P3) is out of range: the project has 1 (P0)" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.bvh").exists()


def test_skeleton_bvh_is_written(project, tmp_path):
    out = tmp_path / "take.bvh"
    r = _cli(project, "--rig", "skeleton", "--format", "bvh", "--out", out, "--person", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(out), str(out.with_name("take_contacts.csv"))]   # the file, its contacts
    text = out.read_text()
    assert text.startswith("HIERARCHY") and "Frames: 40\n" in text   # the .mot's 40 rows, one per frame

"""6-DoF trackers through the command line: ``openkin synth --trackers``, the kinematics stage fusing
them (``[kinematics] trackers`` written by synth), and ``openkin evaluate``'s EM-POSE rows fused /
cameras only / trackers only, each compared with the scene's truth angles."""
from __future__ import annotations

import numpy as np
import pytest

from openkin.cli import main as cli_main
from openkin.errors import OpenKinError

pytest.importorskip("opensim")
BODIES = "pelvis,torso,humerus_r,humerus_l,tibia_r,tibia_l"


@pytest.fixture(scope="module")
def fused_scene(tmp_path_factory):
    from openkin.cli import run_stages

    scene = tmp_path_factory.mktemp("trk") / "scene"
    assert cli_main(["synth", str(scene), "--scene", "mild", "--frames", "90", "--trackers", BODIES,
                     "--tracker-noise", "1", "--tracker-drift", "3"]) == 0
    run_stages(scene, ["synchronization", "association", "triangulation", "filtering", "kinematics"],
               progress_bars=False)
    return scene


def test_kinematics_stage_writes_fused_and_variants(fused_scene):
    from openkin.formats.mot import read_mot

    kin = fused_scene / "kinematics"
    fused = [p for p in kin.glob("*.mot")]
    cams = list((kin / "trackers").glob("*_cameras_only.mot"))
    trk = list((kin / "trackers").glob("*_trackers_only.mot"))
    assert len(fused) == len(cams) == len(trk) == 1
    a, b = read_mot(fused[0]), read_mot(trk[0])
    assert np.array_equal(a.times, b.times) and a.names == b.names
    summary = (kin / f"{fused[0].stem}_kinematics.toml").read_text()
    assert "pelvis_imu" in summary


def test_evaluate_prints_em_pose_rows(fused_scene, capsys):
    from openkin.evaluate import compare_angles
    from openkin.formats.mot import read_mot

    assert cli_main(["evaluate", str(fused_scene), str(fused_scene), "--coordinates", "main"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("average")]
    labels = [" ".join(ln.split()[1:-7]) for ln in lines]
    assert labels == ["fused", "cameras only", "trackers only"], out
    mpjae = {lab: float(ln.split()[-3]) for lab, ln in zip(labels, lines)}
    # the table's numbers are the truth comparison of the written files (recomputed here)
    truth = read_mot(fused_scene / "truth" / "angles.mot")
    trk = read_mot(next((fused_scene / "kinematics" / "trackers").glob("*_trackers_only.mot")))
    assert mpjae["trackers only"] == pytest.approx(compare_angles(trk, truth, coordinates=["main"])["mpjae"][0],
                                                   abs=0.01)
    # mild scene, 4 cameras, 1 deg trackers: every method within a few degrees of the truth
    assert mpjae["fused"] < 3.0 and mpjae["cameras only"] < 3.0 and mpjae["trackers only"] < 8.0


def test_stage_names_an_unknown_tracker_body(tmp_path):
    import shutil

    from openkin.cli import run_stages

    scene = tmp_path / "s"
    assert cli_main(["synth", str(scene), "--scene", "clean", "--frames", "40", "--trackers", "pelvis"]) == 0
    cfg = scene / "Config.toml"
    cfg.write_text(cfg.read_text().replace('pelvis_imu = "pelvis"', 'pelvis_imu = "pelvic"'))
    run_stages(scene, ["synchronization", "association", "triangulation", "filtering"], progress_bars=False)
    with pytest.raises(OpenKinError) as e:
        run_stages(scene, ["kinematics"], progress_bars=False)
    assert "pelvic" in e.value.problem and "pelvis" in e.value.fix
    shutil.rmtree(scene / "trackers")
    cfg.write_text(cfg.read_text().replace('"pelvic"', '"pelvis"'))
    with pytest.raises(OpenKinError) as e:
        run_stages(scene, ["kinematics"], progress_bars=False)
    assert "no tracker file" in e.value.problem


def test_variants_are_this_runs_outputs(fused_scene, tmp_path):
    """The variant .mot files are recorded in the run manifest as the kinematics stage's outputs (with
    their sha256); a later run without trackers does not keep them as current: they are moved to
    openkin/stale/ like any output a new run did not rewrite."""
    import hashlib
    import json
    import shutil

    from openkin.cli import run_stages

    scene = tmp_path / "scene"
    shutil.copytree(fused_scene, scene)
    records = json.loads((scene / "openkin" / "manifest.json").read_text())["stages"]["kinematics"]["outputs"]
    variants = sorted((scene / "kinematics" / "trackers").glob("*.mot"))
    recorded = {o["path"]: o for o in records if o["role"] in ("cameras_only_mot", "trackers_only_mot")}
    assert sorted(recorded) == sorted(str(p.relative_to(scene)) for p in variants)
    for p in variants:
        assert recorded[str(p.relative_to(scene))]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    cfg = scene / "Config.toml"
    text = cfg.read_text()
    start = text.index("trackers = {")
    cfg.write_text(text[:start] + "trackers = {}" + text[text.index("}", start) + 1:])
    run_stages(scene, ["kinematics"], progress_bars=False)
    assert not list((scene / "kinematics" / "trackers").glob("*.mot"))
    assert len(list((scene / "openkin" / "stale").rglob("*_trackers_only.mot"))) == 1

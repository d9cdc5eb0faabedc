"""``openkin batch``: trials of a session, inherited configuration, exclude_from_batch, failing
trials in the summary, resume by hash and --force.

The sessions are synthetic (tests/engine/batch_session.py: clean synth trials, calibration
shared from the session). To stay fast these tests run the stages up to filtering; the
whole pipeline (IK included) runs in tests/e2e/test_dask_batch.py.
"""
from __future__ import annotations

import json
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from batch_session import make_session  # noqa: E402

from openkin import cli  # noqa: E402
from openkin.batch import find_trials, is_excluded  # noqa: E402

STAGES = "calibration,pose,synchronization,association,triangulation,filtering"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return make_session(tmp_path_factory.mktemp("batch") / "S01", n_trials=3, frames=30)


@pytest.fixture
def session(template, tmp_path) -> Path:
    dest = tmp_path / "S01"
    shutil.copytree(template, dest)
    return dest


def batch(session: Path, *extra: str) -> tuple[int, dict]:
    code = cli.main(["batch", str(session), "--stages", STAGES, "--no-report", "--no-progress", *extra])
    summary = json.loads((session / "openkin" / "batch_summary.json").read_text())
    return code, {r["trial"]: r for r in summary["trials"]}


def run_id(trial: Path) -> str:
    return json.loads((trial / "openkin" / "manifest.json").read_text())["run"]["id"]


def test_trials_of_a_session(session):
    assert [t.name for t in find_trials(session)] == ["P01/T01", "P01/T02", "P01/T03"]
    trial = find_trials(session)[2]
    assert is_excluded(trial, ["T03"]) and is_excluded(trial, ["P01/T03"]) and not is_excluded(trial, ["T0"])


def test_not_a_session(tmp_path):
    assert cli.main(["batch", str(tmp_path), "--no-progress"]) == 2


def test_config_inherited_session_participant_trial(session):
    """Session Config.toml (frame rate, skeleton) ← participant (Butterworth cut-off) ← trial (filter type)."""
    (session / "P01" / "Config.toml").write_text("[filtering.butterworth]\ncut_off_frequency = 5\n")
    (session / "P01" / "T02" / "Config.toml").write_text("[filtering]\ntype = 'gaussian'\n")
    code, rows = batch(session)
    assert code == 0 and {r["status"] for r in rows.values()} == {"done"}
    for name, kind in (("T01", "butterworth"), ("T02", "gaussian"), ("T03", "butterworth")):
        trial = session / "P01" / name
        resolved = tomllib.loads((trial / "openkin" / "resolved_config.toml").read_text())
        assert resolved["project"]["frame_rate"] == 60  # the session's
        assert resolved["filtering"]["butterworth"]["cut_off_frequency"] == 5  # the participant's
        assert resolved["filtering"]["type"] == kind  # the trial's
        assert sorted(p.name for p in (trial / "pose-3d").glob("*_filt_*.trc")) == [f"{name}_0-29_filt_{kind}.trc"]
    # the calibration is the session's: no trial has one of its own
    assert not any((session / "P01" / n / "calibration").exists() for n in ("T01", "T02", "T03"))


def test_exclude_from_batch(session):
    """Pose2Sim's exclude_from_batch, by trial folder name and by participant/trial path."""
    (session / "P01" / "Config.toml").write_text("[project]\nexclude_from_batch = ['T02', 'P01/T03']\n")
    code, rows = batch(session)
    assert code == 0
    assert [rows[t]["status"] for t in ("P01/T01", "P01/T02", "P01/T03")] == ["done", "excluded", "excluded"]
    assert (session / "P01" / "T01" / "pose-3d").is_dir()
    assert not (session / "P01" / "T02" / "openkin").exists() and not (session / "P01" / "T03" / "openkin").exists()


def test_failing_trials_reported_others_run(session):
    """T02 has a calibration folder of its own without a calibration; T03 has a fifth camera the
    calibration does not know. Both are in the summary with their error; T01 is done."""
    (session / "P01" / "T02" / "calibration").mkdir()
    shutil.copytree(session / "P01" / "T03" / "pose" / "cam04_json", session / "P01" / "T03" / "pose" / "cam05_json")
    for f in (session / "P01" / "T03" / "pose" / "cam05_json").iterdir():
        f.rename(f.with_name(f.name.replace("cam04", "cam05")))
    code, rows = batch(session)
    assert code == 2
    assert rows["P01/T01"]["status"] == "done" and rows["P01/T01"]["frames"] == 30
    assert rows["P01/T02"]["status"] == "failed" and rows["P01/T02"]["failed_stage"] == "calibration"
    assert f"{session / 'P01' / 'T02' / 'calibration'}: no *.qca.txt file" in rows["P01/T02"]["error"]
    assert rows["P01/T03"]["status"] == "failed" and "(cam01, cam02, cam03, cam04, cam05)" in rows["P01/T03"]["error"]
    assert rows["P01/T03"]["failed_stage"] == "association"
    md = (session / "openkin" / "batch_summary.md").read_text()
    assert "| P01/T02 | failed |" in md and "calibration: " in md and "no *.qca.txt file" in md and "4 calibrated cameras" in md


def test_resume_skips_current_trials_and_force_runs_them(session):
    code, rows = batch(session)
    assert code == 0 and {r["status"] for r in rows.values()} == {"done"}
    ids = {n: run_id(session / "P01" / n) for n in ("T01", "T02", "T03")}

    code, rows = batch(session)  # nothing changed: every trial is skipped, its run untouched
    assert code == 0 and {r["status"] for r in rows.values()} == {"skipped"}
    assert {n: run_id(session / "P01" / n) for n in ids} == ids
    assert rows["P01/T01"]["frames"] == 30 and rows["P01/T01"]["people"] == 1  # figures of the earlier run

    # an input changed (one keypoint of one 2D file of T02), a config changed (T03): those two run
    f = sorted((session / "P01" / "T02" / "pose" / "cam02_json").iterdir())[5]
    doc = json.loads(f.read_text())
    doc["people"][0]["pose_keypoints_2d"][0] += 3.0
    f.write_text(json.dumps(doc))
    (session / "P01" / "T03" / "Config.toml").write_text("[filtering]\ntype = 'gaussian'\n")
    code, rows = batch(session)
    assert [rows[t]["status"] for t in ("P01/T01", "P01/T02", "P01/T03")] == ["skipped", "done", "done"]
    assert run_id(session / "P01" / "T01") == ids["T01"]

    # an output changed by hand (a TRC of T01): it runs again
    trc = next((session / "P01" / "T01" / "pose-3d").glob("*_filt_butterworth.trc"))
    trc.write_text(trc.read_text() + "\n")
    code, rows = batch(session)
    assert [rows[t]["status"] for t in ("P01/T01", "P01/T02", "P01/T03")] == ["done", "skipped", "skipped"]

    code, rows = batch(session, "--force")
    assert code == 0 and {r["status"] for r in rows.values()} == {"done"}
    assert all(run_id(session / "P01" / n) != ids[n] for n in ids)

    # on a local cluster too, current trials are skipped and left as they are
    ids = {n: run_id(session / "P01" / n) for n in ("T01", "T02", "T03")}
    code, rows = batch(session, "--workers", "1")
    assert code == 0 and {r["status"] for r in rows.values()} == {"skipped"}
    assert {n: run_id(session / "P01" / n) for n in ids} == ids


def test_comparable_digests_leave_out_bookkeeping_and_timings_only(tmp_path):
    from openkin.batch import comparable_digests

    files = {"pose-3d/t.trc": "1 2 3\n", "pose-3d/triangulation_report.json": '{"seconds": 0.1, "frames": 30}',
             "kinematics/t_kinematics.toml": "ik_solver_seconds = 2.5\nmarker_rms_mean_m = 0.01\n",
             "openkin/manifest.json": '{"run": {"id": "1"}}', "openkin/logs/openkin.log": "10:00 started\n",
             "pose-sync/cam01_json/cam01_000000.json": '{"seconds": 1}'}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    before = comparable_digests(tmp_path)
    assert set(before) == {"pose-3d/t.trc", "pose-3d/triangulation_report.json", "kinematics/t_kinematics.toml",
                           "pose-sync/cam01_json/cam01_000000.json"}
    (tmp_path / "pose-3d/triangulation_report.json").write_text('{"seconds": 9.9, "frames": 30}')
    (tmp_path / "kinematics/t_kinematics.toml").write_text("ik_solver_seconds = 7.0\nmarker_rms_mean_m = 0.01\n")
    (tmp_path / "openkin/manifest.json").write_text('{"run": {"id": "2"}}')
    (tmp_path / "openkin/logs/openkin.log").write_text("11:00 started\n")
    assert comparable_digests(tmp_path) == before
    for rel, text in (("kinematics/t_kinematics.toml", "ik_solver_seconds = 7.0\nmarker_rms_mean_m = 0.02\n"),
                      ("pose-3d/t.trc", "1 2 4\n"), ("pose-sync/cam01_json/cam01_000000.json", '{"seconds": 2}')):
        (tmp_path / rel).write_text(text)
        assert comparable_digests(tmp_path)[rel] != before[rel], rel


def test_unreachable_scheduler_is_a_clear_error(session, capfd):
    assert cli.main(["batch", str(session), "--scheduler", "tcp://127.0.0.1:1", "--no-progress"]) == 2
    assert "error: cannot reach the Dask scheduler at tcp://127.0.0.1:1" in capfd.readouterr().err
    assert not (session / "P01" / "T01" / "openkin").exists()  # nothing ran

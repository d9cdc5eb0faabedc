"""``openkin batch`` on a real Dask cluster: a scheduler and two workers started here as processes
(the ``dask`` command of this Python's environment), a 3-trial session through ``--scheduler``,
its outputs byte-identical to a serial run's; and a worker that dies is retried once, then reported.

Compared: every file of every trial except the run's bookkeeping (manifest run ids and timings,
logs, report), and the ``seconds`` keys of the summaries that carry them
(:func:`openkin.batch.comparable_digests`): the 2D keypoint JSON of pose-sync and
pose-associated, the TRC/C3D/npz of pose-3d, the .mot, .osim and marker errors of kinematics,
resolved_config.toml, versions.toml, batch_state.json.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import openkin
from openkin.batch import comparable_digests
from openkin.cluster import client_for, collect, describe_failure, submit

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from batch_session import make_session  # noqa: E402

DASK = Path(sys.executable).parent / "dask"
ENGINE = str(Path(openkin.__file__).resolve().parents[1])  # workers import this very openkin


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ENGINE, env.get("PYTHONPATH", "")) if p)
    return env


def _start(*args: str, log: Path) -> subprocess.Popen:
    """A process in its own session (its nanny's worker child is stopped with it)."""
    return subprocess.Popen([str(DASK), *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=_env(),
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started by :func:`_start` and its children (its process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler --port 0`` and two ``dask worker ADDRESS`` processes (1 thread each); yields the
    address; stops them all whatever happens."""
    from distributed import Client

    procs: list[subprocess.Popen] = []
    scheduler_file = tmp_path / "scheduler.json"
    try:
        procs.append(_start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                            "--scheduler-file", str(scheduler_file), log=tmp_path / "scheduler.log"))
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(2):
            procs.append(_start("worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                "--name", f"w{i}", log=tmp_path / f"worker{i}.log"))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openkin.cli", "batch", *args, "--no-report", "--no-progress"],
                          capture_output=True, text=True, timeout=1500, env=_env())


def test_scheduler_and_two_workers_match_a_serial_run(tmp_path, dask_cluster):
    session = make_session(tmp_path / "S01", n_trials=3, frames=30)
    trials = sorted(p for p in (session / "P01").iterdir() if p.is_dir())

    serial = _batch(str(session))
    assert serial.returncode == 0, serial.stderr[-3000:]
    reference = {t.name: comparable_digests(t) for t in trials}
    assert all(any(k.startswith("kinematics/") and k.endswith(".mot") for k in d) for d in reference.values())

    on_cluster = _batch(str(session), "--scheduler", dask_cluster, "--force")
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    summary = json.loads((session / "openkin" / "batch_summary.json").read_text())
    assert summary["run_on"] == f"scheduler {dask_cluster}"
    assert [r["status"] for r in summary["trials"]] == ["done"] * 3
    assert len({r["worker"] for r in summary["trials"]}) == 2  # both workers ran trials
    assert all(r["ik_rms_mm"] is not None and r["frames"] == 30 for r in summary["trials"])
    for t in trials:
        assert comparable_digests(t) == reference[t.name], t.name


def test_a_worker_that_dies_is_retried_once_then_reported(tmp_path):
    """The task kills its worker process (SIGKILL of the shell's parent): it runs twice (the retry),
    then comes back as a failure that says the worker died."""
    counter = tmp_path / "attempts.txt"
    outcome = []
    with client_for(workers=1) as client:
        futures = submit(client, os.system, [(f"echo attempt >> {counter}; kill -9 $PPID",)], ["dies"])
        collect(futures, lambda i, result, exc: outcome.append((result, exc)))
    (result, exc), = outcome
    assert result is None and type(exc).__name__ == "KilledWorker"
    assert counter.read_text().split() == ["attempt", "attempt"]
    assert "died" in describe_failure(exc)

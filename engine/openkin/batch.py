"""``openkin batch SESSION``: every trial of a Pose2Sim session, in parallel, resumable.

A session (Pose2Sim's batch layout, see :mod:`openkin.project`)::

    Session/             Config.toml   calibration/
      Participant/       Config.toml                   (optional level)
        Trial_1/         Config.toml   videos/ or pose/
        Trial_2/ ...

Trials are the folders one or two levels below the session holding a ``Config.toml``, a
``videos/`` or a ``pose/`` folder (a participant folder is the parent of trials). Each trial
inherits its configuration (:func:`openkin.config.load_config`) and its calibration
(:func:`openkin.project.find_calibration_dir`) from its parents, as ``openkin run`` does.
Pose2Sim's ``[project] exclude_from_batch`` (the trial's merged configuration) leaves out the
trials it names, by folder name (what Pose2Sim 0.10.49 compares) or by path from the
session (``'participant/trial'``, what its Config.toml comment shows).

Each trial is one task (:func:`run_trial`): in this process one after the other, on a local
Dask cluster (``--workers N``) or on a lab's scheduler (``--scheduler``; :mod:`openkin.cluster`).
A failed trial is reported, the others go on. At the end, ``SESSION/openkin/batch_summary.md``
and ``.json``: per trial its status, frames, people, reprojection error, IK marker RMS, time
and error.

Same outputs however it runs: a trial runs with one BLAS/OpenMP thread and one process per
stage (``parallel_workers_pose`` and ``parallel_workers_kinematics`` = 1, the parallelism is
across trials), so a trial's files are byte-identical serially, with ``--workers`` or on a
cluster (:func:`comparable_digests` says which files, and what in them, is compared).

Resumable: after a trial succeeds, ``TRIAL/openkin/batch_state.json`` records the stages, the
sha256 of its resolved configuration and of its sources (videos, calibration folder). A trial
is skipped while that still holds and every file its manifest records (the stages' inputs
and outputs, with sha256) is unchanged (:func:`stale_reason`); ``--force`` runs it anyway.
"""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import load_config
from .errors import OpenKinError
from .fileio import atomic_write
from .manifest import STAGE_ORDER, Manifest, entry, now
from .progress import Cancelled
from .project import CONFIG_NAME

log = logging.getLogger(__name__)

STATE_NAME = "batch_state.json"
SUMMARY_STEM = "batch_summary"
STATE_VERSION = 1
TRIAL_MARKERS = ("videos", "pose")
# Folders of a trial (or tools) that are never trials themselves.
NOT_TRIALS = {"videos", "pose", "pose-sync", "pose-associated", "pose-3d", "kinematics", "openkin", "truth"}
# One process and one thread per trial: the parallelism is across trials, and the outputs do not
# depend on how many cores a worker has (IK time chunks would).
PINNED = {"pose": {"parallel_workers_pose": 1}, "kinematics": {"parallel_workers_kinematics": 1}}


# =========================================================================== trials of a session
@dataclass(frozen=True)
class Trial:
    """A trial folder of a session: ``path`` (absolute) and ``name`` (its path from the session, ``/``)."""

    path: Path
    name: str


def _subfolders(folder: Path) -> list[Path]:
    """Sub-folders that may be participants or trials (not hidden, not calibration, not outputs)."""
    try:
        found = [p for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return []
    return sorted(p for p in found if not p.name.startswith(".") and "calib" not in p.name.lower()
                  and p.name not in NOT_TRIALS)


def _is_trial(folder: Path) -> bool:
    return (folder / CONFIG_NAME).is_file() or any((folder / m).is_dir() for m in TRIAL_MARKERS)


def find_trials(session: str | Path) -> list[Trial]:
    """The trials of ``session`` (see the module doc), sorted by path. OpenKinError when none."""
    session = Path(session).expanduser().resolve()
    if not session.is_dir():
        raise OpenKinError("session folder does not exist", path=session,
                           fix="give the session folder (it holds the participant or trial folders)")
    trials = []
    for child in _subfolders(session):
        inner = [g for g in _subfolders(child) if _is_trial(g)]
        if inner:
            trials += inner
        elif _is_trial(child):
            trials.append(child)
    if not trials:
        raise OpenKinError("no trial folders in this session", path=session,
                           fix="a session holds trial folders (or participant folders of trials), each "
                               "with a Config.toml, videos/ or pose/; for a single trial use `openkin run`")
    return [Trial(t, t.relative_to(session).as_posix()) for t in trials]


def is_excluded(trial: Trial, exclude: tuple[str, ...] | list[str]) -> bool:
    """Whether ``exclude`` (``[project] exclude_from_batch``) names ``trial``: its folder name, or its
    path from the session."""
    names = {str(e).strip().strip("/").replace("\\", "/") for e in exclude}
    return trial.path.name in names or trial.name in names


def trial_overrides(overrides: dict | None) -> dict:
    """``overrides`` (``--set``) with one process per stage (:data:`PINNED`) on top."""
    out = json.loads(json.dumps(overrides or {}))
    for section, values in PINNED.items():
        out.setdefault(section, {}).update(values)
    return out


# =========================================================================== resume
def config_sha256(config) -> str:
    """sha256 of a resolved configuration (its TOML names and values)."""
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _sources(root: Path) -> dict[str, str]:
    """sha256 of what a trial is made from that no stage records as input: its videos, its calibration folder."""
    from .project import ProjectPaths

    paths = ProjectPaths(root)
    out = {}
    for folder in (paths.videos, paths.calibration):
        if folder.is_dir():
            e = entry(root, folder)
            out[e["path"]] = e["sha256"]
    return out


def _state_path(root: Path) -> Path:
    return root / "openkin" / STATE_NAME


def write_state(root: Path, stages: list[str], config) -> Path:
    """Record a successful batch run of ``root`` (see the module doc); no time in it."""
    state = {"version": STATE_VERSION, "stages": list(stages), "config_sha256": config_sha256(config),
             "sources": _sources(root)}
    with atomic_write(_state_path(root)) as f:
        json.dump(state, f, indent=1, sort_keys=True)
    return _state_path(root)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stale_reason(root: Path, stages: list[str], config) -> str | None:
    """Why the trial ``root`` must run again for ``stages`` and ``config``; None when its outputs are
    current (same stages, configuration, sources, and every recorded input and output unchanged)."""
    state = _read_json(_state_path(root))
    if state is None or state.get("version") != STATE_VERSION:
        return "no batch record"
    if not set(stages) <= set(state.get("stages", [])):
        return "other stages asked for"
    if state.get("config_sha256") != config_sha256(config):
        return "configuration changed"
    manifest = _read_json(root / "openkin" / "manifest.json") or {}
    run = manifest.get("run", {})
    if not run.get("finished") or run.get("failed"):
        return "last run did not finish"
    for name in stages:
        rec = manifest.get("stages", {}).get(name) or {}
        if rec.get("status") != "done":
            return f"{name} not done"
        for e in rec.get("inputs", []) + rec.get("outputs", []):
            changed = _changed(root, e)
            if changed:
                return f"{changed} changed"
    if state.get("sources") != _sources(root):
        return "videos or calibration changed"
    return None


def _changed(root: Path, e: dict) -> str | None:
    """``e['path']`` when the file or folder is missing or its sha256 differs from the record."""
    path = root / e["path"]
    if not path.exists() or entry(root, path)["sha256"] != e.get("sha256"):
        return e["path"]
    return None


# =========================================================================== one trial (a task)
def _file_handler(path: Path) -> logging.Handler | None:
    """An INFO file handler writing ``path`` (its folder made), or None when it cannot be opened."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def _trial_log(root: Path) -> logging.Handler | None:
    """Log records of OpenKin to ``TRIAL/openkin/logs/openkin.log`` while the trial runs."""
    handler = _file_handler(root / "openkin" / "logs" / "openkin.log")
    if handler is None:
        return None
    pkg = logging.getLogger("openkin")
    pkg.addHandler(handler)
    if pkg.getEffectiveLevel() > logging.INFO:
        pkg.setLevel(logging.INFO)
    return handler


def run_trial(path: str, stages: list[str], overrides: dict | None = None, force: bool = False,
              report: bool = True, on_event: Callable[..., None] | None = None) -> dict:
    """Run ``stages`` on the trial folder ``path`` unless it is current (``force``: always); the task
    of a batch. Returns its summary row (:func:`trial_figures` plus ``status`` 'done', 'skipped' or
    'failed', ``error``, ``failed_stage``, ``seconds``, ``host``). An :class:`OpenKinError` (bad input,
    a failed stage) is a 'failed' row; anything else is raised (the task is retried once)."""
    from threadpoolctl import threadpool_limits

    root = Path(path)
    t0 = time.perf_counter()
    row: dict[str, Any] = {"path": str(root), "status": "failed", "error": None, "failed_stage": None,
                           "worker": _worker_name()}
    handler = _trial_log(root)
    try:
        with threadpool_limits(limits=1):
            row.update(_run_or_skip(root, stages, trial_overrides(overrides), force, report, on_event))
    except OpenKinError as e:
        row["error"] = str(e)
        row["failed_stage"] = _failed_stage(root)
        log.error("trial %s failed: %s", root.name, e)
    except Cancelled:
        row["error"] = "cancelled"
    finally:
        if handler is not None:
            logging.getLogger("openkin").removeHandler(handler)
            handler.close()
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row.update(trial_figures(root))
    return row


def _worker_name() -> str:
    """The Dask worker running this task (its address), else this machine's name."""
    import sys

    if "distributed" in sys.modules:
        from distributed import get_worker

        try:
            return get_worker().address
        except ValueError:
            pass
    return platform.node()


def _run_or_skip(root: Path, stages: list[str], overrides: dict, force: bool, report: bool,
                 on_event: Callable[..., None] | None) -> dict:
    from .pipeline import run_stages

    config = load_config(root, overrides=overrides)
    reason = "--force" if force else stale_reason(root, stages, config)
    if reason is None:
        log.info("trial %s is current: skipped", root.name)
        return {"status": "skipped"}
    log.info("trial %s runs (%s)", root.name, reason)
    run_stages(root, stages, overrides=overrides, progress_bars=False, on_event=on_event)
    write_state(root, stages, config)
    if report:
        _write_report(root)
    return {"status": "done"}


def _write_report(root: Path) -> None:
    from .project import ProjectPaths
    from .report import write_report

    try:
        write_report(ProjectPaths(root))
    except OpenKinError as e:  # the trial's results stand without their report
        log.warning("trial %s: no report (%s)", root.name, e)


def _failed_stage(root: Path) -> str | None:
    run = (_read_json(root / "openkin" / "manifest.json") or {}).get("run", {})
    return run.get("failed")


def trial_figures(root: Path) -> dict:
    """What the trial's manifest measured: ``frames``, ``people`` and mean ``reprojection_px`` (of
    triangulation), ``ik_rms_mm`` (kinematics' mean marker RMS); None where not measured."""
    stages = (_read_json(Path(root) / "openkin" / "manifest.json") or {}).get("stages", {})

    def summary(name: str) -> dict:
        rec = stages.get(name) or {}
        return rec.get("summary", {}) if rec.get("status") == "done" else {}

    persons = summary("triangulation").get("persons", [])
    rms = [t["marker_rms_mean_m"] for t in summary("kinematics").get("trials", []) if "marker_rms_mean_m" in t]
    errors = [p["reprojection_error_px"] for p in persons if p.get("reprojection_error_px") is not None]
    return {"frames": max((p.get("n_frames", 0) for p in persons), default=None),
            "people": len(persons) if persons else None,
            "reprojection_px": round(sum(errors) / len(errors), 3) if errors else None,
            "ik_rms_mm": round(1000 * sum(rms) / len(rms), 2) if rms else None}


# =========================================================================== the batch
@dataclass
class BatchResult:
    """What :func:`run_batch` did: one row per trial (session order), and where the summary is."""

    session: Path
    rows: list[dict]
    summary_md: Path
    summary_json: Path
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r["status"] != "failed" for r in self.rows)


def run_batch(session: str | Path, *, stages: list[str] | None = None, overrides: dict | None = None,
              workers: int | None = None, scheduler: str | None = None, force: bool = False,
              report: bool = True, progress: bool = True) -> BatchResult:
    """Run every trial of ``session`` (see the module doc) and write its summary; returns the rows.
    A trial that fails is a row with its error; the others run on."""
    from .cluster import client_for
    from .pipeline import stage_names

    session = Path(session).expanduser().resolve()
    names = stage_names(stages)
    t0, started = time.perf_counter(), now()
    rows, todo = _plan(session, overrides)
    view = _View(len(rows), sum(r["status"] != "pending" for r in rows), progress)
    try:
        with client_for(workers, scheduler) as client:
            args = [(str(t.path), names, overrides, force, report) for t in todo]
            if client is None:
                _serial(todo, args, rows, view)
            else:
                if "calibration" in names:
                    _calibrate_shared(todo, names, overrides, force)
                _distributed(client, todo, args, rows, view, started)
    finally:
        view.close()
    seconds = time.perf_counter() - t0
    how = f"scheduler {scheduler}" if scheduler else f"{workers} local workers" if workers else "serial"
    md, js = write_summary(session, rows, {"started": started, "finished": now(), "seconds": round(seconds, 3),
                                           "run_on": how, "stages": names, "force": force})
    return BatchResult(session, rows, md, js, seconds)


def _plan(session: Path, overrides: dict | None) -> tuple[list[dict], list[Trial]]:
    """Rows of every trial (excluded ones and those whose config does not load already final) and
    the trials to run."""
    rows, todo = [], []
    for trial in find_trials(session):
        row = {"trial": trial.name, "path": str(trial.path), "status": "pending", "error": None}
        try:
            config = load_config(trial.path, overrides=trial_overrides(overrides))
        except OpenKinError as e:
            row.update(status="failed", error=str(e), seconds=0.0)
        else:
            if is_excluded(trial, config.project.exclude_from_batch):
                row.update(status="excluded")
                log.info("trial %s excluded (exclude_from_batch)", trial.name)
            else:
                todo.append(trial)
        rows.append(row)
    return rows, todo


def _calibrate_shared(todo: list[Trial], names: list[str], overrides: dict | None, force: bool) -> None:
    """Before trials run in parallel: the calibration stage of one trial per calibration folder that
    trials share (a session's), so that its conversion or computation is done once, not raced by
    every trial (each trial's own calibration stage then reuses it). Only a trial that runs anyway
    (not current, or ``force``) is used: a current one stays current. A failure is left to the
    trials' runs, which report it."""
    from .pipeline import run_stages
    from .project import find_calibration_dir

    done: set[Path] = set()
    for t in todo:
        folder = find_calibration_dir(t.path)
        if folder is None or folder.resolve() in done or folder.resolve().is_relative_to(t.path):
            continue
        overridden = trial_overrides(overrides)
        if not force and stale_reason(t.path, names, load_config(t.path, overrides=overridden)) is None:
            continue
        done.add(folder.resolve())
        try:
            run_stages(t.path, ["calibration"], overrides=overridden, progress_bars=False)
        except OpenKinError as e:
            log.info("shared calibration %s: %s (reported with the trials)", folder, e)


def _serial(todo: list[Trial], args: list[tuple], rows: list[dict], view: "_View") -> None:
    at = {r["trial"]: i for i, r in enumerate(rows)}
    for trial, a in zip(todo, args):
        view.running(trial.name, "starting")

        def on_event(event: str, _name=trial.name, **fields) -> None:
            if event == "stage":
                view.running(_name, fields["stage"])

        row = run_trial(*a, on_event=on_event)
        _finish(rows[at[trial.name]], row, view)


def _distributed(client, todo: list[Trial], args: list[tuple], rows: list[dict], view: "_View",
                 started: str) -> None:
    from .cluster import collect, describe_failure, submit

    at = {r["trial"]: i for i, r in enumerate(rows)}
    tag = uuid.uuid4().hex[:8]
    futures = submit(client, run_trial, args, [f"openkin-trial-{t.name}-{tag}" for t in todo])
    left = {t.name: t.path for t in todo}

    def on_done(i: int, result: dict | None, exc: BaseException | None) -> None:
        trial = todo[i]
        left.pop(trial.name, None)
        if exc is not None:
            result = {"status": "failed", "error": describe_failure(exc), "seconds": None,
                      **trial_figures(trial.path)}
            log.error("trial %s: %s", trial.name, result["error"])
        _finish(rows[at[trial.name]], result, view)

    def on_tick() -> None:
        for name, path in left.items():
            stage = running_stage(path, started)
            if stage:
                view.running(name, stage)

    collect(futures, on_done, on_tick if view.bar is not None else None)  # no bar: no manifest polling


def _finish(row: dict, result: dict, view: "_View") -> None:
    row.update({k: v for k, v in result.items() if k != "path"})
    view.done(row["trial"], row["status"])


def running_stage(root: Path, since: str) -> str | None:
    """The stage a trial's run started at or after ``since`` is running (from its manifest, on shared
    storage), else None."""
    manifest = _read_json(Path(root) / "openkin" / "manifest.json") or {}
    run = manifest.get("run", {})
    if run.get("started", "") < since or run.get("finished"):
        return None
    return next((n for n in STAGE_ORDER if (manifest.get("stages", {}).get(n) or {}).get("status") == "running"),
                None)


class _View:
    """One progress bar: trials finished of all, and the stage each running trial is in."""

    def __init__(self, total: int, settled: int, enabled: bool):
        """``settled``: trials already final (excluded, or a configuration that does not load)."""
        self.stages: dict[str, str] = {}
        self.counts = {"done": 0, "skipped": 0, "failed": 0}
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="trials", unit="trial", dynamic_ncols=True)
            self.bar.update(settled)

    def _refresh(self) -> None:
        if self.bar is None:
            return
        running = ", ".join(f"{n}: {s}" for n, s in self.stages.items())
        counts = " ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        self.bar.set_postfix_str(f"{counts} | running {len(self.stages)}{': ' + running if running else ''}",
                                 refresh=True)

    def running(self, name: str, stage: str) -> None:
        if self.stages.get(name) != stage:
            self.stages[name] = stage
            self._refresh()

    def done(self, name: str, status: str) -> None:
        self.stages.pop(name, None)
        self.counts[status] = self.counts.get(status, 0) + 1
        if self.bar is not None:
            self.bar.update(1)
        self._refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# =========================================================================== summary
COLUMNS = (("trial", "trial"), ("status", "status"), ("frames", "frames"), ("people", "people"),
           ("reprojection_px", "reproj. error (px)"), ("ik_rms_mm", "IK marker RMS (mm)"),
           ("seconds", "time (s)"), ("error", "error"))


def write_summary(session: Path, rows: list[dict], info: dict) -> tuple[Path, Path]:
    """``SESSION/openkin/batch_summary.md`` and ``.json`` (atomic); returns both paths."""
    out = Path(session) / "openkin"
    md, js = out / f"{SUMMARY_STEM}.md", out / f"{SUMMARY_STEM}.json"
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed", "excluded")}
    with atomic_write(js) as f:
        json.dump({"session": str(session), **info, "counts": counts, "trials": rows}, f, indent=1)
    with atomic_write(md) as f:
        f.write(summary_markdown(session, rows, info, counts))
    return md, js


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def summary_markdown(session: Path, rows: list[dict], info: dict, counts: dict) -> str:
    lines = [f"# Batch of {Path(session).name}", "",
             f"{info['started']} → {info['finished']} ({info['seconds']:.1f} s, {info['run_on']}); "
             + ", ".join(f"{v} {k}" for k, v in counts.items() if v), "",
             "| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [_cell(r.get(k)) for k, _ in COLUMNS]
        if r.get("failed_stage"):
            cells[-1] = f"{r['failed_stage']}: {cells[-1]}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# =========================================================================== comparing runs
TIMING_KEYS = ("seconds",)
KEYPOINT_FOLDERS = ("pose/", "pose-sync/", "pose-associated/")  # OpenPose JSON: compared byte for byte
NOT_COMPARED = ("openkin/manifest.json", "openkin/logs/", "openkin/report.html", "openkin/report.md",
                "openkin/report/", "openkin/stale/", "openkin/.lock")


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items()
                if not any(k == t or k.endswith("_" + t) for t in TIMING_KEYS)}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def comparable_digests(root: str | Path) -> dict[str, str]:
    """sha256 of every file of a trial that two runs of the same inputs must write identically:
    all files under the trial except the run's bookkeeping (:data:`NOT_COMPARED`: the manifest's
    run ids and timings, logs, the report with its date and timing plot, set-aside files). The
    summary files that record how long a step took (``*.json``/``*.toml`` written by OpenKin:
    triangulation_report.json, refinement.toml, *_kinematics.toml) are compared without their
    ``seconds`` / ``*_seconds`` keys; every other byte is compared."""
    import tomllib

    root = Path(root)
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if any(rel == n or (n.endswith("/") and rel.startswith(n)) for n in NOT_COMPARED):
            continue
        data = path.read_bytes()
        if path.suffix in (".json", ".toml") and not rel.startswith(KEYPOINT_FOLDERS) and b"seconds" in data:
            parsed = json.loads(data) if path.suffix == ".json" else tomllib.loads(data.decode())
            data = json.dumps(_without_timings(parsed), sort_keys=True).encode()
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


# =========================================================================== command line
def add_arguments(parser) -> None:
    parser.add_argument("session", help="session folder: trial folders (or participant folders of trials), "
                                        "Config.toml and calibration shared from it")
    parser.add_argument("--workers", type=int, default=None,
                        help="run trials on N local worker processes (a Dask LocalCluster)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run trials on an existing Dask scheduler, e.g. tcp://host:8786 "
                             "(shared storage: the session at the same path on every worker)")
    parser.add_argument("--force", action="store_true", help="run trials whose outputs are current too")
    parser.add_argument("--stages", help="comma-separated subset of stages (default: all)")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override a config value of every trial, TOML syntax (repeatable)")
    parser.add_argument("--no-report", action="store_true", help="no openkin/report.html per trial")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _session_log(session: Path, verbose: bool) -> logging.Handler | None:
    """Console down to warnings (the progress bar shows the rest) unless verbose; the whole
    batch's log in ``SESSION/openkin/logs/batch.log``."""
    root = logging.getLogger()
    if not verbose:
        for h in root.handlers:
            if type(h) is logging.StreamHandler:
                h.setLevel(max(h.level, logging.WARNING))
    handler = _file_handler(session / "openkin" / "logs" / "batch.log")
    if handler is not None:
        root.addHandler(handler)
    return handler


def main(args) -> int:
    """Exit 0 when every trial is done, skipped or excluded; 2 when one failed (see the summary)."""
    session = Path(args.session).expanduser().resolve()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    from .cli import _parse_set

    overrides = _parse_set(args.set)
    find_trials(session)  # a clear error before any log file is made
    handler = _session_log(session, getattr(args, "verbose", False))
    try:
        result = run_batch(session, stages=stages, overrides=overrides, workers=args.workers,
                           scheduler=args.scheduler, force=args.force, report=not args.no_report,
                           progress=not args.no_progress)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
    print(result.summary_md.read_text(encoding="utf-8"))
    print(f"summary: {result.summary_md}")
    return 0 if result.ok else 2

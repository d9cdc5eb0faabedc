"""Long work in a child process: start, poll its JSON-lines events, cancel.

bpy-free: the operators poll :class:`Job` from a ``bpy.app.timers`` function on
Blender's main thread (no Python threads in Blender), and under ``blender -b``
call :meth:`Job.wait`. The child is Blender's own Python (``sys.executable``;
with the ``bpy`` module it is the virtual environment's) running
:mod:`.runner`, with ``PYTHONPATH`` pointing at the folder that holds the
``openkin`` package (the extension's wheels folder when installed).
"""
from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("runner.py")
MAX_LOG_LINES = 200


ONLINE_ENV = "OPENKIN_ONLINE"   # "0": Blender's online access is off; the child downloads nothing


def child_env(online: bool = True) -> dict[str, str]:
    """The environment of the child: ours, plus where ``openkin`` and its wheels live, and
    whether it may download (``OPENKIN_ONLINE``; offline, pip is also told not to reach an index)."""
    import openkin

    env = dict(os.environ)
    extra = [str(Path(openkin.__file__).resolve().parent.parent)]
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(extra + ([old] if old else []))
    env["PYTHONUNBUFFERED"] = "1"
    env[ONLINE_ENV] = "1" if online else "0"
    if not online:
        env["PIP_NO_INDEX"] = "1"
    return env


class Job:
    """One child process. ``status``: 'new' → 'running' → 'done' | 'failed' | 'cancelled'."""

    def __init__(self, spec: dict, job_dir: str | Path, python: str | None = None, online: bool = True):
        """``spec``: the job (see :mod:`.runner`); its optional ``"cwd"`` is the child's working
        folder (default: ``job_dir``), so libraries that write into the current folder
        (OpenSim's ``opensim.log``) write there, never into Blender's."""
        self.spec = dict(spec)
        self.dir = Path(job_dir)
        self.python = python or sys.executable
        self.online = online
        self.status = "new"
        self.stage = ""
        self.stage_index, self.stage_count = 0, 1
        self.fraction = 0.0
        self.message = ""
        self.error = ""
        self.timings: dict[str, float] = {}
        self.log = collections.deque(maxlen=MAX_LOG_LINES)
        self.proc: subprocess.Popen | None = None
        self._offset = 0
        self._partial = b""

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def log_path(self) -> Path:
        return self.dir / "child.log"

    @property
    def overall(self) -> float:
        """Fraction of the whole job, in [0, 1]."""
        return min(1.0, (self.stage_index + self.fraction) / max(self.stage_count, 1))

    def start(self) -> "Job":
        self.dir.mkdir(parents=True, exist_ok=True)
        job_file = self.dir / "job.json"
        job_file.write_text(json.dumps({**self.spec, "events": str(self.events_path)}), encoding="utf-8")
        self.events_path.write_text("", encoding="utf-8")
        # own process group: cancel stops the stage's worker processes too
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        cwd = Path(self.spec.get("cwd") or self.dir)
        cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([self.python, "-u", str(RUNNER), str(job_file)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                         env=child_env(self.online), creationflags=flags,
                                         start_new_session=os.name == "posix")
        self.status = "running"
        log.info("job %s started (pid %d)", self.dir.name, self.proc.pid)
        return self

    def poll(self) -> bool:
        """Read new events; return True while the child still runs."""
        for event in self._read_events():
            self._apply(event)
        if self.proc is None or self.status in ("cancelled",):
            return False
        code = self.proc.poll()
        if code is None:
            return True
        for event in self._read_events():
            self._apply(event)
        if self.status == "running":
            self.status = "done" if code == 0 else "failed"
            if code != 0 and not self.error:
                self.error = f"the OpenKin process stopped with exit code {code} (see {self.log_path})"
        return False

    def wait(self, timeout: float | None = None, interval: float = 0.1) -> str:
        """Block until the child ends (background mode, tests); return the status."""
        t_end = None if timeout is None else time.monotonic() + timeout
        while self.poll():
            if t_end is not None and time.monotonic() > t_end:
                self.cancel()
                break
            time.sleep(interval)
        return self.status

    def cancel(self) -> None:
        """Terminate the child and its workers (killed if they do not stop within 3 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal(kill=False)
            try:
                self.proc.wait(3.0)
            except subprocess.TimeoutExpired:
                self._signal(kill=True)
                self.proc.wait()
        self.status = "cancelled"
        self.message = "cancelled"
        log.info("job %s cancelled", self.dir.name)

    def _signal(self, kill: bool) -> None:
        """Stop the child's process group (POSIX) or process tree (Windows), started by us."""
        if os.name == "posix":
            import signal
            try:
                os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            except ProcessLookupError:
                pass
        elif kill:
            self.proc.kill()
        else:
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(self.proc.pid)], capture_output=True)

    def _read_events(self) -> list[dict]:
        try:
            with open(self.events_path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next poll
        out = []
        for line in lines:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("bad event line from job %s: %r", self.dir.name, line[:200])
        return out

    def _apply(self, e: dict) -> None:
        kind = e.get("event")
        if kind == "stage":
            self.stage, self.stage_index, self.stage_count = e["stage"], e["index"], e["count"]
            self.fraction, self.message = 0.0, f"{e['stage']} …"
        elif kind == "progress":
            self.fraction, self.message = float(e["fraction"]), e.get("message", "")
        elif kind in ("stage_done", "skipped"):
            self.fraction = 1.0
            self.timings[e["stage"]] = e.get("seconds", 0.0)
            self.log.append(f"{e['stage']}: {'not built yet, skipped' if kind == 'skipped' else 'done in %.1f s' % e['seconds']}")
        elif kind == "log":
            self.log.append(f"{e['level'][0]} {e['message']}")
        elif kind == "error":
            self.error = e["message"]
            self.status = "cancelled" if e.get("kind") == "cancelled" else "failed"
        elif kind == "done":
            self.status, self.stage_index, self.fraction = "done", self.stage_count, 1.0
            self.message = "finished"

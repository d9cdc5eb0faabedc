"""Run the reference pipeline, Pose2Sim 0.10.49, side by side with OpenKin in benchmarks.

Pose2Sim lives in its own virtual environment, used only by the benchmarks
(``$OPENKIN_CACHE/bench/pose2sim-venv`` or ``~/.cache/openkin/bench/pose2sim-venv``),
created on first use with a Python 3.13 found like ``scripts/bootstrap.sh`` does.
``pose2sim==0.10.49`` is installed from PyPI with ``--no-deps`` plus the hand-picked
list of packages its association, triangulation, filtering and kinematics modules
import (no torch, no PySide6, no openvino: pose estimation is never run here).

Usage (from another benchmark)::

    from pose2sim_env import run_pose2sim
    times = run_pose2sim(project_dir, ["personAssociation", "triangulation", "filtering"],
                         overrides={"project": {"multi_person": False, "frame_rate": 60}})
    # -> {"personAssociation": 3.1, "triangulation": 7.9, "filtering": 0.4}

``run_pose2sim`` works on the folder you give it (copy the project first with
:func:`copy_project`): it writes a complete Pose2Sim ``Config.toml`` (Pose2Sim's
own demo file, made non-interactive, with your overrides) and runs each stage
in a subprocess, timing each call inside that process (the interpreter start
and imports are not counted).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

POSE2SIM_VERSION = "0.10.49"
# Modules imported by Pose2Sim's personAssociation, triangulation, filtering and
# kinematics (see their import lines); versions left to pip except OpenCV (Pose2Sim
# was written against OpenCV 4) and OpenSim (what the kinematics stage targets).
DEPENDENCIES = (
    "numpy", "scipy", "pandas", "matplotlib", "opencv-python-headless<5", "rtoml", "c3d",
    "anytree", "tqdm", "statsmodels", "filterpy", "lxml", "onnxruntime", "opensim==4.6",
)
# Non-interactive settings: no GUI, no figure windows, no plots saved.
NON_INTERACTIVE = {
    "synchronization": {"synchronization_gui": False, "display_sync_plots": False, "save_sync_plots": False},
    "pose": {"display_detection": False, "overwrite_pose": False, "save_video": "none"},
    "filtering": {"display_figures": False, "save_filt_plots": False},
    "logging": {"use_custom_logging": False},
}
_STAGES = ("synchronization", "personAssociation", "triangulation", "filtering", "markerAugmentation", "kinematics")

_RUNNER = r'''
import json, os, sys, time, logging
import matplotlib
matplotlib.use("Agg")
from pathlib import Path
from Pose2Sim import Pose2Sim
project, stages = Path(sys.argv[1]), sys.argv[2].split(",")
os.chdir(project)
times, cpu = {}, {}
for stage in stages:
    t0, c0 = time.perf_counter(), time.process_time()
    getattr(Pose2Sim, stage)(str(project))
    times[stage] = time.perf_counter() - t0
    cpu[stage] = time.process_time() - c0
for h in list(logging.getLogger().handlers):
    h.close()
print("POSE2SIM_CPU " + json.dumps(cpu))
print("POSE2SIM_TIMES " + json.dumps(times))
'''


def cache_dir() -> Path:
    return Path(os.environ.get("OPENKIN_CACHE") or Path.home() / ".cache" / "openkin") / "bench"


def venv_dir() -> Path:
    return cache_dir() / "pose2sim-venv"


def venv_python() -> Path:
    return venv_dir() / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_python313() -> str:
    """A Python 3.13 executable: $OPENKIN_PYTHON, python3.13 on PATH, pyenv, usual places."""
    candidates = [os.environ.get("OPENKIN_PYTHON"), shutil.which("python3.13")]
    for root in (Path.home() / ".pyenv" / "versions",):
        candidates += [str(p) for p in sorted(root.glob("3.13*/bin/python3.13"))]
    candidates += ["/usr/local/bin/python3.13", "/usr/bin/python3.13", "/opt/homebrew/bin/python3.13"]
    if sys.version_info[:2] == (3, 13):
        candidates.append(sys.executable)
    for c in candidates:
        if c and Path(c).exists():
            ok = subprocess.run([c, "-c", "import sys, venv; sys.exit(0 if sys.version_info[:2]==(3,13) else 1)"],
                                capture_output=True).returncode == 0
            if ok:
                return c
    raise RuntimeError("no Python 3.13 found for the Pose2Sim benchmark venv; set OPENKIN_PYTHON")


def ensure_venv(quiet: bool = True) -> Path:
    """Create (once) the Pose2Sim venv and return its python. Reused when the stamp matches."""
    py = venv_python()
    stamp = venv_dir() / ".openkin-pose2sim"
    want = json.dumps([POSE2SIM_VERSION, DEPENDENCIES])
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py
    venv_dir().parent.mkdir(parents=True, exist_ok=True)
    if not py.exists():
        subprocess.run([find_python313(), "-m", "venv", str(venv_dir())], check=True)
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"] + (["--quiet"] if quiet else [])
    subprocess.run(pip + list(DEPENDENCIES), check=True)
    subprocess.run(pip + ["--no-deps", f"pose2sim=={POSE2SIM_VERSION}"], check=True)
    stamp.write_text(want)
    return py


def _merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def write_config(project: Path, overrides: dict | None = None) -> Path:
    """Write ``project/Config.toml``: Pose2Sim's demo config, non-interactive, plus ``overrides``."""
    py = ensure_venv()
    code = ("import json, sys, rtoml, Pose2Sim, pathlib;"
            "p = pathlib.Path(Pose2Sim.__file__).parent / 'Demo_SinglePerson' / 'Config.toml';"
            "print(json.dumps(rtoml.load(p)))")
    out = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True).stdout
    config = json.loads(out)
    _merge(config, json.loads(json.dumps(NON_INTERACTIVE)))
    _merge(config, overrides or {})
    config.setdefault("project", {})["project_dir"] = "."
    target = Path(project) / "Config.toml"
    dump = ("import json, sys, rtoml; rtoml.dump(json.loads(sys.stdin.read()), open(sys.argv[1], 'w'))")
    subprocess.run([str(py), "-c", dump, str(target)], input=json.dumps(config), text=True, check=True)
    return target


def copy_project(src: Path, dest: Path, keep: tuple[str, ...] = ("calibration", "pose", "pose-sync")) -> Path:
    """Copy the input folders of a project (not its results) into a fresh ``dest``."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in keep:
        if (Path(src) / name).is_dir():
            shutil.copytree(Path(src) / name, dest / name)
    return dest


def run_pose2sim(project: Path, stages: list[str], overrides: dict | None = None,
                 timeout: float = 1800.0) -> dict[str, float]:
    """Run Pose2Sim ``stages`` on ``project`` (modified in place); seconds per stage."""
    unknown = [s for s in stages if s not in _STAGES]
    if unknown:
        raise ValueError(f"unknown Pose2Sim stage(s) {unknown}; choose among {_STAGES}")
    py = ensure_venv()
    write_config(Path(project), overrides)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    proc = subprocess.run([str(py), "-c", _RUNNER, str(project), ",".join(stages)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    line = next((ln for ln in proc.stdout.splitlines()[::-1] if ln.startswith("POSE2SIM_TIMES ")), None)
    if proc.returncode != 0 or line is None:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise RuntimeError(f"Pose2Sim failed on {project} (exit {proc.returncode}):\n{tail}")
    cpu = next((ln for ln in proc.stdout.splitlines()[::-1] if ln.startswith("POSE2SIM_CPU ")), None)
    LAST_CPU.clear()
    LAST_CPU.update(json.loads(cpu.split(" ", 1)[1]) if cpu else {})
    return json.loads(line.split(" ", 1)[1])


LAST_CPU: dict[str, float] = {}  # CPU seconds (all threads of the Pose2Sim process) per stage of the last run


if __name__ == "__main__":
    print(ensure_venv(quiet=False))

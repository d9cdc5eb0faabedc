"""Where OpenSim writes its ``opensim.log``: a folder we choose, never the current one.

OpenSim opens its log file lazily, in whatever folder is current at its first message
(loading a model even changes into the model's folder), so a user's shell folder, Blender's
folder, the project's or the model cache would collect ``opensim.log`` files. The kinematics
stage sends it to ``PROJECT/openkin/logs/``; its worker processes follow (the folder is
passed on in ``OPENKIN_OPENSIM_LOG``); the Blender add-on calls the same function.
"""
from __future__ import annotations

import os
from pathlib import Path

LOG_NAME = "opensim.log"
ENV = "OPENKIN_OPENSIM_LOG"


def redirect_opensim_log(folder: str | Path) -> Path:
    """Send OpenSim's log file to ``folder/opensim.log`` (this process and the worker
    processes it starts later); its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_NAME
    os.environ[ENV] = str(path)
    _add_sink(path)
    return path


def follow_parent_log() -> None:
    """In a worker process: log where the parent said (no-op when it said nothing)."""
    if os.environ.get(ENV):
        _add_sink(Path(os.environ[ENV]))


def _add_sink(path: Path) -> None:
    import opensim

    opensim.Logger.removeFileSink()
    opensim.Logger.addFileSink(str(path))

"""Where OpenSim writes its ``opensim.log``: a folder we choose, never the current one.

OpenSim opens its log file lazily, in whatever folder is current at its first message
(loading a model even changes into the model's folder), so Blender's folder, the
project's or the model cache would collect ``opensim.log`` files. This module has no
relative imports: the child-process runner loads it by path.
"""
from __future__ import annotations

from pathlib import Path

LOG_NAME = "opensim.log"


def redirect_opensim_log(folder: str | Path) -> Path:
    """Send OpenSim's log file to ``folder/opensim.log``; its path."""
    import opensim

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_NAME
    opensim.Logger.removeFileSink()
    opensim.Logger.addFileSink(str(path))
    return path

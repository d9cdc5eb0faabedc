"""Make a Pose2Sim-layout project folder from a folder of videos and a calibration file."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from openkin.errors import OpenKinError
from openkin.fileio import atomic_write

from .capture import VIDEO_EXTS

log = logging.getLogger(__name__)

# File name ending → Pose2Sim ``convert_from`` value. A .toml is used as it is.
CONVERTERS = {".qca.txt": "qualisys", ".xcp": "vicon", ".pickle": "opencap", ".yml": "easymocap"}


def calibration_kind(path: Path) -> str | None:
    """None for a ready calibration TOML, else the converter's name."""
    name = path.name.lower()
    if name.endswith(".toml"):
        return None
    for ending, kind in CONVERTERS.items():
        if name.endswith(ending):
            return kind
    raise OpenKinError("unrecognised calibration file", path=path,
                       fix="give a Pose2Sim .toml, a Qualisys .qca.txt, a Vicon .xcp or an OpenCap .pickle")


def make_project(root: Path, videos_dir: Path, calibration: Path) -> Path:
    """Copy the videos and the calibration into ``root`` (a new or empty folder) and write Config.toml."""
    if not videos_dir.is_dir():
        raise OpenKinError("videos folder not found", path=videos_dir, fix="choose the folder of the videos")
    videos = sorted(p for p in videos_dir.iterdir() if p.suffix.lower() in VIDEO_EXTS)
    if not videos:
        raise OpenKinError("no video files in the folder", path=videos_dir,
                           fix=f"put one video per camera there ({', '.join(VIDEO_EXTS)})")
    if not calibration.is_file():
        raise OpenKinError("calibration file not found", path=calibration, fix="choose the calibration file")
    kind = calibration_kind(calibration)
    if root.exists() and any(root.iterdir()):
        raise OpenKinError("the project folder is not empty; not overwriting it", path=root,
                           fix="choose a new or empty folder")
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "calibration").mkdir(exist_ok=True)
    for v in videos:
        shutil.copy2(v, root / "videos" / v.name)
    shutil.copy2(calibration, root / "calibration" / calibration.name)
    with atomic_write(root / "Config.toml") as f:
        f.write("# Made by the OpenKin Blender panel. Keys as Pose2Sim's Config.toml.\n")
        if kind:
            f.write(f"[calibration]\ncalibration_type = 'convert'\n\n[calibration.convert]\nconvert_from = '{kind}'\n")
    log.info("project %s: %d videos, calibration %s", root, len(videos), calibration.name)
    return root

"""The folders of a Pose2Sim-layout project, in one place.

A trial folder holds (or inherits) everything a run needs. Pose2Sim's batch
layout nests trials in participant and session folders::

    S00_Session/                 Config.toml   S00_Calibration/  (any folder whose name holds "calib")
      S00_P00_Participant/       Config.toml
        S00_P00_T01_Trial/       Config.toml   videos/  pose/  pose-3d/ ...

Two rules live here and nowhere else:

- :func:`project_levels`: which folders a trial inherits from (its config
  files, its calibration): the trial, then each parent holding a
  ``Config.toml``, at most two (participant, session), stopping at the first
  parent without one.
- :func:`find_calibration_dir`: the calibration folder: ``calibration/`` or a
  folder whose name contains ``calib`` (case-insensitive), searched in the trial
  folder first, then in its parents of :func:`project_levels`.

:func:`match_camera_names` says which pose folder (``cam01_json``,
``pose/Cam_1``...) belongs to which calibrated camera.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import OpenKinError

log = logging.getLogger(__name__)

CONFIG_NAME = "Config.toml"
MAX_PARENT_LEVELS = 2  # participant, session


def project_levels(trial: str | Path) -> list[Path]:
    """Folders a trial inherits from, outermost first: ``[session?, participant?, trial]``."""
    trial = Path(trial)
    levels = [trial]
    folder = trial
    for _ in range(MAX_PARENT_LEVELS):
        parent = folder.parent
        if parent == folder or not (parent / CONFIG_NAME).is_file():
            break
        levels.insert(0, parent)
        folder = parent
    return levels


def _calib_dirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` whose name contains "calib", ``calibration`` first."""
    try:
        found = [p for p in folder.iterdir() if p.is_dir() and "calib" in p.name.lower()
                 and not p.name.startswith(".")]
    except OSError:
        return []
    return sorted(found, key=lambda p: (p.name.lower() != "calibration", p.name.lower()))


def find_calibration_dir(trial: str | Path) -> Path | None:
    """The calibration folder of ``trial`` (see the module docstring), or None."""
    for folder in reversed(project_levels(Path(trial))):
        found = _calib_dirs(folder)
        if found:
            if len(found) > 1:
                log.info("several calibration folders in %s: using %s", folder, found[0].name)
            return found[0]
    return None


@dataclass(frozen=True)
class ProjectPaths:
    """Folders of one trial. ``root`` holds Config.toml (or inherits one from its session folder)."""

    root: Path

    @property
    def calibration(self) -> Path:
        """The calibration folder this trial uses (its own, else its session's); ``root/calibration``
        when there is none yet."""
        return find_calibration_dir(self.root) or self.root / "calibration"

    @property
    def videos(self) -> Path:
        return self.root / "videos"

    @property
    def pose(self) -> Path:
        return self.root / "pose"

    @property
    def pose_sync(self) -> Path:
        return self.root / "pose-sync"

    @property
    def pose_associated(self) -> Path:
        return self.root / "pose-associated"

    @property
    def pose_3d(self) -> Path:
        return self.root / "pose-3d"

    @property
    def kinematics(self) -> Path:
        return self.root / "kinematics"

    @property
    def reports(self) -> Path:
        return self.root / "openkin"

    @property
    def logs(self) -> Path:
        return self.root / "openkin" / "logs"

    @property
    def name(self) -> str:
        return self.root.name


# =========================================================================== camera names
_JSON_SUFFIX = re.compile(r"_json$", re.IGNORECASE)


def _normalise(name: str) -> str:
    """``cam_01_json`` / ``Cam1`` / ``camera01`` → ``cam1``: lower case, no separators, no
    ``_json`` suffix, numbers without leading zeros, "camera" read as "cam"."""
    s = _JSON_SUFFIX.sub("", name).lower()
    s = re.sub(r"[^a-z0-9]", "", s).replace("camera", "cam")
    return re.sub(r"\d+", lambda m: str(int(m.group())), s)


def _number(name: str) -> int | None:
    digits = re.findall(r"\d+", _JSON_SUFFIX.sub("", name))
    return int(digits[-1]) if digits else None


def match_camera_names(calib_names: list[str], folder_names: list[str]) -> dict[str, str]:
    """Which folder belongs to which calibrated camera: ``{calib_name: folder_name}``.

    ``folder_names``: pose folders (``cam01_json``), videos' stems, or any per-camera
    names. Tried in order, the first that pairs every folder with a distinct camera wins:

    1. same name (``_json`` dropped): ``cam01`` ↔ ``cam01_json``;
    2. same normalised name (case, separators, leading zeros, "camera"):
       ``Cam_1`` ↔ ``cam01``;
    3. same last number: ``int_cam01_img`` ↔ ``camera_1``;
    4. by order (sorted names), when the counts are equal; logged, since it is a guess.

    Cameras with no folder are left out (a trial filmed by fewer cameras than
    calibrated). OpenKinError when the folders cannot all be paired.
    """
    folders = list(folder_names)
    if not folders:
        return {}
    for key in (lambda n: _JSON_SUFFIX.sub("", n), _normalise, _number):
        cams = {}
        for c in calib_names:
            cams.setdefault(key(c), []).append(c)
        pairs = {}
        for f in folders:
            k = key(f)
            if k is None or len(cams.get(k, [])) != 1 or cams[k][0] in pairs:
                break
            pairs[cams[k][0]] = f
        else:
            return {c: pairs[c] for c in calib_names if c in pairs}
    if len(folders) == len(calib_names) and folders:
        log.warning("camera names %s and folders %s do not match: paired by order", list(calib_names), folders)
        return dict(zip(calib_names, sorted(folders, key=_natural)))
    raise OpenKinError(f"cannot tell which of the {len(folders)} folders ({', '.join(folders)}) belongs to "
                       f"which of the {len(calib_names)} calibrated cameras ({', '.join(calib_names)})",
                       fix="name each folder after its camera in the calibration file (e.g. "
                           f"{calib_names[0] if calib_names else 'cam01'}_json), or give as many folders as cameras")


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# =========================================================================== calibration file
def find_calibration(calib_dir: str | Path | ProjectPaths, exclude: tuple[str, ...] = ()) -> Path:
    """The calibration TOML later stages use: the newest ``Calib*.toml`` in ``calib_dir``,
    else the only other ``*.toml`` there (anipose / Caliscope / FreeMoCap); files named in
    ``exclude`` are not candidates."""
    if isinstance(calib_dir, ProjectPaths):
        calib_dir = calib_dir.calibration
    calib_dir = Path(calib_dir)
    if not calib_dir.is_dir():
        raise OpenKinError("no calibration folder", path=calib_dir,
                           fix="create it with the calibration file (e.g. Calib.qca.txt), "
                               "then run `openkin calibration`")
    ours = sorted((p for p in calib_dir.glob("Calib*.toml") if p.name not in exclude), key=lambda p: p.stat().st_mtime)
    if ours:
        if len(ours) > 1:
            log.info("several calibrations in %s: using the newest, %s", calib_dir, ours[-1].name)
        return ours[-1]
    others = sorted(p for p in calib_dir.glob("*.toml") if p.name not in exclude)
    if len(others) == 1:
        return others[0]
    raise OpenKinError("no calibration TOML" if not others else
                       f"several calibration TOMLs and none named Calib*.toml: {[p.name for p in others]}",
                       path=calib_dir,
                       fix="run `openkin calibration` (convert or calculate), "
                           "or keep one TOML named Calib_<something>.toml")

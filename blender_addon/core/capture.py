"""Find and read everything a capture needs before the scene is touched.

A Pose2Sim/OpenKin project (``calibration/*.toml``, ``videos/``, ``pose-3d/*.trc``,
``kinematics/*.mot`` + ``*_scaled.osim``) or single files are turned into a
:class:`Capture`: all files read and checked, all arrays in the Blender world
(Z-up). Any problem raises ``OpenKinError`` here, so a failed import never
leaves half a scene behind.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openkin.errors import OpenKinError
from openkin.progress import Progress, report, scaled

from . import axes

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
_PERSON = re.compile(r"_P(\d+)(?=[_.-]|$)", re.IGNORECASE)


@dataclass
class PersonFiles:
    name: str
    trc: Path | None = None
    osim: Path | None = None
    mot: Path | None = None


@dataclass
class CaptureFiles:
    """Paths of one capture; any may be None/empty (then that part is not built)."""

    root: Path | None = None
    calibration: Path | None = None
    videos: list[Path] = field(default_factory=list)
    people: list[PersonFiles] = field(default_factory=list)
    sync: Path | None = None    # pose-sync/offsets.toml: per-camera time offsets (synchronization stage)


@dataclass
class Person:
    """One person. ``markers``: (F, M, 3) Z-up metres (NaN = missing); ``body_frames``: (F, B, 4, 4) Z-up."""

    name: str
    marker_names: list[str] = field(default_factory=list)
    markers: np.ndarray | None = None
    marker_frames: np.ndarray | None = None      # (F,) scene frame of each TRC row
    model: object | None = None                  # osim_model.OsimModel
    body_frames: np.ndarray | None = None
    rest_frames: np.ndarray | None = None        # (B, 4, 4) Z-up
    motion_frames: np.ndarray | None = None      # (F,) scene frame of each MOT row


@dataclass
class Capture:
    cameras: list = field(default_factory=list)              # openkin.formats.calibration.Camera
    videos: dict[str, Path] = field(default_factory=dict)   # camera name → video
    video_offsets: dict[str, int] = field(default_factory=dict)  # camera name → video frame − reference frame
    people: list[Person] = field(default_factory=list)
    fps: float = 30.0
    frame_range: tuple[int, int] = (1, 1)
    name: str = "capture"


# ------------------------------------------------------------------ discovery
def _person_key(path: Path) -> str:
    m = _PERSON.search(path.stem)
    return f"P{int(m.group(1))}" if m else "P0"


def _trc_rank(path: Path) -> tuple[int, float]:
    """Most processed first: LSTM-augmented > filtered > raw; then newest."""
    stem = path.stem.lower()
    level = 3 if "lstm" in stem else 2 if "filt" in stem else 1
    return level, path.stat().st_mtime


def find_project(root: str | Path) -> CaptureFiles:
    """Locate the calibration, videos, TRC and OpenSim results of a project folder."""
    root = Path(root)
    if not root.is_dir():
        raise OpenKinError("project folder not found", path=root, fix="choose the trial folder (it holds calibration/ and videos/)")
    calibs = sorted((root / "calibration").glob("*.toml")) if (root / "calibration").is_dir() else []
    videos = sorted(p for p in (root / "videos").glob("*") if p.suffix.lower() in VIDEO_EXTS) if (root / "videos").is_dir() else []
    people: dict[str, PersonFiles] = {}
    for trc in sorted((root / "pose-3d").glob("*.trc")) if (root / "pose-3d").is_dir() else []:
        person = people.setdefault(_person_key(trc), PersonFiles(_person_key(trc)))
        if person.trc is None or _trc_rank(trc) > _trc_rank(person.trc):
            person.trc = trc
    kin = root / "kinematics"
    for mot in sorted(kin.glob("*.mot")) if kin.is_dir() else []:
        person = people.setdefault(_person_key(mot), PersonFiles(_person_key(mot)))
        osim = next((o for o in (kin / f"{mot.stem}_scaled.osim", kin / f"{mot.stem}.osim") if o.is_file()), None)
        if osim is None:
            same = [o for o in kin.glob("*.osim") if _person_key(o) == person.name]
            osim = same[0] if len(same) == 1 else None
        if osim is not None:
            person.mot, person.osim = mot, osim
    if not calibs and not people:
        raise OpenKinError("no calibration TOML (calibration/*.toml) and no results (pose-3d/*.trc, "
                           "kinematics/*.mot) in the project folder", path=root,
                           fix="run the pipeline first, or import single files")
    sync = root / "pose-sync" / "offsets.toml"
    return CaptureFiles(root, _pick_calibration(calibs), videos, [people[k] for k in sorted(people)],
                        sync if sync.is_file() else None)


def _pick_calibration(calibs: list[Path]) -> Path | None:
    if not calibs:
        return None
    preferred = [c for c in calibs if c.stem.lower().startswith("calib")]
    return max(preferred or calibs, key=lambda p: p.stat().st_mtime)


def _norm(name: str) -> str:
    """'cam_01' / 'Cam01' / 'cam1' → 'cam1' (letters + number without leading zeros)."""
    name = name.lower()
    letters = re.sub(r"[^a-z]", "", re.sub(r"\d+", "", name))
    digits = re.findall(r"\d+", name)
    return letters + (str(int(digits[-1])) if digits else "")


def match_videos(camera_names: list[str], videos: list[Path], calib_path: Path | None = None) -> dict[str, Path]:
    """Camera name → video, matching names like ``cam_01`` ↔ ``cam01.mp4``.

    Raises when videos are given but none matches any camera.
    """
    if not videos:
        return {}
    by_norm = {_norm(v.stem): v for v in videos}
    out = {c: by_norm[_norm(c)] for c in camera_names if _norm(c) in by_norm}
    if not out:
        raise OpenKinError(
            f"none of the calibration's cameras ({', '.join(camera_names)}) matches a video "
            f"({', '.join(v.name for v in videos)})", path=calib_path,
            fix="name each video after its camera (e.g. cam01.mp4 for camera cam_01), or choose the "
                "calibration made for these videos")
    for c in camera_names:
        if c not in out:
            log.warning("camera %s has no video", c)
    return out


# ------------------------------------------------------------------ reading
def load_capture(files: CaptureFiles, *, fps: float | None = None, progress: Progress | None = None) -> Capture:
    """Read and check every file of ``files``; nothing is created in Blender here."""
    from openkin.formats.calibration import read_calibration

    cap = Capture(name=files.root.name if files.root else "capture")
    if files.calibration is not None:
        if not Path(files.calibration).is_file():
            raise OpenKinError("calibration file not found", path=files.calibration, fix="choose an existing .toml")
        cap.cameras = read_calibration(files.calibration)
        cap.videos = match_videos([c.name for c in cap.cameras], list(files.videos), files.calibration)
        cap.video_offsets = read_video_offsets(files.sync, list(cap.videos)) if files.sync else {}
    rates = []
    n = max(1, len(files.people))
    for i, pf in enumerate(files.people):
        person, rate = _load_person(pf, scaled(progress, i / n, (i + 1) / n))
        cap.people.append(person)
        rates.extend(rate)
    cap.fps = float(fps or (rates[0] if rates else _video_fps(cap.videos) or 30.0))
    _assign_frames(cap)
    report(progress, 1.0, "files read")
    return cap


def read_video_offsets(path: Path, camera_names: list[str]) -> dict[str, int]:
    """Camera name → how many frames its video runs ahead of the reference timeline.

    The synchronization stage renames camera frame k to reference frame k + shift_frames,
    so at reference frame r the camera's video shows frame r − shift_frames.
    """
    import tomllib

    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise OpenKinError(f"cannot read the synchronization offsets ({e})", path=path,
                           fix="run the synchronization stage again, or delete this file") from None
    cams = {_norm(k): v for k, v in doc.get("cameras", {}).items()}
    return {c: -int(cams[_norm(c)].get("shift_frames", 0)) for c in camera_names if _norm(c) in cams}


def _video_fps(videos: dict[str, Path]) -> float | None:
    if not videos:
        return None
    import cv2

    vc = cv2.VideoCapture(str(next(iter(videos.values()))))
    rate = vc.get(cv2.CAP_PROP_FPS)
    vc.release()
    return float(rate) if rate and rate > 0 else None


def _load_person(pf: PersonFiles, progress: Progress | None) -> tuple[Person, list[float]]:
    person, rates = Person(pf.name), []
    if pf.trc is not None:
        trc = _read_markers(Path(pf.trc))
        person.marker_names = list(trc.marker_names)
        person.markers = axes.yup_to_zup_points(trc.xyz)
        person.marker_frames = trc.times  # converted to scene frames once fps is known
        rates.append(trc.rate)
    if pf.mot is not None or pf.osim is not None:
        if pf.mot is None or pf.osim is None:
            raise OpenKinError("an OpenSim motion needs both its .osim model and its .mot", path=pf.mot or pf.osim,
                               fix="choose both files")
        rates.append(_load_motion(person, Path(pf.osim), Path(pf.mot), progress))
    return person, rates


def _read_markers(path: Path):
    if not path.is_file():
        raise OpenKinError("marker file not found", path=path, fix="choose an existing .trc or .c3d file")
    if path.suffix.lower() == ".c3d":
        from openkin.formats.c3d import read_c3d
        return read_c3d(path)
    from openkin.formats.trc import read_trc
    return read_trc(path)


def _load_motion(person: Person, osim: Path, mot: Path, progress: Progress | None) -> float:
    from openkin.formats.mot import read_mot

    from . import osim_model

    if not mot.is_file():
        raise OpenKinError("motion file not found", path=mot, fix="choose an existing .mot file")
    motion = read_mot(mot)
    model = osim_model.load_model(osim)
    q = osim_model.motion_to_q(model, motion.names, motion.values, motion.in_degrees, mot)
    frames = osim_model.body_frames(model, q, progress)
    person.model = model
    person.body_frames = axes.yup_to_zup_transforms(frames)
    person.rest_frames = axes.yup_to_zup_transforms(model.rest)
    person.motion_frames = motion.times
    return motion.rate


def _assign_frames(cap: Capture) -> None:
    """Times (s) → scene frames: frame = round(t · fps) + 1 (video frame 0 is scene frame 1)."""
    lo, hi = [], []
    for p in cap.people:
        for attr in ("marker_frames", "motion_frames"):
            t = getattr(p, attr)
            if t is not None and len(t):
                frames = np.round(np.asarray(t) * cap.fps).astype(int) + 1
                setattr(p, attr, frames)
                lo.append(frames.min())
                hi.append(frames.max())
    if lo:
        cap.frame_range = (int(min(lo)), int(max(hi)))
    elif cap.videos:
        cap.frame_range = (1, max(_video_length(v) for v in cap.videos.values()))


def _video_length(path: Path) -> int:
    import cv2

    vc = cv2.VideoCapture(str(path))
    n = int(vc.get(cv2.CAP_PROP_FRAME_COUNT))
    vc.release()
    return max(n, 1)

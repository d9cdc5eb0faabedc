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
    warnings: list[str] = field(default_factory=list)   # found while locating the files


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
    mot_path: Path | None = None                 # the .mot (the animation skeleton reads it with the model)


@dataclass
class Capture:
    cameras: list = field(default_factory=list)              # openkin.formats.calibration.Camera
    videos: dict[str, Path] = field(default_factory=dict)   # camera name → video
    video_offsets: dict[str, int] = field(default_factory=dict)  # camera name → video frame − reference frame
    people: list[Person] = field(default_factory=list)
    fps: float = 30.0
    frame_range: tuple[int, int] = (1, 1)
    name: str = "capture"
    warnings: list[str] = field(default_factory=list)   # suspicious but importable (shown in the panel)


# ------------------------------------------------------------------ discovery
MANIFEST = Path("openkin") / "manifest.json"
# Stages whose outputs the import shows, most downstream last (the engine's pipeline order).
TRC_STAGES = ("triangulation", "filtering", "augmentation")
MOT_STAGES = ("kinematics",)


def _person_key(path: Path) -> str:
    m = _PERSON.search(path.stem)
    return f"P{int(m.group(1))}" if m else "P0"


def trc_stage(path: Path) -> str:
    """The stage that wrote a ``pose-3d`` TRC, from Pose2Sim's names: ``*_LSTM`` augmentation,
    ``*_filt_*`` filtering, else triangulation."""
    stem = path.stem.lower()
    return "augmentation" if "lstm" in stem else "filtering" if "_filt" in stem else "triangulation"


def _freshest(candidates: list[tuple[int, Path]]) -> Path | None:
    """The most downstream file that is not older than any file upstream of it (a downstream
    file older than its inputs comes from an earlier run: stale); ties → newest.

    ``candidates``: (stage level, path); a higher level is further down the pipeline."""
    if not candidates:
        return None
    mtime = {p: p.stat().st_mtime for _, p in candidates}
    ranked = sorted(candidates, key=lambda c: (c[0], mtime[c[1]]), reverse=True)
    for level, path in ranked:
        upstream = [mtime[p] for lv, p in candidates if lv < level]
        if not upstream or mtime[path] >= max(upstream):
            return path
    return ranked[-1][1]


def read_manifest(root: Path) -> dict[str, list[Path]] | None:
    """Stage name → the files it wrote in the last run (current outputs only: a stage whose
    record is not ``done`` gives []), from the engine's run manifest
    (:class:`openkin.manifest.Manifest`, ``PROJECT/openkin/manifest.json``); None when the
    project has no manifest (a Pose2Sim project, or one made before manifests)."""
    from openkin.manifest import Manifest

    manifest = Manifest.load(root)
    if not manifest.path.is_file():
        return None
    return {name: manifest.outputs(name) or [] for name in manifest.stages}


def _stage_files(root: Path) -> dict[str, list[Path]]:
    """Stage name → its result files: from the manifest when present, else from the folders."""
    manifest = read_manifest(root)
    if manifest is not None:
        out = {name: [p for p in files if p.is_file()] for name, files in manifest.items()}
        missing = [p for files in manifest.values() for p in files if not p.exists()]
        if missing:
            log.warning("files listed in %s are missing: %s", root / MANIFEST, ", ".join(p.name for p in missing))
        return out
    out: dict[str, list[Path]] = {}
    for trc in sorted((root / "pose-3d").glob("*.trc")) if (root / "pose-3d").is_dir() else []:
        out.setdefault(trc_stage(trc), []).append(trc)
    kin = root / "kinematics"
    out["kinematics"] = sorted(p for p in kin.glob("*") if p.suffix in (".mot", ".osim")) if kin.is_dir() else []
    return out


def _osim_for(mot: Path, person: str, candidates: list[Path]) -> Path | None:
    """The scaled model of a motion: ``<stem>_scaled.osim`` or ``<stem>.osim``, else the person's only one."""
    by_name = {p.name: p for p in candidates}
    for name in (f"{mot.stem}_scaled.osim", f"{mot.stem}.osim"):
        if name in by_name:
            return by_name[name]
    same = [o for o in candidates if _person_key(o) == person]
    return same[0] if len(same) == 1 else None


def latest_outputs(root: str | Path) -> CaptureFiles:
    """The results to import: per person, the TRC of the most downstream stage (augmentation >
    filtering > triangulation) that is not older than its inputs, and the newest kinematics
    motion with its scaled model; from ``openkin/manifest.json`` (the files the last run
    wrote) when present, else from ``pose-3d/`` and ``kinematics/`` by name and mtime.
    Only ``people`` (and ``root``) are filled."""
    root = Path(root)
    files = _stage_files(root)
    levels = {name: i for i, name in enumerate(TRC_STAGES)}
    trcs: dict[str, list[tuple[int, Path]]] = {}
    for stage in TRC_STAGES:
        for p in files.get(stage, []):
            if p.suffix.lower() == ".trc":
                trcs.setdefault(_person_key(p), []).append((levels[stage], p))
    kin = [p for s in MOT_STAGES for p in files.get(s, [])]
    osims = [p for p in kin if p.suffix.lower() == ".osim"]
    mots: dict[str, list[tuple[int, Path]]] = {}
    for p in kin:
        if p.suffix.lower() == ".mot" and _osim_for(p, _person_key(p), osims) is not None:
            mots.setdefault(_person_key(p), []).append((0, p))
    people = []
    for key in sorted(set(trcs) | set(mots), key=lambda k: int(k[1:])):
        mot = _freshest(mots.get(key, []))
        people.append(PersonFiles(key, _freshest(trcs.get(key, [])), _osim_for(mot, key, osims) if mot else None, mot))
    return CaptureFiles(root, people=people)


def find_project(root: str | Path) -> CaptureFiles:
    """Everything a project import needs: the calibration the engine uses, the videos, the
    latest results (:func:`latest_outputs`), the synchronisation offsets; ``warnings`` lists
    what is missing or suspicious (the import goes on)."""
    root = Path(root)
    if not root.is_dir():
        raise OpenKinError("project folder not found", path=root, fix="choose the trial folder (it holds calibration/ and videos/)")
    files = latest_outputs(root)
    files.calibration = project_calibration(root)
    files.videos, problems = project_videos(root)
    files.warnings.extend(problems)
    if files.calibration is None and not files.people:
        raise OpenKinError("no calibration TOML (calibration/*.toml) and no results (pose-3d/*.trc, "
                           "kinematics/*.mot) in the project folder", path=root,
                           fix="run the pipeline first, or import single files")
    if files.calibration is not None and not files.videos:
        files.warnings.append(f"no videos in {root / 'videos'}: the cameras are shown without their footage")
    for p in files.people:
        if p.trc is not None and p.mot is not None and p.mot.stat().st_mtime < p.trc.stat().st_mtime:
            files.warnings.append(f"{p.name}: the skeleton ({p.mot.name}) is older than the markers "
                                  f"({p.trc.name}): run the kinematics stage again to update it")
    sync = root / "pose-sync" / "offsets.toml"
    files.sync = sync if sync.is_file() else None
    return files


def project_calibration(root: Path) -> Path | None:
    """The calibration the project's results were computed with, by the engine's rule
    (:func:`openkin.context.calibration_in_use`: the one the last run recorded, else the
    newest ``Calib*.toml`` of the trial's or its session's calibration folder); None when
    there is none at all."""
    from openkin.context import calibration_in_use
    from openkin.project import ProjectPaths

    paths = ProjectPaths(Path(root))
    calib_dir = paths.calibration
    if not calib_dir.is_dir() or not any(calib_dir.glob("*.toml")):
        return None
    return calibration_in_use(paths)


def project_videos(root: Path) -> tuple[list[Path], list[str]]:
    """The project's videos in the engine's camera order (:func:`openkin.pose.video.find_cameras`),
    and the problems it found; ([], []) without a videos folder."""
    videos_dir = Path(root) / "videos"
    if not videos_dir.is_dir():
        return [], []
    from openkin.pose.video import find_cameras

    cams, problems = find_cameras(videos_dir)
    return [c.path for c in cams if c.kind == "video"], list(problems)


def match_camera_names(names: list[str], cameras: list, calib_path: Path | None) -> dict[str, object]:
    """Name (a video's stem, an offsets entry) → its calibrated camera, by the engine's one rule
    for camera names (:func:`openkin.inputs.match_cameras`: same name, normalised name, last
    number, else by order with a warning in the log); an ``OpenKinError`` when they cannot be
    paired. The ONE place the add-on matches camera names (videos, offsets, pose folders)."""
    from openkin.inputs import match_cameras

    matched = match_cameras([Path(f"{n}_json") for n in names], cameras, calib_path or Path("calibration"))
    return dict(zip(names, matched))


def match_videos(cameras: list, videos: list[Path], calib_path: Path | None = None,
                 warnings: list[str] | None = None) -> dict[str, Path]:
    """Camera name → video (video stem = camera name, else by order; see :func:`match_camera_names`).

    Appends to ``warnings`` the cameras without a video. Raises when the videos cannot be matched."""
    if not videos:
        return {}
    names = [v.stem for v in videos]
    try:
        by_video = match_camera_names(names, cameras, calib_path)
    except OpenKinError:
        raise OpenKinError(
            f"the videos ({', '.join(v.name for v in videos)}) do not match the calibration's cameras "
            f"({', '.join(c.name for c in cameras)}) by name, nor by order ({len(videos)} videos for "
            f"{len(cameras)} cameras)", path=calib_path,
            fix="name each video after its camera (e.g. cam01.mp4 for camera cam01), or choose the "
                "calibration made for these videos") from None
    out = {cam.name: video for video, cam in zip(videos, by_video.values())}
    notes = warnings if warnings is not None else []
    if any(n not in {c.name for c in cameras} for n in names):
        notes.append(f"videos matched to the cameras by order, not by name: "
                     f"{', '.join(f'{v.name} → {c}' for c, v in out.items())}")
    missing = [c.name for c in cameras if c.name not in out]
    if missing:
        notes.append(f"no video for camera{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                     f"(expected videos/<camera name>.mp4)")
    return out


# ------------------------------------------------------------------ reading
def load_capture(files: CaptureFiles, *, fps: float | None = None, progress: Progress | None = None,
                 opensim_log_dir: Path | None = None) -> Capture:
    """Read and check every file of ``files``; nothing is created in Blender here.

    ``opensim_log_dir``: where OpenSim writes its ``opensim.log`` while the models load
    (by default OpenSim opens it in whatever folder is current at its first message)."""
    from openkin.formats.calibration import read_calibration

    cap = Capture(name=files.root.name if files.root else "capture", warnings=list(files.warnings))
    if files.calibration is not None:
        if not Path(files.calibration).is_file():
            raise OpenKinError("calibration file not found", path=files.calibration, fix="choose an existing .toml")
        cap.cameras = read_calibration(files.calibration)
        cap.videos = match_videos(cap.cameras, list(files.videos), files.calibration, cap.warnings)
        cap.video_offsets = read_video_offsets(files.sync, cap.cameras, cap.warnings) if files.sync else {}
    rates = []
    n = max(1, len(files.people))
    if opensim_log_dir is not None and any(pf.osim for pf in files.people):
        from openkin.kinematics.opensim_log import redirect_opensim_log

        redirect_opensim_log(opensim_log_dir)
    for i, pf in enumerate(files.people):
        person, rate = _load_person(pf, scaled(progress, i / n, (i + 1) / n))
        cap.people.append(person)
        rates.extend(rate)
    cap.fps = float(fps or _scene_fps(cap, rates))
    _assign_frames(cap)
    cap.warnings.extend(person_warnings(cap, files))
    report(progress, 1.0, "files read")
    return cap


def read_video_offsets(path: Path, cameras: list, warnings: list[str] | None = None) -> dict[str, int]:
    """Camera name → how many frames its video runs ahead of the reference timeline.

    The synchronization stage renames camera frame k to reference frame k + shift_frames,
    so at reference frame r the camera's video shows frame r − shift_frames. The file's
    camera entries are matched to ``cameras`` by :func:`match_camera_names`.
    """
    import tomllib

    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise OpenKinError(f"cannot read the synchronization offsets ({e})", path=path,
                           fix="run the synchronization stage again, or delete this file") from None
    entries = doc.get("cameras", {})
    try:
        matched = match_camera_names(list(entries), cameras, path)
    except OpenKinError as e:
        if warnings is not None:
            warnings.append(f"synchronisation offsets not used: {e.problem}")
        return {}
    return {cam.name: -int(entries[key].get("shift_frames", 0)) for key, cam in matched.items()}


def person_warnings(cap: Capture, files: CaptureFiles) -> list[str]:
    """TRC files shorter than their header says, and bodies that jump (identity switches)."""
    from .checks import body_jumps, describe_jumps, trc_declared_frames

    out = []
    by_name = {pf.name: pf for pf in files.people}
    for person in cap.people:
        pf = by_name.get(person.name)
        if pf is not None and pf.trc is not None and Path(pf.trc).suffix.lower() == ".trc":
            declared = trc_declared_frames(pf.trc)
            if declared is not None and person.markers is not None and len(person.markers) < declared:
                out.append(f"{person.name}: {Path(pf.trc).name} has {len(person.markers)} frames but its header "
                           f"says {declared}: the file was cut short (re-run the stage that wrote it)")
        if person.markers is not None:
            jumps = body_jumps(person.markers, person.marker_frames, cap.fps)
            if jumps:
                out.append(describe_jumps(person.name, "marker set", jumps))
        if person.body_frames is not None:
            names = list(getattr(person.model, "body_names", []))
            pelvis = names.index("pelvis") if "pelvis" in names else 0
            jumps = body_jumps(person.body_frames[:, pelvis:pelvis + 1, :3, 3], person.motion_frames, cap.fps)
            if jumps:
                out.append(describe_jumps(person.name, "skeleton's pelvis", jumps))
    for w in out:
        log.warning("%s", w)
    return out


def _scene_fps(cap: Capture, rates: list[float]) -> float:
    """The capture's frame rate: the markers' or motions' recorded rate, else the first video's
    (:func:`openkin.framerate.video_rate`), else Pose2Sim's default with a warning."""
    from openkin.framerate import DEFAULT_RATE, video_rate

    rate = rates[0] if rates else (video_rate(next(iter(cap.videos.values()))) if cap.videos else None)
    if rate is None:
        rate = DEFAULT_RATE
        cap.warnings.append(f"no frame rate in the files: {rate:g} fps assumed (Pose2Sim's default)")
    return float(rate)


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
    person.mot_path = mot
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

"""The frame rate of a trial, in one place: never a silent guess.

:func:`resolve_frame_rate` gives the rate every stage uses:

- ``[project] frame_rate = <number>``: that number (a warning if the videos say
  otherwise).
- ``frame_rate = 'auto'``: every video in ``videos/`` is read (OpenCV's
  ``CAP_PROP_FPS``; where that is 0, not finite or beyond :data:`MAX_FPS`, the
  average rate of the stream's frame timestamps). Cameras that disagree are an
  error naming each camera and its rate (OpenKin does not resample). The rate
  is kept as the container says it: 29.97 stays 29.97.
- no video (image folders, or a project holding pose files only): the rate
  recorded by the inputs, first found of: the pose stage's
  ``openkin/pose_summary.json`` (rates of the videos it read), a synthetic
  scene's ``truth/scene.toml``, the ``DataRate`` of a ``pose-3d/*.trc``.
- nothing recorded: 60 fps, Pose2Sim's default (also for image folders), with
  a warning saying how to set it.

The resolved rate is checked against the cut-off frequencies the run uses
(below the Nyquist frequency), see :func:`openkin.config_check.check_rate`.
"""
from __future__ import annotations

import json
import logging
import math
import tomllib
from pathlib import Path

from .errors import OpenKinError

log = logging.getLogger(__name__)

DEFAULT_RATE = 60.0  # fps, Pose2Sim's default when the rate cannot be read (image folders)
MAX_FPS = 10_000.0  # a container rate above this is a time base, not a frame rate
SAME_RATE = 2e-4  # relative difference under which two cameras film at the same rate (29.97 vs 30: 1e-3)
VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm", ".mts", ".flv"}
_TIMESTAMP_FRAMES = 60  # frames read to measure the stream's average rate


def resolve_frame_rate(config, paths) -> float:
    """Frames per second of the trial in ``paths`` (see the module doc); OpenKinError if the
    cameras disagree or the rate is below twice a cut-off frequency in use."""
    rate = config.project.frame_rate
    if not isinstance(rate, str):
        _warn_if_videos_differ(float(rate), paths)
        return float(rate)
    rate, words = _auto_rate(paths)
    from .config_check import check_rate

    check_rate(config, rate, f"frame_rate = 'auto': {rate:g} fps {words}")
    return rate


def _auto_rate(paths) -> tuple[float, str]:
    """(rate, where it came from) for ``frame_rate = 'auto'``."""
    rates = video_rates(paths.videos)
    known = {name: r for name, r in rates.items() if r is not None}
    if known:
        rate = common_rate(known, paths.videos)
        unread = sorted(set(rates) - set(known))
        if unread:
            log.warning("frame rate of %s could not be read: taken as %g fps like the other cameras",
                        ", ".join(unread), rate)
        log.info("frame rate %g fps, read from %d video(s)", rate, len(known))
        return rate, f"read from the videos in {paths.videos}"
    recorded = recorded_rate(paths)
    if recorded is not None:
        rate, source = recorded
        log.info("frame rate %g fps, as recorded in %s", rate, source)
        return rate, f"recorded in {source}"
    what = "image folders" if image_folders(paths.videos) else "no video"
    log.warning("frame_rate = 'auto' but %s in %s and no recorded rate: using %g fps (Pose2Sim's default). "
                "If that is wrong, set [project] frame_rate = <fps> in Config.toml (or --set "
                "project.frame_rate=<fps>)", what, paths.videos, DEFAULT_RATE)
    return DEFAULT_RATE, f"(Pose2Sim's default: {what} in {paths.videos})"


def common_rate(rates: dict[str, float], where: Path | None = None) -> float:
    """The one rate of ``{camera: fps}``; OpenKinError naming every camera if they differ."""
    values = list(rates.values())
    first = values[0]
    if all(abs(r - first) <= SAME_RATE * first for r in values):
        return first
    listing = ", ".join(f"{name} {r:g} fps" for name, r in rates.items())
    raise OpenKinError(f"the cameras film at different frame rates: {listing}", path=where,
                       fix="re-encode the videos to one common rate (e.g. ffmpeg -i cam.mp4 -r 30 out.mp4); "
                           "OpenKin does not resample, and frame_rate applies to every camera")


def _warn_if_videos_differ(rate: float, paths) -> None:
    known = {n: r for n, r in video_rates(paths.videos).items() if r is not None}
    other = {n: r for n, r in known.items() if abs(r - rate) > SAME_RATE * rate}
    if other:
        log.warning("[project] frame_rate = %g but the videos say %s: using %g as set", rate,
                    ", ".join(f"{n} {r:g} fps" for n, r in other.items()), rate)


# --------------------------------------------------------------------------- videos
def video_files(videos_dir: Path) -> list[Path]:
    """Video files directly in ``videos_dir`` (sorted by name), [] if there is no such folder."""
    if not Path(videos_dir).is_dir():
        return []
    return sorted(p for p in Path(videos_dir).iterdir()
                  if p.is_file() and p.suffix.lower() in VIDEO_EXT and not p.name.startswith("."))


def image_folders(videos_dir: Path) -> list[Path]:
    """Sub-folders of ``videos_dir`` (camera image folders, as Pose2Sim allows)."""
    if not Path(videos_dir).is_dir():
        return []
    return sorted(p for p in Path(videos_dir).iterdir() if p.is_dir() and not p.name.startswith("."))


def video_rates(videos_dir: Path) -> dict[str, float | None]:
    """``{video file name: fps or None if unreadable}`` for every video in ``videos_dir``."""
    return {v.name: video_rate(v) for v in video_files(videos_dir)}


def plausible(fps: float | None) -> bool:
    return fps is not None and math.isfinite(fps) and 0 < fps <= MAX_FPS


def video_rate(path: Path) -> float | None:
    """Frames per second of one video: the container's rate, else the stream's average rate
    from its frame timestamps; None if the video does not open or neither is plausible."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        fps = cap.get(cv2.CAP_PROP_FPS)
        if plausible(fps):
            return float(fps)
        measured = _timestamp_rate(cap)
    finally:
        cap.release()
    if plausible(measured):
        log.warning("%s: the container's frame rate is %r; %.3f fps measured from the frame timestamps",
                    Path(path).name, fps, measured)
        return measured
    log.warning("%s: no plausible frame rate (container says %r)", Path(path).name, fps)
    return None


def stream_rate(path: Path) -> float | None:
    """The average rate of ``path``'s first frames, from their timestamps (fps), or None."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return _timestamp_rate(cap) if cap.isOpened() else None
    finally:
        cap.release()


def _timestamp_rate(cap) -> float | None:
    import cv2

    stamps = []
    for _ in range(_TIMESTAMP_FRAMES):
        if not cap.grab():
            break
        stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    if len(stamps) < 3 or stamps[-1] <= stamps[0]:
        return None
    return 1000.0 * (len(stamps) - 1) / (stamps[-1] - stamps[0])


# --------------------------------------------------------------------------- recorded rates
def recorded_rate(paths) -> tuple[float, str] | None:
    """(fps, file) recorded by earlier steps or other tools, or None (see the module doc)."""
    for finder in (_pose_summary_rate, _synth_rate, _trc_rate):
        found = finder(paths)
        if found is not None:
            return found
    return None


def _pose_summary_rate(paths) -> tuple[float, str] | None:
    path = paths.reports / "pose_summary.json"
    if not path.is_file():
        return None
    try:
        cams = json.loads(path.read_text(encoding="utf-8")).get("cameras", [])
        rates = {c["name"]: float(c["fps"]) for c in cams if plausible(c.get("fps"))}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        log.warning("%s is unreadable: its frame rates are not used", path)
        return None
    return (common_rate(rates, path), str(path)) if rates else None


def _synth_rate(paths) -> tuple[float, str] | None:
    path = paths.root / "truth" / "scene.toml"
    if not path.is_file():
        return None
    try:
        rate = tomllib.loads(path.read_text(encoding="utf-8"))["spec"]["rate"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (float(rate), str(path)) if plausible(rate) else None


def _trc_rate(paths) -> tuple[float, str] | None:
    trcs = sorted(paths.pose_3d.glob("*.trc")) if paths.pose_3d.is_dir() else []
    if not trcs:
        return None
    from .formats.trc import read_trc

    try:
        return read_trc(trcs[0]).rate, str(trcs[0])
    except OpenKinError as exc:
        log.warning("%s: its DataRate is not used (%s)", trcs[0], exc.problem)
        return None

"""Shared inputs of the stages after pose: calibration, skeleton, 2D keypoints of all cameras, sync residuals.

Cameras are matched to the pose folders by name (``pose/cam01_json`` ↔ calibration
camera ``cam01``); when the names do not match, by order (Pose2Sim's rule: sorted
folders ↔ calibration order), with a warning. Frames are matched across cameras
by the frame number in the JSON file names (a camera without a file for a frame
has NaN there), so the renumbered files that synchronisation writes to
``pose-sync/`` line up by construction.

Arrays: ``keypoints (C,F,P,K,3)`` = [x px, y px, confidence], NaN where absent.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import OpenKinError
from .formats.calibration import read_calibration
from .geometry import Camera, Rig, finite_xy, undistort_points
from .formats.openpose import PoseFolder
from .keypoint_cache import read_folder
from .progress import Progress, report
from .project import match_camera_names
from .skeletons import Skeleton, get_skeleton

log = logging.getLogger(__name__)


@dataclass
class Views:
    """2D keypoints of all cameras on common frames.

    ``cameras``: calibrated cameras in the order of the arrays; ``folders``: their pose
    folders; ``keypoints (C,F,P,K,3)``; ``frame_numbers (F,)``; ``source``: the folder read;
    ``files``: per camera, the file name of each frame ('' where none) and ``listed (C,F)``
    the people listed in it (writers reuse files they would rewrite unchanged).
    """

    cameras: list[Camera]
    folders: list[Path]
    keypoints: np.ndarray
    frame_numbers: np.ndarray
    source: Path
    files: list[list[str]] | None = None
    listed: np.ndarray | None = None


def skeleton_of(config) -> Skeleton:
    """The keypoint set of ``[pose] pose_model`` (built-in or a ``[[pose.<NAME>]]`` custom one)."""
    name = config.pose.pose_model
    try:
        return get_skeleton(name)
    except OpenKinError:
        if name in getattr(config.pose, "custom_skeletons", {}):
            return config.pose.custom_skeleton(name)
        raise


def pose_folders(pose_dir: Path) -> list[Path]:
    """Camera folders ``<cam>_json`` of a pose directory, sorted by their last number then name."""
    if not pose_dir.is_dir():
        return []
    dirs = [d for d in pose_dir.iterdir() if d.is_dir() and "json" in d.name and not d.name.startswith(".")]

    def key(d: Path):
        nums = re.findall(r"\d+", d.name)
        return (int(nums[-1]) if nums else -1, d.name)

    return sorted(dirs, key=key)


def camera_name(folder: Path) -> str:
    """``cam01_json`` → ``cam01``."""
    return re.sub(r"_?json$", "", folder.name)


def match_cameras(folders: list[Path], cameras: list[Camera], calib_path: Path) -> list[Camera]:
    """The calibrated camera of each pose folder, by :func:`openkin.project.match_camera_names`
    (the one rule for camera names: same name, normalised name, last number, else by order)."""
    names = [camera_name(f) for f in folders]
    try:
        pairs = match_camera_names([c.name for c in cameras], names)
    except OpenKinError as e:
        raise OpenKinError(e.problem, path=calib_path, fix=e.fix) from None
    by_name = {c.name: c for c in cameras}
    by_folder = {folder: by_name[cam] for cam, folder in pairs.items()}
    return [by_folder[n] for n in names]

def read_views(pose_dir: Path, calib_path: Path, frame_range=None, progress: Progress | None = None,
               units: str = "auto") -> Views:
    """Read every camera folder of ``pose_dir`` and align them on frame numbers.

    ``frame_range``: ``(start, stop)`` to keep ``start <= frame < stop``, or 'auto'/'all'/None;
    ``units``: the calibration's ([calibration] units).
    """
    folders = pose_folders(pose_dir)
    if not folders:
        raise OpenKinError("no <cam>_json folders", path=pose_dir,
                           fix="run the pose stage first (it writes pose/<cam>_json/*.json)")
    cameras = match_cameras(folders, read_calibration(calib_path, units=units), calib_path)
    per_cam = []
    for i, folder in enumerate(folders):
        per_cam.append(_read_folder(folder))
        report(progress, (i + 1) / len(folders), f"read {folder.name}")
    frames = np.unique(np.concatenate([pf.frames for pf in per_cam]))
    if frame_range is not None and not isinstance(frame_range, str) and len(frame_range) == 2:
        frames = frames[(frames >= int(frame_range[0])) & (frames < int(frame_range[1]))]
        if frames.size == 0:
            raise OpenKinError(f"no frames within frame_range {list(frame_range)}", path=pose_dir,
                               fix="set [project] frame_range to frames that exist, or to 'auto'")
    kpts, files, listed = _align(per_cam, frames, folders)
    if kpts.shape[3] == 0 or not np.isfinite(kpts[..., 0]).any():
        raise OpenKinError("no person detected in any camera's pose files", path=pose_dir,
                           fix="check the videos and the pose stage (its overlays show what it detected)")
    return Views(cameras, folders, kpts, frames, pose_dir, files, listed)


def _read_folder(folder: Path) -> PoseFolder:
    """One camera folder, through its columnar cache (:func:`openkin.keypoint_cache.read_folder`:
    parsed once by :func:`openkin.formats.openpose.read_openpose_folder`, then reused by every
    later stage; reading is most of the time of association and triangulation)."""
    return read_folder(folder)


def _align(per_cam: list[PoseFolder], frames: np.ndarray, folders: list[Path]):
    """Per-camera folders → ``keypoints (C, F, Pmax, K, 3)`` on ``frames``, file names (C lists
    of F, '' where none) and ``listed (C, F)`` people per file."""
    K = {pf.keypoints.shape[2] for pf in per_cam if pf.keypoints.size}
    if len(K) > 1:
        raise OpenKinError(f"cameras have different keypoint counts {sorted(K)}",
                           path=folders[0].parent, fix="all cameras must come from the same pose model")
    n_k = K.pop() if K else 0
    P = max(max(pf.keypoints.shape[1] for pf in per_cam), 1)
    out = np.full((len(per_cam), len(frames), P, n_k, 3), np.nan)
    listed = np.zeros((len(per_cam), len(frames)), dtype=int)
    files = []
    for c, pf in enumerate(per_cam):
        pos = np.searchsorted(frames, pf.frames)
        ok = (pos < len(frames)) & (frames[np.minimum(pos, len(frames) - 1)] == pf.frames)
        names = [""] * len(frames)
        for i, name in zip(pos[ok].tolist(), np.asarray(pf.names, dtype=object)[ok].tolist()):
            names[i] = name
        files.append(names)
        listed[c, pos[ok]] = pf.listed[ok]
        if pf.keypoints.size:
            out[c, pos[ok], :pf.keypoints.shape[1]] = pf.keypoints[ok]
    return out, files, listed


def read_offsets(path: str | Path) -> dict[str, float]:
    """Camera -> residual sub-frame offset (frames) still to apply after the integer renaming,
    from a ``pose-sync/offsets.toml``: camera c's (renamed) frame k shows reference time
    k + residual_frames."""
    import tomllib

    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return {name: float(v.get("residual_frames", 0.0)) for name, v in data.get("cameras", {}).items()}


def subframe_residuals(offsets_toml: Path | None, views: Views) -> np.ndarray | None:
    """Per-camera sub-frame offsets left by synchronisation ``(C,)`` from its ``offsets.toml``,
    or None when there is none (input not synchronised) or frames are not consecutive."""
    if offsets_toml is None or not Path(offsets_toml).is_file() or np.any(np.diff(views.frame_numbers) != 1):
        return None
    res = read_offsets(offsets_toml)
    r = np.array([res.get(camera_name(f), 0.0) for f in views.folders], float)
    return r if np.any(np.abs(r) > 1e-3) else None

def shift_subframe(keypoints: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Resample each camera at the reference instants: ``keypoints (C,F,K,3)`` on consecutive
    frames, ``residual (C,)`` frames (camera c's frame k shows reference time k + residual_c)
    → ``(C,F,K,3)`` linearly interpolated at k - residual_c; where one neighbour is
    missing the nearer sample is kept if it exists."""
    out = keypoints.copy()
    F = keypoints.shape[1]
    for c in np.flatnonzero(np.abs(residual) > 1e-3):  # a handful of cameras
        q = np.arange(F) - residual[c]
        i0 = np.clip(np.floor(q).astype(int), 0, F - 1)
        i1 = np.clip(i0 + 1, 0, F - 1)
        a = np.clip(q - np.floor(q), 0.0, 1.0)[:, None, None]
        x0, x1 = keypoints[c, i0], keypoints[c, i1]
        lerp = (1 - a) * x0 + a * x1
        near = np.where(a < 0.5, x0, x1)
        ok0 = np.isfinite(x0).all(-1, keepdims=True)
        ok1 = np.isfinite(x1).all(-1, keepdims=True)
        out[c] = np.where(ok0 & ok1, lerp, near)
    return out


def prepare_points(keypoints: np.ndarray, rig: Rig, undistort: bool, likelihood_threshold: float):
    """``keypoints (C,F,K,3)`` → undistorted ``points (C,F,K,2)`` and ``weights (C,F,K)``
    (confidence, 0 below the threshold or where missing). Fisheye cameras of ``rig`` are
    undistorted through the fisheye model."""
    pts = keypoints[..., :2].astype(float)
    if undistort:
        pts = undistort_points(pts, rig.K, rig.dist, rig.fisheye)
    conf = keypoints[..., 2]
    ok = finite_xy(pts) & np.isfinite(conf) & (conf >= likelihood_threshold) & (conf > 0)
    return pts, np.where(ok, conf, 0.0)

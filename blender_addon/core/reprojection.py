"""Reprojection error of each 3D marker, per frame: distance in pixels between the
marker projected through each camera (with distortion) and the nearest detected 2D
keypoint of the same name, averaged over the cameras that saw it."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

POSE_FOLDERS = ("pose-associated", "pose-sync", "pose")


def find_pose_dirs(root: Path, camera_names: list[str]) -> dict[str, Path]:
    """Camera name → its ``<cam>_json`` folder, from the most processed 2D folder present."""
    from .capture import _norm

    for folder in POSE_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        dirs = {_norm(d.name.removesuffix("_json")): d for d in base.iterdir() if d.is_dir()}
        found = {c: dirs[_norm(c)] for c in camera_names if _norm(c) in dirs}
        if found:
            return found
    return {}


def camera_errors(project, markers: np.ndarray, video_frames: np.ndarray, keypoints: np.ndarray,
                  kp_frames: np.ndarray, kp_index: np.ndarray) -> np.ndarray:
    """Errors in one camera.

    ``project``: (N, 3) → (N, 2) px with distortion; ``markers``: (F, M, 3) world;
    ``video_frames``: (F,); ``keypoints``: (F2, P, K, 3) [x, y, conf]; ``kp_frames``: (F2,);
    ``kp_index``: (M,) keypoint index of each marker or -1. Returns (F, M) px, NaN where unseen.
    """
    f, m = markers.shape[:2]
    out = np.full((f, m), np.nan)
    row = {int(n): i for i, n in enumerate(kp_frames)}
    rows = np.array([row.get(int(v), -1) for v in video_frames])
    use = (rows >= 0)[:, None] & (kp_index >= 0)[None, :]
    if not use.any():
        return out
    uv = project(markers.reshape(-1, 3)).reshape(f, m, 2)
    kp = keypoints[np.maximum(rows, 0)][:, :, np.maximum(kp_index, 0)]          # (F, P, M, 3)
    seen = np.isfinite(kp[..., 0]) & (np.nan_to_num(kp[..., 2]) > 0)
    dist = np.linalg.norm(kp[..., :2] - uv[:, None], axis=-1)                   # (F, P, M)
    dist = np.where(seen, dist, np.inf).min(axis=1)
    dist[~np.isfinite(dist)] = np.nan
    out[use] = dist[use]
    return out


def person_errors(cameras: list, pose_dirs: dict[str, Path], markers: np.ndarray, scene_frames: np.ndarray,
                  marker_names: list[str], keypoint_names: tuple[str, ...]) -> np.ndarray | None:
    """(F, M) mean reprojection error over cameras (NaN where no camera saw the marker)."""
    from openkin.formats.calibration import project_points
    from openkin.formats.openpose import read_openpose_dir

    kp_index = np.array([keypoint_names.index(n) if n in keypoint_names else -1 for n in marker_names])
    if not (kp_index >= 0).any() or not pose_dirs:
        return None
    per_cam = []
    for cam in cameras:
        if cam.name not in pose_dirs:
            continue
        kps, frames, _ = read_openpose_dir(pose_dirs[cam.name])
        if kps.shape[2] != len(keypoint_names):
            log.warning("%s: %d keypoints per person, expected %d: skipped", pose_dirs[cam.name],
                        kps.shape[2], len(keypoint_names))
            continue
        per_cam.append(camera_errors(lambda p, c=cam: project_points(c, p), markers,
                                     np.asarray(scene_frames) - 1, kps, frames, kp_index))
    if not per_cam:
        return None
    stack = np.stack(per_cam)
    with np.errstate(all="ignore"):
        n = np.isfinite(stack).sum(axis=0)
        return np.where(n > 0, np.nansum(stack, axis=0) / np.maximum(n, 1), np.nan)

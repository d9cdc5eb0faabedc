"""Reprojection error of each 3D marker per frame, for the marker colours: the engine's figures.

The triangulation stage writes, next to each TRC, the per-frame per-keypoint reprojection
error it computed (``pose-3d/<trc stem>_reprojection.npz``, see
:mod:`openkin.triangulation.reprojection`): mean over the cameras it kept of the distance, in
the undistorted image, between the detection and the projection of the triangulated point.
The markers are coloured with exactly those values. Only when that file is absent (results
of another tool, an older OpenKin) is the error recomputed here, with the same definition
through :mod:`openkin.geometry`, over every camera that detected the keypoint (the views the
triangulation rejected are not known then).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

POSE_FOLDERS = ("pose-associated", "pose-sync", "pose")
# A left/right pair counts as exchanged by the detector when exchanging the labels explains both
# detections clearly better: to this share of the error, and by this much per detection (px)
# (the triangulation's swap rule, :mod:`openkin.triangulation.swaps`, asks the same of a part).
SWAP_GAIN = 0.7
SWAP_MIN_PX = 2.0
_PERSON = re.compile(r"_P(\d+)(?=[_.-]|$)", re.IGNORECASE)


def find_pose_dirs(root: Path, camera_names: list[str]) -> dict[str, Path]:
    """Camera name → its ``<cam>_json`` folder, from the most processed 2D folder present,
    paired by the engine's one rule for camera names (:func:`openkin.project.match_camera_names`)."""
    from openkin.errors import OpenKinError
    from openkin.project import match_camera_names

    for folder in POSE_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        dirs = {d.name: d for d in sorted(base.iterdir()) if d.is_dir()}
        try:
            pairs = match_camera_names(list(camera_names), list(dirs))
        except OpenKinError as e:
            log.warning("%s: %s", base, e.problem)
            continue
        if pairs:
            return {c: dirs[f] for c, f in pairs.items()}
    return {}


def find_error_file(root: Path, person: str = "P0") -> Path | None:
    """The triangulation's reprojection file of ``person`` ('P0', 'P1', ...) in ``root/pose-3d``
    (the newest if several), or None."""
    files = sorted((root / "pose-3d").glob("*_reprojection.npz"), key=lambda p: p.stat().st_mtime) \
        if (root / "pose-3d").is_dir() else []
    mine = [p for p in files if _person_of(p.name) == person.upper()]
    return mine[-1] if mine else None


def _person_of(name: str) -> str:
    m = _PERSON.search(name)
    return f"P{int(m.group(1))}" if m else "P0"


def errors_from_file(path: Path, marker_names: list[str], video_frames: np.ndarray) -> np.ndarray:
    """The engine's errors for the markers: ``marker_names (M,)``, ``video_frames (F,)`` →
    ``(F, M)`` px, NaN where the engine has none (other markers, frames, untriangulated points)."""
    from openkin.triangulation.reprojection import read_reprojection

    data = read_reprojection(path)
    rows = _lookup(data.frame_numbers, video_frames)
    cols = np.array([data.keypoints.index(n) if n in data.keypoints else -1 for n in marker_names], int)
    out = np.full((len(video_frames), len(marker_names)), np.nan)
    use = (rows >= 0)[:, None] & (cols >= 0)[None, :]
    picked = data.error_px[np.maximum(rows, 0)][:, np.maximum(cols, 0)]
    out[use] = picked[use]
    return out


def _lookup(frames: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each ``wanted (F,)`` frame number in ``frames`` or -1."""
    row = {int(n): i for i, n in enumerate(frames)}
    return np.array([row.get(int(v), -1) for v in wanted], int)


def camera_errors(camera, markers: np.ndarray, video_frames: np.ndarray, keypoints: np.ndarray,
                  kp_frames: np.ndarray, kp_index: np.ndarray, min_confidence: float = 0.0,
                  parts: list | None = None) -> np.ndarray:
    """Errors in one camera, as the triangulation defines them: distance in the undistorted
    image between the detection (undistorted with the camera's lens, fisheye included) and
    the pinhole projection of the marker; per frame, the detected person nearest the marker.

    ``camera``: :class:`openkin.geometry.Camera`; ``markers``: (F, M, 3) world Z-up m;
    ``video_frames``: (F,); ``keypoints``: (F2, P, K, 3) [x, y, conf]; ``kp_frames``: (F2,);
    ``kp_index``: (M,) keypoint index of each marker or -1; detections with confidence
    ≤ ``min_confidence`` are not used. ``parts``: body parts as (left (L,), right (L,)) marker
    indices (:func:`lr_parts`): where the detector exchanged left and right on a whole part
    (the exchanged labels explain the part's detections clearly better), the exchanged labels
    are used, as the triangulation's swap correction does, so a swap is not an error.
    Returns (F, M) px, NaN where unseen.
    """
    f, m = markers.shape[:2]
    out = np.full((f, m), np.nan)
    rows = _lookup(kp_frames, video_frames)
    use = (rows >= 0)[:, None] & (kp_index >= 0)[None, :]
    if not use.any():
        return out
    dist = _distances(camera, markers, keypoints[np.maximum(rows, 0)][:, :, np.maximum(kp_index, 0)],
                      min_confidence)                                              # (F, M)
    for left, right in parts or []:
        pair = np.concatenate([left, right])
        other = np.concatenate([right, left])
        crossed = _distances(camera, markers[:, pair], keypoints[np.maximum(rows, 0)][:, :, np.maximum(kp_index[other], 0)],
                             min_confidence)                                       # (F, 2L): each marker vs its mirror's detection
        both = np.isfinite(dist[:, pair]) & np.isfinite(crossed)
        n = both.sum(axis=1)
        own, swap = np.where(both, dist[:, pair], 0).sum(axis=1), np.where(both, crossed, 0).sum(axis=1)
        flip = (n > 0) & (swap < SWAP_GAIN * own) & (own - swap > SWAP_MIN_PX * np.maximum(n, 1))   # (F,)
        dist[:, pair] = np.where(flip[:, None] & np.isfinite(crossed), crossed, dist[:, pair])
    out[use] = dist[use]
    return out


def _distances(camera, markers: np.ndarray, kp: np.ndarray, min_confidence: float) -> np.ndarray:
    """``markers (F, M, 3)``, ``kp (F, P, M, 3)`` raw detections → (F, M) px distance in the
    undistorted image to the nearest confident detected person (NaN: none)."""
    from openkin.geometry import project, undistort_camera_points

    f, m = markers.shape[:2]
    uv = project(camera.projection[None], markers.reshape(-1, 3))[0].reshape(f, m, 2)
    det = undistort_camera_points(camera, kp[..., :2]).reshape(kp.shape[:-1] + (2,))
    with np.errstate(invalid="ignore"):
        seen = np.isfinite(det[..., 0]) & (np.nan_to_num(kp[..., 2]) > min_confidence)
    dist = np.linalg.norm(det - uv[:, None], axis=-1)                            # (F, P, M)
    dist = np.where(seen, dist, np.inf).min(axis=1)
    dist[~np.isfinite(dist)] = np.nan
    return dist


def lr_parts(marker_names: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Left/right marker pairs grouped by body part (legs, arms, face: the triangulation's
    grouping, :func:`openkin.triangulation.swaps.lr_pairs`) → [(left (L,), right (L,))]."""
    from openkin.triangulation.swaps import lr_pairs

    return list(lr_pairs(list(marker_names)).values())


def person_errors(cameras: list, pose_dirs: dict[str, Path], markers: np.ndarray, scene_frames: np.ndarray,
                  marker_names: list[str], keypoint_names: tuple[str, ...], *, root: Path | None = None,
                  person: str = "P0", min_confidence: float | None = None) -> np.ndarray | None:
    """(F, M) reprojection error of each marker per scene frame (scene frame = video frame + 1):
    the triangulation's own figures from ``root/pose-3d`` when it wrote them (over the views it
    kept, after its left/right swap correction), else recomputed with the same definition
    (:func:`camera_errors`: left/right swaps of the detector undone, detections below the
    triangulation's likelihood threshold left out, ``min_confidence`` default the project's
    ``[triangulation] likelihood_threshold_triangulation``), mean over the cameras that saw the
    marker (which views the triangulation rejected is not known then). None when nothing applies."""
    video_frames = np.asarray(scene_frames) - 1
    path = find_error_file(Path(root), person) if root is not None else None
    if path is not None:
        log.info("marker colours: reprojection errors of the triangulation (%s)", path.name)
        return errors_from_file(path, marker_names, video_frames)
    conf = _likelihood_threshold(root) if min_confidence is None else min_confidence
    return _recomputed(cameras, pose_dirs, markers, video_frames, marker_names, keypoint_names, conf)


def _likelihood_threshold(root: Path | None) -> float:
    """The project's ``[triangulation] likelihood_threshold_triangulation``."""
    from openkin.config import default_config, load_config
    from openkin.errors import OpenKinError

    try:
        config = load_config(root) if root is not None else default_config()
    except OpenKinError as e:
        log.warning("%s: %s (default thresholds used)", root, e.problem)
        config = default_config()
    return float(config.triangulation.likelihood_threshold_triangulation)


def _recomputed(cameras, pose_dirs, markers, video_frames, marker_names, keypoint_names, min_confidence):
    from openkin.formats.openpose import read_openpose_dir

    kp_index = np.array([keypoint_names.index(n) if n in keypoint_names else -1 for n in marker_names])
    if not (kp_index >= 0).any() or not pose_dirs:
        return None
    parts = lr_parts(list(marker_names))
    per_cam = []
    for cam in cameras:
        if cam.name not in pose_dirs:
            continue
        kps, frames, _ = read_openpose_dir(pose_dirs[cam.name])
        if kps.shape[2] != len(keypoint_names):
            log.warning("%s: %d keypoints per person, expected %d: skipped", pose_dirs[cam.name],
                        kps.shape[2], len(keypoint_names))
            continue
        per_cam.append(camera_errors(cam, markers, video_frames, kps, frames, kp_index, min_confidence, parts))
    if not per_cam:
        return None
    stack = np.stack(per_cam)
    with np.errstate(all="ignore"):
        n = np.isfinite(stack).sum(axis=0)
        return np.where(n > 0, np.nansum(stack, axis=0) / np.maximum(n, 1), np.nan)


# ------------------------------------------------------------------ QA timelines (bpy-free)
def _row_mean(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN: ``(..., K)`` → ``(...)``, NaN where all are NaN."""
    with np.errstate(all="ignore"):
        n = np.isfinite(x).sum(axis=-1)
        return np.where(n > 0, np.nansum(x, axis=-1) / np.maximum(n, 1), np.nan)


def person_timelines(data, camera_errors_px: dict | None = None) -> dict[str, np.ndarray]:
    """Curves of one triangulated person over its frames (``data``: a
    :class:`openkin.triangulation.reprojection.Reprojection`), name → ``(F,)``:

    ``error``: mean over keypoints of the triangulation's error (``data.error_px``, px, views kept);
    ``cameras``: mean over triangulated keypoints of the number of views kept;
    ``kept <cam>``: keypoints whose view in that camera the triangulation kept;
    ``swaps <cam>``: left/right-swapped detections the triangulation corrected in that camera;
    ``error <cam>``: per camera, mean over keypoints of that camera's error (``camera_errors_px``
    {cam: (F, K) px on the file's frames and keypoints, :func:`camera_errors`}) over the views
    the triangulation kept there."""
    out = {"error": _row_mean(data.error_px)}
    tri = np.isfinite(data.error_px)                                             # (F, K)
    kept = data.used.sum(axis=0).astype(float)                                   # (F, K)
    out["cameras"] = _row_mean(np.where(tri, kept, np.nan))
    swapped = data.swapped if data.swapped is not None else np.zeros_like(data.used)
    for c, name in enumerate(data.cameras):
        out[f"kept {name}"] = np.where(tri.any(axis=-1), (data.used[c] & tri).sum(axis=-1), np.nan).astype(float)
        out[f"swaps {name}"] = swapped[c].sum(axis=-1).astype(float)
    for name, err in (camera_errors_px or {}).items():
        if name in data.cameras:
            used = data.used[data.cameras.index(name)]
            out[f"error {name}"] = _row_mean(np.where(used, err, np.nan))
    return out


def next_worst(frames: np.ndarray, values: np.ndarray, current: int, last_jump: int | None = None) -> int | None:
    """"Jump to the next worst frame": ``frames (F,)``, ``values (F,)`` (NaN ignored), ranked
    from the worst. When ``current`` is where the previous jump landed (``last_jump``), the
    frame ranked just after it; otherwise (a first press, or the user moved) the worst frame.
    None when nothing is known."""
    ok = np.isfinite(values)
    if not ok.any():
        return None
    fr, v = np.asarray(frames)[ok], np.asarray(values)[ok]
    order = fr[np.argsort(-v, kind="stable")]
    hit = np.flatnonzero(order == current) if last_jump is not None and current == last_jump else np.zeros(0, int)
    return int(order[0] if hit.size == 0 or hit[0] + 1 >= len(order) else order[hit[0] + 1])

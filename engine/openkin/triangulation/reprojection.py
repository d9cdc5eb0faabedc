"""Per-frame, per-keypoint reprojection errors of a triangulated person, written next to its TRC.

``pose-3d/<trc stem>_reprojection.npz`` (``numpy.savez``; one per TRC the stage writes)::

    frame_numbers  (F,)  int    the TRC's frame numbers, row for row
    keypoints      (K,)  str    the TRC's marker names, in order
    cameras        (C,)  str    camera names
    error_px       (F,K) float  mean over the views the triangulation kept of the distance (px,
                                undistorted image) between the 2D detection and the projection
                                of the triangulated point (:func:`openkin.geometry.mean_view_error`);
                                NaN where the keypoint was not triangulated in that frame
                                (gaps that were interpolated or filled)
    used           (C,F,K) bool the views kept
    swapped        (C,F,K) bool the detections whose left/right labels the triangulation
                                exchanged (:mod:`.swaps`); absent in older files (read as all False)

These are the figures the triangulation report averages per keypoint, and the ones the
Blender add-on colours the markers with. A TRC derived from this one (``_filt_*``,
``_LSTM``) finds the file with :func:`find_reprojection`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write

SUFFIX = "_reprojection.npz"


@dataclass
class Reprojection:
    """The arrays of one file (see the module doc for shapes)."""

    frame_numbers: np.ndarray
    keypoints: list[str]
    cameras: list[str]
    error_px: np.ndarray
    used: np.ndarray
    swapped: np.ndarray | None = None


def reprojection_path(trc_path: str | Path) -> Path:
    """``pose-3d/<stem>.trc`` → ``pose-3d/<stem>_reprojection.npz``."""
    trc_path = Path(trc_path)
    return trc_path.with_name(trc_path.stem + SUFFIX)


def write_reprojection(path: str | Path, data: Reprojection) -> Path:
    """Write ``data`` atomically to ``path``; returns ``path``."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        np.savez(f, frame_numbers=np.asarray(data.frame_numbers, int), keypoints=np.asarray(data.keypoints, str),
                 cameras=np.asarray(data.cameras, str), error_px=np.asarray(data.error_px, float),
                 used=np.asarray(data.used, bool),
                 swapped=np.zeros(np.shape(data.used), bool) if data.swapped is None else np.asarray(data.swapped, bool))
    return path


def read_reprojection(path: str | Path) -> Reprojection:
    """Read a file written by :func:`write_reprojection`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = Reprojection(z["frame_numbers"], [str(k) for k in z["keypoints"]], [str(c) for c in z["cameras"]],
                                z["error_px"], z["used"], z["swapped"] if "swapped" in z else None)
    except (OSError, KeyError, ValueError) as e:
        raise OpenKinError(f"cannot read the reprojection errors ({e})", path=path,
                           fix="run the triangulation stage again, or delete this file") from None
    if data.error_px.shape != (len(data.frame_numbers), len(data.keypoints)):
        raise OpenKinError(f"reprojection errors have shape {data.error_px.shape}, expected "
                           f"({len(data.frame_numbers)}, {len(data.keypoints)})", path=path,
                           fix="run the triangulation stage again, or delete this file")
    if data.swapped is None:
        data.swapped = np.zeros(np.shape(data.used), bool)
    return data


def find_reprojection(trc_path: str | Path) -> Path | None:
    """The reprojection file of ``trc_path`` or of the triangulation TRC it was made from
    (the longest ``<stem>_reprojection.npz`` in its folder whose stem starts ``trc_path``'s), or None."""
    trc_path = Path(trc_path)
    stem = trc_path.stem
    found = [p for p in trc_path.parent.glob("*" + SUFFIX)
             if stem == p.name[: -len(SUFFIX)] or stem.startswith(p.name[: -len(SUFFIX)] + "_")]
    return max(found, key=lambda p: len(p.name)) if found else None


def write_person_errors(res, names: list[str], cameras: list[str], frames: np.ndarray, trc_path: Path) -> Path:
    """The file of one reconstructed person (``res``: :class:`~openkin.triangulation.core.PersonResult`,
    kept frames ``[start, stop)`` as in its TRC ``trc_path``) → its path."""
    sl = slice(res.start, res.stop)
    data = Reprojection(frames[sl], list(names), list(cameras), res.error_px[sl], res.used[:, sl],
                        swapped_keypoints(res.swaps, list(names), res.used.shape)[:, sl])
    return write_reprojection(reprojection_path(trc_path), data)


def swapped_keypoints(swaps: dict, names: list[str], shape: tuple) -> np.ndarray:
    """``{part: swapped (C,F) bool}`` (:func:`.swaps.correct_lr_swaps`) → ``(C,F,K)`` bool: the
    left and right keypoints of each part, in the camera-frames where that part was exchanged."""
    from .swaps import lr_pairs

    out = np.zeros(shape, bool)
    for part, (left, right) in lr_pairs(names).items():
        s = swaps.get(part) if swaps else None
        if s is not None and s.any():
            out[:, :, np.concatenate([left, right])] |= s[:, :, None]
    return out

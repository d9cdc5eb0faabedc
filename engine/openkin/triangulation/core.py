"""One person's reconstruction from associated 2D keypoints: the kernels put together.

Order: undistort → confidence threshold → robust weighted DLT (drop-worst-view) →
left/right swap correction on the frames where the robust pass rejected most of a
body part in some camera (those cameras are the first guess) → robust DLT again on
the corrected frames → small-gap interpolation → section trimming → large-gap
filling. Pure arrays in, arrays out; the stage shell reads and writes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..geometry import Rig, blas_single, finite_xy, project_homogeneous, triangulate_robust
from ..inputs import prepare_points, shift_subframe
from .gaps import fill_large_gaps, interpolate_gaps, keep_sections
from .swaps import correct_lr_swaps

__all__ = ["PersonResult", "TriangulationParams", "reconstruct_person",
           "swap_suspects"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriangulationParams:
    """Explicit settings of :func:`reconstruct_person` (Pose2Sim's ``[triangulation]`` keys)."""

    reproj_error_threshold: float = 15.0          # px, mean over used views
    likelihood_threshold: float = 0.3
    min_cameras: int = 2
    max_view_error: float | None = None           # px on any view; None = 3 × threshold
    handle_lr_swap: bool = True
    interpolation: str = "linear"
    interp_if_gap_smaller_than: int = 20          # frames
    sections_to_keep: str = "all"
    min_chunk_size: int = 10
    fill_large_gaps_with: str = "last_value"
    remove_incomplete_frames: bool = False


@dataclass
class PersonResult:
    """A reconstructed person. ``xyz (F,K,3)`` world metres after gap handling (NaN
    outside ``[start, stop)``), ``raw (F,K,3)`` before it, ``error_px (F,K)``,
    ``error_mm (F,K)``, ``used/valid (C,F,K)``, ``interpolated (F,K)``, ``swaps {part: (C,F)}``."""

    xyz: np.ndarray
    raw: np.ndarray
    error_px: np.ndarray
    error_mm: np.ndarray
    used: np.ndarray
    valid: np.ndarray
    interpolated: np.ndarray
    swaps: dict
    start: int
    stop: int

    @property
    def empty(self) -> bool:
        return self.stop <= self.start




def _error_mm(P, rig: Rig, X, err_px):
    """Reprojection error in mm at the point's depth: px × depth / focal (mean over cameras).
    ``X (N,3)``, ``err_px (N,)`` → ``(N,)``. Depths from one BLAS product (measured 3× faster
    than the former per-camera loop, which had replaced a slower einsum)."""
    ok = np.isfinite(err_px)
    out = np.full(err_px.shape, np.nan)
    depth = project_homogeneous(P, X[ok])[:, 2]                                      # (C,M)
    scale = (depth / rig.K[:, 0, 0][:, None]).mean(0)
    out[ok] = err_px[ok] * scale * 1000.0
    return out


def swap_suspects(used: np.ndarray, valid: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Where left/right swaps may be: cameras that lost at least half of a left/right body part's
    points to the robust rejection. ``used, valid (C,F,K)`` → frames ``(F,)``, cameras ``(C,F)``."""
    from .swaps import lr_pairs

    rejected = valid & ~used
    hint = np.zeros(used.shape[:2], bool)
    for left, right in lr_pairs(names).values():
        idx = np.concatenate([left, right])
        n_valid = valid[:, :, idx].sum(-1)
        hint |= (2 * rejected[:, :, idx].sum(-1) >= n_valid) & (n_valid >= 2)
    return hint.any(0), hint


def _merge(r, sub, frames, F: int, K: int):
    """Replace the frames ``frames`` of robust result ``r`` (F*K points) by ``sub``."""
    C = r.used.shape[0]
    X, err = r.X.reshape(F, K, 3), r.error.reshape(F, K)
    used, valid = r.used.reshape(C, F, K), r.valid.reshape(C, F, K)
    X[frames] = sub.X.reshape(-1, K, 3)
    err[frames] = sub.error.reshape(-1, K)
    used[:, frames] = sub.used.reshape(C, -1, K)
    valid[:, frames] = sub.valid.reshape(C, -1, K)
    return r


@blas_single
def reconstruct_person(points: np.ndarray, weights: np.ndarray, rig: Rig, names: list[str],
                       params: TriangulationParams, keep_labels: np.ndarray | None = None) -> PersonResult:
    """Triangulate one person. ``points (C,F,K,2)`` undistorted px, ``weights (C,F,K)`` → :class:`PersonResult`.
    ``keep_labels (F,)``: frames whose left/right labels the user fixed (:mod:`openkin.edits`):
    the automatic swap correction leaves them alone."""
    C, F, K = weights.shape
    P = rig.P
    swaps = {}
    r = triangulate_robust(points.reshape(C, F * K, 2), weights.reshape(C, F * K), P,
                           params.reproj_error_threshold, params.min_cameras, params.max_view_error)
    if params.handle_lr_swap and C >= 3:
        suspect, hint = swap_suspects(r.used.reshape(C, F, K), r.valid.reshape(C, F, K), names)
        if keep_labels is not None:
            suspect = suspect & ~keep_labels
        points, weights, swaps = correct_lr_swaps(points, weights, P, names, params.reproj_error_threshold,
                                                  suspect=suspect, hint=hint)
        redo = np.flatnonzero(np.any([s.any(0) for s in swaps.values()], axis=0)) if swaps else []
        if len(redo):  # re-triangulate the frames whose labels changed
            sub = triangulate_robust(points[:, redo].reshape(C, -1, 2), weights[:, redo].reshape(C, -1), P,
                                     params.reproj_error_threshold, params.min_cameras, params.max_view_error)
            r = _merge(r, sub, redo, F, K)
    raw = r.X.reshape(F, K, 3)
    err_px = r.error.reshape(F, K)
    err_mm = _error_mm(P, rig, r.X, r.error).reshape(F, K)
    found = np.isfinite(raw).all(-1)
    valid_frame = found.all(1) if params.remove_incomplete_frames else found.any(1)
    start, stop = keep_sections(valid_frame, params.min_chunk_size, params.sections_to_keep)
    xyz, filled = interpolate_gaps(raw, params.interp_if_gap_smaller_than, params.interpolation)
    out = np.full_like(xyz, np.nan)
    out[start:stop] = fill_large_gaps(xyz[start:stop], params.fill_large_gaps_with)
    interp = np.zeros_like(filled)
    interp[start:stop] = filled[start:stop]
    return PersonResult(out, raw, err_px, err_mm, r.used.reshape(C, F, K), r.valid.reshape(C, F, K),
                        interp, swaps, start, stop)

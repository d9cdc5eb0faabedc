"""Left/right swap detection and correction, per camera, frame and body part.

2D detectors sometimes label a person's left side as the right one in a view
(seen from behind, or in profile). In that camera, for that frame, every left
keypoint of a body part sits where the right one should be. Pose2Sim's
``handle_LR_swap`` tried swapped subsets of cameras (and is not wired in 0.10.49);
here the decision is made without enumerating subsets:

1. Triangulate the left and right keypoints of a part (legs, arms, face) with all
   views as labelled. Frames whose per-camera error stays small are left alone.
2. On the other frames, greedily flip the camera whose exchange of left and right
   lowers the part's total (clipped) reprojection error the most, while it does
   so clearly; at most C/2 + 1 rounds, each testing the C cameras at once (the
   normal equations are per-camera sums, so a flip is cheap).
3. A labelling and its mirror (every camera flipped) fit equally well: keep the
   one whose left-right body axis agrees with the nearest frame without flips
   (the body does not turn over in a few frames), else the one with fewer flips.

Shapes: ``points (C,F,K,2)`` px (undistorted), ``weights (C,F,K)``, ``P (C,3,4)``.
"""
from __future__ import annotations

import logging

import numpy as np

from ..geometry import blas_single, finite_xy, reprojection_errors, triangulate_dlt

log = logging.getLogger(__name__)

PARTS = {
    "face": ("eye", "ear", "mouth", "cheek", "brow"),
    "arms": ("shoulder", "elbow", "wrist", "hand", "pinky", "index", "thumb", "finger"),
    "legs": ("hip", "knee", "ankle", "heel", "toe", "foot"),
}
STEP_GAIN = 0.05  # a greedy flip must lower the part's error by 5% ...
REL_GAIN = 0.3    # ... and all flips of a frame together by 30% ...
ABS_GAIN = 2.0    # ... and by 2 px per observation, to be kept
MAX_REF_GAP = 30  # frames: how far a swap-free frame may be to orient a labelling
# Parts whose left and right points are too close for their own decision (eyes and ears
# are a few pixels apart, under detector noise): they flip where both legs and arms flip.
FOLLOWERS = ("face",)


def lr_pairs(names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Left/right keypoint pairs by name (``LKnee``/``RKnee``), grouped by body part.

    ``names (K,)`` → ``{part: (left (L,), right (L,))}`` index arrays; parts without pairs omitted.
    """
    groups: dict[str, tuple[list[int], list[int]]] = {}
    for i, n in enumerate(names):
        if not (len(n) > 1 and n[0] == "L" and n[1].isupper()):
            continue
        other = "R" + n[1:]
        if other not in names:
            continue
        low = n.lower()
        part = next((p for p, words in PARTS.items() if any(w in low for w in words)), "other")
        left, right = groups.setdefault(part, ([], []))
        left.append(i)
        right.append(names.index(other))
    return {p: (np.array(lr[0]), np.array(lr[1])) for p, lr in groups.items()}


def _part_cost(pa, pb, wa, wb, P, cap):
    """Clipped reprojection cost of one labelling. ``pa, pb (C,S,L,2)`` points labelled
    left/right, ``wa, wb (C,S,L)`` → per-frame mean ``(S,)`` and per-camera mean ``(C,S)``."""
    C, S, L = wa.shape
    out_sum = np.zeros((C, S))
    out_n = np.zeros((C, S))
    for pts, w in ((pa, wa), (pb, wb)):
        flat = pts.reshape(C, S * L, 2)
        X = triangulate_dlt(flat, w.reshape(C, S * L), P)
        e = reprojection_errors(P, X, flat).reshape(C, S, L)
        ok = (w > 0) & np.isfinite(e)
        out_sum += np.where(ok, np.minimum(e, cap), 0.0).sum(-1)
        out_n += ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_cam = out_sum / out_n
        total = out_sum.sum(0) / out_n.sum(0)
    return np.nan_to_num(total, nan=0.0), np.nan_to_num(per_cam, nan=0.0)


def _suspects(pl, pr, wl, wr, P, threshold):
    """Frames where some camera's *median* error over a part's left and right points exceeds
    ``threshold`` → ``(F,)`` bool. A swap moves every point of the part in that camera; a
    lone outlier keypoint does not raise the median, so it is left to the robust DLT."""
    C, F, L = wl.shape
    errs = []
    for pts, w in ((pl, wl), (pr, wr)):
        flat = pts.reshape(C, F * L, 2)
        X = triangulate_dlt(flat, w.reshape(C, F * L), P)
        e = reprojection_errors(P, X, flat).reshape(C, F, L)
        errs.append(np.where(w > 0, e, np.nan))
    e = np.concatenate(errs, axis=-1)                                          # (C,F,2L)
    n = np.isfinite(e).sum(-1)
    e = np.sort(np.where(np.isfinite(e), e, np.inf), axis=-1)                 # median of the finite ones
    med = np.take_along_axis(e, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    return ((n >= 2) & (med > threshold)).any(0)


def _labelled(pl, pr, wl, wr, s):
    """Points as labelled under flips ``s (C,S)``: (left pts, right pts, left w, right w)."""
    s4 = s[:, :, None, None]
    s3 = s[:, :, None]
    return (np.where(s4, pr, pl), np.where(s4, pl, pr), np.where(s3, wr, wl), np.where(s3, wl, wr))


def _greedy_flips(pl, pr, wl, wr, P, cap, threshold, init=None):
    """Greedy flips on suspicious frames. Arrays ``(C,S,L,...)`` → flips ``(C,S)`` bool.

    Each round tries, per frame, flipping each camera whose error on the part is above
    ``threshold`` (a camera that fits is not swapped), and keeps the best flip if it lowers
    the part's error by ``STEP_GAIN``. ``init (C,S)``: a first guess (the cameras the robust
    pass rejected), used where it fits better than no flip; with many cameras it leaves
    little for the rounds to do."""
    C, S = wl.shape[:2]
    s = np.zeros((C, S), bool)
    cost, per_cam = _part_cost(pl, pr, wl, wr, P, cap)
    cost0 = cost.copy()
    if init is not None and init.any():
        c_init, pc_init = _part_cost(*_labelled(pl, pr, wl, wr, init), P, cap)
        better = c_init < cost
        s = init & better[None]
        cost = np.where(better, c_init, cost)
        per_cam = np.where(better[None], pc_init, per_cam)
    active = np.ones(S, bool)
    for _ in range(C // 2 + 1):
        trial = np.full((C, S), np.inf)
        trial_cam = np.zeros((C, C, S))
        for c in range(C):  # C hypotheses, each vectorised over the frames where c is a candidate
            idx = np.flatnonzero(active & (per_cam[c] > threshold))
            if idx.size == 0:
                continue
            s_try = s[:, idx].copy()
            s_try[c] = ~s_try[c]
            trial[c, idx], trial_cam[c][:, idx] = _part_cost(
                *_labelled(pl[:, idx], pr[:, idx], wl[:, idx], wr[:, idx], s_try), P, cap)
        best = np.argmin(trial, axis=0)
        cols = np.arange(S)
        new = trial[best, cols]
        gain = active & (new < cost * (1 - STEP_GAIN))
        if not gain.any():
            break
        g = np.flatnonzero(gain)
        s[best[g], g] = ~s[best[g], g]
        cost[g] = new[g]
        per_cam[:, g] = trial_cam[best[g], :, g].T
        active = gain
    keep = (cost < cost0 * (1 - REL_GAIN)) & (cost < cost0 - ABS_GAIN)
    return s & keep[None]


def _axis(pl, pr, wl, wr, P, s):
    """Mean left-minus-right 3D vector of the part under flips ``s`` → ``(S,3)``."""
    C, S, L = wl.shape
    a, b, wa, wb = _labelled(pl, pr, wl, wr, s)
    Xa = triangulate_dlt(a.reshape(C, S * L, 2), wa.reshape(C, S * L), P).reshape(S, L, 3)
    Xb = triangulate_dlt(b.reshape(C, S * L, 2), wb.reshape(C, S * L), P).reshape(S, L, 3)
    d = Xa - Xb
    n = np.isfinite(d).all(-1).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n[:, None] > 0, np.nansum(d, axis=1) / n[:, None], np.nan)


def _nearest(ref_ok: np.ndarray) -> np.ndarray:
    """Index of the nearest True frame of ``ref_ok (F,)`` for every frame (-1 if none)."""
    F = len(ref_ok)
    idx = np.arange(F)
    prev = np.maximum.accumulate(np.where(ref_ok, idx, -1))
    nxt = np.minimum.accumulate(np.where(ref_ok, idx, F)[::-1])[::-1]
    use_next = (nxt < F) & ((prev < 0) | (nxt - idx < idx - prev))
    return np.where(use_next, nxt, prev)


def _resolve_mirror(s, seen, axis_fn):
    """Choose between a labelling and its mirror. ``s (C,F)`` flips, ``seen (C,F)`` cameras
    with data → ``(C,F)``.

    The left-right body axis cannot turn over in a few frames: a frame with flips takes
    the orientation whose axis agrees with the nearest frame without any flip (within
    ``MAX_REF_GAP`` frames). Without such a frame, fewer flips wins (detectors are right
    more often than not); a tie keeps the labelling found.
    """
    n_seen = seen.sum(0)
    n_flip = (s & seen).sum(0)
    mirror = 2 * n_flip > n_seen
    flipped = n_flip > 0
    if flipped.any():
        F = s.shape[1]
        r = _runs(flipped)
        refs = np.concatenate([r[:, 0] - 1, r[:, 1]])
        refs = refs[(refs >= 0) & (refs < F)]
        idx = np.union1d(np.flatnonzero(flipped), refs)                      # frames that matter
        axis = np.full((F, 3), np.nan)
        axis[idx] = axis_fn(s[:, idx], idx)
        ref_ok = np.zeros(F, bool)
        ref_ok[refs] = np.isfinite(axis[refs]).all(-1)
        ref = _nearest(ref_ok)
        near = (ref >= 0) & (np.abs(ref - np.arange(F)) <= MAX_REF_GAP)
        agree = (axis * axis[np.maximum(ref, 0)]).sum(-1) >= 0
        mirror = np.where(flipped & near & np.isfinite(axis).all(-1), ~agree, mirror)
    return np.where(mirror[None] & seen, ~s, s)


def _runs(mask: np.ndarray) -> np.ndarray:
    """Runs of True in ``mask (F,)`` → ``(R,2)`` [start, stop)."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


def _part_arrays(points, weights, left, right):
    pl, pr = points[:, :, left], points[:, :, right]
    wl = np.where(finite_xy(pl), weights[:, :, left], 0.0)
    wr = np.where(finite_xy(pr), weights[:, :, right], 0.0)
    return pl, pr, wl, wr


@blas_single
def correct_lr_swaps(points: np.ndarray, weights: np.ndarray, P: np.ndarray, names: list[str],
                     threshold: float, suspect: np.ndarray | None = None, hint: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Detect and undo left/right swaps.

    ``points (C,F,K,2)``, ``weights (C,F,K)``, ``P (C,3,4)``, ``names (K,)``, ``threshold``
    px (frames where no camera's error on any part exceeds it are not suspected) →
    corrected copies of ``points`` and ``weights``, and ``{part: swapped (C,F) bool}``.
    Suspicion is shared between parts, and the face follows the body (``FOLLOWERS``):
    a whole-body swap shows on the legs and arms, while the eyes and ears are only a
    few pixels apart. ``suspect (F,)``: frames to examine, if already known (e.g. from
    the views a robust triangulation rejected); else found here from median errors.
    ``hint (C,F)``: cameras likely swapped there (the ones that lost most of a part).
    """
    cap = 3.0 * threshold
    parts = lr_pairs(names)
    C, F = weights.shape[:2]
    if suspect is None:
        suspect = np.zeros(F, bool)
        for left, right in parts.values():
            suspect |= _suspects(*_part_arrays(points, weights, left, right), P, threshold)
    sus = np.flatnonzero(suspect)
    found: dict[str, np.ndarray] = {part: np.zeros((C, F), bool) for part in parts}
    if sus.size == 0:
        return points, weights, found
    points, weights = points.copy(), weights.copy()
    body = [p for p in ("legs", "arms") if p in parts]
    for part in body + [p for p in parts if p not in body]:
        left, right = parts[part]
        if part in FOLLOWERS and len(body) == 2:
            s = found["legs"] & found["arms"]
        else:
            s = np.zeros((C, F), bool)
            s[:, sus] = _greedy_flips(*_part_arrays(points[:, sus], weights[:, sus], left, right), P, cap,
                                      threshold, init=None if hint is None else hint[:, sus])
            seen = (weights[:, :, left] > 0).any(-1) | (weights[:, :, right] > 0).any(-1)
            s = _resolve_mirror(s, seen, lambda flips, idx, lr=(left, right):
                                _axis(*_part_arrays(points[:, idx], weights[:, idx], *lr), P, flips))
        if s.any():
            _relabel(points, weights, left, right, s)
        found[part] = s
        log.debug("left/right swaps in %s: %d camera-frames", part, int(s.sum()))
    return points, weights, found


def _relabel(points, weights, left, right, s) -> None:
    """Exchange left and right of a part where ``s (C,F)`` (in place, on the frames concerned)."""
    fr = np.flatnonzero(s.any(0))
    pts, w = points[:, fr], weights[:, fr]
    a, b, wa, wb = _labelled(pts[:, :, left], pts[:, :, right], w[:, :, left], w[:, :, right], s[:, fr])
    pts[:, :, left], pts[:, :, right] = a, b
    w[:, :, left], w[:, :, right] = wa, wb
    points[:, fr], weights[:, fr] = pts, w

"""Association kernels: which detection slot is which person (single person: hypotheses scored by
reprojection; several: 3D tracking). See :mod:`openkin.association` for the method.

Shapes: ``C`` cameras, ``F`` frames, ``P`` detection slots, ``K`` keypoints, ``T`` people.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import OpenKinError
from ..inputs import Views, prepare_points
from ..progress import Progress, report
from ..geometry import (Rig, blas_single, camera_centers, fill_nan, project, ray_directions, ray_distance,
                        triangulate_dlt, triangulate_robust)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssociationParams:
    """Explicit settings (Pose2Sim's ``[personAssociation]`` and tracking keys of ``[triangulation]``)."""

    tracked_keypoint: int = 0
    likelihood_threshold: float = 0.3
    reproj_error_threshold: float = 20.0        # px (single person)
    reconstruction_error_threshold: float = 0.1  # m (multi-person grouping)
    min_affinity: float = 0.2
    min_cameras: int = 2
    max_distance_m: float = 1.0
    max_unseen_frames: int = 100
    predict_displacement: bool = False
    min_frames: int = 10
    undistort: bool = True


@dataclass
class Association:
    """Result: ``choice (T,C,F)`` detection slot of person t in camera c at frame f (-1 none),
    and the views it indexes (``views.keypoints (C,F,P,K,3)``)."""

    views: Views
    choice: np.ndarray
    multi: bool

    def person_keypoints(self, t: int) -> np.ndarray:
        """``(C,F,K,3)`` raw detections of person ``t`` (NaN where not seen)."""
        kp = self.views.keypoints
        ch = self.choice[t]
        out = np.take_along_axis(kp, np.maximum(ch, 0)[:, :, None, None, None], axis=2)[:, :, 0]
        out[ch < 0] = np.nan
        return out


# ============================================================================ single person
def _pair_index(C: int, P: int):
    """All (cam a, slot i, cam b, slot j) with a < b → four ``(H,)`` arrays."""
    a, b = np.triu_indices(C, 1)
    i, j = np.meshgrid(np.arange(P), np.arange(P), indexing="ij")
    A = np.repeat(a, P * P)
    B = np.repeat(b, P * P)
    return A, np.tile(i.ravel(), len(a)), B, np.tile(j.ravel(), len(a))


def _hypotheses(u, w, P_mat, params: AssociationParams):
    """Score pair hypotheses. ``u (C,F,P,2)``, ``w (C,F,P)`` → X ``(H,F,3)``, inliers ``(H,F)``,
    error ``(H,F)``, nearest slot ``(H,C,F)``, inlier mask ``(H,C,F)``."""
    C, F, Pn = w.shape
    A, I, B, J = _pair_index(C, Pn)
    H = len(A)
    pts = np.full((C, H * F, 2), np.nan)
    wts = np.zeros((C, H * F))
    for h in range(H):  # H = C(C-1)/2 · P² small blocks; each vectorised over frames
        sl = slice(h * F, (h + 1) * F)
        pts[A[h], sl], wts[A[h], sl] = u[A[h], :, I[h]], w[A[h], :, I[h]]
        pts[B[h], sl], wts[B[h], sl] = u[B[h], :, J[h]], w[B[h], :, J[h]]
    X = triangulate_dlt(pts, wts, P_mat)                                       # (H*F,3)
    proj = project(P_mat, X).reshape(C, H, F, 1, 2)
    d = np.linalg.norm(proj - u[:, None], axis=-1)                             # (C,H,F,P)
    d = np.where(w[:, None] > 0, d, np.inf)
    d = fill_nan(d, np.inf)
    slot = np.argmin(d, axis=-1)
    dmin = np.min(d, axis=-1)
    inl = dmin < params.reproj_error_threshold
    n_in = inl.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(inl, dmin, 0.0).sum(0) / n_in
    err = np.where(n_in >= 2, err, np.inf)
    return X.reshape(H, F, 3), n_in, err, slot.transpose(1, 0, 2), inl.transpose(1, 0, 2)


def _continuity(X, score, best):
    """Among hypotheses tied on inliers, follow the previous frame's 3D point. ``X (H,F,3)``,
    ``score (H,F)``, ``best (F,)`` → ``(F,)``."""
    H, F = score.shape
    top = score.max(0)
    tied = score >= top[None] - 0.5                                            # same inlier count
    spread = np.nanmax(np.where(tied[..., None], X, np.nan), axis=0) - np.nanmin(np.where(tied[..., None], X, np.nan), axis=0)
    ambiguous = np.flatnonzero(np.nan_to_num(np.linalg.norm(spread, axis=-1)) > 0.3)
    if ambiguous.size == 0:
        return best
    prev = None
    out = best.copy()
    amb = set(ambiguous.tolist())
    for f in range(F):  # sequential by nature; cheap (a few numpy ops per frame)
        if f in amb and prev is not None:
            cand = np.flatnonzero(tied[:, f])
            dist = np.linalg.norm(X[cand, f] - prev, axis=-1)
            if np.isfinite(dist).any():
                out[f] = cand[np.nanargmin(dist)]
        x = X[out[f], f]
        if np.isfinite(x).all():
            prev = x
    return out


def associate_single(points: np.ndarray, weights: np.ndarray, rig: Rig, params: AssociationParams) -> np.ndarray:
    """Choose the person of interest. ``points (C,F,P,K,2)`` undistorted px, ``weights (C,F,P,K)``
    → ``choice (C,F)`` slot per camera and frame (-1 none)."""
    C, F, Pn, K = weights.shape
    present = (weights > 0).any(-1)                                            # (C,F,P)
    n_det = present.sum(-1)
    single = np.where(n_det == 1, np.argmax(present, axis=-1), -1)
    if Pn == 1 or C < 2 or not (n_det > 1).any():
        return single
    k = params.tracked_keypoint
    X, n_in, err, slot, inl = _hypotheses(points[:, :, :, k], weights[:, :, :, k], rig.P, params)
    score = n_in - np.minimum(np.nan_to_num(err, nan=np.inf, posinf=1e6), 1e6) / (10 * params.reproj_error_threshold + 1)
    best = _continuity(X, np.where(n_in >= 2, n_in, -1).astype(float), np.argmax(score, axis=0))
    f = np.arange(F)
    choice = np.where(inl[best, :, f].T, slot[best, :, f].T, -1)               # (C,F)
    ok = n_in[best, f] >= 2
    choice = np.where(ok[None], choice, single)
    return np.where(n_det == 1, np.where(choice >= 0, choice, single), choice)


# ============================================================================ multi-person
@dataclass
class _Track:
    id: int
    X: np.ndarray           # (K,3) last position
    v: np.ndarray           # (K,3) per-frame velocity
    last: int               # last frame seen
    frames: int = 0         # frames seen


class _Tracker:
    """Frame-by-frame 3D tracking (see module doc). ``points (C,F,P,K,2)``, ``weights (C,F,P,K)``."""

    def __init__(self, points, weights, rig: Rig, params: AssociationParams):
        self.u, self.w, self.rig, self.p = points, weights, rig, params
        self.P = rig.P
        self.centers = camera_centers(rig.R, rig.t)
        self.rays = ray_directions(points, rig.K, rig.R)                        # (C,F,P,K,3)
        self.tracks: list[_Track] = []
        self.lost: list[_Track] = []
        self.next_id = 0
        C, F, Pn, _ = weights.shape
        self.choice: dict[int, np.ndarray] = {}
        n_kpt = (weights > 0).sum(-1)                                           # (C,F,P)
        self.seen = n_kpt >= 1      # may join a known person (a person at the image edge shows a few keypoints)
        self.present = n_kpt >= 3   # may start a new person

    def _slot(self, track_id: int) -> np.ndarray:
        C, F = self.w.shape[:2]
        return self.choice.setdefault(track_id, np.full((C, F), -1, dtype=int))

    def _assign(self, f: int) -> dict[int, dict[int, int]]:
        """Hungarian matching of live tracks to each camera's detections → {track: {cam: slot}}."""
        out: dict[int, dict[int, int]] = {t.id: {} for t in self.tracks}
        if not self.tracks:
            return out
        gap = np.array([f - t.last for t in self.tracks], float)
        pred = np.stack([t.X + (t.v * gap[i] if self.p.predict_displacement else 0.0)
                         for i, t in enumerate(self.tracks)])                  # (T,K,3)
        T, K = pred.shape[:2]
        proj = project(self.P, pred.reshape(-1, 3)).reshape(-1, T, 1, K, 2)     # (C,T,1,K,2)
        depth = np.linalg.norm(np.nanmean(pred, axis=1)[None] - self.centers[:, None], axis=-1)  # (C,T)
        w = self.w[:, f][:, None]                                                # (C,1,P,K)
        d = np.linalg.norm(proj - self.u[:, f][:, None], axis=-1)               # (C,T,P,K)
        ok = (w > 0) & np.isfinite(d)
        with np.errstate(invalid="ignore", divide="ignore"):
            cost = np.where(ok, d * w, 0.0).sum(-1) / np.where(ok, w, 0.0).sum(-1)  # (C,T,P)
        cost = cost * (depth / self.rig.K[:, 0, 0][:, None])[:, :, None]          # px → m at the person
        cost = np.where((ok.sum(-1) >= 1) & self.seen[:, f][:, None], fill_nan(cost, 1e9), 1e9)
        for c in np.flatnonzero(self.seen[:, f].any(-1)):
            rows, cols = linear_sum_assignment(cost[c])
            for r, sl in zip(rows, cols):
                if cost[c, r, sl] < 0.5 * self.p.max_distance_m:
                    out[self.tracks[r].id][int(c)] = int(sl)
        return out

    def _triangulate(self, f: int, groups: list[dict[int, int]]) -> list:
        """3D skeletons ``(K,3)`` (or None) of people given as ``{cam: slot}``, in one robust call."""
        C, K = self.w.shape[0], self.w.shape[-1]
        n = len(groups)
        if n == 0:
            return []
        pts = np.full((C, n, K, 2), np.nan)
        wts = np.zeros((C, n, K))
        for g, cams in enumerate(groups):
            for c, s in cams.items():
                pts[c, g], wts[c, g] = self.u[c, f, s], self.w[c, f, s]
        r = triangulate_robust(pts.reshape(C, n * K, 2), wts.reshape(C, n * K), self.P,
                               3 * self.p.reproj_error_threshold, self.p.min_cameras)
        X = r.X.reshape(n, K, 3)
        ok = [len(cams) >= self.p.min_cameras and np.isfinite(X[g]).all(-1).sum() >= 3
              for g, cams in enumerate(groups)]
        return [X[g] if ok[g] else None for g in range(n)]

    def _pair_distances(self, f: int, dets: list[tuple[int, int]]) -> np.ndarray:
        """Mean confidence-weighted ray distance (m) between leftover detections → ``(n,n)``."""
        n = len(dets)
        D = np.full((n, n), np.inf)
        ia, ib = np.triu_indices(n, 1)
        cams = np.array([c for c, _ in dets])
        keep = cams[ia] != cams[ib]
        ia, ib = ia[keep], ib[keep]
        if ia.size == 0:
            return D
        slots = np.array([s for _, s in dets])
        ra = self.rays[cams[ia], f, slots[ia]]                                  # (n_pairs,K,3)
        rb = self.rays[cams[ib], f, slots[ib]]
        d = ray_distance(self.centers[cams[ia]][:, None], ra, self.centers[cams[ib]][:, None], rb)
        w = np.sqrt(self.w[cams[ia], f, slots[ia]] * self.w[cams[ib], f, slots[ib]])
        ok = np.isfinite(d) & (w > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(ok, d * w, 0.0).sum(-1) / np.where(ok, w, 0.0).sum(-1)
        mean = np.where(ok.sum(-1) >= 3, fill_nan(mean, np.inf), np.inf)
        D[ia, ib] = mean
        D[ib, ia] = mean
        return D

    def _group(self, f: int, taken: set) -> list[dict[int, int]]:
        """Group detections not matched to a person into new people → [{cam: slot}, ...]."""
        C = self.w.shape[0]
        dets = [(c, int(s)) for c in range(C) for s in np.flatnonzero(self.present[c, f]) if (c, int(s)) not in taken]
        if len({c for c, _ in dets}) < self.p.min_cameras:
            return []
        D = self._pair_distances(f, dets)
        limit = (1.0 - self.p.min_affinity) * self.p.reconstruction_error_threshold
        label = list(range(len(dets)))
        members = {i: {dets[i][0]: dets[i][1]} for i in range(len(dets))}
        ia, ib = np.nonzero(np.triu(D <= limit, 1))
        for k in np.argsort(D[ia, ib]):  # closest pairs first; one detection per camera per group
            a, b = label[ia[k]], label[ib[k]]
            if a == b or set(members[a]) & set(members[b]):
                continue
            members[a].update(members.pop(b))
            label = [a if x == b else x for x in label]
        return [m for m in members.values() if len(m) >= self.p.min_cameras]

    def _update(self, track: _Track, f: int, X: np.ndarray, cams: dict[int, int]) -> None:
        X = np.where(np.isfinite(X), X, track.X)
        if track.frames:
            track.v = np.nan_to_num((X - track.X) / max(f - track.last, 1))
        track.X, track.last = X, f
        track.frames += 1
        slot = self._slot(track.id)
        for c, s in cams.items():
            slot[c, f] = s

    def _spawn(self, f: int, X: np.ndarray, cams: dict[int, int]) -> None:
        def dist(t):
            return np.nanmean(np.linalg.norm(t.X - X, axis=-1))

        if any(t.last == f and dist(t) < 0.3 for t in self.tracks):
            return  # a person already matched this frame: a leftover duplicate
        unseen = [t for t in self.tracks if t.last < f and dist(t) < self.p.max_distance_m]
        if unseen:
            self._update(min(unseen, key=dist), f, X, cams)
            return
        track = _Track(self.next_id, X, np.zeros_like(X), f)
        self.next_id += 1
        self.tracks.append(track)
        self._update(track, f, X, cams)

    def step(self, f: int) -> None:
        assigned = self._assign(f)
        ids = list(assigned)
        for t_id, X in zip(ids, self._triangulate(f, [assigned[i] for i in ids])):
            if X is not None:
                self._update(next(t for t in self.tracks if t.id == t_id), f, X, assigned[t_id])
        taken = {(c, s) for t in self.tracks if t.last == f for c, s in
                 ((c, int(self.choice[t.id][c, f])) for c in range(self.w.shape[0])) if s >= 0}
        groups = self._group(f, taken)
        for cams, X in zip(groups, self._triangulate(f, groups)):
            if X is not None:
                self._spawn(f, X, cams)
        self.tracks = [t for t in self.tracks if f - t.last <= self.p.max_unseen_frames]

    def result(self) -> np.ndarray:
        """``(T,C,F)`` slots of the people seen in at least ``min_frames`` frames, by first appearance."""
        C, F = self.w.shape[:2]
        keep = []
        for t_id, ch in sorted(self.choice.items()):
            seen = (ch >= 0).any(0)
            if seen.sum() >= self.p.min_frames:
                keep.append((int(np.argmax(seen)), ch))
        keep.sort(key=lambda item: item[0])
        return np.array([ch for _, ch in keep]).reshape(len(keep), C, F)


def associate_multi(points: np.ndarray, weights: np.ndarray, rig: Rig, params: AssociationParams,
                    progress: Progress | None = None) -> np.ndarray:
    """Track several people. ``points (C,F,P,K,2)`` undistorted px, ``weights (C,F,P,K)`` →
    ``choice (T,C,F)`` slot of person t in camera c at frame f (-1 none)."""
    tracker = _Tracker(points, weights, rig, params)
    F = weights.shape[1]
    for f in range(F):
        tracker.step(f)
        if f % 200 == 0:
            report(progress, f / max(F, 1), f"tracking people, frame {f}/{F}")
    return tracker.result()



def params_from_config(config, keypoint_names: list[str]) -> AssociationParams:
    """:class:`AssociationParams` from ``[personAssociation]``, ``[triangulation]`` and ``[project]``."""
    sp = config.personAssociation.single_person
    mp = config.personAssociation.multi_person
    tri = config.triangulation
    name = sp.tracked_keypoint
    if name in keypoint_names:
        tracked = keypoint_names.index(name)
    else:
        tracked = keypoint_names.index("Hip") if "Hip" in keypoint_names else 0
        log.warning("tracked_keypoint %r is not in the skeleton: tracking %s instead", name, keypoint_names[tracked])
    return AssociationParams(
        tracked_keypoint=tracked, likelihood_threshold=sp.likelihood_threshold_association,
        reproj_error_threshold=sp.reproj_error_threshold_association,
        reconstruction_error_threshold=mp.reconstruction_error_threshold, min_affinity=mp.min_affinity,
        min_cameras=max(tri.min_cameras_for_triangulation, 2), max_distance_m=tri.max_distance_m,
        max_unseen_frames=tri.max_unseen_frames, predict_displacement=tri.predict_displacement,
        min_frames=tri.min_chunk_size, undistort=getattr(tri, "undistort_points", True))


@blas_single  # one BLAS thread for the kernels called per frame (see geometry)
def associate(views: Views, params: AssociationParams, multi: bool, progress: Progress | None = None) -> Association:
    """Associate the detections of ``views`` → :class:`Association`."""
    rig = Rig.from_cameras(views.cameras)
    kp = views.keypoints                                                       # (C,F,P,K,3)
    C, F, Pn, K, _ = kp.shape
    if F == 0 or K == 0:
        raise OpenKinError("no keypoints in the pose files", path=views.source, fix="run the pose stage first")
    pts, w = prepare_points(kp.reshape(C, F * Pn, K, 3), rig, params.undistort, params.likelihood_threshold)
    pts, w = pts.reshape(C, F, Pn, K, 2), w.reshape(C, F, Pn, K)
    if multi:
        choice = associate_multi(pts, w, rig, params, progress)
    else:
        choice = associate_single(pts, w, rig, params)[None]
    return Association(views, choice, multi)


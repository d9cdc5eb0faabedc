"""Person association: which 2D detection is which person, in every camera and frame.

Single person (``[project] multi_person = false``), Pose2Sim's idea made vectorised:
for every frame, hypotheses are pairs of detections in two cameras; each is
triangulated on the ``tracked_keypoint`` and reprojected in every camera, where
the nearest detection within ``reproj_error_threshold_association`` px counts as
an inlier. The hypothesis with most inliers (then least error) wins; a camera
without an inlier keeps no one. Where two people tie, the one closest to the
previous frame's choice is kept, so the chosen person does not flip. A camera
that sees a single detection keeps it (bad keypoints are the triangulation's job,
unlike Pose2Sim, which drops the whole view when the tracked keypoint is off).

Multi-person: tracking in 3D with stable identities. Each frame, every live
person's skeleton (last position, plus its velocity if ``predict_displacement``)
is projected into each camera and matched to the detections with the Hungarian
algorithm (cost: confidence-weighted mean keypoint distance in px, expressed in
metres at the person's depth and gated at half ``max_distance_m``; a detection with
a single usable keypoint may match, as a person at the image edge shows few); matched
people are re-triangulated, all people of a frame in one robust DLT call. Detections left over in several cameras are grouped
by the distance between their keypoint rays (mean ≤ (1 - ``min_affinity``) ×
``reconstruction_error_threshold`` m, one detection per camera per group); a
group seen by ``min_cameras_for_triangulation`` cameras becomes a person: an
earlier one unseen for at most ``max_unseen_frames`` frames and within
``max_distance_m`` takes it back, otherwise a new identity starts. People seen in
fewer than ``min_chunk_size`` frames are dropped.

Output: ``pose-associated/<cam>_json/`` in Pose2Sim's layout (person slot n =
person n in every camera and frame; empty slots written as zeros; a frame whose only
detection is kept as person 0 is a hard link to its input file, see ``_link_unchanged``), and an
in-memory copy that :mod:`openkin.triangulation` uses when it runs next in the
same process (reading thousands of JSON files again would take longer than the
whole reconstruction); it is keyed on the folder and the written files' stamp,
so a changed folder is read from disk.

Shapes: ``C`` cameras, ``F`` frames, ``P`` detection slots, ``K`` keypoints, ``T`` people.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from .errors import OpenKinError
from .progress import Progress, report, scaled
from .triangulation.core import Rig, prepare_points
from .triangulation.geometry import (blas_single, camera_centers, fill_nan, project, ray_directions,
                                     ray_distance, triangulate_dlt)
from .triangulation.inputs import Views, camera_name, read_views, skeleton_of
from .triangulation.robust import triangulate_robust

log = logging.getLogger(__name__)

STAMP = ".openkin-association"


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


# ============================================================================ stage
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


def _frame_texts(people: np.ndarray) -> list[str]:
    """OpenPose JSON text of each frame. ``people (F,T,K,3)`` (NaN absent) → F strings; slot n is
    person n (an absent person before a present one is written as zeros, like Pose2Sim's ``{}``)."""
    F, T, K, _ = people.shape
    present = np.isfinite(people[..., 0]).any(-1)                              # (F,T)
    vals = np.where(np.isfinite(people).all(-1, keepdims=True), people, 0.0)   # OpenPose: 0, 0, 0 = absent
    fmt = ",".join(["%.3f,%.3f,%.4f"] * K)
    head = '{"version": 1.3, "people": ['
    empty = ', "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}'
    texts = []
    for f in range(F):  # string formatting in C: ~10 µs per person and frame
        last = int(np.flatnonzero(present[f])[-1]) + 1 if present[f].any() else 0
        people_txt = [f'{{"person_id": [{t}], "pose_keypoints_2d": [{fmt % tuple(vals[f, t].ravel())}]{empty}'
                      for t in range(last)]
        texts.append(head + ", ".join(people_txt) + "]}")
    return texts


def _write_camera(out_dir: Path, folder_name: str, stem: str, people: np.ndarray, frames: np.ndarray,
                  sources: list | None = None) -> None:
    """Write one camera's folder into a temporary folder, then swap it in (the earlier folder is
    replaced only once the new one is complete). Written directly rather than through
    :func:`openkin.formats.openpose.write_openpose_dir`, whose per-file temporary + rename
    doubles the file-system work (measured 2-3× slower for thousands of small files).
    ``people (F,T,K,3)``; ``sources``: per frame, an input file holding exactly what would be
    written (its single person is person 0), hard-linked instead of rewritten, or None."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder_name}.", dir=out_dir))
    try:
        names = [f"{stem}_{int(f):06d}.json" for f in frames]
        todo = _link_unchanged(tmp, names, sources)
        tmp_s = str(tmp)
        for i, text in zip(todo.tolist(), _frame_texts(people[todo])):
            with open(os.path.join(tmp_s, names[i]), "w", encoding="utf-8") as fh:
                fh.write(text)
        final = out_dir / folder_name
        trash = out_dir / f".{folder_name}.old"
        shutil.rmtree(trash, ignore_errors=True)
        if final.exists():
            os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _link_unchanged(tmp: Path, names: list[str], sources: list | None) -> np.ndarray:
    """Hard-link ``sources[i]`` as ``tmp/names[i]`` where given → indices ``(n,)`` still to write.

    Chosen for speed: where association keeps a camera frame's single detection as person 0 (a
    single-person scene: nearly every file), the output file would hold the input's numbers, so
    the input file is linked (one cheap metadata operation; 600 frames × 4 cameras: 0.11 s
    instead of 0.35 s to format and create the files). The linked file keeps the detector's
    digits and person_id; both are valid OpenPose/Pose2Sim JSON. Our writers replace files
    (temporary + rename) rather than rewrite them in place, so a rerun of an earlier stage never
    changes a linked file under this folder. Where links fail (FAT/exFAT drives, another
    device, a vanished input) the rest is written."""
    if sources is None:
        return np.arange(len(names))
    todo = []
    linking = True
    tmp_s = str(tmp)  # plain strings: a Path per file costs as much as the link itself
    for i, (name, src) in enumerate(zip(names, sources)):
        if src is not None and linking:
            try:
                os.link(src, os.path.join(tmp_s, name))
                continue
            except OSError as exc:
                log.debug("hard link %s failed (%s): writing the files instead", src, exc)
                linking = False
        todo.append(i)
    return np.array(todo, dtype=int)


def _unchanged_sources(assoc: Association) -> list[list | None]:
    """Per camera, per frame: the input file to reuse (its only listed person is kept as person 0
    and nobody else is written there), else None → C lists (or None where unknown)."""
    views, ch = assoc.views, assoc.choice
    C = ch.shape[1] if ch.ndim == 3 else len(views.folders)
    if views.files is None or views.listed is None or ch.shape[0] == 0:
        return [None] * C
    same = (ch[0] == 0) & (views.listed == 1) & (ch[1:] < 0).all(0)           # (C,F)
    return [[os.path.join(str(folder), name) if ok and name else None
             for ok, name in zip(same[c].tolist(), views.files[c])] for c, folder in enumerate(views.folders)]


def write_associated(assoc: Association, out_dir: Path, progress: Progress | None = None) -> None:
    """Write ``out_dir/<cam>_json/`` (slot n = person n) and the stamp the in-memory copy is keyed on."""
    views = assoc.views
    T = assoc.choice.shape[0]
    people = np.stack([assoc.person_keypoints(t) for t in range(T)], axis=2) if T else \
        np.full(views.keypoints.shape[:2] + (0,) + views.keypoints.shape[3:], np.nan)  # (C,F,T,K,3)
    C = len(views.folders)
    sources = _unchanged_sources(assoc)
    for c, folder in enumerate(views.folders):
        _write_camera(out_dir, folder.name, camera_name(folder), people[c], views.frame_numbers, sources[c])
        report(progress, (c + 1) / C, f"wrote {folder.name}")
    stamp = out_dir / STAMP
    stamp.write_text(f"{time.time_ns()}\n")
    _CACHE.clear()
    _CACHE[_key(out_dir)] = assoc


_CACHE: dict = {}


def _key(out_dir: Path):
    stamp = Path(out_dir) / STAMP
    try:
        return (str(Path(out_dir).resolve()), stamp.read_text())
    except OSError:
        return None


def cached(out_dir: Path) -> Association | None:
    """The association written to ``out_dir`` by this process, if the folder is unchanged since."""
    key = _key(out_dir)
    return _CACHE.get(key) if key is not None else None


def input_dir(paths) -> Path:
    """``pose-sync/`` if synchronisation wrote it, else ``pose/``."""
    from .triangulation.inputs import pose_folders

    return paths.pose_sync if pose_folders(paths.pose_sync) else paths.pose


def run_stage(config, paths, progress: Progress | None = None) -> None:
    """Associate the people of ``pose-sync/`` (or ``pose/``) into ``pose-associated/``."""
    from .calibration import find_calibration

    t0 = time.perf_counter()
    src = input_dir(paths)
    views = read_views(src, find_calibration(paths), config.project.frame_range, scaled(progress, 0.0, 0.3),
                       units=config.calibration.units)
    names = list(skeleton_of(config).names)
    if views.keypoints.shape[3] != len(names):
        raise OpenKinError(f"pose files have {views.keypoints.shape[3]} keypoints but pose_model "
                           f"{config.pose.pose_model!r} has {len(names)}", path=src,
                           fix="set [pose] pose_model to the model that made these files")
    assoc = associate(views, params_from_config(config, names), config.project.multi_person,
                      scaled(progress, 0.3, 0.7))
    write_associated(assoc, paths.pose_associated, scaled(progress, 0.7, 1.0))
    seen = (assoc.choice >= 0).mean(axis=(1, 2)) if assoc.choice.size else np.zeros(0)
    log.info("associated %d %s over %d frames from %s in %.2f s (share of camera-frames seen: %s)",
             assoc.choice.shape[0], "people" if assoc.multi else "person", len(views.frame_numbers), src.name,
             time.perf_counter() - t0, ", ".join(f"{s:.0%}" for s in seen))
    report(progress, 1.0, "association done")

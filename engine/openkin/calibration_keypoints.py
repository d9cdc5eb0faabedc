"""Calibration from the people themselves: camera poses from 2D keypoints, no board.

Anyone walking through the capture volume is a calibration object: every (frame,
keypoint) seen by two cameras is a correspondence. From the 2D keypoints of one
person per camera (synchronised: ``pose-sync/`` when synchronisation ran) and each
camera's intrinsics (a calibration file, checkerboard images, or a focal length
guessed from a field of view), :func:`calibrate_from_keypoints`:

1. undistorts the confident keypoints (confidence >= ``min_confidence``);
2. for every camera pair, estimates the essential matrix of the most confident
   correspondences (``cv2.findEssentialMat``, RANSAC, on normalised points) and
   counts the inliers that ``cv2.recoverPose`` keeps in front of both cameras;
3. keeps the best-connected pairs as a maximum spanning tree (inlier counts) and
   starts from its strongest pair; every other camera joins, in tree order, by
   ``cv2.solvePnPRansac`` on the points triangulated by the cameras already placed
   (the scale along the chain stays consistent, which chaining pairwise
   translations would not give);
4. refines all poses (and the focal lengths when ``refine_focal``) with the 3D
   keypoints of a well-spread subset of frames by bundle adjustment
   (:func:`openkin.calibration_bundle.bundle_adjust`: soft-L1 loss, sparse
   Jacobian, first camera fixed, scale fixed), twice, dropping the observations the
   first pass finds far off (left/right swaps, wrong detections);
5. sets the world frame from the person: metric scale so that the person's height
   measured on the triangulated keypoints (Pose2Sim's segment sum,
   :func:`openkin.kinematics.measure.participant_height`, as the kinematics stage
   measures it) equals ``[project] participant_height``; Z up along the normal of the
   floor plane fitted to the lowest foot keypoint of every frame (the trunk's
   direction when the person stays on too small a patch of floor to fit a plane);
   origin on the floor under the person's first position; X along the first metre of
   walking (or the direction the person faces, if they do not walk).

Measured (``tests/bench/bench_calibration.py``; after the similarity that best maps the camera
centres onto the reference's): synthetic 300-frame scenes through the demo's 4 cameras, 'mild'
noise: centres 0.4 mm (0.01% of the camera distance), orientations 0.012 deg, scale -0.15%,
Z 0.09 deg off the truth, 1-3 s; focal lengths guessed 8% long refine to 0.11%; 'realistic'
detector errors: centres 10.6 mm (0.29%), 0.27 deg, scale +0.30%, Z 0.49 deg, 7 s. Pose2Sim's
real demo (100 frames, offline BlazePose, Qualisys intrinsics) against its Qualisys
calibration: centres 22-58 mm, orientations 0.5-1.9 deg, scale -0.6%, triangulation
reprojection median 9.5 px (Qualisys 15.8 px); OpenKin's own refinement of the Qualisys
calibration moves it 13-30 mm / 1.5 deg the same way, and ours is 17-28 mm / 0.6 deg from that.
Its floor (a 0.75 m straight walk) comes out 14 deg from Qualisys' Z: a short straight walk
does not tell the floor's tilt across the walking direction.

Synchronisation: the frames are assumed synchronised (``pose-sync/`` when the
synchronization stage ran, else ``pose/`` as it is, with a warning).

It refuses, with the camera and what to film, inputs that cannot give a calibration:
a camera that sees the person in too few frames, a camera that shares too few views
of the person with every other camera, a person who hardly moves, or a result whose
reprojection error is too large.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree
from scipy.spatial.transform import Rotation

from .calibration_bundle import Bundle, bundle_adjust
from .errors import OpenKinError
from .formats.calibration import Camera
from .geometry import reprojection_errors, triangulate_dlt, undistort_points

log = logging.getLogger(__name__)

FOOT_NAMES = ("RAnkle", "LAnkle", "RHeel", "LHeel", "RBigToe", "LBigToe", "RSmallToe", "LSmallToe")
MIN_KEYPOINTS = 6       # confident keypoints for a camera to "see" the person in a frame
PAIR_SAMPLE = 3000      # most confident correspondences per pair given to RANSAC
RANSAC_CONFIDENCE = 0.999
MIN_FLOOR_SPREAD = 0.12  # m RMS of the contacts along their 2nd principal axis: below, no plane is fitted
FLOOR_SPREAD_WARN = 0.3  # m RMS (about 1 m across): below, the floor's tilt is uncertain (warned)
MAX_FLOOR_TILT = 25.0   # deg: a floor normal this far from the trunk's direction is not trusted
WALK_DISTANCE = 0.5     # m: the first this-long horizontal move of the hips gives X


@dataclass(frozen=True)
class KeypointParams:
    """Settings of :func:`calibrate_from_keypoints` (see ``[calibration.calculate.extrinsics.keypoints]``)."""

    min_confidence: float = 0.5
    ransac_px: float = 6.0        # RANSAC inlier threshold (px) for essential matrices and PnP (real detectors:
    #                               the demo measured 4 px: 77 mm / 2.4 deg off Qualisys, 6 px: 55 mm / 1.7 deg)
    f_scale_px: float = 5.0       # robust loss: quadratic below, linear above (px)
    max_frames: int = 200         # frames used by the bundle adjustment (spread over the trial)
    min_frames: int = 30          # frames where a camera must see the person
    min_shared: int = 200         # correspondences a camera must share with another camera
    min_travel: float = 0.25      # the person's path must span this many body heights in some camera
    refine_focal: bool = False
    max_error_px: float = 15.0    # median reprojection error above which no calibration is given


@dataclass
class KeypointCalibration:
    """Result: ``cameras`` in the world frame (metres, Z up), ``points (F,K,3)`` the person's
    triangulated keypoints in that frame (NaN where not seen by two cameras), ``record``: how
    it was made (pairs, tree, per-camera errors, scale, floor) for the calibration record."""

    cameras: list[Camera]
    points: np.ndarray
    record: dict = field(default_factory=dict)


# =========================================================================== input checks
def pick_person(keypoints: np.ndarray) -> np.ndarray:
    """One person per camera and frame: the detection with the largest confidence sum.
    ``keypoints (C,F,P,K,3)`` → ``(C,F,K,3)``."""
    conf = np.nan_to_num(keypoints[..., 2]).sum(axis=-1)  # (C,F,P)
    best = conf.argmax(axis=2)
    return np.take_along_axis(keypoints, best[:, :, None, None, None], axis=2)[:, :, 0]


def _seen(points2d: np.ndarray, min_confidence: float) -> np.ndarray:
    """``points2d (C,F,K,3)`` → ``(C,F,K)`` bool: finite and confident."""
    return np.isfinite(points2d[..., :2]).all(-1) & (np.nan_to_num(points2d[..., 2]) >= min_confidence)


def check_views(seen: np.ndarray, names: list[str], params: KeypointParams, where=None) -> None:
    """Every camera sees the person in ``min_frames`` frames. ``seen (C,F,K)``."""
    frames = (seen.sum(-1) >= MIN_KEYPOINTS).sum(-1)
    for c, n in enumerate(frames):
        if n < params.min_frames:
            raise OpenKinError(
                f"camera {names[c]} sees the person clearly in only {n} frames ({params.min_frames} needed) "
                "to calibrate from keypoints", path=where,
                fix=f"film someone walking through the whole view of {names[c]} (and of the other cameras) "
                    "for at least 10 s, or lower min_confidence")
    both = (seen.sum(-1) >= MIN_KEYPOINTS).sum(0) >= 2
    if both.sum() < params.min_frames:
        raise OpenKinError(f"only {int(both.sum())} frames where two cameras see the person at once "
                           f"({params.min_frames} needed)", path=where,
                           fix="film the person where several cameras see them together; check that the "
                               "videos are synchronised (run the synchronization stage first)")


def check_motion(uv: np.ndarray, seen: np.ndarray, names: list[str], params: KeypointParams, where=None) -> dict:
    """The person must move across the volume: in some camera, the path of the person's centre
    spans ``min_travel`` body heights. ``uv (C,F,K,2)`` px, ``seen (C,F,K)``. → travel per camera."""
    travel = {}
    for c in range(uv.shape[0]):
        ok = seen[c].sum(-1) >= MIN_KEYPOINTS
        if ok.sum() < 2:
            travel[names[c]] = 0.0
            continue
        pts = np.where(seen[c][ok][..., None], uv[c][ok], np.nan)  # (f,K,2)
        centre = np.nanmedian(pts, axis=1)
        tall = np.nanmedian(np.nanmax(pts[..., 1], 1) - np.nanmin(pts[..., 1], 1))
        span = np.nanpercentile(centre, 95, axis=0) - np.nanpercentile(centre, 5, axis=0)
        travel[names[c]] = float(np.linalg.norm(span) / max(tall, 1.0))
    if max(travel.values()) < params.min_travel:
        raise OpenKinError(
            f"the person hardly moves (their path spans at most {max(travel.values()):.2f} body heights in any "
            f"camera; {params.min_travel} needed): the cameras' positions cannot be told from a still pose",
            path=where, fix="film someone walking across the whole capture volume (back and forth, turning), "
                            "not standing still")
    return travel


# =========================================================================== pairs and tree
def normalised(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Undistorted px ``uv (..., 2)`` → normalised image coordinates with ``K (3,3)``."""
    return (uv - K[:2, 2]) / np.array([K[0, 0], K[1, 1]])


def pair_pose(uv_i: np.ndarray, uv_j: np.ndarray, weight: np.ndarray, K_i: np.ndarray, K_j: np.ndarray,
              ransac_px: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Relative pose of camera j to camera i from correspondences ``uv_i, uv_j (N,2)`` undistorted px,
    the ``PAIR_SAMPLE`` of largest ``weight (N,)`` used. → (R (3,3), t (3,) unit, inliers)."""
    order = np.argsort(-weight)[:PAIR_SAMPLE]
    x_i, x_j = normalised(uv_i[order], K_i), normalised(uv_j[order], K_j)
    f = 0.5 * (K_i[0, 0] + K_j[0, 0])
    E, mask = cv2.findEssentialMat(x_i, x_j, np.eye(3), cv2.RANSAC, RANSAC_CONFIDENCE, ransac_px / f)
    if E is None or E.shape != (3, 3):  # several solutions stacked: take the first
        if E is None:
            return np.eye(3), np.zeros(3), 0
        E = E[:3]
    n, R, t, mask = cv2.recoverPose(E, x_i, x_j, np.eye(3), mask=mask)
    return R, t.reshape(3), int(n)


def pair_graph(uv: np.ndarray, seen: np.ndarray, conf: np.ndarray, K: np.ndarray, params: KeypointParams):
    """Essential-matrix poses of every camera pair. → dict (i, j) → (R, t, inliers, shared)."""
    C = uv.shape[0]
    pairs = {}
    for i in range(C):
        for j in range(i + 1, C):
            both = seen[i] & seen[j]
            n = int(both.sum())
            if n < 8:
                pairs[(i, j)] = (np.eye(3), np.zeros(3), 0, n)
                continue
            w = np.minimum(conf[i][both], conf[j][both])
            R, t, inl = pair_pose(uv[i][both], uv[j][both], w, K[i], K[j], params.ransac_px)
            pairs[(i, j)] = (R, t, inl, n)
            log.info("pair %d-%d: %d shared keypoints, %d essential-matrix inliers", i, j, n, inl)
    return pairs


def spanning_tree(pairs: dict, names: list[str], params: KeypointParams, where=None) -> tuple[int, int, np.ndarray]:
    """Maximum spanning tree of the inlier counts. → (root, second, order (C,) BFS from root).

    OpenKinError naming the camera(s) not connected to the others by ``min_shared`` inliers."""
    C = len(names)
    W = np.zeros((C, C))
    for (i, j), (_, _, inl, _) in pairs.items():
        if inl >= params.min_shared:
            W[i, j] = W[j, i] = inl
    n_comp, labels = connected_components(csr_matrix(W > 0), directed=False)
    if n_comp > 1:
        main = np.bincount(labels).argmax()
        lonely = [names[c] for c in range(C) if labels[c] != main]
        best = {names[c]: max([p[2] for (a, b), p in pairs.items() if c in (a, b)], default=0)
                for c in range(C) if labels[c] != main}
        raise OpenKinError(
            f"camera(s) {', '.join(lonely)} share too few views of the person with the other cameras "
            f"(best pair: {best} consistent keypoints; {params.min_shared} needed)", path=where,
            fix=f"film the person walking where {lonely[0]} and at least one other camera see them at the same "
                "time (overlapping views), and check that the videos are synchronised")
    tree = minimum_spanning_tree(csr_matrix(-W)).toarray()
    tree = (tree != 0) | (tree.T != 0)
    i, j = np.unravel_index(np.argmax(np.where(tree, W, 0)), W.shape)
    order = breadth_first_order(csr_matrix(tree), i, directed=False, return_predecessors=False)
    return int(i), int(j), order


# =========================================================================== initial poses
def _triangulate(P: np.ndarray, uv: np.ndarray, w: np.ndarray) -> np.ndarray:
    """DLT of ``uv (C,N,2)`` weighted ``w (C,N)`` (0 = unseen) with ``P (C,3,4)`` → (N,3)."""
    return triangulate_dlt(np.nan_to_num(uv), w, P)


def initial_poses(uv: np.ndarray, seen: np.ndarray, conf: np.ndarray, K: np.ndarray, pairs: dict,
                  root: int, second: int, order: np.ndarray, names: list[str], params: KeypointParams,
                  where=None) -> tuple[np.ndarray, np.ndarray]:
    """Poses of every camera, root at the origin, ``second`` at unit distance, the others by PnP
    on the points triangulated so far. ``uv (C,F,K,2)``. → rvecs (C,3), tvecs (C,3)."""
    C = uv.shape[0]
    flat_uv = uv.reshape(C, -1, 2)
    w = np.where(seen, conf, 0.0).reshape(C, -1)
    rvecs, tvecs = np.zeros((C, 3)), np.zeros((C, 3))
    R, t, _, _ = pairs[(min(root, second), max(root, second))]
    if root > second:  # pairs hold j relative to i: invert
        R, t = R.T, -R.T @ t
    rvecs[second], tvecs[second] = cv2.Rodrigues(R)[0].ravel(), t
    placed = [root, second]
    for c in order:
        if c in placed:
            continue
        P = _projections(rvecs, tvecs, K)
        X = _triangulate(P[placed], flat_uv[placed], w[placed])
        err = reprojection_errors(P[placed], X, flat_uv[placed])
        bad = np.nanmax(np.where(w[placed] > 0, err, 0), axis=0) > 3 * params.ransac_px
        X[bad] = np.nan
        use = np.isfinite(X).all(1) & (w[c] > 0)
        if use.sum() < 6:
            raise OpenKinError(f"camera {names[c]}: only {int(use.sum())} keypoints it sees are also placed in 3D "
                               "by the other cameras", path=where,
                               fix=f"film the person where {names[c]} and two other cameras see them together")
        ok, rv, tv, inl = cv2.solvePnPRansac(X[use], flat_uv[c][use], K[c], None,
                                             reprojectionError=2 * params.ransac_px, iterationsCount=500,
                                             confidence=RANSAC_CONFIDENCE, flags=cv2.SOLVEPNP_EPNP)
        if not ok or inl is None or len(inl) < 6:
            raise OpenKinError(f"camera {names[c]}: its view of the person does not fit the other cameras' "
                               "(pose from 3D keypoints failed)", path=where,
                               fix=f"check that {names[c]}'s video is synchronised with the others and that its "
                                   "intrinsics (focal length) are right")
        rv, tv = cv2.solvePnPRefineLM(X[use][inl.ravel()], flat_uv[c][use][inl.ravel()], K[c], None, rv, tv)
        rvecs[c], tvecs[c] = rv.ravel(), tv.ravel()
        placed.append(int(c))
        log.info("camera %s placed by PnP: %d of %d keypoints inliers", names[c], len(inl), int(use.sum()))
    return rvecs, tvecs


def _projections(rvecs: np.ndarray, tvecs: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(C,3,4) ``K [R | t]`` from ``rvecs, tvecs (C,3)``, ``K (C,3,3)``."""
    return Bundle(rvecs, tvecs, K, np.zeros((0, 3))).P


# =========================================================================== bundle adjustment
def pick_frames(seen: np.ndarray, max_frames: int) -> np.ndarray:
    """Up to ``max_frames`` frame indices spread evenly over the frames seen by two cameras or more.
    ``seen (C,F,K)`` → (n,) int."""
    useful = np.flatnonzero((seen.sum(-1) >= MIN_KEYPOINTS).sum(0) >= 2)
    if len(useful) <= max_frames:
        return useful
    return useful[np.round(np.linspace(0, len(useful) - 1, max_frames)).astype(int)]


def _observations(uv: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points seen by two cameras or more. ``uv (C,N,2)``, ``w (C,N)`` → (points kept (n,), cam (M,),
    pt (M,) index into kept, uv (M,2), w (M,))."""
    keep = np.flatnonzero((w > 0).sum(0) >= 2)
    sub = w[:, keep] > 0
    cam, p = np.nonzero(sub)
    return keep, cam, p, uv[cam, keep[p]], w[cam, keep[p]]


def adjust(uv: np.ndarray, w: np.ndarray, rvecs: np.ndarray, tvecs: np.ndarray, K: np.ndarray, root: int,
           second: int, params: KeypointParams) -> tuple[Bundle, dict]:
    """Two bundle adjustments (the second without the observations the first finds far off) of
    ``uv (C,N,2)`` weighted ``w (C,N)`` from the starting poses. → bundle in camera order, stats."""
    C = len(rvecs)
    perm = np.array([root, second] + [c for c in range(C) if c not in (root, second)])
    inv = np.argsort(perm)
    uv, w, K = uv[perm], w[perm].copy(), K[perm]
    bundle = Bundle(rvecs[perm], tvecs[perm], K, np.zeros((0, 3)))
    stats = {}
    for round_ in (1, 2):
        X = _triangulate(bundle.P, uv, w)
        err = reprojection_errors(bundle.P, X, uv)
        if round_ == 1:
            w = np.where(np.nan_to_num(err, nan=np.inf) < 5 * params.ransac_px, w, 0.0)
        keep, cam, pt, obs, ow = _observations(uv, w)
        start = Bundle(bundle.rvecs, bundle.tvecs, K, X[keep])
        bundle, e = bundle_adjust(start, cam, pt, obs, ow, refine_focal=params.refine_focal and round_ == 2,
                                  scale_camera=1, f_scale_px=params.f_scale_px)
        cut = max(4.0 * float(np.median(e)), 2.0 * params.ransac_px)
        stats[f"round{round_}"] = {"observations": int(len(e)), "median_px": float(np.median(e)),
                                   "dropped_above_px": cut, "dropped": int((e > cut).sum())}
        bad = np.zeros_like(w, dtype=bool)
        bad[cam[e > cut], keep[pt[e > cut]]] = True
        w = np.where(bad, 0.0, w)
        K = bundle.K
    out = Bundle(bundle.rvecs[inv], bundle.tvecs[inv], bundle.K[inv], bundle.points)
    return out, stats


# =========================================================================== world frame
def _mid(X: np.ndarray, names: list[str], a: str, b: str) -> np.ndarray | None:
    """(F,3) midpoint of keypoints a and b (or a alone when b is absent), None if a is absent."""
    if a in names and b in names:
        return 0.5 * (X[:, names.index(a)] + X[:, names.index(b)])
    return X[:, names.index(a)] if a in names else None


def body_up(X: np.ndarray, names: list[str]) -> np.ndarray:
    """(3,) unit median direction hips → shoulders of ``X (F,K,3)``."""
    hip, shoulder = _mid(X, names, "RHip", "LHip"), _mid(X, names, "RShoulder", "LShoulder")
    if hip is None or shoulder is None:
        raise OpenKinError("the keypoint model has no hips and shoulders: the vertical cannot be found",
                           fix="use a body pose model (HALPE_26, COCO_17, BLAZEPOSE, ...)")
    v = shoulder - hip
    v = v[np.isfinite(v).all(1)]
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    up = np.median(v, axis=0)
    return up / np.linalg.norm(up)


def floor_plane(X: np.ndarray, names: list[str], up: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """Floor from the lowest foot keypoint of every frame: ``X (F,K,3)`` metres, ``up (3,)`` a first
    guess. → (normal (3,), height of the floor along it, info). Falls back to ``up`` when the
    contacts cover too little floor or tilt too much from it."""
    feet = [names.index(n) for n in FOOT_NAMES if n in names]
    if not feet:
        raise OpenKinError("the keypoint model has no ankles or feet: the floor cannot be found",
                           fix="use a pose model with feet (HALPE_26 'Body_with_feet', BLAZEPOSE)")
    F = X[:, feet]                                   # (F, nf, 3)
    h = np.einsum("fkj,j->fk", F, up)
    ok = np.isfinite(h).any(1)
    low = F[ok][np.arange(ok.sum()), np.nanargmin(h[ok], axis=1)]   # (n,3) the lowest foot point per frame
    info = {"contacts": int(len(low))}
    normal = up
    for _ in range(3):  # plane fit, trimming the points farthest above it (feet in the air)
        d = low @ normal
        keep = d <= np.percentile(d, 60)
        pts = low[keep]
        centred = pts - pts.mean(0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        spread = float(s[1] / np.sqrt(len(pts)))
        cand = vt[2] * np.sign(vt[2] @ up)
        tilt = float(np.degrees(np.arccos(np.clip(cand @ up, -1, 1))))
        info.update(spread_m=spread, tilt_from_trunk_deg=tilt)
        if spread < MIN_FLOOR_SPREAD or tilt > MAX_FLOOR_TILT:
            normal = up
            info["normal_from"] = "trunk"
            break
        normal, info["normal_from"] = cand, "floor plane"
    if info["spread_m"] < FLOOR_SPREAD_WARN:
        info["warning"] = (f"the feet touched the floor on a narrow strip only ({info['spread_m']:.2f} m RMS across; "
                           f"{FLOOR_SPREAD_WARN} m wanted): the floor's tilt across it is uncertain (several degrees); "
                           "film the person walking in a circle or back and forth across the whole volume")
        log.warning(info["warning"])
    height = float(np.percentile(low @ normal, 30))  # the median of the stance contacts kept above
    return normal, height, info


def world_axes(X: np.ndarray, names: list[str], up: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, str]:
    """Origin on the floor under the first hip position and the rotation world←frame (rows X, Y, Z):
    X along the first ``WALK_DISTANCE`` of walking, else the facing direction. ``X (F,K,3)``."""
    hip = _mid(X, names, "RHip", "LHip")
    good = np.flatnonzero(np.isfinite(hip).all(1))
    start = np.median(hip[good[:10]], axis=0)
    flat = lambda v: v - (v @ up) * up  # noqa: E731 - projection on the floor
    moves = np.array([flat(hip[f] - start) for f in good])
    far = np.flatnonzero(np.linalg.norm(moves, axis=1) > WALK_DISTANCE)
    if far.size:
        x, how = moves[far[0]], "walking direction"
    else:
        left = _mid(X, names, "LHip", "LHip") - _mid(X, names, "RHip", "RHip")
        x, how = flat(np.cross(np.nanmedian(left[good[:30]], axis=0), up)), "facing direction"
    x = x / np.linalg.norm(x)
    Rw = np.vstack([x, np.cross(up, x), up])
    origin = flat(start) + floor * up
    return origin, Rw, how


def to_world(bundle: Bundle, scale: float, origin: np.ndarray, Rw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poses in the world ``X_w = scale * Rw (X - origin)``. → rvecs (C,3), tvecs (C,3) metres."""
    R = bundle.R @ Rw.T
    t = scale * (np.einsum("cij,j->ci", bundle.R, origin) + bundle.tvecs)
    return Rotation.from_matrix(R).as_rotvec(), t


# =========================================================================== main entry
def calibrate_from_keypoints(points2d: np.ndarray, intrinsics: list[Camera], keypoint_names: list[str],
                             height: float, params: KeypointParams = KeypointParams(), where=None,
                             measure_height=None) -> KeypointCalibration:
    """Calibrate cameras from one person's keypoints.

    ``points2d (C,F,K,3)`` [x px, y px, confidence] (NaN unseen), synchronised frames;
    ``intrinsics``: C cameras whose ``matrix``, ``distortions``, ``size``, ``name`` are used (poses
    ignored); ``height``: the person's standing height (m); ``measure_height(X (F,K,3), names) → m``:
    the height estimator (default Pose2Sim's segment sum). ``where``: the path named in errors.
    """
    names = [c.name for c in intrinsics]
    C = len(intrinsics)
    if C < 2:
        raise OpenKinError("calibration from keypoints needs at least two cameras", path=where,
                           fix="film with two or more cameras")
    K = np.stack([c.matrix for c in intrinsics])
    seen = _seen(points2d, params.min_confidence)
    check_views(seen, names, params, where)
    uv = undistort_points(points2d[..., :2].copy(), K, [c.distortions for c in intrinsics])
    conf = np.nan_to_num(points2d[..., 2])
    travel = check_motion(uv, seen, names, params, where)
    pairs = pair_graph(uv, seen, conf, K, params)
    root, second, order = spanning_tree(pairs, names, params, where)
    rvecs, tvecs = initial_poses(uv, seen, conf, K, pairs, root, second, order, names, params, where)
    frames = pick_frames(seen, params.max_frames)
    w = np.where(seen, conf, 0.0)
    sub_uv = uv[:, frames].reshape(C, -1, 2)
    bundle, stats = adjust(sub_uv, w[:, frames].reshape(C, -1), rvecs, tvecs, K, root, second, params)
    X, errors = _final_points(bundle, uv, w, params)
    _check_errors(errors, names, params, where)
    measure_height = measure_height or _pose2sim_height
    measured = measure_height(X, keypoint_names)
    if not np.isfinite(measured) or measured <= 0:
        raise OpenKinError("the person's height could not be measured on the triangulated keypoints", path=where,
                           fix="film the person walking upright, whole body in view of two cameras or more")
    scale = height / measured
    Xm = X * scale  # metres, in the first camera's frame
    up = body_up(Xm, keypoint_names)
    normal, floor, floor_info = floor_plane(Xm, keypoint_names, up)
    origin, Rw, x_from = world_axes(Xm, keypoint_names, normal, floor)
    rv, tv = to_world(bundle, scale, origin / scale, Rw)
    cameras = [Camera(c.name, c.size, bundle.K[i], c.distortions, rv[i], tv[i], c.fisheye)
               for i, c in enumerate(intrinsics)]
    Xw = np.einsum("ij,fkj->fki", Rw, Xm - origin)
    record = {
        "method": "keypoints", "frames": int(points2d.shape[1]), "bundle_frames": int(len(frames)),
        "pairs": {f"{names[i]}-{names[j]}": {"shared": p[3], "inliers": p[2]} for (i, j), p in pairs.items()},
        "first_camera": names[root], "scale_camera": names[second],
        "tree_order": [names[c] for c in order], "bundle": stats, "travel_body_heights": travel,
        "scale": {"participant_height_m": float(height), "measured_before_scaling": float(measured),
                  "metres_per_unit": float(scale)},
        "floor": {**floor_info, "x_axis_from": x_from},
        "refine_focal": bool(params.refine_focal),
        "cameras": {n: {**errors[i], "focal_px": float(bundle.K[i, 0, 0])} for i, n in enumerate(names)},
    }
    return KeypointCalibration(cameras, Xw, record)


def _final_points(bundle: Bundle, uv: np.ndarray, w: np.ndarray, params: KeypointParams):
    """Triangulate every frame, drop observations off by more than the outlier cut, again.
    → (X (F,K,3), per-camera errors {name-less index: dict})."""
    C, F, Kn = w.shape
    flat_uv, flat_w = uv.reshape(C, -1, 2), w.reshape(C, -1)
    P = bundle.P
    X = _triangulate(P, flat_uv, flat_w)
    err = reprojection_errors(P, X, flat_uv)
    cut = max(4.0 * float(np.nanmedian(err[flat_w > 0])), 2.0 * params.ransac_px)
    w2 = np.where(np.nan_to_num(err, nan=np.inf) < cut, flat_w, 0.0)
    X = _triangulate(P, flat_uv, w2)
    err = reprojection_errors(P, X, flat_uv)
    stats = []
    for c in range(C):
        e = err[c][(w2[c] > 0) & np.isfinite(err[c])]
        seen = int((flat_w[c] > 0).sum())
        stats.append({"median_px": float(np.median(e)) if e.size else float("nan"),
                      "rms_px": float(np.sqrt(np.mean(e ** 2))) if e.size else float("nan"),
                      "observations": seen, "inlier_fraction": float(e.size / max(seen, 1))})
    return X.reshape(F, Kn, 3), stats


def _check_errors(errors: list[dict], names: list[str], params: KeypointParams, where=None) -> None:
    """Never give a calibration with a large error: OpenKinError naming the worst camera."""
    med = [e["median_px"] for e in errors]
    for n, e in zip(names, errors):
        log.info("camera %s: median reprojection error %.2f px (RMS %.2f px), %.0f%% of its keypoints kept",
                 n, e["median_px"], e["rms_px"], 100 * e["inlier_fraction"])
    worst = int(np.nanargmax(np.nan_to_num(med, nan=np.inf)))
    if not np.isfinite(med[worst]) or med[worst] > params.max_error_px or errors[worst]["inlier_fraction"] < 0.5:
        raise OpenKinError(
            f"calibration from keypoints failed for camera {names[worst]}: median reprojection error "
            f"{med[worst]:.1f} px (at most {params.max_error_px:g} px), {100 * errors[worst]['inlier_fraction']:.0f}% "
            "of its keypoints consistent with the other cameras; nothing written", path=where,
            fix=f"check that {names[worst]}'s video is synchronised with the others, that its intrinsics are right "
                "(or set fov_deg / refine_focal), and film a person walking through the whole volume")


def _pose2sim_height(X: np.ndarray, names: list[str]) -> float:
    """Pose2Sim's segment-sum height (the kinematics stage's own estimator; see module docstring)."""
    from .measure import participant_height

    return participant_height(X, list(names))

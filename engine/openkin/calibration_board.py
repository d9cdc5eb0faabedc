"""Extrinsics from a board that the cameras do not all see at once (checkerboard or ChArUco).

The board is filmed in several placements (frames of synchronised videos, or image sets whose
file names carry the placement number). Each camera that detects the board in a placement gets
its pose relative to the board (PnP). Cameras that saw the same placements are linked by their
relative pose (a rotation average and a median translation over the shared placements); a
spanning tree over these links, strongest first (most shared placements, smallest residual),
chains every camera to the reference one, as Caliscope does. Then one bundle adjustment (scipy
``least_squares``, robust soft-L1 loss, sparse Jacobian) refines all camera poses and board
placements together on the reprojection error of every corner.

The world is the reference placement's board frame (``board_points``: the board on the floor or
standing vertical, Pose2Sim's convention), so a board lying on the floor in the first placement
gives a Z-up world with its origin at the board's first corner.

Shapes: C cameras, P placements, N corners per observation.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

from .errors import OpenKinError
from .formats.calibration import Camera

log = logging.getLogger(__name__)

MIN_CORNERS = 6          # corners for a usable observation
ROBUST_SCALE_PX = 1.0    # soft-L1 scale: residuals beyond ~1 px weigh less


@dataclass
class BoardObservation:
    """Camera ``camera`` (index) saw placement ``placement``: ``obj (N,3)`` board-frame m at ``img (N,2)`` px."""

    camera: int
    placement: int
    obj: np.ndarray
    img: np.ndarray


@dataclass
class BoardChain:
    """``cameras`` posed in the world; ``placements`` {placement: (4,4) board→world}; ``record``:
    links used, per-camera observations and RMS (px) after the bundle adjustment."""

    cameras: list[Camera]
    placements: dict[int, np.ndarray]
    record: dict = field(default_factory=dict)


def _T(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, float).reshape(3))[0]
    T[:3, 3] = np.asarray(tvec, float).reshape(3)
    return T


def _rt(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return cv2.Rodrigues(T[:3, :3])[0].reshape(3), T[:3, 3].copy()


def board_poses(obs: list[BoardObservation], cameras: list[Camera]) -> dict[tuple[int, int], np.ndarray]:
    """(camera, placement) → (4,4) board→camera from PnP (SQPnP, then LM)."""
    out = {}
    for o in obs:
        cam = cameras[o.camera]
        obj = np.ascontiguousarray(o.obj, np.float64).reshape(-1, 1, 3)
        img = np.ascontiguousarray(o.img, np.float64).reshape(-1, 1, 2)
        ok, rvec, tvec = cv2.solvePnP(obj, img, cam.matrix, cam.distortions, flags=cv2.SOLVEPNP_SQPNP)
        if ok:
            rvec, tvec = cv2.solvePnPRefineLM(obj, img, cam.matrix, cam.distortions, rvec, tvec)
            out[(o.camera, o.placement)] = _T(rvec, tvec)
    return out


def pair_links(poses: dict[tuple[int, int], np.ndarray]) -> dict[tuple[int, int], tuple[np.ndarray, int]]:
    """(i, j) with i < j → ((4,4) camera i → camera j, shared placements), averaged over the placements
    both saw (scipy's rotation mean, median translation)."""
    by_placement: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    for (c, p), T in poses.items():
        by_placement[p][c] = T
    rel: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    for seen in by_placement.values():
        cams = sorted(seen)
        for a in range(len(cams)):
            for b in range(a + 1, len(cams)):
                i, j = cams[a], cams[b]
                rel[(i, j)].append(seen[j] @ np.linalg.inv(seen[i]))
    out = {}
    for key, Ts in rel.items():
        T = np.eye(4)
        T[:3, :3] = Rotation.from_matrix(np.stack([t[:3, :3] for t in Ts])).mean().as_matrix()
        T[:3, 3] = np.median(np.stack([t[:3, 3] for t in Ts]), axis=0)
        out[key] = (T, len(Ts))
    return out


def chain(links: dict, n_cameras: int, root: int, names: list[str], where=None) -> tuple[dict[int, np.ndarray], list]:
    """Camera → (4,4) root-camera → camera, through a maximum spanning tree of ``links`` (weight:
    shared placements). Raises naming the cameras no link reaches."""
    poses = {root: np.eye(4)}
    used = []
    edges = sorted(links.items(), key=lambda kv: -kv[1][1])
    grew = True
    while grew and len(poses) < n_cameras:
        grew = False
        for (i, j), (T, n) in edges:
            if (i in poses) == (j in poses):
                continue
            if i in poses:
                poses[j] = T @ poses[i]
            else:
                poses[i] = np.linalg.inv(T) @ poses[j]
            used.append((names[i], names[j], n))
            grew = True
            break
    missing = [names[c] for c in range(n_cameras) if c not in poses]
    if missing:
        raise OpenKinError(f"cameras {', '.join(missing)} never saw the board in a placement another camera saw "
                           "too, so they cannot be chained to the others", path=where,
                           fix="film the board where these cameras and at least one other camera both see it "
                               "(move it slowly through the overlap of their views)")
    return poses, used


def _pack(cams_T: dict[int, np.ndarray], board_T: dict[int, np.ndarray], free_cams: list[int],
          free_boards: list[int]) -> np.ndarray:
    parts = [np.concatenate(_rt(cams_T[c])) for c in free_cams] + [np.concatenate(_rt(board_T[p]))
                                                                    for p in free_boards]
    return np.concatenate(parts) if parts else np.zeros(0)


def bundle_adjust(obs: list[BoardObservation], cameras: list[Camera], cams_T: dict[int, np.ndarray],
                  board_T: dict[int, np.ndarray], reference: int) -> tuple[dict, dict, np.ndarray]:
    """Refine world→camera ``cams_T`` and board→world ``board_T`` (the reference placement fixed: the
    gauge). → (cams_T, board_T, residuals per corner px (M,))."""
    free_cams = sorted(cams_T)
    free_boards = sorted(p for p in board_T if p != reference)
    ci = {c: k for k, c in enumerate(free_cams)}
    bi = {p: len(free_cams) + k for k, p in enumerate(free_boards)}
    sizes = [len(o.obj) for o in obs]
    offsets = np.concatenate([[0], np.cumsum(sizes)])

    def unpack(x):
        c_T = {c: _T(x[6 * ci[c]:6 * ci[c] + 3], x[6 * ci[c] + 3:6 * ci[c] + 6]) for c in free_cams}
        b_T = {p: _T(x[6 * bi[p]:6 * bi[p] + 3], x[6 * bi[p] + 3:6 * bi[p] + 6]) for p in free_boards}
        b_T[reference] = board_T[reference]
        return c_T, b_T

    def residuals(x):
        c_T, b_T = unpack(x)
        out = np.empty((offsets[-1], 2))
        for k, o in enumerate(obs):
            T = c_T[o.camera] @ b_T[o.placement]            # board → camera
            rvec, tvec = _rt(T)
            cam = cameras[o.camera]
            proj = cv2.projectPoints(np.asarray(o.obj, np.float64).reshape(-1, 1, 3), rvec, tvec, cam.matrix,
                                     cam.distortions)[0].reshape(-1, 2)
            out[offsets[k]:offsets[k + 1]] = proj - o.img
        return out.ravel()

    sparsity = lil_matrix((2 * offsets[-1], 6 * (len(free_cams) + len(free_boards))), dtype=np.uint8)
    for k, o in enumerate(obs):
        rows = slice(2 * offsets[k], 2 * offsets[k + 1])
        sparsity[rows, 6 * ci[o.camera]:6 * ci[o.camera] + 6] = 1
        if o.placement in bi:
            sparsity[rows, 6 * bi[o.placement]:6 * bi[o.placement] + 6] = 1
    x0 = _pack(cams_T, board_T, free_cams, free_boards)
    sol = least_squares(residuals, x0, jac_sparsity=sparsity, loss="soft_l1", f_scale=ROBUST_SCALE_PX,
                        x_scale="jac", method="trf", max_nfev=200)
    c_T, b_T = unpack(sol.x)
    res = np.linalg.norm(sol.fun.reshape(-1, 2), axis=1)
    return c_T, b_T, res


def chain_board(obs: list[BoardObservation], cameras: list[Camera], reference: int | None = None,
                where=None) -> BoardChain:
    """Pose every camera of ``cameras`` (intrinsics used, poses ignored) from the board
    ``obs``ervations; the world is placement ``reference``'s board frame (default: the first
    placement any camera saw). ``where``: the folder named in errors."""
    names = [c.name for c in cameras]
    obs = [o for o in obs if len(o.obj) >= MIN_CORNERS]
    _check_seen(obs, names, where)
    poses = board_poses(obs, cameras)
    links = pair_links(poses)
    counts = defaultdict(int)
    for (i, j), (_, n) in links.items():
        counts[i] += n
        counts[j] += n
    root = max(range(len(cameras)), key=lambda c: (counts[c], -c))
    cam_from_root, used = chain(links, len(cameras), root, names, where)
    if reference is None:
        reference = min(p for (_, p) in poses)        # the first placement (in time) any camera saw
    seen_ref = sorted(c for (c, p) in poses if p == reference)
    if not seen_ref:
        raise OpenKinError(f"no camera saw the board in the reference placement {reference}",
                           fix=f"choose one of {sorted({p for (_, p) in poses})}")
    c = root if root in seen_ref else seen_ref[0]
    # world = the reference board frame: world → camera k = (root → k) (root → c)⁻¹ (board_ref → c)
    world_to_root = np.linalg.inv(cam_from_root[c]) @ poses[(c, reference)]
    cams_T = {k: cam_from_root[k] @ world_to_root for k in range(len(cameras))}
    board_T = {}
    for (c, p), T in sorted(poses.items()):
        board_T.setdefault(p, np.linalg.inv(cams_T[c]) @ T)   # board → world, from the first camera that saw it
    cams_T, board_T, res = bundle_adjust(obs, cameras, cams_T, board_T, reference)
    out = []
    for c, cam in enumerate(cameras):
        rvec, tvec = _rt(cams_T[c])
        out.append(Camera(cam.name, cam.size, cam.matrix, cam.distortions, rvec, tvec, cam.fisheye))
    return BoardChain(out, board_T, _record(obs, names, res, used, reference, root))


def _check_seen(obs: list[BoardObservation], names: list[str], where=None) -> None:
    seen = {o.camera for o in obs}
    missing = [n for c, n in enumerate(names) if c not in seen]
    if missing:
        raise OpenKinError(f"the board was never detected by {', '.join(missing)}", path=where,
                           fix="film the board where these cameras see it whole (checkerboard) or in part "
                               "(ChArUco), sharp and not too far; check the board settings")


def _record(obs, names, res, used, reference, root) -> dict:
    per_cam: dict[str, list] = defaultdict(list)
    k = 0
    for o in obs:
        per_cam[names[o.camera]].extend(res[k:k + len(o.obj)].tolist())
        k += len(o.obj)
    cams = {n: {"rms_px": float(np.sqrt(np.mean(np.square(v)))), "corners": len(v),
                "placements": sum(1 for o in obs if names[o.camera] == n)} for n, v in per_cam.items()}
    return {"chained": "board placements", "reference_placement": int(reference), "root_camera": names[root],
            "links": [{"cameras": [a, b], "shared_placements": n} for a, b, n in used], "cameras": cams}

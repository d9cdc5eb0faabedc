"""OpenKin's batch inverse kinematics: all frames of a trial solved at once with numpy.

The problem is OpenSim's InverseKinematicsTool's, frame by frame::

    min_q  sum_m w_m |x_m(q) - o_m|^2 / sum_m w_m  +  sum_t w_t (q_t - v_t)^2

over the free coordinates (locked ones held at their default, coupled ones
following their CoordinateCouplerConstraint, clamped ones kept in range), with
``x_m(q)`` the model's marker positions (:mod:`openkin.kinematics.model_tree`),
``o_m`` the observed ones (NaN: weight 0; the sums run over the observed markers
of the frame) and the coordinate tasks ``t`` of the IK setup. The marker term is
normalised by the frame's total marker weight as Simbody's ``Markers`` assembly
condition does (OpenSim's IK adds it with weight 1 and each coordinate task as a
``QValue`` goal with the task's weight), so the coordinate tasks pull exactly as
hard as in OpenSim.

Solver: Levenberg–Marquardt on every frame at once. Residuals and the analytic
Jacobian (marker velocity along each joint axis, chained through spline slopes
and couplers) are (F, 3M, n) arrays; each iteration solves the F small normal
equations in one ``np.linalg.solve`` over (F, n, n), with a damping factor per
frame (raised when a step does not lower that frame's cost) and steps projected
into the clamped coordinates' ranges. Frames that have converged drop out.

Start: OpenSim's tool warm-starts each frame from the previous one, which is
sequential. Here, coarse to fine: every 4th frame starts from the model's default
pose with the root joint's heading (its rotation nearest to vertical) tried at
four quarter turns and the root fitted alone, the best kept and solved; that
solution interpolated in time starts all frames. After each stage, neighbour
passes re-solve a frame that is far from, and fits worse than, a neighbour from
that neighbour's solution and keep it when the cost is clearly lower (another
basin, e.g. the shoulder's flipped solution), spreading a good basin along a
stretch; unbounded rotations are then unwrapped in time. Optional temporal
coupling (:func:`smooth_pass`) is off by default: with it the problem is no
longer OpenSim's.

6-DoF trackers (IMU, electromagnetic or VR sensors on body segments,
:mod:`openkin.kinematics.trackers`) add, per sensor ``s`` on body ``b`` with weight ``w_s``::

    + sum_s w_s |log(R_s^T R_b(q))|^2  [+ w_s |p_b(q) - p_s|^2 where a position is given]

(``log``: the rotation vector, radians; ``R_s``, ``p_s``: the sensor's target orientation and
position of the body in ground; NaN samples: weight 0), in the same Levenberg–Marquardt
solve as the markers, so that frames without markers are solved from the trackers alone.
The targets ride in the observation array as 4 extra rows per sensor after the markers
(R_s's three rows, then p_s), so every frame subset the solver takes carries them along;
without trackers the arrays and the arithmetic are exactly the markers-only ones.
Analytic Jacobian: a joint axis ``d`` (ground) turning by dθ rotates the body by
``exp(dθ [d]x)``, so ``dφ/dθ = J_l^{-1}(φ) R_s^T d`` (SO(3)'s inverse left Jacobian at φ).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from . import model_tree as mt

log = logging.getLogger(__name__)

MAX_ITER = 30
TOL_STEP = 1e-5       # rad or m: a frame has converged when its largest step is below this
NEIGHBOUR_PASSES = 40
TOL_GAIN = 1e-6       # ... or its cost fell by less than this fraction
ROOT_ITER = 4         # iterations fitting the root joint alone, per heading tried
STRIDE = 4            # coarse pass: every 4th frame ...
COARSE_ITER = 20      # ... solved roughly (it only starts the fine pass)
JUMP = 0.35           # rad or m: a frame this far from a neighbour is re-solved from it ...
NEIGHBOUR_ITER = 30   # iterations of a neighbour re-solve
SMOOTH_PASSES = 2
BASIN_GAIN = 0.01     # ... and takes that solution if its cost is lower by this fraction
REJECT_M = 0.06       # m: with trackers, a marker farther than this from the fused pose ...
REJECT_K = 4.0        # ... and than this many times the trial's median marker distance is left out ...
REJECT_PASSES = 2     # ... and the frames re-solved, this many times


@dataclass
class Problem:
    """A trial to solve. ``obs``: (F, M, 3) observed marker positions (NaN = missing) for the tree's
    markers ``markers`` (M,); ``w``: (M,) marker weights; ``task_coord``/``task_w``/``task_v``: (T,)."""

    tree: mt.Tree
    markers: np.ndarray
    obs: np.ndarray
    w: np.ndarray
    task_coord: np.ndarray
    task_w: np.ndarray
    task_v: np.ndarray
    smooth: float = 0.0       # weight of the pull toward the smoothed trajectory (0: frames independent)
    task_scale: object = None  # obs (F, M, 3) -> (F, T) per-frame multipliers of task_w (setup.elbow_observability)
    sigma: float = 0.0        # frames: Gaussian width of that smoothing
    trk_body: np.ndarray | None = None  # (S,) body index of each tracker (None: no trackers)
    trk_w: np.ndarray | None = None     # (S,) tracker weights (cost w |rotation vector, rad|^2 [+ w |dp, m|^2])

    def __post_init__(self):
        self.src = mt.source(self.tree)
        self.desc = mt.descendants(self.tree)[:, self.tree.marker_body[self.markers]]  # (J, M)
        free = self.tree.free
        lim = self.tree.clamped[free]
        self.lo = np.where(lim, self.tree.lower[free], -np.inf)
        self.hi = np.where(lim, self.tree.upper[free], np.inf)
        self.axis_markers = None  # per active axis: the markers it moves (set at the first Jacobian)
        self.n_trk = 0 if self.trk_body is None else len(self.trk_body)
        if self.n_trk:
            self.trk_desc = mt.descendants(self.tree)[:, self.trk_body]  # (J, S)


def pack_targets(obs: np.ndarray, R: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
    """The solver's observation array with tracker targets: markers ``obs`` (F, M, 3), target
    rotations ``R`` (F, S, 3, 3) (NaN: missing), positions ``p`` (F, S, 3) or None → (F, M + 4S, 3)."""
    F, S = R.shape[:2]
    p = np.full((F, S, 3), np.nan) if p is None else p
    return np.concatenate([obs, np.concatenate([R, p[:, :, None]], 2).reshape(F, 4 * S, 3)], 1)


def _so3_jl_inv(phi: np.ndarray) -> np.ndarray:
    """SO(3)'s inverse left Jacobian at rotation vectors ``phi`` (..., 3) → (..., 3, 3)."""
    th = np.linalg.norm(phi, axis=-1)[..., None, None]
    K = np.zeros(phi.shape + (3,))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -phi[..., 2], phi[..., 1], -phi[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = phi[..., 2], -phi[..., 1], phi[..., 0]
    small = th < 1e-6
    t = np.where(small, 1.0, np.minimum(th, np.pi - 1e-9))  # (1 + cos t) / sin t -> 0 at pi: no 0/0
    c = np.where(small, 1.0 / 12, 1.0 / t ** 2 - (1 + np.cos(t)) / (2 * t * np.sin(t)))
    return np.eye(3) - 0.5 * K + c * (K @ K)


def _tracker_terms(pb: Problem, pose, dq: np.ndarray, trk: np.ndarray, jac: bool, col: np.ndarray | None, n: int):
    """Tracker residuals (F, 6S) (orientation rows, then position rows) and, with ``jac``, their
    Jacobian (F, 6S, n). ``trk``: (F, 4S, 3) packed targets (:func:`pack_targets`)."""
    F, S = len(trk), pb.n_trk
    t = trk.reshape(F, S, 4, 3)
    Rt, pt = t[:, :, :3], t[:, :, 3]
    okR = np.isfinite(Rt).all((-1, -2))                                       # (F, S)
    okp = np.isfinite(pt).all(-1)
    Rt = np.where(okR[..., None, None], Rt, np.eye(3))
    Rb = pose.body_R[pb.trk_body].transpose(1, 0, 2, 3)                      # (F, S, 3, 3)
    pb_ = pose.body_p[pb.trk_body].transpose(1, 0, 2)                        # (F, S, 3)
    RtT = Rt.transpose(0, 1, 3, 2)
    phi = Rotation.from_matrix((RtT @ Rb).reshape(-1, 3, 3)).as_rotvec().reshape(F, S, 3)
    sw = np.sqrt(pb.trk_w)[None, :]
    wR, wp = sw * okR, sw * okp                                                # (F, S)
    dp = np.where(okp[..., None], pb_ - np.nan_to_num(pt), 0.0)
    r = np.concatenate([(wR[..., None] * phi).reshape(F, -1), (wp[..., None] * dp).reshape(F, -1)], 1)
    if not jac:
        return r, None
    A = wR[..., None, None] * (_so3_jl_inv(phi) @ RtT)                        # (F, S, 3, 3)
    Jo = np.zeros((F, S, 3, n))
    Jp = np.zeros((F, S, 3, n))
    coef = pose.axis_slope * dq[:, pose.axis_coord]
    for a, (rot, c) in enumerate(zip(pose.axis_rot, pose.axis_coord)):
        i = pb.src[c]
        i = col[i] if i >= 0 and col is not None else i
        ss = np.flatnonzero(pb.trk_desc[pose.axis_joint[a]])
        if i < 0 or not len(ss):
            continue
        w = pose.axis_dir[:, a] * coef[:, a, None]                               # (F, 3)
        jo, jp = Jo[..., i], Jp[..., i]                                          # (F, S, 3) views
        if rot:
            jo[:, ss] += np.einsum("fsij,fj->fsi", A[:, ss], w)
            jp[:, ss] += np.cross(w[:, None, :], pb_[:, ss] - pose.axis_origin[:, a, None, :])
        else:
            jp[:, ss] += w[:, None, :]
    Jp *= wp[..., None, None]
    return r, np.concatenate([Jo.reshape(F, 3 * S, n), Jp.reshape(F, 3 * S, n)], 1)


def residuals(pb: Problem, x: np.ndarray, obs: np.ndarray, jac: bool = True, cols: np.ndarray | None = None,
              ref: np.ndarray | None = None):
    """Weighted residuals r (F, 3M + T [+ n]) and Jacobian (F, 3M + T [+ n], n) at ``x`` (F, n); with ``cols``,
    the Jacobian's columns for those free variables only. ``ref`` (F, n): a temporally smoothed
    trajectory the free variables are pulled toward with weight ``pb.smooth`` (extra n rows)."""
    tree = pb.tree
    q, dq = mt.full_coordinates(tree, x)
    pose = mt.forward(tree, q, pb.markers)
    M = len(pb.markers)
    obs, trk = obs[:, :M], obs[:, M:]                   # markers, packed tracker targets (F, 4S, 3)
    ok = np.isfinite(obs).all(-1)                       # (F, M)
    wf = pb.w[None, :] * ok                              # (F, M)
    sw = np.sqrt(wf / np.maximum(wf.sum(1, keepdims=True), 1e-12))  # markers' weights sum to 1 (Simbody's)
    diff = np.where(ok[..., None], pose.markers - np.nan_to_num(obs), 0.0)
    r_m = (sw[..., None] * diff).reshape(len(x), -1)
    tw = pb.task_w if pb.task_scale is None else pb.task_w * pb.task_scale(obs)
    r_t = np.sqrt(tw) * (q[:, pb.task_coord] - pb.task_v)
    r = np.concatenate([r_m, r_t] + ([np.sqrt(pb.smooth) * (x - ref)] if ref is not None else []), 1)
    if not jac and not pb.n_trk:
        return r, None
    F = len(x)
    n = x.shape[1] if cols is None else len(cols)
    col = np.arange(n) if cols is None else np.full(x.shape[1], -1)
    if cols is not None:
        col[cols] = np.arange(n)
    if pb.n_trk:
        r_o, J_o = _tracker_terms(pb, pose, dq, trk, jac, col, n)
        r = np.concatenate([r, r_o], 1)
    if not jac:
        return r, None
    if pb.axis_markers is None:
        pb.axis_markers = [np.flatnonzero(pb.desc[j]) for j in pose.axis_joint]
    J = np.zeros((F, M, 3, n))
    X, dirs, orig = pose.markers, pose.axis_dir, pose.axis_origin
    coef = pose.axis_slope * dq[:, pose.axis_coord]                           # (F, A)
    for a, (rot, c) in enumerate(zip(pose.axis_rot, pose.axis_coord)):
        i, ms = pb.src[c], pb.axis_markers[a]
        i = col[i] if i >= 0 else -1
        if i < 0 or not len(ms):
            continue
        d = dirs[:, a, None, :] * coef[:, a, None, None]                       # (F, 1, 3)
        if rot:  # marker velocity d x (x - o)
            lv = X[:, ms] - orig[:, a, None, :]
            J[:, ms, 0, i] += d[..., 1] * lv[..., 2] - d[..., 2] * lv[..., 1]
            J[:, ms, 1, i] += d[..., 2] * lv[..., 0] - d[..., 0] * lv[..., 2]
            J[:, ms, 2, i] += d[..., 0] * lv[..., 1] - d[..., 1] * lv[..., 0]
        else:
            for k in range(3):
                J[:, ms, k, i] += d[..., k]
    J *= sw[:, :, None, None]
    J_t = np.zeros((F, len(pb.task_coord), n))
    tsrc = [col[s] if s >= 0 else -1 for s in pb.src[pb.task_coord]]
    for k, (c, s) in enumerate(zip(pb.task_coord, tsrc)):
        if s >= 0:
            J_t[:, k, s] = np.sqrt(tw[..., k]) * dq[:, c]
    blocks = [J.reshape(F, 3 * M, n), J_t]
    if ref is not None:
        eye = np.eye(x.shape[1])[:, np.arange(x.shape[1]) if cols is None else cols]
        blocks.append(np.broadcast_to(np.sqrt(pb.smooth) * eye, (F,) + eye.shape))
    if pb.n_trk:
        blocks.append(J_o)
    return r, np.concatenate(blocks, 1)


def levenberg_marquardt(pb: Problem, x: np.ndarray, obs: np.ndarray, cols: np.ndarray | None = None,
                        max_iter: int = MAX_ITER, ref: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimise every frame's cost from ``x`` (F, n), over the free variables ``cols`` (default all).
    Returns (x, cost (F,))."""
    x = np.clip(x.copy(), pb.lo, pb.hi)
    n = x.shape[1]
    cols = np.arange(n) if cols is None else np.asarray(cols)
    r, _ = residuals(pb, x, obs, jac=False, ref=ref)
    cost = np.einsum("fi,fi->f", r, r)
    lam = np.full(len(x), 1e-3)
    active = np.arange(len(x))
    it, trace = 0, []
    for it in range(max_iter):
        if not len(active):
            break
        xa, oa = x[active], obs[active]
        ra = None if ref is None else ref[active]
        r, J = residuals(pb, xa, oa, cols=None if len(cols) == n else cols, ref=ra)
        H = J.transpose(0, 2, 1) @ J
        g = np.einsum("fin,fi->fn", J, r)
        # projected steps: a variable at a bound that the gradient pushes outward stays there
        xc = xa[:, cols]
        stuck = ((xc <= pb.lo[cols]) & (g > 0)) | ((xc >= pb.hi[cols]) & (g < 0))
        if stuck.any():
            keep = (~stuck).astype(float)
            H = H * keep[:, :, None] * keep[:, None, :] + np.eye(len(cols)) * stuck[:, None, :]
            g = g * keep
        diag = np.einsum("fii->fi", H)
        A = H + lam[active, None, None] * (np.eye(len(cols)) * (diag[:, None, :] + 1e-9))
        step = -np.linalg.solve(A, g[..., None])[..., 0]
        trial = xa.copy()
        trial[:, cols] = np.clip(xa[:, cols] + step, pb.lo[cols], pb.hi[cols])
        rt, _ = residuals(pb, trial, oa, jac=False, ref=ra)
        ct = np.einsum("fi,fi->f", rt, rt)
        better = ct <= cost[active]
        moved = np.abs(trial - xa).max(1)
        x[active[better]] = trial[better]
        gain = cost[active] - ct
        cost[active[better]] = ct[better]
        lam[active] = np.where(better, np.maximum(lam[active] / 3, 1e-9), np.minimum(lam[active] * 4, 1e9))
        small = (moved < TOL_STEP) | (gain <= TOL_GAIN * ct + 1e-16)
        done = (better & small) | (~better & (lam[active] >= 1e4))
        active = active[~done]
        trace.append(len(active))
    log.debug("LM active frames per iteration: %s", trace)
    log.debug("LM: %d frames, %d iterations, %d not converged", len(x), it + 1, len(active))
    return x, cost


def _heading(tree: mt.Tree) -> tuple[int, np.ndarray]:
    """(free-variable index of the root joint's rotation nearest to vertical (ground y), root joint's
    free-variable indices)."""
    root = next(j for j in tree.joints if j.parent < 0)
    src = mt.source(tree)
    idx = [src[a.coord] for a in root.axes if a.coord >= 0 and src[a.coord] >= 0]
    q, _ = mt.full_coordinates(tree, tree.default[tree.free][None])
    pose = mt.forward(tree, q, np.zeros(0, int))
    best, score = -1, -1.0
    for k in range(len(pose.axis_rot)):
        if pose.axis_joint[k] == 0 and pose.axis_rot[k] and src[pose.axis_coord[k]] >= 0:
            s = abs(pose.axis_dir[0, k, 1])
            if s > score:
                best, score = src[pose.axis_coord[k]], s
    return best, np.array(idx, int)


def initial_guess(pb: Problem, obs: np.ndarray) -> np.ndarray:
    """(F, n): the default pose with the root joint fitted from four headings, the best kept."""
    tree, F = pb.tree, len(obs)
    x0 = np.broadcast_to(tree.default[tree.free], (F, len(tree.free))).copy()
    head, root = _heading(tree)
    if head < 0:
        return levenberg_marquardt(pb, x0, obs, root, ROOT_ITER)[0]
    xs = np.concatenate([x0] * 4)
    xs[:, head] += np.repeat(np.array([0, 0.5, 1, -0.5]) * np.pi, F)
    xs, cost = levenberg_marquardt(pb, xs, np.concatenate([obs] * 4), root, ROOT_ITER)
    best = np.argmin(cost.reshape(4, F), 0)
    return xs.reshape(4, F, -1)[best, np.arange(F)]


def neighbour_passes(pb: Problem, x: np.ndarray, cost: np.ndarray, obs: np.ndarray) -> None:
    """Re-solve frames far from a neighbour starting from that neighbour; keep the solution if its cost
    is clearly lower (another basin). The first pass tries every such frame, later ones only the
    neighbours of frames that just changed, so a good basin spreads along a stretch (in place).
    Both neighbours' starts are solved in one batch (one LM call per pass: the per-iteration
    overhead of a small batch is what costs here), the better kept."""
    F = len(x)
    changed = np.ones(F, bool)
    for _ in range(NEIGHBOUR_PASSES):
        frames, starts = [], []
        for shift in (1, -1):
            cand = np.roll(x, shift, 0)
            fr = np.arange(F)[(slice(1, None) if shift == 1 else slice(None, -1))]
            fr = fr[changed[fr - shift] & (cost[fr] > cost[fr - shift]) & (np.abs(cand[fr] - x[fr]).max(1) > JUMP)]
            frames.append(fr)
            starts.append(cand[fr])
        fr = np.concatenate(frames)
        if not len(fr):
            break
        xc, cc = levenberg_marquardt(pb, np.concatenate(starts), obs[fr], max_iter=NEIGHBOUR_ITER)
        order = np.lexsort((cc, fr))                       # by frame, then cost: the best start first
        best = order[np.r_[True, fr[order][1:] != fr[order][:-1]]]
        fr, xc, cc = fr[best], xc[best], cc[best]
        better = cc < (1 - BASIN_GAIN) * cost[fr]
        x[fr[better]], cost[fr[better]] = xc[better], cc[better]
        now = np.zeros(F, bool)
        now[fr[better]] = True
        log.debug("neighbour pass: %d frames improved", int(now.sum()))
        if not now.any():
            break
        changed = now


def solve_problem(pb: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Solve all frames; returns x (F, n) and cost (F,). Coarse to fine: every ``STRIDE``-th frame
    from the default pose first, then all frames from the coarse solution interpolated in time."""
    obs, F = pb.obs, len(pb.obs)
    coarse = np.unique(np.r_[np.arange(0, F, STRIDE), F - 1])
    xc, cc = levenberg_marquardt(pb, initial_guess(pb, obs[coarse]), obs[coarse], max_iter=COARSE_ITER)
    neighbour_passes(pb, xc, cc, obs[coarse])
    if len(coarse) == F:
        return unwrap(pb, xc), cc
    x0 = np.stack([np.interp(np.arange(F), coarse, xc[:, k]) for k in range(xc.shape[1])], 1)
    x, cost = levenberg_marquardt(pb, x0, obs)
    neighbour_passes(pb, x, cost, obs)
    x = unwrap(pb, x)
    if pb.n_trk:
        x, cost = reject_pass(pb, x, obs)
    if pb.smooth > 0:
        x, cost = smooth_pass(pb, x, obs)
    return x, cost


def reject_pass(pb: Problem, x: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """With trackers only: markers far from the fused solution (farther than ``REJECT_M`` and
    ``REJECT_K`` times the trial's median marker distance: left/right swaps, outliers, markers
    frozen over a gap) are left out and the frames re-solved, ``REJECT_PASSES`` times. The trackers
    hold the pose while a marker is out, which markers alone could not."""
    M = len(pb.markers)
    cost = None
    for _ in range(REJECT_PASSES):
        q, _ = mt.full_coordinates(pb.tree, x)
        d = np.linalg.norm(mt.forward(pb.tree, q, pb.markers).markers - obs[:, :M], axis=-1)   # (F, M), NaN = none
        if np.isnan(d).all():
            break
        with np.errstate(invalid="ignore"):
            bad = d > max(REJECT_M, REJECT_K * float(np.nanmedian(d)))
        if not bad.any():
            break
        log.debug("tracker fusion: %d marker samples left out (%d frames)", int(bad.sum()), int(bad.any(1).sum()))
        obs = obs.copy()
        obs[:, :M][bad] = np.nan
        x, cost = levenberg_marquardt(pb, x, obs)
    if cost is None:
        cost = np.einsum("fi,fi->f", *(2 * [residuals(pb, x, obs, jac=False)[0]]))
    return x, cost


def smooth_pass(pb: Problem, x: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Temporal coupling: each frame re-solved with its free variables pulled (weight ``pb.smooth``)
    toward a Gaussian-smoothed copy of the trajectory, twice. Frames stay independent systems,
    so the solve stays batched; coordinates the markers pin down barely move, the ones they
    barely see follow their neighbours instead of the noise."""
    from scipy.ndimage import gaussian_filter1d

    cost = None
    for _ in range(SMOOTH_PASSES):
        ref = gaussian_filter1d(x, pb.sigma, axis=0, mode="nearest")
        x, cost = levenberg_marquardt(pb, x, obs, ref=ref)
    return x, cost


def unwrap(pb: Problem, x: np.ndarray) -> np.ndarray:
    """Unbounded rotations (the root's heading, tried at quarter turns) made continuous in time and
    brought within half a turn of the model's default at the first frame, as OpenSim's tracking gives."""
    rot = pb.tree.rotational[pb.tree.free] & ~np.isfinite(pb.hi) & ~np.isfinite(pb.lo)
    default = pb.tree.default[pb.tree.free]
    for k in np.flatnonzero(rot):
        v = np.unwrap(x[:, k])
        x[:, k] = v - 2 * np.pi * np.round((v[0] - default[k]) / (2 * np.pi))
    return x


def marker_errors(pb: Problem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame RMS and largest distance (F,) between model and observed markers (observed ones only)."""
    q, _ = mt.full_coordinates(pb.tree, x)
    d = np.linalg.norm(mt.forward(pb.tree, q, pb.markers).markers - pb.obs[:, :len(pb.markers)], axis=-1)
    if not d.shape[1] or np.isnan(d).all(1).any():  # frames without markers (trackers only): NaN
        out = np.full((len(d), 2), np.nan)
        seen = ~np.isnan(d).all(1) if d.shape[1] else np.zeros(len(d), bool)
        out[seen, 0] = np.sqrt(np.nanmean(d[seen] ** 2, 1))
        out[seen, 1] = np.nanmax(d[seen], 1)
        return out[:, 0], out[:, 1]
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.nanmean(d ** 2, 1)), np.nanmax(d, 1)

"""Refinement: camera extrinsics refined from the person's own keypoints (bundle adjustment).

A calibration that is slightly off (a camera nudged after the checkerboard, a registration
error) leaves a constant offset between where a camera sees a keypoint and where the other
cameras put it. This stage fits every camera's pose (rotation, position) and the 3D keypoints
of a well-spread subset of frames together, minimising the robust (soft-L1) reprojection
error with :func:`scipy.optimize.least_squares` (trust-region, sparse Jacobian). Intrinsics
stay fixed; the 2D points are undistorted first, so the fit is pinhole.

Gauge: reprojections do not see a common rotation, shift or scale of the whole rig. A Gaussian
prior pulls each camera toward its calibrated pose (``prior_translation_mm``,
``prior_rotation_deg``), which fixes that freedom during the solve and, for a far camera whose
small turn the keypoints barely tell from a sideways move, picks the smaller change; the result
is then brought back onto the calibration by the similarity that fits it best
(:func:`align_rig`), so the world frame and scale stay the calibration's and "moved" is each
camera's own change. Measured by ``tests/bench/bench_refinement.py`` on 300-frame ground-truth
scenes whose calibration is off by 1 cm / 0.5 deg per camera: mild noise (also desynchronised),
cameras back to 0.7 mm / 0.01 deg of the truth (up to that similarity; 9.3 mm / 0.41 deg
before), MPJPE 15.6 -> 10.8 mm (PA-MPJPE 4.1 -> 3.1); realistic detector errors, 7.2 mm /
0.15 deg, MPJPE 35 -> 26 mm. On Pose2Sim's real demo (offline BlazePose) triangulation's
reprojection error goes 13.5 -> 8.8 px.

Time: the integer-shifted ``pose-sync/`` files, with synchronisation's sub-frame leftovers
interpolated as triangulation does.

Guards: the refinement is kept only if the mean reprojection error of all frames (DLT
triangulation, every camera, same observations before and after) goes down, and no camera
moved more than ``max_translation_mm`` / ``max_rotation_deg``; otherwise the calibration is
left as it was and ``openkin/refinement.toml`` says why.

Files: reads the calibration stage's output as the run manifest records it (else the newest
``calibration/Calib*.toml`` that is not ``Calib_refined.toml``) and writes
``calibration/Calib_refined.toml`` when the refinement is kept. Which calibration the later
stages use is what the refinement's record says (``summary.calibration_used``, also set in the
run context): the refined file, or the source when the stage is disabled, skipped or refused.
A refined file of an earlier run that this run did not write is moved into ``openkin/stale/``
like any other output that is no longer current (:mod:`openkin.manifest`).

People: this run's association (run context), else the association's recorded folders
(every associated person, each a separate set of 3D points), else the current ``pose-sync/``
or ``pose/`` when they hold one person per camera; with several unassociated detections per
camera the stage skips (run association first), since slot 0 need not be the same person in
every camera.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import csr_matrix

from .context import RunContext, run_alone
from .errors import OpenKinError
from .fileio import atomic_write, toml_dumps
from .formats.calibration import Camera, read_calibration, write_calibration
from .geometry import reprojection_errors, rotation_matrix, rotation_vector, triangulate_dlt, undistort_camera_points
from .inputs import match_cameras, read_views, shift_subframe, subframe_residuals
from .manifest import relpath
from .progress import Progress, report, scaled
from .project import find_calibration

log = logging.getLogger(__name__)

REFINED_NAME = "Calib_refined.toml"
REPORT_NAME = "refinement.toml"


@dataclass(frozen=True)
class RefineParams:
    """Settings of :func:`refine_extrinsics` (``[refinement]`` keys of the same names)."""

    likelihood_threshold: float = 0.5
    max_frames: int = 200
    loss_scale_px: float = 4.0
    outlier_threshold_px: float = 40.0
    prior_translation_mm: float = 5.0
    prior_rotation_deg: float = 0.1
    max_translation_mm: float = 100.0
    max_rotation_deg: float = 5.0
    max_iterations: int = 100


@dataclass
class RefineInfo:
    """What :func:`refine_extrinsics` did. Per-camera arrays are ``(C,)``."""

    accepted: bool
    reason: str
    moved_mm: np.ndarray
    turned_deg: np.ndarray
    error_before_px: np.ndarray
    error_after_px: np.ndarray
    mean_before_px: float
    mean_after_px: float
    frames_used: int
    points_used: int
    observations: np.ndarray  # (C,) observations of each camera in the fit
    seconds: float = 0.0
    cost: dict = field(default_factory=dict)


# ---------------------------------------------------------------- observations
def _undistorted(cameras: list[Camera], points2d: np.ndarray) -> np.ndarray:
    """``points2d (C,F,K,3)`` → ``(C,F,K,2)`` undistorted px (keeps each camera's K)."""
    out = np.empty(points2d.shape[:-1] + (2,))
    for c, cam in enumerate(cameras):
        out[c] = undistort_camera_points(cam, points2d[c, ..., :2].reshape(-1, 2)).reshape(points2d.shape[1:-1] + (2,))
    return out


def _confident(points2d: np.ndarray, threshold: float) -> np.ndarray:
    """``(C,F,K,3)`` → ``(C,F,K)`` finite and at least ``threshold`` confident."""
    conf = points2d[..., 2]
    return np.isfinite(points2d[..., 0]) & np.isfinite(points2d[..., 1]) & np.isfinite(conf) & (conf >= threshold)


def pick_frames(seen: np.ndarray, max_frames: int) -> np.ndarray:
    """Indices of up to ``max_frames`` frames spread evenly over those with points.

    ``seen (C,F,K)`` → ``(n,)`` frame indices whose (frame, keypoint) points are seen by >= 2 cameras.
    """
    useful = (seen.sum(0) >= 2).sum(1)                      # (F,) points seen twice
    frames = np.flatnonzero(useful >= max(3, int(0.25 * useful.max(initial=0))))
    if len(frames) > max_frames:
        frames = frames[np.round(np.linspace(0, len(frames) - 1, max_frames)).astype(int)]
    return frames


# ---------------------------------------------------------------- model
def _poses(x_cam: np.ndarray, R0: np.ndarray, c0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera parameters ``(C,6)`` [rotation delta (rad), centre delta (m)] → ``R (C,3,3)``, centres ``(C,3)``."""
    R = np.stack([rotation_matrix(w) @ r for w, r in zip(x_cam[:, :3], R0)])
    return R, c0 + x_cam[:, 3:]


def _project(K: np.ndarray, R: np.ndarray, centre: np.ndarray, X: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Pinhole projection of observation rows: ``X (M,3)`` seen by cameras ``cam (M,)`` → ``(M,2)`` px."""
    Xc = np.einsum("mij,mj->mi", R[cam], X - centre[cam])
    z = np.where(np.abs(Xc[:, 2]) > 1e-9, Xc[:, 2], 1e-9)
    xy1 = np.stack([Xc[:, 0] / z, Xc[:, 1] / z, np.ones(len(z))], axis=1)
    return np.einsum("mij,mj->mi", K[cam][:, :2], xy1)


@dataclass
class _Problem:
    """Bundle adjustment data: ``uv (M,2)`` px, ``cam (M,)``, ``point (M,)``, ``sw (M,)`` sqrt weights."""

    K: np.ndarray
    R0: np.ndarray
    c0: np.ndarray
    uv: np.ndarray
    cam: np.ndarray
    point: np.ndarray
    sw: np.ndarray
    n_points: int
    sigma_px: float
    sigma_t: float
    sigma_r: float

    def residuals(self, x: np.ndarray) -> np.ndarray:
        C = len(self.R0)
        x_cam = x[:6 * C].reshape(C, 6)
        X = x[6 * C:].reshape(self.n_points, 3)
        R, centre = _poses(x_cam, self.R0, self.c0)
        r = (_project(self.K, R, centre, X[self.point], self.cam) - self.uv) * (self.sw / self.sigma_px)[:, None]
        prior = np.concatenate([x_cam[:, :3].ravel() / self.sigma_r, x_cam[:, 3:].ravel() / self.sigma_t])
        return np.concatenate([r.ravel(), prior])

    def sparsity(self) -> csr_matrix:
        """Jacobian sparsity: an observation's two rows touch its camera's 6 and its point's 3 columns;
        each prior row touches its own parameter (rotations of every camera, then centres)."""
        C, M = len(self.R0), len(self.uv)
        cols_obs = np.concatenate([6 * self.cam[:, None] + np.arange(6),
                                   6 * C + 3 * self.point[:, None] + np.arange(3)], axis=1)   # (M,9)
        rows = np.concatenate([np.repeat(2 * np.arange(M), 9), np.repeat(2 * np.arange(M) + 1, 9),
                               2 * M + np.arange(6 * C)])
        prior_cols = np.concatenate([(6 * np.arange(C)[:, None] + np.arange(3)).ravel(),
                                     (6 * np.arange(C)[:, None] + 3 + np.arange(3)).ravel()])
        cols = np.concatenate([cols_obs.ravel(), cols_obs.ravel(), prior_cols])
        return csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)),
                          shape=(2 * M + 6 * C, 6 * C + 3 * self.n_points))


def _single_blas_thread():
    """One BLAS thread during the solve: LSMR's many short dot products (vectors of ~10^4) ran
    4x slower with OpenBLAS's threads than with one (16 s vs 3.9 s on the demo, 2 busy cores).
    ``threadpoolctl`` is optional: without it, BLAS keeps its threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# ---------------------------------------------------------------- evaluation
def _P(cameras: list[Camera]) -> np.ndarray:
    """``(C,3,4)`` pinhole ``K [R | t]``."""
    return np.stack([c.matrix @ np.concatenate([c.R, c.translation[:, None]], axis=1) for c in cameras])


def _triangulate(cameras: list[Camera], uv: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted DLT of undistorted ``uv (C,N,2)``, ``weights (C,N)`` → ``X (N,3)``, errors ``(C,N)`` px."""
    P = _P(cameras)
    X = triangulate_dlt(uv, weights, P)
    return X, reprojection_errors(P, X, uv)


def camera_errors(err: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean of ``err (C,N)`` over ``mask (C,N)`` per camera ``(C,)`` and overall (NaN where empty)."""
    e = np.where(mask & np.isfinite(err), err, 0.0)
    m = mask & np.isfinite(err)
    n = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = e.sum(1) / n
    return per, float(e.sum() / m.sum()) if m.any() else float("nan")


def pose_change(before: list[Camera], after: list[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """How far each camera moved ``(C,)`` mm and turned ``(C,)`` degrees."""
    moved = np.array([np.linalg.norm(a.center - b.center) * 1000 for a, b in zip(after, before)])
    turned = np.array([np.degrees(np.linalg.norm(rotation_vector(a.R @ b.R.T))) for a, b in zip(after, before)])
    return moved, turned


# ---------------------------------------------------------------- kernel
def _check_input(cameras: list[Camera], points2d: np.ndarray) -> None:
    if len(cameras) < 2:
        raise OpenKinError(f"refinement needs at least two cameras (got {len(cameras)})",
                           fix="add cameras, or disable [refinement]")
    if points2d.ndim != 4 or points2d.shape[-1] != 3 or points2d.shape[0] != len(cameras):
        raise OpenKinError(f"2D points must be (C={len(cameras)}, F, K, 3), got {points2d.shape}",
                           fix="pass one (F, K, 3) array of [x, y, confidence] per camera")


def _build(cameras, uv, ok, conf, params: RefineParams) -> tuple[_Problem, np.ndarray, np.ndarray]:
    """The bundle adjustment of the confident observations ``ok (C,N)`` of undistorted ``uv (C,N,2)``:
    problem, start vector, and the points ``(N,)`` it uses."""
    w = np.where(ok, conf, 0.0)
    X, err = _triangulate(cameras, uv, w)
    keep = ok & (err < params.outlier_threshold_px)
    pts = np.flatnonzero((keep.sum(0) >= 2) & np.all(np.isfinite(X), axis=1))
    keep = keep[:, pts]
    cam, local = np.nonzero(keep)
    prob = _Problem(K=np.stack([c.matrix for c in cameras]), R0=np.stack([c.R for c in cameras]),
                    c0=np.stack([c.center for c in cameras]), uv=uv[cam, pts[local]], cam=cam, point=local,
                    sw=np.sqrt(np.clip(conf[cam, pts[local]], 0.0, 1.0)), n_points=len(pts),
                    sigma_px=params.loss_scale_px, sigma_t=params.prior_translation_mm / 1000.0,
                    sigma_r=np.radians(params.prior_rotation_deg))
    x0 = np.concatenate([np.zeros(6 * len(cameras)), X[pts].ravel()])
    return prob, x0, pts


def _cameras_from(x: np.ndarray, prob: _Problem, cameras: list[Camera]) -> list[Camera]:
    """Refined copies of ``cameras`` from the solution ``x``."""
    R, centre = _poses(x[:6 * len(cameras)].reshape(-1, 6), prob.R0, prob.c0)
    return [Camera(name=c.name, size=c.size.copy(), matrix=c.matrix.copy(), distortions=c.distortions.copy(),
                   rotation=rotation_vector(r), translation=-r @ o, fisheye=c.fisheye)
            for c, r, o in zip(cameras, R, centre)]


def align_rig(moved: list[Camera], reference: list[Camera]) -> list[Camera]:
    """``moved`` under the similarity (scale, rotation, shift of the world) that brings its camera
    poses closest to ``reference``: scale from the spread of the centres, rotation by Kabsch on
    the centred centres and the cameras' optical and x axes, shift from the mean centre.

    Reprojections cannot see such a transform of the whole rig (and the points with it): removing
    it keeps the calibration's world frame and scale, and leaves only the real change of each camera.
    """
    ca = np.stack([c.center for c in moved])
    cb = np.stack([c.center for c in reference])
    ma, mb = ca.mean(0), cb.mean(0)
    spread_a, spread_b = np.sqrt(((ca - ma) ** 2).sum(1).mean()), np.sqrt(((cb - mb) ** 2).sum(1).mean())
    scale = spread_b / spread_a if spread_a > 1e-9 else 1.0
    axes_a = np.concatenate([np.stack([c.R[2], c.R[0]]) for c in moved]) * max(spread_b, 1.0)
    axes_b = np.concatenate([np.stack([c.R[2], c.R[0]]) for c in reference]) * max(spread_b, 1.0)
    A = np.concatenate([scale * (ca - ma), axes_a])
    B = np.concatenate([cb - mb, axes_b])
    U, _, Vt = np.linalg.svd(B.T @ A)
    Q = U @ np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))]) @ Vt
    shift = mb - scale * Q @ ma
    out = []
    for c in moved:
        R = c.R @ Q.T
        centre = scale * Q @ c.center + shift
        out.append(Camera(name=c.name, size=c.size.copy(), matrix=c.matrix.copy(), distortions=c.distortions.copy(),
                          rotation=rotation_vector(R), translation=-R @ centre, fisheye=c.fisheye))
    return out


def refine_extrinsics(cameras: list[Camera], points2d: np.ndarray, params: RefineParams | None = None,
                      progress: Progress | None = None) -> tuple[list[Camera], RefineInfo]:
    """Bundle-adjust camera extrinsics on keypoints. ``points2d (C,F,K,3)`` [x, y, conf], NaN absent.

    Returns the refined cameras (or the given ones when the refinement is refused: see
    ``info.accepted`` and ``info.reason``) and a :class:`RefineInfo`.
    """
    params = params or RefineParams()
    points2d = np.asarray(points2d, dtype=float)
    _check_input(cameras, points2d)
    t0 = time.perf_counter()
    C = len(cameras)
    ok_all = _confident(points2d, params.likelihood_threshold)
    frames = pick_frames(ok_all, params.max_frames)
    if len(frames) == 0:
        raise OpenKinError("no frame has keypoints seen confidently by two cameras: nothing to refine on",
                           fix="check the pose stage output, or lower [refinement] likelihood_threshold")
    uv_all = _undistorted(cameras, points2d)
    report(progress, 0.1, f"refinement: bundle adjustment on {len(frames)} frames")
    sub = slice(None), frames
    prob, x0, pts = _build(cameras, uv_all[sub].reshape(C, -1, 2), ok_all[sub].reshape(C, -1),
                           points2d[sub][..., 2].reshape(C, -1), params)
    if prob.n_points < 6:
        raise OpenKinError(f"only {prob.n_points} keypoints seen by two cameras within "
                           f"{params.outlier_threshold_px:g} px: too few to refine the cameras",
                           fix="check the calibration and the pose stage output, or disable [refinement]")
    with _single_blas_thread():
        sol = least_squares(prob.residuals, x0, jac_sparsity=prob.sparsity(), method="trf", loss="soft_l1",
                            f_scale=1.0, x_scale="jac", max_nfev=params.max_iterations, xtol=1e-8, ftol=1e-6)
    refined = align_rig(_cameras_from(sol.x, prob, cameras), cameras)
    report(progress, 0.9, "refinement: evaluating")
    info = _judge(cameras, refined, uv_all.reshape(C, -1, 2), ok_all.reshape(C, -1),
                  points2d[..., 2].reshape(C, -1), params)
    info.frames_used, info.points_used = len(frames), prob.n_points
    info.observations = np.bincount(prob.cam, minlength=C)
    info.seconds = time.perf_counter() - t0
    info.cost = {"initial": float(0.5 * np.sum(prob.residuals(x0) ** 2)), "final": float(sol.cost),
                 "evaluations": int(sol.nfev), "status": int(sol.status)}
    log.info("refinement: %s in %.2f s (%d frames, %d points, %d evaluations): reprojection %.2f -> %.2f px",
             "kept" if info.accepted else "refused", info.seconds, info.frames_used, info.points_used,
             sol.nfev, info.mean_before_px, info.mean_after_px)
    return (refined if info.accepted else list(cameras)), info


def _judge(before: list[Camera], after: list[Camera], uv: np.ndarray, ok: np.ndarray, conf: np.ndarray,
           params: RefineParams) -> RefineInfo:
    """Compare reprojection errors on all frames (``uv (C,N,2)``) and the pose changes; accept or refuse."""
    w = np.where(ok, conf, 0.0)
    _, err_b = _triangulate(before, uv, w)
    _, err_a = _triangulate(after, uv, w)
    mask = ok & (err_b < params.outlier_threshold_px)  # the same observations before and after
    per_b, mean_b = camera_errors(err_b, mask)
    per_a, mean_a = camera_errors(err_a, mask)
    moved, turned = pose_change(before, after)
    reasons = []
    if not mean_a < mean_b:
        reasons.append(f"the mean reprojection error would not drop ({mean_b:.2f} -> {mean_a:.2f} px)")
    far = [f"{c.name} {m:.0f} mm" for c, m in zip(before, moved) if m > params.max_translation_mm]
    turn = [f"{c.name} {t:.2f} deg" for c, t in zip(before, turned) if t > params.max_rotation_deg]
    if far:
        reasons.append(f"cameras would move more than {params.max_translation_mm:g} mm: {', '.join(far)}")
    if turn:
        reasons.append(f"cameras would turn more than {params.max_rotation_deg:g} deg: {', '.join(turn)}")
    return RefineInfo(accepted=not reasons, reason="; ".join(reasons) or "lower reprojection error",
                      moved_mm=moved, turned_deg=turned, error_before_px=per_b, error_after_px=per_a,
                      mean_before_px=mean_b, mean_after_px=mean_a, frames_used=0, points_used=0,
                      observations=np.zeros(len(before), dtype=int))


# ---------------------------------------------------------------- stage
def params_from_config(config) -> RefineParams:
    """:class:`RefineParams` from ``[refinement]``."""
    r = config.refinement
    return RefineParams(**{f: getattr(r, f) for f in RefineParams.__dataclass_fields__})


def source_calibration(calib_dir: Path) -> Path:
    """The calibration to refine: the newest ``Calib*.toml`` other than ``Calib_refined.toml``
    (else the only other ``*.toml``, as :func:`openkin.project.find_calibration`)."""
    try:
        return find_calibration(calib_dir, exclude=(REFINED_NAME,))
    except OpenKinError:
        if not calib_dir.is_dir():
            raise  # its clear error
    raise OpenKinError("no calibration to refine (only Calib_refined.toml, or several unnamed TOMLs)",
                       path=calib_dir, fix="run `openkin calibration`, or keep the source calibration "
                                           "as Calib_<something>.toml next to Calib_refined.toml")


def load_points(ctx: RunContext, calib: Path, progress: Progress | None = None):
    """``(cameras, points2d (C, F*P, K, 3), source name)`` from the association of this run, the
    association's recorded folders, or a one-person ``pose-sync/`` / ``pose/``; None when ambiguous.
    Synchronisation's sub-frame leftovers are interpolated as triangulation does."""
    config = ctx.config
    if ctx.association is not None:
        views, source, producer = ctx.association.views, "pose-associated", "association"
        people = [ctx.association.person_keypoints(t) for t in range(ctx.association.choice.shape[0])]
        cameras = match_cameras(views.folders, read_calibration(calib, units=config.calibration.units), calib)
    else:
        found = ctx.pose_source(("association",)) or ctx.pose_source()
        if found is None:
            raise OpenKinError("the 2D poses of this project are not current (their stage failed or must run again)",
                               path=ctx.paths.pose, fix="run the pose, synchronization and association stages first")
        src, producer = found
        views, source = read_views(src, calib, config.project.frame_range, progress,
                                   units=config.calibration.units), src.name
        if producer != "association" and views.keypoints.shape[2] > 1:
            log.warning("refinement skipped: %s has up to %d people per camera and no association "
                        "(run the association stage first)", src, views.keypoints.shape[2])
            return None
        people = [views.keypoints[:, :, p] for p in range(views.keypoints.shape[2])]
        cameras = views.cameras
    for folder in views.folders:
        ctx.read(folder, producer)
    residual = subframe_residuals(ctx.sync_offsets(producer), views)
    if residual is not None:
        people = [shift_subframe(kp, residual) for kp in people]
    return cameras, np.concatenate(people, axis=1), source


def refined_path(paths) -> Path:
    """Where a trial's refined calibration is written: beside its calibration when the trial
    owns that folder; in the trial's ``openkin/`` folder when the calibration is a session's,
    shared by its trials (one trial's refinement must never become another trial's calibration)."""
    calib_dir = Path(paths.calibration).resolve()
    if calib_dir.is_relative_to(Path(paths.root).resolve()):
        return calib_dir / REFINED_NAME
    return Path(paths.reports) / REFINED_NAME


def _source(ctx: RunContext) -> Path:
    """The calibration to refine: the calibration stage's recorded output, else :func:`source_calibration`."""
    recorded = ctx.stage_files("calibration", "calibration")
    return recorded[0] if recorded else source_calibration(Path(ctx.paths.calibration))


def run(ctx: RunContext) -> None:
    """Refine the extrinsics of the source calibration into ``calibration/Calib_refined.toml``."""
    config, paths, progress = ctx.config, ctx.paths, ctx.progress
    cfg = config.refinement
    src = _source(ctx)
    ctx.read(src, "calibration")
    _use(ctx, src)
    if not cfg.refine_extrinsics:
        log.info("refinement disabled ([refinement] refine_extrinsics = false): %s used as it is", src.name)
        ctx.summary.update(accepted=False, reason="disabled ([refinement] refine_extrinsics = false)")
        return
    loaded = load_points(ctx, src, scaled(progress, 0.0, 0.1))
    if loaded is None:
        ctx.summary.update(accepted=False, reason="skipped: several people per camera and no association")
        return
    cameras, points, source = loaded
    refined, info = refine_extrinsics(cameras, points, params_from_config(config), scaled(progress, 0.1, 0.95))
    if info.accepted:
        out = refined_path(paths)
        write_calibration(out, _in_file_order(refined, read_calibration(src, units=config.calibration.units)), error=info.mean_after_px, adjusted=True)
        ctx.wrote(out, "calibration")
        _use(ctx, out)
        log.info("wrote %s (refined from %s; later stages use it); cameras moved %s mm, turned %s deg",
                 REFINED_NAME, src.name, ", ".join(f"{m:.0f}" for m in info.moved_mm),
                 ", ".join(f"{t:.2f}" for t in info.turned_deg))
    else:
        log.warning("refinement refused (%s): later stages use %s", info.reason, src.name)
    doc = write_report(Path(paths.reports) / REPORT_NAME, info, cameras, src, source)
    ctx.wrote(Path(paths.reports) / REPORT_NAME, "report")
    ctx.summary.update(doc)
    report(progress, 1.0, "refinement done")


def _use(ctx: RunContext, calibration: Path) -> None:
    """Later stages of this run (and later runs, through the record) use ``calibration``."""
    ctx.calibration = calibration
    ctx.summary["calibration_used"] = relpath(ctx.paths.root, calibration)


def run_stage(config, paths, progress: Progress | None = None) -> None:
    """The stage run by itself (recorded in the run manifest like a stage of ``openkin run``)."""
    run_alone("refinement", run, config, paths, progress)


def _in_file_order(refined: list[Camera], original: list[Camera]) -> list[Camera]:
    """The refined cameras, plus any calibrated camera without pose files, in the file's order."""
    by_name = {c.name: c for c in refined}
    return [by_name.get(c.name, c) for c in original]


def write_report(path: Path, info: RefineInfo, cameras: list[Camera], calib: Path, source: str) -> dict:
    """``openkin/refinement.toml``: the decision, and per camera the change and the errors."""
    doc = {"accepted": info.accepted, "reason": info.reason, "source_calibration": calib.name,
           "refined_calibration": REFINED_NAME if info.accepted else "", "points_from": source,
           "frames_used": info.frames_used, "points_used": info.points_used, "seconds": round(info.seconds, 3),
           "reprojection_before_px": round(info.mean_before_px, 3),
           "reprojection_after_px": round(info.mean_after_px, 3), "solver": info.cost, "cameras": {}}
    for c, cam in enumerate(cameras):
        doc["cameras"][cam.name] = {
            "moved_mm": round(float(info.moved_mm[c]), 2), "turned_deg": round(float(info.turned_deg[c]), 3),
            "reprojection_before_px": _r(info.error_before_px[c]), "reprojection_after_px": _r(info.error_after_px[c]),
            "observations": int(info.observations[c])}
    with atomic_write(path) as f:
        f.write(toml_dumps(doc))
    return doc


def _r(x: float) -> float:
    return round(float(x), 3) if np.isfinite(x) else -1.0

"""The planner's kernel: which cameras see each point, the best ray angle, and the expected
3D error of triangulating there. Vectorised over points × cameras; no files, no config.

Error model (first-order propagation, checked against Monte-Carlo triangulation in the
tests). A camera c sees a point X at pixel u_c = π_c(X) with Gaussian noise σ px on each
coordinate (the undistorted keypoint, which is what OpenKin triangulates); J_c is the 2×3
Jacobian of π_c, and w_c = P_c[2]·[X; 1] the projective depth. With S the cameras whose
detection survives:

- ``estimator="optimal"``: the best any triangulation can do (maximum likelihood,
  reprojection error), ``Σ_X = σ² (Σ_S J_cᵀ J_c)⁻¹``;
- ``estimator="dlt"`` (default): OpenKin's triangulation (``triangulate_dlt`` and the
  robust one, which is a DLT on the views it keeps). The DLT minimises the algebraic
  error, which weighs each view by w_c², so ``Σ_X = σ² A⁻¹ B A⁻¹`` with
  ``A = Σ_S w_c² J_cᵀJ_c``, ``B = Σ_S w_c⁴ J_cᵀJ_c`` (equal to the optimal one when all
  depths are equal; measured, without dropout: median 4 % / at most 28 % larger on the
  demo's calibration, median 14 % / at most 66 % on a ring of 8 phones 5 m out, where
  points near one camera are far from the opposite one).

The reported error is the RMS 3D error ``sqrt(trace Σ_X)`` (the root of the expected
squared distance between the triangulated and the true point). With a dropout rate p
(each detection missing independently), it is the RMS over the noise and over which
cameras survive, among the outcomes where at least two do:
``sqrt(Σ_S P(S) trace Σ_X(S) / Σ_S P(S))``, with ``P(S) = (1-p)^|S| p^(C-|S|)``; the
probability ``Σ_S P(S)`` that the point is triangulated at all is reported too. The
sum runs over the 2^k subsets of the k cameras that see any point of a block of points
when k ≤ ``exact_max_cameras`` (default 10), leaving out only the least likely subsets
(those missing more cameras than all but ``tail_mass`` = 0.1 % of the probability
allows; e.g. 8 cameras at p = 0.1: 163 of the 247 subsets of ≥ 2 are evaluated, the
rest carry 0.04 % of the mass; ``tail_mass=0`` makes the sum exact); above
``exact_max_cameras`` it is estimated from ``samples`` random survivor sets drawn once
(an unbiased Monte-Carlo estimate, seeded: the same input gives the same output).
Subsets as ill-conditioned as two rays within 0.1° of parallel count as not triangulated
(see ``DEGENERATE_DEG``).

Visibility: in front of the camera (depth ≥ ``min_depth``), within ``max_distance`` of
it, and projected (with the lens distortion) inside the image shrunk by ``margin`` (a
fraction of the width and height on each side).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..errors import OpenKinError
from ..geometry import camera_projections, project_points

log = logging.getLogger(__name__)

BLOCK = 4096  # points per block in the subset sums: the temporaries stay in cache
# Blocks run on this many threads when there is dropout (numpy releases the GIL in the
# per-subset ufuncs; each block writes its own points), as the robust triangulation does.
THREADS = 2
_POOL: list = []


def _pool():
    """The planner's thread pool, made on first use."""
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="openkin-plan"))
    return _POOL[0]
ESTIMATORS = ("dlt", "optimal")


@dataclass(frozen=True)
class PlanSettings:
    """The planner's knobs: 2D noise σ (px), detection dropout rate, image margin (fraction
    of the size on each side), max camera distance and min depth (m), error model."""

    noise_px: float = 3.0
    dropout: float = 0.1
    margin: float = 0.03
    max_distance: float = 8.0
    min_depth: float = 0.2
    estimator: str = "dlt"
    exact_max_cameras: int = 10
    tail_mass: float = 1e-3
    samples: int = 1024
    seed: int = 0

    def __post_init__(self):
        checks = ((self.noise_px > 0, "noise_px must be positive", "e.g. --noise-px 3"),
                  (0 <= self.dropout < 1, "dropout must be in [0, 1)", "e.g. --dropout 0.1"),
                  (0 <= self.margin < 0.5, "margin must be in [0, 0.5)", "a fraction of the image, e.g. 0.03"),
                  (self.max_distance > self.min_depth >= 0, "max_distance must exceed min_depth >= 0", "e.g. 8 m"),
                  (self.estimator in ESTIMATORS, f"estimator must be one of {ESTIMATORS}", "use 'dlt'"))
        for ok, problem, fix in checks:
            if not ok:
                raise OpenKinError(f"planner setting: {problem}", fix=fix)


@dataclass
class CameraTerms:
    """Per camera and point: ``seen`` (C, N) bool, ``gram`` (C, 6, N) the DLT rows' Gram
    matrix ``Σ_r a_r a_rᵀ = w² JᵀJ`` (upper triangle xx, xy, xz, yy, yz, zz; zero where
    unseen), ``depth`` (C, N) projective depth w, ``rays`` (C, 3, N) unit camera→point."""

    seen: np.ndarray
    gram: np.ndarray
    depth: np.ndarray
    rays: np.ndarray

    def __getitem__(self, cams) -> "CameraTerms":
        return CameraTerms(self.seen[cams], self.gram[cams], self.depth[cams], self.rays[cams])

    @staticmethod
    def concat(parts: list["CameraTerms"]) -> "CameraTerms":
        return CameraTerms(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                             ("seen", "gram", "depth", "rays")))


@dataclass
class PlanResult:
    """Per point (N,): ``cameras_seeing`` int, ``best_angle_deg`` (the pair of seeing rays
    closest to perpendicular; NaN below 2 cameras), ``p_triangulated`` (probability that
    ≥ 2 detections survive), ``expected_error_mm`` (RMS 3D error, NaN when never
    triangulated); ``seen`` (C, N) bool."""

    cameras_seeing: np.ndarray
    best_angle_deg: np.ndarray
    p_triangulated: np.ndarray
    expected_error_mm: np.ndarray
    seen: np.ndarray


# ---------------------------------------------------------------- per camera
def camera_terms(cameras: list, points: np.ndarray, settings: PlanSettings) -> CameraTerms:
    """Visibility and Jacobian terms of ``points`` (N, 3) world metres in each camera."""
    pts = np.ascontiguousarray(np.asarray(points, float).reshape(-1, 3))
    P = camera_projections(cameras)                                    # (C, 3, 4)
    h = P[:, :, :3] @ pts.T + P[:, :, 3:]                                   # (C, 3, N): one BLAS product each
    w = h[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = h[:, :2] / w[:, None]                                          # (C, 2, N) pinhole
    centers = np.stack([c.center for c in cameras])                         # (C, 3)
    rel = pts.T[None] - centers[:, :, None]                                 # (C, 3, N)
    dist = np.sqrt(np.einsum("cxn,cxn->cn", rel, rel))
    seen = _visible(cameras, pts, uv, w, dist, settings)
    u, v = np.where(seen, uv[:, 0], 0.0), np.where(seen, uv[:, 1], 0.0)
    basis = np.stack([seen.astype(float), u, v, u * u + v * v], axis=1)     # (C, 4, N)
    gram = _gram_coefficients(P) @ basis                                    # (C, 6, N)
    rays = rel / np.maximum(dist, 1e-12)[:, None]
    return CameraTerms(seen, gram, np.where(seen, w, 1.0), rays)


def _gram_coefficients(P: np.ndarray) -> np.ndarray:
    """(C, 6, 4): with the DLT rows a_0 = p0 - u p2, a_1 = p1 - v p2 (p_r = P[r, :3]), the
    Gram matrix Σ_r a_r a_rᵀ (upper triangle) is ``coef @ [1, u, v, u² + v²]``."""
    p0, p1, p2 = P[:, 0, :3], P[:, 1, :3], P[:, 2, :3]
    i, j = np.array(_IU).T
    outer = lambda a, b: a[:, i] * b[:, j]                                  # noqa: E731
    return np.stack([outer(p0, p0) + outer(p1, p1), -(outer(p0, p2) + outer(p2, p0)),
                     -(outer(p1, p2) + outer(p2, p1)), outer(p2, p2)], axis=2)


def _visible(cameras, pts, uv, w, dist, s: PlanSettings) -> np.ndarray:
    """(C, N) bool: depth, distance and (distorted) image-bounds tests."""
    size = np.stack([c.size for c in cameras])                              # (C, 2)
    depth_ok = (w >= s.min_depth * np.linalg.norm(camera_projections(cameras)[:, 2, :3], axis=1)[:, None])
    ok = depth_ok & (dist <= s.max_distance)
    # the pinhole projection must be near the image, or distortion polynomials can fold far points back in
    ok &= np.all((uv > -0.5 * size[:, :, None]) & (uv < 1.5 * size[:, :, None]), axis=1)
    lo = s.margin * size - 0.5
    hi = (1 - s.margin) * size - 0.5
    for c, cam in enumerate(cameras):
        idx = np.flatnonzero(ok[c])
        if idx.size == 0:
            continue
        if np.any(cam.distortions != 0) or cam.fisheye:
            p = project_points(cam, pts[idx])                           # (n, 2) with distortion
        else:
            p = uv[c][:, idx].T
        inside = np.all((p >= lo[c]) & (p <= hi[c]), axis=1)
        ok[c, idx] = inside
    return ok


_IU = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


# ---------------------------------------------------------------- combination
def best_angle_deg(terms: CameraTerms) -> np.ndarray:
    """(N,) angle of the seeing pair closest to 90° (degrees, 0-90; NaN below two cameras)."""
    C, N = terms.seen.shape
    best = np.full(N, np.inf)
    for a in range(C):
        for b in range(a + 1, C):
            cos = np.abs(np.einsum("xn,xn->n", terms.rays[a], terms.rays[b]))
            np.minimum(best, np.where(terms.seen[a] & terms.seen[b], cos, np.inf), out=best)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(best), np.degrees(np.arccos(np.clip(best, 0, 1))), np.nan)


def evaluate_terms(terms: CameraTerms, settings: PlanSettings) -> PlanResult:
    """Coverage, best angle and expected error from per-camera terms."""
    n_seen = terms.seen.sum(0)
    N = n_seen.shape[0]
    mse = np.full(N, np.nan)
    p_ok = np.zeros(N)
    todo = np.flatnonzero(n_seen >= 2)
    pattern = np.packbits(terms.seen[:, todo], axis=0, bitorder="little")     # (ceil(C/8), n)
    todo = todo[np.lexsort(pattern[::-1])]     # blocks of points seen by the same cameras: fewer subsets
    A, B = _estimator_terms(terms, settings.estimator)

    def block(start: int) -> None:
        idx = todo[start:start + BLOCK]
        mse[idx], p_ok[idx] = _expected_trace(A[:, :, idx], None if B is None else B[:, :, idx],
                                              terms.seen[:, idx], settings)

    starts = range(0, todo.size, BLOCK)
    if THREADS > 1 and len(starts) > 1 and settings.dropout > 0:
        list(_pool().map(block, starts))
    else:
        for start in starts:
            block(start)
    err = 1000.0 * settings.noise_px * np.sqrt(mse)
    return PlanResult(n_seen, best_angle_deg(terms), p_ok, err, terms.seen)


def evaluate(cameras: list, points: np.ndarray, settings: PlanSettings | None = None) -> PlanResult:
    """Everything for ``points`` (N, 3) seen by ``cameras`` (list of ``Camera``)."""
    settings = settings or PlanSettings()
    return evaluate_terms(camera_terms(cameras, points, settings), settings)


def _estimator_terms(terms: CameraTerms, estimator: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(C, 6, N) terms A (and B) whose subset sums give Σ_X / σ² (see the module docstring)."""
    if estimator == "optimal":
        return terms.gram / (terms.depth ** 2)[:, None], None
    return terms.gram, terms.gram * (terms.depth ** 2)[:, None]


def _expected_trace(A, B, seen, s: PlanSettings) -> tuple[np.ndarray, np.ndarray]:
    """Block of n points: ``A``, ``B`` (C, 6, n), ``seen`` (C, n) → E[trace Σ_X/σ² | ≥ 2 views]
    (n,) and P(≥ 2 views) (n,). A subset with fewer than two seeing cameras has a singular
    sum (an unseen camera's terms are zero) and counts as not triangulated."""
    cams = np.flatnonzero(seen.any(1))
    A = np.ascontiguousarray(A[cams])
    B = None if B is None else np.ascontiguousarray(B[cams])
    k = len(cams)
    if s.dropout == 0:
        return _subset_sums(A, B, np.ones((1, k), bool), np.ones(1))
    if k <= s.exact_max_cameras:
        return _gray_code_sums(A, B, seen[cams].astype(float), s.dropout, s.tail_mass)
    rng = np.random.default_rng(s.seed)
    masks = rng.random((s.samples, k)) >= s.dropout
    return _subset_sums(A, B, masks, np.full(s.samples, 1.0 / s.samples))


def _max_dropped(k: int, p: float, tail: float) -> int:
    """The fewest dropped detections D such that P(more than D of k dropped) ≤ ``tail``."""
    mass = 0.0
    for d in range(k + 1):
        mass += math.comb(k, d) * p ** d * (1 - p) ** (k - d)
        if 1.0 - mass <= tail:
            return d
    return k


def _gray_code_sums(A, B, seen, p: float, tail: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Sum over the 2^k survivor subsets, one camera added or removed per step (the
    seeing-camera count ``acc_n`` is exact: the subtracted sums leave rounding residue).
    Subsets missing more cameras than all but ``tail`` of the probability mass allows are
    summed but not evaluated; they count as triangulated in the returned probability."""
    k, _, n = A.shape
    min_size = max(2, k - _max_dropped(k, p, tail))
    acc_n = np.zeros(n)
    acc_a = np.zeros((6, n))
    acc_b = None if B is None else np.zeros((6, n))
    num, den, work = np.zeros(n), np.zeros(n), _Work(n)
    prev, size, skipped = 0, 0, 0.0
    for i in range(1, 2 ** k):
        g = i ^ (i >> 1)
        bit = (g ^ prev).bit_length() - 1
        op = np.add if (g >> bit) & 1 else np.subtract
        prev, size = g, size + (1 if op is np.add else -1)
        op(acc_a, A[bit], out=acc_a)
        op(acc_n, seen[bit], out=acc_n)
        if B is not None:
            op(acc_b, B[bit], out=acc_b)
        weight = (1 - p) ** size * p ** (k - size)
        if size >= min_size:
            work.accumulate(acc_a, acc_b, weight, num, den, acc_n >= 1.5)
        elif size >= 2:
            skipped += weight
    mse, _ = _finish(num, den)
    return mse, den + skipped


def _subset_sums(A, B, masks, weights) -> tuple[np.ndarray, np.ndarray]:
    """The same sum over given survivor ``masks`` (M, k) with ``weights`` (M,)."""
    n = A.shape[2]
    num, den, work = np.zeros(n), np.zeros(n), _Work(n)
    for m, wgt in zip(masks, weights):
        if m.sum() >= 2:
            work.accumulate(A[m].sum(0), None if B is None else B[m].sum(0), wgt, num, den)
    return _finish(num, den)


def _finish(num, den) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan), den


# A subset whose normal matrix is as ill-conditioned as two rays within DEGENERATE_DEG of
# parallel (cameras in line with the point, on the same or opposite sides) counts as not
# triangulated: the depth along that line is unobservable and the DLT's error unbounded.
# With eigenvalues λ1 ≥ λ2 ≥ λ3, det / (trace · trace(adj)) ≈ λ3 / (λ1 + λ2 + λ3) ≈ (1 - cos θ) / 4
# for two equal views θ apart. Kept far below the robust triangulation's 2° parallax rule: that
# rule rejects same-side pairs only, and the model must follow the triangulators, which keep
# opposite pairs (their large errors are real: see the tests' Monte-Carlo check).
DEGENERATE_DEG = 0.1
ILL_CONDITIONED = (1.0 - np.cos(np.radians(DEGENERATE_DEG))) / 4.0


class _Work:
    """Scratch arrays for the per-subset traces (n,) each: symmetric 3×3 blocks are stored as
    their upper triangle (6, n) — xx, xy, xz, yy, yz, zz. In-place ufuncs, chosen for speed:
    the subset sums run 2^k times per block (measured 2.5× faster than plain expressions)."""

    def __init__(self, n: int):
        self.adj = np.empty((6, n))
        self.t, self.u, self.det, self.inv, self.tr = (np.empty(n) for _ in range(5))
        self.regular = np.empty(n, bool)
        self.two_views = None

    def accumulate(self, a, b, weight: float, num, den, two_views=None) -> None:
        """num += weight·trace(Σ_X/σ²), den += weight where the subset triangulates."""
        self.two_views = two_views
        tr = self.trace_inverse(a) if b is None else self.trace_sandwich(a, b)
        tr *= weight
        num += tr
        np.multiply(self.regular, weight, out=self.t)
        den += self.t

    def _adjugate(self, m) -> None:
        """adj, det of symmetric 3×3 ``m`` (6, n); ``inv`` = 1/det where regular, else 0."""
        a, b, c, d, e, f = m
        adj, t, det = self.adj, self.t, self.det
        for out, (p, q), (r, s) in zip(adj, ((d, f), (c, e), (b, e), (a, f), (b, c), (a, d)),
                                       ((e, e), (b, f), (c, d), (c, c), (a, e), (b, b))):
            np.multiply(p, q, out=out)
            np.multiply(r, s, out=t)
            out -= t
        np.multiply(a, adj[0], out=det)
        np.multiply(b, adj[1], out=t)
        det += t
        np.multiply(c, adj[2], out=t)
        det += t
        np.add(adj[0], adj[3], out=self.tr)
        self.tr += adj[5]                                   # trace(adj)
        np.add(a, d, out=t)
        t += f                                              # trace(m)
        t *= self.tr
        t *= ILL_CONDITIONED
        np.maximum(t, 1e-300, out=t)
        np.greater(det, t, out=self.regular)
        if self.two_views is not None:
            self.regular &= self.two_views
        self.inv.fill(0.0)
        np.divide(1.0, det, out=self.inv, where=self.regular)

    def trace_inverse(self, m) -> np.ndarray:
        """trace(M⁻¹) (n,) = trace(adj) / det; 0 where not regular."""
        self._adjugate(m)
        self.tr *= self.inv
        return self.tr

    def trace_sandwich(self, a, b) -> np.ndarray:
        """trace(A⁻¹ B A⁻¹) = Σ_ij B_ij (adj(A)²)_ij / det² (n,); 0 where A is not regular."""
        self._adjugate(a)
        q00, q01, q02, q11, q12, q22 = self.adj              # adj(A) = det · A⁻¹
        tr, t, u = self.tr, self.t, self.u
        tr.fill(0.0)
        for bij, factor, rows in ((b[0], 1.0, ((q00, q00), (q01, q01), (q02, q02))),
                                  (b[3], 1.0, ((q01, q01), (q11, q11), (q12, q12))),
                                  (b[5], 1.0, ((q02, q02), (q12, q12), (q22, q22))),
                                  (b[1], 2.0, ((q00, q01), (q01, q11), (q02, q12))),
                                  (b[2], 2.0, ((q00, q02), (q01, q12), (q02, q22))),
                                  (b[4], 2.0, ((q01, q02), (q11, q12), (q12, q22)))):
            np.multiply(rows[0][0], rows[0][1], out=t)
            for x, y in rows[1:]:
                np.multiply(x, y, out=u)
                t += u
            t *= bij
            if factor != 1.0:
                t *= factor
            tr += t
        tr *= self.inv
        tr *= self.inv                                      # / det²
        return tr

"""Where to add a camera, or where to move one, to see more of the volume or see it better.

A search over candidate places: a ring of ``n_angles`` positions at three distances from
the volume's centre (1.1, 1.4 and 1.8 × its floor half-diagonal) and three heights in
``heights``, each aimed at the volume centre at 1 m; places inside the volume's floor or
a keep-out box are skipped. A candidate layout scores by the fraction of the volume seen
by ≥ 2 cameras (higher is better, compared to 0.1 %), then by the 95th percentile of the
expected error (lower is better). The other cameras' terms are computed once; each
candidate adds one camera's.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import OpenKinError
from .kernel import CameraTerms, PlanSettings, camera_terms, evaluate_terms
from .layout import make_camera
from .volume import Volume, inside_polygon

log = logging.getLogger(__name__)

RADII = (1.1, 1.4, 1.8)


@dataclass(frozen=True)
class Score:
    """Summary figures of a layout on a grid."""

    seen2: float        # fraction of points seen by ≥ 2 cameras
    seen3: float
    median_mm: float    # expected error over the points seen by ≥ 2
    p95_mm: float

    def key(self) -> tuple[float, float]:
        p95 = self.p95_mm if np.isfinite(self.p95_mm) else np.inf
        return (round(self.seen2, 3), -p95)


@dataclass(frozen=True)
class Suggestion:
    mode: str              # 'add' or 'move'
    camera: object         # the new or moved Camera
    replaced: str | None   # name of the moved camera
    target: np.ndarray     # (3,) where it aims
    before: Score
    after: Score


def score(result) -> Score:
    """:class:`Score` of a :class:`~openkin.plan.kernel.PlanResult`."""
    n = result.cameras_seeing
    ok = n >= 2
    err = result.expected_error_mm[ok]
    err = err[np.isfinite(err)]
    med, p95 = (np.median(err), np.percentile(err, 95)) if err.size else (np.nan, np.nan)
    return Score(float(ok.mean()), float((n >= 3).mean()), float(med), float(p95))


def candidate_places(volume: Volume, heights: tuple[float, float], keep_out: np.ndarray,
                     n_angles: int = 24) -> np.ndarray:
    """(M, 3) candidate camera positions around ``volume`` outside keep-out boxes (K, 4)."""
    x0, y0, x1, y1 = volume.bounds
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    half_diag = 0.5 * np.hypot(x1 - x0, y1 - y0)
    angles = 2 * np.pi * np.arange(n_angles) / n_angles
    zs = np.linspace(heights[0], heights[1], 3)
    xy = np.array([centre + r * half_diag * np.array([np.cos(a), np.sin(a)]) for r in RADII for a in angles])
    ok = ~inside_polygon(xy, volume.floor)
    for bx0, by0, bx1, by1 in keep_out:
        ok &= ~((xy[:, 0] >= bx0) & (xy[:, 0] <= bx1) & (xy[:, 1] >= by0) & (xy[:, 1] <= by1))
    xy = xy[ok]
    return np.array([[x, y, z] for x, y in xy for z in zs]).reshape(-1, 3)


def suggest(cameras: list, volume: Volume, points: np.ndarray, settings: PlanSettings, mode: str,
            *, heights: tuple[float, float] = (0.8, 2.5), keep_out: np.ndarray | None = None,
            template=None, n_angles: int = 24) -> Suggestion:
    """Best single change: ``mode`` 'add' (a camera with ``template``'s lens, default the
    first camera's) or 'move' (any one camera, keeping its lens). ``points`` (N, 3)."""
    if mode not in ("add", "move"):
        raise OpenKinError(f"unknown suggestion {mode!r}", fix="use --suggest add or --suggest move")
    if not heights[1] >= heights[0] > 0:
        raise OpenKinError(f"camera height range {heights} is empty", fix="give --heights lo,hi with 0 < lo <= hi")
    places = candidate_places(volume, heights, np.zeros((0, 4)) if keep_out is None else keep_out, n_angles)
    if len(places) == 0:
        raise OpenKinError("no candidate camera place outside the keep-out zones",
                           fix="shrink the keep-out boxes or widen the height range")
    target = volume.centre
    terms = camera_terms(cameras, points, settings)
    before = score(evaluate_terms(terms, settings))
    movers = [None] if mode == "add" else list(range(len(cameras)))
    best = None
    for index in movers:
        lens = (template or cameras[0]) if index is None else cameras[index]
        keep = terms if index is None else terms[[i for i in range(len(cameras)) if i != index]]
        for place in places:
            cam = make_camera(lens.name if index is not None else "new", place, target - place,
                              lens.matrix, lens.size)
            s = score(evaluate_terms(CameraTerms.concat([keep, camera_terms([cam], points, settings)]), settings))
            if best is None or s.key() > best[0].key():
                best = (s, cam, index)
    s, cam, index = best
    log.debug("searched %d places × %d cameras", len(places), len(movers))
    return Suggestion(mode, cam, None if index is None else cameras[index].name, target, before, s)

"""Automatic scaling without a static trial.

Pose2Sim divides trimmed-mean marker distances of the trial by the same distances on
the generic model *in its default pose*. That is exact only for markers on one
rigid chain whose distance does not depend on the joints between them; pairs that
span a joint (shoulder-hip across the lumbar joint, knee-ankle across the walker
knee's sliding axis, heel-toe across the toe joint) come out biased, and that bias
goes straight into the joint angles.

OpenKin starts the same way, then refines: it runs IK with the scaled model on a
few dozen well-measured frames, measures each marker pair on the *posed* model,
and corrects each scale factor by the ratio data / posed model (median over
frames). Two such passes make every pair's model distance match the data in the
poses the subject actually took. Frame selection (no crouching, no fast or frozen
frames, no missing markers) and trimmed means follow Pose2Sim's settings.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import measure
from .ik import IkJob, poser
from .setup import IkTasks, Measurement, import_opensim, model_body_names

log = logging.getLogger(__name__)

REFINE_PASSES = 2
REFINE_BLOCKS = 6        # IK-posed frames come in short runs of consecutive frames: a run's first
REFINE_BLOCK_LEN = 5     # frame costs a far jump, the others a cheap warm-started step (10× less)


def sample_frames(frames: np.ndarray, blocks: int = REFINE_BLOCKS, length: int = REFINE_BLOCK_LEN) -> np.ndarray:
    """Runs of consecutive frames among ``frames`` (sorted indices, (N,)), spread over the trial: (≤ B·L,)."""
    if len(frames) <= blocks * length:
        return frames
    starts = np.linspace(0, len(frames) - length, blocks).astype(int)
    return np.unique(np.concatenate([frames[s:s + length] for s in starts]))


@dataclass(frozen=True)
class ScaleGroup:
    """Bodies scaled by one factor, measured by marker ``pairs``."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    bodies: tuple[str, ...]


def _side(name: str) -> str | None:
    """'r'/'l' for right/left marker or body names (RKnee, r_knee_study, femur_r), else None."""
    low = name.lower()
    if low.endswith("_r") or low.startswith(("r_", "r.")) or (name[:1] == "R" and name[1:2].isupper()):
        return "r"
    if low.endswith("_l") or low.startswith(("l_", "l.")) or (name[:1] == "L" and name[1:2].isupper()):
        return "l"
    return None


def scale_groups(measurements: list[Measurement], bodies: list[str], symmetric: bool) -> list[ScaleGroup]:
    """Groups of bodies sharing a factor. With ``symmetric`` one group per measurement (both
    sides together, as Pose2Sim's right_left_symmetry); else right and left bodies get their
    own groups measured by their own side's pairs."""
    have = set(bodies)
    groups = []
    for m in measurements:
        mb = tuple(b for b in m.bodies if b in have)
        if not mb:
            continue
        if symmetric:
            groups.append(ScaleGroup(m.name, m.pairs, mb))
            continue
        for side in ("r", "l", None):
            sb = tuple(b for b in mb if _side(b) == side)
            if not sb:
                continue
            pairs = m.pairs if side is None else tuple(
                p for p in m.pairs if all(_side(x) in (side, None) for x in p) and any(_side(x) == side for x in p))
            groups.append(ScaleGroup(f"{m.name}_{side}" if side else m.name, pairs or m.pairs, sb))
    return groups


def _marker_positions(model, state, names: list[str]) -> np.ndarray:
    """(M, 3) ground positions of model markers in ``state`` (NaN for unknown names)."""
    ms = model.getMarkerSet()
    out = np.full((len(names), 3), np.nan)
    model.realizePosition(state)
    for i, n in enumerate(names):
        if ms.contains(n):
            out[i] = ms.get(n).getLocationInGround(state).to_numpy()
    return out


def initial_factors(groups: list[ScaleGroup], data_lengths: dict[tuple[str, str], float],
                    model_lengths: dict[tuple[str, str], float]) -> dict[str, float]:
    """Group name -> mean over its pairs of data / model length (NaN without a usable pair)."""
    out = {}
    for g in groups:
        r = [data_lengths[p] / model_lengths[p] for p in g.pairs
             if np.isfinite(data_lengths.get(p, np.nan)) and model_lengths.get(p, 0) > 1e-6]
        out[g.name] = float(np.mean(r)) if r else float("nan")
    return out


def body_factors(groups: list[ScaleGroup], factors: dict[str, float], bodies: list[str]) -> dict[str, float]:
    """Body -> factor; unmeasured bodies (and groups without a usable pair) get the median factor."""
    finite = [f for f in factors.values() if np.isfinite(f)]
    default = float(np.median(finite)) if finite else 1.0
    out = {b: default for b in bodies}
    for g in groups:
        f = factors.get(g.name, np.nan)
        for b in g.bodies:
            out[b] = f if np.isfinite(f) else default
    return out


def scaled_model(model, state, factors: dict[str, float], mass: float | None = None):
    """A scaled copy of ``model`` (uniform factor per body); returns (model, state)."""
    osim = import_opensim()
    copy = model.clone()
    s = copy.initSystem()
    scale_set = osim.ScaleSet()
    have = set(model_body_names(copy))
    for body, f in factors.items():
        if body not in have:
            continue
        sc = osim.Scale()
        sc.setSegmentName(body)
        sc.setScaleFactors(osim.Vec3(f, f, f))
        sc.setApply(True)
        scale_set.cloneAndAppend(sc)
    copy.scale(s, scale_set, True, -1.0 if mass is None else float(mass))
    return copy, copy.initSystem()


def _posed_lengths(model, state, tasks: IkTasks, names: list[str], xyz: np.ndarray, times: np.ndarray,
                   pairs: list[tuple[str, str]], solver: str = "openkin") -> np.ndarray:
    """IK (``solver``: 'openkin' or 'opensim') on the frames of xyz (K, M, 3), then the model's pair
    distances in each pose: (K, P)."""
    used = [n for n in names if tasks.marker_weights.get(n, 0) > 0 and model.getMarkerSet().contains(n)]
    cols = [names.index(n) for n in used]
    job = IkJob("", used, xyz[:, cols], times, tasks.marker_weights, tasks.coordinate_tasks)
    pose = poser(model, state, job, solver)
    posed = np.empty((len(times), len(used), 3))
    for k in range(len(times)):
        pose(k)
        posed[k] = _marker_positions(model, state, used)
    return measure.distances(posed, used, pairs)


def _update(factors: dict[str, float], groups: list[ScaleGroup], ratio: dict, history: dict) -> None:
    """One correction of each group's factor from its pairs' data / posed-model ratios.

    A pair can span bodies of several groups (shoulder-hip: pelvis and torso), so scaling one
    group changes its distance less than proportionally; after two passes the log-slope is known
    and the step becomes a secant step (converges in 2-3 passes instead of ~10)."""
    for g in groups:
        r = [ratio[p] for p in g.pairs if np.isfinite(ratio.get(p, np.nan))]
        if not r or not np.isfinite(factors[g.name]):
            continue
        ls, lr = np.log(factors[g.name]), float(np.log(np.mean(r)))
        alpha = 1.0
        if g.name in history:
            ls0, lr0 = history[g.name]
            if abs(ls - ls0) > 1e-4:
                alpha = float(np.clip((lr0 - lr) / (ls - ls0), 0.3, 1.5))
        history[g.name] = (ls, lr)
        factors[g.name] = float(np.exp(ls + lr / alpha))


def _refine(factors, groups, pairs, bodies, model, state, tasks, names, xyz, times, passes, details,
            solver: str = "openkin") -> None:
    """``passes`` corrections of ``factors`` (in place) with IK on ``model`` for the frames of xyz."""
    history: dict = {}
    measured = measure.distances(xyz, names, pairs)
    for _ in range(passes):
        m2, s2 = scaled_model(model, state, body_factors(groups, factors, bodies))
        posed = _posed_lengths(m2, s2, tasks, names, xyz, times, pairs, solver)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = measured / posed
        ratio = {p: float(np.nanmedian(rel[:, i])) if np.isfinite(rel[:, i]).any() else np.nan
                 for i, p in enumerate(pairs)}
        _update(factors, groups, ratio, history)
        details["passes"].append(dict(factors))


def estimate_factors(xyz: np.ndarray, times: np.ndarray, names: list[str], model, state,
                     measurements: list[Measurement], tasks: IkTasks, *, symmetric: bool = True,
                     trimmed_extrema_percent: float = 50.0, large_hip_knee_angles: float = 90.0,
                     refine: int = REFINE_PASSES, target=None, solver: str = "openkin"
                     ) -> tuple[dict[str, float], dict]:
    """Per-body scale factors from a trial: xyz (F, M, 3) metres, model ground frame.

    ``model``/``state``: the model the refinement passes pose (fast: the simple model);
    ``target``: (model, state) the factors are for, when it differs (Pose2Sim's full model,
    whose lumbar chain differs): then ``refine`` more passes on a third of the frames on it;
    ``solver``: the IK solver posing the model ('openkin', the batch solver, or 'opensim').
    Returns (body -> factor, details: groups' factors per pass and frames used)."""
    bodies = model_body_names(model if target is None else target[0])
    groups = scale_groups(measurements, bodies, symmetric)
    pairs = sorted({p for g in groups for p in g.pairs})
    frames = measure.select_frames(xyz, names, large_hip_knee_angles)
    data = dict(zip(pairs, measure.segment_lengths(xyz[frames], names, pairs, trimmed_extrema_percent)))
    flat = [n for p in pairs for n in p]
    default = _marker_positions(model, state, flat)
    model_len = {p: float(np.linalg.norm(default[flat.index(p[0])] - default[flat.index(p[1])])) for p in pairs}
    factors = initial_factors(groups, data, model_len)
    details = {"frames_used": int(len(frames)), "passes": [dict(factors)]}
    if refine:
        sample = sample_frames(frames)
        _refine(factors, groups, pairs, bodies, model, state, tasks, names, xyz[sample], times[sample],
                refine, details, solver)
        if target is not None:
            few = sample_frames(frames, blocks=3, length=4)
            _refine(factors, groups, pairs, bodies, target[0], target[1], tasks, names, xyz[few], times[few],
                    refine, details, solver)
    return body_factors(groups, factors, bodies), details


def register_markers(model, state, markers: list[str], tasks: IkTasks, names: list[str], xyz: np.ndarray,
                     times: np.ndarray, large_hip_knee_angles: float = 90.0, solver: str = "openkin"
                     ) -> dict[str, float]:
    """Place augmented markers on the scaled model where the data put them (no static trial).

    The keypoint markers (``tasks``: joint centres, whose places on the model are known) pose the
    model by IK on well-measured frames; each augmented marker of ``markers`` is then moved, in its
    body's frame, to the median of where the data put it in those poses. The LSTM augmenter's
    markers sit where its training subjects had them, not where the generic model has them; without
    this their offsets turn into joint-angle offsets (OpenSim's MarkerPlacer does the same on a
    static trial). ``solver``: the IK solver posing the model. ``model`` is changed in place.
    Returns marker -> distance moved (m)."""
    osim = import_opensim()
    frames = measure.select_frames(xyz, names, large_hip_knee_angles)
    sample = sample_frames(frames)
    kp = [n for n in names if tasks.marker_weights.get(n, 0) > 0 and model.getMarkerSet().contains(n)]
    job = IkJob("", kp, xyz[sample][:, [names.index(n) for n in kp]], times[sample], tasks.marker_weights,
                tasks.coordinate_tasks)
    pose = poser(model, state, job, solver)
    ms, ground = model.updMarkerSet(), model.getGround()
    local = np.full((len(sample), len(markers), 3), np.nan)
    for k in range(len(sample)):
        pose(k)
        for j, m in enumerate(markers):
            p = xyz[sample[k], names.index(m)]
            if np.isfinite(p).all():
                frame = ms.get(m).getParentFrame()
                local[k, j] = ground.findStationLocationInAnotherFrame(state, osim.Vec3(*map(float, p)),
                                                                       frame).to_numpy()
    moved = {}
    for j, m in enumerate(markers):
        if np.isfinite(local[:, j]).all(axis=1).sum() < 3:
            continue
        new = np.nanmedian(local[:, j], axis=0)
        marker = ms.get(m)
        moved[m] = float(np.linalg.norm(new - marker.get_location().to_numpy()))
        marker.set_location(osim.Vec3(*map(float, new)))
    return moved

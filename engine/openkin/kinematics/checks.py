"""Problems users hit with OpenSim today, caught before OpenSim sees the data.

OpenSim answers a TRC in millimetres, markers it does not know or NaN-filled
frames with silent garbage or a deep C++ message; each case here gets an
:class:`OpenKinError` that names the file, the markers and frames, and the fix.
"""
from __future__ import annotations

import difflib
import logging
import warnings
from pathlib import Path

import numpy as np

from ..errors import OpenKinError

log = logging.getLogger(__name__)

MISSING_POLICIES = ("interpolate", "drop_frames", "error")
MIN_MARKERS = 6  # fewer matching markers cannot pin down a whole-body pose


def frame_ranges(frames: np.ndarray, limit: int = 6) -> str:
    """'3-7, 12, 40-41' for sorted frame numbers (N,); at most ``limit`` ranges then '...'."""
    frames = np.asarray(frames, dtype=int)
    if frames.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(frames) != 1)
    starts = np.r_[frames[0], frames[breaks + 1]]
    ends = np.r_[frames[breaks], frames[-1]]
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in zip(starts, ends)]
    return ", ".join(parts[:limit]) + (f", ... ({len(parts)} gaps)" if len(parts) > limit else "")


def check_units(xyz: np.ndarray, path: str | Path | None = None) -> None:
    """Raise when coordinates (F, M, 3) look like millimetres or centimetres, not metres.

    A person spans 0.3-3 m between their extreme keypoints; the median span over frames
    decides (1000× → mm, 100× → cm)."""
    with warnings.catch_warnings():  # all-NaN frames are expected here
        warnings.simplefilter("ignore", RuntimeWarning)
        span = np.linalg.norm(np.nanmax(xyz, axis=1) - np.nanmin(xyz, axis=1), axis=-1)
    span = span[np.isfinite(span)]
    if span.size == 0:
        return
    size = float(np.median(span))
    unit = "millimetres" if size > 300 else "centimetres" if size > 20 else None
    if unit:
        raise OpenKinError(
            f"the markers look like {unit}, not metres: the person spans {size:.0f} units "
            f"(a person is 0.3-3 m)", path=path,
            fix=f"set Units to {'mm' if unit == 'millimetres' else 'cm'} in the TRC header "
                "(line 3) so OpenKin converts it, or rescale the coordinates to metres")


def fill_gaps(xyz: np.ndarray, max_gap: int) -> np.ndarray:
    """Linear interpolation of interior NaN gaps of at most ``max_gap`` frames, per marker and
    axis: (F, M, 3) -> (F, M, 3). Gaps at the start/end and longer gaps stay NaN."""
    out = xyz.copy()
    nan = np.isnan(xyz).any(axis=2)  # (F, M)
    t = np.arange(len(xyz))
    for m in np.flatnonzero(nan.any(axis=0)):
        bad = nan[:, m]
        good = ~bad
        if good.sum() < 2:
            continue
        # length of the gap each missing frame belongs to
        edges = np.diff(np.r_[0, bad.astype(int), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for a, b in zip(starts, ends):
            if a == 0 or b == len(xyz) or b - a > max_gap:
                continue
            for k in range(3):
                out[a:b, m, k] = np.interp(t[a:b], t[good], xyz[good, m, k])
    return out


def handle_missing(xyz: np.ndarray, names: list[str], frame_numbers: np.ndarray, policy: str,
                   max_gap: int, path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Apply the missing-marker policy to the markers IK uses.

    xyz (F, M, 3) NaN = missing -> (xyz filled (F, M, 3), kept frames (F,) bool, markers never
    seen (dropped from IK)). ``policy``: 'interpolate' (fill gaps up to ``max_gap`` frames,
    drop frames still incomplete), 'drop_frames', or 'error' (raise, naming markers and frames).
    """
    if policy not in MISSING_POLICIES:
        raise OpenKinError(f"unknown missing_markers policy {policy!r}",
                           fix=f"set [kinematics] missing_markers to one of {', '.join(MISSING_POLICIES)}")
    nan = np.isnan(xyz).any(axis=2)
    never = [names[m] for m in np.flatnonzero(nan.all(axis=0))]
    if never and len(never) == len(names):
        raise OpenKinError("every marker is missing (NaN) in every frame", path=path,
                           fix="check the triangulation output of this person")
    if never:
        log.warning("%s: markers never seen, left out of IK: %s", path or "TRC", ", ".join(never))
    seen = ~nan.all(axis=0)
    if policy == "error" and nan[:, seen].any():
        raise OpenKinError("missing (NaN) markers: " + _describe_missing(nan[:, seen], [n for n, s in zip(names, seen) if s],
                                                                      frame_numbers), path=path,
                           fix="set [kinematics] missing_markers = 'interpolate' (fill short gaps) or "
                               "'drop_frames', or fix the triangulation of those frames")
    if policy == "interpolate":
        xyz = fill_gaps(xyz, max_gap)
        nan = np.isnan(xyz).any(axis=2)
    keep = ~nan[:, seen].any(axis=1)
    if not keep.all():
        log.warning("%s: %d of %d frames dropped (markers missing): %s", path or "TRC", (~keep).sum(), len(keep),
                    _describe_missing(nan[:, seen], [n for n, s in zip(names, seen) if s], frame_numbers))
    if not keep.any():
        raise OpenKinError("no frame has all markers: " + _describe_missing(nan[:, seen], [n for n, s in zip(names, seen)
                                                                                         if s], frame_numbers),
                           path=path, fix="raise [kinematics] interp_gap_max, or check the triangulation")
    return xyz, keep, never


def _describe_missing(nan: np.ndarray, names: list[str], frame_numbers: np.ndarray, limit: int = 6) -> str:
    """'RKnee (12 frames: 10-21), LHeel (3 frames: 5-7)' for nan (F, M) bool."""
    counts = nan.sum(axis=0)
    order = np.argsort(-counts)
    parts = [f"{names[m]} ({counts[m]} frames: {frame_ranges(frame_numbers[nan[:, m]], 4)})"
             for m in order[:limit] if counts[m]]
    more = int((counts > 0).sum()) - len(parts)
    return "; ".join(parts) + (f"; and {more} more markers" if more > 0 else "")


def _name_hints(unknown: list[str], model_markers: list[str], limit: int = 4) -> list[str]:
    """'r_knee → RKnee?' for TRC names that contain a model marker's name (case/punctuation aside)."""
    norm = lambda s: "".join(ch for ch in s.lower() if ch.isalnum())  # noqa: E731
    by_norm = sorted(((norm(m), m) for m in model_markers), key=lambda x: -len(x[0]))
    hints = []
    for name in unknown:
        n = norm(name)
        match = next((m for k, m in by_norm if k and (n.endswith(k) or n.startswith(k))), None)
        match = match or next(iter(difflib.get_close_matches(name, model_markers, n=1, cutoff=0.8)), None)
        if match:
            hints.append(f"{name} → {match}?")
        if len(hints) >= limit:
            break
    return hints


def match_markers(trc_names: list[str], model_markers: list[str], weights: dict[str, float],
                  trc_path: str | Path | None = None, model_label: str = "the model") -> list[str]:
    """TRC markers that IK will track: in the model, with a positive weight. Raise when fewer
    than ``MIN_MARKERS`` match (wrong keypoint set or naming), naming both lists."""
    model = set(model_markers)
    used = [m for m in trc_names if m in model and weights.get(m, 0.0) > 0]
    if len(used) < MIN_MARKERS:
        hints = _name_hints([n for n in trc_names if n not in model], model_markers)
        raise OpenKinError(
            f"only {len(used)} of the TRC's {len(trc_names)} markers are markers of {model_label} "
            f"(at least {MIN_MARKERS} needed): TRC has {', '.join(trc_names[:12])}{' ...' if len(trc_names) > 12 else ''}; "
            f"model has {', '.join(model_markers[:30])}{' ...' if len(model_markers) > 30 else ''}",
            path=trc_path,
            fix="set [pose] pose_model to the keypoint set of this TRC (HALPE_26, COCO_17, BLAZEPOSE), "
                "or rename the markers" + (f" ({'; '.join(hints)})" if hints else ""))
    unknown = [m for m in trc_names if m not in model]
    if unknown:
        log.info("%s: markers not in %s (not used by IK): %s", trc_path or "TRC", model_label, ", ".join(unknown))
    absent = [m for m, w in weights.items() if w > 0 and m in model and m not in trc_names]
    if absent:
        log.warning("%s: markers of %s missing from the TRC (IK runs without them): %s",
                    trc_path or "TRC", model_label, ", ".join(absent))
    return used

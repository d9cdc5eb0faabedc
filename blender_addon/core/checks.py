"""Checks of a capture before it is shown: things that are readable but probably wrong.

bpy-free. Each check returns plain values; :mod:`.capture` turns them into the import's
warning list (shown in the panel and reported by the operator).
"""
from __future__ import annotations

from dataclasses import dataclass
import warnings
from pathlib import Path

import numpy as np

JUMP_MIN_SPEED = 10.0   # m/s: no body moves this fast between two frames (sprinters peak at ~12 m/s)
JUMP_FACTOR = 10.0      # ... nor ten times faster than its own typical speed in the clip


@dataclass(frozen=True)
class Jump:
    """The body moved ``distance`` m between scene frames ``frame_before`` and ``frame``."""

    frame_before: int
    frame: int
    distance: float
    speed: float          # m/s
    typical_speed: float  # m/s, median over the clip


def trc_declared_frames(path: str | Path) -> int | None:
    """``NumFrames`` of a TRC header (3rd line, under the 2nd line's keys), or None if absent."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [f.readline() for _ in range(3)]
    keys, values = lines[1].strip().split("\t"), lines[2].strip().split("\t")
    header = dict(zip((k.strip() for k in keys), (v.strip() for v in values)))
    try:
        return int(float(header["NumFrames"]))
    except (KeyError, ValueError):
        return None


def body_jumps(points: np.ndarray, frames: np.ndarray, fps: float) -> list[Jump]:
    """Frames where the whole body moves far faster than a body can (an identity switch:
    another person's detections taken over the track).

    ``points``: (F, M, 3) metres, NaN where missing (markers, or M=1 for a pelvis);
    ``frames``: (F,) scene frames of the rows; ``fps``: scene frames per second.
    The body's displacement between consecutive rows is the median over its points
    (one glitching marker does not count); flagged when its speed exceeds both
    :data:`JUMP_MIN_SPEED` and :data:`JUMP_FACTOR` × the clip's median speed.
    """
    points = np.asarray(points, float)
    frames = np.asarray(frames)
    if len(points) < 3:
        return []
    step = np.linalg.norm(np.diff(points, axis=0), axis=-1)                  # (F-1, M), NaN if missing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                     # rows with no point at all
        dist = np.nanmedian(step, axis=1)                                    # (F-1,)
    dt = np.maximum(np.diff(frames), 1) / float(fps)                         # (F-1,) s
    speed = dist / dt
    ok = np.isfinite(speed)
    if ok.sum() < 2:
        return []
    typical = float(np.median(speed[ok]))
    limit = max(JUMP_MIN_SPEED, JUMP_FACTOR * typical)
    idx = np.flatnonzero(ok & (speed > limit))
    return [Jump(int(frames[i]), int(frames[i + 1]), float(dist[i]), float(speed[i]), typical) for i in idx]


def describe_jumps(person: str, what: str, jumps: list[Jump], shown: int = 3) -> str:
    """One warning line for a person's jumps."""
    parts = [f"{j.distance:.2f} m between frames {j.frame_before} and {j.frame} ({j.speed:.0f} m/s)"
             for j in jumps[:shown]]
    more = f" and {len(jumps) - shown} more" if len(jumps) > shown else ""
    return (f"{person}: the {what} jumps {'; '.join(parts)}{more}, its usual speed being "
            f"{jumps[0].typical_speed:.1f} m/s: probably another person's detections (identity switch); "
            f"check the association stage")

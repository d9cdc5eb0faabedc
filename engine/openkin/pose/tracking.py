"""Person IDs across frames: optimal assignment of new detections to known people.

Same parameters as Pose2Sim's 'sports2d' tracking (match_by, max_distance_px,
min_iou, max_unseen_frames, predict_displacement); the assignment is
scipy's Hungarian solver on a cost matrix built with numpy.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

MIN_CONF = 0.3  # keypoints below this confidence do not count for matching


def _boxes(people: np.ndarray) -> np.ndarray:
    """(P, K, 3) → (P, 4) x0, y0, x1, y1 of the confident keypoints (NaN if none)."""
    ok = (people[..., 2:3] >= MIN_CONF) & np.isfinite(people[..., :2])
    lo = np.where(ok, people[..., :2], np.inf).min(axis=1)
    hi = np.where(ok, people[..., :2], -np.inf).max(axis=1)
    none = ~ok.any(axis=1)
    lo[none], hi[none] = np.nan, np.nan
    return np.concatenate([lo, hi], axis=1)


def cost_matrix(prev: np.ndarray, new: np.ndarray, match_by: str = "keypoints") -> np.ndarray:
    """Matching cost between known people (T, K, 3) and detections (P, K, 3) → (T, P).

    'keypoints': mean distance of keypoints confident in both (px);
    'centroid': distance of the confident keypoints' centroids (px);
    'bbox': 1 − IoU of the confident keypoints' boxes. Inf where nothing is comparable.
    """
    if match_by == "bbox":
        a, b = _boxes(prev)[:, None], _boxes(new)[None]
        inter = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None).prod(-1)
        area_a, area_b = np.prod(a[..., 2:] - a[..., :2], axis=-1), np.prod(b[..., 2:] - b[..., :2], axis=-1)
        cost = 1.0 - inter / np.maximum(area_a + area_b - inter, 1e-9)
        return np.where(np.isfinite(cost), cost, np.inf)
    ok_p = (prev[..., 2] >= MIN_CONF) & np.isfinite(prev[..., :2]).all(-1)
    ok_n = (new[..., 2] >= MIN_CONF) & np.isfinite(new[..., :2]).all(-1)
    if match_by == "centroid":
        cp = np.nansum(np.where(ok_p[..., None], prev[..., :2], 0), 1) / np.maximum(ok_p.sum(1, keepdims=True), 1)
        cn = np.nansum(np.where(ok_n[..., None], new[..., :2], 0), 1) / np.maximum(ok_n.sum(1, keepdims=True), 1)
        cost = np.linalg.norm(cp[:, None] - cn[None], axis=-1)
        return np.where(ok_p.any(1)[:, None] & ok_n.any(1)[None], cost, np.inf)
    both = ok_p[:, None] & ok_n[None]  # (T, P, K)
    d = np.linalg.norm(np.nan_to_num(prev[:, None, :, :2]) - np.nan_to_num(new[None, :, :, :2]), axis=-1)
    n = both.sum(-1)
    return np.where(n > 0, (d * both).sum(-1) / np.maximum(n, 1), np.inf)


class PersonTracker:
    """Give each detected person a stable integer ID (0, 1, ...) across frames."""

    def __init__(self, *, match_by: str = "keypoints", max_distance_px: float = 250.0, min_iou: float = 0.2,
                 max_unseen_frames: int = 100, predict_displacement: bool = False):
        self.match_by = match_by
        self.max_cost = (1.0 - min_iou) if match_by == "bbox" else float(max_distance_px)
        self.max_unseen = int(max_unseen_frames)
        self.predict = predict_displacement
        self.last: dict[int, np.ndarray] = {}  # id -> (K, 3) last seen keypoints
        self.velocity: dict[int, np.ndarray] = {}  # id -> (2,) px per frame
        self.unseen: dict[int, int] = {}
        self.next_id = 0

    def _expected(self, pid: int) -> np.ndarray:
        kp = self.last[pid].copy()
        if self.predict and pid in self.velocity:
            kp[:, :2] += self.velocity[pid] * (self.unseen[pid] + 1)
        return kp

    def update(self, people: np.ndarray) -> np.ndarray:
        """Detections (P, K, 3) of one frame → their IDs (P,) int."""
        ids = np.full(len(people), -1, dtype=int)
        known = list(self.last)
        if known and len(people):
            cost = cost_matrix(np.stack([self._expected(i) for i in known]), people, self.match_by)
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e12))
            for r, c in zip(rows, cols):
                if cost[r, c] <= self.max_cost:
                    ids[c] = known[r]
        for c in np.flatnonzero(ids < 0):
            ids[c] = self.next_id
            self.next_id += 1
        self._remember(people, ids)
        return ids

    def _remember(self, people: np.ndarray, ids: np.ndarray) -> None:
        for pid in list(self.last):
            if pid not in ids:
                self.unseen[pid] += 1
                if self.unseen[pid] > self.max_unseen:
                    for d in (self.last, self.unseen, self.velocity):
                        d.pop(pid, None)
        for kp, pid in zip(people, ids):
            if self.predict and pid in self.last:
                step = np.nanmean(kp[:, :2] - self.last[pid][:, :2], axis=0) / (self.unseen[pid] + 1)
                self.velocity[pid] = np.nan_to_num(step)
            self.last[pid] = kp
            self.unseen[pid] = 0

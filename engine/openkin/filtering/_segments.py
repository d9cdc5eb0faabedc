"""Run a column-wise kernel on the contiguous non-NaN segments of a signal.

Every filter here works on ``(F, C)`` blocks without NaN. Columns that share the
same NaN pattern (the x, y, z of one marker, and usually every marker) are
filtered together, segment by segment, so the common case -- no gap at all --
is one library call on the whole ``(F, C)`` array.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Kernel = Callable[[np.ndarray], np.ndarray]


def runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """``valid`` (F,) bool -> [(start, stop), ...] of its True runs."""
    edges = np.diff(np.concatenate(([0], valid.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), stops.tolist()))


def as_columns(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(F, ...) -> float (F, C) copy and the original shape."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"expected an array of shape (F, ...) with F >= 1, got {x.shape}")
    return x.reshape(x.shape[0], -1).copy(), x.shape


def apply_segments(x: np.ndarray, kernel: Kernel, min_len: int) -> np.ndarray:
    """Apply ``kernel`` ((L, c) -> (L, c)) to each NaN-free segment of each column of ``x``.

    x: (F, ...) float, NaN = missing. Segments shorter than ``min_len`` are left
    as they are (too short to filter reliably); NaN stay NaN. Returns (F, ...).
    """
    cols, shape = as_columns(x)
    out = cols.copy()
    missing = np.isnan(cols)
    if not missing.any():
        if cols.shape[0] >= min_len:
            out[:] = kernel(cols)
        return out.reshape(shape)
    for which in _same_pattern_groups(missing):
        for start, stop in runs(~missing[:, which[0]]):
            if stop - start >= min_len:
                out[start:stop, which] = kernel(cols[start:stop, which])
    return out.reshape(shape)


def _same_pattern_groups(missing: np.ndarray) -> list[np.ndarray]:
    """Column indices grouped by identical NaN pattern. missing: (F, C) bool."""
    packed = np.ascontiguousarray(np.packbits(missing, axis=0).T)  # (C, ceil(F/8)) bytes per column
    groups: dict[bytes, list[int]] = {}
    for c, key in enumerate(packed):
        groups.setdefault(key.tobytes(), []).append(c)
    return [np.asarray(v) for v in groups.values()]

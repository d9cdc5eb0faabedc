"""The capture volume (a floor polygon or box, from z0 up to a height) and its grid of points.

Default volume, when none is given: a square on the floor centred on the cameras' common
look-at point (the point at 1 m height closest, in least squares, to every optical axis),
with a side equal to the median horizontal distance from the cameras to that point
(clamped to 2-10 m), from the floor to 2 m: the stage a ring of cameras is aimed at.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import OpenKinError

DEFAULT_HEIGHT = 2.0     # m
LOOK_AT_HEIGHT = 1.0     # m: cameras are aimed at a standing person's middle
SIDE_LIMITS = (2.0, 10.0)


@dataclass(frozen=True)
class Volume:
    """``floor`` (V, 2) polygon vertices (x, y) metres, counter-clockwise or not; ``z0``..``z1``."""

    floor: np.ndarray
    z0: float
    z1: float

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 of the floor polygon."""
        (x0, y0), (x1, y1) = self.floor.min(0), self.floor.max(0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def centre(self) -> np.ndarray:
        """(3,) middle of the bounding box at 1 m (or mid-height if lower)."""
        x0, y0, x1, y1 = self.bounds
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2, min(LOOK_AT_HEIGHT, (self.z0 + self.z1) / 2)])


def box_volume(x0: float, y0: float, x1: float, y1: float, height: float = DEFAULT_HEIGHT, z0: float = 0.0) -> Volume:
    """The box [x0, x1] × [y0, y1] × [z0, height]."""
    if not (x1 > x0 and y1 > y0 and height > z0):
        raise OpenKinError(f"empty volume x {x0}..{x1}, y {y0}..{y1}, z {z0}..{height}",
                           fix="give x0,y0,x1,y1 with x1 > x0, y1 > y0, and a positive --height")
    return Volume(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float), float(z0), float(height))


def polygon_volume(floor, height: float = DEFAULT_HEIGHT, z0: float = 0.0) -> Volume:
    """A prism over the floor polygon ``floor`` (V, 2)."""
    floor = np.asarray(floor, float)
    if floor.ndim != 2 or floor.shape[1] != 2 or len(floor) < 3 or not np.all(np.isfinite(floor)):
        raise OpenKinError(f"floor polygon must be 3 or more [x, y] points, got shape {floor.shape}",
                           fix="write floor = [[x, y], [x, y], [x, y], ...] in metres")
    if height <= z0:
        raise OpenKinError(f"volume height {height} is not above z0 {z0}", fix="give a positive height (metres)")
    return Volume(floor, float(z0), float(height))


def volume_from_table(table: dict, where: str = "") -> Volume:
    """A layout's ``[volume]`` table: ``box`` or ``floor``, ``height``, optional ``z0``."""
    height = float(table.get("height", DEFAULT_HEIGHT))
    z0 = float(table.get("z0", 0.0))
    if "box" in table:
        box = np.asarray(table["box"], float).reshape(-1)
        if box.shape != (4,):
            raise OpenKinError(f"{where}[volume] box must be x0, y0, x1, y1", fix="box = [-2, -2, 2, 2]")
        return box_volume(*box, height=height, z0=z0)
    if "floor" in table:
        return polygon_volume(table["floor"], height, z0)
    raise OpenKinError(f"{where}[volume] has neither 'box' nor 'floor'", fix="add box = [x0, y0, x1, y1]")


def common_look_at(centers: np.ndarray, axes: np.ndarray, height: float = LOOK_AT_HEIGHT) -> np.ndarray:
    """The point at ``height`` closest (least squares) to the optical axes. ``centers``,
    ``axes`` (C, 3) → (3,). Falls back to the cameras' mean position when the axes are parallel."""
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    proj = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]       # (C, 3, 3)
    A, b = proj.sum(0), np.einsum("cij,cj->i", proj, centers)
    try:
        xy = np.linalg.solve(A[:2, :2], b[:2] - A[:2, 2] * height)
    except np.linalg.LinAlgError:
        xy = centers[:, :2].mean(0)
    return np.array([xy[0], xy[1], height])


def default_volume(centers: np.ndarray, axes: np.ndarray, height: float = DEFAULT_HEIGHT) -> Volume:
    """See the module docstring. ``centers``, ``axes`` (C, 3) world."""
    target = common_look_at(centers, axes)
    dist = np.linalg.norm(centers[:, :2] - target[:2], axis=1)
    side = float(np.clip(np.median(dist), *SIDE_LIMITS))
    h = side / 2
    return box_volume(target[0] - h, target[1] - h, target[0] + h, target[1] + h, height)


def inside_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule. ``xy`` (N, 2), ``polygon`` (V, 2) → (N,) bool (edges count as inside
    up to rounding)."""
    x, y = xy[:, 0:1], xy[:, 1:2]
    p0, p1 = polygon, np.roll(polygon, -1, axis=0)
    crosses = (p0[:, 1] > y) != (p1[:, 1] > y)                            # (N, V)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = p0[:, 0] + (y - p0[:, 1]) * (p1[:, 0] - p0[:, 0]) / (p1[:, 1] - p0[:, 1])
    inside = (crosses & (x < x_at)).sum(1) % 2 == 1
    lo, hi = polygon.min(0) - 1e-9, polygon.max(0) + 1e-9
    on_box = np.all((xy >= lo) & (xy <= hi), axis=1)
    return inside | (on_box & _on_edge(xy, p0, p1))


def _on_edge(xy: np.ndarray, p0: np.ndarray, p1: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    d = p1 - p0                                                           # (V, 2)
    rel = xy[:, None, :] - p0[None]                                       # (N, V, 2)
    t = np.clip((rel * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0.0, 1.0)
    dist = np.linalg.norm(rel - t[..., None] * d, axis=-1)
    return (dist < tol).any(1)


@dataclass(frozen=True)
class Grid:
    """Grid points of a volume. ``xs`` (nx,), ``ys`` (ny,), ``zs`` (nz,) axes; ``columns``
    (nx, ny) bool floor cells inside the polygon; ``points`` (N, 3) the inside points in
    (x, y, z) C order; ``index`` (N, 3) their (ix, iy, iz)."""

    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray
    columns: np.ndarray
    points: np.ndarray
    index: np.ndarray

    def to_cube(self, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """Per-point ``values`` (N,) → (nx, ny, nz) array, ``fill`` outside the volume."""
        out = np.full((len(self.xs), len(self.ys), len(self.zs)), fill, dtype=float)
        out[self.index[:, 0], self.index[:, 1], self.index[:, 2]] = values
        return out


def _axis(lo: float, hi: float, spacing: float) -> np.ndarray:
    n = int(round((hi - lo) / spacing)) + 1
    return np.linspace(lo, hi, max(n, 2))


def make_grid(volume: Volume, spacing: float) -> Grid:
    """Points of ``volume`` every ``spacing`` metres (ends included: 6 m at 0.1 m → 61)."""
    if not spacing > 0:
        raise OpenKinError(f"grid spacing must be positive, got {spacing}", fix="e.g. --grid 0.25 (metres)")
    x0, y0, x1, y1 = volume.bounds
    xs, ys, zs = _axis(x0, x1, spacing), _axis(y0, y1, spacing), _axis(volume.z0, volume.z1, spacing)
    n_points = len(xs) * len(ys) * len(zs)
    if n_points > 20_000_000:
        raise OpenKinError(f"grid of {n_points} points is too fine", fix="use a larger --grid spacing")
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    columns = inside_polygon(np.stack([gx.ravel(), gy.ravel()], 1), volume.floor).reshape(gx.shape)
    ix, iy = np.nonzero(columns)
    nz = len(zs)
    index = np.stack([np.repeat(ix, nz), np.repeat(iy, nz), np.tile(np.arange(nz), len(ix))], 1)
    points = np.stack([xs[index[:, 0]], ys[index[:, 1]], zs[index[:, 2]]], 1)
    return Grid(xs, ys, zs, columns, points, index)

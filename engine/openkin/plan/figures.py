"""Top-view PNG of a plan: coverage and expected error over the floor, cameras drawn.

Four panels (x, y in metres, world Z up, seen from above): cameras seeing each point at
the floor level and the fewest over the height (a column is only as good as its worst
point), expected RMS 3D error at the floor level and the largest over the height.
Points seen by fewer than two cameras are hatched grey in the error panels.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..fileio import atomic_path

log = logging.getLogger(__name__)


def _camera_marks(ax, cameras, fov_len: float) -> None:
    for cam in cameras:
        c = cam.center
        R = cam.R
        fwd = R[2, :2]
        ax.plot(*c[:2], marker="o", ms=8, mfc="white", mec="black", zorder=5)
        if np.linalg.norm(fwd) > 1e-6:
            hx = (cam.size[0] / 2) / cam.matrix[0, 0]           # tan of half the horizontal FOV
            for side in (-1, 1):
                ray = R[2] + side * hx * R[0]                    # image edge ray in world
                d = ray[:2] / max(np.linalg.norm(ray[:2]), 1e-9)
                ax.plot([c[0], c[0] + fov_len * d[0]], [c[1], c[1] + fov_len * d[1]], color="black",
                        lw=0.8, ls="--", zorder=4)
            f = fwd / np.linalg.norm(fwd)
            ax.annotate("", xy=(c[0] + 0.6 * f[0], c[1] + 0.6 * f[1]), xytext=(c[0], c[1]),
                        arrowprops=dict(arrowstyle="-|>", color="black", lw=1.5), zorder=6)
        ax.text(c[0], c[1] + 0.25, cam.name, ha="center", va="bottom", fontsize=8, zorder=7,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))


def _limits(grid, cameras) -> tuple[tuple[float, float], tuple[float, float]]:
    pts = np.vstack([np.stack([c.center[:2] for c in cameras]),
                     [[grid.xs[0], grid.ys[0]], [grid.xs[-1], grid.ys[-1]]]])
    lo, hi = pts.min(0) - 0.7, pts.max(0) + 0.7
    return (lo[0], hi[0]), (lo[1], hi[1])


def _extent(grid) -> list[float]:
    dx = (grid.xs[1] - grid.xs[0]) / 2 if len(grid.xs) > 1 else 0.05
    dy = (grid.ys[1] - grid.ys[0]) / 2 if len(grid.ys) > 1 else 0.05
    return [grid.xs[0] - dx, grid.xs[-1] + dx, grid.ys[0] - dy, grid.ys[-1] + dy]


def write_plan_png(path: str | Path, grid, result, cameras, volume, title: str = "",
                   keep_out: np.ndarray | None = None, suggestion=None) -> Path:
    """Write the four-panel top view to ``path`` (PNG); ``keep_out`` (K, 4) boxes hatched;
    a ``suggestion`` (:class:`~openkin.plan.optimise.Suggestion`) drawn as a red star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    count = grid.to_cube(result.cameras_seeing.astype(float))                 # (nx, ny, nz)
    err = grid.to_cube(np.where(result.cameras_seeing >= 2, result.expected_error_mm, np.nan))
    with np.errstate(invalid="ignore"), _quiet():
        panels = [("cameras seeing, floor level (z = %.2f m)" % grid.zs[0], count[:, :, 0], "count"),
                  ("cameras seeing, fewest over 0–%.1f m" % grid.zs[-1], np.nanmin(count, axis=2), "count"),
                  ("expected 3D error (mm), floor level", err[:, :, 0], "error"),
                  ("expected 3D error (mm), worst over height", _worst(err, count), "error")]
    finite = err[np.isfinite(err)]
    vmax = float(np.percentile(finite, 98)) if finite.size else 1.0
    n_max = max(int(np.nanmax(count)) if np.isfinite(count).any() else 0, 4)
    count_cmap = ListedColormap(plt.get_cmap("viridis")(np.linspace(0, 1, n_max + 1)))
    count_cmap.colors[0] = (0.75, 0.1, 0.1, 1.0)                              # 0: red
    if n_max >= 1:
        count_cmap.colors[1] = (0.95, 0.55, 0.2, 1.0)                         # 1: orange (no 3D)
    norm = BoundaryNorm(np.arange(-0.5, n_max + 1.5), n_max + 1)
    fig, axes = plt.subplots(2, 2, figsize=(12, 11), constrained_layout=True)
    xlim, ylim = _limits(grid, cameras + ([suggestion.camera] if suggestion is not None else []))
    fov_len = 0.6 * max(xlim[1] - xlim[0], ylim[1] - ylim[0])
    floor = np.vstack([volume.floor, volume.floor[:1]])
    for ax, (name, img, kind) in zip(axes.ravel(), panels):
        if kind == "count":
            im = ax.imshow(img.T, origin="lower", extent=_extent(grid), cmap=count_cmap, norm=norm,
                           interpolation="nearest")
            cb = fig.colorbar(im, ax=ax, ticks=range(n_max + 1), shrink=0.85)
            cb.set_label("cameras seeing the point (≥ 2 for 3D)")
        else:
            ax.imshow(np.where(np.isnan(img), 1.0, np.nan).T, origin="lower", extent=_extent(grid),
                      cmap=ListedColormap([(0.8, 0.8, 0.8)]), interpolation="nearest")
            im = ax.imshow(img.T, origin="lower", extent=_extent(grid), cmap="magma_r", vmin=0, vmax=vmax,
                           interpolation="nearest")
            cb = fig.colorbar(im, ax=ax, shrink=0.85, extend="max")
            cb.set_label("RMS 3D error (mm); grey: < 2 cameras")
        ax.plot(floor[:, 0], floor[:, 1], color="white", lw=2.5, zorder=3)
        ax.plot(floor[:, 0], floor[:, 1], color="black", lw=1.0, zorder=3)
        for bx0, by0, bx1, by1 in (np.zeros((0, 4)) if keep_out is None else keep_out):
            ax.add_patch(plt.Rectangle((bx0, by0), bx1 - bx0, by1 - by0, fill=False, hatch="///", ec="dimgray",
                                       lw=1.0, zorder=2, label="keep-out"))
        _camera_marks(ax, cameras, fov_len)
        if suggestion is not None:
            c = suggestion.camera.center
            ax.plot(c[0], c[1], marker="*", ms=16, mfc="red", mec="black", zorder=8)
            ax.annotate("", xy=tuple(suggestion.target[:2]), xytext=(c[0], c[1]), zorder=8,
                        arrowprops=dict(arrowstyle="-|>", color="red", lw=1.2, ls="--"))
            ax.text(c[0], c[1] - 0.35, f"{suggestion.mode} {suggestion.replaced or ''}".strip(), color="red",
                    ha="center", va="top", fontsize=8, zorder=8)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.25)
    if title:
        fig.suptitle(title, fontsize=11)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)


def _worst(err: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(nx, ny): largest error over the height; NaN if any point of the column is seen by < 2."""
    holes = np.any(np.isfinite(count) & (count < 2), axis=2)
    return np.where(holes, np.nan, np.nanmax(err, axis=2))


class _quiet:
    """Silence numpy's all-NaN slice warnings inside the block (columns outside the polygon)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)

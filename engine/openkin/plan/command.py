"""``openkin plan CAMERAS.toml``: coverage and expected accuracy of a camera layout.

Prints a summary (fraction of the volume seen by ≥ 2 / ≥ 3 cameras, median and 95th
percentile expected error, the worst 1 m floor square), writes per-point JSON
(``--json``: calibration world, Z up, metres; ``expected_error_mm`` null where fewer than
two cameras see the point) and a top-view PNG (``--png``); ``--suggest add|move`` searches
where to put one more camera or move one (see :mod:`openkin.plan.optimise`).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_write
from .presets import PRESETS, get_preset, intrinsics
from .volume import (DEFAULT_HEIGHT, Volume, box_volume, default_volume, make_grid,
                     volume_from_table)

log = logging.getLogger(__name__)

SQUARE = 1.0  # m: the floor squares the worst region is picked from


def add_arguments(parser) -> None:
    parser.add_argument("cameras", help="calibration TOML (or .qca.txt), or a layout TOML of virtual cameras")
    parser.add_argument("--volume", metavar="X0,Y0,X1,Y1", help="floor rectangle in metres (write --volume=-3,-3,3,3 when it starts with a minus) "
                        "(default: the layout's [volume], else a square around the cameras' common look-at point)")
    parser.add_argument("--height", type=float, default=None, help=f"volume height, m (default {DEFAULT_HEIGHT})")
    parser.add_argument("--grid", type=float, default=0.25, help="grid spacing, m (default 0.25)")
    parser.add_argument("--noise-px", type=float, default=3.0, help="2D keypoint noise σ per coordinate, px (default 3)")
    parser.add_argument("--dropout", type=float, default=0.1, help="probability a detection is missing (default 0.1)")
    parser.add_argument("--max-distance", type=float, default=8.0, help="farthest useful distance, m (default 8)")
    parser.add_argument("--margin", type=float, default=0.03, help="image border left out, fraction (default 0.03)")
    parser.add_argument("--estimator", choices=("dlt", "optimal"), default="dlt",
                        help="error model: OpenKin's DLT triangulation (default) or the optimal (ML) bound")
    parser.add_argument("--json", metavar="OUT", help="write per-point results as JSON")
    parser.add_argument("--png", metavar="OUT", help="write the top-view coverage/error PNG")
    parser.add_argument("--suggest", choices=("add", "move"), help="search where to add a camera or move one")
    parser.add_argument("--preset", help=f"lens of the added camera ({', '.join(PRESETS)}; default: the first camera's)")
    parser.add_argument("--heights", default="0.8,2.5", metavar="LO,HI", help="camera height range for --suggest, m")
    parser.add_argument("--motion", type=float, nargs="?", const=6.0, default=None, metavar="SECONDS",
                        help="also follow the synth actor (OpenSim) walking around the volume centre for SECONDS "
                             "(default 6): per-joint coverage and error with self-occlusion")
    parser.add_argument("--keep-out", action="append", metavar="X0,Y0,X1,Y1",
                        help="floor box where no camera may stand (repeatable; adds to the layout's [[keep_out]])")


def _numbers(text: str, n: int, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != n or not np.all(np.isfinite(values)):
        raise OpenKinError(f"{option} {text!r} must be {n} comma-separated numbers", fix=f"e.g. {option} "
                           + ",".join(["-2", "-2", "2", "2"][:n] if n == 4 else ["0.8", "2.5"]))
    return values


def resolve_volume(setup, box: str | None, height: float | None) -> tuple[Volume, str]:
    """The volume to plan and how it was chosen."""
    if box:
        return box_volume(*_numbers(box, 4, "--volume"), height=height or DEFAULT_HEIGHT), "--volume"
    if setup.volume is not None:
        table = dict(setup.volume)
        if height:
            table["height"] = height
        return volume_from_table(table, f"{setup.source}: "), f"[volume] of {setup.source.name}"
    centers = np.stack([c.center for c in setup.cameras])
    axes = np.stack([c.R[2] for c in setup.cameras])
    return default_volume(centers, axes, height or DEFAULT_HEIGHT), "default: square around the common look-at point"


def check_layout(setup, result, volume: Volume, strict: bool = True) -> None:
    """Cameras that see nothing of the volume, or a volume nobody triangulates: an error
    naming the camera/file and the fix (a warning only when ``strict`` is False)."""
    blind = [c.name for c, s in zip(setup.cameras, result.seen) if not s.any()]
    cx, cy, cz = volume.centre
    if blind:
        err = OpenKinError(f"camera(s) {', '.join(blind)} see nothing of the volume "
                           f"(x {volume.bounds[0]:.1f}..{volume.bounds[2]:.1f}, y {volume.bounds[1]:.1f}.."
                           f"{volume.bounds[3]:.1f} m)", path=setup.source,
                           fix=f"aim them at the volume (look_at = [{cx:.1f}, {cy:.1f}, {cz:.1f}]), bring them "
                               "within --max-distance, or give the --volume they film")
        if strict:
            raise err
        log.warning("%s", err)
    if not (result.cameras_seeing >= 2).any():
        raise OpenKinError("no point of the volume is seen by two cameras: nothing can be triangulated",
                           path=setup.source,
                           fix="aim at least two cameras at the same area (or check --volume / the world units), "
                               "or try --suggest add")


def worst_region(grid, result) -> str:
    """The 1 m floor square with the least ≥ 2 coverage, then the largest 95th percentile error."""
    pts = grid.points
    lo, hi = pts[:, :2].min(0), pts[:, :2].max(0)
    n_cells = np.maximum(1, np.round((hi - lo) / SQUARE)).astype(int)
    cell = np.minimum((pts[:, :2] - lo) / np.maximum(hi - lo, 1e-9) * n_cells, n_cells - 1).astype(int)
    keys, inverse = np.unique(cell, axis=0, return_inverse=True)
    worst, text = None, ""
    for k in range(len(keys)):
        sel = inverse.ravel() == k
        cover = float((result.cameras_seeing[sel] >= 2).mean())
        err = result.expected_error_mm[sel & (result.cameras_seeing >= 2)]
        p95 = float(np.percentile(err, 95)) if err.size else np.inf
        if worst is None or (cover, -p95) < worst:
            worst = (cover, -p95)
            lo = pts[sel, :2].min(0)
            hi = pts[sel, :2].max(0)
            text = (f"x {lo[0]:.2f}..{hi[0]:.2f} m, y {lo[1]:.2f}..{hi[1]:.2f} m: {100 * cover:.0f}% seen by ≥ 2"
                    + (f", 95th pct error {p95:.1f} mm" if np.isfinite(p95) else ""))
    return text


def summary_lines(setup, volume: Volume, how: str, grid, result, settings, seconds: float) -> list[str]:
    n = result.cameras_seeing
    ok = n >= 2
    err = result.expected_error_mm[ok & np.isfinite(result.expected_error_mm)]
    x0, y0, x1, y1 = volume.bounds
    lines = [f"cameras: {len(setup.cameras)} from {setup.source}",
             f"volume: x {x0:.2f}..{x1:.2f} m, y {y0:.2f}..{y1:.2f} m, z {volume.z0:.2f}..{volume.z1:.2f} m ({how}); "
             f"{len(grid.points)} points every {settings_grid(grid):.2f} m",
             f"model: σ = {settings.noise_px:g} px, dropout {settings.dropout:g}, {settings.estimator} triangulation, "
             f"margin {settings.margin:g}, max distance {settings.max_distance:g} m"]
    for cam, seen in zip(setup.cameras, result.seen):
        c = cam.center
        lines.append(f"  {cam.name:>10s} at ({c[0]:+.2f}, {c[1]:+.2f}, {c[2]:+.2f}) m sees {100 * seen.mean():5.1f}% of the volume")
    lines += [f"seen by ≥ 2 cameras: {100 * ok.mean():.1f}% of the volume; by ≥ 3: {100 * (n >= 3).mean():.1f}%",
              "expected RMS 3D error (points seen by ≥ 2): " + (
                  f"median {np.median(err):.1f} mm, 95th percentile {np.percentile(err, 95):.1f} mm, "
                  f"max {err.max():.1f} mm" if err.size else "n/a"),
              f"triangulated despite dropout (mean over the volume): {100 * result.p_triangulated.mean():.1f}%",
              f"worst region: {worst_region(grid, result)}",
              f"computed in {seconds:.2f} s"]
    return lines


def settings_grid(grid) -> float:
    return float(grid.zs[1] - grid.zs[0]) if len(grid.zs) > 1 else float(grid.xs[1] - grid.xs[0])


def write_json(path: str | Path, grid, result, setup, volume: Volume, settings) -> None:
    """Per-point results; NaN becomes null."""
    err = np.where(result.cameras_seeing >= 2, result.expected_error_mm, np.nan)
    as_list = lambda a, d: [None if not np.isfinite(v) else round(float(v), d) for v in a]  # noqa: E731
    doc = {"frame": "calibration world, Z up, metres",
           "cameras": [c.name for c in setup.cameras],
           "volume": {"floor": volume.floor.round(4).tolist(), "z0": volume.z0, "z1": volume.z1},
           "settings": {"noise_px": settings.noise_px, "dropout": settings.dropout, "margin": settings.margin,
                        "max_distance": settings.max_distance, "estimator": settings.estimator,
                        "grid": settings_grid(grid)},
           "points": np.round(grid.points, 4).tolist(),
           "cameras_seeing": result.cameras_seeing.astype(int).tolist(),
           "expected_error_mm": as_list(err, 2),
           "best_angle_deg": as_list(result.best_angle_deg, 1),
           "p_triangulated": as_list(result.p_triangulated, 4)}
    with atomic_write(path) as f:
        json.dump(doc, f, separators=(",", ":"))


def _keep_out(setup, extra: list[str] | None) -> np.ndarray:
    boxes = [setup.keep_out] + [np.array([_numbers(b, 4, "--keep-out")]) for b in extra or []]
    return np.vstack(boxes).reshape(-1, 4)


def _suggestion_lines(sug, settings) -> list[str]:
    c = sug.camera.center
    what = f"move {sug.replaced} to" if sug.mode == "move" else "add a camera at"
    b, a = sug.before, sug.after
    t = sug.target
    return [f"suggestion: {what} ({c[0]:+.2f}, {c[1]:+.2f}, {c[2]:+.2f}) m, aimed at ({t[0]:.2f}, {t[1]:.2f}, {t[2]:.2f})",
            f"  seen by ≥ 2: {100 * b.seen2:.1f}% → {100 * a.seen2:.1f}%;  by ≥ 3: {100 * b.seen3:.1f}% → {100 * a.seen3:.1f}%",
            f"  expected error median {b.median_mm:.1f} → {a.median_mm:.1f} mm, 95th pct {b.p95_mm:.1f} → {a.p95_mm:.1f} mm "
            "(over the points seen by ≥ 2, before and after)",
            "  as a layout entry:",
            "    [[camera]]",
            f"    name = \"{sug.replaced or 'new'}\"",
            f"    position = [{c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f}]",
            f"    look_at = [{t[0]:.2f}, {t[1]:.2f}, {t[2]:.2f}]"]


def main(args) -> int:
    from .kernel import PlanSettings, evaluate
    from .layout import load_setup

    setup = load_setup(args.cameras)
    volume, how = resolve_volume(setup, args.volume, args.height)
    settings = PlanSettings(noise_px=args.noise_px, dropout=args.dropout, margin=args.margin,
                            max_distance=args.max_distance, estimator=args.estimator)
    grid = make_grid(volume, args.grid)
    t0 = time.perf_counter()
    result = evaluate(setup.cameras, grid.points, settings)
    seconds = time.perf_counter() - t0
    check_layout(setup, result, volume, strict=args.suggest is None)
    lines = summary_lines(setup, volume, how, grid, result, settings, seconds)
    if args.json:
        write_json(args.json, grid, result, setup, volume, settings)
        lines.append(f"wrote {args.json}")
    if args.motion:
        from .motion import actor_motion, motion_lines, plan_motion

        names, joints = actor_motion(volume.centre[:2], seconds=args.motion)
        lines += motion_lines(plan_motion(setup.cameras, names, joints, settings))
    suggestion = None
    if args.suggest:
        more, suggestion = _suggest(args, setup, volume, settings, grid, result)
        lines += more
    if args.png:
        from .figures import write_plan_png

        write_plan_png(args.png, grid, result, setup.cameras, volume,
                       title=f"{setup.source.name}: {100 * (result.cameras_seeing >= 2).mean():.0f}% seen by ≥ 2 cameras, "
                             f"σ = {settings.noise_px:g} px, dropout {settings.dropout:g}",
                       keep_out=_keep_out(setup, args.keep_out), suggestion=suggestion)
        lines.append(f"wrote {args.png}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


SEARCH_GRID = 0.5  # m: the search scores candidates on this grid (or the user's, if coarser)


def _suggest(args, setup, volume: Volume, settings, grid, result) -> tuple[list[str], object]:
    """Search on a coarse grid, then report before/after on the user's grid."""
    from dataclasses import replace

    from .kernel import evaluate
    from .optimise import score, suggest

    template = None
    if args.preset:
        p = get_preset(args.preset, where="--preset: ")
        K, size = intrinsics(p.hfov_deg, p.size)
        from .layout import make_camera

        template = make_camera("new", [0, 0, 1], [1, 0, 0], K, size)
    spacing = max(args.grid, SEARCH_GRID)
    coarse = make_grid(volume, spacing)
    lo, hi = _numbers(args.heights, 2, "--heights")
    t0 = time.perf_counter()
    sug = suggest(setup.cameras, volume, coarse.points, settings, args.suggest, heights=(lo, hi),
                  keep_out=_keep_out(setup, args.keep_out), template=template)
    seconds = time.perf_counter() - t0
    cams = [sug.camera if c.name == sug.replaced else c for c in setup.cameras]
    if sug.mode == "add":
        cams.append(sug.camera)
    sug = replace(sug, before=score(result), after=score(evaluate(cams, grid.points, settings)))
    return _suggestion_lines(sug, settings) + [f"  searched in {seconds:.1f} s on a {spacing:.2f} m grid; "
                                               f"figures above on the {args.grid:.2f} m grid"], sug

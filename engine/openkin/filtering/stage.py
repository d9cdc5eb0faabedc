"""The filtering stage: ``pose-3d/*.trc`` -> ``pose-3d/<name>_filt_<type>.trc`` (+ ``.c3d``, plots).

As Pose2Sim's ``filter_all``: every TRC the triangulation wrote in its current run (as the run
manifest records them; in a project without a record, every TRC of ``pose-3d/`` whose name does
not contain ``_filt_``) is read, its frames restricted to ``[project] frame_range``, outliers rejected
(Hampel) if ``reject_outliers``, smoothed with ``[filtering] type`` if
``filter``, and written next to it. With ``save_filt_plots`` a raw-vs-filtered
PNG per file goes to ``pose-3d/plots/`` (needs matplotlib). ``display_figures``
is accepted and ignored: OpenKin never opens windows.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import time
from pathlib import Path

import numpy as np

from ..context import RunContext, run_alone
from ..errors import OpenKinError
from ..fileio import atomic_path
from ..formats.c3d import write_c3d
from ..formats.trc import Trc, read_trc, write_trc
from ..progress import report
from . import filter_array, normalise_method
from .outliers import hampel

log = logging.getLogger(__name__)

_RANGE_SUFFIX = re.compile(r"_-?\d+-\d+$")


def input_files(pose3d_dir: Path) -> list[Path]:
    """Unfiltered TRC files of ``pose3d_dir``, sorted: names without ``_filt_`` (Pose2Sim's
    output tag; Pose2Sim skips any name containing 'filt', which would also skip a trial
    called e.g. 'filter_test')."""
    return sorted(p for p in Path(pose3d_dir).glob("*.trc") if "_filt_" not in p.name)


def output_path(trc_path: Path, frames: np.ndarray, type_name: str) -> Path:
    """Pose2Sim's name: ``<seq>_<first>-<last>.trc`` -> ``<seq>_<first>-<last>_filt_<type>.trc``.

    The frame range is the one actually filtered; a name without a range gets
    ``_filt_<type>`` appended to its stem.
    """
    stem = trc_path.stem
    if len(frames) and _RANGE_SUFFIX.search(stem):
        stem = _RANGE_SUFFIX.sub(f"_{int(frames[0])}-{int(frames[-1])}", stem)
    return trc_path.with_name(f"{stem}_filt_{type_name}.trc")


def select_frames(trc: Trc, frame_range) -> Trc:
    """Frames of ``trc`` within ``frame_range`` ((start, stop) or 'auto'/'all'); all if it does not fit."""
    if isinstance(frame_range, str) or not frame_range:
        return trc
    start, stop = int(frame_range[0]), int(frame_range[1])
    keep = (trc.frame_numbers >= start) & (trc.frame_numbers < stop)
    if not keep.any():
        log.warning("frame_range %s does not overlap frames %d-%d: filtering all frames",
                    frame_range, trc.frame_numbers[0], trc.frame_numbers[-1])
        return trc
    return Trc(trc.marker_names, trc.rate, trc.xyz[keep], trc.frame_numbers[keep], trc.times[keep])


def filter_params(cfg, type_name: str) -> dict:
    """The ``[filtering.<type>]`` sub-section of ``cfg`` (a FilteringConfig) as keyword arguments."""
    section = getattr(cfg, normalise_method(type_name))
    return dataclasses.asdict(section)


def filter_xyz(xyz: np.ndarray, rate: float, *, reject_outliers: bool, do_filter: bool,
               type_name: str, params: dict) -> np.ndarray:
    """Hampel (optional) then the chosen filter (optional). xyz: (F, M, 3) -> (F, M, 3)."""
    out = hampel(xyz) if reject_outliers else np.asarray(xyz, dtype=float)
    if do_filter:
        out = filter_array(out, rate, type_name, **params)
    return out


def describe(cfg) -> str:
    """One line saying what was applied (as Pose2Sim's recap)."""
    parts = ["Hampel outlier rejection (window 7, 2 sigma)" if cfg.reject_outliers else "no outlier rejection"]
    if cfg.filter:
        params = ", ".join(f"{k}={v}" for k, v in filter_params(cfg, cfg.type).items())
        parts.append(f"{cfg.type} filter ({params})")
    else:
        parts.append("no filter")
    return "; ".join(parts)


def filter_file(trc_path: Path, cfg, frame_range) -> tuple[Path, Trc, Trc]:
    """Filter one TRC file as ``cfg`` (FilteringConfig) says; write it; return (output, raw, filtered)."""
    raw = select_frames(read_trc(trc_path), frame_range)
    if raw.n_frames == 0:
        raise OpenKinError("TRC file has no frames", path=trc_path, fix="run triangulation again")
    type_name = cfg.type if cfg.filter else "hampel"
    params = filter_params(cfg, cfg.type) if cfg.filter else {}
    xyz = filter_xyz(raw.xyz, raw.rate, reject_outliers=cfg.reject_outliers, do_filter=cfg.filter,
                     type_name=cfg.type, params=params)
    filtered = Trc(raw.marker_names, raw.rate, xyz, raw.frame_numbers, raw.times)
    out = output_path(trc_path, raw.frame_numbers, type_name)
    write_trc(out, filtered)
    if cfg.make_c3d:
        write_c3d(out.with_suffix(".c3d"), filtered)
    return out, raw, filtered


def _inputs(ctx: RunContext) -> list[tuple[Path, str]]:
    """(TRC, producing stage) to filter: triangulation's current TRC files, else the folder's."""
    found = ctx.current_files(("triangulation",), "trc")
    if found is None:
        log.info("no run record of triangulation: filtering the unfiltered TRC files of %s", ctx.paths.pose_3d.name)
        return [(p, "") for p in input_files(ctx.paths.pose_3d)]
    return [(p, found[1]) for p in found[0]]


def run(ctx: RunContext) -> None:
    """Filter every current triangulated TRC of the trial (see module doc)."""
    config, paths, progress = ctx.config, ctx.paths, ctx.progress
    cfg = config.filtering
    files = _inputs(ctx)
    if not files:
        raise OpenKinError("no current triangulated .trc file to filter", path=paths.pose_3d,
                           fix="run the triangulation stage first (it writes pose-3d/<trial>_<first>-<last>.trc)")
    ctx.summary.update(method=describe(cfg), files=[])
    if not cfg.filter and not cfg.reject_outliers:
        log.warning("[filtering] filter and reject_outliers are both false: nothing done")
        return
    if cfg.display_figures:
        log.info("display_figures is ignored: OpenKin never opens windows (save_filt_plots writes PNGs)")
    log.info("filtering: %s", describe(cfg))
    for i, (trc_path, producer) in enumerate(files):
        report(progress, i / len(files), trc_path.name)
        t0 = time.perf_counter()
        ctx.read(trc_path, producer)
        out, raw, filtered = filter_file(trc_path, cfg, config.project.frame_range)
        ctx.wrote(out, "trc", person=i)
        if cfg.make_c3d:
            ctx.wrote(out.with_suffix(".c3d"), "c3d", person=i)
        log.info("%s -> %s (%d frames x %d markers, %.1f ms)", trc_path.name, out.name, raw.n_frames,
                 len(raw.marker_names), 1000 * (time.perf_counter() - t0))
        ctx.summary["files"].append({"input": trc_path.name, "output": out.name, "frames": int(raw.n_frames),
                                     "markers": len(raw.marker_names)})
        if cfg.save_filt_plots:
            png = save_plot(raw, filtered, paths.pose_3d / "plots" / f"{out.stem}.png", title=out.stem)
            if png is not None:
                ctx.wrote(png, "plot")
    report(progress, 1.0, "filtered")


def run_stage(config, paths, progress=None) -> None:
    """The stage run by itself (recorded in the run manifest like a stage of ``openkin run``)."""
    run_alone("filtering", run, config, paths, progress)


def save_plot(raw: Trc, filtered: Trc, png: Path, title: str = "") -> Path | None:
    """One PNG: a panel per marker, X/Y/Z raw (thin) vs filtered (thick) over time.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no window, no
    global state). Returns None, with a warning, if matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: no filtering plot (pip install matplotlib)")
        return None
    m = len(raw.marker_names)
    cols = min(4, m)
    rows = -(-m // cols)
    fig = Figure(figsize=(4.0 * cols, 2.0 * rows + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    colours = ("tab:red", "tab:green", "tab:blue")
    for k, ax in enumerate(axes.ravel()):
        if k >= m:
            ax.set_visible(False)
            continue
        for d, c in enumerate(colours):
            ax.plot(raw.times, raw.xyz[:, k, d], color=c, lw=0.6, alpha=0.45)
            ax.plot(filtered.times, filtered.xyz[:, k, d], color=c, lw=1.2, label="XYZ"[d])
        ax.set_title(raw.marker_names[k], fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)", fontsize=8)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.5 / fig.get_figheight(), top=1 - 0.75 / fig.get_figheight(),
                        wspace=0.18, hspace=0.35)
    fig.suptitle(f"{title}: raw (thin) vs filtered (thick), metres", fontsize=10)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    return png

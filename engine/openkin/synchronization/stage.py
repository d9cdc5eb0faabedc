"""The synchronization stage: ``pose/<cam>_json`` -> ``pose-sync/<cam>_json`` renamed by the
integer offsets, ``pose-sync/offsets.toml`` and ``pose-sync/synchronization.png``."""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..context import RunContext, run_alone
from ..errors import OpenKinError
from ..fileio import atomic_write
from ..inputs import camera_name, match_cameras, pose_folders, read_offsets, skeleton_of
from ..progress import report, scaled
from .signals import MIN_SPEED_PX, image_height, motion_level, prepare_people, prepare_tracks
from .solve import SyncResult, synchronize

log = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.3  # correlation at the peak below which an offset is not trusted
CONVENTION = ("camera c's frame k shows the same instant as reference frame k + offset_frames; "
              "pose-sync renames frame k to k + shift_frames (= round(offset_frames)); "
              "residual_frames = offset_frames - shift_frames is left for interpolation")


def search_windows(n_frames: list[int], rate: float, approx_time_maxspeed, time_range: float
                   ) -> tuple[list[tuple[int, int]], int]:
    """Per camera (start, stop) of the frames searched, and the largest lag (frames).

    'auto': whole sequences, lags up to half the shortest. A list of times (s, one
    per camera or one for all): +- ``time_range`` s around each, lags up to the range.
    """
    if isinstance(approx_time_maxspeed, str):
        return [(0, f) for f in n_frames], max(1, min(n_frames) // 2)
    times = list(approx_time_maxspeed)
    if len(times) == 1:
        times = times * len(n_frames)
    if len(times) != len(n_frames):
        raise OpenKinError(f"approx_time_maxspeed has {len(times)} times for {len(n_frames)} cameras",
                           fix="give one time (s) per camera in [synchronization] approx_time_maxspeed, or 'auto'")
    half = int(round(time_range * rate))
    windows = []
    for t, f in zip(times, n_frames):
        centre = int(round(t * rate))
        start, stop = max(0, centre - half), min(f, centre + half)
        if stop - start < 10:
            raise OpenKinError(f"approx_time_maxspeed {t} s is outside the {f / rate:.1f} s recorded",
                               fix="give times within the recording, or 'auto'")
        windows.append((start, stop))
    return windows, max(1, half)


def clip_to_frame_range(windows: list[tuple[int, int]], firsts: list[int], frame_range) -> list[tuple[int, int]]:
    """Search windows (row indices of each camera) kept within ``[project] frame_range``
    (frame numbers ``[start, stop)``; 'auto'/'all' keep everything)."""
    if isinstance(frame_range, str) or not frame_range:
        return windows
    start, stop = int(frame_range[0]), int(frame_range[1])
    out = [(max(a, start - f), min(b, stop - f)) for (a, b), f in zip(windows, firsts)]
    if any(b - a < 10 for a, b in out):
        raise OpenKinError(f"frame_range {list(frame_range)} leaves fewer than 10 frames to synchronise on",
                           fix="widen [project] frame_range, or set it to 'auto'")
    return out


def keypoint_ids(names: list[str], keypoints_to_consider) -> list[int]:
    """Indices of the keypoints to use: 'all', 'right', 'left' or a list of names (Pose2Sim's values)."""
    if isinstance(keypoints_to_consider, str):
        which = keypoints_to_consider.lower()
        if which == "all":
            return list(range(len(names)))
        if which in ("right", "left"):
            prefix = which[0].upper()
            ids = [i for i, n in enumerate(names) if n.startswith(prefix) or n.lower().startswith(which)]
            if ids:
                return ids
        raise OpenKinError(f"keypoints_to_consider = {keypoints_to_consider!r} selects no keypoint",
                           fix="use 'all', 'right', 'left' or a list of keypoint names")
    unknown = [k for k in keypoints_to_consider if k not in names]
    if unknown or not keypoints_to_consider:
        raise OpenKinError(f"keypoints_to_consider: {unknown or 'empty list'} not in the pose model's keypoints",
                           fix=f"choose among: {', '.join(names)}")
    return [names.index(k) for k in keypoints_to_consider]


def dense_frames(keypoints: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, int]:
    """Put per-file keypoints (F, P, K, 3) on consecutive frames from the first; missing files NaN.
    Returns (keypoints (F', P, K, 3), first frame number)."""
    first = int(frames[0])
    out = np.full((int(frames[-1]) - first + 1,) + keypoints.shape[1:], np.nan)
    out[frames - first] = keypoints
    return out, first


def shifted_name(name: str, shift: int) -> str | None:
    """``cam01_000012.json`` shifted by 3 -> ``cam01_000015.json``; None if the frame becomes negative."""
    match = re.search(r"(\d+)(?!.*\d)", name)
    if match is None:
        return None
    frame = int(match.group(1)) + shift
    if frame < 0:
        return None
    digits = max(6, len(match.group(1)))
    return f"{name[:match.start(1)]}{frame:0{digits}d}{name[match.end(1):]}"


def write_shifted(src: Path, dst: Path, shift: int) -> int:
    """Copy the JSON files of ``src`` into ``dst`` with frame numbers + ``shift``; returns files written.

    Written into a temporary folder beside ``dst`` first; an earlier ``dst`` is
    replaced only once the new one is complete.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        count = 0
        source, target = str(src), str(tmp)  # plain strings: 288,000 files in a 10-minute 8-camera take
        for name in sorted(e.name for e in os.scandir(source) if e.name.endswith(".json")):
            new = shifted_name(name, shift)
            if new is not None:
                _link_or_copy(os.path.join(source, name), os.path.join(target, new))
                count += 1
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dst, old)
        os.replace(tmp, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return count
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Hard link (instant, no space; the pose stage replaces files, never edits them) or copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _seed_cache(src: Path, dst: Path, shift: int) -> None:
    """The keypoint cache of ``dst`` (written by :func:`write_shifted`) from ``src``'s, so that
    recording and reading ``pose-sync/`` does not parse every file again."""
    from ..keypoint_cache import derive_renamed

    def rename(name: str):
        new = shifted_name(name, shift) if name.endswith(".json") else None
        return None if new is None else (new, shift)

    derive_renamed(src, dst, rename)


def offsets_table(names: list[str], result: SyncResult, shifts: np.ndarray, rate: float) -> dict:
    """The content of ``pose-sync/offsets.toml``."""
    cams = {}
    for c, name in enumerate(names):
        off = float(result.offsets[c]) if np.isfinite(result.offsets[c]) else 0.0
        cams[name] = {"offset_frames": round(off, 4), "shift_frames": int(shifts[c]),
                      "residual_frames": round(off - int(shifts[c]), 4), "offset_seconds": round(off / rate, 6),
                      "confidence": round(float(result.confidence[c]), 4),
                      "motion_px_per_frame": round(float(result.motion[c]), 3),
                      "synchronized": bool(np.isfinite(result.offsets[c]))}
    table = {"convention": CONVENTION, "method": result.method, "reference": names[result.reference],
             "frame_rate": float(rate), "cameras": cams}
    if result.rig_test is not None:  # small offsets tested against "the rig is in sync"
        table["in_sync_test"] = dict(result.rig_test)
    return table


def _warn(names: list[str], result: SyncResult) -> None:
    for c, name in enumerate(names):
        if result.motion[c] < MIN_SPEED_PX:
            log.warning("synchronization: camera %s sees too little motion (%.2f px/frame) to find its offset; "
                        "record a clear movement (a jump, a clap, walking) or set approx_time_maxspeed",
                        name, result.motion[c])
        elif not np.isfinite(result.offsets[c]):
            log.warning("synchronization: camera %s could not be synchronised (no usable overlap with the "
                        "others): left unshifted", name)
        elif c != result.reference and result.confidence[c] < MIN_CONFIDENCE:
            log.warning("synchronization: low confidence %.2f for camera %s (offset %.2f frames): the motion gives "
                        "too little signal; check the offset or set approx_time_maxspeed around a clear movement",
                        result.confidence[c], name, result.offsets[c])


def _calibrated_cameras(ctx: RunContext, folders: list[Path], method: str):
    """Calibrated cameras matching ``folders`` for the epipolar method, or None (correlation)."""
    if method == "correlation":
        return None
    from ..formats.calibration import read_calibration

    try:
        calib = ctx.calibration
        cameras = match_cameras(folders, read_calibration(calib, units=ctx.config.calibration.units), calib)
        ctx.read(calib, "calibration")
        return cameras
    except OpenKinError as exc:
        if method == "epipolar":
            raise
        log.info("synchronization: no usable calibration (%s): correlating vertical speeds instead",
                 exc.problem)
        return None


def _read_cameras(folders: list[Path], n_keypoints: int, progress) -> list[tuple[np.ndarray, int]]:
    """(keypoints (F, P, K, 3) on consecutive frames, first frame number) per camera folder."""
    from ..formats.openpose import list_json
    from ..keypoint_cache import read_folder

    out = []
    for i, folder in enumerate(folders):
        if not list_json(folder)[0]:  # not "nobody seen" (files with no people): no files at all
            raise OpenKinError("this camera's pose folder holds no JSON file (the pose stage did not finish "
                               "for it, or its files were removed)", path=folder,
                               fix="run the pose stage again, or remove the folder to process the other "
                                   "cameras without this one")
        pf = read_folder(folder)  # the columnar cache the manifest's hash of the folder has just filled
        kp, frames = pf.keypoints, pf.frames
        if not np.isfinite(kp).any():  # nobody detected: an all-NaN camera of the right shape
            kp = np.full((len(frames), 1, n_keypoints, 3), np.nan)
        if kp.shape[2] != n_keypoints:
            raise OpenKinError(f"{kp.shape[2]} keypoints per person, but the pose model has {n_keypoints}",
                               path=folder, fix="set [pose] pose_model to the model that made these files")
        out.append(dense_frames(kp, frames))
        report(progress, 0.4 * (i + 1) / len(folders), f"read {folder.name}")
    return out


def run_stage(config, paths, progress=None) -> None:
    """The stage run by itself (recorded in the run manifest like a stage of ``openkin run``)."""
    run_alone("synchronization", run, config, paths, progress)


def run(ctx: RunContext) -> None:
    """Find each camera's offset from the current ``pose/<cam>_json`` and write ``pose-sync/`` (see module doc)."""
    config, paths, progress = ctx.config, ctx.paths, ctx.progress
    cfg = config.synchronization
    if cfg.synchronization_gui or cfg.display_sync_plots:
        log.info("synchronization_gui / display_sync_plots are ignored: OpenKin never opens windows")
    source = ctx.pose_source(("pose",))
    folders = pose_folders(source[0]) if source else []
    if not folders:
        raise OpenKinError("no current <cam>_json folders to synchronise", path=paths.pose,
                           fix="run the pose stage first (it writes pose/<cam>_json/*.json)")
    for folder in folders:
        ctx.read(folder, "pose")
    names = [camera_name(f) for f in folders]
    rate = ctx.frame_rate
    skeleton = skeleton_of(config)
    ids = keypoint_ids(list(skeleton.names), cfg.keypoints_to_consider)
    per_cam = _read_cameras(folders, len(skeleton.names), progress)
    windows, max_lag = search_windows([len(kp) for kp, _ in per_cam], rate, cfg.approx_time_maxspeed,
                                      cfg.time_range_around_maxspeed)
    windows = clip_to_frame_range(windows, [first for _, first in per_cam], config.project.frame_range)
    tracks = [prepare_tracks(kp[a:b], ids, rate, likelihood_threshold=cfg.likelihood_threshold_synchronization,
                             cutoff=cfg.filter_cutoff, order=cfg.filter_order)
              for (kp, _), (a, b) in zip(per_cam, windows)]
    starts = [first + a for (_, first), (a, _) in zip(per_cam, windows)]
    # Pose2Sim's reference: the camera with the fewest frames (among those that saw someone)
    seen = [np.isfinite(t).any() for t in tracks]
    reference = int(np.argmin([len(kp) if ok else np.inf for (kp, _), ok in zip(per_cam, seen)]))
    report(progress, 0.45, "measuring offsets")
    if len(folders) == 1:
        log.warning("synchronization: only one camera (%s): nothing to synchronise, copied as is", names[0])
        result = SyncResult(np.zeros(1), np.ones(1), *(np.full((1, 1), np.nan) for _ in range(3)),
                            np.ones((1, 1), bool), np.array([motion_level(tracks[0])]), 0, {}, "none")
    else:
        cameras = _calibrated_cameras(ctx, folders, cfg.sync_method)
        heights = None if cameras else [
            image_height(kp[a:b], cfg.likelihood_threshold_synchronization) for (kp, _), (a, b) in zip(per_cam, windows)]
        people = None
        if cameras and max(kp.shape[1] for kp, _ in per_cam) > 1:  # several people: match them per frame
            people = [prepare_people(kp[a:b], ids, cfg.likelihood_threshold_synchronization)
                      for (kp, _), (a, b) in zip(per_cam, windows)]
        result = synchronize(tracks, starts, max_lag, reference, cameras, heights, rate, people, scaled(progress, 0.45, 0.9))
    _warn(names, result)
    table = write_outputs(paths, folders, names, result, rate, progress)
    for folder in folders:
        ctx.wrote(paths.pose_sync / folder.name, "camera")
    ctx.wrote(paths.pose_sync / "offsets.toml", "offsets")
    ctx.summary.update(table)
    if cfg.save_sync_plots and len(folders) > 1:
        png = save_plot(paths.pose_sync / "synchronization.png", names, result)
        if png is not None:
            ctx.wrote(png, "plot")


def write_outputs(paths, folders: list[Path], names: list[str], result: SyncResult, rate: float,
                  progress=None) -> dict:
    """``pose-sync/<cam>_json`` renamed by the integer shifts, and ``pose-sync/offsets.toml``
    (its content is returned)."""
    from ..fileio import toml_dumps

    offsets = np.where(np.isfinite(result.offsets), result.offsets, 0.0)
    shifts = np.rint(offsets).astype(int)
    for c, (folder, name) in enumerate(zip(folders, names)):
        n = write_shifted(folder, paths.pose_sync / folder.name, int(shifts[c]))
        _seed_cache(folder, paths.pose_sync / folder.name, int(shifts[c]))
        log.info("camera %s: offset %+.2f frames (%+.4f s), shifted %+d, confidence %.2f, %d files",
                 name, offsets[c], offsets[c] / rate, shifts[c], result.confidence[c], n)
        report(progress, 0.5 + 0.5 * (c + 1) / len(folders), f"wrote {folder.name}")
    table = offsets_table(names, result, shifts, rate)
    with atomic_write(paths.pose_sync / "offsets.toml") as f:
        f.write("# Written by openkin synchronization.\n" + toml_dumps(table))
    return table


def save_plot(png: Path, names: list[str], result: SyncResult) -> Path | None:
    """Score (epipolar) or correlation curves of each camera pair against lag, offsets marked."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: no synchronization plot (pip install matplotlib)")
        return None
    from ..fileio import atomic_path

    fig = Figure(figsize=(9, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    shown = sorted(result.curves.items(), key=lambda item: result.reference not in item[0])[:10]
    for (i, j), (lags, curve) in shown:  # pairs with the reference first, at most 10 curves
        line, = ax.plot(lags, curve, lw=1, label=f"{names[j]} vs {names[i]}")
        if np.isfinite(result.pair_offsets[i, j]):
            ax.axvline(result.pair_offsets[i, j], color=line.get_color(), ls="--", lw=0.8)
    ax.set_xlabel("offset (frames)")
    ax.set_ylabel("epipolar score" if result.method == "epipolar" else "Pearson r")
    found = ", ".join(f"{n} {o:+.2f}" for n, o in zip(names, result.offsets))
    ax.set_title(f"synchronization ({result.method}): {found}", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    return png

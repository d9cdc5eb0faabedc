"""The report of a processed project: ``openkin/report.html`` and ``report.md`` with PNG plots.

The report renders the run manifest (:mod:`openkin.manifest`): each stage's record says
what it read, wrote and measured, and the report shows those figures and those files, never
a guess from the folders' contents. A stage whose record is not current (it failed, or an
earlier stage ran again after it) is shown as not run, without figures:

- overview: the last run, and each stage's state (done in this run, done in an earlier
  run, failed, not run);
- calibration: the cameras of the calibration the run used, and a top view of them;
- 2D detections: one frame of each camera with the keypoints of the pose stage's folders;
- synchronization, calibration refinement: the figures of their records;
- 3D keypoints: the trajectories of the TRC file filtering (else triangulation) wrote;
- joint angles: the ``.mot`` file the kinematics stage wrote, and its marker errors;
- reprojection error per camera and keypoint, as the triangulation stage measured it;
- time spent in each stage of the run.

Plots use matplotlib's object API (no pyplot, no display): without matplotlib
the report is written with its tables and a note instead of the plots.
"""
from __future__ import annotations

import contextlib
import html
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import OpenKinError
from .fileio import atomic_path, atomic_write, read_optional_toml
from .manifest import STAGE_ORDER, Manifest
from .project import ProjectPaths

log = logging.getLogger(__name__)

PLOTS_DIR = "report"
# Keypoints whose trajectories are plotted (the first ones present).
TRAJECTORY_KEYPOINTS = ("Hip", "Neck", "RWrist", "LWrist", "RKnee", "LKnee", "RAnkle", "LAnkle",
                        "RHeel", "LHeel", "RBigToe", "LBigToe")
# Coordinates of the OpenSim models that are plotted, in this order, when present
# (``<name>_r`` and ``<name>_l`` share a panel).
ANGLE_COORDINATES = ("pelvis_tilt", "pelvis_list", "pelvis_rotation", "hip_flexion", "hip_adduction",
                     "hip_rotation", "knee_angle", "ankle_angle", "lumbar_extension", "lumbar_bending",
                     "arm_flex", "arm_add", "elbow_flex")
REPROJECTION_GOAL_PX = 10.0


# =========================================================================== content model
@dataclass
class Section:
    """A titled part of the report: paragraphs, tables and images, in order."""

    title: str
    items: list[tuple] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)  # key figures, repeated in the Summary section

    def text(self, s: str) -> None:
        self.items.append(("p", s))

    def note(self, s: str) -> None:
        self.items.append(("note", s))

    def table(self, header: list[str], rows: list[list]) -> None:
        self.items.append(("table", header, rows))

    def image(self, relpath: str, caption: str) -> None:
        self.items.append(("img", relpath, caption))


@contextlib.contextmanager
def _quiet():
    """Silence numpy's warnings for all-NaN slices (a keypoint never seen: NaN is the answer)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for item in s.items:
            if item[0] == "p":
                out += [item[1], ""]
            elif item[0] == "note":
                out += [f"> {item[1]}", ""]
            elif item[0] == "table":
                out += ["| " + " | ".join(item[1]) + " |", "|" + "---|" * len(item[1])]
                out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in item[2]] + [""]
            elif item[0] == "img":
                out += [f"![{item[2]}]({item[1]})", "", f"*{item[2]}*", ""]
    return "\n".join(out)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:.25em .6em;"
        "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%;border:1px solid #eee}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}"
        ".note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em}")


def _html(title: str, sections: list[Section]) -> str:
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
           f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"]
    for s in sections:
        out.append(f"<h2>{e(s.title)}</h2>")
        for item in s.items:
            if item[0] == "p":
                out.append(f"<p>{e(item[1])}</p>")
            elif item[0] == "note":
                out.append(f"<p class='note'>{e(item[1])}</p>")
            elif item[0] == "table":
                head = "".join(f"<th>{e(h)}</th>" for h in item[1])
                body = "".join("<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in row) + "</tr>" for row in item[2])
                out.append(f"<table><tr>{head}</tr>{body}</table>")
            elif item[0] == "img":
                out.append(f"<figure><img src='{e(item[1])}' alt='{e(item[2])}'>"
                           f"<figcaption>{e(item[2])}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


# =========================================================================== plotting helpers
def _figure(width: float, height: float):
    """A matplotlib Figure (Agg canvas, no pyplot), or None without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, out_dir: Path, name: str) -> str:
    """Save ``fig`` as ``out_dir/report/<name>.png`` atomically; return its path relative to out_dir."""
    rel = f"{PLOTS_DIR}/{name}.png"
    with atomic_path(out_dir / rel) as tmp:
        fig.savefig(tmp, format="png")
    return rel


def _no_plot(section: Section) -> None:
    section.note("matplotlib is not installed: plots skipped (pip install matplotlib).")


# =========================================================================== timings
def _run_timings(manifest: Manifest) -> tuple[dict[str, float], dict[str, str]]:
    """Seconds of the stages done in the last run, and the messages of those that failed in it."""
    run_id = manifest.run.get("id")
    timings, failures = {}, {}
    for name in STAGE_ORDER:
        rec = manifest.record(name) or {}
        if rec.get("run") != run_id:
            continue
        if rec.get("status") == "done":
            timings[name] = float(rec.get("seconds", float("nan")))
        elif rec.get("status") == "failed":
            failures[name] = str(rec.get("error", ""))
    return timings, failures


def _section_timings(manifest: Manifest, out_dir: Path) -> Section:
    s = Section("Time per stage")
    timings, failures = _run_timings(manifest)
    if not timings and not failures:
        s.note("No stage ran in the last run (run the stages with `openkin run` or `openkin demo`).")
        return s
    rows = [[name, secs, "done"] for name, secs in timings.items()]
    rows += [[name, float("nan"), f"failed: {msg}"] for name, msg in failures.items()]
    rows.append(["total", float(sum(timings.values())), ""])
    s.summary.append("Wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
                     + f"; total {sum(timings.values()):.1f} s.")
    s.summary += [f"Stage {k} failed: {v}" for k, v in failures.items()]
    s.table(["stage", "seconds", "status"], rows)
    fig = _figure(7, 0.45 * len(timings) + 1.2)
    if fig is None:
        _no_plot(s)
        return s
    if timings:
        ax = fig.add_subplot()
        names = list(timings)[::-1]
        ax.barh(names, [timings[n] for n in names], color="#4878a8")
        for y, n in enumerate(names):
            ax.text(timings[n], y, f" {timings[n]:.1f} s", va="center", fontsize=9)
        ax.set_xlabel("wall time (s)")
        ax.set_xlim(0, max(timings.values()) * 1.2 + 1e-6)
        s.image(_save(fig, out_dir, "timings"), "Wall time of each stage on this machine.")
    return s


# =========================================================================== calibration
def _calibration_used(manifest: Manifest) -> Path | None:
    """The calibration the run used: the refinement's record names it, else the calibration stage's output."""
    used = (manifest.done("refinement") or {}).get("summary", {}).get("calibration_used")
    if used:
        return manifest.root / used
    files = manifest.outputs("calibration", "calibration")
    return files[0] if files else None


def _section_calibration(paths: ProjectPaths, manifest: Manifest, out_dir: Path) -> tuple[Section, list]:
    """Camera table and top view; returns the cameras too (or [] when there is no calibration)."""
    from .formats.calibration import read_calibration

    s = Section("Calibration")
    path = _calibration_used(manifest)
    if path is None:
        s.note("No calibration recorded (the calibration stage has not run, or failed).")
        return s, []
    try:
        cameras = read_calibration(path)
    except OpenKinError as e:
        s.note(f"No calibration to show: {e.problem}.")
        return s, []
    record = _read_toml(paths.reports / "calibration.toml")  # the calibration stage's own record
    intr = record.get("intrinsics", {})
    extr = record.get("extrinsics", {}).get("cameras", {})
    s.text(f"{len(cameras)} cameras from {path.name}.")
    rows = [[c.name, f"{c.width}×{c.height}", float(c.matrix[0, 0]), *(float(v) for v in c.center),
             intr.get(c.name, {}).get("rms_px", float("nan")), extr.get(c.name, {}).get("rms_px", float("nan"))]
            for c in cameras]
    header = ["camera", "size px", "focal px", "x m", "y m", "z m", "intrinsics RMS px", "extrinsics RMS px"]
    keep = [j for j in range(len(header)) if j < 6 or any(np.isfinite(r[j]) for r in rows)]
    s.table([header[j] for j in keep], [[r[j] for j in keep] for r in rows])
    fig = _figure(5, 5)
    if fig is None:
        _no_plot(s)
        return s, cameras
    ax = fig.add_subplot()
    for c in cameras:
        centre, forward = c.center, c.R[2]  # optical axis in world
        ax.plot(*centre[:2], "o", color="#c44e52")
        horizontal = forward[:2] / max(np.linalg.norm(forward[:2]), 1e-9)
        ax.annotate("", xy=centre[:2] + 0.8 * horizontal, xytext=centre[:2],
                    arrowprops={"arrowstyle": "->", "color": "#c44e52"})
        ax.text(*centre[:2], f" {c.name}", fontsize=9)
    ax.plot(0, 0, "k+", markersize=12)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("cameras seen from above (arrows: viewing direction)")
    ax.grid(alpha=0.3)
    s.image(_save(fig, out_dir, "cameras"), "Camera positions and viewing directions, world origin at +.")
    for rel in record.get("check_images", []):   # a calibration from keypoints: detections vs reprojections
        png = paths.calibration / rel
        if png.is_file():
            s.image(Path("..", png.relative_to(paths.root)).as_posix(),
                    f"{png.stem.removesuffix('_keypoints')}: the person's 2D keypoints (green circles) and their "
                    "reprojections through the calibration (red crosses).")
    return s, cameras


def _read_toml(path: Path) -> dict:
    return read_optional_toml(path, unreadable="left out of the report")


# =========================================================================== 2D detections
def _skeleton_of(paths: ProjectPaths, n_keypoints: int):
    """The keypoint set of the pose outputs (from the pose stage's summary, else by count), or None."""
    from .skeletons import SKELETONS

    summary = paths.reports / "pose_summary.json"
    if summary.is_file():
        try:
            name = json.loads(summary.read_text(encoding="utf-8")).get("keypoints")
            if name in SKELETONS and len(SKELETONS[name].names) == n_keypoints:
                return SKELETONS[name]
        except (json.JSONDecodeError, AttributeError):
            pass
    return next((s for s in SKELETONS.values() if len(s.names) == n_keypoints), None)


def _video_frame(paths: ProjectPaths, cam: str, frame: int) -> np.ndarray | None:
    """(H, W, 3) RGB frame ``frame`` of camera ``cam``'s video (or image folder), or None."""
    import cv2

    videos = [p for p in sorted(paths.videos.glob(f"{cam}*")) if p.is_file()] if paths.videos.is_dir() else []
    for video in videos:
        cap = cv2.VideoCapture(str(video))
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
            ok, img = cap.read()
        finally:
            cap.release()
        if ok:
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    folder = paths.videos / cam
    images = sorted(folder.iterdir()) if folder.is_dir() else []
    if 0 <= frame < len(images):
        img = cv2.imread(str(images[frame]))
        if img is not None:
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return None


def _detections(manifest: Manifest) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Camera name -> (keypoints (F, P, K, 3), frame numbers (F,)) of the pose stage's folders."""
    from .formats.openpose import read_openpose_dir

    out = {}
    for folder in manifest.outputs("pose", "camera") or []:
        try:
            keypoints, frames, _ = read_openpose_dir(folder)
        except OpenKinError as e:
            log.warning("report: %s", e)
            continue
        out[folder.name[: -len("_json")]] = (keypoints, frames)
    return out


def _section_detections(paths: ProjectPaths, manifest: Manifest, out_dir: Path) -> tuple[Section, dict]:
    s = Section("2D detections")
    dets = _detections(manifest)
    if not dets:
        s.note("No 2D poses recorded (the pose stage has not run, or failed).")
        return s, {}
    rows = []
    for cam, (kp, frames) in dets.items():
        found = np.isfinite(kp[..., 2]).any(axis=-1).any(axis=-1) if kp.shape[1] else np.zeros(len(frames), bool)
        conf = np.nanmean(kp[..., 2]) if np.isfinite(kp[..., 2]).any() else float("nan")
        rows.append([cam, len(frames), 100.0 * found.mean(), float(conf), kp.shape[1]])
    s.table(["camera", "frames", "person found %", "mean confidence", "max people"], rows)
    s.summary.append("Person found in " + ", ".join(f"{r[0]} {r[2]:.0f}%" for r in rows) + " of the frames.")
    fig = _figure(3.2 * len(dets), 5.6)
    if fig is None:
        _no_plot(s)
        return s, dets
    frame = _common_frame(dets)
    for k, (cam, (kp, frames)) in enumerate(dets.items()):
        _draw_camera(fig.add_subplot(1, len(dets), k + 1), paths, cam, kp, frames, frame)
    s.image(_save(fig, out_dir, "detections"), f"2D keypoints on frame {frame} of each camera "
                                               "(colour: confidence, lines: skeleton).")
    return s, dets


def _common_frame(dets: dict) -> int:
    """A frame number where most cameras see someone (the middle of those frames)."""
    counts: dict[int, int] = {}
    for kp, frames in dets.values():
        seen = np.isfinite(kp[..., 2]).any(axis=(1, 2)) if kp.shape[1] else np.zeros(len(frames), bool)
        for f in frames[seen]:
            counts[int(f)] = counts.get(int(f), 0) + 1
    if not counts:
        return int(next(iter(dets.values()))[1][0])
    best = max(counts.values())
    good = sorted(f for f, c in counts.items() if c == best)
    return good[len(good) // 2]


def _draw_camera(ax, paths: ProjectPaths, cam: str, kp: np.ndarray, frames: np.ndarray, frame: int) -> None:
    idx = np.flatnonzero(frames == frame)
    img = _video_frame(paths, cam, frame)
    if img is not None:
        ax.imshow(img)
    else:
        ax.invert_yaxis()
        ax.set_aspect("equal")
    ax.set_title(f"{cam}, frame {frame}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if not len(idx):
        return
    people = kp[idx[0]]  # (P, K, 3)
    skeleton = _skeleton_of(paths, kp.shape[2])
    for person in people:
        if not np.isfinite(person[:, 2]).any():
            continue
        if skeleton is not None:
            for a, b in skeleton.bones:
                if np.isfinite(person[[a, b], :2]).all():
                    ax.plot(person[[a, b], 0], person[[a, b], 1], "-", color="white", lw=1.2, alpha=0.8)
        ax.scatter(person[:, 0], person[:, 1], c=person[:, 2], cmap="viridis", vmin=0, vmax=1, s=9, zorder=3)


# =========================================================================== synchronization
def _section_sync(paths: ProjectPaths, manifest: Manifest) -> Section:
    s = Section("Synchronization")
    offsets = (manifest.done("synchronization") or {}).get("summary", {})
    cams = offsets.get("cameras", {})
    if not cams:
        s.note(_not_run(manifest, "synchronization", "No time offsets"))
        return s
    rate = offsets.get("frame_rate")
    s.text(f"Offsets relative to {offsets.get('reference', 'the reference camera')} "
           f"(method: {offsets.get('method', '?')}" + (f", {rate:g} fps)." if rate else ")."))
    s.table(["camera", "offset frames", "offset ms", "confidence", "synchronized"],
            [[c, float(v.get("offset_frames", float("nan"))), 1e3 * float(v.get("offset_seconds", float("nan"))),
              float(v.get("confidence", float("nan"))), "yes" if v.get("synchronized") else "no"]
             for c, v in cams.items()])
    s.summary.append("Time offsets: " + ", ".join(f"{c} {float(v.get('offset_frames', float('nan'))):+.2f}"
                                                  for c, v in cams.items()) + " frames.")
    for png in manifest.outputs("synchronization", "plot") or []:
        s.image(Path("..", png.relative_to(paths.root)).as_posix(), f"{png.name}, from the synchronization stage.")
    return s


def _section_refinement(manifest: Manifest) -> Section:
    """Camera extrinsics refined from the keypoints (the refinement stage's record)."""
    s = Section("Calibration refinement")
    doc = (manifest.done("refinement") or {}).get("summary", {})
    if not doc:
        s.note(_not_run(manifest, "refinement", "No refinement"))
        return s
    if "cameras" not in doc:
        s.text(f"Refinement not applied: {doc.get('reason', 'no reason recorded')}.")
        return s
    before, after = doc.get("reprojection_before_px", float("nan")), doc.get("reprojection_after_px", float("nan"))
    if doc.get("accepted"):
        s.text(f"Extrinsics refined from {doc.get('points_used', 0)} keypoint observations on "
               f"{doc.get('frames_used', 0)} frames: mean reprojection {before:.2f} → {after:.2f} px; "
               f"{doc.get('refined_calibration')} is used from triangulation on, {doc.get('source_calibration')} is kept.")
        s.summary.append(f"Calibration refined from the keypoints: reprojection {before:.2f} → {after:.2f} px.")
    else:
        s.text(f"Refinement not applied: {doc.get('reason', 'no reason recorded')}.")
    s.table(["camera", "moved mm", "turned °", "before px", "after px", "observations"],
            [[c, float(v.get("moved_mm", float("nan"))), float(v.get("turned_deg", float("nan"))),
              float(v.get("reprojection_before_px", float("nan"))), float(v.get("reprojection_after_px", float("nan"))),
              int(v.get("observations", 0))] for c, v in doc.get("cameras", {}).items()])
    return s


# =========================================================================== 3D keypoints
def _current_trc(manifest: Manifest) -> tuple[Path | None, list[Path]]:
    """The TRC shown (filtering's first, else triangulation's) and every person's TRC of that stage."""
    for stage in ("filtering", "triangulation"):
        files = manifest.outputs(stage, "trc")
        if files:
            return files[0], files
    return None, []


def _section_trajectories(manifest: Manifest, out_dir: Path) -> Section:
    from .formats.trc import read_trc

    s = Section("3D keypoints")
    path, people = _current_trc(manifest)
    if path is None:
        s.note(_not_run(manifest, "triangulation", "No 3D keypoints"))
        return s
    try:
        trc = read_trc(path)
    except OpenKinError as e:
        s.note(f"Cannot read {path.name}: {e.problem}")
        return s
    if len(people) > 1:
        s.text(f"{len(people)} people were reconstructed ({', '.join(p.name for p in people)}); shown: {path.name}.")
    valid = np.isfinite(trc.xyz).all(axis=-1)  # (F, M)
    s.text(f"{path.name}: {len(trc.marker_names)} keypoints, {trc.xyz.shape[0]} frames at {trc.rate:g} Hz; "
           f"{100 * valid.all(axis=1).mean():.1f}% of frames have every keypoint, "
           f"{100 * valid.mean():.1f}% of keypoint-frames are present.")
    s.summary.append(f"3D keypoints: {100 * valid.mean():.1f}% of keypoint-frames reconstructed ({path.name}).")
    names = [n for n in TRAJECTORY_KEYPOINTS if n in trc.marker_names][:6] or trc.marker_names[:6]
    fig = _figure(10, 7)
    if fig is None:
        _no_plot(s)
        return s
    times = trc.times if trc.times is not None else np.arange(trc.xyz.shape[0]) / trc.rate
    axes = fig.subplots(3, 1, sharex=True)
    for a, axis_name in enumerate("XYZ"):
        for n in names:
            axes[a].plot(times, trc.xyz[:, trc.marker_names.index(n), a], lw=1.2, label=n)
        axes[a].set_ylabel(f"{axis_name} (m)")
        axes[a].grid(alpha=0.3)
    axes[0].legend(ncol=min(len(names), 6), fontsize=8, loc="upper right")
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(path.name, fontsize=10)
    s.image(_save(fig, out_dir, "trajectories"), "Trajectories of a few keypoints, in the TRC file's axes.")
    _stick_figures(s, out_dir, trc)
    return s


def _stick_figures(s: Section, out_dir: Path, trc) -> None:
    """The skeleton at a few instants, seen along two horizontal axes of the (Y-up) TRC."""
    from .skeletons import SKELETONS

    skeleton = next((sk for sk in SKELETONS.values() if set(sk.names) <= set(trc.marker_names)), None)
    fig = _figure(10, 4.6)
    if skeleton is None or fig is None:
        return
    index = [trc.marker_names.index(n) for n in skeleton.names]
    xyz = trc.xyz[:, index]  # (F, K, 3)
    frames = np.flatnonzero(np.isfinite(xyz).all(axis=(1, 2)))
    if len(frames) < 2:
        return
    picks = frames[np.linspace(0, len(frames) - 1, 5).round().astype(int)]
    colours = ["#4878a8", "#6a9fb5", "#55a868", "#dd8452", "#c44e52"]
    for v, (h, title) in enumerate(((0, "X"), (2, "Z"))):
        ax = fig.add_subplot(1, 2, v + 1)
        for f, colour in zip(picks, colours):
            for a, b in skeleton.bones:
                ax.plot(xyz[f, [a, b], h], xyz[f, [a, b], 1], "-", color=colour, lw=1.5)
            ax.plot([], [], "-", color=colour, label=f"{trc.times[f] if trc.times is not None else f:.2f} s")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel(f"{title} (m)")
        ax.set_ylabel("Y (m, up)")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=8, loc="best")
    s.image(_save(fig, out_dir, "skeleton"), "The 3D keypoints at five instants, seen along Z (left) and X (right).")


# =========================================================================== joint angles
def _ik_summary(s: Section, info: dict) -> None:
    """Marker errors and scaling of one trial, from the kinematics stage's record."""
    rms, worst = info.get("marker_rms_mean_m"), info.get("marker_error_max_m")
    if rms is None:
        return
    height = info.get("height_m")
    model = Path(str(info.get("model", ""))).name
    s.text(f"Inverse kinematics with {model or 'the OpenSim model'}: marker RMS error {1e3 * rms:.1f} mm on average, "
           f"largest marker error {1e3 * (worst or float('nan')):.0f} mm"
           + (f"; participant height {height:.2f} m" if isinstance(height, float) and np.isfinite(height) else "")
           + f"; {info.get('frames', '?')} frames.")
    s.summary.append(f"Inverse kinematics: marker RMS {1e3 * rms:.1f} mm (max {1e3 * (worst or float('nan')):.0f} mm).")


def _angle_panels(names: list[str]) -> list[tuple[str, list[str]]]:
    """(title, coordinate names) per panel: known coordinates (right and left together), else the first 9."""
    panels = []
    for base in ANGLE_COORDINATES:
        cols = [n for n in (base, f"{base}_r", f"{base}_l") if n in names]
        if cols:
            panels.append((base, cols))
    return panels or [(n, [n]) for n in names[:9]]


def _section_angles(manifest: Manifest, out_dir: Path) -> Section:
    from .formats.mot import read_mot

    s = Section("Joint angles")
    mots = manifest.outputs("kinematics", "mot") or []
    if not mots:
        s.note(_not_run(manifest, "kinematics", "No joint angles"))
        return s
    path = mots[0]
    trials = (manifest.done("kinematics") or {}).get("summary", {}).get("trials", [])
    info = next((tr for tr in trials if tr.get("mot") == path.name), {})
    try:
        motion = read_mot(path)
    except OpenKinError as e:
        s.note(f"Cannot read {path.name}: {e.problem}")
        return s
    panels = _angle_panels(motion.names)
    names = [n for panel in panels for n in panel[1]]
    unit = "°" if motion.in_degrees else "rad"
    column = {n: motion.values[:, motion.names.index(n)] for n in names}
    ranges = [[n, float(np.nanmin(column[n])), float(np.nanmax(column[n]))] for n in names]
    s.text(f"{path.name}: {len(motion.names)} coordinates, {len(motion.times)} frames.")
    _ik_summary(s, info)
    s.table(["coordinate", f"min {unit}", f"max {unit}"], ranges)
    ncols = 3
    nrows = (len(panels) + ncols - 1) // ncols
    fig = _figure(11, 2.0 * nrows + 0.6)
    if fig is None:
        _no_plot(s)
        return s
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    for ax, (title, cols) in zip(axes, panels):
        for n, colour in zip(cols, ("#c44e52", "#4878a8", "#55a868")):
            side = {"_r": "right", "_l": "left"}.get(n[-2:], n)
            ax.plot(motion.times, column[n], lw=1.2, color=colour, label=side)
        ax.set_title(f"{title} ({unit})", fontsize=9)
        ax.grid(alpha=0.3)
        if len(cols) > 1:
            ax.legend(fontsize=7, loc="best")
    for k in range(len(panels), len(axes)):
        axes[k].set_visible(False)
        axes[k - ncols].xaxis.set_tick_params(labelbottom=True)
        axes[k - ncols].set_xlabel("time (s)")
    for ax in axes[len(axes) - ncols:len(panels)]:
        ax.set_xlabel("time (s)")
    s.image(_save(fig, out_dir, "angles"), f"Joint angles over time ({unit}).")
    return s


# =========================================================================== reprojection error
def _triangulation_content(s: Section, doc: dict) -> list[tuple[str, dict]]:
    """Text and tables from the triangulation stage's own report; returns (label, per-keypoint px) per person."""
    out = []
    for person in doc["persons"]:
        label = f"person {person.get('person', len(out))}"
        px, mm = person.get("reprojection_error_px"), person.get("reprojection_error_mm")
        excluded = person.get("cameras_excluded_mean")
        if px is None:
            continue
        verdict = "meets" if px < REPROJECTION_GOAL_PX else "misses"
        s.text(f"Triangulation, {label} (frames {person.get('frame_range')}): mean reprojection error {px:.2f} px "
               f"(~{mm or float('nan'):.0f} mm) over the views it kept, {excluded or 0:.2f} views excluded per point "
               f"on average; goal < {REPROJECTION_GOAL_PX:g} px: {verdict}.")
        s.summary.append(f"Triangulation reprojection error {px:.2f} px, {label} "
                         f"(goal < {REPROJECTION_GOAL_PX:g} px: {verdict}).")
        cams = person.get("cameras", {})
        if cams:
            s.table(["camera", "detected %", "excluded %", "left/right swaps fixed (frames)"],
                    [[c, 100 * (v.get("detected_rate") or 0), 100 * (v.get("excluded_rate") or 0),
                      v.get("lr_swaps_corrected_frames", 0)] for c, v in cams.items()])
        kps = {k: v.get("reprojection_error_px") for k, v in person.get("keypoints", {}).items()}
        out.append((label, {k: float("nan") if v is None else float(v) for k, v in kps.items()}))
    return out


def _section_reprojection(manifest: Manifest, out_dir: Path) -> Section:
    s = Section("Reprojection error")
    doc = (manifest.done("triangulation") or {}).get("summary", {})
    if not doc.get("persons"):
        s.note(_not_run(manifest, "triangulation", "No reprojection errors"))
        return s
    per_kp = _triangulation_content(s, doc)
    if per_kp:
        _reprojection_plot(s, out_dir, per_kp)
    return s


def _reprojection_plot(s: Section, out_dir: Path, per_kp: list) -> None:
    fig = _figure(11, 3.8)
    if fig is None:
        _no_plot(s)
        return
    ax = fig.add_subplot()
    names = list(per_kp[0][1])
    width = 0.8 / len(per_kp)
    for j, (label, values) in enumerate(per_kp):
        ax.bar(np.arange(len(names)) + j * width, [values.get(n, np.nan) for n in names], width, label=label)
    ax.axhline(REPROJECTION_GOAL_PX, color="#c44e52", ls="--", lw=1, label=f"goal {REPROJECTION_GOAL_PX:g} px")
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=70, fontsize=8)
    ax.set_ylabel("px")
    ax.set_title("triangulation: mean reprojection error per keypoint over the views kept", fontsize=10)
    ax.legend(fontsize=8)
    s.image(_save(fig, out_dir, "reprojection"), "Reprojection error (px) per keypoint, as the triangulation "
                                                 "measured it over the views it kept.")


# =========================================================================== overview and assembly
STATE_TEXT = {"done": "done", "failed": "failed", "running": "interrupted", "outdated": "not run (outdated)"}


def _not_run(manifest: Manifest, stage: str, what: str) -> str:
    """The note of a section whose stage has no current record."""
    rec = manifest.record(stage)
    if rec is None:
        return f"{what}: the {stage} stage has not run on this project."
    if rec.get("status") == "failed":
        return f"{what}: the {stage} stage failed ({rec.get('error', '')})."
    if rec.get("status") == "outdated":
        return f"{what}: the {stage} stage has not run since {rec.get('outdated_by', 'an earlier stage')} ran."
    return f"{what}: the {stage} stage has not run."


def _stage_rows(manifest: Manifest) -> list[list]:
    run_id = manifest.run.get("id")
    asked = set(manifest.run.get("stages", []))
    rows = []
    for name in STAGE_ORDER:
        rec = manifest.record(name) or {}
        state = STATE_TEXT.get(rec.get("status"), "not run")
        if rec.get("status") == "done" and rec.get("run") != run_id:
            state = f"done in an earlier run ({rec.get('started', '?')})"
        this_run = "failed" if rec.get("status") == "failed" and rec.get("run") == run_id else \
            "ran" if rec.get("run") == run_id and rec.get("status") == "done" else \
            "not run" if name in asked else "–"
        rows.append([name, state, this_run])
    return rows


def _section_overview(paths: ProjectPaths, manifest: Manifest) -> Section:
    s = Section("Overview")
    run = manifest.run
    s.text(f"Project {paths.root}. Report written {time.strftime('%Y-%m-%d %H:%M')}"
           + (f"; last run {run.get('id')} started {run.get('started')}." if run else "; no run recorded."))
    s.table(["stage", "outputs", "this run"], _stage_rows(manifest))
    versions = _read_toml(paths.reports / "versions.toml")
    if versions:
        s.text("Software: " + ", ".join(f"{k} {v}" for k, v in versions.items()
                                        if k not in ("executable", "platform")) + ".")
    resolved = paths.reports / "resolved_config.toml"
    if resolved.is_file():
        s.text(f"Configuration used: {resolved.relative_to(paths.root)}.")
    blends = sorted(paths.reports.glob("*.blend"))
    if blends:
        s.text("Blender scene (cameras with their videos, 3D keypoints, the animated OpenSim skeleton): "
               + ", ".join(str(b.relative_to(paths.root)) for b in blends) + "; open it with Blender 5.1 or later.")
    render = paths.reports / "demo_render.png"
    if render.is_file():
        s.image(render.name, "The Blender scene rendered from the first camera: its undistorted video frame, "
                             "the markers (coloured by reprojection error) and the OpenSim skeleton over it.")
    character = paths.reports / "demo_character.png"
    if character.is_file():
        s.image(character.name, _character_caption(character.with_suffix(".json")))
    return s


def _character_caption(sidecar: Path) -> str:
    """What the character render shows, from the facts its renderer wrote beside it."""
    import json

    try:
        facts = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        facts = {}
    where = f"{facts.get('camera', 'the first camera')}, frame {facts.get('frame', '?')}"
    return (f"The retarget, seen from {where}. Left: the OpenSim skeleton (IK result) over the undistorted video. "
            f"Right: the same frame with a {facts.get('rig', 'rigify').capitalize()} character generated from "
            f"Blender's human metarig, retargeted from OpenKin's animation skeleton (action "
            f"{facts.get('action', '?')}); its deform bones are drawn as capsules ({facts.get('capsules', '?')}). "
            f"The character is {facts.get('rig_height_m', '?')} m tall: it is shown scaled by "
            f"{facts.get('shown_at_scale', '?')} to the subject's size so it lies over them; both should follow the "
            f"subject's limbs in the video. Markers (3D keypoints) are drawn in both halves.")


def write_report(paths: ProjectPaths) -> Path:
    """Write ``openkin/report.html`` and ``report.md`` (+ ``openkin/report/*.png``) from the run
    manifest; return the HTML path."""
    out_dir = paths.reports
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.load(paths.root)
    calib, _ = _section_calibration(paths, manifest, out_dir)
    detections, _ = _section_detections(paths, manifest, out_dir)
    sections = [_section_overview(paths, manifest), calib, detections, _section_sync(paths, manifest),
                _section_refinement(manifest), _section_trajectories(manifest, out_dir),
                _section_angles(manifest, out_dir), _section_reprojection(manifest, out_dir),
                _section_timings(manifest, out_dir)]
    summary = Section("Summary")
    for section in sections:
        summary.items += [("p", line) for line in section.summary]
    sections.insert(0, summary)
    title = f"OpenKin report: {paths.name}"
    with atomic_write(out_dir / "report.md") as f:
        f.write(_markdown(title, sections))
    html_path = out_dir / "report.html"
    with atomic_write(html_path) as f:
        f.write(_html(title, sections))
    log.info("report written to %s", html_path)
    return html_path


def summary_lines(paths: ProjectPaths) -> list[str]:
    """The key figures of the last report (its Summary section), for the console."""
    md = paths.reports / "report.md"
    if not md.is_file():
        return []
    lines = md.read_text(encoding="utf-8").split("## Summary", 1)[-1].split("\n## ", 1)[0].splitlines()
    return [line for line in lines if line.strip()]


# =========================================================================== command line
def add_arguments(parser) -> None:
    parser.add_argument("project", help="trial folder processed by `openkin run`")


def main(args) -> int:
    root = Path(args.project).expanduser().resolve()
    if not root.is_dir():
        raise OpenKinError("project folder does not exist", path=root, fix="give the trial folder")
    path = write_report(ProjectPaths(root))
    log.info("open %s in a browser", path)
    return 0

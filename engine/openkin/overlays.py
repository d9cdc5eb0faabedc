"""QA overlays: per camera and frame, an RGBA PNG of what the 2D and 3D stages saw, to lay
over the camera's (undistorted) video in Blender.

``PROJECT/openkin/overlays/<cam>/<cam>_{frame:06d}.png`` (frame = reference frame, the
numbering of ``pose-sync``/``pose-associated`` and of the TRC; one file for every frame of
the range, transparent where there is nothing) and ``PROJECT/openkin/overlays/overlays.json``
(``{"version", "scale", "frames": [first, last], "cameras": {cam: {"size": [w, h], "folder"}}}``).

Coordinates are those of the undistorted image with the calibration's ``K`` and size (what
the Blender camera background shows), times ``scale``. Drawn on each image:

* the camera's 2D detections (most processed folder: ``pose-associated`` → ``pose-sync`` →
  ``pose``), keypoints coloured by confidence (red 0 → yellow 0.5 → green 1), skeleton
  lines, the person ID after association beside the box of each person;
* the 3D markers of each triangulated person (``pose-3d/*.trc`` with a
  ``*_reprojection.npz``) projected into the camera: magenta crosses, a thin line to the
  detection they explain;
* a detection the triangulation did not keep for that keypoint (a camera excluded there):
  an orange ring with an ``x``; detections whose left/right labels the triangulation
  exchanged (swap corrected): a cyan ring, and ``L/R swap corrected`` in the corner.

Drawing is OpenCV calls per frame (one ``polylines`` for every bone, one shape per point);
nothing loops over pixels.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import OpenKinError
from .progress import Progress, report

log = logging.getLogger(__name__)

FOLDER = Path("openkin") / "overlays"
INDEX = "overlays.json"
VERSION = 1
POSE_FOLDERS = ("pose-associated", "pose-sync", "pose")
DEFAULT_SCALE = 0.5
MIN_CONF = 0.05       # detections below this confidence are not drawn
# BGRA colours
MARKER = (255, 0, 255, 255)
EXCLUDED = (0, 140, 255, 255)
SWAPPED = (255, 255, 0, 255)
BONE = (230, 230, 230, 200)
TEXT = (255, 255, 255, 255)
_PERSON = re.compile(r"_P(\d+)(?=[_.-]|$)", re.IGNORECASE)


@dataclass
class Person3D:
    """One triangulated person: ``frames (F,)`` reference frames, ``xyz (F, K, 3)`` Z-up m in
    the skeleton's keypoint order (NaN = none), and the triangulation's per-view record
    ``used, swapped (C, F, K)`` bool over ``cameras (C,)`` (None: unknown)."""

    index: int
    frames: np.ndarray
    xyz: np.ndarray
    cameras: list[str]
    used: np.ndarray | None
    swapped: np.ndarray | None


@dataclass
class CameraView:
    """One camera's inputs: ``keypoints (F, P, K, 3)`` [x, y, conf] in the undistorted image
    px, ``frames (F,)``, ``ids (F, P)`` person IDs (-1: unknown)."""

    camera: object
    keypoints: np.ndarray
    frames: np.ndarray
    ids: np.ndarray


def confidence_colors(conf: np.ndarray) -> np.ndarray:
    """``conf (N,)`` in [0, 1] → BGRA ``(N, 4)`` uint8: red at 0, yellow at 0.5, green at 1."""
    c = np.clip(np.nan_to_num(np.asarray(conf, float)), 0.0, 1.0)
    red = np.clip(2.0 - 2.0 * c, 0, 1) * 255
    green = np.clip(2.0 * c, 0, 1) * 255
    return np.stack([np.zeros_like(c), green, red, np.full_like(c, 255)], axis=-1).astype(np.uint8)


def project_markers(camera, xyz: np.ndarray) -> np.ndarray:
    """``xyz (..., 3)`` world Z-up m → ``(..., 2)`` px in the camera's undistorted image (pinhole
    ``K [R | t]``, :func:`openkin.geometry.project`); NaN stays NaN."""
    from .geometry import project

    flat = np.asarray(xyz, float).reshape(-1, 3)
    return project(camera.projection[None], flat)[0].reshape(np.shape(xyz)[:-1] + (2,))


def match_people(detections: np.ndarray, reprojected: np.ndarray) -> np.ndarray:
    """Which detected person each 3D person is: ``detections (P, K, 3)``, ``reprojected (Q, K, 2)``
    → ``(Q,)`` index into P (median keypoint distance, nearest; -1 when none shares a keypoint)."""
    if detections.shape[0] == 0 or reprojected.shape[0] == 0:
        return np.full(reprojected.shape[0], -1)
    d = np.linalg.norm(detections[None, :, :, :2] - reprojected[:, None], axis=-1)   # (Q, P, K)
    with np.errstate(all="ignore"):
        med = np.nanmedian(np.where(np.isfinite(d), d, np.nan), axis=-1)
    med = np.where(np.isfinite(med), med, np.inf)
    best = med.argmin(axis=1)
    return np.where(np.isfinite(med[np.arange(len(best)), best]), best, -1)


def to_overlay_px(xy: np.ndarray, scale: float) -> np.ndarray:
    """Image px ``(..., 2)`` (pixel centres at integers) → the overlay's px at ``scale`` (float)."""
    return (np.asarray(xy, float) + 0.5) * scale - 0.5


def _pts(xy: np.ndarray, scale: float) -> np.ndarray:
    return np.round(to_overlay_px(xy, scale)).astype(np.int32)


def draw_detections(img: np.ndarray, people: np.ndarray, ids: np.ndarray, bones: list, scale: float) -> None:
    """Draw ``people (P, K, 3)`` (undistorted px + confidence) on ``img (H, W, 4)`` in place:
    bones, keypoints coloured by confidence, the person ID."""
    r = max(3, int(round(8 * scale)))
    ok = np.isfinite(people[..., :2]).all(-1) & (np.nan_to_num(people[..., 2]) > MIN_CONF)    # (P, K)
    pts = _pts(np.nan_to_num(people[..., :2]), scale)
    lines = [np.stack([pts[p, a], pts[p, b]]) for p in range(len(people)) for a, b in bones if ok[p, a] and ok[p, b]]
    if lines:
        cv2.polylines(img, lines, False, BONE, max(1, int(round(3 * scale))), cv2.LINE_AA)
    colors = confidence_colors(people[..., 2])
    for p, k in zip(*np.nonzero(ok)):
        cv2.circle(img, tuple(int(v) for v in pts[p, k]), r, tuple(int(v) for v in colors[p, k]), -1, cv2.LINE_AA)
    for p in range(len(people)):
        if ok[p].any():
            top = pts[p][ok[p]][pts[p][ok[p]][:, 1].argmin()]          # above the highest keypoint
            label = f"P{int(ids[p])}" if ids[p] >= 0 else f"#{p}"
            cv2.putText(img, label, (int(top[0]) - int(20 * scale), max(12, int(top[1]) - 4 * r)),
                        cv2.FONT_HERSHEY_SIMPLEX, max(0.4, 1.6 * scale), TEXT, max(1, int(round(3 * scale))),
                        cv2.LINE_AA)


def draw_reprojection(img: np.ndarray, detected: np.ndarray | None, uv: np.ndarray, scale: float) -> None:
    """One 3D person's markers in one camera, in place on ``img``: ``uv (K, 2)`` reprojected
    markers (crosses, drawn under the detections so both show), a thin line to ``detected
    (K, 3)``, the detection they were matched with (or None)."""
    size, thick = max(10, int(round(32 * scale))), max(1, int(round(3 * scale)))
    ok = np.isfinite(uv).all(-1)
    puv = _pts(np.nan_to_num(uv), scale)
    if detected is not None:
        seen = ok & np.isfinite(detected[:, :2]).all(-1) & (np.nan_to_num(detected[:, 2]) > MIN_CONF)
        pdet = _pts(np.nan_to_num(detected[:, :2]), scale)
        if seen.any():
            cv2.polylines(img, [np.stack([a, b]) for a, b in zip(pdet[seen], puv[seen])], False, MARKER, 1, cv2.LINE_AA)
    for k in np.flatnonzero(ok):
        cv2.drawMarker(img, tuple(int(v) for v in puv[k]), MARKER, cv2.MARKER_CROSS, size, thick, cv2.LINE_AA)


def draw_rings(img: np.ndarray, detected: np.ndarray, excluded: np.ndarray, swapped: np.ndarray, scale: float) -> None:
    """Rings around ``detected (K, 3)`` where ``excluded`` (orange, with an x: the triangulation
    did not keep this view) or ``swapped`` (cyan: its left/right labels were exchanged), (K,) bool."""
    thick = max(1, int(round(3 * scale)))
    ring = max(7, int(round(16 * scale)))
    where = np.isfinite(detected[:, :2]).all(-1)
    pdet = _pts(np.nan_to_num(detected[:, :2]), scale)
    for k in np.flatnonzero(excluded & where):
        c = tuple(int(v) for v in pdet[k])
        cv2.circle(img, c, ring, EXCLUDED, thick, cv2.LINE_AA)
        cv2.drawMarker(img, c, EXCLUDED, cv2.MARKER_TILTED_CROSS, 2 * ring, thick, cv2.LINE_AA)
    for k in np.flatnonzero(swapped & where):
        cv2.circle(img, tuple(int(v) for v in pdet[k]), ring + 2 * thick, SWAPPED, thick, cv2.LINE_AA)


def draw_frame(size: tuple[int, int], scale: float, view: CameraView, row: int, frame: int,
               people3d: list[Person3D], cam_index: dict[int, int], bones: list, title: str) -> np.ndarray:
    """The overlay of one camera at reference frame ``frame``: ``(H, W, 4)`` uint8 BGRA,
    ``size`` = (W, H) of the calibration, ``row`` = the frame's row in ``view`` (-1: no detections)."""
    w, h = int(round(size[0] * scale)), int(round(size[1] * scale))
    img = np.zeros((h, w, 4), np.uint8)
    people = view.keypoints[row] if row >= 0 else np.zeros((0, 0, 3))
    rings = []
    for person in people3d:
        i = int(np.searchsorted(person.frames, frame))
        if i >= len(person.frames) or person.frames[i] != frame:
            continue
        uv = project_markers(view.camera, person.xyz[i])
        match = match_people(people, uv[None])[0] if people.size else -1
        det = people[match] if match >= 0 else None
        draw_reprojection(img, det, uv, scale)
        c = cam_index.get(person.index, -1)
        if c >= 0 and person.used is not None and det is not None:
            seen = np.isfinite(det[:, :2]).all(-1) & (np.nan_to_num(det[:, 2]) > 0)
            excl = seen & ~person.used[c, i] & np.isfinite(person.xyz[i]).all(-1)
            swap = person.swapped[c, i] if person.swapped is not None else np.zeros(len(uv), bool)
            rings.append((det, excl, swap))
    if people.size:
        draw_detections(img, people, view.ids[row], bones, scale)
    for det, excl, swap in rings:
        draw_rings(img, det, excl, swap, scale)
    any_swap = any(bool(swap.any()) for _, _, swap in rings)
    _legend(img, title + ("   L/R swap corrected" if any_swap else ""), any_swap, scale)
    return img


def _legend(img: np.ndarray, title: str, swap: bool, scale: float) -> None:
    s = max(0.4, 1.4 * scale)
    t = max(1, int(round(3 * scale)))
    y = int(40 * scale) + 10
    cv2.putText(img, title, (10, y), cv2.FONT_HERSHEY_SIMPLEX, s, SWAPPED if swap else TEXT, t, cv2.LINE_AA)
    for i, line in enumerate(("dot: 2D detection (confidence red-green)   +: 3D marker reprojected",
                              "orange x: view excluded by triangulation   cyan o: L/R swap corrected")):
        cv2.putText(img, line, (10, y + (i + 1) * (int(40 * scale) + 6)), cv2.FONT_HERSHEY_SIMPLEX, s * 0.6, TEXT,
                    max(1, t - 1), cv2.LINE_AA)


# ------------------------------------------------------------------ file shell
def _pose_folder(root: Path, calib_names: list[str]) -> tuple[str, dict[str, Path]]:
    """The most processed 2D folder and camera name → its ``<cam>_json`` folder."""
    from .project import match_camera_names

    for folder in POSE_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        dirs = {d.name: d for d in sorted(base.iterdir()) if d.is_dir() and any(d.glob("*.json"))}
        pairs = match_camera_names(list(calib_names), list(dirs)) if dirs else {}
        if pairs:
            return folder, {c: dirs[f] for c, f in pairs.items()}
    return "", {}


def load_views(root: Path, cameras: list) -> dict[str, CameraView]:
    """Camera name → its detections, undistorted (see :class:`CameraView`)."""
    from .formats.openpose import read_openpose_dir
    from .geometry import undistort_camera_points

    folder, dirs = _pose_folder(root, [c.name for c in cameras])
    if not dirs:
        raise OpenKinError("no 2D detections to draw", path=root,
                           fix="run the pose stage (pose/<cam>_json) first")
    log.info("overlays: 2D detections from %s/", folder)
    views = {}
    for cam in cameras:
        if cam.name not in dirs:
            continue
        kp, frames, ids = read_openpose_dir(dirs[cam.name])
        kp = np.asarray(kp, float).copy()
        if kp.size:
            kp[..., :2] = undistort_camera_points(cam, kp[..., :2]).reshape(kp.shape[:-1] + (2,))
        views[cam.name] = CameraView(cam, kp, np.asarray(frames, int), np.asarray(ids, int))
    return views


def load_people3d(root: Path, names: list[str]) -> list[Person3D]:
    """The triangulated people of ``root/pose-3d`` (TRCs that have a reprojection file)."""
    from .formats.trc import read_trc
    from .geometry import yup_to_zup
    from .triangulation.reprojection import read_reprojection, reprojection_path

    out = []
    for trc_path in sorted((root / "pose-3d").glob("*.trc")) if (root / "pose-3d").is_dir() else []:
        npz = reprojection_path(trc_path)
        if not npz.is_file():
            continue
        trc, rep = read_trc(trc_path), read_reprojection(npz)
        cols = [trc.marker_names.index(n) if n in trc.marker_names else -1 for n in names]
        xyz = np.full((len(trc.frame_numbers), len(names), 3), np.nan)
        for k, c in enumerate(cols):
            if c >= 0:
                xyz[:, k] = yup_to_zup(trc.xyz[:, c])
        m = _PERSON.search(trc_path.stem)
        used, swapped = _by_keypoint(rep, names, np.asarray(trc.frame_numbers, int))
        out.append(Person3D(int(m.group(1)) if m else 0, np.asarray(trc.frame_numbers, int), xyz,
                            rep.cameras, used, swapped))
    return out


def _by_keypoint(rep, names: list[str], frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reprojection file's ``used, swapped (C, F, K)`` on the TRC's rows and ``names``
    (not recorded: used True, swapped False)."""
    C = len(rep.cameras)
    used, swapped = np.ones((C, len(frames), len(names)), bool), np.zeros((C, len(frames), len(names)), bool)
    row = {int(f): i for i, f in enumerate(rep.frame_numbers)}
    rows = np.array([row.get(int(f), -1) for f in frames])
    for k, n in enumerate(names):
        if n in rep.keypoints:
            j = rep.keypoints.index(n)
            have = rows >= 0
            used[:, have, k] = rep.used[:, rows[have], j]
            swapped[:, have, k] = rep.swapped[:, rows[have], j]
    return used, swapped


def write_overlays(root: str | Path, *, scale: float = DEFAULT_SCALE, frames: tuple[int, int] | None = None,
                   cameras: list[str] | None = None, progress: Progress | None = None) -> Path:
    """Draw the overlays of project ``root`` (see the module doc); ``frames`` (first, last)
    redraws only those reference frames (the other files stay); returns the overlays folder."""
    from .config import load_config
    from .context import calibration_in_use
    from .formats.calibration import read_calibration
    from .project import ProjectPaths
    from .skeletons import get_skeleton

    root = Path(root)
    skeleton = get_skeleton(load_config(root).pose.pose_model)
    cams = read_calibration(calibration_in_use(ProjectPaths(root)))
    views = load_views(root, cams)
    if cameras:
        unknown = sorted(set(cameras) - set(views))
        if unknown:
            raise OpenKinError(f"no camera {', '.join(unknown)} with 2D detections", path=root,
                               fix=f"choose among {', '.join(sorted(views))}")
        views = {name: v for name, v in views.items() if name in cameras}
    people3d = load_people3d(root, list(skeleton.names))
    lo, hi = _range(views, people3d)
    a, b = (max(lo, frames[0]), min(hi, frames[1])) if frames else (lo, hi)
    out = root / FOLDER
    bones = [tuple(map(int, bone)) for bone in skeleton.bones]
    for i, cam in enumerate(c for c in cams if c.name in views):
        _write_camera(out, cam, views[cam.name], people3d, bones, scale, (a, b), full=frames is None,
                      progress=progress, step=(i, len(views)))
    _write_index(out, scale, lo, hi, [c for c in cams if c.name in views])
    return out


def _range(views: dict, people3d: list) -> tuple[int, int]:
    all_frames = [v.frames for v in views.values() if len(v.frames)] + [p.frames for p in people3d if len(p.frames)]
    if not all_frames:
        raise OpenKinError("no frames to draw", fix="run the pose stage first")
    return int(min(f.min() for f in all_frames)), int(max(f.max() for f in all_frames))


def _write_camera(out: Path, cam, view: CameraView, people3d: list, bones: list, scale: float,
                  span: tuple[int, int], full: bool, progress, step) -> None:
    """One camera's PNGs; a full redraw goes to a new folder renamed into place at the end."""
    final = out / cam.name
    target = out / f".{cam.name}.tmp" if full else final
    if full and target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    rows = {int(f): r for r, f in enumerate(view.frames)}
    cam_index = {p.index: (p.cameras.index(cam.name) if cam.name in p.cameras else -1) for p in people3d}
    n = span[1] - span[0] + 1
    for j, f in enumerate(range(span[0], span[1] + 1)):
        img = draw_frame(cam.size, scale, view, rows.get(f, -1), f, people3d, cam_index, bones, f"{cam.name} frame {f}")
        path = target / f"{cam.name}_{f:06d}.png"
        if not cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OpenKinError("cannot write an overlay image", path=path, fix="check the disk space and rights")
        if j % 10 == 0:
            report(progress, (step[0] + j / n) / step[1], f"overlays {cam.name} {f}")
    if full:
        if final.exists():
            shutil.rmtree(final)
        target.rename(final)


def _write_index(out: Path, scale: float, lo: int, hi: int, cams: list) -> None:
    from .fileio import atomic_write

    doc = {"version": VERSION, "scale": scale, "frames": [lo, hi],
           "cameras": {c.name: {"size": [int(c.size[0]), int(c.size[1])], "folder": c.name} for c in cams}}
    with atomic_write(out / INDEX) as f:
        json.dump(doc, f, indent=1)


def read_index(root: str | Path) -> dict | None:
    """The overlays' index of project ``root`` (see the module doc), or None when not drawn."""
    path = Path(root) / FOLDER / INDEX
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise OpenKinError(f"cannot read the overlays' index ({e})", path=path,
                           fix="draw the overlays again (openkin overlays PROJECT)") from None


# ------------------------------------------------------------------ CLI
def add_arguments(parser) -> None:
    parser.add_argument("project", help="processed project folder")
    parser.add_argument("--frames", help="only these reference frames, e.g. 10-40")
    parser.add_argument("--cameras", nargs="*", help="only these cameras")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="image size / calibration size")


def parse_frames(text: str | None) -> tuple[int, int] | None:
    """``"10-40"`` → (10, 40); None → None."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m or int(m.group(1)) > int(m.group(2)):
        raise OpenKinError(f"bad frame range {text!r}", fix="write FIRST-LAST, e.g. --frames 10-40")
    return int(m.group(1)), int(m.group(2))


def main(args) -> int:
    out = write_overlays(args.project, scale=args.scale, frames=parse_frames(args.frames), cameras=args.cameras)
    print(f"overlays written to {out}")
    return 0

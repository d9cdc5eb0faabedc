"""Calibration stage: convert another system's calibration, or compute one from images.

Writes ``calibration/Calib_<kind>.toml`` (Pose2Sim's names: ``Calib_qualisys.toml``
for a conversion, ``Calib_scene.toml`` / ``Calib_board.toml`` for a calculation)
and ``openkin/calibration.toml`` (what was done: source files and their sha256,
residuals in pixels per camera). Later stages find the file with
:func:`find_calibration`.

``calibration_type = 'convert'``: the file matching ``convert_from`` in
``calibration/`` (qualisys ``*.qca.txt``, vicon ``*.xcp``, opencap ``*.pickle``,
easymocap ``intri.yml`` + ``extri.yml``, biocv ``*.calib``) goes through
:func:`openkin.formats.calib_converters.convert_calibration`. A TOML from
anipose, Caliscope or FreeMoCap needs no conversion: it is checked and used as
it is. A previous conversion is reused when its source files are unchanged; a
``Calib_<kind>.toml`` edited by hand (its hash differs from the one recorded) is
never overwritten.

``calibration_type = 'calculate'`` (no GUI in OpenKin):

- intrinsics: checkerboard images (or a video, sampled every
  ``extract_every_N_sec``) in ``calibration/intrinsics/<cam>/`` → OpenCV corners
  (``findChessboardCorners`` + ``cornerSubPix``) → ``calibrateCamera``; the RMS
  reprojection error per camera is logged and recorded. With
  ``overwrite_intrinsics = false`` the intrinsics of an existing calibration
  TOML holding the same cameras are reused.
- extrinsics ``'board'``: one image per camera in ``calibration/extrinsics/``
  (or ``extrinsics/<cam>/``) of a checkerboard lying in the world frame → corners
  → ``solvePnP``.
- extrinsics ``'scene'``: points of known world coordinates
  (``object_coords_3d``) marked in each extrinsics image. OpenKin does not
  offer a clicking window: the image points are read from
  ``calibration/Image_points.json`` in the layout Pose2Sim's clicker writes
  (``{"extrinsics": [{"cam_name": "<image file name>", "image_points_2d":
  [x1, y1, x2, y2, ...] (null for a hidden point), "object_points_3d": [...]
  (optional, defaults to object_coords_3d)}]}``).
- extrinsics ``'keypoints'``: the cameras calibrated from a person walking through the
  volume (:mod:`openkin.calibration_keypoints`), from the 2D keypoints of ``pose-sync/``
  (else ``pose/``: the videos are then assumed synchronised) — run the pose stage first.
  Intrinsics: checkerboard images in ``calibration/intrinsics/`` (when
  ``overwrite_intrinsics`` or no calibration file exists), else the intrinsics of an
  existing calibration file (cameras matched by name, else by order), else a pinhole
  guess from ``fov_deg`` and the videos' frame size (focal lengths then refined). Writes
  ``calibration/Calib_keypoints.toml`` and its record (pairs, scale, floor, errors per camera).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import OpenKinError
from .fileio import atomic_write, read_optional_toml, sha256_file
from .formats.calibration import Camera, read_calibration, write_calibration
from .progress import Progress, report, scaled
from .project import ProjectPaths, find_calibration  # noqa: F401  (the rule lives in the base layer)

log = logging.getLogger(__name__)

RECORD_NAME = "calibration.toml"
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff")
VIDEO_EXTENSIONS = ("mp4", "avi", "mov", "mkv", "mpg", "mpeg", "m4v", "webm")
# convert_from -> glob patterns of its source file(s) in calibration/.
CONVERT_SOURCES = {
    "qualisys": ("*.qca.txt",),
    "vicon": ("*.xcp",),
    "opencap": ("*.pickle",),
    "easymocap": ("*intri*.yml", "*extri*.yml"),
    "biocv": ("*.calib",),
}
TOML_KINDS = ("anipose", "freemocap", "caliscope")  # already in the shared TOML format
_CORNER_FLAGS = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.001)


# =========================================================================== finding the calibration

# =========================================================================== stage
def run_stage(config, paths: ProjectPaths, progress: Progress | None = None) -> None:
    """Convert or calculate the calibration of ``paths`` as ``config.calibration`` says."""
    cfg = config.calibration
    if cfg.calibration_type == "convert":
        _convert_stage(cfg.convert, paths, progress)
    elif from_keypoints(config):
        _keypoints_stage(config, paths, progress)
    else:
        _calculate_stage(cfg.calculate, paths, progress)
    report(progress, 1.0, "calibration done")


def from_keypoints(config) -> bool:
    """Whether this configuration calibrates the cameras from the person's keypoints."""
    cfg = config.calibration
    ext = cfg.calculate.extrinsics
    return cfg.calibration_type == "calculate" and ext.calculate_extrinsics and ext.extrinsics_method == "keypoints"


def pipeline_order(stages: list, config) -> list:
    """``stages`` (objects with a ``name``) in pipeline order, with calibration moved after pose and
    synchronization when it is computed from the keypoints (it needs them)."""
    if not from_keypoints(config) or "calibration" not in [s.name for s in stages]:
        return list(stages)
    calib = next(s for s in stages if s.name == "calibration")
    rest = [s for s in stages if s is not calib]
    before = [s.name for s in rest]
    at = max((before.index(n) + 1 for n in ("pose", "synchronization") if n in before), default=0)
    return rest[:at] + [calib] + rest[at:]


def _read_record(paths: ProjectPaths) -> dict:
    return read_optional_toml(paths.reports / RECORD_NAME)


def _write_record(paths: ProjectPaths, record: dict) -> Path:
    from .fileio import toml_dumps

    path = paths.reports / RECORD_NAME
    with atomic_write(path) as f:
        f.write("# What the calibration stage did (read by `openkin report`).\n" + toml_dumps(record))
    return path


# --------------------------------------------------------------------------- convert
def _convert_sources(calib_dir: Path, kind: str) -> list[Path]:
    """Source files of ``kind`` in ``calib_dir`` (sorted); OpenKinError if absent."""
    patterns = CONVERT_SOURCES.get(kind)
    if patterns is None:
        raise OpenKinError(f"calibration conversion from {kind!r} is not available",
                           fix=f"export the calibration in one of: {', '.join(CONVERT_SOURCES)} or a "
                               "Pose2Sim/anipose TOML, or use calibration_type = 'calculate'")
    found = [sorted(calib_dir.glob(p)) for p in patterns]
    missing = [p for p, f in zip(patterns, found) if not f]
    if missing:
        others = [k for k, pats in CONVERT_SOURCES.items() if k != kind and all(any(calib_dir.glob(p)) for p in pats)]
        hint = (f"this folder holds a {others[0]} calibration: set [calibration.convert] convert_from = "
                f"'{others[0]}'" if others else "put the calibration file exported by that system in this folder, "
                "or set [calibration.convert] convert_from to the system that made it")
        raise OpenKinError(f"no {' and '.join(missing)} file for convert_from = '{kind}'", path=calib_dir, fix=hint)
    return sorted({f for group in found for f in group})


def _convert_stage(cfg, paths: ProjectPaths, progress: Progress | None) -> Path:
    calib_dir = paths.calibration
    kind = cfg.convert_from
    if kind in TOML_KINDS:
        path = find_calibration(calib_dir)
        cameras = read_calibration(path)
        log.info("%s calibration %s: %d cameras (%s), no conversion needed", kind, path.name,
                 len(cameras), ", ".join(c.name for c in cameras))
        _write_record(paths, {"type": "convert", "convert_from": kind, "output": path.name,
                              "sources": {path.name: sha256_file(path)}, "reused": True})
        return path
    try:
        sources = _convert_sources(calib_dir, kind)
    except OpenKinError:
        existing = _existing_calibration(calib_dir)
        if existing is None:
            raise
        log.info("no %s source file in %s: using the existing calibration %s", kind, calib_dir, existing.name)
        return existing
    options = {"binning_factor": cfg.qualisys.binning_factor} if kind == "qualisys" else {}
    out = calib_dir / f"Calib_{kind}.toml"
    state = {"type": "convert", "convert_from": kind, "options": options,
             "sources": {s.name: sha256_file(s) for s in sources}}
    if _reusable(paths, out, state):
        log.info("calibration %s is up to date with %s: reused", out.name, ", ".join(state["sources"]))
        return out
    report(progress, 0.1, f"converting {sources[0].name}")
    from .formats.calib_converters import convert_calibration

    source = sources[0] if len(sources) == 1 else calib_dir
    cameras = convert_calibration(source, kind, **options)
    write_calibration(out, cameras)
    _write_record(paths, {**state, "output": out.name, "output_sha256": sha256_file(out), "reused": False})
    log.info("converted %s (%s) -> %s: %d cameras (%s)", ", ".join(s.name for s in sources), kind, out.name,
             len(cameras), ", ".join(c.name for c in cameras))
    return out


def _existing_calibration(calib_dir: Path) -> Path | None:
    try:
        return find_calibration(calib_dir)
    except OpenKinError:
        return None


def _reusable(paths: ProjectPaths, out: Path, state: dict) -> bool:
    """Whether ``out`` exists and may be kept: made by us from the same sources, or edited by hand."""
    if not out.is_file():
        return False
    record = _read_record(paths)
    same_output = record.get("output") == out.name and record.get("output_sha256") == sha256_file(out)
    if not same_output:
        log.warning("%s was not written by this conversion (edited by hand, or made elsewhere): kept as it is. "
                    "Delete it to convert again.", out)
        return True
    return all(record.get(k) == v for k, v in state.items())


# --------------------------------------------------------------------------- calculate
@dataclass
class Intrinsics:
    """One camera's lens: ``matrix`` (3, 3), ``distortions`` (5,), ``size`` (w, h) px, ``rms`` px."""

    name: str
    size: tuple[int, int]
    matrix: np.ndarray
    distortions: np.ndarray
    rms: float
    n_images: int
    fisheye: bool = False
    report: dict | None = None


def _calculate_stage(cfg, paths: ProjectPaths, progress: Progress | None) -> Path:
    calib_dir = paths.calibration
    ext_cfg = cfg.extrinsics
    intrinsics = _intrinsics(cfg.intrinsics, calib_dir, scaled(progress, 0.0, 0.8))
    record: dict = {"type": "calculate", "intrinsics": {
        i.name: {"rms_px": i.rms, "images": i.n_images, **(i.report or {})} for i in intrinsics}}
    if ext_cfg.calculate_extrinsics:
        poses, ext_record = _extrinsics(ext_cfg, calib_dir, intrinsics, cfg.save_debug_images, cfg.intrinsics)
        record["extrinsics"] = {"method": ext_cfg.extrinsics_method, **ext_record}
    else:
        poses = [(np.zeros(3), np.zeros(3))] * len(intrinsics)
        log.warning("calculate_extrinsics = false: cameras written at the world origin")
    cameras = [Camera(i.name, i.size, i.matrix, i.distortions, r, t, i.fisheye) for i, (r, t) in zip(intrinsics, poses)]
    out = calib_dir / f"Calib_{ext_cfg.extrinsics_method}.toml"
    errors = [v["rms_px"] for v in record.get("extrinsics", {}).get("cameras", {}).values()]
    write_calibration(out, cameras, error=float(np.mean(errors)) if errors else 0.0)
    _write_record(paths, {**record, "output": out.name, "output_sha256": sha256_file(out)})
    log.info("calibration written to %s", out)
    return out


def _numeric_key(path: Path) -> list:
    return [int(n) if n.isdigit() else n for n in re.split(r"(\d+)", path.name)]


def camera_name(folder: str) -> str:
    """``int_cam01_img`` -> ``cam01`` (Pose2Sim's folder names around the camera name)."""
    name = re.sub(r"^(int|ext)_", "", folder)
    return re.sub(r"_(img|imgs|images|vid|video)$", "", name) or folder


def _intrinsics(cfg, calib_dir: Path, progress: Progress | None) -> list[Intrinsics]:
    """Intrinsics of every camera folder of ``calibration/intrinsics`` (or reused from a TOML)."""
    root = calib_dir / "intrinsics"
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=_numeric_key) if root.is_dir() else []
    if not cfg.overwrite_intrinsics:
        reused = _reuse_intrinsics(calib_dir, [camera_name(f.name) for f in folders])
        if reused:
            return reused
    if not folders:
        raise OpenKinError("no camera folders of checkerboard images", path=root,
                           fix="put each camera's checkerboard images (or video) in calibration/intrinsics/<cam>/")
    out = []
    for k, folder in enumerate(folders):
        sub = scaled(progress, k / len(folders), (k + 1) / len(folders))
        out.append(_camera_intrinsics(folder, cfg, sub))
    return out


def _reuse_intrinsics(calib_dir: Path, names: list[str]) -> list[Intrinsics]:
    """Intrinsics of an existing calibration TOML, if it holds these cameras (or any, if no folders)."""
    try:
        path = find_calibration(calib_dir)
    except OpenKinError:
        return []
    cameras = read_calibration(path)
    if names and [c.name for c in cameras] != names and len(cameras) != len(names):
        return []
    log.info("intrinsics reused from %s (set overwrite_intrinsics = true to compute them again)", path.name)
    return [Intrinsics(c.name, (c.width, c.height), c.matrix, c.distortions, 0.0, 0) for c in cameras]


def _camera_intrinsics(folder: Path, cfg, progress: Progress | None) -> Intrinsics:
    name = camera_name(folder.name)
    if cfg.intrinsics_board == "charuco":
        return _charuco_intrinsics(folder, name, cfg)
    images = list(_frames(folder, cfg.intrinsics_extension, cfg.extract_every_N_sec))
    h, w = cfg.intrinsics_corners_nb
    board = board_points((h, w), cfg.intrinsics_square_size / 1000.0, "horizontal")
    image_points, size = [], None
    for k, (label, gray) in enumerate(images):
        report(progress, k / max(len(images), 1), f"{name}: corners in {label}")
        if size is not None and gray.shape[::-1] != size:
            raise OpenKinError(f"image size {gray.shape[::-1]} differs from the camera's other images {size}",
                               path=folder / label, fix="use images of one resolution per camera")
        size = gray.shape[::-1]
        corners = find_corners(gray, (h, w))
        if corners is None:
            log.info("%s: no %dx%d checkerboard found in %s", name, h, w, label)
            continue
        image_points.append(corners)
    if len(image_points) < 3:
        raise OpenKinError(f"checkerboard found in only {len(image_points)} of {len(images)} images of {name}",
                           path=folder, fix="check intrinsics_corners_nb (inner corners [H, W]) and take at least "
                                            "10 sharp images of the whole board at varied angles")
    rms, K, dist = calibrate_intrinsics([board] * len(image_points), image_points, size)
    log.info("%s: intrinsics from %d/%d images, RMS %.3f px, fx %.1f fy %.1f", name, len(image_points),
             len(images), rms, K[0, 0], K[1, 1])
    if len(image_points) < 10:
        log.info("%s: fewer than 10 usable images; intrinsics may be imprecise", name)
    return Intrinsics(name, (int(size[0]), int(size[1])), K, dist, rms, len(image_points))


def _charuco_intrinsics(folder: Path, name: str, cfg) -> Intrinsics:
    """One camera's intrinsics from ChArUco images or videos (:mod:`openkin.calibration_charuco`);
    its coverage PNG goes to ``calibration/debug/<cam>_charuco_coverage.png``."""
    from .calibration_charuco import CharucoSpec, calibrate_charuco, coverage_image

    spec = CharucoSpec(tuple(cfg.charuco_squares_nb), cfg.intrinsics_square_size / 1000.0,
                       cfg.charuco_marker_size / 1000.0, cfg.charuco_dictionary)
    res = calibrate_charuco(_frames(folder, cfg.intrinsics_extension, cfg.extract_every_N_sec), spec, name,
                            cfg.fisheye, where=folder)
    png = folder.parents[1] / "debug" / f"{name}_charuco_coverage.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", coverage_image(res))
    if ok:
        with atomic_write(png, "wb") as f:
            f.write(buf.tobytes())
    report = {"board": "charuco", "frames": res.frames, "board_found": res.detected, "coverage": res.coverage,
              "border_coverage": res.border_coverage, "warnings": res.warnings, "coverage_png": png.name}
    return Intrinsics(name, res.size, res.matrix, res.distortions, res.rms, res.used, res.fisheye, report)


def _frames(folder: Path, extension: str, every_s: float):
    """Yield ``(label, gray (H, W) uint8)`` from the images of ``folder``, or sampled from its video."""
    ext = extension.lower().lstrip(".")
    files = sorted((p for p in folder.iterdir() if p.suffix.lower().lstrip(".") == ext), key=_numeric_key)
    if not files:
        media = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
        files = sorted((p for p in folder.iterdir() if p.suffix.lower().lstrip(".") in media), key=_numeric_key)
        if files:
            log.info("%s: no .%s files, using %s", folder.name, ext, ", ".join(sorted({p.suffix for p in files})))
    if not files:
        raise OpenKinError(f"no .{ext} images or videos", path=folder,
                           fix="put checkerboard images here, or set intrinsics_extension to their extension")
    for path in files:
        if path.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS:
            yield from _video_frames(path, every_s)
            continue
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise OpenKinError("unreadable image", path=path, fix="replace or remove the file")
        yield path.name, gray


def _video_frames(path: Path, every_s: float):
    """Yield ``(label, gray)`` every ``every_s`` seconds of the video at ``path``."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise OpenKinError("cannot open the video", path=path, fix="check the file is a complete video")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        step = max(1, int(round(every_s * fps)))
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                yield f"{path.name}@{index}", cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            index += 1
    finally:
        cap.release()


# =========================================================================== kernels
def board_points(corners_nb: tuple[int, int], square: float | tuple[float, float],
                 position: str = "horizontal") -> np.ndarray:
    """(H*W, 3) float32 checkerboard corners in metres, in OpenCV's corner order.

    ``corners_nb``: inner corners (H, W) as Pose2Sim writes them; ``square``: side
    (or (h, w)) in metres. 'horizontal': the board lies in the world XY plane;
    'vertical': it stands in the XZ plane (Pose2Sim's convention).
    """
    h, w = corners_nb
    sh, sw = (square, square) if np.isscalar(square) else square
    grid = np.mgrid[0:h, 0:w].T.reshape(-1, 2).astype(np.float32)  # (H*W, 2): (i along H, j along W)
    pts = np.zeros((h * w, 3), np.float32)
    if position == "horizontal":
        pts[:, 0], pts[:, 1] = grid[:, 0] * sh, grid[:, 1] * sw
    else:
        pts[:, 0], pts[:, 2] = grid[:, 1] * sw, grid[:, 0] * sh  # as Pose2Sim: x along W, z along H
    return pts


def find_corners(gray: np.ndarray, corners_nb: tuple[int, int]) -> np.ndarray | None:
    """(H*W, 2) float32 sub-pixel checkerboard corners in ``gray`` (H, W) uint8, or None."""
    ok, corners = cv2.findChessboardCorners(gray, corners_nb, _CORNER_FLAGS)
    if not ok:  # the fast check rejects some boards seen at a slant: retry without it
        ok, corners = cv2.findChessboardCorners(gray, corners_nb, _CORNER_FLAGS & ~cv2.CALIB_CB_FAST_CHECK)
    if not ok:
        return None
    corners = cv2.cornerSubPix(gray, corners, (11, 11), (-1, -1), _SUBPIX_CRITERIA)
    return corners.reshape(-1, 2)


def calibrate_intrinsics(object_points: list[np.ndarray], image_points: list[np.ndarray],
                         size: tuple[int, int]) -> tuple[float, np.ndarray, np.ndarray]:
    """``object_points``: N × (M, 3), ``image_points``: N × (M, 2), ``size`` (w, h) ->
    (RMS px, K (3, 3), distortions (5,) k1 k2 p1 p2 k3)."""
    rms, K, dist, _, _ = cv2.calibrateCamera(
        [o.astype(np.float32) for o in object_points], [i.astype(np.float32) for i in image_points],
        tuple(int(s) for s in size), None, None)
    return float(rms), K, dist.reshape(-1)[:5]


def solve_pose(object_points: np.ndarray, image_points: np.ndarray, K: np.ndarray,
               dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera pose from ``object_points`` (N, 3) m seen at ``image_points`` (N, 2) px, N >= 4.

    Returns (rvec (3,), tvec (3,) m, residuals (N,) px). SQPnP (global) then
    Levenberg-Marquardt refinement.
    """
    obj = np.ascontiguousarray(object_points, np.float64).reshape(-1, 1, 3)
    img = np.ascontiguousarray(image_points, np.float64).reshape(-1, 1, 2)
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        raise ValueError("solvePnP failed")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
    proj = cv2.projectPoints(obj, rvec, tvec, K, dist)[0].reshape(-1, 2)
    residuals = np.linalg.norm(proj - img.reshape(-1, 2), axis=1)
    return rvec.reshape(3), tvec.reshape(3), residuals


# --------------------------------------------------------------------------- extrinsics
def _extrinsic_images(calib_dir: Path, extension: str, names: list[str]) -> list[Path]:
    """One extrinsics image per camera, matched by camera name in the path, else by order."""
    root = calib_dir / "extrinsics"
    ext = extension.lower().lstrip(".")
    files = sorted((p for p in root.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") == ext),
                   key=lambda p: [_numeric_key(Path(part)) for part in p.relative_to(root).parts]) \
        if root.is_dir() else []
    if not files:
        raise OpenKinError(f"no .{ext} extrinsics images", path=root,
                           fix="put one image per camera in calibration/extrinsics/ (or extrinsics/<cam>/), "
                               "or set extrinsics_extension")
    by_name = [next((f for f in files if n in f.relative_to(root).as_posix()), None) for n in names]
    if all(by_name) and len(set(by_name)) == len(names):
        return by_name
    if len(files) != len(names):
        raise OpenKinError(f"{len(files)} extrinsics images for {len(names)} cameras ({', '.join(names)})",
                           path=root, fix="give exactly one image per camera, named after the camera")
    return files


def _scene_points(calib_dir: Path) -> dict:
    """Pose2Sim's ``Image_points.json`` extrinsics entries by image file name."""
    from .formats.image_points import FILE_NAME, read_image_points

    path = calib_dir / FILE_NAME
    if not path.is_file():
        raise OpenKinError("extrinsics_method = 'scene' needs the image points of object_coords_3d", path=path,
                           fix="mark them in Blender (OpenKin › Calibrate › Scene points), or write this file as "
                               'Pose2Sim\'s clicker does: {"extrinsics": [{"cam_name": "cam01_ext.png", '
                               '"image_points_2d": [x1, y1, x2, y2, ...]}]} (null for hidden points), or use '
                               "extrinsics_method = 'board'")
    return read_image_points(path)


def _scene_correspondences(entry, default_obj: np.ndarray, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) object and (N, 2) image points of one camera, hidden points dropped."""
    img = entry.image
    obj = default_obj if entry.world is None else entry.world
    if len(img) != len(obj):
        raise OpenKinError(f"{entry.cam_name}: {len(img)} image points for {len(obj)} object points",
                           path=where, fix="give one image point (or null) per point of object_coords_3d, in order")
    seen = np.isfinite(img).all(axis=1) & np.isfinite(obj).all(axis=1)
    if seen.sum() < 4:
        raise OpenKinError(f"{entry.cam_name}: only {int(seen.sum())} visible points; 4 or more are needed "
                           "(6+ spread out recommended)", path=where, fix="mark more points of known coordinates")
    return obj[seen], img[seen]


def _extrinsics(cfg, calib_dir: Path, intrinsics: list[Intrinsics], save_debug: bool,
                intr_cfg=None) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict]:
    """Pose (rvec, tvec) of each camera and a record of residuals (px)."""
    names = [i.name for i in intrinsics]
    if cfg.extrinsics_method == "board":
        folders = _board_folders(calib_dir, names, cfg)
        if folders is not None:
            return _chained_board(cfg, intr_cfg, folders, intrinsics)
    images = _extrinsic_images(calib_dir, cfg.extrinsics_extension, names)
    scene = _scene_points(calib_dir) if cfg.extrinsics_method == "scene" else {}
    default_obj = np.array(cfg.scene.object_coords_3d, float).reshape(-1, 3)
    poses, record = [], {}
    for intr, image in zip(intrinsics, images):
        if cfg.extrinsics_method == "board":
            obj, img = _board_correspondences(cfg.board, image)
        else:
            if image.name not in scene:
                raise OpenKinError(f"no points for {image.name} in Image_points.json",
                                   path=calib_dir / "Image_points.json",
                                   fix=f'add {{"cam_name": "{image.name}", "image_points_2d": [...]}} to "extrinsics"')
            obj, img = _scene_correspondences(scene[image.name], default_obj, calib_dir / "Image_points.json")
        rvec, tvec, res = solve_pose(obj, img, intr.matrix, intr.distortions)
        rms = float(np.sqrt(np.mean(res ** 2)))
        log.info("%s: extrinsics from %s (%d points), RMS %.2f px", intr.name, image.name, len(obj), rms)
        poses.append((rvec, tvec))
        record[intr.name] = {"rms_px": rms, "points": len(obj), "image": image.name}
        if save_debug:
            _debug_image(calib_dir, image, img, obj, rvec, tvec, intr)
    return poses, {"cameras": record}


def _board_folders(calib_dir: Path, names: list[str], cfg) -> list[Path] | None:
    """``extrinsics/<cam>/`` of every camera when the board was filmed in several placements (a
    folder holds several images or a video) or is a ChArUco board; None: one image per camera."""
    root = calib_dir / "extrinsics"
    subs = [d for d in root.iterdir() if d.is_dir()] if root.is_dir() else []
    if not subs:
        return None
    from .project import match_camera_names

    by_name = match_camera_names(names, [d.name for d in subs])
    missing = [n for n in names if n not in by_name]
    if missing:
        raise OpenKinError(f"no extrinsics folder for {', '.join(missing)}", path=root,
                           fix="give every camera a folder calibration/extrinsics/<cam>/ with its board images or video")
    folders = [next(d for d in subs if d.name == by_name[n]) for n in names]
    media = (cfg.extrinsics_extension.lower().lstrip("."),) + VIDEO_EXTENSIONS
    counts = [sum(1 for p in f.iterdir() if p.suffix.lower().lstrip(".") in media) for f in folders]
    videos = any(p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS for f in folders for p in f.iterdir())
    return folders if cfg.board.board_type == "charuco" or videos or max(counts) > 1 else None


def _placement(label: str) -> int:
    """The placement number of a frame: ``video.mp4@120`` → 120; ``cam01_0007.png`` → 7."""
    if "@" in label:
        return int(label.rsplit("@", 1)[1])
    numbers = re.findall(r"\d+", Path(label).stem)
    if not numbers:
        raise OpenKinError(f"extrinsics image {label!r} has no placement number in its name",
                           fix="number the images of each camera by placement (cam01_0001.png, ...), the same "
                               "number for the same placement in every camera")
    return int(numbers[-1])


def _board_detector(cfg, intr_cfg):
    """``detect(gray) -> (obj (N,3) world-oriented board m, img (N,2) px) | None`` for the board of ``cfg``."""
    board = cfg.board
    square = board.extrinsics_square_size
    if board.board_type == "charuco":
        from .calibration_charuco import CharucoSpec, detect

        side = (square if np.isscalar(square) else square[0]) / 1000.0
        spec = CharucoSpec(tuple(intr_cfg.charuco_squares_nb), side, intr_cfg.charuco_marker_size / 1000.0,
                           intr_cfg.charuco_dictionary)
        cv_board = spec.board()
        detector = cv2.aruco.CharucoDetector(cv_board)

        def charuco(gray):
            view = detect(gray, cv_board, detector)
            if view is None:
                return None
            x, y = view.object[:, 0].astype(float), view.object[:, 1].astype(float)
            zero = np.zeros_like(x)   # OpenCV's board: x right, y down, z into it → Z up on the floor
            obj = np.stack([x, -y, zero], 1) if board.board_position == "horizontal" else np.stack([x, zero, -y], 1)
            return obj, view.corners.astype(float)
        return charuco
    corners_nb = tuple(board.extrinsics_corners_nb)
    side = square / 1000.0 if np.isscalar(square) else tuple(v / 1000.0 for v in square)
    obj = board_points(corners_nb, side, board.board_position).astype(float)

    def checkerboard(gray):
        img = find_corners(gray, corners_nb)
        return None if img is None else (obj, img.astype(float))
    return checkerboard


def _chained_board(cfg, intr_cfg, folders: list[Path], intrinsics: list[Intrinsics]):
    """Board placements filmed by every camera → poses chained through the cameras
    (:mod:`openkin.calibration_board`)."""
    from .calibration_board import BoardObservation, chain_board

    detect = _board_detector(cfg, intr_cfg)
    every_s = intr_cfg.extract_every_N_sec if intr_cfg is not None else 1.0
    obs = []
    for c, folder in enumerate(folders):
        for label, gray in _frames(folder, cfg.extrinsics_extension, every_s):
            found = detect(gray)
            if found is not None:
                obs.append(BoardObservation(c, _placement(label), *found))
        log.info("%s: board found in %d placements", intrinsics[c].name, sum(o.camera == c for o in obs))
    cams = [Camera(i.name, i.size, i.matrix, i.distortions, np.zeros(3), np.zeros(3), i.fisheye) for i in intrinsics]
    result = chain_board(obs, cams, where=folders[0].parent)
    return [(c.rotation, c.translation) for c in result.cameras], result.record


def _board_correspondences(board_cfg, image: Path) -> tuple[np.ndarray, np.ndarray]:
    gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise OpenKinError("unreadable image", path=image, fix="replace the file")
    corners_nb = tuple(board_cfg.extrinsics_corners_nb)
    img = find_corners(gray, corners_nb)
    if img is None:
        raise OpenKinError(f"no {corners_nb[0]}x{corners_nb[1]} checkerboard found", path=image,
                           fix="check extrinsics_corners_nb, or use extrinsics_method = 'scene'")
    square = board_cfg.extrinsics_square_size
    square = square / 1000.0 if np.isscalar(square) else tuple(s / 1000.0 for s in square)
    return board_points(corners_nb, square, board_cfg.board_position), img


def _debug_image(calib_dir: Path, image: Path, img_pts: np.ndarray, obj: np.ndarray,
                 rvec: np.ndarray, tvec: np.ndarray, intr: Intrinsics) -> None:
    """Marked points (green) and their reprojections (red) in ``calibration/debug/``."""
    frame = cv2.imread(str(image))
    if frame is None:
        return
    proj = cv2.projectPoints(obj.astype(np.float64), rvec, tvec, intr.matrix, intr.distortions)[0].reshape(-1, 2)
    for (x, y), (u, v) in zip(img_pts, proj):
        cv2.circle(frame, (int(round(x)), int(round(y))), 8, (0, 255, 0), 2)
        cv2.drawMarker(frame, (int(round(u)), int(round(v))), (0, 0, 255), cv2.MARKER_CROSS, 14, 2)
    out = calib_dir / "debug" / f"{image.stem}_reprojection.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", frame)
    if ok:
        with atomic_write(out, "wb") as f:
            f.write(buf.tobytes())


# --------------------------------------------------------------------------- extrinsics from keypoints
KEYPOINTS_OUTPUT = "Calib_keypoints.toml"


def _keypoints_stage(config, paths: ProjectPaths, progress: Progress | None) -> Path:
    """Calibrate from the person's keypoints (see :mod:`openkin.calibration_keypoints`)."""
    from .calibration_keypoints import KeypointParams, calibrate_from_keypoints

    cfg = config.calibration.calculate
    kp_cfg = cfg.extrinsics.keypoints
    pose_dir, folders = _keypoint_folders(paths)
    cams = [camera_name_of_pose(f) for f in folders]
    report(progress, 0.05, "intrinsics")
    intrinsics, source = _keypoint_intrinsics(cfg, paths, cams, kp_cfg.fov_deg, scaled(progress, 0.05, 0.3))
    report(progress, 0.3, f"reading {pose_dir.name}/")
    points2d, frame_numbers = _read_pose_folders(folders)
    height = _participant_height(config, paths)
    refine = (source == "fov_deg") if kp_cfg.refine_focal == "auto" else bool(kp_cfg.refine_focal)
    params = KeypointParams(min_confidence=kp_cfg.min_confidence, max_frames=kp_cfg.max_frames,
                            max_error_px=kp_cfg.max_error_px, refine_focal=refine)
    report(progress, 0.35, "camera poses from the keypoints")
    names = list(_skeleton(config).names)
    if points2d.shape[2] != len(names):
        raise OpenKinError(f"the pose files hold {points2d.shape[2]} keypoints, [pose] pose_model "
                           f"{config.pose.pose_model} has {len(names)}", path=pose_dir,
                           fix="set [pose] pose_model to the model that wrote these files")
    result = calibrate_from_keypoints(points2d, intrinsics, names, height, params, where=pose_dir)
    out = paths.calibration / KEYPOINTS_OUTPUT
    errors = [c["median_px"] for c in result.record["cameras"].values()]
    write_calibration(out, result.cameras, error=float(np.mean(errors)))
    record = {"type": "calculate", "intrinsics_from": source, "pose_folder": pose_dir.name,
              "synchronisation": "pose-sync/ (synchronised by the synchronization stage)"
              if pose_dir.name == paths.pose_sync.name else "pose/: the videos are assumed synchronised",
              "extrinsics": result.record}
    checks = _keypoint_checks(paths, pose_dir, result, points2d, frame_numbers)
    record["check_images"] = [p.relative_to(paths.calibration).as_posix() for p in checks]
    checks = _keypoint_checks(paths, pose_dir, result, points2d, frame_numbers)
    record["check_images"] = [p.relative_to(paths.calibration).as_posix() for p in checks]
    _write_record(paths, {**record, "output": out.name, "output_sha256": sha256_file(out)})
    log.info("calibration from keypoints written to %s (median reprojection error %s px)", out,
             ", ".join(f"{n} {e:.1f}" for n, e in zip(cams, errors)))
    return out


def _keypoint_checks(paths: ProjectPaths, pose_dir: Path, result, points2d: np.ndarray,
                     frame_numbers: np.ndarray) -> list[Path]:
    """``calibration/debug/<cam>_keypoints.jpg``: detections and reprojections on a video frame."""
    from .calibration_check import write_checks

    shifts = [0] * len(result.cameras)
    offsets = pose_dir / "offsets.toml"
    if pose_dir == paths.pose_sync and offsets.is_file():
        table = read_optional_toml(offsets).get("cameras", {})
        shifts = [int(table.get(c.name, {}).get("shift_frames", 0)) for c in result.cameras]
    videos = [_video_of(paths, c.name) for c in result.cameras]
    return write_checks(paths.calibration / "debug", result.cameras, points2d, result.points, videos=videos,
                        frame_numbers=frame_numbers, shifts=shifts)


def _video_of(paths: ProjectPaths, cam: str) -> Path | None:
    """The video of camera ``cam`` in ``videos/`` (name containing the camera's), or None."""
    if not paths.videos.is_dir():
        return None
    videos = sorted(p for p in paths.videos.glob(f"*{cam}*") if p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS)
    return videos[0] if videos else None


def camera_name_of_pose(folder: Path) -> str:
    """``cam01_json`` -> ``cam01``."""
    return re.sub(r"_?json$", "", folder.name) or folder.name


def _keypoint_folders(paths: ProjectPaths) -> tuple[Path, list[Path]]:
    """``pose-sync/`` if it holds camera folders, else ``pose/``: (folder, camera folders sorted)."""
    for pose_dir in (paths.pose_sync, paths.pose):
        folders = sorted((d for d in pose_dir.iterdir() if d.is_dir() and d.name.endswith("json")),
                         key=_numeric_key) if pose_dir.is_dir() else []
        if folders:
            if pose_dir == paths.pose:
                log.warning("calibration from keypoints: %s/ is used as it is, the videos are assumed "
                            "synchronised (run the synchronization stage first if they are not)", pose_dir.name)
            return pose_dir, folders
    raise OpenKinError("extrinsics_method = 'keypoints' needs the 2D keypoints of a person filmed by every camera, "
                       "and there are none", path=paths.pose,
                       fix="run the pose stage first (`openkin pose`), then `openkin calibration`; or put "
                           "OpenPose JSON folders <cam>_json in pose/")


def _read_pose_folders(folders: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """One person per camera and frame on the union of the frame numbers → ``(C,F,K,3)`` and
    the frame numbers ``(F,)``."""
    from .calibration_keypoints import pick_person
    from .formats.openpose import read_openpose_folder

    per_cam = [read_openpose_folder(f) for f in folders]
    ks = {pf.keypoints.shape[2] for pf in per_cam if pf.keypoints.size}
    if len(ks) != 1:
        raise OpenKinError(f"cameras have different keypoint counts {sorted(ks)}", path=folders[0].parent,
                           fix="all cameras must come from the same pose model")
    frames = np.unique(np.concatenate([pf.frames for pf in per_cam]))
    out = np.full((len(folders), len(frames), ks.pop(), 3), np.nan)
    for c, pf in enumerate(per_cam):
        if pf.keypoints.shape[1] == 0:
            continue
        out[c, np.searchsorted(frames, pf.frames)] = pick_person(pf.keypoints[None])[0]
    return out, frames


def _participant_height(config, paths: ProjectPaths) -> float:
    h = config.project.participant_height
    if h == "auto":
        raise OpenKinError("calibration from keypoints needs the person's height for the metric scale",
                           path=paths.root / "Config.toml",
                           fix="set [project] participant_height = <the height in metres of the person filmed>")
    return float(h[0] if isinstance(h, (tuple, list)) else h)


def _skeleton(config):
    from .skeletons import get_skeleton

    name = config.pose.pose_model
    try:
        return get_skeleton(name)
    except OpenKinError:
        return config.pose.custom_skeleton(name)


def _keypoint_intrinsics(cfg, paths: ProjectPaths, cams: list[str], fov_deg: float,
                         progress: Progress | None) -> tuple[list[Camera], str]:
    """Intrinsics of the pose cameras ``cams`` and where they came from: 'checkerboard', the
    calibration file's name, or 'fov_deg'."""
    calib_dir = paths.calibration
    existing = _intrinsics_file(calib_dir)
    boards = calib_dir / "intrinsics"
    if boards.is_dir() and any(p.is_dir() for p in boards.iterdir()) and (
            cfg.intrinsics.overwrite_intrinsics or existing is None):
        found = [Camera(i.name, i.size, i.matrix, i.distortions, np.zeros(3), np.zeros(3))
                 for i in _intrinsics(cfg.intrinsics, calib_dir, progress)]
        return _match(found, cams, boards), "checkerboard"
    if existing is not None:
        return _match(read_calibration(existing), cams, existing), existing.name
    return [_guess_camera(n, _video_size(paths, n), fov_deg) for n in cams], "fov_deg"


def _intrinsics_file(calib_dir: Path) -> Path | None:
    """The calibration file to take intrinsics from: the newest that is not our own output
    (whose focal lengths may be guesses), else our own."""
    if not calib_dir.is_dir():
        return None
    tomls = sorted(calib_dir.glob("*.toml"), key=lambda p: (p.name == KEYPOINTS_OUTPUT, -p.stat().st_mtime))
    return tomls[0] if tomls else None


def _match(cameras: list[Camera], cams: list[str], where: Path) -> list[Camera]:
    """The camera of each pose folder name, by name, else by order."""
    by_name = {c.name: c for c in cameras}
    if all(n in by_name for n in cams):
        return [by_name[n] for n in cams]
    if len(cameras) != len(cams):
        raise OpenKinError(f"{len(cams)} pose folders ({', '.join(cams)}) but intrinsics of {len(cameras)} cameras "
                           f"({', '.join(c.name for c in cameras)})", path=where,
                           fix="give intrinsics for exactly the filmed cameras, named as the pose folders")
    log.warning("intrinsics cameras %s matched to pose folders %s by order", [c.name for c in cameras], cams)
    return [Camera(n, c.size, c.matrix, c.distortions, c.rotation, c.translation, c.fisheye)
            for n, c in zip(cams, cameras)]


def _video_size(paths: ProjectPaths, cam: str) -> tuple[int, int]:
    """(width, height) px of the video of camera ``cam`` in ``videos/``."""
    videos = sorted(p for p in paths.videos.glob(f"*{cam}*") if p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS) \
        if paths.videos.is_dir() else []
    for video in videos:
        cap = cv2.VideoCapture(str(video))
        try:
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        if w > 0 and h > 0:
            return w, h
    raise OpenKinError(f"no intrinsics for camera {cam} and no video to read its frame size from", path=paths.videos,
                       fix="put the videos in videos/ (named after the cameras), a calibration file with "
                           "intrinsics in calibration/, or checkerboard images in calibration/intrinsics/<cam>/")


def guess_intrinsics(size: tuple[int, int], fov_deg: float) -> np.ndarray:
    """(3,3) pinhole K of an image ``size`` (w, h) px with horizontal field of view ``fov_deg``."""
    w, h = size
    f = 0.5 * w / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])


def _guess_camera(name: str, size: tuple[int, int], fov_deg: float) -> Camera:
    log.warning("camera %s: no intrinsics, focal length guessed from fov_deg = %g (refined with the poses)",
                name, fov_deg)
    return Camera(name, size, guess_intrinsics(size, fov_deg), np.zeros(5), np.zeros(3), np.zeros(3))

"""Intrinsics from a ChArUco board (OpenCV's ``cv2.aruco.CharucoDetector``), pinhole or fisheye.

A ChArUco board is a checkerboard whose white squares hold ArUco markers: every corner
has an id, so a partly visible board still gives corners, and a frame does not need the
whole board. From a sequence of frames (an image folder or a video: see
:func:`openkin.calibration._frames`), :func:`calibrate_charuco`:

1. detects the board's corners in every frame (at least ``MIN_CORNERS``);
2. leaves out blurred frames (variance of the Laplacian below ``BLUR_FRACTION`` of the
   median of the frames where the board was found);
3. picks up to ``max_views`` frames greedily: each new frame the one that adds most image
   cells (a 12 x 8 grid) not yet covered, with a bonus for a board angle (tilt, in 10-deg
   bins, and its direction) not yet seen, so the corners reach the edges of the image,
   where the distortion is, and the views are not all parallel (the focal length needs tilts);
4. calibrates (``cv2.calibrateCamera``, or ``cv2.fisheye.calibrate``), then drops the views
   whose own RMS is above 3x the median and calibrates again;
5. reports the RMS, the views used, the coverage of the image (fraction of cells with a
   corner, and of the border cells), a warning when the corners were only seen in the middle,
   and can draw a coverage PNG (:func:`coverage_image`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import OpenKinError

log = logging.getLogger(__name__)

MIN_CORNERS = 8
BLUR_FRACTION = 0.3
GRID = (12, 8)             # image cells (columns, rows) for coverage
TILT_BIN_DEG = 10.0
BORDER_COVERAGE_WARN = 0.5  # fraction of the border cells that should hold a corner


@dataclass(frozen=True)
class CharucoSpec:
    """The board: ``squares`` (columns, rows), ``square_m`` and ``marker_m`` side lengths, ArUco ``dictionary``."""

    squares: tuple[int, int] = (7, 5)
    square_m: float = 0.04
    marker_m: float = 0.03
    dictionary: str = "DICT_4X4_50"

    def board(self) -> cv2.aruco.CharucoBoard:
        if not hasattr(cv2.aruco, self.dictionary):
            raise OpenKinError(f"unknown ArUco dictionary {self.dictionary!r}",
                               fix="use an OpenCV name such as DICT_4X4_50, DICT_5X5_100, DICT_6X6_250")
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard(tuple(self.squares), self.square_m, self.marker_m, d)


@dataclass
class CharucoView:
    """One frame's detection: ``ids (n,)``, ``corners (n,2)`` px, ``object (n,3)`` m, sharpness, label."""

    label: str
    ids: np.ndarray
    corners: np.ndarray
    object: np.ndarray
    sharpness: float
    tilt_bin: tuple[int, int] = (0, 0)


@dataclass
class CharucoResult:
    """Intrinsics: ``matrix (3,3)``, ``distortions`` (5 pinhole, 4 fisheye), ``size`` (w, h), RMS px,
    frames seen / with the board / used, coverage fractions, warnings, the views used."""

    name: str
    size: tuple[int, int]
    matrix: np.ndarray
    distortions: np.ndarray
    fisheye: bool
    rms: float
    frames: int
    detected: int
    used: int
    coverage: float
    border_coverage: float
    warnings: list[str] = field(default_factory=list)
    views: list[CharucoView] = field(default_factory=list)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian of ``gray (H,W)`` uint8: larger is sharper."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def detect(gray: np.ndarray, board, detector, label: str = "") -> CharucoView | None:
    """ChArUco corners of ``gray (H,W)`` uint8, or None when fewer than ``MIN_CORNERS``."""
    corners, ids, _, _ = detector.detectBoard(gray)
    if ids is None or len(ids) < MIN_CORNERS:
        return None
    obj, img = board.matchImagePoints(corners, ids)
    return CharucoView(label, ids.reshape(-1), img.reshape(-1, 2).astype(np.float32),
                       obj.reshape(-1, 3).astype(np.float32), sharpness(gray))


def _cells(corners: np.ndarray, size: tuple[int, int]) -> set[tuple[int, int]]:
    w, h = size
    cx = np.clip((corners[:, 0] / w * GRID[0]).astype(int), 0, GRID[0] - 1)
    cy = np.clip((corners[:, 1] / h * GRID[1]).astype(int), 0, GRID[1] - 1)
    return set(zip(cx.tolist(), cy.tolist()))


def _tilt_bin(view: CharucoView, size: tuple[int, int]) -> tuple[int, int]:
    """Coarse board angle: tilt (10-deg bins) and its direction (quadrant) from a homography with a
    rough pinhole guess (focal = image width)."""
    H, _ = cv2.findHomography(view.object[:, :2], view.corners)
    if H is None:
        return (0, 0)
    w, h = size
    K = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1.0]])
    B = np.linalg.inv(K) @ H
    r1, r2 = B[:, 0] / np.linalg.norm(B[:, 0]), B[:, 1] / np.linalg.norm(B[:, 1])
    n = np.cross(r1, r2)
    n /= np.linalg.norm(n)
    tilt = np.degrees(np.arccos(abs(n[2])))
    return int(tilt // TILT_BIN_DEG), int(np.degrees(np.arctan2(n[1], n[0])) // 90) if tilt > 5 else 0


def select_views(views: list[CharucoView], size: tuple[int, int], max_views: int) -> list[CharucoView]:
    """Sharp views chosen greedily for new image cells and new board angles (see module docstring)."""
    if not views:
        return []
    med = float(np.median([v.sharpness for v in views]))
    sharp = [v for v in views if v.sharpness >= BLUR_FRACTION * med]
    for v in sharp:
        v.tilt_bin = _tilt_bin(v, size)
    chosen, covered, angles = [], set(), set()
    pool = list(sharp)
    while pool and len(chosen) < max_views:
        gains = [len(_cells(v.corners, size) - covered) + (3 if v.tilt_bin not in angles else 0)
                 + 0.01 * len(v.ids) for v in pool]
        best = int(np.argmax(gains))
        v = pool.pop(best)
        chosen.append(v)
        covered |= _cells(v.corners, size)
        angles.add(v.tilt_bin)
    return chosen


def _calibrate(views: list[CharucoView], size: tuple[int, int], fisheye: bool):
    """→ (rms, K, dist, per-view RMS (n,))."""
    dtype = np.float64 if fisheye else np.float32  # what each OpenCV function accepts
    shape = (1, -1) if fisheye else (-1, 1)  # cv2.fisheye.calibrate (OpenCV 5) takes (1, N, 3), not (N, 1, 3)
    obj = [v.object.reshape(*shape, 3).astype(dtype) for v in views]
    img = [v.corners.reshape(*shape, 2).astype(dtype) for v in views]
    if fisheye:
        flags = cv2.CALIB_RECOMPUTE_EXTRINSIC  # OpenCV 5: the flags moved out of cv2.fisheye
        crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-9)
        rms, K, dist, rvecs, tvecs = cv2.fisheye.calibrate(obj, img, size, None, None, flags=flags,
                                                             criteria=crit)
    else:
        rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, size, None, None)
    per_view = []
    for o, i, r, t in zip(obj, img, rvecs, tvecs):
        if fisheye:
            p = cv2.fisheye.projectPoints(o, r, t, K, dist)[0]
        else:
            p = cv2.projectPoints(o, r, t, K, dist)[0]
        per_view.append(float(np.sqrt(np.mean(np.sum((p - i) ** 2, axis=-1)))))
    return float(rms), K, np.asarray(dist, float).reshape(-1)[:4 if fisheye else 5], np.array(per_view)


def calibrate_charuco(frames, spec: CharucoSpec, name: str = "camera", fisheye: bool = False,
                      max_views: int = 40, where=None) -> CharucoResult:
    """Intrinsics from ``frames`` (iterable of (label, gray (H,W) uint8)) of the board ``spec``."""
    board = spec.board()
    detector = cv2.aruco.CharucoDetector(board)
    views, size, n = [], None, 0
    for label, gray in frames:
        n += 1
        if size is not None and gray.shape[::-1] != size:
            raise OpenKinError(f"{name}: frame {label} is {gray.shape[::-1]}, the others {size}", path=where,
                               fix="use one resolution per camera")
        size = gray.shape[::-1]
        v = detect(gray, board, detector, label)
        if v is not None:
            views.append(v)
    chosen = select_views(views, size, max_views) if size else []
    if len(chosen) < 4:
        raise OpenKinError(f"{name}: the ChArUco board {spec.squares[0]}x{spec.squares[1]} ({spec.dictionary}) was "
                           f"found in {len(views)} of {n} frames ({len(chosen)} sharp); 4 or more needed", path=where,
                           fix="check the board settings (squares, dictionary) and film the board sharp, from "
                               "several angles, reaching the edges and corners of the image")
    rms, K, dist, per_view = _calibrate(chosen, size, fisheye)
    keep = per_view <= max(3 * np.median(per_view), 0.5)
    if (~keep).any() and keep.sum() >= 4:
        chosen = [v for v, k in zip(chosen, keep) if k]
        rms, K, dist, per_view = _calibrate(chosen, size, fisheye)
    cells = set().union(*[_cells(v.corners, size) for v in chosen])
    border = {(i, j) for i in range(GRID[0]) for j in range(GRID[1]) if i in (0, GRID[0] - 1) or j in (0, GRID[1] - 1)}
    coverage, border_cov = len(cells) / (GRID[0] * GRID[1]), len(cells & border) / len(border)
    warnings = []
    if border_cov < BORDER_COVERAGE_WARN:
        warnings.append(f"{name}: the board's corners were seen only in the middle of the image "
                        f"({100 * border_cov:.0f}% of the border cells): the distortion near the edges is "
                        "extrapolated; film the board close to every edge and corner of the image")
    for w in warnings:
        log.warning(w)
    log.info("%s: ChArUco intrinsics from %d of %d frames (board in %d), RMS %.3f px, fx %.1f fy %.1f, "
             "coverage %.0f%%", name, len(chosen), n, len(views), rms, K[0, 0], K[1, 1], 100 * coverage)
    return CharucoResult(name, tuple(int(s) for s in size), K, dist, fisheye, rms, n, len(views), len(chosen),
                         coverage, border_cov, warnings, chosen)


def coverage_image(result: CharucoResult) -> np.ndarray:
    """(H,W,3) uint8: the corners used (a colour per view) over the coverage grid, RMS written on it."""
    w, h = result.size
    img = np.full((h, w, 3), 255, np.uint8)
    for i in range(1, GRID[0]):
        cv2.line(img, (i * w // GRID[0], 0), (i * w // GRID[0], h), (220, 220, 220), 1)
    for j in range(1, GRID[1]):
        cv2.line(img, (0, j * h // GRID[1]), (w, j * h // GRID[1]), (220, 220, 220), 1)
    rng = np.random.default_rng(0)
    r = max(2, w // 300)
    for v in result.views:
        colour = tuple(int(c) for c in rng.integers(0, 200, 3))
        for x, y in v.corners:
            cv2.circle(img, (int(round(x)), int(round(y))), r, colour, -1)
    text = (f"{result.name}: {result.used} views, RMS {result.rms:.2f} px, coverage {100 * result.coverage:.0f}% "
            f"(border {100 * result.border_coverage:.0f}%)")
    cv2.putText(img, text, (10, max(30, h // 30)), cv2.FONT_HERSHEY_SIMPLEX, max(0.6, w / 1600), (0, 0, 0), 2)
    return img

"""Pose stage benchmark on the Pose2Sim demo (4 real videos, 100 frames each).

Prints, for the offline backend (bundled BlazePose):
- % of frames with the person found, per camera;
- stage wall time, frames/s, and the ratio of the stage time to the networks'
  bare inference time on the same inputs (goal ≤ 1.25×): the inputs the stage
  fed to the networks are recorded, then the same ONNX sessions (same thread
  count) are timed on them alone;
- mean reprojection error (px) of the 2D keypoints triangulated from the four
  cameras with the demo's Qualisys calibration (goal < 10 px): likelihood-
  weighted DLT (openkin.geometry) on undistorted points, every
  camera with confidence ≥ 0.3, no view rejection (a conservative figure);
- writes ``pose_detections.png`` (frame 50 of each camera, drawn from the
  written JSON) for a person to look at.

Usage: .venv/bin/python tests/bench/bench_pose.py [--out DIR] [--workers auto|1|2]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from openkin.assets import asset_path, demo_project
from openkin.config import load_config
from openkin.formats.openpose import read_openpose_dir
from openkin.pose import run_stage
from openkin.pose.offline import BlazePoseTracker
from openkin.pose.overlay import draw_people
from openkin.project import ProjectPaths
from openkin.skeletons import HALPE_26

CAMS = ("cam01", "cam02", "cam03", "cam04")
SHOW_FRAME = 50


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_pose(root: Path, workers) -> tuple[float, dict]:
    paths = ProjectPaths(root)
    config = load_config(root, overrides={"pose": {"pose_backend": "offline", "save_video": "none",
                                                   "overwrite_pose": True, "parallel_workers_pose": workers,
                                                   "display_detection": False}})
    t0 = time.perf_counter()
    run_stage(config, paths)
    wall = time.perf_counter() - t0
    return wall, json.loads((paths.reports / "pose_summary.json").read_text())


class Recorder:
    """Stands in for an onnxruntime session: records inputs (compactly, as uint8) and runs them."""

    def __init__(self, session, to_uint8):
        self.session, self.to_uint8, self.inputs = session, to_uint8, []

    def run(self, names, feed):
        x = next(iter(feed.values()))
        self.inputs.append(self.to_uint8(x))
        return self.session.run(names, feed)


def bare_inference(video: Path, threads: int, det_frequency: int = 4) -> tuple[float, float, int, int]:
    """Replay the stage's network inputs for one video and time the networks alone.

    Returns (wall seconds, CPU seconds, detector runs, landmark runs)."""
    t = BlazePoseTracker(det_frequency=det_frequency, threads=threads)
    det = Recorder(t.det, lambda x: np.round((x + 1.0) * 127.5).astype(np.uint8))
    lm = Recorder(t.lm, lambda x: np.round(x * 255.0).astype(np.uint8))
    t.det, t.lm = det, lm
    cap = cv2.VideoCapture(str(video))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        t(frame)
    det_in = [x.astype(np.float32) / 127.5 - 1.0 for x in det.inputs]
    lm_in = [x.astype(np.float32) / 255.0 for x in lm.inputs]
    for s, xs in ((det.session, det_in[:2]), (lm.session, lm_in[:2])):  # warm-up, as the stage's first frames
        for x in xs:
            s.run(None, {"input_1": x})
    t0, c0 = time.perf_counter(), time.process_time()
    for x in det_in:
        det.session.run(None, {"input_1": x})
    for x in lm_in:
        lm.session.run(["Identity", "Identity_1", "Identity_3"], {"input_1": x})
    return time.perf_counter() - t0, time.process_time() - c0, len(det_in), len(lm_in)


def reprojection(root: Path) -> dict | None:
    """{label: (mean px, median px, per-camera means (C,), fraction of keypoint-frames)} for a plain
    all-camera DLT and for the triangulation module's robust view rejection (Pose2Sim defaults:
    15 px, likelihood 0.3, 2 cameras); None if those modules are missing."""
    try:
        from openkin.formats.calib_converters import convert_calibration
        from openkin.geometry import reprojection_errors, triangulate_dlt, triangulate_robust, undistort_points
    except ImportError as e:
        out(f"reprojection: skipped ({e})")
        return None
    cams = convert_calibration(root / "calibration" / "Calib.qca.txt", "qualisys")
    kps = [read_openpose_dir(root / "pose" / f"{c}_json")[0][:, 0] for c in CAMS]  # (F, K, 3) person slot 0
    n = min(len(k) for k in kps)
    flat = np.stack([k[:n] for k in kps]).reshape(len(CAMS), -1, 3)  # (C, F*K, 3)
    P = np.stack([c.matrix @ np.c_[c.R, c.translation] for c in cams])
    und = undistort_points(flat[..., :2], np.stack([c.matrix for c in cams]),
                           [np.asarray(c.distortions) for c in cams])
    w = np.where((flat[..., 2] >= 0.3) & np.isfinite(und).all(-1), flat[..., 2], 0.0)
    results = {}
    X = triangulate_dlt(und, w, P)
    used = (w > 0) & np.isfinite(X).all(-1)[None]
    results["all cameras, no rejection"] = _errors(reprojection_errors(P, X, und), used, np.isfinite(X).all(-1))
    r = triangulate_robust(und, w, P, threshold=15.0, min_cameras=2)
    ok = np.isfinite(r.X).all(-1)
    results["robust (15 px view rejection)"] = _errors(reprojection_errors(P, r.X, und), r.used & ok[None], ok)
    return results


def _errors(err: np.ndarray, used: np.ndarray, ok: np.ndarray) -> tuple[float, float, np.ndarray, float]:
    per_cam = np.array([err[c][used[c]].mean() for c in range(len(err))])
    return float(err[used].mean()), float(np.median(err[used])), per_cam, float(ok.mean())


def pipeline_triangulation(root: Path) -> tuple[float, float, float] | None:
    """Run calibration → synchronization → association → triangulation on the bench project and
    read person 0's mean reprojection error from ``pose-3d/triangulation_report.json``."""
    from openkin.pipeline import run_stages

    needed = ["calibration", "synchronization", "association", "triangulation"]
    run_stages(root, needed, progress_bars=False)
    report = json.loads((root / "pose-3d" / "triangulation_report.json").read_text())
    person = report["persons"][0]
    return person["reprojection_error_px"], person["reprojection_error_mm"], person["cameras_excluded_mean"]


def render(root: Path, dest: Path) -> None:
    tiles = []
    for cam in CAMS:
        kp, frames, ids = read_openpose_dir(root / "pose" / f"{cam}_json")
        cap = cv2.VideoCapture(str(root / "videos" / f"{cam}.mp4"))
        cap.set(cv2.CAP_PROP_POS_FRAMES, SHOW_FRAME)
        frame = cap.read()[1]
        i = int(np.flatnonzero(frames == SHOW_FRAME)[0])
        people = np.nan_to_num(kp[i], nan=0.0)
        img = draw_people(frame, people, HALPE_26, ids[i])
        cv2.putText(img, cam, (30, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (0, 255, 255), 5)
        tiles.append(cv2.resize(img, (540, 960), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(dest), np.hstack(tiles))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/openkin_bench_pose")
    ap.add_argument("--workers", default="auto")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    root = Path(args.out) / "demo"
    if root.exists():
        shutil.rmtree(root)
    demo_project(root)

    wall, summary = run_pose(root, workers)
    cams = summary["cameras"]
    frames = sum(c["frames"] for c in cams)
    out(f"pose stage, offline BlazePose → {summary['keypoints']}, workers={workers}")
    out(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (machine shared: wall times vary)")
    out(f"{'camera':8s} {'frames':>6s} {'found %':>8s} {'wall s':>7s} {'cpu s':>7s} {'in-net s':>8s}")
    for c in cams:
        out(f"{c['name']:8s} {c['frames']:6d} {100 * c['found_fraction']:8.1f} {c['seconds']:7.2f} "
            f"{c['cpu_seconds']:7.2f} {c['infer_seconds']:8.2f}")
    out(f"stage wall time {wall:.2f} s for {frames} frames: {frames / wall:.1f} frames/s")

    n_workers = min(len(CAMS), os.cpu_count() or 1) if workers == "auto" else int(workers)
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    bare = [bare_inference(asset_path(f"Demo_SinglePerson/videos/{c}.mp4"), threads) for c in CAMS]
    bare_wall, bare_cpu = sum(b[0] for b in bare), sum(b[1] for b in bare)
    ideal = bare_wall / n_workers
    out(f"bare inference on the same inputs: {bare_wall:.2f} s wall, {bare_cpu:.2f} s CPU "
        f"({sum(b[2] for b in bare)} detector + {sum(b[3] for b in bare)} landmark runs, {threads} thread(s))")
    out(f"stage / bare inference: wall {wall:.2f} / ({bare_wall:.2f} / {n_workers} workers) = {wall / ideal:.2f}×; "
        f"CPU {sum(c['cpu_seconds'] for c in cams):.2f} / {bare_cpu:.2f} = "
        f"{sum(c['cpu_seconds'] for c in cams) / bare_cpu:.2f}×  (goal ≤ 1.25×)")
    decode = sum(c.get("decode_cpu_seconds", 0.0) for c in cams)
    if decode:
        rest = sum(c['cpu_seconds'] for c in cams) - bare_cpu - decode
        out(f"stage CPU = networks {bare_cpu:.2f} s + video decoding (its thread) {decode:.2f} s + the rest "
            f"(crops, decoding landmarks, tracking, writing, sessions) {rest:.2f} s; decoding alone puts the floor "
            f"at {(bare_cpu + decode) / bare_cpu:.2f}×")
    out(f"load average after: {os.getloadavg()[0]:.1f}")

    rep = reprojection(root)
    if rep is not None:
        for label, (mean, median, per_cam, kept) in rep.items():
            out(f"reprojection error, {label}: mean {mean:.2f} px, median {median:.2f} px (goal < 10 px), "
                f"{100 * kept:.0f} % of keypoint-frames; per camera: "
                + ", ".join(f"{c} {e:.1f}" for c, e in zip(CAMS, per_cam)))
    pipeline = pipeline_triangulation(root)
    if pipeline is not None:
        px, mm, excluded = pipeline
        out(f"reprojection error, OpenKin triangulation stage (sync + association + swaps + view rejection): "
            f"{px:.2f} px (~{mm:.0f} mm), {excluded:.2f} cameras excluded per point (goal < 10 px)")
    png = Path(args.out) / "pose_detections.png"
    render(root, png)
    out(f"detections drawn: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

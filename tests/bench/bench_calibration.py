"""Benchmark of calibration from the people themselves (extrinsics_method = 'keypoints'): prints figures.

1. Ground-truth scenes (300 frames, the demo's 4 real cameras, HALPE_26): 'mild' (1.5 px noise)
   and 'realistic' (correlated noise, outliers, swaps, occlusions; synchronised), with the exact
   intrinsics, and 'mild' with focal lengths guessed 8% too long (refined). Scored after the
   similarity that best maps the camera centres onto the truth's: centre errors (% of the
   camera-to-subject distance; goal < 1%), orientation errors (goal < 0.5 deg), focal (goal < 1%),
   scale (goal within 1% given the height), tilt of Z up against the truth's, time.
2. Pose2Sim's real demo (4 cameras, 100 frames, offline BlazePose through the pose stage, Qualisys
   intrinsics), against the Qualisys calibration: centres (goal < 5 cm), orientations (goal < 2 deg),
   scale (goal within 3%; the height given is the one Pose2Sim's estimator measures on the keypoints
   triangulated with the Qualisys calibration, the demo's Config says 'auto'), and the
   triangulation reprojection error with both calibrations (goal: no worse).

3. Side by side with Caliscope's markerless calibration (``calibrate_extrinsics`` of caliscope
   0.11.8 on the same 2D keypoints and intrinsics, every keypoint an observation; installed from
   PyPI on first use into ~/.cache/openkin/bench/caliscope-venv; tests/bench/caliscope_markerless.py
   runs there). Caliscope takes no height, so its scale is not scored; centres and orientations
   are, after the same similarity alignment.

Run: ``PYTHONPATH=engine .venv/bin/python tests/bench/bench_calibration.py [--no-demo] [--no-caliscope]``.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from calib_scoring import reprojection_px, score  # noqa: E402

from openkin.calibration_keypoints import KeypointParams, calibrate_from_keypoints, pick_person  # noqa: E402
from openkin.formats.calibration import Camera  # noqa: E402
from openkin.skeletons import get_skeleton  # noqa: E402
from openkin.synth import build_scene  # noqa: E402
from openkin.synth.cameras import look_at_point  # noqa: E402
from openkin.inputs import read_views  # noqa: E402

NAMES = list(get_skeleton("HALPE_26").names)


def _print(label: str, s: dict, seconds: float, extra: str = "") -> None:
    print(f"{label:34s} scale {100 * (s['scale'] - 1):+.2f}%  centres max {s['centre_pct'].max():.3f}% "
          f"({1000 * s['centre_m'].max():.1f} mm)  orient max {s['orient_deg'].max():.3f} deg  "
          f"focal max {100 * np.abs(s['focal_ratio'] - 1).max():.2f}%  Z tilt {s['vertical_deg']:.2f} deg  "
          f"{seconds:.1f} s {extra}")


def guessed(cams: list[Camera], factor: float) -> list[Camera]:
    out = []
    for c in cams:
        K = c.matrix.copy()
        K[0, 0] *= factor
        K[1, 1] *= factor
        out.append(Camera(c.name, c.size, K, c.distortions, np.zeros(3), np.zeros(3)))
    return out


def synthetic(tmp: Path) -> None:
    for preset, kw in (("mild", {}), ("realistic", {"max_offset_frames": 0.0})):
        root = tmp / preset
        build_scene(root, preset, n_frames=300, seed=1, **kw)
        views = read_views(root / "pose", root / "truth" / "Calib_exact.toml")
        pts, truth = pick_person(views.keypoints), views.cameras
        subject = look_at_point(truth, height=0.9)
        runs = [("exact intrinsics", truth, KeypointParams())]
        if preset == "mild":
            runs.append(("focal guessed +8%, refined", guessed(truth, 1.08), KeypointParams(refine_focal=True)))
            from openkin.calibration import guess_intrinsics

            fov = [Camera(c.name, c.size, guess_intrinsics((c.width, c.height), 38.0), np.zeros(5), np.zeros(3),
                          np.zeros(3)) for c in truth]
            runs.append(("no intrinsics, fov_deg 38, refined", fov, KeypointParams(refine_focal=True)))
        for label, intr, params in runs:
            t0 = time.perf_counter()
            res = calibrate_from_keypoints(pts, intr, NAMES, 1.7, params)
            dt = time.perf_counter() - t0
            med = max(v["median_px"] for v in res.record["cameras"].values())
            _print(f"{preset}, {label}", score(res.cameras, truth, subject), dt, f"(worst median {med:.2f} px)")
            if label == "exact intrinsics" and CALISCOPE:
                _caliscope_row(f"{preset}, Caliscope 0.11.8", pts, intr, truth, subject, dt)


def demo_poses(root: Path) -> Path:
    """Pose2Sim's single-person demo at ``root`` (4 real videos, 100 frames) with its Qualisys
    calibration converted and 2D poses from the offline model: what the keypoint calibration
    is scored on (the benchmark and tests/engine/test_calib_keypoints.py)."""
    from openkin.assets import demo_project
    from openkin.cli import run_stages

    demo_project(root)
    (root / "Config.toml").write_text(
        "[project]\nframe_range = [0, 100]\n[pose]\npose_model = 'Body_with_feet'\npose_backend = 'offline'\n"
        "save_video = 'none'\n[calibration]\ncalibration_type = 'convert'\n[calibration.convert]\n"
        "convert_from = 'qualisys'\n")
    run_stages(root, ["calibration", "pose"], progress_bars=False)
    return root


def demo(tmp: Path) -> None:
    from openkin.measure import participant_height

    root = demo_poses(tmp / "demo")
    figures = demo_figures(root, participant_height)
    s = figures["score"]
    _print("demo vs Qualisys", s, figures["seconds"])
    if CALISCOPE:
        views = read_views(root / "pose", root / "calibration" / "Calib_qualisys.toml")
        subject = np.nanmedian(_triangulated(views.cameras, pick_person(views.keypoints)).reshape(-1, 3), axis=0)
        _caliscope_row("demo, Caliscope 0.11.8", pick_person(views.keypoints), views.cameras, views.cameras,
                       subject, figures["seconds"])
    print(f"{'':34s} centres (mm) {np.round(1000 * s['centre_m']).astype(int).tolist()}  orient (deg) "
          f"{np.round(s['orient_deg'], 2).tolist()}  height given {figures['height']:.3f} m")
    q, k = figures["qualisys_px"], figures["keypoints_px"]
    print(f"{'':34s} triangulation reprojection px: Qualisys median {q['median']:.2f} mean {q['mean']:.2f}; "
          f"keypoints median {k['median']:.2f} mean {k['mean']:.2f}")


def demo_figures(root: Path, height_of) -> dict:
    """Calibrate the demo from its keypoints and compare with its Qualisys calibration."""
    views = read_views(root / "pose", root / "calibration" / "Calib_qualisys.toml")
    pts, qualisys = pick_person(views.keypoints), views.cameras
    X = _triangulated(qualisys, pts)
    height = float(height_of(X, NAMES))
    t0 = time.perf_counter()
    res = calibrate_from_keypoints(pts, qualisys, NAMES, height)
    seconds = time.perf_counter() - t0
    subject = np.nanmedian(X.reshape(-1, 3), axis=0)
    return {"score": score(res.cameras, qualisys, subject), "seconds": seconds, "height": height,
            "qualisys_px": reprojection_px(qualisys, pts), "keypoints_px": reprojection_px(res.cameras, pts),
            "cameras": res.cameras}


def _triangulated(cameras: list[Camera], pts: np.ndarray) -> np.ndarray:
    """(F,K,3) DLT of ``pts (C,F,K,3)`` with ``cameras`` (the reference's own height measurement)."""
    from openkin.geometry import triangulate_dlt, undistort_points

    K = np.stack([c.matrix for c in cameras])
    uv = undistort_points(pts[..., :2].copy(), K, [c.distortions for c in cameras])
    w = np.where(np.isfinite(pts[..., :2]).all(-1) & (np.nan_to_num(pts[..., 2]) >= 0.5), pts[..., 2], 0.0)
    P = np.stack([c.projection for c in cameras])
    C, F, Kn = w.shape
    return triangulate_dlt(np.nan_to_num(uv.reshape(C, -1, 2)), w.reshape(C, -1), P).reshape(F, Kn, 3)


CALISCOPE = "--no-caliscope" not in sys.argv
CALISCOPE_VERSION = "0.11.8"
CALISCOPE_ENV = Path.home() / ".cache" / "openkin" / "bench" / "caliscope-venv"


def caliscope_python() -> Path:
    """Caliscope's own virtual environment (Python 3.13, from PyPI), made once and cached."""
    import subprocess

    python = CALISCOPE_ENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.exists():
        print(f"installing caliscope=={CALISCOPE_VERSION} into {CALISCOPE_ENV} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(CALISCOPE_ENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"caliscope=={CALISCOPE_VERSION}"], check=True)
    return python


def caliscope_calibrate(pts: np.ndarray, intrinsics: list[Camera], min_confidence: float = 0.5):
    """Caliscope's markerless extrinsics from ``pts (C,F,K,3)`` → (cameras, seconds)."""
    import subprocess
    import tempfile as tf

    with tf.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.npz", Path(d) / "out.npz"
        np.savez(src, points=pts, K=np.stack([c.matrix for c in intrinsics]),
                 dist=np.stack([np.resize(np.asarray(c.distortions, float), 5) for c in intrinsics]),
                 size=np.array([[c.width, c.height] for c in intrinsics]), min_confidence=min_confidence)
        script = Path(__file__).with_name("caliscope_markerless.py")
        subprocess.run([str(caliscope_python()), str(script), str(src), str(dst)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = np.load(dst)
        cams = [Camera(c.name, c.size, out["K"][i], c.distortions, cv2_rodrigues(out["R"][i]), out["t"][i])
                for i, c in enumerate(intrinsics)]
        return cams, float(out["seconds"])


def cv2_rodrigues(R: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.asarray(R, float))[0].reshape(3)


def _caliscope_row(label: str, pts, intrinsics, truth, subject, ours_seconds: float) -> None:
    try:
        cams, seconds = caliscope_calibrate(pts, intrinsics)
    except Exception as e:  # a peer's failure is a figure, not the benchmark's end
        print(f"{label:34s} failed: {type(e).__name__}: {e}")
        return
    s = score(cams, truth, subject)
    print(f"{label:34s} scale (no height input)  centres max {s['centre_pct'].max():.3f}% "
          f"({1000 * s['centre_m'].max():.1f} mm)  orient max {s['orient_deg'].max():.3f} deg  "
          f"focal max {100 * np.abs(s['focal_ratio'] - 1).max():.2f}%  {seconds:.1f} s "
          f"({seconds / max(ours_seconds, 1e-9):.1f}x OpenKin's time)")


def charuco() -> None:
    """ChArUco intrinsics on the synthetic images of tests/engine/test_calib_charuco.py (goals: focal
    within 0.5%, principal point within 2 px, RMS < 0.5 px)."""
    import test_calib_charuco as tc
    from openkin.calibration_charuco import calibrate_charuco

    for fisheye in (False, True):
        t0 = time.perf_counter()
        res = calibrate_charuco(tc._views(fisheye), tc.SPEC, "cam", fisheye=fisheye, max_views=25)
        Kt = tc.K_FISH if fisheye else tc.K
        focal = 100 * max(abs(res.matrix[0, 0] / Kt[0, 0] - 1), abs(res.matrix[1, 1] / Kt[1, 1] - 1))
        pp = float(np.hypot(*(res.matrix[:2, 2] - Kt[:2, 2])))
        print(f"charuco {'fisheye' if fisheye else 'pinhole':28s} focal {focal:.3f}%  principal point {pp:.2f} px  "
              f"RMS {res.rms:.3f} px  views {res.used}/{res.detected}  coverage {100 * res.coverage:.0f}%  "
              f"{time.perf_counter() - t0:.1f} s")


def main() -> None:
    charuco()
    with tempfile.TemporaryDirectory() as d:
        synthetic(Path(d))
        if "--no-demo" not in sys.argv:
            demo(Path(d))


if __name__ == "__main__":
    main()

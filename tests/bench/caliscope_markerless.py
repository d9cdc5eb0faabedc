"""Caliscope's markerless extrinsic calibration on OpenKin's inputs, for the side-by-side in
bench_calibration.py. Runs in Caliscope's own environment (``pip install caliscope==0.11.8``,
cached in ~/.cache/openkin/bench/caliscope-venv): it never imports openkin.

    python caliscope_markerless.py IN.npz OUT.npz

IN: ``points (C,F,K,3)`` x px, y px, confidence (NaN unseen), ``K (C,3,3)``, ``dist (C,5)``,
``size (C,2)``, ``min_confidence``. Every keypoint of every frame is a Caliscope observation
(``object_id`` 0, ``keypoint_id`` k, ``sync_index`` f), as its ONNX trackers give them.
OUT: ``R (C,3,3)``, ``t (C,3)`` world→camera (OpenCV), ``K (C,3,3)`` after its intrinsic
refinement, ``seconds``.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from caliscope.api import CameraArray, CameraData, ImagePoints, calibrate_extrinsics


def image_points(points: np.ndarray, min_confidence: float) -> ImagePoints:
    C, F, K, _ = points.shape
    c, f, k = np.nonzero(np.isfinite(points[..., :2]).all(-1) & (np.nan_to_num(points[..., 2]) >= min_confidence))
    df = pd.DataFrame({"sync_index": f.astype(int), "cam_id": c.astype(int), "object_id": 0,
                       "keypoint_id": k.astype(int), "img_loc_x": points[c, f, k, 0], "img_loc_y": points[c, f, k, 1]})
    return ImagePoints(df)


def main(src: str, dst: str) -> int:
    data = np.load(src)
    cams = {i: CameraData(cam_id=i, size=(int(w), int(h)), matrix=data["K"][i].copy(),
                          distortions=data["dist"][i].copy()) for i, (w, h) in enumerate(data["size"])}
    t0 = time.perf_counter()
    run = calibrate_extrinsics(image_points(data["points"], float(data["min_confidence"])), CameraArray(cams), None)
    seconds = time.perf_counter() - t0
    out = run.capture_volume.camera_array.cameras
    ids = sorted(out)
    np.savez(dst, R=np.stack([out[i].rotation for i in ids]), t=np.stack([out[i].translation for i in ids]),
             K=np.stack([out[i].matrix for i in ids]), seconds=seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

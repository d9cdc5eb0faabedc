"""Score a calibration against a reference after the similarity that best maps its camera centres
onto the reference's (Umeyama 1991, written out here independently of the code under test)."""
from __future__ import annotations

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity ``dst ≈ s R src + t`` of ``src, dst (N,3)`` → (s, R (3,3), t (3,))."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    R = U @ D @ Vt
    s = float(np.trace(np.diag(S) @ D) / (a ** 2).sum(1).mean())
    return s, R, mu_d - s * R @ mu_s


def _angle_deg(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))


def score(ours: list, truth: list, subject: np.ndarray) -> dict:
    """Cameras ``ours`` vs ``truth`` (same order): centre errors (m and % of the camera-to-subject
    distance), orientation errors (deg), focal ratios, the scale of the alignment (1 = metric scale
    right), and the tilt (deg) between our Z axis and the reference's."""
    A = np.array([c.center for c in ours])
    B = np.array([c.center for c in truth])
    s, R, t = umeyama(A, B)
    moved = s * A @ R.T + t
    dist = np.linalg.norm(B - subject, axis=1)
    centre = np.linalg.norm(moved - B, axis=1)
    # camera rotation world->camera: ours R_c maps our world; in the reference world it is R_c R^T
    orient = [_angle_deg(o.R @ R.T @ tr.R.T) for o, tr in zip(ours, truth)]
    focal = [o.matrix[0, 0] / tr.matrix[0, 0] for o, tr in zip(ours, truth)]
    z = R @ np.array([0.0, 0.0, 1.0])
    return {"scale": s, "centre_m": centre, "centre_pct": 100 * centre / dist, "orient_deg": np.array(orient),
            "focal_ratio": np.array(focal), "vertical_deg": float(np.degrees(np.arccos(np.clip(z[2], -1, 1))))}


def reprojection_px(cameras: list, points2d: np.ndarray, min_confidence: float = 0.5) -> dict:
    """Triangulation reprojection error of one person's keypoints ``points2d (C,F,K,3)`` with
    ``cameras``: confidence-weighted DLT of every confident keypoint with all cameras (OpenCV's
    undistortion and projection, no outlier removal) → {'median', 'mean'} px over observations."""
    import cv2

    C = len(cameras)
    ok = np.isfinite(points2d[..., :2]).all(-1) & (np.nan_to_num(points2d[..., 2]) >= min_confidence)
    flat = points2d.reshape(C, -1, 3)
    okf = ok.reshape(C, -1)
    norm = np.full(flat.shape[:2] + (2,), np.nan)
    for c, cam in enumerate(cameras):
        if okf[c].any():
            und = cv2.undistortPoints(flat[c, okf[c], :2].reshape(-1, 1, 2).astype(np.float64), cam.matrix,
                                      cam.distortions)
            norm[c, okf[c]] = und.reshape(-1, 2)
    Rt = np.stack([np.hstack([cam.R, cam.translation[:, None]]) for cam in cameras])  # normalised cameras
    n = flat.shape[1]
    X = np.full((n, 3), np.nan)
    for i in np.flatnonzero(okf.sum(0) >= 2):
        rows = [w * (norm[c, i, 0] * Rt[c, 2] - Rt[c, 0]) for c in range(C) if okf[c, i]
                for w in [flat[c, i, 2]]]
        rows += [w * (norm[c, i, 1] * Rt[c, 2] - Rt[c, 1]) for c in range(C) if okf[c, i] for w in [flat[c, i, 2]]]
        h = np.linalg.svd(np.array(rows))[2][-1]
        X[i] = h[:3] / h[3]
    errs = []
    for c, cam in enumerate(cameras):
        use = okf[c] & np.isfinite(X).all(1)
        uv = cv2.projectPoints(X[use].reshape(-1, 1, 3), cam.rotation, cam.translation, cam.matrix,
                               cam.distortions)[0].reshape(-1, 2)
        errs.append(np.linalg.norm(uv - flat[c, use, :2], axis=1))
    e = np.concatenate(errs)
    return {"median": float(np.median(e)), "mean": float(np.mean(e))}

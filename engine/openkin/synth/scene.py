"""Ground-truth scenes: specification, presets and the builder.

``build_scene(out_dir, preset, n_frames, seed, **overrides)`` runs:

1. joint-angle motion per person (:mod:`.motion`) on a frame grid padded for the
   camera time offsets;
2. OpenSim forward kinematics (:mod:`.forward`) → keypoints in OpenSim ground
   (Y-up), feet put on the floor; the path is centred where the cameras look;
3. world (the calibration's Z-up frame) = ``yup_to_zup(ground)``, so the truth TRC
   is in the frame of Pose2Sim's TRC files (``zup2yup`` of the world);
4. per camera: keypoints at times ``(k + offset) / rate`` (cubic spline in time),
   projected with distortion through the *exact* cameras, then corrupted
   (:mod:`.corrupt`);
5. writes the Pose2Sim-layout project (see :func:`write_scene`), atomically: the
   whole folder is built beside ``out_dir`` and renamed at the end.

Time offsets: camera ``c``'s JSON frame ``k`` shows the scene at truth frame
``k + offset_c`` (offset in frames, may be fractional; positive = the camera
started recording late). Synchronising means shifting camera ``c`` by
``+offset_c`` frames.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from ..geometry import Camera, camera_depths, project_points
from ..progress import Progress, scaled
from . import corrupt
from .forward import forward_kinematics
from .motion import MotionSpec, generate_motion, ground_offsets
from .real_motions import real_motion
from .spec import SceneSpec

log = logging.getLogger(__name__)


@dataclass
class SceneInfo:
    """What :func:`build_scene` made. ``offsets``: camera → frames (see module doc)."""

    path: Path
    spec: SceneSpec
    preset: str
    cameras: list[Camera]            # exact cameras (truth)
    written_cameras: list[Camera]    # the calibration written to calibration/Calib_scene.toml
    offsets: dict[str, float]
    keypoint_names: list[str]
    truth_trc: list[Path]            # one per person
    truth_mot: list[Path]
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)  # per camera: fractions of corrupted detections
    participant_height: float = 0.0           # m, standing height of the model


# ----------------------------------------------------------------------------- motion and truth
def person_motion_specs(spec: SceneSpec, center_xz: tuple[float, float]) -> list[MotionSpec]:
    """Person 1 walks a 0.55 m circle (squats, arm raises between); extra people walk
    larger ellipses around it, crossing the first person's area."""
    rng = np.random.default_rng([spec.seed, 7])
    out = [MotionSpec(center=center_xz, start=float(rng.uniform(0, 2 * np.pi)), seed=spec.seed)]
    for i in range(1, spec.people):
        out.append(MotionSpec(center=center_xz, radii=(1.1 + 0.3 * i, 0.7 + 0.2 * i),
                              start=float(rng.uniform(0, 2 * np.pi)), direction=-1 if i % 2 else 1,
                              speed=0.9, stride_frequency=0.95, schedule=(("walk", 1.0),),
                              seed=spec.seed * 1000 + i))
    return out


@dataclass
class PersonTruth:
    """One person on the padded frame grid: ``ground`` (Fp, K, 3) OpenSim ground,
    ``coords`` {name: (Fp,)} radians/metres."""

    ground: np.ndarray
    coords: dict[str, np.ndarray]


def simulate_people(body, spec: SceneSpec, frames: np.ndarray, center_xz: tuple[float, float],
                    progress: Progress | None = None) -> list[PersonTruth]:
    """Motion + forward kinematics + grounding for every person. ``frames``: (Fp,) frame numbers."""
    times = frames / spec.rate
    people = []
    mspecs = person_motion_specs(spec, center_xz)
    for i, mspec in enumerate(mspecs):
        coords = (real_motion(spec.motion, times, center_xz, body) if spec.motion and i == 0  # person 1
                  else generate_motion(times, mspec))
        names = list(coords)
        values = np.stack([coords[n] for n in names], axis=1)
        sub = scaled(progress, i / len(mspecs), (i + 1) / len(mspecs))
        pts = forward_kinematics(body, names, values, progress=sub)
        lift = ground_offsets(pts[:, body.n_keypoints:, 1])
        coords["pelvis_ty"] = coords["pelvis_ty"] + lift
        ground = pts[:, :body.n_keypoints].copy()
        ground[..., 1] += lift[:, None]
        people.append(PersonTruth(ground, coords))
    return people


def camera_offsets(spec: SceneSpec, names: list[str]) -> dict[str, float]:
    """Per-camera offsets in frames: the first camera 0, the others in [-max, max], the
    largest in magnitude exactly ``max``."""
    rng = np.random.default_rng([spec.seed, 11])
    vals = rng.uniform(-1.0, 1.0, len(names))
    vals[0] = 0.0
    if len(vals) > 1:  # the largest offset reaches the maximum ("desync up to N frames")
        vals[1:] *= spec.max_offset_frames / max(np.abs(vals[1:]).max(), 1e-9)
    if not spec.fractional_offsets:
        vals = np.round(vals)
    return {n: float(round(v, 3)) for n, v in zip(names, vals)}


def sample_at(frames: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Cubic-spline values of a (Fp, ...) series sampled on (Fp,) frames, at (N,) fractional frames."""
    if np.allclose(at, np.round(at)):
        idx = np.round(at).astype(int) - int(frames[0])
        return values[idx]
    return CubicSpline(frames, values, axis=0)(at)


# ----------------------------------------------------------------------------- 2D detections
@dataclass
class CameraDetections:
    """One camera's corrupted detections and what was done to them.

    ``keypoints``: (F, P, K, 3) x, y, confidence with NaN where absent, people in
    JSON order; ``order``: (F, P) truth person index of each JSON slot (-1 empty);
    masks are indexed by truth person: (F, P, K) or (F, P).
    """

    keypoints: np.ndarray
    order: np.ndarray
    uv_true: np.ndarray
    outlier: np.ndarray
    occluded: np.ndarray
    dropped: np.ndarray
    out_of_view: np.ndarray
    swapped: np.ndarray
    lost: np.ndarray


def detect(rng: np.random.Generator, spec: SceneSpec, cam: Camera, world: np.ndarray, mirror: np.ndarray,
           swapped_frames: np.ndarray, lost_frames: np.ndarray) -> CameraDetections:
    """Project ``world`` (F, P, K, 3) into ``cam`` and corrupt. ``swapped_frames``: (F,) bool
    (all people); ``lost_frames``: (F,) bool (first person)."""
    F, P, K, _ = world.shape
    uv_true = project_points(cam, world.reshape(-1, 3)).reshape(F, P, K, 2)
    depth = camera_depths([cam], world)[0]
    out_of_view = corrupt.outside_image(uv_true, depth, (cam.size[0], cam.size[1]))
    uv = uv_true + corrupt.white_noise(rng, (F, P, K), spec.noise_px)
    uv += corrupt.correlated_noise(rng, (F, P, K), spec.corr_noise_px, spec.corr_frames)
    conf = corrupt.confidences(rng, (F, P, K), spec.conf_mean, spec.conf_spread)
    swapped = np.repeat(swapped_frames[:, None], P, axis=1)
    corrupt.swap_left_right(uv, conf, swapped, mirror)
    occluded = corrupt.run_mask(rng, F, P * K, spec.occlusion_rate, spec.occlusion_len).reshape(F, P, K)
    corrupt.occlusion_wrong_points(rng, uv, conf, occluded, mirror, spec.occlusion_jitter_px, spec.occlusion_conf)
    outlier = corrupt.gross_outliers(rng, uv, conf, spec.outlier_rate, spec.outlier_px, spec.outlier_conf)
    dropped = corrupt.run_mask(rng, F, P * K, spec.dropout_rate, spec.dropout_len).reshape(F, P, K)
    lost = np.zeros((F, P), dtype=bool)
    lost[:, 0] = lost_frames
    np.clip(uv[..., 0], 0, cam.size[0] - 1, out=uv[..., 0])  # detectors answer inside the image
    np.clip(uv[..., 1], 0, cam.size[1] - 1, out=uv[..., 1])
    absent = dropped | out_of_view | lost[:, :, None]
    uv[absent] = np.nan
    conf[absent] = np.nan
    keypoints = np.concatenate([uv, conf[..., None]], axis=-1)
    keypoints, order = _json_order(rng, keypoints)
    return CameraDetections(keypoints, order, uv_true, outlier & ~absent, occluded & ~absent, dropped,
                            out_of_view, swapped, lost)


def _json_order(rng: np.random.Generator, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Detectors list people in no particular order: shuffle the present people of each
    frame, empty slots last. (F, P, K, 3) → (F, P, K, 3), order (F, P)."""
    F, P = keypoints.shape[:2]
    present = ~np.all(np.isnan(keypoints[..., 0]), axis=2)  # (F, P)
    if P == 1:
        return keypoints, np.where(present, 0, -1)
    key = rng.random((F, P)) + (~present) * 2.0  # absent people sort last
    order = np.argsort(key, axis=1)
    out = np.take_along_axis(keypoints, order[:, :, None, None], axis=1)
    order = np.where(np.take_along_axis(present, order, axis=1), order, -1)
    return out, order


def _event_frames(spec: SceneSpec, cam_names: list[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Which cameras swap left/right at which frames (shared frames), which lose the person when."""
    rng = np.random.default_rng([spec.seed, 13])
    F = spec.n_frames
    swap = {n: np.zeros(F, dtype=bool) for n in cam_names}
    shared = corrupt.frame_runs(rng, F, spec.swap_fraction, spec.swap_len)
    for i in rng.choice(len(cam_names), spec.swap_cameras, replace=False):
        swap[cam_names[i]] = shared.copy()
    lost = {n: np.zeros(F, dtype=bool) for n in cam_names}
    n_lost = min(int(round(spec.lost_seconds * spec.rate)), F)
    for i in rng.choice(len(cam_names), spec.lost_cameras, replace=False):
        if n_lost >= F:  # the whole clip: a camera that never sees the person
            start = 0
        else:
            start = int(rng.integers(int(0.1 * F), max(int(0.9 * F) - n_lost, int(0.1 * F) + 1)))
        lost[cam_names[i]][start:start + n_lost] = True
    return swap, lost

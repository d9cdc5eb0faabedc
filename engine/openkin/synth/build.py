"""Build and write a ground-truth scene as a Pose2Sim-layout project.

Layout of ``OUT``::

    Config.toml                      frame rate, pose model, multi_person
    calibration/Calib_scene.toml     the calibration as a user would have it (perturbed if asked)
    pose/<cam>_json/<cam>_000000.json ...  corrupted 2D detections (OpenPose JSON)
    truth/keypoints.trc              3D keypoints of person 1 (Y-up, as Pose2Sim's TRC files)
    truth/keypoints_P2.trc ...       extra people
    truth/angles.mot, angles_P2.mot  joint angles (degrees; pelvis translations metres)
    truth/offsets.toml               per-camera time offsets
    truth/scene.toml                 preset, every setting, events (swaps, lost frames), stats
    truth/Calib_exact.toml           the exact calibration used to project
    truth/corruptions.npz            per-camera masks and clean 2D projections
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import atomic_path, atomic_write, toml_dumps
from ..formats.calibration import write_calibration
from ..formats.mot import Motion, write_mot
from ..formats.openpose import write_openpose_dir
from ..formats.trc import Trc, write_trc
from ..geometry import yup_to_zup, zup_to_yup
from ..progress import Progress, report, scaled
from ..skeletons import get_skeleton
from . import corrupt
from .cameras import camera_looking_at, look_at_point, perturb_cameras, scene_cameras, with_fisheye
from .forward import forward_kinematics, load_body
from .scene import (CameraDetections, PersonTruth, SceneInfo, _event_frames, camera_offsets, detect, sample_at,
                    simulate_people)
from .spec import FISHEYE_K, SceneSpec, make_spec

log = logging.getLogger(__name__)

POSE_MODEL = {"HALPE_26": "Body_with_feet", "COCO_17": "Body", "BLAZEPOSE": "BLAZEPOSE"}
TARGET_HEIGHT = 0.9  # m: the person's centre, where the rig should aim


def build_scene(out_dir: str | Path, preset: str = "clean", n_frames: int | None = None, seed: int | None = None,
                *, overwrite: bool = False, progress: Progress | None = None, **overrides) -> SceneInfo:
    """Build the scene ``preset`` (with ``overrides`` of :class:`SceneSpec` fields) into ``out_dir``.

    ``out_dir`` must not exist or be empty unless ``overwrite``; either way the new
    scene replaces it only once complete.
    """
    t0 = time.perf_counter()
    if n_frames is not None:
        overrides["n_frames"] = int(n_frames)
    if seed is not None:
        overrides["seed"] = int(seed)
    spec = make_spec(preset, **overrides)
    out_dir = Path(out_dir).expanduser()
    _check_out(out_dir, overwrite)
    skeleton = get_skeleton(spec.keypoints)
    body = load_body(skeleton)
    report(progress, 0.02, "cameras")
    cams, target = _rig(spec)
    offsets = camera_offsets(spec, [c.name for c in cams])
    frames = _padded_frames(spec.n_frames, offsets)
    center_xz = tuple(zup_to_yup(target)[[0, 2]])  # path centre in OpenSim ground (x, z)
    people = simulate_people(body, spec, frames, center_xz, progress=scaled(progress, 0.05, 0.45))
    detections = _detect_all(spec, cams, people, frames, offsets, skeleton)
    report(progress, 0.55, "writing")
    rng = np.random.default_rng([spec.seed, 17])
    written = perturb_cameras(rng, cams, spec.calib_translation_cm / 100, spec.calib_rotation_deg) \
        if (spec.calib_translation_cm or spec.calib_rotation_deg) else cams
    info = SceneInfo(out_dir, spec, preset, cams, written, offsets, list(skeleton.names), [], [])
    info.stats = _stats(detections, people, body.coordinate_names)
    info.participant_height = standing_height()
    _write_atomically(out_dir, lambda tmp: _write_scene(tmp, info, people, frames, detections, progress))
    info.truth_trc = [out_dir / "truth" / _person_file("keypoints", p, ".trc") for p in range(spec.people)]
    info.truth_mot = [out_dir / "truth" / _person_file("angles", p, ".mot") for p in range(spec.people)]
    info.seconds = time.perf_counter() - t0
    report(progress, 1.0, "scene written")
    log.info("scene %s (%s, %d frames, %d cameras, %d people) built in %.2f s", out_dir, preset,
             spec.n_frames, len(cams), spec.people, info.seconds)
    return info


def _check_out(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OpenKinError("output path is a file", path=out_dir, fix="choose a folder name")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OpenKinError("output folder exists and is not empty; not overwriting it", path=out_dir,
                           fix="choose a new folder, or pass --force to replace it")


def _rig(spec: SceneSpec):
    from .cameras import demo_cameras

    demo = demo_cameras()
    target = look_at_point(demo, height=TARGET_HEIGHT)
    target[2] = 0.0  # the path lies on the floor under the aim point
    aim = target + [0, 0, TARGET_HEIGHT]
    cams = scene_cameras(spec.cameras, aim)
    if spec.fisheye:
        cams = with_fisheye(cams, FISHEYE_K)
    if spec.collinear_pair and len(cams) > 1:
        # the second camera 1 m behind the first on its line of sight: a degenerate pair
        back = cams[0].center + (cams[0].center - aim) / np.linalg.norm(cams[0].center - aim)
        cams[1] = camera_looking_at(cams[1].name, back, aim, cams[0])
    return cams, target


def _padded_frames(n_frames: int, offsets: dict[str, float]) -> np.ndarray:
    """Truth frames 0..F-1 plus margins covering every camera's offset. → (Fp,) int."""
    lo = int(np.floor(min(0.0, *offsets.values()))) - 3
    hi = n_frames - 1 + int(np.ceil(max(0.0, *offsets.values()))) + 3
    return np.arange(lo, hi + 1)


def _detect_all(spec, cams, people: list[PersonTruth], frames, offsets, skeleton) -> dict[str, CameraDetections]:
    """Corrupted detections per camera name."""
    ground = np.stack([p.ground for p in people], axis=1)  # (Fp, P, K, 3)
    mirror = corrupt.mirror_index(skeleton)
    swap, lost = _event_frames(spec, [c.name for c in cams])
    out = {}
    for i, cam in enumerate(cams):
        at = np.arange(spec.n_frames) + offsets[cam.name]
        world = yup_to_zup(sample_at(frames, ground, at))
        rng = np.random.default_rng([spec.seed, 100 + i])
        out[cam.name] = detect(rng, spec, cam, world, mirror, swap[cam.name], lost[cam.name])
    return out


def _stats(detections: dict[str, CameraDetections], people, coordinate_names) -> dict:
    """Fractions of detections affected, per camera (for scene.toml)."""
    stats = {}
    for name, d in detections.items():
        stats[name] = {
            "detected": float(np.mean(np.isfinite(d.keypoints[..., 0]))),
            "out_of_view": float(d.out_of_view.mean()), "outliers": float(d.outlier.mean()),
            "occluded": float(d.occluded.mean()), "dropped": float(d.dropped.mean()),
            "swapped_frames": int(d.swapped[:, 0].sum()), "lost_frames": int(d.lost[:, 0].sum()),
        }
    return stats


def _write_atomically(out_dir: Path, write) -> None:
    """Run ``write(tmp_dir)`` in a folder beside ``out_dir``, then swap it in."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    old = None
    try:
        write(tmp)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _person_file(stem: str, p: int, suffix: str) -> str:
    return f"{stem}{suffix}" if p == 0 else f"{stem}_P{p + 1}{suffix}"


def _write_scene(root: Path, info: SceneInfo, people: list[PersonTruth], frames: np.ndarray,
                 detections: dict[str, CameraDetections], progress: Progress | None) -> None:
    spec = info.spec
    write_calibration(root / "calibration" / "Calib_scene.toml", info.written_cameras)
    write_calibration(root / "truth" / "Calib_exact.toml", info.cameras)
    _write_config(root / "Config.toml", spec, info.participant_height)
    _write_truth(root / "truth", info, people, frames)
    if spec.trackers:
        _write_trackers(root, info, people[0], frames)
    _write_offsets(root / "truth" / "offsets.toml", info.offsets, spec.rate)
    _write_scene_toml(root / "truth" / "scene.toml", info, detections)
    _write_npz(root / "truth" / "corruptions.npz", detections)
    _write_json(root / "pose", detections, scaled(progress, 0.6, 1.0))


def _write_json(pose_dir: Path, detections: dict[str, CameraDetections], progress: Progress | None) -> None:
    """One OpenPose JSON folder per camera (file creation dominates: ~1 ms per frame file)."""
    for i, (name, d) in enumerate(detections.items()):
        sub = scaled(progress, i / len(detections), (i + 1) / len(detections))
        write_openpose_dir(pose_dir / f"{name}_json", name, d.keypoints, progress=sub)


def standing_height() -> float:
    """Height (m) of the generic model standing: its Head-top keypoint with the feet on the floor."""
    from ..skeletons import HALPE_26
    from .motion import ground_offsets

    body = load_body(HALPE_26)
    pts = forward_kinematics(body, [], np.zeros((1, 0)))[0]
    lift = ground_offsets(pts[None, body.n_keypoints:, 1] - pts[HALPE_26.index("Hip"), 1])[0]
    return round(float(pts[HALPE_26.index("Head"), 1] - pts[HALPE_26.index("Hip"), 1] + lift), 3)


def _write_config(path: Path, spec: SceneSpec, height: float) -> None:
    heights = f"{height:g}" if spec.people == 1 else "[" + ", ".join([f"{height:g}"] * spec.people) + "]"
    text = (
        "# Ground-truth scene made by `openkin synth` (see truth/scene.toml for how).\n"
        "[project]\n"
        f"multi_person = {'true' if spec.people > 1 else 'false'}\n"
        f"participant_height = {heights}  # m, the generic OpenSim model's standing height\n"
        f"frame_rate = {spec.rate:g}\n\n"
        "[pose]\n"
        f"pose_model = '{POSE_MODEL[spec.keypoints]}'\n"
    )
    if spec.trackers:
        from .trackers import sensor_name
        pairs = ", ".join(f'{sensor_name(b)} = "{b}"' for b in spec.trackers)
        text += (f"\n[triangulation]\nfill_large_gaps_with = 'nan'  # frames the cameras lose are solved from the "
                 f"trackers (not frozen markers)\n"
                 f"\n[kinematics]\ntrackers = {{{pairs}}}  # simulated trackers in trackers/ (openkin synth --trackers)\n")
    with atomic_write(path) as f:
        f.write(text)


def _write_truth(folder: Path, info: SceneInfo, people: list[PersonTruth], frames: np.ndarray) -> None:
    """TRC (Y-up) and MOT (degrees) per person, on truth frames 0..F-1."""
    spec = info.spec
    keep = (frames >= 0) & (frames < spec.n_frames)
    times = frames[keep] / spec.rate
    for p, person in enumerate(people):
        trc = Trc(info.keypoint_names, spec.rate, person.ground[keep], frame_numbers=frames[keep], times=times)
        write_trc(folder / _person_file("keypoints", p, ".trc"), trc)
        names = list(person.coords)
        values = np.stack([person.coords[n][keep] for n in names], axis=1)
        rotational = np.array([not n.endswith(("_tx", "_ty", "_tz")) for n in names])
        values[:, rotational] = np.degrees(values[:, rotational])
        write_mot(folder / _person_file("angles", p, ".mot"), Motion(names, times, values, in_degrees=True))


def _write_trackers(root: Path, info: SceneInfo, person: PersonTruth, frames: np.ndarray) -> None:
    """Person 1's simulated 6-DoF trackers on the truth frames (:mod:`.trackers`)."""
    from ..formats.imu import write_orientations
    from . import trackers

    spec = info.spec
    keep = (frames >= 0) & (frames < spec.n_frames)
    body = load_body(get_skeleton(spec.keypoints))
    data = trackers.simulate(body, {n: v[keep] for n, v in person.coords.items()}, frames[keep] / spec.rate,
                             list(spec.trackers), spec.rate, spec.tracker_noise_deg, spec.tracker_drift_deg_min,
                             spec.seed)
    write_orientations(root / "trackers" / f"{info.path.name}_orientations.sto", data)


def _write_offsets(path: Path, offsets: dict[str, float], rate: float) -> None:
    doc = {
        "convention": "camera c's frame k shows truth frame k + offset_c (positive: the camera started late); "
                      "synchronising shifts camera c by +offset_c frames",
        "frames": offsets,
        "seconds": {k: v / rate for k, v in offsets.items()},
    }
    with atomic_write(path) as f:
        f.write(toml_dumps(doc))


def _write_scene_toml(path: Path, info: SceneInfo, detections: dict[str, CameraDetections]) -> None:
    spec = dataclasses.asdict(info.spec)
    events = {name: {"swapped_frames": np.flatnonzero(d.swapped[:, 0]).tolist(),
                     "lost_frames": np.flatnonzero(d.lost[:, 0]).tolist()} for name, d in detections.items()}
    doc = {
        "preset": info.preset,
        "axes": "truth TRC in Y-up as Pose2Sim writes TRC (x = world y, y = world z, z = world x) of the "
                "calibration's Z-up world; angles in OpenSim conventions of Model_Pose2Sim_simple.osim",
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()},
        "keypoints": info.keypoint_names,
        "cameras": [c.name for c in info.cameras],
        "people": [{"trc": _person_file("keypoints", p, ".trc"), "mot": _person_file("angles", p, ".mot"),
                    "height": info.participant_height} for p in range(info.spec.people)],
        "events": events,
        "stats": info.stats,
    }
    with atomic_write(path) as f:
        f.write(toml_dumps(doc))


def _write_npz(path: Path, detections: dict[str, CameraDetections]) -> None:
    arrays = {}
    for name, d in detections.items():
        for key in ("order", "uv_true", "outlier", "occluded", "dropped", "out_of_view", "swapped", "lost"):
            arrays[f"{name}/{key}"] = getattr(d, key)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

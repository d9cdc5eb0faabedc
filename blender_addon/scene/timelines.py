"""QA timelines: the capture's quality over time as custom-property F-curves of one Empty
(``OpenKin QA``), to scrub and read in the Graph Editor; "jump to the next worst frame".

Properties (one F-curve each, keyed on every frame; scene frame = output frame + 1):

* ``P0 error``: mean over keypoints of the triangulation's reprojection error (px, over the
  views it kept: ``pose-3d/*_reprojection.npz``, :func:`..core.reprojection.person_timelines`);
* ``P0 error cam01``: the same for one camera (its kept views only);
* ``P0 cameras``: number of views kept per triangulated keypoint (mean);
* ``P0 kept cam01``: keypoints whose view in that camera the triangulation kept;
* ``P0 swaps cam01``: detections whose left/right labels the triangulation exchanged there;
* ``P0 angle <coordinate>``: the IK result (``kinematics/*.mot``), as the .mot gives it
  (degrees; a .mot in radians is converted, translations ``*_tx|ty|tz`` stay metres).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import bpy
import numpy as np

from . import anim

log = logging.getLogger(__name__)

QA_NAME = "OpenKin QA"
QA_KEY = "openkin_qa"              # object ID property: the project this QA object shows
LAST_JUMP, LAST_CURVE = "openkin_qa_jump", "openkin_qa_jump_curve"   # where "next worst" last went
_PERSON = re.compile(r"_P(\d+)(?=[_.-]|$)", re.IGNORECASE)
_TRANSLATION = re.compile(r"_t[xyz]$")


def _person(name: str) -> str:
    m = _PERSON.search(name)
    return f"P{int(m.group(1))}" if m else "P0"


def project_series(root: Path, fps: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every curve of project ``root``: name → (scene frames (F,), values (F,)). No scene change."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for path in sorted((root / "pose-3d").glob("*_reprojection.npz")) if (root / "pose-3d").is_dir() else []:
        out.update(_person_series(root, path))
    for path in sorted((root / "kinematics").glob("*.mot")) if (root / "kinematics").is_dir() else []:
        out.update(_angle_series(path, fps))
    return out


def _person_series(root: Path, path: Path) -> dict:
    from openkin.triangulation.reprojection import read_reprojection

    from ..core.reprojection import person_timelines

    data = read_reprojection(path)
    series = person_timelines(data, _camera_errors(root, path, data))
    frames = np.asarray(data.frame_numbers, int) + 1
    who = _person(path.name)
    return {f"{who} {name}": (frames, values) for name, values in series.items()}


def _camera_errors(root: Path, path: Path, data) -> dict:
    """Per camera (F, K) px error of the person's triangulated points (TRC beside ``path``)."""
    from openkin.config import load_config
    from openkin.context import calibration_in_use
    from openkin.formats.calibration import read_calibration
    from openkin.formats.openpose import read_openpose_dir
    from openkin.formats.trc import read_trc
    from openkin.geometry import yup_to_zup
    from openkin.project import ProjectPaths
    from openkin.skeletons import get_skeleton

    from ..core.reprojection import camera_errors, find_pose_dirs

    trc_path = path.with_name(path.name[: -len("_reprojection.npz")] + ".trc")
    if not trc_path.is_file():
        return {}
    trc = read_trc(trc_path)
    cols = [trc.marker_names.index(n) if n in trc.marker_names else -1 for n in data.keypoints]
    rows = {int(f): i for i, f in enumerate(trc.frame_numbers)}
    xyz = np.full((len(data.frame_numbers), len(data.keypoints), 3), np.nan)
    for i, f in enumerate(data.frame_numbers):
        r = rows.get(int(f))
        if r is not None:
            xyz[i, [k for k, c in enumerate(cols) if c >= 0]] = yup_to_zup(trc.xyz[r, [c for c in cols if c >= 0]])
    names = tuple(get_skeleton(load_config(root).pose.pose_model).names)
    kp_index = np.array([names.index(n) if n in names else -1 for n in data.keypoints])
    cams = read_calibration(calibration_in_use(ProjectPaths(root)))
    dirs = find_pose_dirs(root, [c.name for c in cams])
    out = {}
    for cam in cams:
        if cam.name in dirs:
            kps, kp_frames, _ = read_openpose_dir(dirs[cam.name])
            out[cam.name] = camera_errors(cam, xyz, np.asarray(data.frame_numbers), kps, kp_frames, kp_index)
    return out


def _angle_series(path: Path, fps: float) -> dict:
    from openkin.formats.mot import read_mot

    motion = read_mot(path)
    frames = np.round(np.asarray(motion.times) * fps).astype(int) + 1
    who = _person(path.name)
    out = {}
    for c, name in enumerate(motion.names):
        v = np.asarray(motion.values[:, c], float)
        if not motion.in_degrees and not _TRANSLATION.search(name):
            v = np.degrees(v)
        out[f"{who} angle {name}"] = (frames, v)
    return out


def build_qa_object(scene, root: Path, collection=None):
    """(Re)build the QA Empty of project ``root`` with every curve; returns it."""
    fps = scene.render.fps / scene.render.fps_base
    series = project_series(Path(root), fps)
    old = bpy.data.objects.get(QA_NAME)
    if old is not None:
        action = old.animation_data.action if old.animation_data else None
        bpy.data.objects.remove(old)
        if action is not None and action.users == 0:
            bpy.data.actions.remove(action)
    obj = bpy.data.objects.new(QA_NAME, None)
    obj.empty_display_size = 0.05
    obj.hide_render = True
    obj[QA_KEY] = str(Path(root).resolve())
    (collection or scene.collection).objects.link(obj)
    for name in series:
        obj[name] = 0.0
    action = anim.new_action(QA_NAME)
    bag = anim.channelbag_for(action, obj, QA_NAME)
    for name, (frames, values) in series.items():
        group = name.split(" ")[0] + (" angles" if " angle " in name else " QA")
        anim.write_channels(bag, f'["{name}"]', frames, values[:, None], group=group)
    mark_marker_swaps(scene, Path(root))
    log.info("QA timelines: %d curves", len(series))
    return obj


SWAPS = "openkin_swapped_views"     # marker ID property: cameras whose left/right labels were exchanged


def mark_marker_swaps(scene, root: Path) -> int:
    """Swaps shown apart from the error colours: each marker of a triangulated person gets an
    animated ``openkin_swapped_views`` (how many cameras' detections of it the triangulation
    exchanged left/right at that frame); returns the markers marked."""
    from openkin.triangulation.reprojection import read_reprojection

    done = 0
    for path in sorted((root / "pose-3d").glob("*_reprojection.npz")) if (root / "pose-3d").is_dir() else []:
        data = read_reprojection(path)
        who = _person(path.name)
        frames = np.asarray(data.frame_numbers, int) + 1
        for obj in scene.objects:
            name = obj.get("openkin_marker")
            if obj.get("openkin_person") != who or name not in data.keypoints:
                continue
            count = data.swapped[:, :, data.keypoints.index(name)].sum(axis=0).astype(float)
            obj[SWAPS] = 0.0
            ad = obj.animation_data
            if ad is None or ad.action is None:
                continue
            bag = ad.action.layers[0].strips[0].channelbag(ad.action_slot, ensure=True)
            old = bag.fcurves.find(f'["{SWAPS}"]')
            if old is not None:
                bag.fcurves.remove(old)
            anim.write_channels(bag, f'["{SWAPS}"]', frames, count[:, None], group=name)
            done += 1
    return done


def qa_object(scene):
    """The scene's QA Empty, or None."""
    obj = scene.objects.get(QA_NAME)
    return obj if obj is not None and QA_KEY in obj else None


def curve_values(obj, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The keys of ``obj``'s curve ``name``: (scene frames (F,), values (F,))."""
    ad = obj.animation_data
    bag = ad.action.layers[0].strips[0].channelbag(ad.action_slot) if ad and ad.action else None
    fc = bag.fcurves.find(f'["{name}"]') if bag is not None else None
    if fc is None:
        return np.zeros(0, int), np.zeros(0)
    co = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    co = co.reshape(-1, 2)
    return np.round(co[:, 0]).astype(int), co[:, 1].astype(float)


def curve_names(obj) -> list[str]:
    """The QA curves of ``obj`` (its float custom properties)."""
    return [k for k in obj.keys() if isinstance(obj[k], float)]


def jump_to_worst(scene, name: str) -> int | None:
    """Move the scene to the next worst frame of curve ``name`` (see
    :func:`..core.reprojection.next_worst`); returns the frame or None."""
    from ..core.reprojection import next_worst

    obj = qa_object(scene)
    if obj is None:
        return None
    frames, values = curve_values(obj, name)
    last = obj.get(LAST_JUMP)
    frame = next_worst(frames, values, scene.frame_current, last if obj.get(LAST_CURVE) == name else None)
    if frame is not None:
        obj[LAST_JUMP], obj[LAST_CURVE] = frame, name
        scene.frame_set(frame)
    return frame

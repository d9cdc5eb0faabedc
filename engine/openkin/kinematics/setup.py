"""OpenSim files for a keypoint set: model, marker set, IK weights, scaling measurements.

Pose2Sim ships, per keypoint set, a marker set (``Markers_<set>.xml``), an IK setup
(``IK_Setup_Pose2Sim_<set>.xml``: marker weights and coordinate tasks) and a
scaling setup (``Scaling_Setup_Pose2Sim_<set>.xml``: which marker pairs measure
which bodies). We read those XML files for their data only (weights, pairs,
bodies); the OpenSim tools they configure are not run — OpenKin drives the
solver through the API (see :mod:`openkin.kinematics.ik`).

Every OpenSim failure to load a file is turned into an :class:`OpenKinError`
that names the file, OpenSim's own message and a fix.
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import OpenKinError

log = logging.getLogger(__name__)

SETUP = "OpenSim_Setup"
# Coordinates IK keeps inside the model's own ranges (the models leave them unclamped): the shoulder's
# three angles pass through a gimbal singularity near 90° abduction, where an equivalent "flipped"
# solution (flexion ±180°) fits the same markers; once there, tracking stays there (realistic
# synthetic scene: shoulder flexion RMSE 65° → MPJAE 8.3°; clamped: 5.1°).
CLAMPED = tuple(f"arm_{a}_{s}" for a in ("flex", "add", "rot") for s in "rl")
FULL_MODEL = f"{SETUP}/Model_Pose2Sim_muscles_flex.osim"
SIMPLE_MODEL = f"{SETUP}/Model_Pose2Sim_simple.osim"

# keypoint set -> (marker set, IK setup, scaling setup), files of Pose2Sim's OpenSim_Setup. Markers are
# matched to keypoints by name; hand keypoints (RThumb, RIndex, RPinky...) go to the model's hand markers.
# COCO (OpenPose 18) uses the COCO_17 files (same names, plus Neck); MPII the BODY_25B files (Head,
# Neck and limbs; its Chest has no marker).
_FILES = {
    "Halpe26": ("Markers_Halpe26.xml", "IK_Setup_Pose2Sim_Halpe26.xml", "Scaling_Setup_Pose2Sim_Halpe26.xml"),
    "Coco17": ("Markers_Coco17.xml", "IK_Setup_Pose2Sim_Coco17.xml", "Scaling_Setup_Pose2Sim_Coco17.xml"),
    "Blazepose": ("Markers_BlazePose.xml", "IK_Setup_Pose2Sim_Blazepose.xml",
                  "Scaling_Setup_Pose2Sim_Blazepose.xml"),
    "Body25b": ("Markers_Body25b.xml", "IK_Setup_Pose2Sim_Body25b.xml", "Scaling_Setup_Pose2Sim_Body25b.xml"),
    "Body25": ("Markers_Body25.xml", "IK_Setup_Pose2Sim_Body25.xml", "Scaling_Setup_Pose2Sim_Body25.xml"),
    "Body135": ("Markers_Body135.xml", "IK_Setup_Pose2Sim_Body135.xml", "Scaling_Setup_Pose2Sim_Body135.xml"),
    "Coco133": ("Markers_Coco133.xml", "IK_Setup_Pose2Sim_Coco133.xml", "Scaling_Setup_Pose2Sim_Coco133.xml"),
    "Halpe68_136": ("Markers_Halpe68_136.xml", "IK_Setup_Pose2Sim_Halpe68_136.xml",
                    "Scaling_Setup_Pose2Sim_Halpe68_136.xml"),
    "LSTM": ("Markers_LSTM.xml", "IK_Setup_Pose2Sim_withHands_LSTM.xml", "Scaling_Setup_Pose2Sim_LSTM.xml"),
}
MARKER_SETS: dict[str, tuple[str, str, str]] = {
    "HALPE_26": _FILES["Halpe26"], "COCO_17": _FILES["Coco17"], "BLAZEPOSE": _FILES["Blazepose"],
    "BODY_25B": _FILES["Body25b"], "BODY_25": _FILES["Body25"], "BODY_135": _FILES["Body135"],
    "COCO_133": _FILES["Coco133"], "HALPE_68": _FILES["Halpe68_136"], "HALPE_136": _FILES["Halpe68_136"],
    "COCO": _FILES["Coco17"], "MPII": _FILES["Body25b"], "LSTM": _FILES["LSTM"],
}


def marker_file_names(marker_set: str) -> list[str]:
    """Marker names of a keypoint set's OpenSim marker file (read as XML, no OpenSim needed)."""
    root = _parse_xml(setup_files(marker_set)[0], "marker set")
    return [m.get("name") for m in root.iter("Marker")]


def marker_set_for(names: list[str] | tuple[str, ...]) -> str:
    """The keypoint set whose OpenSim markers share the most names with ``names`` (a custom
    ``[[pose.<NAME>]]`` skeleton's keypoints); ties go to the smaller marker set."""
    names = set(names)
    scores = {k: (len(names & set(marker_file_names(k))), -len(marker_file_names(k)))
              for k in MARKER_SETS if k != "LSTM"}
    best = max(scores, key=scores.get)
    if scores[best][0] == 0:
        raise OpenKinError(f"no OpenSim marker set shares a name with the keypoints {sorted(names)[:12]}",
                           fix="name the custom skeleton's keypoints as Pose2Sim's markers (RKnee, LAnkle, ...), "
                               "or give your own model with those markers ([kinematics] osim_model)")
    return best


@dataclass(frozen=True)
class CoordinateTask:
    """An IK coordinate task: keep ``name`` near ``value`` (radians/metres, None = model default)."""

    name: str
    weight: float
    value: float | None = None


@dataclass(frozen=True)
class IkTasks:
    """Marker weights (name -> weight, applied tasks only) and coordinate tasks."""

    marker_weights: dict[str, float]
    coordinate_tasks: tuple[CoordinateTask, ...]


@dataclass(frozen=True)
class Measurement:
    """A scaling measurement: marker ``pairs`` whose distances scale ``bodies``."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    bodies: tuple[str, ...]


# Humeral axial rotation is seen only through the forearm's lever about the humerus (the wrist sits
# L·sin(elbow flexion) off its axis): with a straight elbow no keypoint sees it and the weak prior
# toward the model's default (kinematics.WEAK_PRIORS) decides; with a bent elbow the keypoints do, and
# the same constant prior biased them (a real tennis serve, clean keypoints: humeral rotation 32-47 deg
# pulled to 1-3 deg, shoulder orientation error 38 deg). So the prior on ``arm_rot_<side>`` is scaled per
# frame by (1 - sin(theta) / sin(ELBOW_FREE))^2, 0 past ELBOW_FREE, theta the elbow flexion measured on
# that frame's observed shoulder, elbow and wrist (1 where one is missing). Judged on every motion
# (tests/bench, full model, 600 frames, OpenKin's MPJAE, constant prior -> scaled):
#   clean:     tennis 7.25 -> 4.86, run 2.22 -> 1.83, generated 0.90 -> 0.86, walk 3.24 -> 3.26, crouch 3.35 -> 3.36
#   realistic: tennis 9.59 -> 7.84, run 5.04 -> 5.21, generated 4.18 -> 4.42, walk 5.63 -> 5.87, crouch 5.12 -> 5.42
# (walk's and crouch's arms are not recorded: they hang at the prior's value, as the generated ones do).
# Without any arm-rotation prior the tennis serve comes out best (clean 2.61, humerus orientation error
# 3.7 deg vs 24.7; realistic 6.97, 16.9 deg vs 27.2; Pose2Sim 4.8 and 18.9 deg) but the hanging arms of
# noisy scenes spin (walk realistic 7.49 at weight 1e-5): the prior's weight should follow the trial's
# marker noise, not be one constant (open).
ELBOW_FREE = 0.785  # rad (45 deg)
ARM_KEYPOINTS = {"r": ("RShoulder", "RElbow", "RWrist"), "l": ("LShoulder", "LElbow", "LWrist")}


def elbow_observability(marker_names: list[str], task_names: list[str], free: float | None = None):
    """``scale(obs)``: (F, M, 3) observed markers (``marker_names`` order) -> (F, T) multipliers of the
    coordinate tasks ``task_names`` (T,): the arm rotation priors scaled by the observed elbow flexion
    (see :data:`ELBOW_FREE`), every other task 1. None when no arm task has its three keypoints."""
    import numpy as np

    free = ELBOW_FREE if free is None else free
    index = {n: i for i, n in enumerate(marker_names)}
    arms = [(k, [index[m] for m in ARM_KEYPOINTS[name[-1]]]) for k, name in enumerate(task_names)
            if name in ("arm_rot_r", "arm_rot_l") and all(m in index for m in ARM_KEYPOINTS[name[-1]])]
    if not arms:
        return None

    def scale(obs):
        out = np.ones((len(obs), len(task_names)))
        for k, (s, e, w) in arms:
            upper, fore = obs[:, e] - obs[:, s], obs[:, w] - obs[:, e]
            cos = np.einsum("fi,fi->f", upper, fore) / (np.linalg.norm(upper, axis=1) * np.linalg.norm(fore, axis=1))
            sin = np.sqrt(np.clip(1 - cos ** 2, 0, 1))
            out[:, k] = np.where(np.isfinite(cos), np.clip(1 - sin / np.sin(free), 0, 1) ** 2, 1.0)
        return out
    return scale


def import_opensim():
    """The ``opensim`` module, quiet (warnings and errors only), or a clear error."""
    try:
        import opensim
    except ImportError:
        raise OpenKinError("the opensim package is not installed; the kinematics stage needs it",
                           fix="install it: pip install opensim==4.6 (or run the README's setup command)") from None
    opensim.Logger.setLevelString("error")  # "warn" floods the log with missing .vtp meshes
    return opensim


def setup_files(marker_set: str) -> tuple[Path, Path, Path]:
    """(marker set, IK setup, scaling setup) paths for a keypoint set name."""
    from ..assets import asset_path

    key = marker_set.upper()
    if key not in MARKER_SETS:
        raise OpenKinError(f"no OpenSim marker set for keypoint set {marker_set!r}",
                           fix=f"use one of {', '.join(MARKER_SETS)}, or give your own model with markers "
                               "([kinematics] osim_model)")
    return tuple(asset_path(f"{SETUP}/{name}") for name in MARKER_SETS[key])  # type: ignore[return-value]


def _parse_xml(path: Path, what: str) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        raise OpenKinError(f"{what} is not valid XML: {e}", path=path,
                           fix="restore the file (OpenSim XML) or point to a valid one") from None
    except OSError as e:
        raise OpenKinError(f"cannot read {what}: {e.strerror}", path=path, fix="check the path") from None


def read_ik_tasks(path: Path) -> IkTasks:
    """Marker weights and coordinate tasks of an OpenSim IK setup file."""
    root = _parse_xml(path, "IK setup")
    weights: dict[str, float] = {}
    for task in root.iter("IKMarkerTask"):
        if _text(task, "apply", "true").lower() == "true":
            weights[task.get("name")] = float(_text(task, "weight", "1"))
    coords = []
    for task in root.iter("IKCoordinateTask"):
        if _text(task, "apply", "true").lower() != "true":
            continue
        manual = _text(task, "value_type", "default_value") == "manual_value"
        coords.append(CoordinateTask(task.get("name"), float(_text(task, "weight", "0")),
                                     float(_text(task, "value", "0")) if manual else None))
    return IkTasks(weights, tuple(coords))


def read_measurements(path: Path) -> list[Measurement]:
    """Scaling measurements (marker pairs -> bodies) of an OpenSim scaling setup file."""
    root = _parse_xml(path, "scaling setup")
    out = []
    for m in root.iter("Measurement"):
        pairs = tuple(tuple(p.find("markers").text.split()) for p in m.iter("MarkerPair"))
        bodies = tuple(b.get("name") for b in m.iter("BodyScale"))
        out.append(Measurement(m.get("name"), pairs, bodies))  # type: ignore[arg-type]
    return out


def _text(node: ET.Element, tag: str, default: str) -> str:
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text else default


def load_model(path: str | Path, marker_file: str | Path | None = None, clamp: tuple[str, ...] = CLAMPED):
    """Load an OpenSim model (optionally replacing its marker set, and clamping the coordinates
    named in ``clamp`` to their ranges); returns ``(model, state)``.

    Raises :class:`OpenKinError` when the file is missing, is not an OpenSim model, or
    OpenSim cannot build its system, with OpenSim's own message.
    """
    osim = import_opensim()
    path = Path(path)
    if not path.is_file():
        raise OpenKinError("OpenSim model file not found", path=path,
                           fix="check [kinematics] osim_model, or leave it empty for Pose2Sim's models")
    _parse_xml(path, "OpenSim model")  # a clear message for a truncated or non-XML file
    try:
        model = osim.Model(str(path))
        if marker_file is not None:
            model.set_MarkerSet(osim.MarkerSet(str(marker_file)))
        cs = model.updCoordinateSet()
        for name in clamp:  # keep IK inside the model's own range for these coordinates
            if cs.contains(name):
                cs.get(name).set_clamped(True)
        state = model.initSystem()
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OpenKinError(f"OpenSim cannot load this model: {first}", path=path,
                           fix="open it in the OpenSim GUI to see the problem, or use an OpenSim 4 .osim file") from None
    return model, state


def model_marker_names(model) -> list[str]:
    """Names of the model's markers, (M,)."""
    ms = model.getMarkerSet()
    return [ms.get(i).getName() for i in range(ms.getSize())]


def model_body_names(model) -> list[str]:
    bs = model.getBodySet()
    return [bs.get(i).getName() for i in range(bs.getSize())]


def coordinate_info(model) -> tuple[list[str], list[bool]]:
    """Coordinate names (model order) and whether each is rotational."""
    cs = model.getCoordinateSet()
    coords = [cs.get(i) for i in range(cs.getSize())]
    return [c.getName() for c in coords], [c.getMotionType() == 1 for c in coords]

"""Real recorded motions for ground-truth scenes: ``openkin synth OUT --set motion=NAME``.

Generated motions (:mod:`.motion`) are smooth and periodic; real captures are not
(asymmetric strides, a trunk that leans, arms that swing across the body, crouched
knees). Every prior, limit and weight of the kinematics stage is therefore judged
on these as well. Each motion is an OpenSim IK result of a real marker capture,
vendored gzipped under ``openkin/data/motions/`` with its source, licence and the
sha256 of the original file (``NOTICE.md`` there), checked at every load. The
``tennis`` serve (arms overhead, trunk turning, reaching) is a Plug-in-Gait C3D
capture retargeted by us onto Pose2Sim's model by marker fitting with OpenSim
(``scripts/retarget_c3d.py``): its coordinates are already the synth model's.

A motion's coordinates are mapped onto ``Model_Pose2Sim_simple.osim`` (the synth
model), whose joints follow the same OpenSim gait models (gait2392 / Hamner /
Rajagopal): same names for pelvis, hips, ankles and arms; ``knee_angle`` has the
opposite sign (flexion is negative in gait2392 and Hamner's models, positive in
Pose2Sim's); ``lumbar_*`` maps to ``L5_S1_*``. Coordinates no keypoint observes
(subtalar, mtp, forearm twist, wrist) stay at the model's defaults, as in the
generated motions; arms a recording lacks hang at rest (``REST``; the model's
default is a T-pose); values are clipped to the model's coordinate ranges.
Time: resampled (cubic spline) to the scene's frame rate and played forward then
backward as often as the scene needs (continuous positions, no jump); the pelvis
path is centred where the cameras look.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from ..errors import OpenKinError

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent.parent / "data" / "motions"
OPENSIM_MODELS = "https://github.com/opensim-org/opensim-models"
COMMIT = "20a888b9655e73fb84963d6e03eee3752cf6074b"
KINETICSTOOLKIT = "https://github.com/kineticstoolkit/kineticstoolkit"


@dataclass(frozen=True)
class RealMotion:
    """A vendored motion: ``file`` (gzipped .mot in ``DATA``), ``sha256`` of the uncompressed .mot,
    ``source`` (path in ``repo`` at ``commit``: the .mot itself, or the capture it was retargeted from),
    ``description``; ``native``: its coordinates are already the synth model's (no renaming or sign flip)."""

    file: str
    sha256: str
    source: str
    description: str
    repo: str = OPENSIM_MODELS
    commit: str = COMMIT
    native: bool = False


REAL_MOTIONS: dict[str, RealMotion] = {
    "walk": RealMotion("walk_gait2392_subject01.mot.gz",
                       "1b58484bbee8307698dda2ac68c8ceaf50761d051dec12119188f4c358e2f42b",
                       "Pipelines/Gait2392_Simbody/subject01_walk1_ik.mot",
                       "walking, 3.5 s (gait2392: legs, pelvis, lumbar; arms at rest)"),
    "run": RealMotion("run_hamner_subject02.mot.gz",
                      "fcd9398cd940cf031163cd9568394c26a6ddc5ffc20940e80d6d3e6badc6821f",
                      "Pipelines/Hamner/outputReference/ResultsIK/subject02_running_ik.mot",
                      "running, 10 s, full body with arm swing and elbows flexed ~80-125 deg (Hamner 2010)"),
    "crouch": RealMotion("crouch2.mot.gz", "406b23be3bbd38099027fe7e337cda224be8559ac3b332a58d985dafccde17a7",
                         "Tutorials/Intro_to_Musculoskeletal_Modeling/crouch2.mot",
                         "crouch gait cycle, 1 s (knees flexed 25-60 deg, trunk forward)"),
    "tennis": RealMotion("tennis_serve_ktk.mot.gz", "d732cf29e6c7fbd687a0ec938f50285f683389f2ac6165836e1506104898383c",
                         "data/kinematics_tennis_serve.c3d",
                         "tennis serves and the steps between them, 21.8 s at 50 Hz: ball toss with the "
                         "left arm overhead, racket arm raised to the model's 120 deg elevation and its rotation "
                         "limits, trunk turning and bending (Plug-in-Gait capture retargeted onto Pose2Sim's model)",
                         repo=KINETICSTOOLKIT, commit="a583877a4e9a45dce69b0d39cf13e2b9d83a082d", native=True),
}

RENAME = {"lumbar_extension": "L5_S1_Flex_Ext", "lumbar_bending": "L5_S1_Lat_Bending",
          "lumbar_rotation": "L5_S1_axial_rotation"}
NEGATE = ("knee_angle_r", "knee_angle_l")
TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")
# arms of a recording without them (gait2392): hanging, elbows slightly bent (the model's default is a T-pose)
REST = {"arm_flex_r": 0.0, "arm_add_r": -0.17, "arm_rot_r": 0.0, "elbow_flex_r": 0.26,
        "arm_flex_l": 0.0, "arm_add_l": -0.17, "arm_rot_l": 0.0, "elbow_flex_l": 0.26}
UNOBSERVED = ("subtalar_angle_r", "subtalar_angle_l", "mtp_angle_r", "mtp_angle_l", "pro_sup_r", "pro_sup_l",
              "wrist_flex_r", "wrist_flex_l", "wrist_dev_r", "wrist_dev_l")


def names() -> list[str]:
    return list(REAL_MOTIONS)


def _entry(name: str) -> RealMotion:
    if name not in REAL_MOTIONS:
        raise OpenKinError(f"unknown real motion {name!r}", fix=f"choose one of: {', '.join(REAL_MOTIONS)}")
    return REAL_MOTIONS[name]


def original_bytes(name: str) -> bytes:
    """The original .mot file's bytes, checked against its pinned sha256."""
    entry = _entry(name)
    path = DATA / entry.file
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as e:
        raise OpenKinError(f"cannot read the vendored motion: {e}", path=path,
                           fix="reinstall OpenKin (the file ships with it)") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise OpenKinError(f"motion {name!r} has sha256 {digest}, expected {entry.sha256}", path=path,
                           fix="reinstall OpenKin; the vendored file was changed")
    return data


def load(name: str):
    """The motion as recorded: :class:`openkin.formats.mot.Motion` in radians/metres (OpenSim's names)."""
    from ..formats.mot import read_mot

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.mot"
        path.write_bytes(original_bytes(name))
        motion = read_mot(path)
    if motion.in_degrees:
        rot = np.array([n not in TRANSLATIONS for n in motion.names])
        motion.values = np.where(rot, np.radians(motion.values), motion.values)
        motion.in_degrees = False
    return motion


def on_model(name: str, model_ranges: dict[str, tuple[float, float]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(times (F,), {coordinate of the synth model: (F,)}) of the recorded motion mapped onto the model
    (see the module doc). ``model_ranges``: coordinate -> (min, max) of the model."""
    motion, native = load(name), _entry(name).native
    out, clipped = {}, []
    for k, src in enumerate(motion.names):
        dst = src if native else RENAME.get(src, src)
        if dst not in model_ranges or dst in UNOBSERVED:
            continue
        v = motion.values[:, k] * (-1.0 if dst in NEGATE and not native else 1.0)
        lo, hi = model_ranges[dst]
        if dst not in TRANSLATIONS:
            w = np.clip(v, lo, hi)
            if np.abs(w - v).max() > np.radians(1):
                clipped.append(f"{dst} ({np.degrees(np.abs(w - v).max()):.0f} deg)")
            v = w
        out[dst] = v
    for n, v in REST.items():
        if n in model_ranges and n not in out:
            out[n] = np.full(len(motion.times), v)
    if clipped:
        log.info("real motion %s: clipped to the model's ranges: %s", name, ", ".join(clipped))
    return np.asarray(motion.times, float), out


def play(times: np.ndarray, rec_times: np.ndarray, coords: dict[str, np.ndarray],
         center_xz: tuple[float, float]) -> dict[str, np.ndarray]:
    """The recorded ``coords`` ({name: (R,)} at (R,) ``rec_times``) at the scene's ``times`` (F,) seconds,
    played forward then backward (a triangle wave over the recording), the pelvis path centred on
    ``center_xz`` and ``pelvis_ty`` at 0 (the scene puts the feet on the floor)."""
    t0, span = rec_times[0], rec_times[-1] - rec_times[0]
    u = np.mod(np.asarray(times, float) - times[0], 2 * span)
    at = t0 + np.where(u <= span, u, 2 * span - u)
    out = {}
    for n, v in coords.items():
        out[n] = CubicSpline(rec_times, v)(at)
    for n, c in (("pelvis_tx", center_xz[0]), ("pelvis_tz", center_xz[1])):
        if n in out:
            out[n] = out[n] - 0.5 * (out[n].min() + out[n].max()) + c
        else:
            out[n] = np.full(len(at), float(c))
    out["pelvis_ty"] = np.zeros(len(at))
    return out


def real_motion(name: str, times: np.ndarray, center_xz: tuple[float, float], body) -> dict[str, np.ndarray]:
    """Coordinate values of real motion ``name`` at (F,) ``times`` on the synth model ``body``
    (:class:`openkin.synth.forward.Body`) → {coordinate: (F,)} radians / metres."""
    ranges = {c.getName(): (c.getRangeMin(), c.getRangeMax()) for c in body.coordinates}
    rec_times, coords = on_model(name, ranges)
    return play(times, rec_times, coords, center_xz)

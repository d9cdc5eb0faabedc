"""Forward kinematics with OpenSim: joint angles → 3D keypoints of an OpenSim model.

The model is Pose2Sim's generic ``Model_Pose2Sim_simple.osim`` with the marker set
that matches the keypoint set (``Markers_Halpe26.xml`` / ``Markers_Coco17.xml``).
Keypoints the marker sets lack (eyes, ears) are stations fixed in the head body
at anatomically plausible offsets, added to the model as markers so every
keypoint goes through the same OpenSim path.

Positions come out in OpenSim's ground frame (Y-up, metres), which is also the
frame of Pose2Sim's TRC files.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import OpenKinError
from ..progress import Progress, report
from ..skeletons import Skeleton

log = logging.getLogger(__name__)

MODEL = "OpenSim_Setup/Model_Pose2Sim_simple.osim"
MARKER_FILES = {"HALPE_26": "OpenSim_Setup/Markers_Halpe26.xml",
                "COCO_17": "OpenSim_Setup/Markers_Coco17.xml",
                "BLAZEPOSE": "OpenSim_Setup/Markers_BlazePose.xml"}

# Foot points used to put the feet on the floor (from the HALPE_26 marker file, which has them).
FOOT_MARKERS = ("LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")

# Head-frame stations (x forward, y up, z right; metres) for keypoints without a model
# marker. The model's Nose marker is at (0.116, 0.013, 0) and Head at (0.016, 0.164, 0):
# eyes sit 3 cm above and 2 cm behind the nose tip, 3.2 cm either side; ears (tragus)
# 10 cm behind the eyes, 7.5 cm either side; eye corners 1.5 cm either side of the eye
# centre; mouth corners 3 cm below the nose, 2.5 cm either side (BlazePose).
HEAD_STATIONS = {
    "LEye": (0.095, 0.045, -0.032), "REye": (0.095, 0.045, 0.032),
    "LEar": (-0.005, 0.035, -0.075), "REar": (-0.005, 0.035, 0.075),
    "LEyeInner": (0.098, 0.045, -0.017), "REyeInner": (0.098, 0.045, 0.017),
    "LEyeOuter": (0.088, 0.045, -0.047), "REyeOuter": (0.088, 0.045, 0.047),
    "MouthLeft": (0.105, -0.02, -0.025), "MouthRight": (0.105, -0.02, 0.025),
}


@dataclass
class Body:
    """A loaded OpenSim model ready for forward kinematics.

    ``coordinate_names``: (C,) in the model's CoordinateSet order;
    ``keypoint_names``: (K,) in skeleton order.
    """

    model: object
    state: object
    coordinates: list
    markers: list
    coordinate_names: list[str]
    keypoint_names: list[str]
    n_keypoints: int        # markers[:n_keypoints] are the keypoints, the rest foot points for grounding
    rotational: np.ndarray  # (C,) bool: rotational coordinate (radians) vs translational (metres)


def _import_opensim():
    try:
        import opensim
    except ImportError:
        raise OpenKinError("the opensim package is not installed; ground-truth scenes need it",
                           fix="install it: pip install opensim==4.6 (or run the README's setup command)") from None
    opensim.Logger.setLevelString("error")
    return opensim


def load_body(skeleton: Skeleton) -> Body:
    """The generic model with the markers of ``skeleton`` (HALPE_26 or COCO_17); loaded
    once per process and keypoint set (about 0.5 s)."""
    if skeleton.name not in _BODIES:
        _BODIES[skeleton.name] = _load_body(skeleton)
    return _BODIES[skeleton.name]


_BODIES: dict[str, Body] = {}


def _load_body(skeleton: Skeleton) -> Body:
    from ..assets import asset_path

    if skeleton.name not in MARKER_FILES:
        raise OpenKinError(f"ground-truth scenes support {', '.join(MARKER_FILES)}, not {skeleton.name}",
                           fix="use --keypoints HALPE_26, COCO_17 or BLAZEPOSE")
    osim = _import_opensim()
    model = osim.Model(str(asset_path(MODEL)))
    model.updateMarkerSet(osim.MarkerSet(str(asset_path(MARKER_FILES[skeleton.name]))))
    head = model.getBodySet().get("head")
    have = {model.getMarkerSet().get(i).getName() for i in range(model.getMarkerSet().getSize())}
    for name in skeleton.names:
        if name not in have:
            if name not in HEAD_STATIONS:
                raise OpenKinError(f"keypoint {name!r} has no marker in {MARKER_FILES[skeleton.name]}",
                                   fix="add it to HEAD_STATIONS or to the marker file")
            model.addMarker(osim.Marker(name, head, osim.Vec3(*HEAD_STATIONS[name])))
    _add_foot_markers(osim, model)
    state = model.initSystem()
    cs = model.getCoordinateSet()
    coords = [cs.get(i) for i in range(cs.getSize())]
    mset = model.getMarkerSet()
    markers = [mset.get(name) for name in skeleton.names]
    markers += [mset.get(f"foot:{name}") for name in FOOT_MARKERS]
    rot = np.array([c.getMotionType() == 1 for c in coords])  # 1 = Rotational, 2 = Translational
    return Body(model, state, coords, markers, [c.getName() for c in coords], list(skeleton.names),
                len(skeleton.names), rot)


def _add_foot_markers(osim, model) -> None:
    """Copies of the HALPE_26 foot markers named ``foot:<name>`` (for grounding any skeleton)."""
    from ..assets import asset_path

    halpe = osim.MarkerSet(str(asset_path(MARKER_FILES["HALPE_26"])))
    for name in FOOT_MARKERS:
        src = halpe.get(name)
        body = model.getBodySet().get(src.getParentFrameName().split("/")[-1])
        model.addMarker(osim.Marker(f"foot:{name}", body, src.get_location()))


def forward_kinematics(body: Body, names: list[str], values: np.ndarray,
                       progress: Progress | None = None) -> np.ndarray:
    """Keypoint positions in ground for each frame of a motion.

    ``names``: (C',) coordinate names (others stay at the model default);
    ``values``: (F, C') radians / metres → (F, K + J, 3) metres, OpenSim ground (Y-up):
    the K keypoints, then the J foot points (``body.n_keypoints`` splits them).
    Per frame: set the coordinates, realise positions, read the markers (about
    0.4 ms a frame; OpenSim has no batched API, so this loop is the cost).
    """
    values = np.asarray(values, dtype=float)
    index = {n: i for i, n in enumerate(body.coordinate_names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise OpenKinError(f"coordinates not in the model: {', '.join(unknown)}",
                           fix=f"use coordinates of {MODEL}")
    coords = [body.coordinates[index[n]] for n in names]
    model, state = body.model, body.state
    given = set(names)
    for c in body.coordinates:  # a cached body may hold another motion's values
        if c.getName() not in given:
            c.setValue(state, c.getDefaultValue(), False)
    out = np.empty((len(values), len(body.markers), 3))
    for f, row in enumerate(values):
        for c, v in zip(coords, row):
            c.setValue(state, float(v), False)
        model.realizePosition(state)
        for k, m in enumerate(body.markers):
            out[f, k] = m.getLocationInGround(state).to_numpy()
        if f % 100 == 0:
            report(progress, f / max(len(values), 1), "forward kinematics")
    return out


def default_values(body: Body) -> dict[str, float]:
    """Model default value of every coordinate (radians / metres)."""
    return {c.getName(): c.getDefaultValue() for c in body.coordinates}

"""OpenSim model → body tree, rest frames, mesh list, and body frames per frame of a MOT.

Uses the ``opensim`` API (imported lazily: it is heavy). Body frames are read
after ``realizePosition`` per frame with the generalized coordinates written
straight into the state's Q vector (one ``setQ`` per frame instead of one
``Coordinate.setValue`` per coordinate: ~3× faster on the Pose2Sim model).
All frames returned here are in OpenSim's Y-up ground; :mod:`.axes` turns them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openkin.errors import OpenKinError
from openkin.geometry import euler_xyz_to_matrix
from openkin.progress import Progress, report

log = logging.getLogger(__name__)

ROTATIONAL = 1  # opensim.Coordinate.Rotational


@dataclass
class MeshRef:
    """One attached geometry: ``body`` index, file name, ``scale`` (3,), ``rest`` (4, 4) frame in ground."""

    body: int
    filename: str
    scale: np.ndarray
    rest: np.ndarray


@dataclass
class OsimModel:
    """What the scene needs from a model. ``rest``: (B, 4, 4) body frames in the default pose (Y-up)."""

    path: Path
    model: object
    state: object
    body_names: list[str]
    parents: list[int]
    rest: np.ndarray
    meshes: list[MeshRef]
    q_index: dict[str, int]
    rotational: set[str]


def _osim():
    try:
        import opensim
    except ImportError as e:
        raise OpenKinError(f"the OpenSim Python package is not available ({e})",
                           fix="install the OpenKin extension for Linux x64 or Windows x64 "
                               "(OpenSim has no macOS wheel)") from None
    return opensim


def load_model(path: str | Path) -> OsimModel:
    """Read an .osim file, build its system, and collect bodies and meshes."""
    path = Path(path)
    if not path.is_file():
        raise OpenKinError("OpenSim model file not found", path=path, fix="choose an existing .osim file")
    osim = _osim()
    try:
        model = osim.Model(str(path))
        state = model.initSystem()
    except Exception as e:  # the OpenSim binding raises plain RuntimeError with its message
        raise OpenKinError(f"OpenSim could not load the model: {str(e).strip()[:300]}", path=path,
                           fix="open the model in OpenSim to check it, or give another .osim") from None
    q_index, rotational = _coordinate_layout(model, state)
    model.realizePosition(state)
    bodies = model.getBodySet()
    names = [bodies.get(i).getName() for i in range(bodies.getSize())]
    parents = _parents(model, names)
    rest = np.stack([_frame_matrix(bodies.get(i).getTransformInGround(state)) for i in range(len(names))])
    meshes = _meshes(osim, model, state, names)
    return OsimModel(path, model, state, names, parents, rest, meshes, q_index, rotational)


def _frame_matrix(transform) -> np.ndarray:
    """SimTK Transform → (4, 4)."""
    out = np.eye(4)
    out[:3, :3] = euler_xyz_to_matrix(transform.R().convertRotationToBodyFixedXYZ().to_numpy()[None])[0]
    out[:3, 3] = transform.p().to_numpy()
    return out


def _parents(model, names: list[str]) -> list[int]:
    """Parent body index of each body through the joints (-1 = ground)."""
    parents = [-1] * len(names)
    joints = model.getJointSet()
    for j in range(joints.getSize()):
        joint = joints.get(j)
        child = joint.getChildFrame().findBaseFrame().getName()
        parent = joint.getParentFrame().findBaseFrame().getName()
        if child in names:
            parents[names.index(child)] = names.index(parent) if parent in names else -1
    return parents


def _coordinate_layout(model, state) -> tuple[dict[str, int], set[str]]:
    """Coordinate name → index in the state's Q, found by perturbing each coordinate once
    (locked coordinates are unlocked for that: a locked one does not move its Q)."""
    coords = model.getCoordinateSet()
    q0 = state.getQ().to_numpy().copy()
    index, rotational = {}, set()
    for i in range(coords.getSize()):
        c = coords.get(i)
        locked = c.getLocked(state)
        if locked:
            c.setLocked(state, False)
        v = c.getValue(state)
        c.setValue(state, v + 0.125, False)
        moved = np.abs(state.getQ().to_numpy() - q0)
        c.setValue(state, v, False)
        if locked:
            c.setLocked(state, True)
        if moved.max() == 0:
            raise OpenKinError(f"cannot find the state variable of coordinate {c.getName()!r}",
                               fix="check the model in OpenSim (is this coordinate prescribed?)")
        index[c.getName()] = int(np.argmax(moved))
        if c.getMotionType() == ROTATIONAL:
            rotational.add(c.getName())
    if len(set(index.values())) != len(index):
        raise OpenKinError("two coordinates share one state variable in this model",
                           fix="check the model's joints in OpenSim")
    return index, rotational


def _meshes(osim, model, state, names: list[str]) -> list[MeshRef]:
    out = []
    for comp in model.getComponentsList():
        if comp.getConcreteClassName() != "Mesh":
            continue
        mesh = osim.Mesh.safeDownCast(comp)
        frame = mesh.getFrame()
        base = frame.findBaseFrame().getName()
        if base not in names:
            continue  # geometry on ground
        out.append(MeshRef(names.index(base), mesh.getGeometryFilename(),
                           mesh.get_scale_factors().to_numpy().copy(),
                           _frame_matrix(frame.getTransformInGround(state))))
    return out


def motion_to_q(model: OsimModel, names: list[str], values: np.ndarray, in_degrees: bool,
                mot_path: str | Path | None = None) -> np.ndarray:
    """MOT columns (C,) and values (F, C) → Q (F, nq) in radians/metres.

    Raises :class:`OpenKinError` when the motion does not fit the model: no
    common coordinate, or more than a fifth of its columns unknown to the model.
    """
    known = [n for n in names if n in model.q_index]
    unknown = [n for n in names if n not in model.q_index]
    if not known or len(unknown) > 0.2 * len(names):
        raise OpenKinError(
            f"the motion does not fit the model {model.path.name}: {len(unknown)} of its {len(names)} "
            f"columns are not coordinates of the model (e.g. {', '.join(unknown[:5])})",
            path=mot_path, fix="choose the .mot computed with this model (kinematics/<trial>.mot with "
                               "its <trial>_scaled.osim)")
    if unknown:
        log.warning("motion columns not in the model, ignored: %s", ", ".join(unknown))
    missing = sorted(set(model.q_index) - set(names))
    if missing:
        log.warning("model coordinates absent from the motion, kept at default: %s", ", ".join(missing))
    q = np.tile(model.state.getQ().to_numpy().copy(), (values.shape[0], 1))
    for c, name in enumerate(names):
        if name in model.q_index:
            col = values[:, c]
            q[:, model.q_index[name]] = np.deg2rad(col) if in_degrees and name in model.rotational else col
    return q


def body_frames(model: OsimModel, q: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """Q (F, nq) → body frames in ground (F, B, 4, 4), Y-up. Leaves the state at the last frame."""
    osim = _osim()
    bodies = model.model.getBodySet()
    handles = [bodies.get(i) for i in range(len(model.body_names))]
    n = q.shape[0]
    pos = np.empty((n, len(handles), 3))
    eul = np.empty((n, len(handles), 3))
    state = model.state
    step = max(1, n // 50)
    for f in range(n):
        state.setQ(osim.Vector.createFromMat(q[f]))
        model.model.realizePosition(state)
        for b, body in enumerate(handles):  # two getters: ~25 % faster than getTransformInGround().p()/.R()
            pos[f, b] = body.getPositionInGround(state).to_numpy()
            eul[f, b] = body.getRotationInGround(state).convertRotationToBodyFixedXYZ().to_numpy()
        if f % step == 0:
            report(progress, f / n, f"body frames {f}/{n}")
    out = np.zeros((n, len(handles), 4, 4))
    out[..., :3, :3] = euler_xyz_to_matrix(eul.reshape(-1, 3)).reshape(n, -1, 3, 3)
    out[..., :3, 3] = pos
    out[..., 3, 3] = 1.0
    return out


def find_geometry(filename: str, model_path: Path, extra_dirs: list[Path]) -> Path | None:
    """The first existing ``filename`` (or same stem as .stl/.obj) in the model's Geometry
    folder, next to the model, then in ``extra_dirs``."""
    stem = Path(filename).stem
    for folder in [model_path.parent / "Geometry", model_path.parent, *extra_dirs]:
        for name in (filename, f"{stem}.vtp", f"{stem}.stl", f"{stem}.obj"):
            p = folder / name
            if p.is_file():
                return p
    return None

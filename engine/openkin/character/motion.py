"""A scaled OpenSim model driven by its IK motion: body frames and joint centres per frame.

Forward kinematics is OpenKin's own (:mod:`openkin.kinematics.model_tree`, read once from the
model through the OpenSim API and evaluated in numpy over all frames), not a second copy:
body frames are read through four stations per body (its origin and the tips of its unit
axes) and joint centres through one station per joint (the child frame's origin), which
``model_tree.forward`` evaluates like any marker.

Everything returned here is in the capture's world frame (Z up, metres): OpenSim's Y-up
ground turned with :data:`openkin.geometry.axes.YUP_TO_ZUP`, as the add-on and the cameras do.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..formats.mot import read_mot
from ..geometry.axes import YUP_TO_ZUP
from ..kinematics import model_tree as mt
from ..kinematics.setup import load_model

log = logging.getLogger(__name__)


@dataclass
class BodyMotion:
    """FK of a model over a motion, Z-up world.

    ``bodies`` (B,); ``R`` (F, B, 3, 3) body orientations; ``p`` (F, B, 3) body origins;
    ``joints`` (J,) joint names, ``joint_parent``/``joint_child`` (J,) body indices (-1: ground);
    ``centres`` (F, J, 3) joint centres (each joint's child frame origin, as OpenSim reports it);
    the same at the model's default pose (all coordinates at their defaults, pelvis at the
    ground origin): ``R0`` (B, 3, 3), ``p0`` (B, 3), ``centres0`` (J, 3); ``times`` (F,) s;
    ``tree`` the model's :class:`~openkin.kinematics.model_tree.Tree` (for more stations).
    """

    bodies: list[str]
    R: np.ndarray
    p: np.ndarray
    joints: list[str]
    joint_parent: np.ndarray
    joint_child: np.ndarray
    centres: np.ndarray
    R0: np.ndarray
    p0: np.ndarray
    centres0: np.ndarray
    times: np.ndarray
    tree: mt.Tree

    def body(self, name: str) -> int:
        return self.bodies.index(name)

    def joint_of_child(self, body: str) -> int:
        """Index of the joint whose child is ``body``."""
        return int(np.flatnonzero(self.joint_child == self.body(body))[0])

    def world(self, body: str, local: np.ndarray) -> np.ndarray:
        """Stations ``local`` (3,) or (K, 3) in ``body``'s frame -> world, (F, 3) or (F, K, 3)."""
        b = self.body(body)
        local = np.asarray(local, float)
        origin = self.p[:, b] if local.ndim == 1 else self.p[:, b, None]
        return origin + np.einsum("fij,...j->f...i", self.R[:, b], local)

    def local(self, body: str, world0: np.ndarray) -> np.ndarray:
        """A point (3,) of the default pose (world) -> ``body``'s frame (3,)."""
        b = self.body(body)
        return self.R0[b].T @ (np.asarray(world0, float) - self.p0[b])


def _stations(tree: mt.Tree) -> tuple[np.ndarray, np.ndarray]:
    """Per body 4 stations (origin, x, y, z tips) then per joint its child frame origin:
    (bodies (4B + J,), locations (4B + J, 3))."""
    nb = len(tree.bodies)
    body = np.repeat(np.arange(nb), 4)
    loc = np.tile(np.vstack([np.zeros(3), np.eye(3)]), (nb, 1))
    jbody = np.array([j.child for j in tree.joints], int)
    jloc = np.array([j.p_bm for j in tree.joints], float).reshape(-1, 3)
    return np.concatenate([body, jbody]), np.vstack([loc, jloc])


def tree_frames(tree: mt.Tree, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates ``q`` (F, C) -> body R (F, B, 3, 3), p (F, B, 3), joint centres (F, J, 3), Y-up ground."""
    body, loc = _stations(tree)
    names = [f"~station{i}" for i in range(len(body))]
    probe = dataclasses.replace(tree, marker_names=names, marker_body=body, marker_loc=loc)
    x = mt.forward(probe, q).markers
    nb = len(tree.bodies)
    st = x[:, :4 * nb].reshape(len(q), nb, 4, 3)
    p = st[:, :, 0]
    R = np.stack([st[:, :, 1] - p, st[:, :, 2] - p, st[:, :, 3] - p], axis=-1)
    return R, p, x[:, 4 * nb:]


def _to_zup(R: np.ndarray, p: np.ndarray, c: np.ndarray):
    return YUP_TO_ZUP @ R, p @ YUP_TO_ZUP.T, c @ YUP_TO_ZUP.T


def motion_coordinates(tree: mt.Tree, names: list[str], values: np.ndarray, in_degrees: bool,
                       mot_path: Path | None = None) -> np.ndarray:
    """MOT columns (C,) and values (F, C) -> the tree's coordinates q (F, Cm), radians/metres.
    Free coordinates from the motion (missing: default), dependent ones through their coupler."""
    col = {n: i for i, n in enumerate(names)}
    free = [tree.coord_names[c] for c in tree.free]
    missing = [n for n in free if n not in col]
    if len(missing) > 0.2 * max(len(free), 1):
        raise OpenKinError(f"the motion does not fit the model: {len(missing)} of the model's {len(free)} "
                           f"coordinates are not in it (e.g. {', '.join(missing[:5])})", path=mot_path,
                           fix="give the .mot computed with this model (kinematics/<trial>.mot with its .osim)")
    if missing:
        log.warning("model coordinates absent from the motion, kept at default: %s", ", ".join(missing))
    x = np.tile(tree.default[tree.free], (len(values), 1))
    for k, c in enumerate(tree.free):
        name = tree.coord_names[c]
        if name in col:
            v = values[:, col[name]]
            x[:, k] = np.deg2rad(v) if in_degrees and tree.rotational[c] else v
    if not np.isfinite(x).all():
        raise OpenKinError("the motion has missing values (NaN)", path=mot_path,
                           fix="run the kinematics stage again (it fills gaps) or fill the gaps")
    return mt.full_coordinates(tree, x)[0]


def body_motion_from_tree(tree: mt.Tree, q: np.ndarray, times: np.ndarray) -> BodyMotion:
    """FK of ``tree`` over ``q`` (F, C) (and at its default pose), Z-up."""
    R, p, c = _to_zup(*tree_frames(tree, q))
    q0 = mt.full_coordinates(tree, tree.default[tree.free][None])[0]
    R0, p0, c0 = _to_zup(*tree_frames(tree, q0))
    jp = np.array([j.parent for j in tree.joints], int)
    jc = np.array([j.child for j in tree.joints], int)
    return BodyMotion(list(tree.bodies), R, p, [j.name for j in tree.joints], jp, jc, c, R0[0], p0[0], c0[0],
                      np.asarray(times, float), tree)


def read_tree_file(osim_path: str | Path) -> mt.Tree:
    """The kinematic tree of an .osim file (OpenKinError if OpenSim cannot load it or the tree has
    an element :mod:`~openkin.kinematics.model_tree` does not represent)."""
    model, _ = load_model(osim_path, clamp=())
    try:
        return mt.read_tree(model)
    except mt.Unsupported as e:
        raise OpenKinError(f"this model cannot be turned into an animation skeleton: {e}", path=osim_path,
                           fix="use a Pose2Sim model (Model_Pose2Sim_*.osim) scaled by the kinematics stage") from None


def body_motion(osim_path: str | Path, mot_path: str | Path) -> BodyMotion:
    """Body frames and joint centres of the model ``osim_path`` over the motion ``mot_path``."""
    tree = read_tree_file(osim_path)
    mot = read_mot(mot_path)
    q = motion_coordinates(tree, mot.names, mot.values, mot.in_degrees, Path(mot_path))
    return body_motion_from_tree(tree, q, mot.times)

"""An OpenSim model's kinematic tree as arrays, for forward kinematics over all frames at once.

OpenSim evaluates a pose one State at a time (set coordinates, realize, read a
transform), which costs tens of microseconds per body per frame from Python.
Here the tree is read ONCE through the opensim API and then evaluated with numpy
over (F, ...) arrays:

- bodies in topological order; each joint's parent and child offset frames;
- each joint's motion as a list of :class:`Axis`: a rotation about, or a
  translation along, a unit vector of the joint's parent offset frame F, whose
  value is a function of one coordinate. CustomJoint: its SpatialTransform's
  three rotations (a body-fixed sequence: each axis is carried by the previous
  rotations) then three translations (along axes of F); PinJoint: rotation about
  F's z; UniversalJoint: about x, then the rotated y; WeldJoint: none.
- functions: LinearFunction and Constant exactly; any other one-argument
  OpenSim function (SimmSpline, NaturalCubicSpline, PolynomialFunction,
  MultiplierFunction, ...) is sampled through OpenSim's own ``calcValue`` on a
  dense grid (1 mrad / 1 mm) and interpolated with scipy's CubicSpline, so the
  values are OpenSim's (extrapolation included) rather than a re-implementation
  of SimmSpline's end conditions;
- coordinates: free, locked (held at their default value, as OpenSim's IK does),
  or dependent through a CoordinateCouplerConstraint (``scale_factor * f(q_ind)``);
  ranges and whether each is clamped;
- markers: body and location in the body frame.

A joint or constraint type not listed raises :class:`Unsupported`, naming the
element, so that the caller falls back to OpenSim's solver.

Why numpy (not JAX, pinocchio, MuJoCo): the models have ~30 bodies and ~40
coordinates; vectorised over frames, one forward-kinematics + Jacobian pass over
720 frames is a few dozen (F, 3, 3) products and one batched matmul, which numpy
does in milliseconds on one core. numpy and scipy are already dependencies with
wheels everywhere; a JIT or a rigid-body library would add a dependency (and
their OpenSim import paths do not read CustomJoint splines/couplers) for a
stage that is then no longer the bottleneck.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline

log = logging.getLogger(__name__)

GRID_STEP = 1e-3       # rad or m between samples of a sampled function
SAMPLED_FUNCTIONS = ("SimmSpline", "NaturalCubicSpline", "PolynomialFunction", "MultiplierFunction",
                     "GCVSpline", "Sine")


class Unsupported(Exception):
    """The model has an element this module cannot represent (the message names it)."""


@dataclass
class Function1:
    """y = f(x) of one coordinate: ``kind`` 'const' (``a``), 'linear' (``a*x + b``) or 'spline'
    (``spline``: a scipy CubicSpline on a uniform grid, evaluated here from its piecewise
    coefficients: one index computation gives the value and the slope together, without
    scipy's per-call overhead; extrapolation uses the end pieces, as CubicSpline does)."""

    kind: str
    a: float = 0.0
    b: float = 0.0
    spline: CubicSpline | None = None

    def __post_init__(self):
        if self.spline is not None:
            x = self.spline.x
            self._x0, self._h, self._n = float(x[0]), float(x[1] - x[0]), len(x) - 1
            self._c = np.ascontiguousarray(self.spline.c.T)  # (n, 4) highest power first

    def _piece(self, x: np.ndarray):
        i = np.clip(((x - self._x0) / self._h).astype(np.int64), 0, self._n - 1)
        return self._c[i], x - self.spline.x[i]

    def value(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "const":
            return np.full(np.shape(x), self.a)
        if self.kind == "linear":
            return self.a * x + self.b
        c, t = self._piece(x)
        return ((c[:, 0] * t + c[:, 1]) * t + c[:, 2]) * t + c[:, 3]

    def slope(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "const":
            return np.zeros(np.shape(x))
        if self.kind == "linear":
            return np.full(np.shape(x), self.a)
        c, t = self._piece(x)
        return (3 * c[:, 0] * t + 2 * c[:, 1]) * t + c[:, 2]

    def value_slope(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.kind != "spline":
            return self.value(x), self.slope(x)
        c, t = self._piece(x)
        return ((c[:, 0] * t + c[:, 1]) * t + c[:, 2]) * t + c[:, 3], (3 * c[:, 0] * t + 2 * c[:, 1]) * t + c[:, 2]


@dataclass
class Axis:
    """One elementary motion of a joint: ``rot`` (else translation), unit ``axis`` (3,) in F,
    value ``fn(q[coord])`` (``coord`` = -1: constant)."""

    rot: bool
    axis: np.ndarray
    coord: int
    fn: Function1

    def __post_init__(self):
        self.K = _skew(self.axis)       # Rodrigues' matrices of the fixed axis
        self.K2 = self.K @ self.K


@dataclass
class Joint:
    """``parent``/``child``: body indices (-1 = ground); ``R_pf, p_pf``: parent offset frame in the
    parent body; ``R_bm, p_bm``: child offset frame in the child body; ``axes`` in order
    (rotations first, body-fixed; then translations)."""

    name: str
    parent: int
    child: int
    R_pf: np.ndarray
    p_pf: np.ndarray
    R_bm: np.ndarray
    p_bm: np.ndarray
    axes: list[Axis]


@dataclass
class Tree:
    """The whole model. ``coord_kind``: (C,) 0 free, 1 locked, 2 dependent; ``dep``: coordinate ->
    (independent coordinate, Function1 incl. scale factor); ``free``: indices of free coordinates."""

    bodies: list[str]
    joints: list[Joint]
    coord_names: list[str]
    rotational: np.ndarray
    default: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    clamped: np.ndarray
    coord_kind: np.ndarray
    dep: dict[int, tuple[int, Function1]]
    marker_names: list[str]
    marker_body: np.ndarray
    marker_loc: np.ndarray
    free: np.ndarray = field(default_factory=lambda: np.zeros(0, int))


def _mat(rot) -> np.ndarray:
    return np.array([[rot.get(i, j) for j in range(3)] for i in range(3)])


def _vec(v) -> np.ndarray:
    return np.array([v.get(i) for i in range(3)])


def _frame(frame) -> tuple[str, np.ndarray, np.ndarray]:
    """(base body name, R (3, 3), p (3,)) of a (possibly offset) frame in its base frame."""
    t = frame.findTransformInBaseFrame()
    return frame.findBaseFrame().getName(), _mat(t.R()), _vec(t.p())


def _grid(osim, coord) -> np.ndarray:
    lo, hi = coord.getRangeMin(), coord.getRangeMax()
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo > 20:
        lo, hi = (-2 * np.pi, 2 * np.pi) if coord.getMotionType() == 1 else (-5.0, 5.0)
    margin = 0.5 if coord.getMotionType() == 1 else 0.2
    lo, hi = lo - margin, hi + margin
    return np.linspace(lo, hi, int(np.ceil((hi - lo) / GRID_STEP)) + 1)


def read_function(osim, fn, coord, where: str) -> Function1:
    """A one-argument OpenSim function as a :class:`Function1`."""
    kind = fn.getConcreteClassName()
    if kind == "Constant":
        return Function1("const", osim.Constant.safeDownCast(fn).getValue())
    if kind == "LinearFunction":
        c = osim.LinearFunction.safeDownCast(fn).getCoefficients()
        return Function1("linear", c.get(0), c.get(1))
    if kind not in SAMPLED_FUNCTIONS:
        raise Unsupported(f"{where}: function type {kind}")
    if coord is None:  # e.g. a MultiplierFunction of a Constant (scaled models): a constant
        return Function1("const", fn.calcValue(osim.Vector(1, 0.0)))
    x = _grid(osim, coord)
    arg = osim.Vector(1, 0.0)
    y = np.empty_like(x)
    for i, xi in enumerate(x):
        arg.set(0, float(xi))
        y[i] = fn.calcValue(arg)
    spline = CubicSpline(x, y)
    return Function1("spline", spline=spline)


def _axes_custom(osim, joint, cindex, cset) -> list[Axis]:
    st = osim.CustomJoint.safeDownCast(joint).getSpatialTransform()
    out = []
    for k in range(6):
        ta = st.getTransformAxis(k)
        names = ta.getCoordinateNamesInArray()
        if names.getSize() > 1:
            raise Unsupported(f"joint {joint.getName()}: transform axis {k} with {names.getSize()} coordinates")
        cname = names.get(0) if names.getSize() else None
        coord = cset.get(cname) if cname else None
        where = f"joint {joint.getName()} axis {ta.getName()}"
        fn = read_function(osim, ta.getFunction(), coord, where) if ta.hasFunction() else Function1("const", 0.0)
        axis = _vec(ta.getAxis())
        axis = axis / np.linalg.norm(axis)
        c = cindex[cname] if cname and fn.kind != "const" else -1
        if fn.kind == "const" and fn.a == 0.0:
            continue
        out.append(Axis(k < 3, axis, c, fn))
    return out


def _check_rotation_axes(joint, axes: list[Axis]) -> None:
    """OpenSim replaces dependent rotation axes of a SpatialTransform: refuse rather than guess."""
    rots = [a.axis for a in axes if a.rot]
    for i in range(len(rots)):
        for j in range(i + 1, len(rots)):
            if abs(abs(float(rots[i] @ rots[j])) - 1.0) < 1e-9:
                raise Unsupported(f"joint {joint.getName()}: parallel rotation axes")


IDENTITY = Function1("linear", 1.0, 0.0)


def _joint_axes(osim, joint, cindex, cset) -> list[Axis]:
    kind = joint.getConcreteClassName()
    coords = [joint.get_coordinates(k).getName() for k in range(joint.numCoordinates())]
    if kind == "CustomJoint":
        axes = _axes_custom(osim, joint, cindex, cset)
        _check_rotation_axes(joint, axes)
        return axes
    if kind == "WeldJoint":
        return []
    if kind == "PinJoint":
        return [Axis(True, np.array([0.0, 0, 1]), cindex[coords[0]], IDENTITY)]
    if kind == "UniversalJoint":
        return [Axis(True, np.array([1.0, 0, 0]), cindex[coords[0]], IDENTITY),
                Axis(True, np.array([0.0, 1, 0]), cindex[coords[1]], IDENTITY)]
    if kind == "SliderJoint":
        return [Axis(False, np.array([1.0, 0, 0]), cindex[coords[0]], IDENTITY)]
    raise Unsupported(f"joint {joint.getName()}: type {kind}")


def _coordinates(osim, model):
    cset = model.getCoordinateSet()
    coords = [cset.get(i) for i in range(cset.getSize())]
    names = [c.getName() for c in coords]
    for c in coords:
        if c.get_prescribed():
            raise Unsupported(f"coordinate {c.getName()}: prescribed")
    return cset, coords, names


def _couplers(osim, model, cindex, cset) -> dict[int, tuple[int, Function1]]:
    dep = {}
    cons = model.getConstraintSet()
    for i in range(cons.getSize()):
        con = cons.get(i)
        if not con.get_isEnforced():
            continue
        cc = osim.CoordinateCouplerConstraint.safeDownCast(con)
        if cc is None:
            raise Unsupported(f"constraint {con.getName()}: type {con.getConcreteClassName()}")
        ind = cc.getIndependentCoordinateNames()
        if ind.getSize() != 1:
            raise Unsupported(f"constraint {con.getName()}: {ind.getSize()} independent coordinates")
        fn = read_function(osim, cc.getFunction(), cset.get(ind.get(0)), f"constraint {con.getName()}")
        scale = cc.get_scale_factor() if hasattr(cc, "get_scale_factor") else 1.0
        if scale != 1.0:
            fn = _scaled(fn, scale)
        dep[cindex[cc.getDependentCoordinateName()]] = (cindex[ind.get(0)], fn)
    return dep


def _scaled(fn: Function1, s: float) -> Function1:
    if fn.kind == "const":
        return Function1("const", s * fn.a)
    if fn.kind == "linear":
        return Function1("linear", s * fn.a, s * fn.b)
    spline = CubicSpline(fn.spline.x, s * fn.spline(fn.spline.x))
    return Function1("spline", spline=spline)


def read_tree(model) -> Tree:
    """The kinematic tree of an initialised OpenSim ``model`` (``initSystem`` called).
    Raises :class:`Unsupported` for a joint, function or constraint this module cannot represent."""
    import opensim as osim

    cset, coords, cnames = _coordinates(osim, model)
    cindex = {n: i for i, n in enumerate(cnames)}
    jset = model.getJointSet()
    raw = []
    for i in range(jset.getSize()):
        j = jset.get(i)
        pname, R_pf, p_pf = _frame(j.getParentFrame())
        cname, R_bm, p_bm = _frame(j.getChildFrame())
        raw.append((j, pname, cname, R_pf, p_pf, R_bm, p_bm))
    order, placed = [], {"ground"}
    while len(order) < len(raw):  # topological order: a joint once its parent body is placed
        ready = [r for r in raw if r[1] in placed and r[2] not in placed]
        if not ready:
            names = [r[0].getName() for r in raw if r[2] not in placed]
            raise Unsupported(f"joints {names}: not a tree rooted at ground")
        for r in ready:
            order.append(r)
            placed.add(r[2])
    bodies = [r[2] for r in order]
    bindex = {b: i for i, b in enumerate(bodies)}
    bindex["ground"] = -1
    joints = [Joint(j.getName(), bindex[p], bindex[c], R_pf, p_pf, R_bm, p_bm, _joint_axes(osim, j, cindex, cset))
              for j, p, c, R_pf, p_pf, R_bm, p_bm in order]
    dep = _couplers(osim, model, cindex, cset)
    kind = np.zeros(len(coords), int)
    for i, c in enumerate(coords):
        if c.getDefaultLocked():
            kind[i] = 1
        elif i in dep:
            kind[i] = 2
    for d, (ind, _) in dep.items():
        if kind[ind] != 0:
            raise Unsupported(f"coordinate {cnames[d]}: coupled to a coordinate that is not free ({cnames[ind]})")
    ms = model.getMarkerSet()
    mnames, mbody, mloc = [], [], []
    for i in range(ms.getSize()):
        mk = ms.get(i)
        base, R, p = _frame(mk.getParentFrame())
        if base not in bindex:
            raise Unsupported(f"marker {mk.getName()}: on frame {base}")
        mnames.append(mk.getName())
        mbody.append(bindex[base])
        mloc.append(p + R @ _vec(mk.get_location()))
    tree = Tree(bodies, joints, cnames, np.array([c.getMotionType() == 1 for c in coords]),
                np.array([c.getDefaultValue() for c in coords]), np.array([c.getRangeMin() for c in coords]),
                np.array([c.getRangeMax() for c in coords]), np.array([bool(c.get_clamped()) for c in coords]),
                kind, dep, mnames, np.array(mbody, int), np.array(mloc).reshape(-1, 3))
    tree.free = np.flatnonzero(kind == 0)
    return tree


def full_coordinates(tree: Tree, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All coordinates from the free ones. ``x``: (F, n) -> q (F, C), dq/dx of each coordinate
    with respect to its own free variable (F, C) (1 for free, 0 for locked, f' for dependent)."""
    F = len(x)
    q = np.broadcast_to(tree.default, (F, len(tree.default))).copy()
    dq = np.zeros_like(q)
    q[:, tree.free] = x
    dq[:, tree.free] = 1.0
    for d, (ind, fn) in tree.dep.items():
        q[:, d], dq[:, d] = fn.value_slope(q[:, ind])
    return q, dq


def source(tree: Tree) -> np.ndarray:
    """(C,) index into the free variables each coordinate moves with (-1: locked)."""
    pos = {c: k for k, c in enumerate(tree.free)}
    src = np.full(len(tree.coord_names), -1)
    for c in range(len(src)):
        if tree.coord_kind[c] == 0:
            src[c] = pos[c]
        elif tree.coord_kind[c] == 2:
            src[c] = pos[tree.dep[c][0]]
    return src


def _skew(axis: np.ndarray) -> np.ndarray:
    return np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])


def _rodrigues(ax: "Axis", angle: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations by ``angle`` (F,) about the fixed unit axis of ``ax``."""
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * ax.K + (1 - c) * ax.K2


@dataclass
class Pose:
    """Forward kinematics of F frames. ``markers``: (F, M, 3) in ground; per active axis (one whose
    value depends on a coordinate), ``axis_dir`` (F, A, 3) in ground, ``axis_origin`` (F, A, 3),
    ``axis_rot`` (A,), ``axis_coord`` (A,), ``axis_slope`` (F, A) = d value / d coordinate,
    ``axis_joint`` (A,); ``body_R`` (B, F, 3, 3) and ``body_p`` (B, F, 3): each body's rotation and
    origin in ground (trackers' targets)."""

    markers: np.ndarray
    axis_dir: np.ndarray
    axis_origin: np.ndarray
    axis_rot: np.ndarray
    axis_coord: np.ndarray
    axis_slope: np.ndarray
    axis_joint: np.ndarray
    body_R: np.ndarray | None = None
    body_p: np.ndarray | None = None


def forward(tree: Tree, q: np.ndarray, markers: np.ndarray | None = None) -> Pose:
    """Marker positions (and the axes the Jacobian needs) for coordinates ``q`` (F, C).
    ``markers``: indices of the markers wanted (default all)."""
    F = len(q)
    nb = len(tree.bodies)
    R = np.empty((nb, F, 3, 3))
    p = np.empty((nb, F, 3))
    dirs, origins, rots, coords, slopes, jidx = [], [], [], [], [], []
    eye = np.broadcast_to(np.eye(3), (F, 3, 3))
    zero = np.zeros((F, 3))
    for ji, j in enumerate(tree.joints):
        R_gp, p_gp = (eye, zero) if j.parent < 0 else (R[j.parent], p[j.parent])
        R_gf = R_gp @ j.R_pf
        p_gf = p_gp + R_gp @ j.p_pf
        R_acc = R_gf
        t_f = np.zeros((F, 3))
        pending = []
        for ax in j.axes:
            val, slope = ax.fn.value_slope(q[:, ax.coord]) if ax.coord >= 0 else (np.full(F, ax.fn.a), None)
            if ax.rot:
                if ax.coord >= 0:
                    pending.append(len(dirs))
                    dirs.append(R_acc @ ax.axis)
                    origins.append(None)
                    rots.append(True)
                    coords.append(ax.coord)
                    slopes.append(slope)
                    jidx.append(ji)
                R_acc = R_acc @ _rodrigues(ax, val)
            else:
                t_f = t_f + val[:, None] * ax.axis
                if ax.coord >= 0:
                    dirs.append(R_gf @ ax.axis)
                    origins.append(zero)
                    rots.append(False)
                    coords.append(ax.coord)
                    slopes.append(slope)
                    jidx.append(ji)
        o_m = p_gf + (R_gf @ t_f[:, :, None])[:, :, 0]
        for k in pending:
            origins[k] = o_m
        R_gb = R_acc @ j.R_bm.T
        R[j.child] = R_gb
        p[j.child] = o_m - R_gb @ j.p_bm
    idx = np.arange(len(tree.marker_names)) if markers is None else np.asarray(markers)
    b = tree.marker_body[idx]
    xm = p[b].transpose(1, 0, 2) + np.einsum("mfij,mj->fmi", R[b], tree.marker_loc[idx])
    A = len(dirs)
    return Pose(xm, np.stack(dirs, 1) if A else np.zeros((F, 0, 3)),
                np.stack(origins, 1) if A else np.zeros((F, 0, 3)), np.array(rots, bool), np.array(coords, int),
                np.stack(slopes, 1) if A else np.zeros((F, 0)), np.array(jidx, int), R, p)


def descendants(tree: Tree) -> np.ndarray:
    """(J, B) True where body b is the child of joint j or below it."""
    nb = len(tree.bodies)
    below = np.zeros((len(tree.joints), nb), bool)
    for ji in range(len(tree.joints) - 1, -1, -1):
        j = tree.joints[ji]
        below[ji, j.child] = True
        for k, jj in enumerate(tree.joints):
            if jj.parent == j.child:
                below[ji] |= below[k]
    return below

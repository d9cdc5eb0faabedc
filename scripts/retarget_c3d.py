"""Retarget a Plug-in-Gait marker capture (C3D) onto Pose2Sim's full-body model by marker fitting.

Recipe that made ``engine/openkin/data/motions/tennis_serve_ktk.mot.gz`` (see NOTICE.md there):

    pip install c3d  # a pure-Python C3D reader, only for this recipe
    PYTHONPATH=engine python scripts/retarget_c3d.py kinematics_tennis_serve.c3d OUT_DIR
    # OUT_DIR/tennis_serve_ktk.mot is byte-identical to the vendored file (OpenSim 4.6, c3d 0.6.0)

1. The C3D's markers (metres, Z-up) are turned into OpenSim's Y-up ground frame and written as a TRC.
2. Pose2Sim's ``Model_Pose2Sim_simple.osim`` gets the Plug-in-Gait markers: the anatomical ones at
   the places of Pose2Sim's own ``Markers_LSTM.xml`` (OpenCap's anatomical markers on this model:
   ASIS/PSIS, lateral knee/ankle, heel, toe, acromion, C7, lateral elbow, radial/ulnar wrist), the
   head and trunk ones (FHD, BHD, CLAV, STRN, T10) at rough places that OpenSim's MarkerPlacer
   fits on the standing first second. Cluster markers (THI, TIB, UPA, FRM), FIN and BAK are not used.
3. OpenSim's ScaleTool scales the segments from marker distances (pelvis width, thigh, shank, foot,
   trunk, upper arm, forearm) and places the head/trunk markers on the static frames.
4. OpenSim's InverseKinematicsTool fits every frame, the shoulders free (clamped, the tracking
   gets stuck in a corner of the shoulder's range after the first serve: 7 cm marker RMS).
5. Every frame is fitted again with OpenSim's InverseKinematicsSolver, every rotation clamped to the
   model's range, from two starting poses: the previous frame's fit and the free fit of step 4 brought
   into the range (the equivalent shoulder Euler triple, then clipped); the better fit is kept. The
   result (.mot, degrees) is the motion's truth: a pose of the model within its ranges (the serve's
   humeral elevation of up to 140 deg and external rotation past 90 deg are beyond the model's
   120 deg and 90 deg, so those frames hold the nearest pose within range).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _asset(name: str) -> Path:
    from openkin.assets import asset_path

    return Path(asset_path(f"OpenSim_Setup/{name}"))


# Plug-in-Gait name -> Markers_LSTM.xml name (same anatomical landmark on the Pose2Sim model)
FROM_LSTM = {"RASI": "r.ASIS_study", "LASI": "L.ASIS_study", "RPSI": "r.PSIS_study", "LPSI": "L.PSIS_study",
             "RKNE": "r_knee_study", "LKNE": "L_knee_study", "RANK": "r_ankle_study", "LANK": "L_ankle_study",
             "RHEE": "r_calc_study", "LHEE": "L_calc_study", "RTOE": "r_toe_study", "LTOE": "L_toe_study",
             "RSHO": "r_shoulder_study", "LSHO": "L_shoulder_study", "C7": "C7_study",
             "RELB": "r_lelbow_study", "LELB": "L_lelbow_study",
             "RWRA": "r_lwrist_study", "LWRA": "L_lwrist_study", "RWRB": "r_mwrist_study", "LWRB": "L_mwrist_study"}
# head/trunk markers: body, first guess (body frame, x forward, y up, z right), placed by the MarkerPlacer
PLACED = {"RFHD": ("head", (0.09, 0.09, 0.045)), "LFHD": ("head", (0.09, 0.09, -0.045)),
          "RBHD": ("head", (-0.09, 0.09, 0.045)), "LBHD": ("head", (-0.09, 0.09, -0.045)),
          "CLAV": ("torso", (0.06, 0.37, 0.0)), "STRN": ("torso", (0.09, 0.2, 0.0)),
          "T10": ("torso", (-0.12, 0.2, 0.0))}
# IK weights: the acromion marker rides on the scapula, which the model lacks (the shoulder is a
# ball joint on the thorax), so it follows the raised arm upwards: a low weight keeps it from
# tilting the trunk.
WEIGHTS = {"RSHO": 0.2, "LSHO": 0.2, "RFHD": 0.5, "LFHD": 0.5, "RBHD": 0.5, "LBHD": 0.5,
           "CLAV": 0.5, "STRN": 0.5, "T10": 0.5}
# ScaleTool measurements: name -> (marker pairs, bodies scaled by their mean distance ratio)
MEASURES = {"pelvis": ([("RASI", "LASI"), ("RPSI", "LPSI")], ["pelvis", "sacrum"]),
            "thigh": ([("RASI", "RKNE"), ("LASI", "LKNE")], ["femur_r", "femur_l"]),
            "shank": ([("RKNE", "RANK"), ("LKNE", "LANK")], ["tibia_r", "tibia_l", "talus_r", "talus_l"]),
            "foot": ([("RHEE", "RTOE"), ("LHEE", "LTOE")], ["calcn_r", "calcn_l", "toes_r", "toes_l"]),
            "trunk": ([("RSHO", "RASI"), ("LSHO", "LASI"), ("C7", "RPSI")], ["torso", "head"]),
            "upperarm": ([("RSHO", "RELB"), ("LSHO", "LELB")], ["humerus_r", "humerus_l"]),
            "forearm": ([("RELB", "RWRA"), ("LELB", "LWRA")],
                        ["ulna_r", "ulna_l", "radius_r", "radius_l", "hand_r", "hand_l"])}
LOCKED = ("mtp_angle_r", "mtp_angle_l", "wrist_flex_r", "wrist_flex_l", "wrist_dev_r", "wrist_dev_l")
STATIC = (0.0, 1.0)  # seconds: the subject stands, arms hanging


def read_c3d(path: Path) -> tuple[float, list[str], np.ndarray]:
    """(rate Hz, marker names without the subject prefix, (F, M, 3) metres Z-up, NaN where missing)."""
    import c3d

    with open(path, "rb") as f:
        r = c3d.Reader(f)
        scale = {"mm": 1e-3, "m": 1.0}[r.get("POINT:UNITS").string_value.strip("\x00 ")]
        names = [n.strip().split(":")[-1] for n in r.point_labels]
        frames = [pts[:, :4].copy() for _, pts, _ in r.read_frames()]
        rate = float(r.point_rate)
    p = np.array(frames)
    xyz = np.where(p[..., 3:4] < 0, np.nan, p[..., :3] * scale)
    return rate, names, xyz


def to_opensim(names: list[str], xyz_zup: np.ndarray) -> np.ndarray:
    """(F, M, 3) markers in OpenSim's Y-up frame ((x, y, z) -> (x, z, -y)), turned about the vertical
    so that the pelvis faces +X on average (the model's pelvis_rotation range is +-90 deg)."""
    yup = np.stack([xyz_zup[..., 0], xyz_zup[..., 2], -xyz_zup[..., 1]], axis=-1)
    k = {n: i for i, n in enumerate(names)}
    fwd = (yup[:, k["RASI"]] + yup[:, k["LASI"]] - yup[:, k["RPSI"]] - yup[:, k["LPSI"]]) / 2
    heading = np.arctan2(np.nanmean(np.sin(np.arctan2(fwd[:, 2], fwd[:, 0]))),
                         np.nanmean(np.cos(np.arctan2(fwd[:, 2], fwd[:, 0]))))
    c, s = np.cos(heading), np.sin(heading)
    x, y, z = yup[..., 0], yup[..., 1], yup[..., 2]
    return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


def write_trc(path: Path, rate: float, names: list[str], yup: np.ndarray) -> None:
    """(F, M, 3) metres in OpenSim's frame -> TRC."""
    import opensim as osim

    table = osim.TimeSeriesTableVec3()
    table.setColumnLabels(names)
    for i, row in enumerate(yup):
        table.appendRow(i / rate, osim.RowVectorVec3([osim.Vec3(*map(float, v)) for v in row]))
    table.addTableMetaDataString("DataRate", str(rate))
    table.addTableMetaDataString("Units", "m")
    osim.TRCFileAdapter.write(table, str(path))


def marked_model(out: Path) -> Path:
    """The Pose2Sim model with the Plug-in-Gait markers (unscaled)."""
    import opensim as osim

    model = osim.Model(str(_asset("Model_Pose2Sim_simple.osim")))
    lstm = osim.MarkerSet(str(_asset("Markers_LSTM.xml")))
    for pig, src in FROM_LSTM.items():
        m = lstm.get(src)
        model.addMarker(osim.Marker(pig, model.getBodySet().get(m.getParentFrameName().split("/")[-1]),
                                    m.get_location()))
    for pig, (body, loc) in PLACED.items():
        model.addMarker(osim.Marker(pig, model.getBodySet().get(body), osim.Vec3(*loc)))
    ms = model.updMarkerSet()
    for i in range(ms.getSize()):
        ms.get(i).set_fixed(ms.get(i).getName() not in PLACED)
    cs = model.updCoordinateSet()
    for i in range(cs.getSize()):
        c = cs.get(i)
        c.set_clamped(c.getMotionType() != 2 and not c.getName().startswith("arm_"))
        if c.getName() in LOCKED:
            c.set_locked(True)
    model.finalizeConnections()
    path = out / "model_pig.osim"
    model.printToXML(str(path))
    return path


def _tasks(names: list[str]):
    import opensim as osim

    tasks = osim.IKTaskSet()
    for n in names:
        t = osim.IKMarkerTask()
        t.setName(n)
        t.setApply(True)
        t.setWeight(WEIGHTS.get(n, 1.0))
        tasks.cloneAndAppend(t)
    return tasks


def scale(model_path: Path, trc: Path, out: Path, mass: float) -> Path:
    import opensim as osim

    tool = osim.ScaleTool()
    tool.setName("pig")
    tool.setSubjectMass(mass)
    gm = tool.getGenericModelMaker()
    gm.setModelFileName(model_path.name)
    ms = tool.getModelScaler()
    ms.setApply(True)
    order = osim.ArrayStr()
    order.append("measurements")
    ms.setScalingOrder(order)
    ms.setMarkerFileName(trc.name)
    ms.setTimeRange(_range())
    ms.setPreserveMassDist(True)
    for mname, (pairs, bodies) in MEASURES.items():
        meas = osim.Measurement()
        meas.setName(mname)
        for a, b in pairs:
            meas.getMarkerPairSet().cloneAndAppend(osim.MarkerPair(a, b))
        for body in bodies:
            bs = osim.BodyScale()
            bs.setName(body)
            axes = osim.ArrayStr()
            for ax in ("X", "Y", "Z"):
                axes.append(ax)
            bs.setAxisNames(axes)
            meas.getBodyScaleSet().cloneAndAppend(bs)
        ms.addMeasurement(meas)
    ms.setOutputModelFileName("scaled_only.osim")
    mp = tool.getMarkerPlacer()
    mp.setApply(True)
    mp.setStaticPoseFileName(trc.name)
    mp.setTimeRange(_range())
    mp.getIKTaskSet().assign(_tasks(_trc_names(trc)))
    mp.setOutputModelFileName("scaled.osim")
    mp.setMaxMarkerMovement(-1)
    tool.printToXML(str(out / "scale_setup.xml"))
    if not osim.ScaleTool(str(out / "scale_setup.xml")).run():
        sys.exit("ScaleTool failed")
    return out / "scaled.osim"


def _range():
    import opensim as osim

    a = osim.ArrayDouble()
    a.append(STATIC[0])
    a.append(STATIC[1])
    return a


def _trc_names(trc: Path) -> list[str]:
    import opensim as osim

    return list(osim.TimeSeriesTableVec3(str(trc)).getColumnLabels())


def inverse_kinematics(model_path: Path, trc: Path, out: Path, mot: Path) -> None:
    import opensim as osim

    tool = osim.InverseKinematicsTool()
    tool.setName("retarget")
    tool.set_model_file(str(model_path))
    tool.setMarkerDataFileName(str(trc))
    tool.getIKTaskSet().assign(_tasks(_trc_names(trc)))
    table = osim.TimeSeriesTableVec3(str(trc))
    tool.setStartTime(table.getIndependentColumn()[0])
    tool.setEndTime(table.getIndependentColumn()[-1])
    tool.setOutputMotionFileName(str(mot))
    tool.set_report_errors(True)
    tool.setResultsDir(str(out))
    tool.set_accuracy(1e-5)
    tool.printToXML(str(out / "ik_setup.xml"))
    if not osim.InverseKinematicsTool(str(out / "ik_setup.xml")).run():
        sys.exit("InverseKinematicsTool failed")


def _read_mot(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    lines = path.read_text().split("endheader\n")[1].splitlines()
    rows = np.array([[float(x) for x in line.split()] for line in lines[1:]])
    return lines[0].split("\t")[1:], rows[:, 0], rows[:, 1:]


def _wrap(x):
    return (x + np.pi) % (2 * np.pi) - np.pi


def in_range_seed(names: list[str], q: np.ndarray, rot: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(F, C) free fit (radians/metres) -> within the model's ranges: a shoulder's (flex, add, rot) whose flexion
    is past +-90 deg becomes its equivalent (flex + 180, 180 - add, rot + 180) for the Z-X-Y axes, then clip."""
    q = q.copy()
    for side in "rl":
        i, j, k = (names.index(f"arm_{c}_{side}") for c in ("flex", "add", "rot"))
        f, a, r = _wrap(q[:, i]), _wrap(q[:, j]), _wrap(q[:, k])
        alt = np.abs(f) > np.pi / 2
        q[:, i] = np.where(alt, _wrap(f + np.pi), f)
        q[:, j] = np.where(alt, _wrap(np.pi - a), a)
        q[:, k] = np.where(alt, _wrap(r + np.pi), r)
    return np.where(rot, np.clip(q, lo, hi), q)


def refit_in_range(model_path: Path, trc: Path, free_mot: Path, mot: Path) -> None:
    """Step 5 of the module doc."""
    import opensim as osim

    model = osim.Model(str(model_path))
    cs = model.updCoordinateSet()
    for i in range(cs.getSize()):
        cs.get(i).set_clamped(cs.get(i).getMotionType() != 2)
    state = model.initSystem()
    table = osim.TimeSeriesTableVec3(str(trc))
    weights = osim.SetMarkerWeights()
    for n in table.getColumnLabels():
        weights.cloneAndAppend(osim.MarkerWeight(n, WEIGHTS.get(n, 1.0)))
    solver = osim.InverseKinematicsSolver(model, osim.MarkersReference(table, weights, osim.Units("m")),
                                          osim.SimTKArrayCoordinateReference(), float("inf"))
    solver.setAccuracy(1e-5)
    names, times, q = _read_mot(free_mot)
    coords = [cs.get(n) for n in names]
    rot = np.array([c.getMotionType() != 2 for c in coords])
    lo, hi = np.array([c.getRangeMin() for c in coords]), np.array([c.getRangeMax() for c in coords])
    seed = in_range_seed(names, np.where(rot, np.radians(q), q), rot, lo, hi)

    def solve(q0, t):
        state.setTime(t)
        for c, v in zip(coords, q0):
            c.setValue(state, float(v), False)
        solver.assemble(state)
        used = [solver.getMarkerNameForIndex(m) for m in range(solver.getNumMarkersInUse())]
        err = sum(WEIGHTS.get(n, 1.0) * solver.computeCurrentMarkerError(n) ** 2 for n in used)
        return np.array([c.getValue(state) for c in coords]), err

    out, prev = np.zeros_like(seed), seed[0]
    for f, t in enumerate(times):
        qa, ea = solve(prev, t)
        qb, eb = solve(seed[f], t)
        out[f] = prev = qb if eb < 0.98 * ea else qa
    deg = np.where(rot, np.degrees(out), out)
    with open(mot, "w") as fh:
        fh.write(f"Coordinates\nversion=1\nnRows={len(times)}\nnColumns={len(names) + 1}\ninDegrees=yes\nendheader\n")
        fh.write("time\t" + "\t".join(names) + "\n")
        for t, row in zip(times, deg):
            fh.write(f"{t:.5f}\t" + "\t".join(f"{v:.6f}" for v in row) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("c3d", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--mass", type=float, default=75.0)
    ap.add_argument("--name", default="tennis_serve_ktk")
    args = ap.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    rate, names, xyz = read_c3d(args.c3d)
    keep = [k for k, n in enumerate(names) if n in FROM_LSTM or n in PLACED]
    trc = args.out / f"{args.name}.trc"
    kept = [names[k] for k in keep]
    write_trc(trc, rate, kept, to_opensim(kept, xyz[:, keep]))
    model = marked_model(args.out)
    scaled = scale(model, trc, args.out, args.mass)
    free = args.out / f"{args.name}_free.mot"
    inverse_kinematics(scaled, trc, args.out, free)
    refit_in_range(scaled, trc, free, args.out / f"{args.name}.mot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Pose kernels and backends on REAL frames of the Pose2Sim demo videos.

The person boxes below were read by eye from frame 30 of each demo video
(full-resolution pixels, x0, y0, x1, y1, a little generous); they are the
truth the detections are checked against. In cam01 the subject faces the
camera (his left is on the image's right); in cam03 he is seen from behind.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from openkin.assets import asset_path
from openkin.errors import OpenKinError
from openkin.pose import blazepose as bp
from openkin.pose import choose_backend, rtm
from openkin.pose.keypoint_maps import blazepose_to
from openkin.pose.offline import OfflineBackend
from openkin.pose.tracking import PersonTracker, cost_matrix
from openkin.skeletons import BLAZEPOSE, COCO_17, HALPE_26

FRAME = 30
BOXES = {"cam01": (150, 420, 800, 1220), "cam02": (300, 420, 780, 1180),
         "cam03": (300, 440, 760, 1260), "cam04": (120, 420, 920, 1280)}


def demo_frames(cam: str, start: int, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(asset_path(f"Demo_SinglePerson/videos/{cam}.mp4")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = [cap.read()[1] for _ in range(count)]
    cap.release()
    assert all(f is not None for f in frames)
    return frames


@pytest.fixture(scope="module")
def backend():
    return OfflineBackend("HALPE_26", det_frequency=4, threads=2)


@pytest.fixture(scope="module")
def detections(backend):
    out = {}
    for cam in BOXES:
        backend.reset()
        out[cam] = backend(demo_frames(cam, FRAME, 1)[0])
    return out


# ------------------------------------------------------------ kernels
def test_anchor_layout_matches_the_detector_output():
    a = bp.ssd_anchors()
    assert a.shape == (2254, 2)
    assert np.all((a > 0) & (a < 1))
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[-1], [6.5 / 7, 6.5 / 7])


def test_roi_matrix_maps_crop_centre_and_axes():
    roi = np.array([500.0, 300.0, 256.0, np.pi / 2])  # person lying with head to image right
    m = bp.roi_matrix(roi)
    centre = m[:, :2] @ [128, 128] + m[:, 2]
    up = m[:, :2] @ [128, 0] + m[:, 2]  # top middle of the crop
    assert np.allclose(centre, [500, 300])
    assert np.allclose(up, [628, 300])  # crop 'up' points to image +x
    assert np.allclose(bp.roi_from_points(np.array([0.0, 0.0]), np.array([0.0, -10.0]), 1.0), [0, 0, 20, 0])


def test_keypoint_maps_derive_midpoints_and_pass_names_through():
    lm = np.zeros((1, 39, 5))
    lm[0, :, :2] = np.arange(39)[:, None] * [1.0, 2.0]
    lm[0, :, 3] = 0.9
    halpe = blazepose_to(lm, "HALPE_26")
    assert halpe.shape == (1, 26, 3)
    assert np.allclose(halpe[0, HALPE_26.index("LKnee"), :2], lm[0, BLAZEPOSE.index("LKnee"), :2])
    assert np.allclose(halpe[0, HALPE_26.index("Hip"), :2], (lm[0, 23, :2] + lm[0, 24, :2]) / 2)
    assert np.allclose(halpe[0, HALPE_26.index("Neck"), :2], (lm[0, 11, :2] + lm[0, 12, :2]) / 2)
    assert blazepose_to(lm, "COCO_17").shape == (1, 17, 3)
    assert blazepose_to(lm, "BLAZEPOSE").shape == (1, 33, 3)
    with pytest.raises(OpenKinError, match="COCO_133"):
        blazepose_to(lm, "COCO_133")


# ------------------------------------------------------------ offline backend on real frames
@pytest.mark.parametrize("cam", sorted(BOXES))
def test_person_found_inside_hand_read_box(detections, cam):
    people = detections[cam]
    assert people.shape[0] == 1, "single-person mode follows one person"
    kp = people[0]
    x0, y0, x1, y1 = BOXES[cam]
    confident = kp[kp[:, 2] >= 0.5]
    assert len(confident) >= 20, f"only {len(confident)} of 26 keypoints confident"
    inside = (confident[:, 0] >= x0) & (confident[:, 0] <= x1) & (confident[:, 1] >= y0) & (confident[:, 1] <= y1)
    assert inside.mean() >= 0.95, f"{(~inside).sum()} confident keypoints outside the person's box"
    height = np.ptp(confident[:, 1])
    assert height >= 0.6 * (y1 - y0), "keypoints cover too little of the person (partial detection)"
    assert np.mean(kp[:, 2]) > 0.7


def test_left_right_sides_are_plausible(detections):
    def dx(kp, a, b):
        return kp[HALPE_26.index(a), 0] - kp[HALPE_26.index(b), 0]

    facing, behind = detections["cam01"][0], detections["cam03"][0]
    assert dx(facing, "LShoulder", "RShoulder") > 40 and dx(facing, "LHip", "RHip") > 20
    assert dx(behind, "LShoulder", "RShoulder") < -40 and dx(behind, "LHip", "RHip") < -20
    for kp in (facing, behind):  # feet below knees below hips (upright person)
        for side in "LR":
            y = {n: kp[HALPE_26.index(side + n), 1] for n in ("Hip", "Knee", "Ankle", "Heel", "BigToe")}
            assert y["Hip"] < y["Knee"] < y["Ankle"] and y["Ankle"] < y["BigToe"] + 40


def test_tracking_follows_the_person_between_detections():
    b = OfflineBackend("HALPE_26", det_frequency=6, threads=2)
    frames = demo_frames("cam02", 40, 8)
    tracker = PersonTracker(max_distance_px=250)
    hips, ids = [], []
    for f in frames:
        people = b(f)
        assert people.shape[0] == 1
        ids.append(int(tracker.update(people)[0]))
        hips.append(people[0, HALPE_26.index("Hip"), :2])
    assert ids == [0] * 8
    assert b.tracker.detections_run == 1, "single person: detector only until someone is tracked"
    steps = np.linalg.norm(np.diff(hips, axis=0), axis=1)
    assert steps.max() < 40, f"hip jumps {steps.max():.0f} px between frames at 60 fps"
    assert b.infer_seconds > 0


def test_nobody_in_a_black_frame():
    b = OfflineBackend("COCO_17", threads=1)
    assert b(np.zeros((480, 640, 3), np.uint8)).shape == (0, 17, 3)


def test_person_tracker_assigns_and_recycles_ids():
    a = np.zeros((1, 17, 3))
    a[..., 2] = 1.0
    a[0, :, 0] = np.arange(17) * 5
    b = a.copy()
    b[..., 0] += 1000
    t = PersonTracker(max_distance_px=100, max_unseen_frames=1)
    assert list(t.update(np.concatenate([a, b]))) == [0, 1]
    assert list(t.update(np.concatenate([b + [5, 0, 0], a]))) == [1, 0]
    t.update(np.zeros((0, 17, 3)))
    t.update(np.zeros((0, 17, 3)))
    assert list(t.update(a)) == [2], "unseen longer than max_unseen_frames → new ID"
    assert np.isinf(cost_matrix(a, np.zeros((1, 17, 3)))[0, 0])


# ------------------------------------------------------------ rtmlib path with a local model file
def const_model(path, input_shape: list[int], outputs: dict[str, np.ndarray]) -> None:
    """Write a tiny ONNX whose outputs are fixed arrays (plus 0 × mean(input), so the input is used)."""
    onnx = pytest.importorskip("onnx", reason="building the test ONNX models needs the onnx package")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["z"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    for name, value in outputs.items():
        nodes.append(helper.make_node("Add", [f"c_{name}", "z"], [name]))
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"c_{name}"))
    graph = helper.make_graph(nodes, "const", [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape))
                               for n, v in outputs.items()], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def simcc_model(path, n_kpt: int = 26, input_wh=(192, 256)) -> np.ndarray:
    """A tiny RTMPose-interface ONNX (input (1, 3, H, W) → simcc_x (1, K, 2W), simcc_y (1, K, 2H))
    whose SimCC peaks sit at fixed crop pixels; returns those peaks (K, 2)."""
    w, h = input_wh
    rng = np.random.default_rng(0)
    peaks = np.c_[rng.integers(10, w - 10, n_kpt), rng.integers(10, h - 10, n_kpt)]
    sx, sy = np.zeros((1, n_kpt, 2 * w)), np.zeros((1, n_kpt, 2 * h))
    sx[0, np.arange(n_kpt), 2 * peaks[:, 0]] = 0.9
    sy[0, np.arange(n_kpt), 2 * peaks[:, 1]] = 0.8
    const_model(path, [1, 3, h, w], {"simcc_x": sx, "simcc_y": sy})
    return peaks


def test_rtmlib_path_with_a_local_model_file(tmp_path, caplog):
    model = tmp_path / "rtmpose-test.onnx"
    peaks = simcc_model(model)
    mode = f"""{{'pose_class': 'RTMPose', 'pose_model': '{model}', 'pose_input_size': [192, 256]}}"""
    with caplog.at_level(logging.INFO):
        estimator, models = choose_backend("auto", "Body_with_feet", mode)
    assert estimator == "rtmlib" and models["pose"] == str(model) and models["keypoints"] == "HALPE_26"
    b = rtm.RtmlibBackend(models, backend="onnxruntime", device="cpu")
    frame = demo_frames("cam01", FRAME, 1)[0]
    people = b(frame)
    assert people.shape == (1, 26, 3)
    # whole image as the box: centre (W/2, H/2), 1.25 × size, widened to the 192:256 aspect
    h, w = frame.shape[:2]
    scale = np.array([w, h], float) * 1.25
    scale[0] = max(scale[0], scale[1] * 192 / 256)
    scale[1] = max(scale[1], scale[0] * 256 / 192)
    expected = peaks / [192, 256] * scale + [w / 2, h / 2] - scale / 2
    assert np.allclose(people[0, :, :2], expected, atol=1.0)
    assert np.allclose(people[0, :, 2], 0.85, atol=1e-6)  # rtmlib 0.0.16 score: mean of the two peaks


def test_rtmlib_top_down_path_detects_every_n_frames(tmp_path):
    """YOLOX-interface detector (NMS inside: (1, N, 5) boxes in its 640² input) + RTMPose, both local."""
    simcc_model(tmp_path / "pose.onnx")
    box = np.array([[[60.0, 150.0, 260.0, 420.0, 0.95]]])  # detector-input pixels
    const_model(tmp_path / "det.onnx", [1, 3, 640, 640], {"dets": box})
    mode = (f"{{'det_class': 'YOLOX', 'det_model': '{tmp_path / 'det.onnx'}', 'det_input_size': [640, 640], "
            f"'pose_class': 'RTMPose', 'pose_model': '{tmp_path / 'pose.onnx'}', 'pose_input_size': [192, 256]}}")
    estimator, models = choose_backend("rtmlib", "Body_with_feet", mode)
    b = rtm.RtmlibBackend(models, det_frequency=3)
    calls = []
    real = b.det
    b.det = lambda img: calls.append(1) or real(img)
    frames = demo_frames("cam01", FRAME, 4)
    people = [b(f) for f in frames]
    assert len(calls) == 2, "detector on frames 0 and 3 only"
    ratio = 640 / 1920
    x0, y0, x1, y1 = box[0, 0, :4] / ratio
    kp = people[0][0]
    assert people[0].shape == (1, 26, 3)
    # keypoints lie in the detector's box widened by rtmlib's 1.25 padding
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.625, (y1 - y0) * 0.625
    assert np.all(np.abs(kp[:, 0] - cx) <= max(hw, hh * 0.75) + 1)
    assert np.all(np.abs(kp[:, 1] - cy) <= max(hh, hw / 0.75) + 1)


def test_rtmlib_one_stage_rtmo_path(tmp_path):
    """RTMO interface: (1, N, 5) boxes + (1, N, 17, 3) keypoints in its 640² input, NMS by rtmlib."""
    kpts = np.zeros((1, 2, 17, 3))
    kpts[0, :, :, :2] = np.array([[100.0, 200.0], [300.0, 400.0]])[:, None] + np.arange(17)[:, None] * [2.0, 5.0]
    kpts[0, :, :, 2] = [[0.9], [0.8]]
    dets = np.array([[[50, 150, 200, 400, 0.95], [250, 350, 420, 600, 0.9]]])
    const_model(tmp_path / "rtmo.onnx", [1, 3, 640, 640], {"dets": dets, "keypoints": kpts})
    mode = f"{{'pose_class': 'RTMO', 'pose_model': '{tmp_path / 'rtmo.onnx'}', 'pose_input_size': [640, 640]}}"
    _, models = choose_backend("rtmlib", "Body", mode)
    b = rtm.RtmlibBackend(models)
    people = b(demo_frames("cam01", FRAME, 1)[0])
    ratio = 640 / 1920  # the frame is letterboxed into 640²
    assert people.shape == (2, 17, 3) and b.skeleton_name == "COCO_17"
    assert np.allclose(people[..., :2], kpts[0, :, :, :2] / ratio, atol=1e-3)
    assert np.allclose(people[..., 2], kpts[0, :, :, 2])


def test_auto_falls_back_to_offline_when_rtmlib_weights_unreachable(caplog):
    mode = """{'pose_class': 'RTMPose', 'pose_model': 'http://127.0.0.1:9/none.onnx', 'pose_input_size': [192, 256]}"""
    with caplog.at_level(logging.INFO):
        estimator, models = choose_backend("auto", "Body_with_feet", mode)
    assert estimator == "offline" and models is None
    assert "offline" in caplog.text
    with pytest.raises(OpenKinError, match="not found"):
        choose_backend("rtmlib", "Body_with_feet", "{'pose_model': '/nonexistent/model.onnx'}")
    with pytest.raises(OpenKinError, match="mode"):
        rtm.resolve_models("Body_with_feet", "{not a dict")


def test_pose2sim_modes_resolve_to_rtmlib_tables():
    m = rtm.resolve_models("Body_with_feet", "lightweight")
    assert m["det_class"] == "YOLOX" and "halpe26" in m["pose"] and m["pose_input_size"] == (192, 256)
    assert rtm.resolve_models("Whole_body", "performance")["keypoints"] == "COCO_133"
    assert rtm.resolve_models("Body", "balanced")["keypoints"] == "COCO_17"
    rtmo = rtm.resolve_models("Body_with_feet", "{'pose_class': 'RTMO', 'pose_model': 'x.onnx', 'pose_input_size': [640, 640]}")
    assert rtmo["det_class"] is None and rtmo["keypoints"] == "COCO_17"
    assert len(COCO_17.names) == 17


@pytest.mark.parametrize("match_by", ["keypoints", "centroid", "bbox"])
def test_tracker_match_modes_follow_two_people_crossing_order(match_by):
    a = np.zeros((2, 5, 3))
    a[..., 2] = 1.0
    a[0, :, :2] = np.arange(5)[:, None] * 10.0
    a[1] = a[0] + [200, 0, 0]
    t = PersonTracker(match_by=match_by, max_distance_px=50, min_iou=0.2)
    assert list(t.update(a)) == [0, 1]
    assert list(t.update(a[::-1] + [3, 0, 0])) == [1, 0]
    far = a[:1] + [600, 0, 0]
    assert list(t.update(far)) == [2], "too far / no overlap: someone new"


def test_heatmap_refinement_moves_to_the_peak_and_keeps_low_confidence_points():
    rows, cols = np.mgrid[0:64, 0:64]
    peak = np.array([20.3, 40.6])  # (col, row) in heatmap cells
    hm = np.full((64, 64, 2), -10.0, np.float32)
    hm[..., 0] = 4.0 - ((cols - peak[0]) ** 2 + (rows - peak[1]) ** 2)  # logits, sharp peak
    xy = np.array([[21.5 * 4, 39.0 * 4], [100.0, 100.0]])
    out = bp.refine_with_heatmap(xy, hm)
    assert np.allclose(out[0], peak * 4, atol=0.6), out[0]
    assert np.allclose(out[1], xy[1]), "no confident cell nearby: unchanged"


def test_multi_person_finds_both_people_of_the_multi_person_demo():
    """Demo_MultiPerson cam01, frame 50: the man (upper left) and the woman in front of him
    (lower right); boxes read by eye, x0, y0, x1, y1."""
    cap = cv2.VideoCapture(str(asset_path("Demo_MultiPerson/videos/cam01.mp4")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 44)
    frames = [cap.read()[1] for _ in range(7)]
    b = OfflineBackend("HALPE_26", multi_person=True, det_frequency=6, threads=2)
    people = [b(f) for f in frames][-1]  # frame 50
    assert b.tracker.detections_run == 2, "multi-person: detector every det_frequency frames"
    assert people.shape[0] == 2
    boxes = {"man": (90, 300, 810, 1250), "woman": (430, 800, 980, 1760)}
    hip = people[:, HALPE_26.index("Hip"), :2]
    owners = set()
    for x, y in hip:
        inside = [name for name, (x0, y0, x1, y1) in boxes.items() if x0 <= x <= x1 and y0 <= y <= y1]
        assert len(inside) == 1, f"hip at {x:.0f}, {y:.0f} in {inside}"
        owners.add(inside[0])
    assert owners == {"man", "woman"}


def test_movenet_roi_is_upright_on_the_hips_and_covers_the_body():
    from openkin.pose import movenet

    kp = np.zeros((17, 3))
    kp[:, 2] = 0.9
    kp[:, :2] = [500, 600]
    kp[[5, 6], :2] = [[480, 400], [520, 400]]  # shoulders above the hips
    kp[[11, 12], :2] = [[480, 600], [520, 600]]
    kp[[15, 16], :2] = [[480, 900], [520, 900]]  # ankles 300 px below
    roi = movenet.roi_from_keypoints(kp)
    assert np.allclose(roi[:2], [500, 600]) and abs(roi[3]) < 1e-9
    assert np.isclose(roi[2], 2 * 1.15 * np.hypot(20, 300) * 1.25)
    kp[:, 2] = 0.0
    assert movenet.roi_from_keypoints(kp) is None
    out = np.zeros((6, 56))
    out[0, :51] = np.tile([0.5, 0.25, 0.8], 17)  # y, x, score
    out[0, 55], out[1, 55] = 0.9, 0.1
    people = movenet.decode_people(out, (256, 160), 256 / 1920)
    assert people.shape == (1, 17, 3) and np.allclose(people[0, 0], [0.25 * 160 * 7.5, 0.5 * 256 * 7.5, 0.8])

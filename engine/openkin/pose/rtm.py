"""rtmlib backend: RTMPose / RTMO / RTMW with Pose2Sim's modes and model dictionaries.

``pose_model`` picks the keypoint set (Body_with_feet/HALPE_26 default,
Whole_body/COCO_133, Body/COCO_17); ``mode`` is 'lightweight', 'balanced',
'performance' (rtmlib's own model tables) or a dictionary
``{'det_class', 'det_model', 'det_input_size', 'pose_class', 'pose_model',
'pose_input_size'}`` whose models are local paths or URLs. URLs are downloaded
once by rtmlib (with a progress bar) into its cache (``~/.cache/rtmlib``);
:func:`fetch_models` does that in the parent process before workers start.

Top-down models run the detector every ``det_frequency`` frames and in between
use boxes around the previous frame's keypoints (as rtmlib's PoseTracker).
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import os
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ..errors import OpenKinError

log = logging.getLogger(__name__)

# pose_model (upper case) → (rtmlib solution class, keypoint set)
SOLUTIONS = {
    "BODY_WITH_FEET": ("BodyWithFeet", "HALPE_26"), "HALPE_26": ("BodyWithFeet", "HALPE_26"),
    "LOWER_BODY": ("BodyWithFeet", "HALPE_26"),
    "WHOLE_BODY": ("Wholebody", "COCO_133"), "WHOLE_BODY_WRIST": ("Wholebody", "COCO_133"),
    "COCO_133": ("Wholebody", "COCO_133"),
    "BODY": ("Body", "COCO_17"), "COCO_17": ("Body", "COCO_17"),
}
MODES = ("lightweight", "balanced", "performance")


def parse_mode_dict(mode: str) -> dict:
    """A Pose2Sim ``mode = \"\"\"{...}\"\"\"`` string → dict, with a clear error when malformed."""
    text = mode.strip().strip("'\"").strip()
    for parse in (ast.literal_eval, json.loads):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, json.JSONDecodeError):
            continue
        if isinstance(value, dict):
            return value
    raise OpenKinError(f"[pose] mode is neither a known mode nor a model dictionary: {mode[:80]!r}",
                       fix="use 'lightweight', 'balanced', 'performance', or \"\"\"{'pose_class': 'RTMPose', "
                           "'pose_model': 'path/or/url.onnx', 'pose_input_size': [192, 256], ...}\"\"\"")


def resolve_models(pose_model: str, mode: str) -> dict:
    """→ {'det_class', 'det', 'det_input_size', 'pose_class', 'pose', 'pose_input_size', 'keypoints'}.

    ``det_class`` is None for one-stage models (RTMO).
    """
    key = pose_model.upper()
    if key not in SOLUTIONS and mode in MODES:
        raise OpenKinError(f"pose_model {pose_model!r} is not one rtmlib provides here",
                           fix=f"choose among: {', '.join(sorted(SOLUTIONS))}, or give a model dictionary "
                               "in [pose] mode for a custom skeleton")
    solution, keypoints = SOLUTIONS.get(key, (None, pose_model))  # custom skeleton: its own name
    if mode in MODES:
        import rtmlib

        table = getattr(rtmlib, solution).MODE[mode]
        return {"det_class": "YOLOX", "det": table["det"], "det_input_size": tuple(table["det_input_size"]),
                "pose_class": "RTMPose",  # rtmlib runs RTMW whole-body models with its RTMPose class
                "pose": table["pose"], "pose_input_size": tuple(table["pose_input_size"]), "keypoints": keypoints}
    d = parse_mode_dict(mode)
    if "pose_model" not in d:
        raise OpenKinError("[pose] mode dictionary has no 'pose_model'",
                           fix="give at least 'pose_class', 'pose_model' and 'pose_input_size'")
    pose_class = d.get("pose_class", "RTMPose")
    if pose_class == "RTMO" and keypoints != "COCO_17":
        log.warning("RTMO gives COCO_17 keypoints: using them instead of %s", keypoints)
        keypoints = "COCO_17"
    return {"det_class": d.get("det_class") if pose_class != "RTMO" else None, "det": d.get("det_model"),
            "det_input_size": tuple(d.get("det_input_size", (640, 640))), "pose_class": pose_class,
            "pose": d["pose_model"], "pose_input_size": tuple(d.get("pose_input_size", (192, 256))),
            "keypoints": keypoints}


def _is_url(model: str) -> bool:
    return urlparse(str(model)).scheme in ("http", "https")


def cached_path(model: str) -> Path | None:
    """Local file for a model path or URL if it is on disk already (rtmlib's cache), else None."""
    if not _is_url(model):
        return Path(model) if Path(model).is_file() else None
    from rtmlib.tools.file import _get_rtmhub_dir

    name = os.path.basename(urlparse(model).path)
    onnx = Path(_get_rtmhub_dir(), "checkpoints", name.split(".")[0] + ".onnx")
    return onnx if onnx.is_file() else None


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a HEAD request to ``url`` (or rtmlib's mirror of it) answers within ``timeout`` s."""
    from rtmlib.tools.file import get_mirror_url

    for candidate in (url, get_mirror_url(url)):
        if not candidate:
            continue
        try:
            req = urllib.request.Request(candidate, method="HEAD", headers={"User-Agent": "openkin"})
            with urllib.request.urlopen(req, timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def model_files(models: dict) -> list[str]:
    return [m for m in (models.get("det") if models.get("det_class") else None, models["pose"]) if m]


def available(models: dict, check_network: bool = True) -> bool:
    """Whether every model is cached/local, or (``check_network``) downloadable now."""
    for m in model_files(models):
        if cached_path(m) is None and not (check_network and _is_url(m) and reachable(m)):
            return False
    return True


def fetch_models(models: dict) -> dict:
    """Download URL models once (rtmlib's cache, progress bar) → the same dict with local paths."""
    from rtmlib.tools.file import download_checkpoint

    out = dict(models)
    for key in ("det", "pose"):
        m = models.get(key)
        if not m or (key == "det" and not models.get("det_class")):
            continue
        local = cached_path(m)
        if local is None and not _is_url(m):
            raise OpenKinError(f"{key} model file not found", path=m, fix="give an existing .onnx path or a URL")
        if local is None:
            log.info("downloading %s (once, into rtmlib's cache)", m)
            try:
                local = Path(download_checkpoint(m))
            except OSError as e:
                raise OpenKinError(f"cannot download the {key} model: {e}", path=m,
                                   fix="check the network, or set [pose] pose_backend = 'offline'") from None
        out[key] = str(local)
    return out


def runtime(backend: str = "auto", device: str = "auto") -> tuple[str, str]:
    """Pose2Sim's [pose] backend/device → an rtmlib (backend, device) that works here.

    auto: CUDA through onnxruntime when its provider is present, else OpenVINO on
    CPU when installed, else onnxruntime on CPU.
    """
    import importlib.util

    import onnxruntime as ort

    providers = ort.get_available_providers()
    backend, device = backend.lower(), device.lower()
    if backend not in ("auto", "onnxruntime", "openvino", "opencv"):
        raise OpenKinError(f"unknown [pose] backend {backend!r}", fix="use 'auto', 'onnxruntime', 'openvino' or 'opencv'")
    if backend == "openvino" and importlib.util.find_spec("openvino") is None:
        raise OpenKinError("[pose] backend = 'openvino' but OpenVINO is not installed",
                           fix="pip install openvino, or set backend = 'auto'")
    if device == "auto":
        device = "cuda" if "CUDAExecutionProvider" in providers and backend in ("auto", "onnxruntime") else "cpu"
    if backend == "auto":
        if device == "cpu" and importlib.util.find_spec("openvino") is not None:
            backend = "openvino"
        else:
            backend = "onnxruntime"
    if backend == "onnxruntime" and device == "cuda" and "CUDAExecutionProvider" not in providers:
        log.warning("CUDA requested but onnxruntime has no CUDA provider here: using the CPU")
        device = "cpu"
    return backend, device


def _limit_threads(tool, threads: int) -> None:
    """Rebuild an rtmlib onnxruntime session with ``threads`` intra-op threads (one worker per
    video on few cores runs faster than every worker grabbing all cores)."""
    if getattr(tool, "backend", None) != "onnxruntime":
        return
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    tool.session = ort.InferenceSession(tool.onnx_model, so, providers=tool.session.get_providers())


def _build(class_name: str, model: str, size: tuple, backend: str, device: str, threads: int):
    import rtmlib

    cls = getattr(rtmlib, class_name, None)
    if cls is None:
        raise OpenKinError(f"rtmlib has no model class {class_name!r}",
                           fix="use det_class 'YOLOX'/'RTMDet' and pose_class 'RTMPose'/'RTMO'")
    with contextlib.redirect_stdout(io.StringIO()) as out:  # rtmlib prints on load
        tool = cls(model, model_input_size=tuple(size), backend=backend, device=device)
    log.debug("rtmlib: %s", out.getvalue().strip())
    _limit_threads(tool, threads)
    return tool


def _boxes_from_keypoints(people: np.ndarray, shape: tuple, expansion: float = 1.25) -> list[np.ndarray]:
    """Boxes x0, y0, x1, y1 around each person's confident keypoints (P, K, 3), clipped to the image."""
    boxes = []
    for kp in people:
        ok = kp[:, 2] >= 0.3
        if ok.sum() < 3:
            continue
        lo, hi = kp[ok, :2].min(0), kp[ok, :2].max(0)
        c, half = (lo + hi) / 2, (hi - lo) / 2 * expansion
        boxes.append(np.clip(np.r_[c - half, c + half], 0, [shape[1], shape[0], shape[1], shape[0]]))
    return boxes


class RtmlibBackend:
    """Frame (H, W, 3) BGR → keypoints (P, K, 3) [x, y, conf] with rtmlib models (local files)."""

    def __init__(self, models: dict, *, det_frequency: int = 4, backend: str = "onnxruntime",
                 device: str = "cpu", threads: int = 1, multi_person: bool = True):
        self.name = f"rtmlib {models['pose_class']} ({Path(models['pose']).name}, {backend}/{device})"
        self.skeleton_name = models["keypoints"]
        self.pose = _build(models["pose_class"], models["pose"], models["pose_input_size"], backend, device, threads)
        self.det = None
        if models.get("det_class"):
            self.det = _build(models["det_class"], models["det"], models["det_input_size"], backend, device, threads)
        self.det_frequency = max(1, int(det_frequency))
        self.multi_person = multi_person
        self.frame_index = 0
        self.previous = np.zeros((0, 0, 3))
        self.infer_seconds = 0.0

    def reset(self) -> None:
        self.frame_index, self.previous = 0, np.zeros((0, 0, 3))

    def _boxes(self, frame: np.ndarray) -> list:
        tracked = _boxes_from_keypoints(self.previous, frame.shape)
        if self.det is None or (tracked and self.frame_index % self.det_frequency):
            return tracked
        t = time.perf_counter()
        found = self.det(frame)
        self.infer_seconds += time.perf_counter() - t
        found = found[0] if isinstance(found, tuple) else found
        return [np.asarray(b[:4], float) for b in found]

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        if self.det is None:
            kpts, scores = self.pose(frame_bgr)
        else:
            boxes = self._boxes(frame_bgr)
            t = time.perf_counter()
            kpts, scores = self.pose(frame_bgr, bboxes=boxes) if boxes else (np.zeros((0, 0, 2)), np.zeros((0, 0)))
        self.infer_seconds += time.perf_counter() - t
        people = np.concatenate([np.asarray(kpts, float), np.asarray(scores, float)[..., None]], axis=-1) \
            if len(kpts) else np.zeros((0, 0, 3))
        self.previous = people
        self.frame_index += 1
        return people

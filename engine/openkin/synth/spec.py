"""Scene settings and named presets (light module: no numpy/OpenCV/OpenSim imports,
so ``openkin --help`` stays fast)."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from ..errors import OpenKinError


# Fisheye coefficients k1..k4 (cv2.fisheye) of the 'fisheye' scenes: a mild lens on the demo rig
# (its image corners sit ~110 px from where a pinhole camera with the same K puts them).
FISHEYE_K = (0.05, -0.02, 0.01, -0.002)


@dataclass(frozen=True)
class SceneSpec:
    """Everything that defines a scene; presets are sets of overrides of these defaults.

    Pixel values are for the demo's 1088×1920 images. Rates are fractions of
    (frame, person, keypoint) detections unless said otherwise.
    """

    n_frames: int = 600
    rate: float = 60.0
    seed: int = 0
    keypoints: str = "HALPE_26"       # HALPE_26, COCO_17 or BLAZEPOSE
    cameras: int = 4                  # 4 = the demo rig; more are added on a ring
    people: int = 1                   # >1: extra people walking around and across
    noise_px: float = 0.0             # white pixel noise std (per axis)
    corr_noise_px: float = 0.0        # time-correlated pixel noise std (per axis)
    corr_frames: float = 4.0          # correlation time of that noise (Gaussian std, frames)
    conf_mean: float = 0.9
    conf_spread: float = 0.05
    dropout_rate: float = 0.0         # keypoints missing (runs of dropout_len frames)
    dropout_len: float = 4.0
    occlusion_rate: float = 0.0       # keypoints returned at a wrong place, medium confidence
    occlusion_len: float = 10.0
    occlusion_conf: tuple[float, float] = (0.3, 0.6)
    occlusion_jitter_px: float = 10.0
    outlier_rate: float = 0.0         # gross outliers, high confidence
    outlier_px: tuple[float, float] = (50.0, 300.0)
    outlier_conf: tuple[float, float] = (0.7, 0.95)
    swap_fraction: float = 0.0        # fraction of frames with left/right swapped ...
    swap_cameras: int = 0             # ... in this many cameras at once (same frames)
    swap_len: tuple[int, int] = (2, 8)
    lost_cameras: int = 0             # cameras that lose the first person ...
    lost_seconds: float = 1.0         # ... for this long
    max_offset_frames: float = 0.0    # per-camera time offsets in [-max, max] (first camera 0)
    fractional_offsets: bool = True
    calib_translation_cm: float = 0.0  # error of the WRITTEN calibration (truth uses the exact one)
    calib_rotation_deg: float = 0.0
    collinear_pair: bool = False       # second camera 1 m behind the first on its line of sight
    fisheye: bool = False              # cameras use OpenCV's fisheye model with FISHEYE_K (written so)
    motion: str = ""                   # person 1's motion: '' generated, else a real one: walk, run, crouch
    description: str = ""


PRESETS: dict[str, dict] = {
    "clean": dict(description="no corruption: exact 2D projections, synchronised, exact calibration"),
    "mild": dict(description="0.5-3 px white noise, a few dropouts (what Pose2Sim already handles well)",
                 noise_px=1.5, dropout_rate=0.01),
    "realistic": dict(
        description="imitates real detectors: 8 px time-correlated noise, 3.5% confident outliers at "
                    "50-300 px, left/right swaps in 7% of frames in 2 cameras at once, occlusions with "
                    "wrong points, one camera losing the person for 1 s, desync up to 20 frames, "
                    "calibration perturbed by 1 cm / 0.5 deg",
        noise_px=1.0, corr_noise_px=8.0, corr_frames=4.0, conf_spread=0.08, dropout_rate=0.01,
        occlusion_rate=0.03, outlier_rate=0.035, swap_fraction=0.07, swap_cameras=2, lost_cameras=1,
        lost_seconds=1.0, max_offset_frames=20.0, calib_translation_cm=1.0, calib_rotation_deg=0.5),
    "multi": dict(description="two people crossing, mild noise", people=2, noise_px=1.5, dropout_rate=0.01),
    "desync": dict(description="mild noise, per-camera offsets up to 20 frames (fractional)",
                   noise_px=1.5, dropout_rate=0.01, max_offset_frames=20.0),
}
PRESETS["fisheye"] = dict(description="no corruption, cameras with a mild fisheye lens (OpenCV fisheye model, "
                                       "k1..k4 = FISHEYE_K): exact 2D projections through it", fisheye=True)
PRESETS["realistic_multi"] = {**PRESETS["realistic"], "people": 2,
                              "description": "the realistic corruptions with two people crossing"}


def make_spec(preset: str = "clean", **overrides) -> SceneSpec:
    """The spec of a named preset with overrides; unknown names are clear errors."""
    if preset not in PRESETS:
        close = difflib.get_close_matches(preset, PRESETS, n=1)
        raise OpenKinError(f"unknown scene preset {preset!r}",
                           fix=f"choose one of: {', '.join(PRESETS)}"
                           + (f" (did you mean {close[0]!r}?)" if close else ""))
    valid = {f.name for f in dataclasses.fields(SceneSpec)}
    for key in overrides:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            raise OpenKinError(f"unknown scene setting {key!r}",
                               fix=f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(sorted(valid))}")
    spec = dataclasses.replace(SceneSpec(), **{**PRESETS[preset], **overrides})
    _check_spec(spec)
    return spec


def _check_spec(spec: SceneSpec) -> None:
    if spec.n_frames < 2 or spec.rate <= 0 or spec.cameras < 1 or spec.people < 1:
        raise OpenKinError(f"scene needs >= 2 frames, a positive rate, >= 1 camera and person "
                           f"(got {spec.n_frames} frames, {spec.rate} fps, {spec.cameras} cameras, "
                           f"{spec.people} people)", fix="fix --frames / --cameras / the overrides")
    if spec.swap_cameras > spec.cameras or spec.lost_cameras > spec.cameras:
        raise OpenKinError(f"swap_cameras/lost_cameras ({spec.swap_cameras}/{spec.lost_cameras}) exceed "
                           f"the {spec.cameras} cameras", fix="lower them or add cameras")

"""Configuration: Pose2Sim's Config.toml sections and keys, typed, with one source of defaults.

The defaults live here, in frozen dataclasses whose attribute names are exactly
Pose2Sim's TOML section and key names (``config.filtering.butterworth.cut_off_frequency``,
``config.personAssociation.single_person.tracked_keypoint``). The commented
``openkin/data/Config.toml`` documents them; a test checks that it parses to
exactly these defaults.

Layers, later wins (nested tables merge key by key, as Pose2Sim does):
defaults ← session ``Config.toml`` (the trial folder's parent) ← trial
``Config.toml`` ← overrides (command line ``--set``, Blender panel).

Every layer is checked on its own (:mod:`openkin.config_check`), so an error
names the file it came from: an unknown key (with the closest valid key), a
value of the wrong type or out of its range (a negative mass, a likelihood
above 1, a frame range ending before it starts...), or malformed TOML (with
its line). Checks across keys (cut-off frequencies below the Nyquist frequency
of a given frame rate, converters that exist) run on the merged configuration.

Adding a key: add a field with its default to the section's dataclass (its
annotation says the valid types and, with ``Annotated[..., Range(...)]``, the
valid range; see the aliases below) and the same key, with a comment, to
``openkin/data/Config.toml``. Nothing else.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import logging
import platform
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from .config_check import (Check, Odd, Range, all_keys, check_config, check_section, check_skeleton, convert,
                           is_section, key_origins, toml_fields)
from .errors import OpenKinError
from .project import project_levels

_all_keys = all_keys  # older name, kept for importers

log = logging.getLogger(__name__)

CONFIG_NAME = "Config.toml"
DEFAULT_CONFIG_PATH = Path(__file__).parent / "data" / CONFIG_NAME

FilterType = Literal["butterworth", "acc_minimizing", "kalman", "one_euro", "gcv_spline",
                     "gaussian", "LOESS", "median", "butterworth_on_speed"]
Workers = Literal["auto"] | Annotated[int, Range(ge=0)] | bool  # 'auto', a number of workers, or false (sequential)
SaveVideo = Literal["to_video", "to_images", "none"]


# Valid ranges, checked at load (see openkin.config_check).
def _centimetres(v: float) -> str | None:
    if 40 <= v <= 260:
        return f"{v:g} looks like centimetres: heights are in metres, write {v / 100:g}"
    return "heights are in metres, e.g. 1.72"


def _mass_hint(v: float) -> str | None:
    return f"{v:g} looks like grams: masses are in kg, write {v / 1000:g}" if v > 1000 else "masses are in kg, e.g. 70"


Height = Annotated[float, Range(ge=0.4, le=2.6, unit="m", hint=_centimetres)]  # plausible people
Mass = Annotated[float, Range(ge=1, le=500, unit="kg", hint=_mass_hint)]
Rate = Annotated[float, Range(gt=0, unit="fps")]
Hz = Annotated[float, Range(gt=0, unit="Hz")]
Px = Annotated[float, Range(gt=0, unit="px")]
Fraction = Annotated[float, Range(ge=0, le=1)]  # likelihoods, overlaps, affinities
Positive = Annotated[float, Range(gt=0)]
NonNegative = Annotated[float, Range(ge=0)]
Count = Annotated[int, Range(ge=0)]  # frames, workers
AtLeast1 = Annotated[int, Range(ge=1)]
FilterOrder = Annotated[int, Range(ge=1, le=12)]
Corners = Annotated[int, Range(ge=2)]  # inner corners of a checkerboard side
FrameRange = Annotated[tuple[int, int], Check(lambda v: 0 <= v[0] < v[1], "[start, stop] with 0 <= start < stop")]


# --------------------------------------------------------------------------- [project]
@dataclass(frozen=True)
class ProjectConfig:
    """``[project]``: the trial, its participants and its frames."""

    project_dir: str = "."  # resolved to an absolute path by load_config (relative = to the trial folder)
    multi_person: bool = False
    participant_height: Literal["auto"] | Height | tuple[Height, ...] = "auto"  # m; one per person
    participant_mass: Mass | tuple[Mass, ...] = 70.0  # kg; one per person
    frame_rate: Literal["auto"] | Rate = "auto"  # fps; 'auto' = read from the videos (openkin.framerate)
    frame_range: Literal["auto", "all"] | FrameRange = "auto"  # [start, stop) frames
    exclude_from_batch: tuple[str, ...] = ()  # trial folders skipped in batch runs


# --------------------------------------------------------------------------- [pose]
@dataclass(frozen=True)
class SkeletonNode:
    """One keypoint of a ``[[pose.<NAME>]]`` custom skeleton tree (``id`` = model output index)."""

    name: str
    id: int | None = None
    children: tuple[SkeletonNode, ...] = ()

    def walk(self, parent: str | None = None):
        """Yield ``(node, parent_name)`` depth first."""
        yield self, parent
        for child in self.children:
            yield from child.walk(self.name)


@dataclass(frozen=True)
class PoseConfig:
    """``[pose]``: 2D pose estimation and 2D tracking."""

    # Body_with_feet (HALPE_26), Whole_body, Body (COCO_17), ... or a custom skeleton's name
    pose_model: str = "Body_with_feet"
    mode: str = "balanced"  # 'lightweight', 'balanced', 'performance', or a """{dict}""" of rtmlib models
    det_frequency: AtLeast1 = 4  # person detection every N frames, tracking in between
    device: Literal["auto", "CPU", "CUDA", "MPS", "ROCM"] = "auto"
    backend: Literal["auto", "openvino", "onnxruntime", "opencv"] = "auto"
    parallel_workers_pose: Workers = "auto"
    display_detection: bool = False  # OpenKin never opens windows; kept for Pose2Sim files
    overwrite_pose: bool = False
    save_video: SaveVideo | tuple[SaveVideo, ...] = "to_video"
    output_format: Literal["openpose", "mmpose", "deeplabcut", "none"] | tuple[str, ...] = "openpose"
    handle_LR_swap: bool = False
    undistort_points: bool = False
    average_likelihood_threshold: Fraction = 0.5
    tracking_mode: Literal["sports2d", "deepsort"] = "sports2d"
    predict_displacement: bool = False
    match_by: Literal["keypoints", "centroid", "bbox"] = "keypoints"
    max_distance_px: Px = 250.0
    min_iou: Fraction = 0.2
    max_unseen_frames: Count = 100
    deepsort_params: str = ""  # """{dict}""" for tracking_mode = 'deepsort'; '' = library defaults
    # OpenKin only: which estimator. 'auto' = rtmlib (RTMPose) when its weights are cached or
    # downloadable, else the bundled offline model; 'rtmlib'; 'offline'.
    pose_backend: Literal["auto", "rtmlib", "offline"] = "auto"
    offline_model: Literal["blazepose_full"] = "blazepose_full"  # bundled offline weights
    # Arrays of tables ``[[pose.CUSTOM]]`` (any name) become entries here: name -> tree roots.
    custom_skeletons: dict[str, tuple[SkeletonNode, ...]] = field(default_factory=dict)

    def custom_skeleton(self, name: str):
        """The :class:`openkin.skeletons.Skeleton` of ``[[pose.<name>]]``, keypoints in ``id`` order."""
        from .skeletons import Skeleton

        if name not in self.custom_skeletons:
            raise OpenKinError(f"no custom skeleton [[pose.{name}]] in the config",
                               fix="define it in Config.toml (see the CUSTOM example) or choose a built-in pose_model")
        nodes = [(n, p) for root in self.custom_skeletons[name] for n, p in root.walk()]
        with_id = {n.id: (n.name, p) for n, p in nodes if n.id is not None}
        if not with_id or min(with_id) < 0:
            raise OpenKinError(f"custom skeleton {name!r}: needs keypoints with ids >= 0",
                               fix="number the keypoints in the model's output order, starting at 0")
        # Model outputs not in the tree (ids skipped) get placeholder names "_<id>" and no parent.
        entries = [with_id.get(i, (f"_{i}", None)) for i in range(max(with_id) + 1)]
        names = tuple(n for n, _ in entries)
        parents = tuple(names.index(p) if p in names else -1 for _, p in entries)
        return Skeleton(name, names, parents)


# --------------------------------------------------------------------------- [synchronization]
@dataclass(frozen=True)
class SynchronizationConfig:
    """``[synchronization]``: per-camera time offsets from 2D keypoint speeds."""

    synchronization_gui: bool = False  # OpenKin never opens windows; kept for Pose2Sim files
    display_sync_plots: bool = False
    save_sync_plots: bool = True
    keypoints_to_consider: Literal["all", "right", "left"] | tuple[str, ...] = "all"
    approx_time_maxspeed: Literal["auto"] | tuple[NonNegative, ...] = "auto"  # s, one per camera
    time_range_around_maxspeed: Positive = 2.0  # s
    likelihood_threshold_synchronization: Fraction = 0.4
    filter_cutoff: Hz = 6.0  # Hz
    filter_order: FilterOrder = 4
    # OpenKin only: 'auto' = epipolar consistency when a calibration exists, else speed correlation
    sync_method: Literal["auto", "epipolar", "correlation"] = "auto"


# --------------------------------------------------------------------------- [calibration]
@dataclass(frozen=True)
class EmptySection:
    """A table Pose2Sim lists without keys (``[calibration.convert.vicon]``)."""


@dataclass(frozen=True)
class QualisysConfig:
    binning_factor: AtLeast1 = 1  # 2 when filming in 540p with a 1080p calibration


@dataclass(frozen=True)
class ConvertConfig:
    """``[calibration.convert]``: read another system's calibration."""

    convert_from: Literal["caliscope", "qualisys", "optitrack", "vicon", "opencap", "easymocap",
                          "biocv", "anipose", "freemocap"] = "qualisys"
    caliscope: EmptySection = field(default_factory=EmptySection)
    qualisys: QualisysConfig = field(default_factory=QualisysConfig)
    optitrack: EmptySection = field(default_factory=EmptySection)
    vicon: EmptySection = field(default_factory=EmptySection)
    opencap: EmptySection = field(default_factory=EmptySection)
    easymocap: EmptySection = field(default_factory=EmptySection)
    biocv: EmptySection = field(default_factory=EmptySection)
    anipose: EmptySection = field(default_factory=EmptySection)
    freemocap: EmptySection = field(default_factory=EmptySection)


@dataclass(frozen=True)
class IntrinsicsConfig:
    """``[calibration.calculate.intrinsics]``: checkerboard images per camera."""

    overwrite_intrinsics: bool = False
    intrinsics_extension: str = "jpg"
    extract_every_N_sec: Positive = 1.0  # s, when the intrinsics come from a video
    intrinsics_corners_nb: tuple[Corners, Corners] = (4, 7)  # inner corners [H, W]
    intrinsics_square_size: Positive = 60.0  # mm
    show_detection_intrinsics: bool = False  # OpenKin never opens windows
    # OpenKin only: a ChArUco board instead of a checkerboard, and fisheye lenses
    intrinsics_board: Literal["checkerboard", "charuco"] = "checkerboard"
    charuco_squares_nb: tuple[Corners, Corners] = (7, 5)  # squares [columns, rows]
    charuco_marker_size: Positive = 45.0  # mm (the square side is intrinsics_square_size)
    charuco_dictionary: str = "DICT_4X4_50"  # OpenCV's ArUco dictionary name
    fisheye: bool = False  # OpenCV's fisheye model (k1..k4) instead of the pinhole one


@dataclass(frozen=True)
class BoardConfig:
    board_position: Literal["vertical", "horizontal"] = "vertical"
    # OpenKin only: a ChArUco board (charuco_* keys of [calibration.calculate.intrinsics], square side
    # extrinsics_square_size), seen in part; and boards filmed in several placements (one folder of
    # images or a video per camera in calibration/extrinsics/<cam>/) chained through the cameras
    board_type: Literal["checkerboard", "charuco"] = "checkerboard"
    extrinsics_corners_nb: tuple[Corners, Corners] = (4, 7)  # inner corners [H, W]
    extrinsics_square_size: Positive | tuple[Positive, Positive] = 60.0  # mm; [h, w] for rectangles


@dataclass(frozen=True)
class SceneConfig:
    object_coords_3d: tuple[tuple[float, float, float], ...] = (
        (-2.0, 0.3, 0.0), (-2.0, 0.0, 0.0), (-2.0, 0.0, 0.05), (-2.0, -0.3, 0.0),
        (0.0, 0.3, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.05), (0.0, -0.3, 0.0))  # m


@dataclass(frozen=True)
class KeypointsCalibConfig:
    """``[calibration.calculate.extrinsics.keypoints]`` (OpenKin): camera poses from a person's 2D keypoints."""

    fov_deg: Annotated[float, Range(gt=10, lt=170, unit="deg")] = 70.0  # horizontal field of view guessed
    # when no intrinsics exist (no calibration file, no checkerboard images)
    refine_focal: Literal["auto"] | bool = "auto"  # 'auto': refined when guessed from fov_deg
    min_confidence: Fraction = 0.5  # keypoints below this confidence are not used
    max_frames: AtLeast1 = 200  # frames (spread over the trial) in the bundle adjustment
    max_error_px: Px = 15.0  # no calibration is written when a camera's median reprojection error is larger


@dataclass(frozen=True)
class ExtrinsicsConfig:
    """``[calibration.calculate.extrinsics]``: camera poses in the world."""

    calculate_extrinsics: bool = True
    extrinsics_method: Literal["board", "scene", "keypoints"] = "scene"
    extrinsics_extension: str = "png"
    show_reprojection_error: bool = False  # OpenKin never opens windows
    moving_cameras: bool = False  # not supported
    board: BoardConfig = field(default_factory=BoardConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    keypoints: KeypointsCalibConfig = field(default_factory=KeypointsCalibConfig)


@dataclass(frozen=True)
class CalculateConfig:
    """``[calibration.calculate]``: compute intrinsics and extrinsics from images."""

    save_debug_images: bool = True
    intrinsics: IntrinsicsConfig = field(default_factory=IntrinsicsConfig)
    extrinsics: ExtrinsicsConfig = field(default_factory=ExtrinsicsConfig)


@dataclass(frozen=True)
class CalibrationConfig:
    """``[calibration]``."""

    calibration_type: Literal["convert", "calculate"] = "convert"
    # OpenKin only: units of the translations of a calibration TOML OpenKin did not write
    # ('auto': guessed only when unambiguous, else metres with a warning)
    units: Literal["auto", "m", "mm"] = "auto"
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    calculate: CalculateConfig = field(default_factory=CalculateConfig)


# --------------------------------------------------------------------------- [personAssociation]
@dataclass(frozen=True)
class SinglePersonConfig:
    likelihood_threshold_association: Fraction = 0.3
    reproj_error_threshold_association: Px = 20.0  # px
    tracked_keypoint: str = "Neck"


@dataclass(frozen=True)
class MultiPersonConfig:
    reconstruction_error_threshold: Positive = 0.1  # m
    min_affinity: Fraction = 0.2


@dataclass(frozen=True)
class PersonAssociationConfig:
    """``[personAssociation]``: which detection is which person in each camera."""

    single_person: SinglePersonConfig = field(default_factory=SinglePersonConfig)
    multi_person: MultiPersonConfig = field(default_factory=MultiPersonConfig)


# --------------------------------------------------------------------------- [refinement]
@dataclass(frozen=True)
class RefinementConfig:
    """``[refinement]`` (OpenKin): camera extrinsics refined from the keypoints (bundle adjustment)."""

    refine_extrinsics: bool = True
    likelihood_threshold: Fraction = 0.5
    max_frames: AtLeast1 = 200
    loss_scale_px: Px = 4.0  # px
    outlier_threshold_px: Px = 40.0  # px
    prior_translation_mm: Positive = 5.0  # mm
    prior_rotation_deg: Positive = 0.1  # degrees
    max_translation_mm: Positive = 100.0  # mm
    max_rotation_deg: Positive = 5.0  # degrees
    max_iterations: AtLeast1 = 100


# --------------------------------------------------------------------------- [triangulation]
@dataclass(frozen=True)
class TriangulationConfig:
    """``[triangulation]``: 3D keypoints from the associated 2D keypoints."""

    reproj_error_threshold_triangulation: Px = 15.0  # px
    likelihood_threshold_triangulation: Fraction = 0.3
    min_cameras_for_triangulation: Annotated[int, Range(ge=2)] = 2
    predict_displacement: bool = False
    match_by: Literal["keypoints", "centroid"] = "keypoints"
    max_distance_m: Positive = 1.0  # m
    max_unseen_frames: Count = 100
    interp_if_gap_smaller_than: Count = 20  # frames
    interpolation: Literal["linear", "slinear", "quadratic", "cubic", "none"] = "linear"
    remove_incomplete_frames: bool = False
    sections_to_keep: Literal["all", "largest", "first", "last"] = "all"
    min_chunk_size: AtLeast1 = 10  # frames
    fill_large_gaps_with: Literal["last_value", "nan", "zeros"] = "last_value"
    show_interp_indices: bool = True
    make_c3d: bool = True
    # OpenKin: Pose2Sim 0.10.49's triangulation reads these two from [triangulation] (its
    # Config.toml lists them under [pose], where they have no effect); OpenKin does them by default.
    handle_LR_swap: bool = True
    undistort_points: bool = True


# --------------------------------------------------------------------------- [filtering]
@dataclass(frozen=True)
class ButterworthConfig:
    cut_off_frequency: Hz = 6.0  # Hz
    order: FilterOrder = 4


@dataclass(frozen=True)
class KalmanConfig:
    trust_ratio: Positive = 500.0  # measurement trust / process trust
    smooth: bool = True


@dataclass(frozen=True)
class OneEuroConfig:
    cut_off_frequency: Hz = 4.0  # Hz
    beta: NonNegative = 1.5
    d_cut_off_frequency: Hz = 1.0  # Hz


@dataclass(frozen=True)
class GcvSplineConfig:
    cut_off_frequency: Literal["auto"] | Hz = "auto"  # Hz
    smoothing_factor: Positive = 1.0


@dataclass(frozen=True)
class AccMinimizingConfig:
    cut_off_frequency: Hz = 6.0  # Hz


@dataclass(frozen=True)
class LoessConfig:
    nb_values_used: Annotated[int, Range(ge=3)] = 5  # frames


@dataclass(frozen=True)
class GaussianConfig:
    sigma_kernel: Positive = 1.0  # frames


@dataclass(frozen=True)
class MedianConfig:
    kernel_size: Annotated[int, Odd(1)] = 3  # frames


@dataclass(frozen=True)
class FilteringConfig:
    """``[filtering]``: outlier rejection and smoothing of the 3D keypoints."""

    reject_outliers: bool = True  # Hampel filter first
    filter: bool = True
    type: FilterType = "butterworth"
    display_figures: bool = False  # OpenKin never opens windows
    save_filt_plots: bool = True
    make_c3d: bool = True
    butterworth: ButterworthConfig = field(default_factory=ButterworthConfig)
    kalman: KalmanConfig = field(default_factory=KalmanConfig)
    one_euro: OneEuroConfig = field(default_factory=OneEuroConfig)
    gcv_spline: GcvSplineConfig = field(default_factory=GcvSplineConfig)
    acc_minimizing: AccMinimizingConfig = field(default_factory=AccMinimizingConfig)
    loess: LoessConfig = field(default_factory=LoessConfig)
    gaussian: GaussianConfig = field(default_factory=GaussianConfig)
    median: MedianConfig = field(default_factory=MedianConfig)
    butterworth_on_speed: ButterworthConfig = field(default_factory=lambda: ButterworthConfig(10.0, 4))


# --------------------------------------------------------------------------- [markerAugmentation]
@dataclass(frozen=True)
class MarkerAugmentationConfig:
    """``[markerAugmentation]``: LSTM virtual markers from the keypoints."""

    feet_on_floor: bool = False
    make_c3d: bool = True


# --------------------------------------------------------------------------- [kinematics]
@dataclass(frozen=True)
class KinematicsConfig:
    """``[kinematics]``: OpenSim scaling and inverse kinematics."""

    use_augmentation: bool = True
    use_simple_model: bool = False
    filter_ik: bool = False
    ik_filter_type: FilterType = "acc_minimizing"
    right_left_symmetry: bool = True
    default_height: Height = 1.7  # m
    parallel_workers_kinematics: Workers = "auto"
    remove_individual_scaling_setup: bool = True
    remove_individual_ik_setup: bool = True
    large_hip_knee_angles: Annotated[float, Range(gt=0, le=180, unit="degrees")] = 90.0  # degrees
    trimmed_extrema_percent: Annotated[float, Range(ge=0, lt=100, unit="%")] = 50.0  # %
    # OpenKin only:
    refine_scaling: bool = True  # scale factors refined on the IK-posed model, augmented markers placed (else as Pose2Sim)
    missing_markers: Literal["interpolate", "drop_frames", "error"] = "interpolate"
    interp_gap_max: Count = 10  # frames: longest gap 'interpolate' fills; frames still missing markers are dropped
    osim_model: str = ""  # your own .osim (empty: Pose2Sim's models); its markers, else the keypoint set's
    ik_solver: Literal["openkin", "opensim"] = "openkin"  # IK: OpenKin's batch solver or OpenSim's (openkin.kinematics.solver)
    trackers: dict[str, str] = field(default_factory=dict)  # 6-DoF trackers: {sensor column = "body"} (kinematics.trackers)
    tracker_weights: dict[str, float] = field(default_factory=dict)  # {sensor column = weight}; default 1 each


@dataclass(frozen=True)
class LoggingConfig:
    """``[logging]``."""

    use_custom_logging: bool = False  # accepted for Pose2Sim files; OpenKin never configures logging on import


# --------------------------------------------------------------------------- the whole file
_INTERNAL = {"toml": False}  # field metadata: not a TOML key


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one trial."""

    project: ProjectConfig = field(default_factory=ProjectConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    synchronization: SynchronizationConfig = field(default_factory=SynchronizationConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    personAssociation: PersonAssociationConfig = field(default_factory=PersonAssociationConfig)
    refinement: RefinementConfig = field(default_factory=RefinementConfig)
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)
    filtering: FilteringConfig = field(default_factory=FilteringConfig)
    markerAugmentation: MarkerAugmentationConfig = field(default_factory=MarkerAugmentationConfig)
    kinematics: KinematicsConfig = field(default_factory=KinematicsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    # The files merged, in order (not a TOML key).
    sources: tuple[str, ...] = field(default=(), compare=False, metadata=_INTERNAL)
    # Dotted key -> the file (or 'overrides') that set it; keys absent keep their default (not a TOML key).
    origins: dict[str, str] = field(default_factory=dict, compare=False, repr=False, metadata=_INTERNAL)

    def to_dict(self) -> dict:
        """Nested plain dict with Pose2Sim's section and key names (tuples as lists)."""
        return _to_dict(self)

    def with_overrides(self, overrides: dict, source: str = "overrides") -> Config:
        """A new Config with ``overrides`` (nested dict, TOML names) merged on top, checked."""
        layer = _check_layer(overrides, source)
        merged = _merge(check_section(Config, self.to_dict(), (), "config"), layer)
        config = dataclasses.replace(_instantiate(Config, merged), sources=self.sources + (source,),
                                     origins={**self.origins, **key_origins(layer, source)})
        check_config(config)
        return config


# Keys of other Pose2Sim versions (older, or newer than 0.10.49), found across the history of
# Pose2Sim's demo Config.toml files: old name -> current name, or None when it has no effect
# here (accepted with a warning so such files load as they are).
LEGACY_KEYS: dict[str, str | None] = {
    "filtering.LOESS": "filtering.loess",
    "calibration.calculate.extrinsics.board.extrinsics_extension": "calibration.calculate.extrinsics.extrinsics_extension",
    "calibration.calculate.extrinsics.scene.extrinsics_extension": "calibration.calculate.extrinsics.extrinsics_extension",
    "calibration.calculate.extrinsics.board.show_reprojection_error":
        "calibration.calculate.extrinsics.show_reprojection_error",
    "calibration.calculate.extrinsics.scene.show_reprojection_error":
        "calibration.calculate.extrinsics.show_reprojection_error",
    "calibration.calculate.extrinsics.board_position": "calibration.calculate.extrinsics.board.board_position",
    "personAssociation.likelihood_threshold_association":
        "personAssociation.single_person.likelihood_threshold_association",
    "personAssociation.reproj_error_threshold_association":
        "personAssociation.single_person.reproj_error_threshold_association",
    "personAssociation.tracked_keypoint": "personAssociation.single_person.tracked_keypoint",
    "synchronization.likelihood_threshold": "synchronization.likelihood_threshold_synchronization",
    "triangulation.likelihood_threshold": "triangulation.likelihood_threshold_triangulation",
    "kinematics.remove_individual_IK_setup": "kinematics.remove_individual_ik_setup",
    "pose.average_likelihood_threshold_pose": "pose.average_likelihood_threshold",
    "markerAugmentation.participant_height": "project.participant_height",
    "markerAugmentation.participant_mass": "project.participant_mass",
    **dict.fromkeys((
        "pose.vid_img_extension", "pose.parallel_pose", "pose.tracking", "pose.pose_framework", "pose.openpose_path",
        "pose.frametoframe_px_dist_threshold", "project.nb_persons_to_detect", "synchronization.reset_sync",
        "synchronization.display_corr", "triangulation.reorder_trc", "filtering.filter_ik",
        "calibration.convert.caliscope.binning_factor", "markerAugmentation.close_to_zero_speed_m",
        "markerAugmentation.fastest_frames_to_remove_percent", "markerAugmentation.large_hip_knee_angles",
        "markerAugmentation.trimmed_extrema_percent", "kinematics.close_to_zero_speed_m",
        "kinematics.fastest_frames_to_remove_percent", "kinematics.slowest_frames_to_remove_percent",
        "kinematics.use_contacts_muscles", "kinematics.make_bvh", "logging.id", "logging.name")),
    # Pose2Sim 0.9's [opensim] section became [kinematics].
    "opensim.use_augmentation": "kinematics.use_augmentation",
    "opensim.right_left_symmetry": "kinematics.right_left_symmetry",
    "opensim.remove_individual_scaling_setup": "kinematics.remove_individual_scaling_setup",
    "opensim.remove_individual_IK_setup": "kinematics.remove_individual_ik_setup",
    "opensim": None,  # what is left of it: static_trial, opensim_bin_path, IK_timeRange, load_trc_name
    # Pose2Sim 0.1-0.3 ([2d-tracking], [3d-triangulation] ... moved by LEGACY_SECTIONS first).
    "personAssociation.single_person.error_threshold_tracking":
        "personAssociation.single_person.reproj_error_threshold_association",
    "triangulation.error_threshold_triangulation": "triangulation.reproj_error_threshold_triangulation",
    "personAssociation.likelihood_error_threshold_association":
        "personAssociation.single_person.likelihood_threshold_association",
    "personAssociation.likelihood_threshold_triangulation":
        "personAssociation.single_person.likelihood_threshold_association",
    "project.frames_range": "project.frame_range",
    "project.save_video": "pose.save_video",
    "pose.model_settings": "pose.mode",
    "calibration.qca.binning_factor": "calibration.convert.qualisys.binning_factor",
    "calibration.qca": None,
    "pose.openpose_model": "pose.pose_model",
    "calibration.overwrite_intrinsics": "calibration.calculate.intrinsics.overwrite_intrinsics",
    "calibration.calculate_extrinsics": "calibration.calculate.extrinsics.calculate_extrinsics",
    "calibration.calculate.extract_every_N_sec": "calibration.calculate.intrinsics.extract_every_N_sec",
    **dict.fromkeys((
        # folder names: OpenKin uses Pose2Sim's current ones (videos/, calibration/, pose/, pose-3d/...)
        "project.rawImg_folder_name", "project.calib_folder_name", "project.pose_folder_name",
        "project.pose_json_folder_extension", "project.pose_img_folder_extension",
        "project.poseTracked_folder_name", "project.poseAssociated_folder_name", "project.pose3d_folder_name",
        "project.opensim_folder_name", "project.continue_on_error",
        # webcams, real time and threads of later Pose2Sim versions
        "pose.webcam_id", "pose.webcam_ids", "pose.capture_mode", "pose.combined_frames", "pose.gray_capture",
        "pose.input_size", "pose.max_simultaneous_sources", "pose.multi_workers", "pose.orientation",
        "pose.rotation", "pose.show_realtime_results", "pose.single_camera", "pose.webcam_recording",
        "pose.parallel_pose_detection",
        # the speed-threshold synchronization announced in Pose2Sim 0.2-0.4 ("coming soon")
        "synchronization.frames", "synchronization.cut_off_frequency", "synchronization.speed_kind",
        "synchronization.vmax", "synchronization.cam1_nb", "synchronization.cam2_nb", "synchronization.id_kpt",
        "synchronization.weights_kpt", "synchronization.sync_frame_range", "synchronization.time",
        "synchronization.lag_time", "synchronization.speed_threshold",
        "filtering.butterworth.type", "filtering.butterworth_on_speed.type",  # always 'low'
        "calibration.vicon", "calibration.save_calibration", "calibration.overwrite_extrinsics",
        "calibration.calculate.overwrite_extraction", "calibration.calculate.points",
        "BODY_25_AUGMENTED", "pose_demo", "sources")),
}
# Keys ignored above whose settings live elsewhere in this version: what replaced them (logged).
LEGACY_NOTES: dict[str, str] = {
    "triangulation.bundle_adjustment": "OpenKin's [refinement] refine_extrinsics (bundle adjustment, on by default)",
    "calibration.checkerboard": "[calibration.calculate.intrinsics] and [calibration.calculate.extrinsics.board]",
    "calibration.calculate.board": "[calibration.calculate.intrinsics] and [calibration.calculate.extrinsics.board]",
    "calibration.calculate.calculate_method": "[calibration.calculate.extrinsics] extrinsics_method",
    "subjects": "[project] participant_height and participant_mass (one value per person)",
    "sources": "one video per camera in videos/",
    "project.rawImg_folder_name": "the videos/ folder",
    "project.pose_folder_name": "the pose/ folder",
    "project.calib_folder_name": "a calibration/ folder (or any folder named *calib*) in the trial or session",
    "pose.parallel_pose_detection": "[pose] parallel_workers_pose",
    "pose.rotation": "videos stored upright",
}
LEGACY_KEYS.update(dict.fromkeys(LEGACY_NOTES))
_QUOTED_BOOLS = {"True": True, "False": False}  # Pose2Sim 0.1's display_figures = 'True'
# convert_from given as the calibration file (a 2025 Pose2Sim branch) -> the system.
_LEGACY_CALIB_FILES = {".qca.txt": "qualisys", ".xcp": "vicon", ".pickle": "opencap", ".calib": "biocv"}
# Whole sections of Pose2Sim 0.1-0.3 (and a 2025 branch) moved under their current name.
LEGACY_SECTIONS: dict[str, str] = {
    "pose-2d": "pose", "poseEstimation": "pose", "2d-tracking": "personAssociation.single_person",
    "3d-triangulation": "triangulation", "3d-filtering": "filtering",
}
# calibration.type of Pose2Sim 0.1-0.3 -> (calibration_type, convert_from or None).
_LEGACY_CALIB_TYPES = {"qca": ("convert", "qualisys"), "qualisys": ("convert", "qualisys"),
                       "vicon": ("convert", "vicon"), "optitrack": ("convert", "optitrack"),
                       "checkerboard": ("calculate", None), "calculate": ("calculate", None),
                       "board": ("calculate", None), "convert": ("convert", None)}
_MISSING = object()


def _pop(tree: dict, parts: list[str]):
    node = tree
    for p in parts[:-1]:
        node = node.get(p)
        if not isinstance(node, dict):
            return _MISSING
    return node.pop(parts[-1], _MISSING)


def _has(tree: dict, parts: list[str]) -> bool:
    node = tree
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return False
        node = node[p]
    return True


def _put(tree: dict, parts: list[str], value) -> bool:
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            return False
    node[parts[-1]] = value
    return True


def _upgrade_legacy(raw: dict, source: str) -> dict:
    """``raw`` with other Pose2Sim versions' keys renamed to the current ones (or dropped), logged."""
    if not isinstance(raw, dict):
        return raw
    raw = copy.deepcopy(raw)
    project = raw.get("project")
    if isinstance(project, dict) and project.get("frame_range") == []:
        project["frame_range"] = "all"  # Pose2Sim before 0.10: [] meant every frame
        log.info("%s: frame_range = [] read as 'all'", source)
    _upgrade_sections(raw, source)
    _upgrade_values(raw, source)
    for old, new in LEGACY_KEYS.items():
        value = _pop(raw, old.split("."))
        if value is _MISSING:
            continue
        if new is None:
            note = LEGACY_NOTES.get(old)
            log.warning("%s: %s is a key of another Pose2Sim version with no effect in OpenKin: ignored%s",
                        source, old, f" (replaced by {note})" if note else "")
        elif _has(raw, new.split(".")):
            log.warning("%s: %s (another Pose2Sim version's name) ignored: %s is set too", source, old, new)
        elif not _put(raw, new.split("."), value):
            log.warning("%s: %s (another Pose2Sim version's name) ignored: no table for %s", source, old, new)
        else:
            log.info("%s: %s read as %s (its name in this Pose2Sim version)", source, old, new)
    return raw


def _upgrade_sections(raw: dict, source: str) -> None:
    """Move the tables of :data:`LEGACY_SECTIONS` under their current names (current keys win)."""
    for old, new in LEGACY_SECTIONS.items():
        table = raw.get(old)
        if not isinstance(table, dict):
            continue
        del raw[old]
        parts = new.split(".")
        node = raw
        for p in parts:
            if not isinstance(node.get(p, {}), dict):
                log.warning("%s: [%s] (another Pose2Sim version's section) ignored: %s is not a table",
                            source, old, new)
                break
            node = node.setdefault(p, {})
        else:
            for key, value in _merge(table, node).items():
                node[key] = _QUOTED_BOOLS.get(value, value) if isinstance(value, str) else value
            log.info("%s: [%s] read as [%s] (its name in this Pose2Sim version)", source, old, new)


def _upgrade_values(raw: dict, source: str) -> None:
    """Keys of other versions whose value changes meaning: ``personAssociation.single_person = true``
    (→ ``project.multi_person = false``), ``calibration.type = 'qca'`` (→ calibration_type, convert_from),
    and nameless custom skeletons (a ``[pose.CUSTOM]`` header lost in a comment: dropped)."""
    assoc = raw.get("personAssociation")
    if isinstance(assoc, dict) and isinstance(assoc.get("single_person"), bool):
        single = assoc.pop("single_person")
        if not _has(raw, ["project", "multi_person"]) and _put(raw, ["project", "multi_person"], not single):
            log.info("%s: personAssociation.single_person = %s read as project.multi_person = %s", source,
                     str(single).lower(), str(not single).lower())
    calib = raw.get("calibration")
    if isinstance(calib, dict) and isinstance(calib.get("type"), str) and "calibration_type" not in calib:
        kind = _LEGACY_CALIB_TYPES.get(calib["type"].lower())
        if kind is None:
            raise OpenKinError(f"calibration.type = {calib['type']!r} (Pose2Sim 0.1-0.3) has no counterpart",
                               path=source, fix="replace it by calibration_type = 'convert' (with [calibration."
                                                "convert] convert_from) or 'calculate'")
        del calib["type"]
        calib["calibration_type"] = kind[0]
        if kind[1] and isinstance(calib.setdefault("convert", {}), dict):
            calib["convert"].setdefault("convert_from", kind[1])
        log.info("%s: calibration.type read as calibration_type = %r%s", source, kind[0],
                 f", convert_from = {kind[1]!r}" if kind[1] else "")
    convert = calib.get("convert") if isinstance(calib, dict) else None
    if isinstance(convert, dict) and isinstance(convert.get("convert_from"), str):
        path = convert["convert_from"].lower()
        kind = next((k for ext, k in _LEGACY_CALIB_FILES.items() if path.endswith(ext)), None)
        if kind:
            log.info("%s: calibration.convert.convert_from = %r (a file) read as %r", source,
                     convert["convert_from"], kind)
            convert["convert_from"] = kind
    pose = raw.get("pose")
    if isinstance(pose, dict):
        for key in [k for k, v in pose.items() if isinstance(v, dict) and "children" in v and "name" not in v]:
            del pose[key]
            log.warning("%s: [pose.%s] has children but no root name (its header line is probably inside a "
                        "comment): ignored", source, key)


def _check_layer(raw, source: str) -> dict:
    """One whole file (or overrides dict) checked against :class:`Config`, legacy keys upgraded."""
    return check_section(Config, _upgrade_legacy(raw, source), (), source)


# =========================================================================== merging and building
def _merge(base: dict, new: dict) -> dict:
    """Nested dict merge, ``new`` wins key by key (Pose2Sim's recursive_update), without mutating."""
    out = dict(base)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _instantiate(cls, data: dict):
    """Section dataclass from a checked, normalised dict (missing keys keep their defaults)."""
    fields = toml_fields(cls)
    kwargs = {}
    for key, value in data.items():
        if key == "custom_skeletons":
            kwargs[key] = {k: (v if isinstance(v, tuple) else check_skeleton(v, ("pose", k), "config", SkeletonNode))
                           for k, v in value.items()}
        elif is_section(fields[key]):
            kwargs[key] = _instantiate(fields[key], value)
        else:
            kwargs[key] = convert(value, fields[key])
    return cls(**kwargs)


def _skeleton_to_list(nodes: tuple[SkeletonNode, ...]) -> list[dict]:
    out = []
    for n in nodes:
        d: dict = {"name": n.name}
        if n.id is not None:
            d["id"] = n.id
        if n.children:
            d["children"] = _skeleton_to_list(n.children)
        out.append(d)
    return out


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _to_dict(section) -> dict:
    out: dict = {}
    for f in dataclasses.fields(section):
        if not f.metadata.get("toml", True):
            continue
        value = getattr(section, f.name)
        if f.name == "custom_skeletons":
            for name, nodes in value.items():
                out[name] = _skeleton_to_list(nodes)
        elif dataclasses.is_dataclass(value):
            out[f.name] = _to_dict(value)
        else:
            out[f.name] = _plain(value)
    return out


# =========================================================================== files
def read_toml(path: str | Path) -> dict:
    """Parse a TOML file; malformed TOML -> OpenKinError with the line."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise OpenKinError(f"malformed TOML: {e}", path=path,
                           fix="correct the syntax at that line (strings need quotes, true/false lowercase, "
                               "one [section] header per table)") from None
    except UnicodeDecodeError as e:
        raise OpenKinError(f"not a UTF-8 text file: {e}", path=path, fix="save the file as UTF-8 text") from None
    except OSError as e:
        raise OpenKinError(f"cannot read: {e.strerror}", path=path, fix="check the path and permissions") from None


def config_files(trial_dir: str | Path) -> list[Path]:
    """The Config.toml files of a trial, outermost first: ``[session, participant, trial]``.

    Pose2Sim's batch layout: each parent folder holding a Config.toml counts (at
    most two: participant, then session), up to the first parent without one;
    see :func:`openkin.project.project_levels`.
    """
    return [level / CONFIG_NAME for level in project_levels(Path(trial_dir)) if (level / CONFIG_NAME).is_file()]


def load_config(trial_dir: str | Path, overrides: dict | None = None) -> Config:
    """The resolved Config of the trial in ``trial_dir``.

    defaults ← session ``../../Config.toml`` ← participant ``../Config.toml`` ← trial
    ``Config.toml`` ← ``overrides``
    (nested dict with TOML names). ``project.project_dir`` is returned absolute
    (a relative value is taken relative to ``trial_dir``).
    """
    trial = Path(trial_dir).expanduser().resolve()
    if not trial.is_dir():
        raise OpenKinError("trial folder does not exist", path=trial,
                           fix="give the folder that holds the trial's Config.toml, videos/ and calibration/")
    merged: dict = {}
    sources = []
    origins: dict[str, str] = {}
    for path in config_files(trial):
        layer = _check_layer(read_toml(path), str(path))
        merged, origins = _merge(merged, layer), origins | key_origins(layer, str(path))
        sources.append(str(path))
    if not sources:
        log.warning("no Config.toml in %s or its parent: using the defaults", trial)
    if overrides:
        layer = _check_layer(overrides, "overrides")
        merged, origins = _merge(merged, layer), origins | key_origins(layer, "overrides")
        sources.append("overrides")
    project_dir = Path(merged.get("project", {}).get("project_dir", "."))
    merged = _merge(merged, {"project": {"project_dir": str((trial / project_dir).resolve())}})
    config = dataclasses.replace(_instantiate(Config, merged), sources=tuple(sources), origins=origins)
    check_config(config)  # checks across keys, before any stage runs
    log.debug("config of %s from %s", trial, ", ".join(sources) or "defaults")
    return config


def default_config() -> Config:
    """The defaults (no file read)."""
    return Config()


def versions() -> dict[str, str]:
    """Versions of Python, OpenKin and the libraries that shape the results."""
    from . import __version__

    out = {"python": platform.python_version(), "platform": platform.platform(), "openkin": __version__}
    dists = {"numpy": ["numpy"], "scipy": ["scipy"],
             "opencv": ["opencv-python-headless", "opencv-python", "opencv-contrib-python",
                        "opencv-contrib-python-headless"],
             "onnxruntime": ["onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"],
             "opensim": ["opensim"], "rtmlib": ["rtmlib"], "ezc3d": ["ezc3d"], "matplotlib": ["matplotlib"]}
    for name, candidates in dists.items():
        for dist in candidates:
            try:
                out[name] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        else:
            out[name] = "not installed"
    out["executable"] = sys.executable
    return out


def write_resolved_config(config: Config, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``out_dir/resolved_config.toml`` and ``out_dir/versions.toml``; return both paths."""
    from .fileio import toml_dumps

    out_dir = Path(out_dir)
    header = ("# The configuration these outputs were computed with (defaults merged with:\n"
              + "".join(f"#   {s}\n" for s in config.sources) + "# ). Usable as a Config.toml.\n\n")
    resolved, vers = out_dir / "resolved_config.toml", out_dir / "versions.toml"
    with _atomic(resolved) as f:
        f.write(header + toml_dumps(config.to_dict()))
    with _atomic(vers) as f:
        f.write("# Software versions these outputs were computed with.\n" + toml_dumps(versions()))
    return resolved, vers


def _atomic(path: Path):
    from .fileio import atomic_write

    return atomic_write(path)

"""Settings shown in the panel (``scene.openkin``)."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

STAGE_ITEMS = [
    ("calibration", "Calibration", "Convert or compute the calibration"),
    ("pose", "Pose", "2D keypoints from the videos"),
    ("synchronization", "Synchronization", "Per-camera time offsets"),
    ("association", "Association", "Who is who across cameras"),
    ("triangulation", "Triangulation", "3D keypoints"),
    ("filtering", "Filtering", "Smooth the 3D keypoints"),
    ("augmentation", "Augmentation", "LSTM marker augmentation"),
    ("kinematics", "Kinematics", "OpenSim scaling and inverse kinematics"),
]
FILTER_ITEMS = [(v, v.replace("_", " ").capitalize(), "") for v in (
    "butterworth", "kalman", "one_euro", "gcv_spline", "acc_minimizing", "gaussian", "LOESS", "median",
    "butterworth_on_speed")]


def _load_project_options(self, context) -> None:
    """When a project is chosen, show its own Config.toml choices (so Run does not silently
    override them with the panel's defaults)."""
    import logging
    from pathlib import Path

    from openkin.config import load_config
    from openkin.errors import OpenKinError

    root = Path(bpy.path.abspath(self.project_dir)) if self.project_dir else None
    if root is None or not (root / "Config.toml").is_file() and not (root.parent / "Config.toml").is_file():
        return
    try:
        config = load_config(root)
    except OpenKinError as e:
        logging.getLogger(__name__).warning("cannot read %s: %s", root, e)
        return
    values = {"pose_mode": config.pose.mode, "pose_backend": config.pose.backend,
              "multi_person": config.project.multi_person, "filter_type": config.filtering.type,
              "simple_model": config.kinematics.use_simple_model}
    for key, value in values.items():
        try:
            setattr(self, key, value)
        except TypeError:  # e.g. a custom pose mode the panel does not list: keep the panel's
            pass


class OPENKIN_PG_settings(bpy.types.PropertyGroup):
    project_dir: StringProperty(name="Project", subtype="DIR_PATH", update=_load_project_options,
                                description="Trial folder (holds Config.toml, calibration/, videos/)")
    new_videos_dir: StringProperty(name="Videos", subtype="DIR_PATH",
                                   description="Folder of the videos of a new project (one per camera)")
    new_calibration: StringProperty(name="Calibration", subtype="FILE_PATH",
                                    description="Calibration file of a new project (Pose2Sim .toml, or a file to convert)")
    pose_mode: EnumProperty(name="Pose mode", default="balanced", items=[
        ("lightweight", "Lightweight", "Fastest pose models"),
        ("balanced", "Balanced", "Default"),
        ("performance", "Performance", "Most accurate, slowest")])
    pose_backend: EnumProperty(name="Backend", default="auto", items=[
        ("auto", "Auto", "Best available"), ("onnxruntime", "ONNX Runtime", ""),
        ("openvino", "OpenVINO", ""), ("opencv", "OpenCV", "")])
    multi_person: BoolProperty(name="Several people", default=False)
    filter_type: EnumProperty(name="Filter", default="butterworth", items=FILTER_ITEMS)
    simple_model: BoolProperty(name="Simple model", default=True,
                               description="OpenSim model without muscles (faster); off: the full model")
    stage: EnumProperty(name="Stage", items=STAGE_ITEMS, default="triangulation")
    # import
    marker_radius: FloatProperty(name="Marker size", default=0.02, min=0.001, max=0.2, unit="LENGTH")
    undistort: BoolProperty(name="Undistort videos", default=True,
                            description="Show lens-undistorted copies of the videos (cached) so the Blender "
                                        "cameras match them exactly")
    bone_meshes: BoolProperty(name="Bone meshes", default=True)
    calibration_file: StringProperty(name="Calibration", subtype="FILE_PATH")
    markers_file: StringProperty(name="Markers", subtype="FILE_PATH", description=".trc or .c3d")
    osim_file: StringProperty(name="Model", subtype="FILE_PATH", description="scaled .osim")
    mot_file: StringProperty(name="Motion", subtype="FILE_PATH", description=".mot from inverse kinematics")
    last_error: StringProperty(name="Last error", default="")

    def overrides(self) -> dict:
        """The panel's choices as Config.toml overrides (UI layer on top of session and trial)."""
        return {
            "pose": {"mode": self.pose_mode, "backend": self.pose_backend},
            "project": {"multi_person": self.multi_person},
            "filtering": {"type": self.filter_type},
            "kinematics": {"use_simple_model": self.simple_model},
        }


CLASSES = (OPENKIN_PG_settings,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.openkin = bpy.props.PointerProperty(type=OPENKIN_PG_settings)


def unregister():
    del bpy.types.Scene.openkin
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

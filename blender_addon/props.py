"""Settings shown in the panel (``scene.openkin``)."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, StringProperty

def _stage_items() -> list[tuple[str, str, str]]:
    """The engine's stages in pipeline order (``openkin.cli.STAGES``: what ``openkin run`` runs)."""
    from openkin.cli import STAGES

    return [(s.name, s.name.capitalize(), s.help) for s in STAGES]


STAGE_ITEMS = _stage_items()
FILTER_ITEMS = [(v, v.replace("_", " ").capitalize(), "") for v in (
    "butterworth", "kalman", "one_euro", "gcv_spline", "acc_minimizing", "gaussian", "LOESS", "median",
    "butterworth_on_speed")]
POSE_MODE_ITEMS = [("lightweight", "Lightweight", "Fastest pose models"), ("balanced", "Balanced", ""),
                   ("performance", "Performance", "Most accurate, slowest")]
BACKEND_ITEMS = [("auto", "Auto", "Best available"), ("onnxruntime", "ONNX Runtime", ""),
                 ("openvino", "OpenVINO", ""), ("opencv", "OpenCV", "")]

# Panel option → (Config.toml section, key). The panel shows these; Run sends as overrides
# only the ones the user changed in the panel (the project's Config.toml decides the rest).
OPTIONS = {
    "pose_mode": ("pose", "mode"),
    "pose_backend": ("pose", "backend"),
    "multi_person": ("project", "multi_person"),
    "filter_type": ("filtering", "type"),
    "simple_model": ("kinematics", "use_simple_model"),
}


def _config_value(config, option: str):
    section, key = OPTIONS[option]
    return getattr(getattr(config, section), key)


def _engine_defaults() -> dict:
    """The panel's defaults: the engine's own (``openkin.config.default_config()``)."""
    from openkin.config import default_config

    config = default_config()
    return {name: _config_value(config, name) for name in OPTIONS}


DEFAULTS = _engine_defaults()


def _enum_default(items, value) -> str:
    names = [i[0] for i in items]
    return value if value in names else names[0]


_LOADING = {"active": False}   # True while the panel shows a project's values (not user changes)


def _mark_changed(name: str):
    def update(self, context) -> None:
        if _LOADING["active"]:
            return
        changed = set(filter(None, self.changed_options.split(",")))
        changed.add(name)
        self.changed_options = ",".join(sorted(changed))
    return update


def _load_project_options(self, context) -> None:
    """When a project is chosen, show its own Config.toml choices; none counts as changed."""
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
    _LOADING["active"] = True
    try:
        for name in OPTIONS:
            try:
                setattr(self, name, _config_value(config, name))
            except TypeError:  # e.g. a custom pose mode the panel does not list: keep the panel's
                pass
        self.changed_options = ""
    finally:
        _LOADING["active"] = False


class OPENKIN_PG_warning(bpy.types.PropertyGroup):
    text: StringProperty(name="Warning")


class OPENKIN_PG_settings(bpy.types.PropertyGroup):
    project_dir: StringProperty(name="Project", subtype="DIR_PATH", update=_load_project_options,
                                description="Trial folder (holds Config.toml, calibration/, videos/)")
    new_videos_dir: StringProperty(name="Videos", subtype="DIR_PATH",
                                   description="Folder of the videos of a new project (one per camera)")
    new_calibration: StringProperty(name="Calibration", subtype="FILE_PATH",
                                    description="Calibration file of a new project (Pose2Sim .toml, or a file to convert)")
    pose_mode: EnumProperty(name="Pose mode", default=_enum_default(POSE_MODE_ITEMS, DEFAULTS["pose_mode"]),
                            items=POSE_MODE_ITEMS, update=_mark_changed("pose_mode"))
    pose_backend: EnumProperty(name="Backend", default=_enum_default(BACKEND_ITEMS, DEFAULTS["pose_backend"]),
                               items=BACKEND_ITEMS, update=_mark_changed("pose_backend"))
    multi_person: BoolProperty(name="Several people", default=bool(DEFAULTS["multi_person"]),
                               update=_mark_changed("multi_person"))
    filter_type: EnumProperty(name="Filter", default=_enum_default(FILTER_ITEMS, DEFAULTS["filter_type"]),
                              items=FILTER_ITEMS, update=_mark_changed("filter_type"))
    simple_model: BoolProperty(name="Simple model", default=bool(DEFAULTS["simple_model"]),
                               description="OpenSim model without muscles (faster); off: the full model",
                               update=_mark_changed("simple_model"))
    changed_options: StringProperty(name="Changed options", default="", options={"HIDDEN"},
                                    description="Options changed in the panel (sent to Run as overrides)")
    stage: EnumProperty(name="Stage", items=STAGE_ITEMS, default="triangulation")
    # import
    marker_radius: FloatProperty(name="Marker size", default=0.02, min=0.001, max=0.2, unit="LENGTH")
    undistort: BoolProperty(name="Undistort videos", default=True,
                            description="Show lens-undistorted copies of the videos (cached) so the Blender "
                                        "cameras match them exactly")
    bone_meshes: BoolProperty(name="Bone meshes", default=True)
    animation_skeleton: BoolProperty(name="Animation skeleton", default=True,
                                     description="Also build a humanoid animation armature (.L/.R, -Y forward)")
    rest_pose: EnumProperty(name="Rest pose", items=(("T", "T pose", ""), ("A", "A pose", "")), default="T")
    root_bone: BoolProperty(name="Root bone", default=True, description="Root motion on a root bone (off: on hips)")
    keep_previous: BoolProperty(name="Keep previous import", default=False,
                                description="Import the capture again next to the previous import of it "
                                            "(off: the new import replaces it)")
    import_warnings: CollectionProperty(type=OPENKIN_PG_warning)
    calibration_file: StringProperty(name="Calibration", subtype="FILE_PATH")
    markers_file: StringProperty(name="Markers", subtype="FILE_PATH", description=".trc or .c3d")
    osim_file: StringProperty(name="Model", subtype="FILE_PATH", description="scaled .osim")
    mot_file: StringProperty(name="Motion", subtype="FILE_PATH", description=".mot from inverse kinematics")
    last_error: StringProperty(name="Last error", default="")

    def changed(self) -> list[str]:
        """Options the user changed in the panel (since the project was chosen)."""
        return [n for n in self.changed_options.split(",") if n in OPTIONS]

    def overrides(self) -> dict:
        """The options changed in the panel as Config.toml overrides (UI layer on top of session
        and trial); options left alone are not sent, so the project's Config.toml decides them."""
        out: dict = {}
        for name in self.changed():
            section, key = OPTIONS[name]
            out.setdefault(section, {})[key] = getattr(self, name)
        return out

    def set_warnings(self, lines: list[str]) -> None:
        self.import_warnings.clear()
        for line in lines:
            self.import_warnings.add().text = line


CLASSES = (OPENKIN_PG_warning, OPENKIN_PG_settings)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.openkin = bpy.props.PointerProperty(type=OPENKIN_PG_settings)


def unregister():
    del bpy.types.Scene.openkin
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

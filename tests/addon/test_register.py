"""The extension registers and unregisters cleanly, and twice in a row."""
import bpy

from addon_helpers import addon, fresh_scene  # noqa: F401  (fixtures)

OPERATORS = ("run", "demo", "new_project", "cancel", "import_project", "import_files", "marker_rays", "look_through")


def _registered():
    return {name: hasattr(bpy.types, f"OPENKIN_OT_{name}") for name in OPERATORS}


def test_register_unregister_twice():
    import blender_addon

    fresh_scene()
    for _ in range(2):
        handlers_before = len(bpy.app.handlers.depsgraph_update_post)
        blender_addon.register()
        assert all(_registered().values())
        assert hasattr(bpy.types, "OPENKIN_PT_main")
        assert bpy.context.scene.openkin.rna_type.identifier == "OPENKIN_PG_settings"
        assert bpy.context.scene.openkin.filter_type == "butterworth"
        assert len(bpy.app.handlers.depsgraph_update_post) == handlers_before + 1
        blender_addon.unregister()
        assert not any(_registered().values())
        assert not hasattr(bpy.types, "OPENKIN_PT_main")
        assert not hasattr(bpy.types.Scene, "openkin")
        assert len(bpy.app.handlers.depsgraph_update_post) == handlers_before


def test_panel_options_become_config_overrides(addon):
    from openkin.config import load_config

    s = bpy.context.scene.openkin
    s.filter_type, s.multi_person, s.simple_model, s.pose_mode = "kalman", True, False, "lightweight"
    config = load_config(".", overrides=s.overrides())
    assert config.filtering.type == "kalman"
    assert config.project.multi_person is True
    assert config.kinematics.use_simple_model is False
    assert config.pose.mode == "lightweight"


def test_choosing_a_project_shows_its_config(addon, tmp_path):
    """The panel shows the project's choices, and sends none of them back as overrides (it used
    to send all five panel fields, overriding the project's Config.toml)."""
    (tmp_path / "Config.toml").write_text("[project]\nmulti_person = true\n[filtering]\ntype = 'kalman'\n")
    s = bpy.context.scene.openkin
    s.project_dir = str(tmp_path)
    assert s.multi_person is True and s.filter_type == "kalman"
    assert s.overrides() == {}


def test_only_changed_options_override_the_project(addon, tmp_path):
    """Run sends only what the user changed in the panel; the project's Config.toml decides the rest."""
    from openkin.config import load_config

    (tmp_path / "Config.toml").write_text("[filtering]\ntype = 'kalman'\n[kinematics]\nuse_simple_model = true\n"
                                          "[pose]\nmode = 'performance'\n")
    s = bpy.context.scene.openkin
    s.project_dir = str(tmp_path)
    s.multi_person = True
    assert s.overrides() == {"project": {"multi_person": True}}
    # the project's file changes after it was chosen: the panel's stale values are not sent
    (tmp_path / "Config.toml").write_text("[filtering]\ntype = 'gaussian'\n[kinematics]\nuse_simple_model = true\n")
    config = load_config(tmp_path, overrides=s.overrides())
    assert config.filtering.type == "gaussian" and config.pose.mode == "balanced"
    assert config.kinematics.use_simple_model is True and config.project.multi_person is True
    # choosing the project again shows its values and forgets the changes
    s.project_dir = str(tmp_path)
    assert s.overrides() == {} and s.filter_type == "gaussian"


def test_panel_defaults_are_the_engines(addon):
    """A new scene's panel shows openkin.config.default_config() (it defaulted to the simple
    model while the engine defaults to the full one)."""
    from openkin.config import default_config

    d = default_config()
    s = bpy.context.scene.openkin
    assert (s.pose_mode, s.pose_backend, s.multi_person, s.filter_type, s.simple_model) == (
        d.pose.mode, d.pose.backend, d.project.multi_person, d.filtering.type, d.kinematics.use_simple_model)
    assert s.simple_model is False and s.overrides() == {}


def test_run_all_runs_the_cli_stages(addon):
    """Run All's stage list is the engine's registry, refinement included (panel results = `openkin run`)."""
    from blender_addon.operators import run_stage_names
    from openkin.cli import STAGES, build_parser

    assert run_stage_names("ALL", "pose") == [st.name for st in STAGES]
    assert "refinement" in run_stage_names("ALL", "pose")
    items = bpy.context.scene.openkin.bl_rna.properties["stage"].enum_items.keys()
    assert list(items) == [st.name for st in STAGES]
    # and every stage the panel lists is a subcommand of the CLI
    sub = build_parser()._subparsers._group_actions[0].choices
    assert set(items) <= set(sub)

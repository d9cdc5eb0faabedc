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
    (tmp_path / "Config.toml").write_text("[project]\nmulti_person = true\n[filtering]\ntype = 'kalman'\n")
    s = bpy.context.scene.openkin
    s.project_dir = str(tmp_path)
    assert s.multi_person is True and s.filter_type == "kalman"
    assert s.overrides()["project"]["multi_person"] is True

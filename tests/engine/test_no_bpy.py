"""The engine imports and runs without Blender."""
import importlib
import pkgutil

import pytest

import openkin


def test_bpy_is_blocked_in_engine_tests():
    with pytest.raises(ModuleNotFoundError):
        import bpy  # noqa: F401


def test_every_engine_module_imports_without_bpy():
    names = [m.name for m in pkgutil.walk_packages(openkin.__path__, "openkin.")]
    assert "openkin.cli" in names
    for name in names:
        importlib.import_module(name)

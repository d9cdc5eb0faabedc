"""Engine tests run with Blender's modules made unimportable: the engine must never need bpy."""
import importlib.abc
import sys

BLOCKED = ("bpy", "bpy_extras", "mathutils", "bmesh")


class _BlockBlender(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked for engine tests)", name=fullname)
        return None


def pytest_configure(config):
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            raise RuntimeError("bpy was imported before the engine tests started; run tests/engine in its own pytest process")
    sys.meta_path.insert(0, _BlockBlender())

"""Bone-map presets: JSON files the user edits, saved in Blender's user config
(``<config>/openkin/retarget_presets/<name>.json``) or anywhere (e.g. next to the .blend)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from openkin.errors import OpenKinError

from .bonemap import BoneMap

log = logging.getLogger(__name__)


def preset_dir() -> Path:
    """Blender's user config folder for OpenKin's bone-map presets."""
    import bpy

    return Path(bpy.utils.user_resource("CONFIG", path="openkin/retarget_presets", create=True))


def blend_dir() -> Path | None:
    """The folder of the open .blend (None while it is unsaved)."""
    import bpy

    return Path(bpy.path.abspath("//")) if bpy.data.filepath else None


def _path(path_or_name: str | Path | None, bone_map: BoneMap | None = None, *, beside_blend: bool = False) -> Path:
    """A preset path: a given path as it is; a bare name → ``<name>.json`` next to the .blend
    when one exists there (or ``beside_blend``), else in the user config folder."""
    if path_or_name is None:
        path_or_name = (bone_map.armature if bone_map else "") or "bone_map"
    p = Path(path_or_name)
    if p.suffix.lower() == ".json" or p.parent != Path("."):
        return p
    here = blend_dir()
    if here is not None and (beside_blend or (here / f"{p.name}.json").is_file()):
        return here / f"{p.name}.json"
    return preset_dir() / f"{p.name}.json"


def list_presets() -> list[Path]:
    """Presets next to the .blend, then in the user config folder."""
    here = blend_dir()
    found = sorted(here.glob("*.json")) if here else []
    return [p for p in found if _is_preset(p)] + sorted(preset_dir().glob("*.json"))


def _is_preset(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")).get("bones"), dict)
    except (OSError, ValueError, AttributeError):
        return False


def save_preset(bone_map: BoneMap, path: str | Path | None = None, *, beside_blend: bool = False) -> Path:
    """Write ``bone_map`` as JSON ({"armature", "convention", "bones": {humanoid: target}}) →
    the file written. ``path``: a file, or a name (default: the armature's) saved in the user
    config folder, or next to the saved .blend with ``beside_blend``."""
    out = _path(path, bone_map, beside_blend=beside_blend)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(bone_map.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)
    log.info("bone-map preset written: %s", out)
    return out


def load_preset(path_or_name: str | Path) -> BoneMap:
    """Read a preset written by :func:`save_preset` (or by hand): a path, or a preset's name
    (next to the .blend first, then in the user config folder)."""
    path = _path(path_or_name)
    if not path.is_file():
        raise OpenKinError("bone-map preset not found", path=path,
                           fix=f"save one with save_preset, or give the path of a .json preset (folder {preset_dir()})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpenKinError(f"bone-map preset is not valid JSON ({exc})", path=path,
                           fix='write {"bones": {"<humanoid bone>": "<target bone>", ...}}') from exc
    if not isinstance(data, dict) or not isinstance(data.get("bones"), dict):
        raise OpenKinError("bone-map preset has no \"bones\" table", path=path,
                           fix='write {"bones": {"<humanoid bone>": "<target bone>", ...}}')
    return BoneMap.from_dict(data)

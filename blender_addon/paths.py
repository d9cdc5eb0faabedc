"""Where the add-on keeps caches and jobs."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE = __package__


def data_dir(sub: str) -> Path:
    """``extension_path_user(__package__, sub)`` when installed as an extension; else (running
    from a source checkout) ``$OPENKIN_CACHE/blender/sub`` or ``~/.cache/openkin/blender/sub``."""
    import bpy

    try:
        path = bpy.utils.extension_path_user(PACKAGE, path=sub, create=True)
    except ValueError:  # not an extension (e.g. a checkout on sys.path, the tests)
        path = ""
    if path:
        return Path(path)
    base = Path(os.environ.get("OPENKIN_CACHE") or Path.home() / ".cache" / "openkin")
    out = base / "blender" / sub
    out.mkdir(parents=True, exist_ok=True)
    return out

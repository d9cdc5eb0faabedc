"""Camera-placement planner (``openkin plan``): before a shoot, will the cameras see the
actor everywhere in the volume, and how accurate will the 3D be?

Modules: :mod:`.presets` (lens table), :mod:`.layout` (cameras from a calibration or a
layout TOML), :mod:`.volume` (capture volume and grid), :mod:`.kernel` (visibility, ray
angles, expected triangulation error: vectorised, the error model is in its docstring),
:mod:`.optimise` (where to add or move a camera), :mod:`.motion` (per joint along an actor's
motion, with self-occlusion), :mod:`.actor` (a capsule stand-in for the Blender view), :mod:`.figures` (top-view PNG),
:mod:`.command` (the CLI). Camera geometry comes from :mod:`._geometry` only.
A tool-level package: it imports base modules (errors, fileio, formats, triangulation kernels).
"""
from __future__ import annotations

import importlib

from .command import add_arguments, main  # noqa: F401  (the CLI's tool-module convention; light imports)

# The rest loads on first use (OpenCV comes with the kernel): `openkin --help` stays fast.
_LAZY = {"PlanResult": "kernel", "PlanSettings": "kernel", "camera_terms": "kernel", "evaluate": "kernel",
         "evaluate_terms": "kernel", "Setup": "layout", "load_setup": "layout", "make_camera": "layout",
         "PRESETS": "presets", "get_preset": "presets", "intrinsics": "presets", "Grid": "volume",
         "Volume": "volume", "box_volume": "volume", "default_volume": "volume", "make_grid": "volume",
         "polygon_volume": "volume", "suggest": "optimise", "plan_motion": "motion"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

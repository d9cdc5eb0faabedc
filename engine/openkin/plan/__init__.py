"""Camera-placement planner (``openkin plan``): before a shoot, will the cameras see the
actor everywhere in the volume, and how accurate will the 3D be?

Modules: :mod:`.presets` (lens table), :mod:`.layout` (cameras from a calibration or a
layout TOML), :mod:`.volume` (capture volume and grid), :mod:`.kernel` (visibility, ray
angles, expected triangulation error: vectorised, the error model is in its docstring),
:mod:`.optimise` (where to add or move a camera), :mod:`.figures` (top-view PNG),
:mod:`.command` (the CLI). Camera geometry comes from :mod:`._geometry` only.
A tool-level package: it imports base modules (errors, fileio, formats, triangulation kernels).
"""
from __future__ import annotations

from .command import add_arguments, main  # noqa: F401  (the CLI's tool-module convention)
from .kernel import PlanResult, PlanSettings, camera_terms, evaluate, evaluate_terms  # noqa: F401
from .layout import Setup, load_setup, make_camera  # noqa: F401
from .presets import PRESETS, get_preset, intrinsics  # noqa: F401
from .volume import Grid, Volume, box_volume, default_volume, make_grid, polygon_volume  # noqa: F401

"""Compatibility re-export: the robust triangulation moved to :mod:`openkin.geometry.robust`.

Kept only for modules that still import it from here (association, benchmarks); to be removed
once those are repointed.
"""
from __future__ import annotations

from ..geometry.robust import RobustResult, triangulate_robust  # noqa: F401

"""The one place the planner takes camera geometry from (the lead repoints these imports
when the ``openkin.geometry`` package lands).

- ``Camera``, ``read_calibration``, ``project_points`` (with distortion),
  ``projection_matrices`` (C, 3, 4) ``K [R | t]``, ``rotation_vector``;
- ``convert_calibration`` for other systems' files (Qualisys ``.qca.txt``, ...);
- ``triangulate_dlt`` and ``triangulate_robust``: the project's triangulation, which the
  planner's error model describes and its tests check against.
"""
from __future__ import annotations

from ..formats.calib_converters import convert_calibration  # noqa: F401
from ..formats.calibration import (Camera, project_points, projection_matrices, read_calibration,  # noqa: F401
                                   rotation_vector)
from ..triangulation.geometry import triangulate_dlt  # noqa: F401
from ..triangulation.robust import triangulate_robust  # noqa: F401

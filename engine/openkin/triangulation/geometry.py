"""Compatibility re-exports: the kernels moved to :mod:`openkin.geometry` (one geometry core).

Kept only for modules that still import them from here (association, refinement, benchmarks);
new code imports :mod:`openkin.geometry`. To be removed once those are repointed.
"""
from __future__ import annotations

from ..geometry.blas import blas_single, single_thread_blas  # noqa: F401
from ..geometry.camera import projection_matrices  # noqa: F401
from ..geometry.projection import project, project_each, reprojection_errors  # noqa: F401
from ..geometry.projection import project_homogeneous as _homogeneous  # noqa: F401
from ..geometry.rays import camera_centers, ray_directions, ray_distance  # noqa: F401
from ..geometry.triangulate import fill_nan, finite_xy, triangulate_dlt, triangulate_dlt_svd  # noqa: F401
from ..geometry.undistort import undistort_points  # noqa: F401

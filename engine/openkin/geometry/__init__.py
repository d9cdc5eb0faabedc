"""OpenKin's one geometry core: every stage and the Blender add-on use it, nothing else projects.

Base layer: imports only numpy, scipy, OpenCV and :mod:`openkin.errors`.

* :mod:`.camera` — :class:`Camera` (OpenCV pinhole + Brown-Conrady, or fisheye), :class:`Rig`
  (cameras as arrays), ``projection_matrices``.
* :mod:`.projection` — projection through the lens (``project_points``, OpenCV) and the ideal
  pinhole (``project``, ``project_linear``), depths, ``reprojection_errors``, ``mean_view_error``.
* :mod:`.undistort` — ``undistort_points`` of arrays (fast Brown-Conrady fixed point, cv2.fisheye).
* :mod:`.triangulate` — weighted DLT; :mod:`.robust` — DLT with drop-worst-view rejection.
* :mod:`.rays` — camera centres, viewing rays, distances between rays.
* :mod:`.axes` — Z-up world ↔ Y-up TRC/OpenSim ↔ OpenCV camera ↔ Blender camera.
* :mod:`.rotations` — Rodrigues, matrices, Euler X-Y-Z, quaternions (scipy).

Shapes: ``C`` cameras, ``N`` points, ``F`` frames, ``K`` keypoints; pixels and metres.
"""
from __future__ import annotations

from .axes import (CV_TO_BLENDER_CAM, YUP_TO_ZUP, ZUP_TO_YUP, blender_camera_matrix_world, camera_to_world,
                   homogeneous, yup_to_zup, yup_to_zup_transforms, zup_to_yup)
from .blas import blas_single, single_thread_blas
from .camera import Camera, Rig, camera_projections, projection_matrices
from .projection import (camera_depths, mean_view_error, project, project_each, project_homogeneous,
                         project_linear, project_points, project_points_all, reprojection_errors)
from .rays import camera_centers, projection_centers, ray_directions, ray_distance
from .robust import RobustResult, triangulate_robust
from .rotations import euler_xyz_to_matrix, matrix_to_quaternion, rotation_matrix, rotation_vector
from .triangulate import fill_nan, finite_xy, triangulate_dlt, triangulate_dlt_svd
from .undistort import undistort_camera_points, undistort_points

__all__ = [
    "CV_TO_BLENDER_CAM", "YUP_TO_ZUP", "ZUP_TO_YUP", "blender_camera_matrix_world", "camera_to_world",
    "homogeneous", "yup_to_zup", "yup_to_zup_transforms", "zup_to_yup",
    "blas_single", "single_thread_blas",
    "Camera", "Rig", "camera_projections", "projection_matrices",
    "camera_depths", "mean_view_error", "project", "project_each", "project_homogeneous", "project_linear",
    "project_points", "project_points_all", "reprojection_errors",
    "camera_centers", "projection_centers", "ray_directions", "ray_distance",
    "RobustResult", "triangulate_robust",
    "euler_xyz_to_matrix", "matrix_to_quaternion", "rotation_matrix", "rotation_vector",
    "fill_nan", "finite_xy", "triangulate_dlt", "triangulate_dlt_svd",
    "undistort_camera_points", "undistort_points",
]

"""Triangulation: 3D keypoints of each person from associated 2D keypoints.

Kernels (pure arrays, shapes in their docstrings): :mod:`.geometry` (projection,
undistortion, likelihood-weighted DLT, rays), :mod:`.robust` (drop-worst-view
rejection, no camera-subset enumeration), :mod:`.swaps` (left/right swap
correction per camera and frame), :mod:`.gaps` (interpolation, sections, fill),
:mod:`.core` (one person, all of them in order). :mod:`.stage` is the file shell.

Input (:func:`.stage.load_people`): the association of this run (in memory, from the run
context), else the folders the association's record in the run manifest names, else the
current ``pose-sync/`` or ``pose/`` (people associated on the fly); the calibration the run
context names (refined or not); ``[triangulation]`` settings.

Outputs in ``pose-3d/``, as Pose2Sim names them:

* ``<trial>_<first>-<last>.trc`` (multi-person: ``<trial>_P<n>_<first>-<last>.trc``,
  n from 0), Y-up metres as Pose2Sim writes them (x = world y, y = world z,
  z = world x of the Z-up calibration world), plus a ``.c3d`` if ``make_c3d``;
  outputs of this stage's earlier run that this run did not rewrite (another frame
  range, another trial name) are moved into ``openkin/stale/`` (:mod:`openkin.manifest`);
* ``triangulation_report.json``::

    {"version": 1, "trial": str, "source": "pose-associated"|"pose-sync"|"pose",
     "frame_rate": float, "cameras": [str], "keypoints": [str],
     "settings": {...}, "undistort_points": bool, "seconds": float,
     "persons": [{"person": int, "files": [str],
                  "frame_range": [first, last], "n_frames": int,
                  "reprojection_error_px": float, "reprojection_error_mm": float,
                  "cameras_excluded_mean": float,   # per triangulated point
                  "keypoints": {name: {"reprojection_error_px", "reprojection_error_mm",
                                       "cameras_excluded_mean", "frames_triangulated",
                                       "frames_interpolated",
                                       "interpolated_ranges": [[first, last], ...]}},
                  "cameras": {name: {"excluded_rate",   # share of its detections rejected
                                     "detected_rate",   # share of (frame, keypoint) it saw
                                     "lr_swaps_corrected_frames"}}}]}

  Errors in mm are px × depth / focal length at each point (mean over cameras);
  statistics cover the kept frames; ``null`` where undefined.

Degenerate inputs: fewer than two calibrated cameras, or fewer than two cameras
with any detection → :class:`~openkin.errors.OpenKinError`; a camera without
detections is ignored with a warning; keypoints seen by fewer than two cameras
(all-NaN, or cameras nearly collinear so the rays do not cross: singular normal
equations) stay NaN and become gaps; a person with no run of ``min_chunk_size``
valid frames is not written (warning); nobody written → ``OpenKinError``.
"""
from __future__ import annotations

from .core import PersonResult, TriangulationParams, reconstruct_person

__all__ = ["PersonResult", "TriangulationParams", "reconstruct_person", "run", "run_stage"]


def __getattr__(name: str):
    """The stage shell (``run``, ``run_stage``) on first use: the kernels (core, geometry, robust),
    which earlier stages use, import without it."""
    if name in ("run", "run_stage"):
        from . import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

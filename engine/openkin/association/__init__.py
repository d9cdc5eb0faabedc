"""Person association: which 2D detection is which person, in every camera and frame.

Single person (``[project] multi_person = false``), Pose2Sim's idea made vectorised:
for every frame, hypotheses are pairs of detections in two cameras; each is
triangulated on the ``tracked_keypoint`` and reprojected in every camera, where
the nearest detection within ``reproj_error_threshold_association`` px counts as
an inlier. The hypothesis with most inliers (then least error) wins; a camera
without an inlier keeps no one. Where two people tie, the one closest to the
previous frame's choice is kept, so the chosen person does not flip. A camera
that sees a single detection keeps it (bad keypoints are the triangulation's job,
unlike Pose2Sim, which drops the whole view when the tracked keypoint is off).

Multi-person: tracking in 3D with stable identities. Each frame, every live
person's skeleton (last position, plus its velocity if ``predict_displacement``)
is projected into each camera and matched to the detections with the Hungarian
algorithm (cost: confidence-weighted mean keypoint distance in px, expressed in
metres at the person's depth and gated at half ``max_distance_m``; a detection with
a single usable keypoint may match, as a person at the image edge shows few); matched
people are re-triangulated, all people of a frame in one robust DLT call. Detections left over in several cameras are grouped
by the distance between their keypoint rays (mean ≤ (1 - ``min_affinity``) ×
``reconstruction_error_threshold`` m, one detection per camera per group); a
group seen by ``min_cameras_for_triangulation`` cameras becomes a person: an
earlier one unseen for at most ``max_unseen_frames`` frames and within
``max_distance_m`` takes it back, otherwise a new identity starts. People seen in
fewer than ``min_chunk_size`` frames are dropped.

Output: ``pose-associated/<cam>_json/`` in Pose2Sim's layout (person slot n =
person n in every camera and frame; empty slots written as zeros; a frame whose only
detection is kept as person 0 is a hard link to its input file, see ``writer._link_unchanged``); the
:class:`Association` itself goes into the run context (``ctx.association``), which
:mod:`openkin.triangulation` takes when it runs next in the same run (reading thousands of
JSON files again would take longer than the whole reconstruction).

Modules: :mod:`.kernels` (arrays in, slots out), :mod:`.writer` (Pose2Sim JSON folders),
:mod:`.stage` (the stage shell: run context, manifest).

Shapes: ``C`` cameras, ``F`` frames, ``P`` detection slots, ``K`` keypoints, ``T`` people.
"""
from __future__ import annotations

from .kernels import (Association, AssociationParams, associate, associate_multi, associate_single,
                      params_from_config)
from .stage import STAMP, run, run_stage
from .writer import write_associated

__all__ = ["Association", "AssociationParams", "STAMP", "associate", "associate_multi", "associate_single",
           "params_from_config", "run", "run_stage", "write_associated"]

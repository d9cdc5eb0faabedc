"""Synchronization: per-camera time offsets from the motion of 2D keypoints.

Two ways to measure the offset of each pair of cameras, both sub-frame:

- **epipolar** (default when ``calibration/`` has a calibration): at the right
  offset every keypoint of camera j lies on the epipolar line of the same
  keypoint of camera i. Every lag is scored by the robust (truncated) mean
  point-to-line distance, all frames and keypoints at once; the best integer
  lag is refined on quarter frames (camera i interpolated in time) with the
  distances detrended per keypoint (a calibration error biases them slowly, an
  offset makes them follow the limbs). Several people: each person of j is
  matched to the person of i that fits it best, frame by frame. Robust to
  detector noise, outliers, left/right swaps and to views that see a movement
  differently.
- **correlation** (Pose2Sim's idea, used without a calibration): cameras see
  the same vertical movements at the same instants. Signal: the sum over
  keypoints of |vertical speed| (Pose2Sim's), divided by the person's image
  height (walking towards a camera no longer looks like speeding up); pooled
  Pearson correlation at every lag by FFT with gaps masked; a parabola through
  the peak.

In sync unless shown otherwise (epipolar method): when every offset found is
small (within 3 frames), the offsets must explain the views clearly better than
no offsets at all -- per pair, detrended epipolar costs at the found lag against
lag 0 (interpolated alike) in 0.25 s blocks, the pairs' t-statistics combined
(Stouffer's Z >= 3) and a relative cost gain >= 3 % -- else every camera is set
to 0. Real detectors' biases fit a lag of a frame or two slightly better (on
Pose2Sim's hardware-synchronised demo, BlazePose detections gave offsets of
-0.85 to +0.37 frames before this test; gain under 1 %), while a true offset of
a frame or more under realistic detector noise gives Z >= 5 and gains >= 5 %.
``pose-sync/offsets.toml`` keeps the test's figures under ``[in_sync_test]``.

Both: 2D tracks cleaned first (likelihood threshold, short gaps interpolated,
Hampel spikes removed, Butterworth ``filter_cutoff``/``filter_order``); every
camera pair measured and the offsets solved by weighted least squares over all
pairs, dropping pairs that disagree (more robust than one reference camera); a
confidence per camera; warnings when a camera sees too little motion or its
offset is uncertain.

Convention (as ``truth/offsets.toml`` of ``openkin synth``): camera c's frame k
shows the same instant as reference frame ``k + offset_c``; synchronising
renames frame k to ``k + round(offset_c)`` (Pose2Sim renames and copies the
JSON files the same way; frames that would become negative are dropped). The
reference camera (offset 0) is the one with the fewest frames, as in Pose2Sim.
``pose-sync/offsets.toml`` keeps the fractional offset, the integer shift
applied and the residual, so later stages may interpolate the rest
(:func:`read_offsets`).

Long takes (a 10-minute 8-camera take: 288,000 pose files): each camera folder is parsed
once (the keypoint cache the run manifest's hash fills; ``pose-sync/``'s cache is seeded from
``pose/``'s, its files being hard links of the same contents); the integer lag scan scores
~300 frames per lag and goes coarse to fine beyond 2,001 lags; the sub-frame refinement uses
the middle 2 minutes of each pair's overlap. Time and memory grow linearly with frames and
with cameras (each camera measured against 4 others beyond 9 cameras).

Modules: :mod:`.signals` (tracks, speeds), :mod:`.correlation`, :mod:`.epipolar`,
:mod:`.solve` (pairs -> offsets, :func:`synchronize`), :mod:`.stage` (files).
"""
from __future__ import annotations

from .correlation import Peak, correlation_pair, find_peak, lagged_correlation
from .epipolar import epipolar_cost, fundamental_matrix, geometric_offset, signed_epipolar_distances
from .signals import (fill_short_gaps, image_height, motion_level, prepare_people, prepare_tracks, select_person,
                      speed_signal)
from .solve import (SyncResult, camera_pairs, combine_pairs, pairwise_offsets, prefer_synchronised, solve_offsets,
                    synchronised_rig_test, synchronize)
from .stage import (CONVENTION, clip_to_frame_range, keypoint_ids, offsets_table, read_offsets, run, run_stage,
                    search_windows, shifted_name, write_outputs, write_shifted)

__all__ = ["CONVENTION", "Peak", "SyncResult", "camera_pairs", "clip_to_frame_range", "combine_pairs",
           "correlation_pair", "epipolar_cost", "fill_short_gaps", "find_peak", "fundamental_matrix",
           "geometric_offset", "image_height", "keypoint_ids", "lagged_correlation", "motion_level",
           "offsets_table", "pairwise_offsets", "prefer_synchronised", "prepare_people", "prepare_tracks", "read_offsets", "run",
           "run_stage",
           "search_windows", "select_person", "shifted_name", "signed_epipolar_distances", "solve_offsets",
           "speed_signal", "synchronised_rig_test", "synchronize", "write_outputs", "write_shifted"]

"""The association stage shell: the current 2D poses in, ``pose-associated/<cam>_json`` out.

Reads the folders the run manifest names (``pose-sync/`` when synchronisation's record is
current, else ``pose/``), associates, writes, records the folders and a summary, and leaves
the :class:`~openkin.association.kernels.Association` in the run context for triangulation.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..context import RunContext, run_alone
from ..errors import OpenKinError
from ..inputs import camera_name, read_views, skeleton_of
from ..progress import Progress, report, scaled
from .kernels import associate, params_from_config
from .writer import write_associated
from ..edits import PERSON_KINDS, apply_person_edits, edits_path, read_edits

log = logging.getLogger(__name__)

# No longer written: the association of a run travels in the run context, not in a module cache
# keyed on a stamp file. Kept so that code naming it still imports.
STAMP = ".openkin-association"


def run(ctx: RunContext) -> None:
    """Associate the people of the current 2D poses into ``pose-associated/`` (see module doc)."""
    config, paths, progress = ctx.config, ctx.paths, ctx.progress
    t0 = time.perf_counter()
    source = ctx.pose_source()
    if source is None:
        raise OpenKinError("the 2D poses of this project are not current (their stage failed or must run again)",
                           path=paths.pose, fix="run the pose (and synchronization) stages, then association")
    src, producer = source
    views = read_views(src, ctx.calibration, config.project.frame_range, scaled(progress, 0.0, 0.3),
                       units=config.calibration.units)
    for folder in views.folders:
        ctx.read(folder, producer)
    ctx.read(ctx.calibration, "refinement" if ctx.manifest.done("refinement") else "calibration")
    names = list(skeleton_of(config).names)
    if views.keypoints.shape[3] != len(names):
        raise OpenKinError(f"pose files have {views.keypoints.shape[3]} keypoints but pose_model "
                           f"{config.pose.pose_model!r} has {len(names)}", path=src,
                           fix="set [pose] pose_model to the model that made these files")
    assoc = associate(views, params_from_config(config, names), config.project.multi_person,
                      scaled(progress, 0.3, 0.7))
    edits = [e for e in read_edits(paths.root) if e.kind in PERSON_KINDS]
    if edits:  # the user's corrections of who is who (openkin edit --person/--merge/--split)
        ctx.read(edits_path(paths.root))
        log.info("honouring %d person edit(s): %s", len(edits), "; ".join(e.describe() for e in edits))
        assoc.choice = apply_person_edits(assoc.choice, [camera_name(f) for f in views.folders],
                                          views.frame_numbers, edits, edits_path(paths.root))
        ctx.summary["edits"] = [e.id for e in edits]
    for folder in write_associated(assoc, paths.pose_associated, scaled(progress, 0.7, 1.0)):
        ctx.wrote(folder, "camera")
    ctx.association = assoc
    seen = (assoc.choice >= 0).mean(axis=(1, 2)) if assoc.choice.size else np.zeros(0)
    ctx.summary.update(people=int(assoc.choice.shape[0]), multi_person=bool(assoc.multi),
                       frames=int(len(views.frame_numbers)), source=src.name, source_stage=producer,
                       cameras=[camera_name(f) for f in views.folders],
                       seen_share=[round(float(s), 4) for s in seen])
    log.info("associated %d %s over %d frames from %s in %.2f s (share of camera-frames seen: %s)",
             assoc.choice.shape[0], "people" if assoc.multi else "person", len(views.frame_numbers), src.name,
             time.perf_counter() - t0, ", ".join(f"{s:.0%}" for s in seen))
    report(progress, 1.0, "association done")


def run_stage(config, paths, progress: Progress | None = None) -> None:
    """The stage run by itself (recorded in the run manifest like a stage of ``openkin run``)."""
    run_alone("association", run, config, paths, progress)

"""The frame rate of a project, resolved once per run (:class:`openkin.context.RunContext` holds it)."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def resolve_frame_rate(config, paths) -> float:
    """``[project] frame_rate``, or with 'auto' the first video's rate (30 fps if none, as Pose2Sim)."""
    rate = config.project.frame_rate
    if not isinstance(rate, str):
        return float(rate)
    import cv2

    videos = sorted(p for p in paths.videos.glob("*") if p.is_file()) if paths.videos.is_dir() else []
    for v in videos:
        cap = cv2.VideoCapture(str(v))
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        if fps and fps > 0:
            return float(round(fps))
    log.warning("frame_rate = 'auto' but no readable video in %s: using 30 fps (set [project] frame_rate)",
                paths.videos)
    return 30.0

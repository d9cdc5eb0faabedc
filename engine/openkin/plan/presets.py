"""Lens presets for virtual cameras: what a phone, a GoPro or a webcam sees.

Focal lengths are given as 35 mm-equivalent (the diagonal of the 36 × 24 mm frame,
43.27 mm, as CIPA DC-004 defines it, over the diagonal of the preset's native frame).
A preset's pixel focal length is ``fx = W_native × f_eq / (43.27 × cos(atan(H/W)))``, i.e.
``f_eq / equivalent-sensor-width × W``; a 16:9 video crop of a 4:3 sensor keeps the
width (same horizontal field of view, less vertical). All presets are distortion-free
pinholes (phones and GoPro's Linear mode correct distortion in the camera); GoPro's
Wide mode is a fisheye, modelled here as a pinhole with the same horizontal field of
view (an approximation: its real corners reach further, its centre is sharper).

===================  ======  ==========  ======  ======  ==========================================
preset               f_eq    native      HFOV    VFOV    source
===================  ======  ==========  ======  ======  ==========================================
phone_main_4x3       26 mm   4032×3024   67.3°   53.1°   iPhone 12-15 / Pixel 7-8 main camera (26 mm eq)
phone_main_16x9      26 mm   1920×1080   67.3°   41.1°   same lens, 16:9 video (4:3 width kept)
phone_ultrawide      13 mm   1920×1080   106.2°  73.7°   iPhone 11-15 ultra wide (13 mm eq), 16:9 video
gopro_wide           ---     1920×1080   118°    86.2°   GoPro HERO9-12 Wide, 16:9: HFOV 118° (GoPro FOV tables)
gopro_linear         ---     1920×1080   86°     55.4°   GoPro HERO9-12 Linear, 16:9: HFOV 86° (GoPro FOV tables)
webcam               ---     1920×1080   70.4°   43.3°   Logitech C920 (78° diagonal FOV, spec sheet)
===================  ======  ==========  ======  ======  ==========================================

(VFOV is that of the pinhole model at the native aspect.) A layout can override the
resolution (``resolution = [w, h]``: the field of view is kept) and turn the camera to
portrait (``portrait = true``: width and height swap, the long side keeps the long FOV).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import OpenKinError

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27 mm


@dataclass(frozen=True)
class LensPreset:
    """A lens: horizontal field of view (degrees, along the long side) at ``size`` (W, H) px."""

    name: str
    hfov_deg: float
    size: tuple[int, int]
    description: str


def hfov_from_equivalent(f_eq_mm: float, aspect_w: float, aspect_h: float) -> float:
    """Horizontal FOV (deg) of a 35 mm-equivalent focal length on a frame of aspect W:H."""
    width_eq = FULL_FRAME_DIAGONAL_MM * aspect_w / math.hypot(aspect_w, aspect_h)
    return math.degrees(2 * math.atan(width_eq / 2 / f_eq_mm))


def hfov_from_diagonal(dfov_deg: float, aspect_w: float, aspect_h: float) -> float:
    """Horizontal FOV (deg) of a pinhole whose diagonal FOV is ``dfov_deg`` on a W:H frame."""
    t = math.tan(math.radians(dfov_deg) / 2) * aspect_w / math.hypot(aspect_w, aspect_h)
    return math.degrees(2 * math.atan(t))


PRESETS: dict[str, LensPreset] = {p.name: p for p in (
    LensPreset("phone_main_4x3", hfov_from_equivalent(26.0, 4, 3), (4032, 3024), "phone main camera, 26 mm eq, 4:3"),
    LensPreset("phone_main_16x9", hfov_from_equivalent(26.0, 4, 3), (1920, 1080),
               "phone main camera, 26 mm eq, 16:9 video"),
    LensPreset("phone_ultrawide", hfov_from_equivalent(13.0, 4, 3), (1920, 1080),
               "phone ultra-wide camera, 13 mm eq, 16:9 video"),
    LensPreset("gopro_wide", 118.0, (1920, 1080), "GoPro Wide 16:9 (fisheye, modelled as a pinhole)"),
    LensPreset("gopro_linear", 86.0, (1920, 1080), "GoPro Linear 16:9"),
    LensPreset("webcam", hfov_from_diagonal(78.0, 16, 9), (1920, 1080), "1080p webcam, 78° diagonal (C920)"),
)}


def get_preset(name: str, *, where: str = "") -> LensPreset:
    """The preset called ``name``; :class:`OpenKinError` naming the known ones otherwise."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in PRESETS:
        raise OpenKinError(f"{where}unknown lens preset {name!r}",
                           fix=f"use one of: {', '.join(PRESETS)} (or give 'hfov_deg' and 'resolution')")
    return PRESETS[key]


def intrinsics(hfov_deg: float, size: tuple[int, int], portrait: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole ``K`` (3, 3) and image size (2,) [W, H] px for a FOV of ``hfov_deg`` along the
    long side of ``size``; ``portrait`` True/False puts the long side vertical/horizontal
    (None: as ``size`` is given)."""
    w, h = (int(size[0]), int(size[1]))
    long_side = max(w, h)
    f = long_side / 2 / math.tan(math.radians(hfov_deg) / 2)
    if portrait is not None and (portrait and w > h or (not portrait and h > w)):
        w, h = h, w
    K = np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])
    return K, np.array([w, h], dtype=float)

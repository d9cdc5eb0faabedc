"""Ground-truth scenes: ``openkin synth OUT --scene NAME``.

An OpenSim model (Pose2Sim's generic ``Model_Pose2Sim_simple.osim``) driven by a
known joint-angle motion gives 3D keypoints by forward kinematics; the demo's
real calibration (plus ring cameras for larger rigs) projects them into each
camera with distortion; configurable, seeded corruptions imitate real detectors.
The result is a Pose2Sim-layout project whose truth is known (``truth/``): the
test bed of every stage after 2D pose. See :mod:`.build` for the layout and
:mod:`.scene` for presets and settings.

Python::

    from openkin.synth import build_scene
    info = build_scene("scene_dir", "realistic", n_frames=600, seed=0, cameras=8)
"""
from __future__ import annotations

import dataclasses
import logging
import sys

from ..errors import OpenKinError
from .spec import PRESETS, SceneSpec, make_spec

__all__ = ["build_scene", "make_spec", "SceneInfo", "SceneSpec", "PRESETS", "add_arguments", "main"]

log = logging.getLogger(__name__)


def __getattr__(name: str):
    """Heavy parts (OpenSim, OpenCV, SciPy) load on first use, not with ``openkin --help``."""
    if name == "build_scene":
        from .build import build_scene
        return build_scene
    if name == "SceneInfo":
        from .scene import SceneInfo
        return SceneInfo
    raise AttributeError(name)


def add_arguments(parser) -> None:
    parser.add_argument("out", nargs="?", help="new project folder to write (not needed with --list)")
    parser.add_argument("--scene", default="clean", help=f"preset: {', '.join(PRESETS)} (default clean)")
    parser.add_argument("--frames", type=int, default=None, help="number of frames (default 600)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--cameras", type=int, default=None,
                        help="number of cameras: 4 = the demo rig, more are added on a ring")
    parser.add_argument("--keypoints", choices=["HALPE_26", "COCO_17", "BLAZEPOSE"], default=None)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a scene setting, TOML value syntax, e.g. --set outlier_rate=0.05 "
                             "(repeatable; --list shows them)")
    parser.add_argument("--trackers", default=None, metavar="BODY,...",
                        help="add simulated 6-DoF trackers on these bodies, e.g. pelvis,torso,humerus_r,humerus_l,"
                             "tibia_r,tibia_l (written to trackers/*_orientations.sto and declared in Config.toml)")
    parser.add_argument("--tracker-noise", type=float, default=None, metavar="DEG",
                        help="trackers' white orientation noise, degrees per axis (default 0)")
    parser.add_argument("--tracker-drift", type=float, default=None, metavar="DEG_PER_MIN",
                        help="trackers' heading drift about the vertical, degrees per minute (default 0)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--list", action="store_true", help="print the presets and settings, write nothing")


def _parse_sets(items: list[str] | None) -> dict:
    from ..fileio import parse_toml_value

    out = {}
    valid = {f.name: f for f in dataclasses.fields(SceneSpec)}
    for item in items or []:
        if "=" not in item:
            raise OpenKinError(f"--set {item!r} is not KEY=VALUE", fix="e.g. --set noise_px=2.5")
        key, value = (s.strip() for s in item.split("=", 1))
        parsed = parse_toml_value(value)
        if isinstance(parsed, list):
            parsed = tuple(parsed)
        if key in valid and isinstance(getattr(SceneSpec(), key), float) and isinstance(parsed, int):
            parsed = float(parsed)
        out[key] = parsed
    return out


def _listing() -> str:
    lines = ["presets:"]
    lines += [f"  {name:16s} {p.get('description', '')}" for name, p in PRESETS.items()]
    lines.append("settings (defaults):")
    lines += [f"  {f.name} = {getattr(SceneSpec(), f.name)!r}" for f in dataclasses.fields(SceneSpec)]
    return "\n".join(lines) + "\n"


def main(args) -> int:
    if args.list:
        sys.stdout.write(_listing())
        return 0
    if not args.out:
        raise OpenKinError("no output folder given", fix="openkin synth OUT --scene NAME (or --list to see the scenes)")
    overrides = _parse_sets(args.set)
    for key in ("cameras", "keypoints"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if getattr(args, "trackers", None):
        overrides["trackers"] = tuple(b.strip() for b in args.trackers.split(",") if b.strip())
    for key, field_name in (("tracker_noise", "tracker_noise_deg"), ("tracker_drift", "tracker_drift_deg_min")):
        if getattr(args, key, None) is not None:
            overrides[field_name] = float(getattr(args, key))
    from ..progress import tqdm_progress
    from .build import build_scene

    cb, close = tqdm_progress("synth")
    try:
        info = build_scene(args.out, args.scene, n_frames=args.frames, seed=args.seed,
                           overwrite=args.force, progress=cb, **overrides)
    finally:
        close()
    sys.stdout.write(f"{info.path}  ({info.preset}: {info.spec.n_frames} frames, {len(info.cameras)} cameras, "
                     f"{info.spec.people} people, {info.seconds:.1f} s)\n")
    return 0

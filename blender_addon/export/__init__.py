"""Export a character's take to FBX (Unity / Unreal presets), BVH, glTF/GLB, USD and Alembic.

:func:`export_armatures` is the one entry point (the panel's operator and ``cli_entry.py
export`` call it): one file per armature (person); formats holding one skeleton (BVH) or
when several people are given, the files are named ``<stem>_<person><ext>`` and a warning
says so. Every format writes a baked copy (:mod:`.bake`) made in a temporary scene, so the
user's scene, its markers' actions, cameras and other characters never leak into the file.
"""
from __future__ import annotations

import logging
from pathlib import Path

from openkin.errors import OpenKinError
from openkin.progress import scaled

from .bake import Take, names_free, take_of
from .formats import FORMATS, PRESETS, export_abc, export_bvh, export_fbx, export_gltf, export_usd

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "PRESETS", "Take", "take_of", "export_take", "export_armatures", "format_of"]


def format_of(path: Path, fmt: str | None = None) -> str:
    """The format named by ``fmt`` or by ``path``'s extension."""
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    if fmt == "gltf" or fmt == "glb":
        return fmt
    if fmt in ("usda", "usdc", "usdz"):
        return "usd"
    if fmt not in FORMATS:
        raise OpenKinError(f"unknown export format {fmt!r}", path=path,
                           fix=f"use one of: {', '.join(FORMATS)}")
    return fmt


def export_take(context, take: Take, path: Path, fmt: str | None = None, preset: str = "unity",
                progress=None, world=None) -> Path:
    """Write ``take`` to ``path`` in ``fmt`` (default: from the extension); ``world``: the take
    already sampled (:class:`.bake.Sampler`), else sampled here."""
    path = Path(path)
    fmt = format_of(path, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("export: %s (%s, frames %d-%d at %.3g fps, %d bones) -> %s", take.name, fmt, take.start, take.end,
             take.fps, len(take.bones or take.armature.data.bones), path)
    if fmt in ("usd", "abc") and any(c in b for b in (take.bones or take.armature.data.bones.keys()) for c in ".:"):
        log.warning("export: %s names cannot hold '.' or ':': Blender writes bone names such as %r with '_'",
                    fmt.upper(), next(b for b in (take.bones or take.armature.data.bones.keys()) if "." in b or ":" in b))
    with names_free(take):
        if fmt == "fbx":
            return export_fbx(context, take, path, preset, progress, world=world)
        if fmt == "bvh":
            return export_bvh(context, take, path, progress, world=world)
        if fmt in ("glb", "gltf"):
            return export_gltf(context, take, path, progress, world=world)
        if fmt == "usd":
            return export_usd(context, take, path, progress, world=world)
        return export_abc(context, take, path, progress, world=world)


def per_person_path(path: Path, person: str) -> Path:
    """``out.bvh`` → ``out_P1.bvh``."""
    return path.with_name(f"{path.stem}_{person}{path.suffix}")


def export_armatures(context, armatures: list, path: Path, fmt: str | None = None, preset: str = "unity",
                     frame_range: tuple[int, int] | None = None, deform_only: bool = True,
                     progress=None) -> list[Path]:
    """Export each armature's take; one file when one armature, else one file per person
    (``<stem>_<person><ext>``, with a warning naming them). Returns the files written."""
    path = Path(path)
    fmt = format_of(path, fmt)
    if not armatures:
        raise OpenKinError("no armature to export", fix="choose a character (an armature) first")
    if len(armatures) > 1:
        log.warning("export: %d people, %s holds one skeleton per file here: writing one file per person (%s)",
                    len(armatures), fmt.upper(),
                    ", ".join(per_person_path(path, _person(a)).name for a in armatures))
    out = []
    for i, arm in enumerate(armatures):
        target = path if len(armatures) == 1 else per_person_path(path, _person(arm))
        take = take_of(context.scene, arm, frame_range=frame_range, deform_only=deform_only)
        out.append(export_take(context, take, target, fmt, preset,
                               scaled(progress, i / len(armatures), (i + 1) / len(armatures))))
    return out


def _person(armature) -> str:
    return str(armature.get("openkin_person") or armature.name).replace(" ", "_").replace(":", "_")


CONTACTS = ("contact_L", "contact_R")


def write_contacts(source, take: Take, path: Path) -> Path | None:
    """The feet's contacts of ``take`` beside an exported file: ``<stem>_contacts.csv`` with
    ``frame, time_s, contact_L, contact_R`` (1 = the foot is planted), read from ``source``'s
    animated custom properties (the animation skeleton's contacts track). Most formats cannot
    carry animated custom properties (Blender's FBX and glTF exporters write static ones only),
    so game engines read this file. None when ``source`` has no contacts track."""
    curves = _contact_curves(source)
    if not curves:
        return None
    from openkin.fileio import atomic_write

    out = Path(path).with_name(f"{Path(path).stem}_contacts.csv")
    with atomic_write(out) as f:
        f.write("frame,time_s," + ",".join(CONTACTS) + "\n")
        for frame in take.frames:
            values = [int(curves[c].evaluate(float(frame)) > 0.5) if c in curves else 0 for c in CONTACTS]
            f.write(f"{frame},{(frame - take.start) / take.fps:.6f}," + ",".join(map(str, values)) + "\n")
    log.info("export: foot contacts -> %s", out)
    return out


def _contact_curves(obj) -> dict:
    """``contact_L``/``contact_R`` → the fcurve animating that custom property of ``obj``."""
    ad = obj.animation_data
    if ad is None or ad.action is None or ad.action_slot is None:
        return {}
    from bpy_extras import anim_utils

    bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    if bag is None:
        return {}
    return {c: fc for fc in bag.fcurves for c in CONTACTS if fc.data_path == f'["{c}"]'}

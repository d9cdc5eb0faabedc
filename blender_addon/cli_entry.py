"""Command-line entry point of the add-on, for scripts and for ``openkin demo``.

Run with a Python that has Blender's ``bpy`` module (``pip install bpy``, or Blender's own
Python), from anywhere::

    python blender_addon/cli_entry.py build --project TRIAL --blend OUT.blend \
        [--render OUT.png [--camera cam01] [--frame N]] [--cache DIR] [--geometry DIR ...]

    python blender_addon/cli_entry.py export --project TRIAL --rig mixamo|rigify|skeleton|FILE.blend \
        --format fbx|bvh|glb|usd|abc --out FILE [--person N] [--preset unity|unreal]

``build`` imports the project (calibrated cameras with their videos, markers, the animated
OpenSim skeleton) with the add-on's own importer into an empty scene, saves ``OUT.blend`` and,
with ``--render``, renders the scene from one camera (the first by name unless ``--camera``;
mid-capture unless ``--frame``) to a PNG. The engine never imports the add-on: it runs this
script in a child process (:func:`openkin.demo.save_blend`).

``export`` imports the project the same way (no videos), takes each person's animation
skeleton, retargets it onto the rig and writes the file with :mod:`blender_addon.export`
(``openkin export`` runs it; :mod:`openkin.export`).

Exit codes: 0 done, 2 bad input (an OpenKinError: its message on stderr), 3 no ``bpy`` in this
Python, 1 anything else (traceback on stderr).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(args) -> None:
    """Import ``args.project`` into an empty scene, save ``args.blend``, render ``args.render``."""
    import bpy

    from blender_addon.core.capture import find_project
    from blender_addon.scene.build import BuildOptions, import_files

    project = Path(args.project).resolve()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0
    cache = Path(args.cache) if args.cache else project / "openkin" / "blender_cache"
    options = BuildOptions(cache_dir=cache, geometry_dirs=[Path(p) for p in args.geometry])
    import_files(bpy.context, find_project(project), options)
    bpy.ops.wm.save_as_mainfile(filepath=str(Path(args.blend).resolve()), check_existing=False, relative_remap=True)
    if args.render:
        render(bpy.context.scene, args.render, args.camera, args.frame)


def export(args) -> None:
    """Import ``args.project``, retarget each chosen person onto ``args.rig``, write ``args.out``."""
    import bpy

    from blender_addon.core.capture import find_project
    from blender_addon.export import export_armatures, take_of, write_contacts
    from blender_addon.export.character import character, choose_people
    from blender_addon.scene.build import BuildOptions, import_files

    project = Path(args.project).resolve()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    options = BuildOptions(cache_dir=project / "openkin" / "blender_cache", undistort=False, bone_meshes=False,
                           reprojection=False)
    import_files(bpy.context, find_project(project), options)
    chosen = choose_people(bpy.context.scene, args.person)
    arms = [character(bpy.context, name, found, args.rig) for name, found in chosen]
    for (name, _), arm in zip(chosen, arms):
        arm["openkin_person"] = name
    written = export_armatures(bpy.context, arms, Path(args.out), args.format, preset=args.preset)
    for (_, found), arm, path in zip(chosen, arms, list(written)):
        if found["animation"] is not None:
            contacts = write_contacts(found["animation"], take_of(bpy.context.scene, arm), path)
            written += [contacts] if contacts else []
    if args.written:
        Path(args.written).write_text("".join(f"{p}\n" for p in written))


def character_render(args) -> None:
    """Import ``args.project`` with its videos, retarget the first person onto a Rigify rig and
    render ``args.camera`` side by side: the OpenSim skeleton | the Rigify character."""
    import json

    import bpy
    import numpy as np

    from openkin.errors import OpenKinError

    from blender_addon.core.capture import find_project
    from blender_addon.export.character import character, choose_people
    from blender_addon.export.preview import body_mesh, match_subject, side_by_side
    from blender_addon.scene.build import BuildOptions, import_files

    project = Path(args.project).resolve()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    cache = Path(args.cache) if args.cache else project / "openkin" / "blender_cache"
    import_files(bpy.context, find_project(project), BuildOptions(cache_dir=cache,
                                                                  geometry_dirs=[Path(p) for p in args.geometry]))
    scene = bpy.context.scene
    (name, found), *_ = choose_people(scene, None)
    rig = character(bpy.context, name, found, args.rig)
    height = rig.dimensions.z
    frames = np.arange(scene.frame_start, scene.frame_end + 1)
    hips = {"rigify": "DEF-spine", "mixamo": "mixamorig:Hips"}.get(args.rig, rig.data.bones[0].name)
    scale = match_subject(bpy.context, rig, hips, found["animation"], "hips", frames)
    body = body_mesh(rig)
    opensim = [o for o in scene.objects if o.parent is found["opensim"] and o.type == "MESH"]
    if not opensim:
        raise OpenKinError("the OpenSim skeleton has no bone meshes to render", path=project,
                           fix="give --geometry the folder of OpenSim's Geometry meshes")
    cams = sorted((o for o in scene.objects if o.type == "CAMERA"), key=lambda o: o.name)
    chosen = [c for c in cams if args.camera is None or c.name == args.camera]
    if not chosen:
        raise OpenKinError(f"no camera {args.camera!r} in the scene (cameras: {', '.join(c.name for c in cams)})",
                           fix="give --camera one of the calibration's camera names")
    frame = args.frame if args.frame is not None else (scene.frame_start + scene.frame_end) // 2
    side_by_side(scene, chosen[0], frame, Path(args.png), opensim, [body])
    Path(args.png).with_suffix(".json").write_text(json.dumps({
        "camera": chosen[0].name, "frame": frame, "person": name, "rig": args.rig, "rig_object": rig.name,
        "rig_bones": len(rig.data.bones), "capsules": len(body.vertex_groups), "action": rig.animation_data.action.name,
        "rig_height_m": round(float(height), 3), "shown_at_scale": round(scale, 3)}, indent=1))


def render(scene, png: str, camera: str | None, frame: int | None) -> None:
    from openkin.errors import OpenKinError

    from blender_addon.scene.snapshot import render_camera

    cams = sorted((o for o in scene.objects if o.type == "CAMERA"), key=lambda o: o.name)
    chosen = [c for c in cams if camera is None or c.name == camera]
    if not chosen:
        raise OpenKinError(f"no camera {camera!r} in the scene (cameras: {', '.join(c.name for c in cams) or 'none'})",
                           fix="give --camera one of the calibration's camera names")
    at = frame if frame is not None else (scene.frame_start + scene.frame_end) // 2
    render_camera(scene, chosen[0], at, png, percentage=50)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cli_entry.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="import a project into a new scene, save it (and render one camera)")
    b.add_argument("--project", required=True, help="trial folder (calibration/, videos/, pose-3d/, kinematics/)")
    b.add_argument("--blend", required=True, help=".blend file to write")
    b.add_argument("--render", help="PNG to render the scene to, from one camera")
    b.add_argument("--camera", help="camera object to render from (default: the first by name)")
    b.add_argument("--frame", type=int, help="scene frame to render (default: the middle of the capture)")
    b.add_argument("--cache", help="folder for undistorted videos and meshes (default: PROJECT/openkin/blender_cache)")
    b.add_argument("--geometry", action="append", default=[], help="folder of OpenSim bone meshes (repeatable)")
    e = sub.add_parser("export", help="import a project, retarget it onto a rig and export it")
    e.add_argument("--project", required=True, help="trial folder (kinematics/ done)")
    e.add_argument("--rig", required=True, help="skeleton | mixamo | rigify | FILE.blend")
    e.add_argument("--format", required=True, help="fbx | bvh | glb | gltf | usd | abc")
    e.add_argument("--out", required=True, help="file to write (one per person when several: OUT_P<k>.ext)")
    e.add_argument("--person", type=int, help="only person P<N>")
    e.add_argument("--preset", default="unity", help="FBX preset: unity | unreal")
    e.add_argument("--written", help="text file listing the files written (for the caller)")
    c = sub.add_parser("character-render", help="render the OpenSim skeleton | a retargeted character side by side")
    c.add_argument("--project", required=True, help="trial folder (kinematics/ done)")
    c.add_argument("--png", required=True, help="PNG to write (and a .json beside it saying what it shows)")
    c.add_argument("--rig", default="rigify", help="rigify | mixamo | FILE.blend")
    c.add_argument("--camera", help="camera to render from (default: the first by name)")
    c.add_argument("--frame", type=int, help="scene frame (default: the middle of the capture)")
    c.add_argument("--cache", help="folder for undistorted videos and meshes (default: PROJECT/openkin/blender_cache)")
    c.add_argument("--geometry", action="append", default=[], help="folder of OpenSim bone meshes (repeatable)")
    args = parser.parse_args(argv)
    try:
        import bpy  # noqa: F401
    except ImportError:
        sys.stderr.write("this Python has no bpy module: run this script with Blender's Python or pip install bpy\n")
        return 3
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from openkin.errors import OpenKinError

    try:
        {"build": build, "export": export, "character-render": character_render}[args.command](args)
    except OpenKinError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

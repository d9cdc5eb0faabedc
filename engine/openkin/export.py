"""``openkin export``: a processed project's motion as an animator's file (FBX, BVH, glTF/GLB, USD, Alembic).

    openkin export PROJECT --rig mixamo|rigify|skeleton|FILE.blend --format fbx|bvh|glb|usd|abc \\
        --out FILE [--person N] [--preset unity|unreal]

Runs the Blender add-on's ``cli_entry.py export`` in a child process with this Python's ``bpy``
module (the engine never imports the add-on; :func:`openkin.demo.run_cli_entry` is the one
launcher): it imports the project with the add-on's importer, builds the animation skeleton
from the OpenSim IK result, retargets it onto the chosen rig and writes the file with the
add-on's exporters. Tool layer.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .errors import OpenKinError
from .project import ProjectPaths

log = logging.getLogger(__name__)

RIGS = ("mixamo", "rigify", "skeleton")
FORMATS = ("fbx", "bvh", "glb", "gltf", "usd", "abc")
PRESETS = ("unity", "unreal")


def check_request(project: Path, rig: str, fmt: str, out: Path, person: int | None) -> None:
    """Bad input before starting Blender: no project, no kinematics yet, unknown rig or format."""
    paths = ProjectPaths(project)
    if not project.is_dir():
        raise OpenKinError("no such project folder", path=project, fix="give the trial folder of a processed project")
    if not paths.kinematics.is_dir() or not any(paths.kinematics.glob("*.mot")):
        raise OpenKinError("no kinematics results yet (no kinematics/*.mot): nothing to export", path=paths.kinematics,
                           fix=f"run the pipeline first: `openkin run {project}` (the kinematics stage makes them)")
    if rig not in RIGS and not rig.lower().endswith(".blend"):
        raise OpenKinError(f"unknown rig {rig!r}", fix=f"use one of {', '.join(RIGS)}, or a .blend file "
                                                       "holding your character's armature")
    if rig.lower().endswith(".blend") and not Path(rig).is_file():
        raise OpenKinError("no such .blend file", path=Path(rig), fix="give the .blend file of your character")
    if fmt not in FORMATS:
        raise OpenKinError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    if person is not None and person < 0:
        raise OpenKinError(f"person {person} does not exist", fix="people are numbered from 0 (P0, P1, ...)")
    if out.is_dir():
        raise OpenKinError("--out is a folder", path=out, fix="give a file name, e.g. take.fbx")


def export_project(project: Path, rig: str, fmt: str, out: Path, person: int | None = None,
                   preset: str = "unity", timeout: float = 3600) -> list[Path]:
    """Write the project's motion on ``rig`` to ``out`` (one file per person when several and
    ``person`` is None: ``<stem>_P<k><ext>``). Returns the files written."""
    from .demo import run_cli_entry

    project, out = Path(project).resolve(), Path(out).resolve()
    check_request(project, rig, fmt, out, person)
    if rig.lower().endswith(".blend"):
        rig = str(Path(rig).resolve())
    listing = out.with_name(f".{out.name}.written")
    args = ["export", "--project", str(project), "--rig", rig, "--format", fmt, "--out", str(out),
            "--preset", preset, "--written", str(listing)]
    if person is not None:
        args += ["--person", str(person)]
    try:
        if not run_cli_entry(args, project, timeout, f"exporting {fmt.upper()}",
                             "see the message above; the add-on's Character panel exports too"):
            raise OpenKinError("exporting needs Blender's bpy module in this Python", path=project,
                               fix="pip install bpy (the version the add-on supports), or export from Blender")
        written = [Path(line) for line in listing.read_text().splitlines() if line.strip()]
    finally:
        listing.unlink(missing_ok=True)
    for path in written:
        log.info("export: wrote %s", path)
    return written


def add_arguments(parser) -> None:
    parser.add_argument("project", help="trial folder of a processed project (kinematics/ done)")
    parser.add_argument("--rig", required=True,
                        help="mixamo | rigify | skeleton (OpenKin's animation skeleton) | FILE.blend (your armature)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="file format")
    parser.add_argument("--out", required=True, help="file to write")
    parser.add_argument("--person", type=int, help="only this person (0 = P0); default: every person, one file each")
    parser.add_argument("--preset", choices=PRESETS, default="unity", help="FBX settings for this engine")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before giving up (default 3600)")


def main(args) -> int:
    written = export_project(Path(args.project), args.rig, args.format, Path(args.out), args.person, args.preset,
                             args.timeout)
    for path in written:
        print(path)
    return 0

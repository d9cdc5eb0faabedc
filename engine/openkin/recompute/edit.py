"""``openkin edit PROJECT ...``: add, list or remove the project's corrections (:mod:`openkin.edits`).

An edit is checked against the project (its cameras, keypoints, people and frames) before it
is stored; a conflict with an earlier edit is a warning saying which wins. A stored or removed
edit outdates, in the run manifest, the stage that honours it (association for person edits,
triangulation for the others) and every stage after it: their outputs no longer match the
edits until ``openkin recompute`` (or a run) makes them again.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..edits import (PERSON_KINDS, Edit, ProjectFacts, add_edit, check_edit, edits_path, parse_frames, read_edits,
                     remove_edit)
from ..errors import OpenKinError
from ..lock import project_lock
from ..manifest import Manifest, dependents

log = logging.getLogger(__name__)


def project_facts(root: Path) -> ProjectFacts:
    """What an edit of ``root`` may name: cameras (the association's folders, else the pose
    folders), output frames (the triangulated TRC files), people (the association's count,
    else the triangulated people) and keypoints (the pose model's)."""
    from ..config import load_config
    from ..inputs import camera_name, pose_folders, skeleton_of
    from ..project import ProjectPaths
    from .window import trc_frame_span

    paths = ProjectPaths(Path(root))
    manifest = Manifest.load(paths.root)
    folders = manifest.outputs("association", "camera") or []
    if not folders:
        folders = next((pose_folders(d) for d in (paths.pose_associated, paths.pose_sync, paths.pose)
                        if pose_folders(d)), [])
    trcs = [(paths.root / e["path"], e.get("person", 0))
            for e in _outputs(manifest, "triangulation") if e.get("role") == "trc"]
    spans = [trc_frame_span(p) for p, _ in trcs if p.is_file()]
    people = (manifest.record("association") or {}).get("summary", {}).get("people")
    persons = tuple(range(int(people))) if people else tuple(sorted({int(t) for _, t in trcs}))
    return ProjectFacts(cameras=tuple(camera_name(f) for f in folders),
                        frames=(min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None,
                        persons=persons, keypoints=tuple(skeleton_of(load_config(paths.root)).names))


def _outputs(manifest: Manifest, stage: str) -> list[dict]:
    rec = manifest.record(stage) or {}
    return rec.get("outputs") or rec.get("previous_outputs") or []


def outdate(root: Path, edit: Edit, why: str) -> list[str]:
    """Mark the stage honouring ``edit`` and the stages after it ``outdated`` (their outputs stay
    in the record, for ``openkin recompute``) → the stages marked."""
    first = "association" if edit.kind in PERSON_KINDS else "triangulation"
    manifest = Manifest.load(root)
    marked = []
    for name in [first] + dependents(first):
        rec = manifest.record(name)
        if rec is not None and rec.get("status") == "done":
            manifest.stages[name] = {**rec, "status": "outdated", "outdated_by": why}
            marked.append(name)
    if marked:
        manifest.save()
    return marked


def edit_project(root: str | Path, edit: Edit) -> Edit:
    """Check ``edit`` against the project, store it, outdate what it changes → the stored edit."""
    root = Path(root).resolve()
    with project_lock(root):
        stored = add_edit(root, edit, project_facts(root))
        marked = outdate(root, stored, f"edits.toml (edit #{stored.id} added)")
    if marked:
        log.info("outdated until recomputed: %s", ", ".join(marked))
    return stored


def remove_project_edit(root: str | Path, edit_id: int) -> Edit:
    """Remove edit ``edit_id``; outdate what it changed → the removed edit."""
    root = Path(root).resolve()
    with project_lock(root):
        gone = remove_edit(root, edit_id)
        outdate(root, gone, f"edits.toml (edit #{gone.id} removed)")
    return gone


# ============================================================================ command line
def add_arguments(parser) -> None:
    parser.add_argument("project", help="trial folder")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--swap", metavar="CAM", help="left/right are exchanged in CAM's detections (with --frames)")
    what.add_argument("--exclude-camera", metavar="CAM", help="do not use CAM (with --frames; all frames without)")
    what.add_argument("--wrong", metavar="CAM", help="CAM's detection of --keypoint is wrong (with --frames)")
    what.add_argument("--person", metavar="CAM:ID", help="in CAM, the detection given person ID is another person (--as)")
    what.add_argument("--merge", nargs=2, type=int, metavar=("KEEP", "OTHER"), help="OTHER is the same person as KEEP")
    what.add_argument("--split", type=int, metavar="ID", help="person ID is someone else from --at on")
    what.add_argument("--list", action="store_true", help="list the edits")
    what.add_argument("--remove", type=int, metavar="N", help="remove edit N")
    parser.add_argument("--frames", metavar="A-B", help="inclusive output frame range (TRC Frame#)")
    parser.add_argument("--keypoint", action="append", metavar="NAME", help="keypoint of --wrong (repeatable)")
    parser.add_argument("--as", dest="as_", type=int, metavar="ID", help="the person it really is (-1: nobody)")
    parser.add_argument("--at", type=int, metavar="FRAME", help="first frame of the new person (--split)")
    parser.add_argument("--for-person", type=int, metavar="ID", help="limit --swap/--exclude-camera/--wrong to a person")
    parser.add_argument("--note", default="", help="a note stored with the edit")
    parser.add_argument("--json", action="store_true", help="print the edits (or the new edit) as JSON")


def edit_from_args(args) -> Edit:
    """The :class:`Edit` the options describe (checked for completeness, not against the project)."""
    frames = parse_frames(args.frames) if args.frames else None
    common = dict(id=0, frames=frames, note=args.note)
    if args.swap or args.exclude_camera or args.wrong:
        kind, cam = next((k, v) for k, v in (("swap", args.swap), ("exclude_camera", args.exclude_camera),
                                             ("wrong", args.wrong)) if v)
        if kind != "exclude_camera" and frames is None:
            raise OpenKinError(f"--{kind} needs --frames A-B", fix=f"e.g. openkin edit PROJECT --{kind} {cam} --frames 10-40")
        edit = Edit(kind=kind, camera=cam, keypoints=tuple(args.keypoint or ()), person=args.for_person, **common)
    elif args.person:
        cam, _, pid = args.person.rpartition(":")
        if not cam or not pid.lstrip("-").isdigit() or args.as_ is None:
            raise OpenKinError(f"--person {args.person!r} needs CAM:ID and --as ID",
                               fix="e.g. openkin edit PROJECT --person cam02:1 --as 0 --frames 100-200")
        edit = Edit(kind="person", camera=cam, person=int(pid), target=args.as_, **common)
    elif args.merge:
        edit = Edit(kind="merge", persons=tuple(args.merge), **common)
    else:
        if args.at is None:
            raise OpenKinError("--split needs --at FRAME", fix="e.g. openkin edit PROJECT --split 1 --at 50")
        edit = Edit(kind="split", person=args.split, at=args.at, **common)
    check_edit(edit)
    return edit


def _as_json(e: Edit) -> dict:
    from ..edits import edit_to_dict

    return {**edit_to_dict(e), "text": e.describe()}


def main(args) -> int:
    root = Path(args.project).resolve()
    if not root.is_dir():
        raise OpenKinError("project folder does not exist", path=root, fix="give the trial folder")
    if args.list:
        edits = read_edits(root)
        if args.json:
            sys.stdout.write(json.dumps([_as_json(e) for e in edits], indent=1) + "\n")
        else:
            sys.stdout.write("".join(e.describe() + "\n" for e in edits) or f"no edits in {edits_path(root)}\n")
        return 0
    if args.remove is not None:
        gone = remove_project_edit(root, args.remove)
        span = f" --frames {gone.frames[0]}-{gone.frames[1]}" if gone.frames else ""
        sys.stdout.write(f"removed {gone.describe()}\nrecompute: openkin recompute {args.project}{span}\n")
        return 0
    stored = edit_project(root, edit_from_args(args))
    if args.json:
        sys.stdout.write(json.dumps(_as_json(stored), indent=1) + "\n")
    else:
        span = f" --frames {stored.frames[0]}-{stored.frames[1]}" if stored.frames else ""
        sys.stdout.write(f"added {stored.describe()}\nrecompute: openkin recompute {args.project}{span}\n")
    return 0

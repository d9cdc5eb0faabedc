"""User corrections of a capture: ``PROJECT/openkin/edits.toml``, honoured by every later run.

A user who sees a wrong frame range says what is wrong there, and the stages take it
into account from then on (``openkin edit``, the Blender QA panel)::

    # OpenKin edits (openkin edit PROJECT --list); frames are inclusive output frame numbers
    version = 1

    [[edit]]
    id = 1
    kind = "swap"            # left/right exchanged in one camera's 2D detections
    camera = "cam02"
    frames = [10, 40]

    [[edit]]
    id = 2
    kind = "wrong"           # these detections are wrong: not used
    camera = "cam01"
    keypoints = ["RWrist"]
    frames = [100, 120]

Kinds (:data:`KINDS`): ``swap`` (camera, frames), ``exclude_camera`` (camera, frames),
``wrong`` (camera, keypoints, frames), ``person`` (camera, ``person`` = the person id the
association gave that detection, ``target`` = the person it really is, -1 for nobody; frames),
``merge`` (``persons = [keep, absorbed]``, frames optional), ``split`` (``person``, ``at``: from
that frame on, a new person). ``person`` on swap/exclude_camera/wrong limits the edit to one
associated person (default: all). ``frames`` absent = every frame. Frame numbers are those of
the outputs (TRC ``Frame#``, ``pose-associated`` JSON numbers; Blender's scene frame − 1).

Who reads what: the association stage applies person edits to its result
(:func:`apply_person_edits`); triangulation applies 2D edits to each person's detections
(:func:`apply_2d_edits`) and leaves the automatic left/right correction off on the frames a
swap edit covers. Both record ``edits.toml`` as an input; changing it outdates them (and
what depends on them) in the run manifest.

Conflicts (:func:`conflicts`, a warning each, never an error): exclusion wins over a swap or
a wrong-detection edit of the same camera and frames (nothing is left to swap); two swaps
of the same camera and frames are one exchange, not two; person edits (person, merge,
split) apply in id order, each on the result of the earlier ones, so a later edit decides
what an earlier one moved.
"""
from __future__ import annotations

import logging
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import OpenKinError
from .fileio import atomic_write

log = logging.getLogger(__name__)

EDITS_NAME = "edits.toml"
VERSION = 1
KINDS = ("swap", "exclude_camera", "wrong", "person", "merge", "split")
TWO_D = ("swap", "exclude_camera", "wrong")       # triangulation's
PERSON_KINDS = ("person", "merge", "split")       # the association's
_KEYS = {"id", "kind", "frames", "camera", "keypoints", "person", "target", "persons", "at", "note", "created"}
_NEEDS = {"swap": ("camera",), "exclude_camera": ("camera",), "wrong": ("camera", "keypoints"),
          "person": ("camera", "person", "target"), "merge": ("persons",), "split": ("person", "at")}


@dataclass(frozen=True)
class Edit:
    """One correction (see the module doc). ``frames``: (first, last) inclusive, None = all."""

    id: int
    kind: str
    frames: tuple[int, int] | None = None
    camera: str = ""
    keypoints: tuple[str, ...] = ()
    person: int | None = None
    target: int | None = None
    persons: tuple[int, ...] = ()
    at: int | None = None
    note: str = ""
    created: str = field(default="", compare=False)

    def covers(self, frame_numbers: np.ndarray) -> np.ndarray:
        """``frame_numbers (F,)`` → ``(F,)`` bool: the frames this edit applies to."""
        f = np.asarray(frame_numbers)
        if self.kind == "split":
            return f >= int(self.at)
        if self.frames is None:
            return np.ones(f.shape, bool)
        return (f >= self.frames[0]) & (f <= self.frames[1])

    def describe(self) -> str:
        """One line for ``--list`` and logs."""
        fr = "all frames" if self.frames is None else f"frames {self.frames[0]}-{self.frames[1]}"
        who = "" if self.person is None or self.kind in PERSON_KINDS else f", person {self.person}"
        text = {
            "swap": f"swap left/right in {self.camera}{who}, {fr}",
            "exclude_camera": f"exclude camera {self.camera}{who}, {fr}",
            "wrong": f"wrong detection of {', '.join(self.keypoints)} in {self.camera}{who}, {fr}",
            "person": f"in {self.camera}, person {self.person}'s detection is "
                      f"{'nobody' if self.target == -1 else f'person {self.target}'}, {fr}",
            "merge": f"merge person {self.persons[1] if len(self.persons) > 1 else '?'} into person "
                     f"{self.persons[0] if self.persons else '?'}, {fr}",
            "split": f"split person {self.person} at frame {self.at} (a new person from there)",
        }[self.kind]
        return f"#{self.id} {text}" + (f"  ({self.note})" if self.note else "")


def edits_path(root: str | Path) -> Path:
    """``PROJECT/openkin/edits.toml``."""
    return Path(root) / "openkin" / EDITS_NAME


def parse_frames(text: str) -> tuple[int, int]:
    """``'10-40'`` (or ``'25'``) → ``(10, 40)`` inclusive; a clear error otherwise."""
    parts = str(text).strip().split("-")
    try:
        a, b = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) and parts[0] else (None, None)
    except ValueError:
        a = b = None
    if a is None or b is None or b < a or a < 0:
        raise OpenKinError(f"frame range {text!r} is not FIRST-LAST with 0 <= FIRST <= LAST",
                           fix="give e.g. --frames 10-40 (inclusive output frame numbers)")
    return a, b


# ============================================================================ reading and writing
def read_edits(root: str | Path) -> list[Edit]:
    """The edits of a project in id order (``[]`` without a file); a malformed file is an
    :class:`OpenKinError` naming the entry and the fix."""
    path = edits_path(root)
    if not path.is_file():
        return []
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise OpenKinError(f"the edits file is not valid TOML ({e})", path=path,
                           fix="fix the line named, or remove the file (openkin edit PROJECT --list shows edits)") from None
    if doc.get("version", VERSION) != VERSION:
        raise OpenKinError(f"edits file version {doc.get('version')!r} is not {VERSION}", path=path,
                           fix="update OpenKin, or rewrite the edits with this version")
    entries = doc.get("edit", [])
    if not isinstance(entries, list):
        raise OpenKinError("'edit' must be an array of tables ([[edit]])", path=path, fix="write each edit as [[edit]]")
    edits = [_from_dict(e, path, i) for i, e in enumerate(entries)]
    ids = [e.id for e in edits]
    if len(set(ids)) != len(ids):
        raise OpenKinError(f"edit ids repeat: {sorted(i for i in set(ids) if ids.count(i) > 1)}", path=path,
                           fix="give every [[edit]] its own id")
    return sorted(edits, key=lambda e: e.id)


def _from_dict(d, path: Path, i: int) -> Edit:
    where = f"[[edit]] number {i + 1}"
    if not isinstance(d, dict):
        raise OpenKinError(f"{where} is not a table", path=path, fix="write each edit as [[edit]] with keys")
    unknown = set(d) - _KEYS
    if unknown:
        raise OpenKinError(f"{where} has unknown key(s) {sorted(unknown)}", path=path,
                           fix=f"use only: {', '.join(sorted(_KEYS))}")
    try:
        frames = d.get("frames")
        if frames is not None:
            if not (isinstance(frames, list) and len(frames) == 2):
                raise ValueError("frames must be [first, last]")
            frames = (int(frames[0]), int(frames[1]))
            if frames[1] < frames[0] or frames[0] < 0:
                raise ValueError(f"frames {list(frames)} must be [first, last] with 0 <= first <= last")
        edit = Edit(id=int(d["id"]), kind=str(d["kind"]), frames=frames, camera=str(d.get("camera", "")),
                    keypoints=tuple(str(k) for k in d.get("keypoints", ())),
                    person=None if d.get("person") is None else int(d["person"]),
                    target=None if d.get("target") is None else int(d["target"]),
                    persons=tuple(int(p) for p in d.get("persons", ())),
                    at=None if d.get("at") is None else int(d["at"]),
                    note=str(d.get("note", "")), created=str(d.get("created", "")))
    except KeyError as e:
        raise OpenKinError(f"{where} lacks {e.args[0]!r}", path=path, fix="every edit needs an id and a kind") from None
    except (TypeError, ValueError) as e:
        raise OpenKinError(f"{where}: {e}", path=path, fix="see openkin edit --help for the format") from None
    check_edit(edit, path)
    return edit


def check_edit(edit: Edit, path: Path | None = None) -> None:
    """The fields ``edit.kind`` needs are there and make sense (not whether the project has them)."""
    if edit.kind not in KINDS:
        raise OpenKinError(f"edit #{edit.id}: unknown kind {edit.kind!r}", path=path, fix=f"use one of: {', '.join(KINDS)}")
    empty = {"camera": "", "keypoints": (), "person": None, "target": None, "persons": (), "at": None}
    missing = [k for k in _NEEDS[edit.kind] if getattr(edit, k) == empty[k]]
    if missing:
        raise OpenKinError(f"edit #{edit.id} ({edit.kind}) lacks {', '.join(missing)}", path=path,
                           fix="see openkin edit --help: e.g. --wrong cam01 --keypoint RWrist --frames 10-40")
    if edit.kind == "merge" and (len(edit.persons) != 2 or edit.persons[0] == edit.persons[1]):
        raise OpenKinError(f"edit #{edit.id}: merge needs two different persons, got {list(edit.persons)}",
                           path=path, fix="e.g. --merge 0 2 (person 2 becomes person 0)")
    if edit.kind == "person" and (edit.target < -1 or edit.target == edit.person):
        raise OpenKinError(f"edit #{edit.id}: --as {edit.target} must be another person id (or -1: nobody)",
                           path=path, fix="e.g. --person cam02:1 --as 0")
    if any(p is not None and p < 0 for p in (edit.person, *edit.persons)) or (edit.at is not None and edit.at < 0):
        raise OpenKinError(f"edit #{edit.id}: person ids and frames are >= 0", path=path, fix="fix the numbers")


def edit_to_dict(e: Edit) -> dict:
    d = {"id": e.id, "kind": e.kind}
    if e.camera:
        d["camera"] = e.camera
    if e.keypoints:
        d["keypoints"] = list(e.keypoints)
    for key in ("person", "target", "at"):
        if getattr(e, key) is not None:
            d[key] = getattr(e, key)
    if e.persons:
        d["persons"] = list(e.persons)
    if e.frames is not None:
        d["frames"] = list(e.frames)
    if e.note:
        d["note"] = e.note
    if e.created:
        d["created"] = e.created
    return d


def write_edits(root: str | Path, edits: list[Edit]) -> Path:
    """Write the edits (atomically; human-readable TOML, one ``[[edit]]`` each) → the file."""
    path = edits_path(root)
    lines = ["# OpenKin edits: corrections every run honours (openkin edit PROJECT --list / --remove N).",
             "# Frames are inclusive output frame numbers (TRC Frame#); kinds: " + ", ".join(KINDS) + ".",
             f"version = {VERSION}"]
    for e in sorted(edits, key=lambda e: e.id):
        lines += ["", "[[edit]]"] + [f"{k} = {_toml_value(v)}" for k, v in edit_to_dict(e).items()]
    with atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")
    return path


def _toml_value(v) -> str:
    """A TOML value on one line: ints, basic strings, flat lists of them."""
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    escaped = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in escaped) + '"'


def add_edit(root: str | Path, edit: Edit, facts: "ProjectFacts | None" = None) -> Edit:
    """Append ``edit`` (its id is replaced by the next free one) → the edit as stored. Checked
    against ``facts`` (cameras, frames, people of the project) when given; conflicts warn."""
    edits = read_edits(root)
    edit = replace(edit, id=max((e.id for e in edits), default=0) + 1,
                   created=edit.created or time.strftime("%Y-%m-%dT%H:%M:%S"))
    check_edit(edit, edits_path(root))
    if facts is not None:
        validate([edit], facts, edits_path(root))
    for warning in conflicts(edits + [edit]):
        if f"#{edit.id} " in warning or warning.endswith(f"#{edit.id}"):
            log.warning("%s", warning)
    write_edits(root, edits + [edit])
    log.debug("added edit %s", edit.describe())
    return edit


def remove_edit(root: str | Path, edit_id: int) -> Edit:
    """Remove edit ``edit_id`` → the removed edit; an unknown id is an error listing the ids."""
    edits = read_edits(root)
    found = [e for e in edits if e.id == int(edit_id)]
    if not found:
        raise OpenKinError(f"there is no edit #{edit_id}", path=edits_path(root),
                           fix=f"existing ids: {', '.join(str(e.id) for e in edits) or 'none'} (openkin edit PROJECT --list)")
    write_edits(root, [e for e in edits if e.id != int(edit_id)])
    return found[0]


# ============================================================================ checks
@dataclass(frozen=True)
class ProjectFacts:
    """What edits may name: ``cameras``, ``frames`` (first, last) of the outputs, ``persons`` (ids),
    ``keypoints`` (names). Empty / None where unknown (not checked)."""

    cameras: tuple[str, ...] = ()
    frames: tuple[int, int] | None = None
    persons: tuple[int, ...] = ()
    keypoints: tuple[str, ...] = ()


def validate(edits: list[Edit], facts: ProjectFacts, path: Path | None = None) -> None:
    """An :class:`OpenKinError` for the first edit naming a camera, keypoint, person or frame
    the project does not have."""
    for e in edits:
        if e.camera and facts.cameras and e.camera not in facts.cameras:
            raise OpenKinError(f"edit #{e.id}: there is no camera {e.camera!r}", path=path,
                               fix=f"cameras of this project: {', '.join(facts.cameras)}")
        bad = [k for k in e.keypoints if facts.keypoints and k not in facts.keypoints]
        if bad:
            raise OpenKinError(f"edit #{e.id}: no keypoint {', '.join(map(repr, bad))} in this skeleton", path=path,
                               fix=f"keypoints: {', '.join(facts.keypoints)}")
        people = [p for p in (e.person, *e.persons) if p is not None]
        if e.kind == "person" and e.target is not None and e.target >= 0:
            people.append(e.target)
        unknown = [p for p in people if facts.persons and p not in facts.persons]
        if unknown and not (e.kind == "person" and unknown == [e.target]):
            raise OpenKinError(f"edit #{e.id}: there is no person {unknown[0]}", path=path,
                               fix=f"person ids of this project: {', '.join(map(str, facts.persons))}")
        if facts.frames is not None:
            lo, hi = facts.frames
            first, last = e.frames if e.frames is not None else (e.at, e.at) if e.at is not None else (lo, hi)
            if last < lo or first > hi:
                raise OpenKinError(f"edit #{e.id}: frames {first}-{last} are outside the capture's {lo}-{hi}",
                                   path=path, fix=f"give frames within {lo}-{hi}")


def _overlap(a: Edit, b: Edit) -> bool:
    if a.frames is None or b.frames is None:
        return True
    return a.frames[0] <= b.frames[1] and b.frames[0] <= a.frames[1]


def _same_people(a: Edit, b: Edit) -> bool:
    return a.person is None or b.person is None or a.person == b.person


def conflicts(edits: list[Edit]) -> list[str]:
    """Warnings for edits that overlap, each saying which one wins (rules: module doc)."""
    out = []
    for i, a in enumerate(edits):
        for b in edits[i + 1:]:
            if a.kind in TWO_D and b.kind in TWO_D and a.camera == b.camera and _overlap(a, b) and _same_people(a, b):
                kinds = {a.kind, b.kind}
                if "exclude_camera" in kinds and len(kinds) == 2:
                    ex, other = (a, b) if a.kind == "exclude_camera" else (b, a)
                    out.append(f"edits #{a.id} and #{b.id} overlap on {a.camera}: the exclusion #{ex.id} wins "
                               f"(#{other.id} has no effect where the camera is excluded)")
                elif kinds == {"swap"}:
                    out.append(f"edits #{a.id} and #{b.id} both swap {a.camera} on common frames: "
                               f"left and right are exchanged once there, not twice")
            elif a.kind in PERSON_KINDS and b.kind in PERSON_KINDS and _overlap(a, b):
                pa = {a.person, a.target, *a.persons} - {None, -1}
                pb = {b.person, b.target, *b.persons} - {None, -1}
                if pa & pb:
                    out.append(f"edits #{a.id} and #{b.id} both move person(s) {sorted(pa & pb)}: they apply in "
                               f"order, #{b.id} on the result of #{a.id} (the later one wins)")
    return out


# ============================================================================ kernels
def _frame_mask(edit: Edit, frame_numbers: np.ndarray) -> np.ndarray:
    return edit.covers(frame_numbers)


def _camera_index(edit: Edit, cameras: list[str], path: Path | None) -> int:
    if edit.camera not in cameras:
        raise OpenKinError(f"edit #{edit.id}: there is no camera {edit.camera!r} in this run's data", path=path,
                           fix=f"cameras: {', '.join(cameras)}; change or remove the edit (openkin edit --remove {edit.id})")
    return cameras.index(edit.camera)


def mirror_index(names: list[str]) -> np.ndarray:
    """Index of each keypoint's left/right counterpart (itself if none): ``names (K,)`` → ``(K,)``."""
    out = np.arange(len(names))
    for i, n in enumerate(names):
        if len(n) > 1 and n[0] in "LR" and n[1].isupper():
            other = ("R" if n[0] == "L" else "L") + n[1:]
            if other in names:
                out[i] = names.index(other)
    return out


def apply_2d_edits(keypoints: np.ndarray, cameras: list[str], frame_numbers: np.ndarray, names: list[str],
                   edits: list[Edit], person: int | None = None, path: Path | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Swap, exclude and wrong-detection edits on one person's detections.

    ``keypoints (C,F,K,3)`` [x, y, conf] (NaN absent), ``cameras (C,)`` names, ``frame_numbers (F,)``,
    ``names (K,)`` → edited copy ``(C,F,K,3)`` and ``locked (F,)`` frames a swap edit covers
    (the automatic left/right correction leaves them alone). Removed detections become NaN.
    Exclusion wins over swap and wrong (applied last); two swaps of a frame are one exchange.
    """
    out = np.array(keypoints, dtype=float, copy=True)
    C, F = out.shape[:2]
    locked = np.zeros(F, bool)
    mine = [e for e in edits if e.kind in TWO_D and (e.person is None or person is None or e.person == person)]
    swap = np.zeros((C, F), bool)
    remove = np.zeros(out.shape[:3], bool)
    for e in mine:
        c, sel = _camera_index(e, cameras, path), _frame_mask(e, frame_numbers)
        if e.kind == "swap":
            swap[c] |= sel
            locked |= sel
        elif e.kind == "wrong":
            bad = [k for k in e.keypoints if k not in names]
            if bad:
                raise OpenKinError(f"edit #{e.id}: no keypoint {bad[0]!r} in this skeleton", path=path,
                                   fix=f"keypoints: {', '.join(names)}")
            remove[c][np.ix_(sel, [names.index(k) for k in e.keypoints])] = True
    for e in mine:
        if e.kind == "exclude_camera":
            remove[_camera_index(e, cameras, path), _frame_mask(e, frame_numbers)] = True
    if swap.any():
        mirror = mirror_index(names)
        out[swap] = out[swap][:, mirror]
    out[remove] = np.nan
    return out, locked


def apply_person_edits(choice: np.ndarray, cameras: list[str], frame_numbers: np.ndarray, edits: list[Edit],
                       path: Path | None = None) -> np.ndarray:
    """Person, merge and split edits, in id order, on an association.

    ``choice (T,C,F)`` detection slot of person t in camera c at frame f (-1 none) → edited
    ``(T',C,F)`` (a split adds a person at the end; people are never renumbered: a person
    merged away stays, empty). ``person``: exchange persons ``person`` and ``target`` in that
    camera (target -1: the detection is dropped). ``merge [a, b]``: b's detections become a's
    where a has none (a keeps its own where both have one); b is emptied there.
    """
    ch = np.array(choice, copy=True)
    for e in sorted((e for e in edits if e.kind in PERSON_KINDS), key=lambda e: e.id):
        ids = [p for p in (e.person, *e.persons) if p is not None] + ([e.target] if e.kind == "person" and e.target >= 0 else [])
        missing = [p for p in ids if p >= ch.shape[0]]
        if missing:
            raise OpenKinError(f"edit #{e.id}: there is no person {missing[0]} (this run found {ch.shape[0]})",
                               path=path, fix=f"change or remove the edit (openkin edit PROJECT --remove {e.id})")
        sel = _frame_mask(e, frame_numbers)
        if e.kind == "person":
            c = _camera_index(e, cameras, path)
            a = ch[e.person, c, sel].copy()
            if e.target >= 0:
                ch[e.person, c, sel] = ch[e.target, c, sel]
                ch[e.target, c, sel] = a
            else:
                ch[e.person, c, sel] = -1
        elif e.kind == "merge":
            keep, gone = e.persons
            take = sel[None] & (ch[keep] < 0)
            ch[keep] = np.where(take, ch[gone], ch[keep])
            ch[gone][:, sel] = -1
        else:  # split
            new = np.full((1,) + ch.shape[1:], -1, dtype=ch.dtype)
            new[0][:, sel] = ch[e.person][:, sel]
            ch[e.person][:, sel] = -1
            ch = np.concatenate([ch, new])
    return ch


def frames_of(edits: list[Edit], frame_numbers: np.ndarray) -> np.ndarray:
    """``(F,)`` bool: frames any of ``edits`` covers."""
    out = np.zeros(len(frame_numbers), bool)
    for e in edits:
        out |= e.covers(frame_numbers)
    return out

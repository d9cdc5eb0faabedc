"""OpenPose JSON keypoints, one file per frame, in Pose2Sim's layout.

Pose2Sim writes ``pose/<cam>_json/<stem>_<frame:06d>.json`` with::

    {"version": 1.3, "people": [{"person_id": [-1],
                                  "pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...],
                                  "face_keypoints_2d": [], "hand_left_keypoints_2d": [], ...}]}

In memory a folder is ``keypoints (F, P, K, 3)`` = [x px, y px, confidence] with
NaN where a person or keypoint is absent, ``frame_numbers (F,)`` (the last
number in each file name) and ``person_ids (F, P)`` (-1 when unknown).

Absent keypoints are written as ``0, 0, 0`` (OpenPose's convention, strict JSON;
Pose2Sim drops them by their zero confidence). On reading, an exact ``0, 0, 0``
triple and ``NaN`` literals (which Pose2Sim writes for failed frames) both become NaN.
People slots are kept: an absent person before a present one is written with
zeros so slot order survives; absent people at the end of a frame are not written.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
from ..fileio import writing
from ..progress import Progress, report

log = logging.getLogger(__name__)

try:  # orjson: ~3x faster than the standard library here; a dependency, the stdlib is the fallback
    from orjson import dumps as _fast_dumps, loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency
    _fast_loads, _fast_dumps = json.loads, None

_FRAME = re.compile(r"(\d+)(?!.*\d)")
_EMPTY_PARTS = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
                "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")


def frame_number(path: Path) -> int | None:
    """The last number in a file's stem (``cam01_000123`` → 123, ``cam01.0123`` → 123), or None."""
    match = _FRAME.search(Path(path).stem)
    return int(match.group(1)) if match else None


def _of_stem(name: str, stem: str | None) -> bool:
    """Whether a file name belongs to ``stem``: ``<stem>_<frame>…`` or ``<stem>.<frame>…`` (Pose2Sim
    accepts both), or any name when ``stem`` is None."""
    return stem is None or (name.startswith(stem) and name[len(stem):len(stem) + 1] in ("_", "."))


def _missing_frames(json_dir: Path, frames: np.ndarray) -> None:
    """Warn, naming them, about frame numbers absent between the first and the last file."""
    if len(frames) < 2 or np.all(np.diff(frames) == 1):
        return
    missing = np.setdiff1d(np.arange(frames[0], frames[-1] + 1), frames)
    shown = ", ".join(map(str, missing[:10].tolist())) + (", ..." if len(missing) > 10 else "")
    log.warning("%s: %d frame file(s) missing between frames %d and %d (frames %s); they are read as "
                "'nobody detected'. If files were lost, rerun the pose stage", json_dir, len(missing),
                frames[0], frames[-1], shown)


def list_json(json_dir: str | Path, stem: str | None = None) -> tuple[list[Path], np.ndarray]:
    """JSON files of a folder sorted by frame number → (paths, frame_numbers (F,))."""
    json_dir = Path(json_dir)
    if not json_dir.is_dir():
        raise OpenKinError("pose folder not found" if not json_dir.exists() else "not a folder", path=json_dir,
                           fix="run the pose stage first, or check the camera folder name (pose/<cam>_json)")
    files = [p for p in json_dir.glob(f"{stem}*.json" if stem else "*.json")
             if not p.name.startswith(".") and _of_stem(p.name, stem)]
    numbered = [(frame_number(p), p) for p in files]
    bad = [p.name for n, p in numbered if n is None]
    if bad:
        raise OpenKinError(f"JSON file names without a frame number: {bad[:3]}", path=json_dir,
                           fix="name files <stem>_<frame>.json, e.g. cam01_000012.json")
    numbered.sort(key=lambda item: item[0])
    frames = np.array([n for n, _ in numbered], dtype=int)
    if len(frames) > 1 and np.any(np.diff(frames) == 0):
        dup = int(frames[np.flatnonzero(np.diff(frames) == 0)[0]])
        names = [p.name for n, p in numbered if n == dup]
        raise OpenKinError(f"several files for frame {dup}: {names}", path=json_dir,
                           fix="keep one camera per folder (pose/<cam>_json), or pass stem= to choose one")
    return [p for _, p in numbered], frames


# ---------------------------------------------------------------- reading
def read_openpose_json(path: str | Path) -> tuple[list[np.ndarray], list[int]]:
    """One frame file → (list of (K, 3) arrays per person, person ids)."""
    path = Path(path)
    try:
        data = _loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise OpenKinError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", path=path,
                           fix="delete the file and rerun the pose stage (or fix it by hand)") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        problem = "not UTF-8 JSON text" if isinstance(exc, UnicodeDecodeError) else "JSON nested too deeply"
        raise OpenKinError(f"malformed JSON: {problem}", path=path,
                           fix="delete the file and rerun the pose stage") from None
    except OSError as exc:
        raise OpenKinError(f"cannot read pose file: {exc.strerror}", path=path, fix="check the file") from None
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise OpenKinError("no 'people' list: not an OpenPose keypoint file", path=path,
                           fix='expected {"version": 1.3, "people": [{"pose_keypoints_2d": [...]}]}')
    arrays, ids = [], []
    for i, person in enumerate(people):
        arrays.append(_person_array(path, i, person))
        ids.append(_person_id(person))
    return arrays, ids


def _loads(blob: bytes):
    """JSON text → Python objects: orjson, else (what it refuses: NaN literals, which Pose2Sim
    writes for failed frames, a BOM, UTF-16, and every malformed file) the standard library, whose
    result and exceptions (line, column and message of the error) are the reference."""
    try:
        return _fast_loads(blob)
    except ValueError:
        return json.loads(blob)


def _person_array(path: Path, index: int, person) -> np.ndarray:
    flat = person.get("pose_keypoints_2d", []) if isinstance(person, dict) else None
    if not isinstance(flat, list) or len(flat) % 3:
        got = f"{len(flat)} values" if isinstance(flat, list) else f"a {type(flat).__name__}"
        raise OpenKinError(f"person {index}: pose_keypoints_2d must be a flat list of x, y, confidence "
                           f"triples, got {got}", path=path, fix="delete the file and rerun the pose stage")
    bad = next((i for i, v in enumerate(flat) if not _is_number(v)), None)
    if bad is not None:
        raise OpenKinError(f"person {index}: pose_keypoints_2d value {bad} is {flat[bad]!r}, not a number "
                           f"(keypoint {bad // 3}); a missing keypoint is written 0, 0, 0 or NaN (unquoted)",
                           path=path, fix="delete the file and rerun the pose stage, or write the value as a number")
    arr = np.array([np.nan if v is None else v for v in flat], dtype=float)
    if np.isinf(arr).any():
        bad = int(np.flatnonzero(np.isinf(arr))[0])
        raise OpenKinError(f"person {index}: pose_keypoints_2d value {bad} is infinite (keypoint {bad // 3})",
                           path=path, fix="delete the file and rerun the pose stage, or write 0, 0, 0 for a "
                                          "missing keypoint")
    return arr.reshape(-1, 3)


def _is_number(value) -> bool:
    """JSON numbers (NaN literals included) and null; not strings, booleans, lists or objects."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _person_id(person: dict) -> int:
    pid = person.get("person_id", -1)
    if isinstance(pid, list):
        pid = pid[0] if pid else -1
    try:
        return int(pid)
    except (TypeError, ValueError):
        return -1


@dataclass
class PoseFolder:
    """A folder read by :func:`read_openpose_folder`: ``keypoints (F,P,K,3)``, ``frames (F,)``,
    ``ids (F,P)``, ``names`` (F file names) and ``listed (F,)`` people listed in each file
    (also empty ones), which lets a writer reuse a file it would rewrite unchanged."""

    keypoints: np.ndarray
    frames: np.ndarray
    ids: np.ndarray
    names: list[str]
    listed: np.ndarray


def read_openpose_dir(json_dir: str | Path, stem: str | None = None,
                      progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a folder of per-frame OpenPose JSON files.

    Returns ``keypoints (F, P, K, 3)`` [x, y, conf] NaN where absent,
    ``frame_numbers (F,)`` int and ``person_ids (F, P)`` int (-1 unknown or absent).
    P is the most people in any frame; K the keypoints per person.
    """
    folder = read_openpose_folder(json_dir, stem, progress)
    return folder.keypoints, folder.frames, folder.ids


def read_openpose_folder(json_dir: str | Path, stem: str | None = None,
                         progress: Progress | None = None, digests: dict | None = None) -> PoseFolder:
    """:func:`read_openpose_dir` with the file names and people counts → :class:`PoseFolder`.
    ``digests``: a dict to receive ``{file name: sha256 digest}`` of the files read on the way
    (the keypoint cache and the run manifest hash them; one read serves both)."""
    json_dir = Path(json_dir)
    fast = _read_dir_fast(json_dir, stem, digests)
    if fast is not None:
        _missing_frames(json_dir, fast.frames)
        report(progress, 1.0, f"read {len(fast.frames)} frames")
        return fast
    files, frames = list_json(json_dir, stem)
    if not files:
        raise OpenKinError("no JSON pose files in folder", path=json_dir,
                           fix="run the pose stage first (it writes pose/<cam>_json/*.json)")
    _missing_frames(json_dir, frames)
    per_frame = []
    for i, path in enumerate(files):
        per_frame.append(read_openpose_json(path))
        if i % 500 == 0:
            report(progress, i / len(files), f"reading {json_dir.name}")
    keypoints, ids = _stack(json_dir, files, per_frame)
    report(progress, 1.0, f"read {len(files)} frames")
    return PoseFolder(keypoints, frames, ids, [p.name for p in files],
                      np.array([len(arrays) for arrays, _ in per_frame], dtype=int))


# Fast path, chosen for speed: reading a folder is most of the time of association and
# triangulation. Each file is parsed by orjson (600 files: ~8 ms; the stdlib's json.loads
# ~30 ms; the earlier regex + np.fromstring cut ~25 ms) and all pose lists of the folder go
# into one array by one np.array call. Anything unusual (odd names, repeated frames, people
# without a pose list, ragged lists, null/true/false or quoted values, infinite values,
# unreadable or malformed files) returns None, and the validating path below reads the folder
# and raises its messages, so the two paths give the same arrays (tested).
_NAME_FRAME = re.compile(r"(\d+)(?!.*\d)")


def _scan_names(json_dir: Path, stem: str | None) -> list[tuple[int, str]] | None:
    """``[(frame, file name)]`` sorted by frame, or None when the validating path must decide."""
    try:
        names = [e.name for e in os.scandir(json_dir) if e.name.endswith(".json")
                 and _of_stem(e.name, stem) and not e.name.startswith(".")]
    except OSError:
        return None
    numbered = []
    for name in names:
        match = _NAME_FRAME.search(name[:-5])
        if match is None:
            return None
        numbered.append((int(match.group(1)), name))
    numbered.sort()
    if not numbered or any(a[0] == b[0] for a, b in zip(numbered, numbered[1:])):
        return None
    return numbered


def _read_dir_fast(json_dir: Path, stem: str | None, digests: dict | None = None):
    """:func:`read_openpose_dir` on regular folders (see above), else None. ``digests``: see
    :func:`read_openpose_folder`."""
    numbered = _scan_names(json_dir, stem)
    if numbered is None:
        return None
    rows, at, people_at, ids = [], [], [], []
    folder = str(json_dir)
    try:
        for f, (_, name) in enumerate(numbered):
            with open(os.path.join(folder, name), "rb") as fh:
                blob = fh.read()
            if digests is not None:
                digests[name] = hashlib.sha256(blob).digest()
            if b"true" in blob or b"false" in blob or b"null" in blob:
                return None  # values numpy would take as numbers (or as objects): the validating path decides
            people = _loads(blob)["people"]
            if type(people) is not list:
                return None
            for q, person in enumerate(people):
                flat = person["pose_keypoints_2d"]
                if type(flat) is not list:
                    return None
                if flat:
                    rows.append(flat)
                    at.append((f, q))
                people_at.append((f, q))
                ids.append(_person_id(person))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    out = _assemble(rows, at, people_at, ids, len(numbered))
    if out is None:
        return None
    listed = np.bincount(np.array([f for f, _ in people_at], dtype=int), minlength=len(numbered))
    frames = np.array([n for n, _ in numbered], dtype=int)
    return PoseFolder(out[0], frames, out[1], [n for _, n in numbered], listed)


def _assemble(rows: list[list], at: list, people_at: list, ids: list, n_frames: int):
    """Pose lists → ``(keypoints (F,P,K,3), ids (F,P))``, or None if ragged or not all numbers."""
    if len({len(r) for r in rows}) > 1 or (rows and len(rows[0]) % 3):
        return None
    K = len(rows[0]) // 3 if rows else 0
    try:
        values = np.array(rows) if rows else np.zeros((0, 0))
    except ValueError:
        return None
    if values.dtype.kind not in "fi" or (values.dtype.kind == "f" and np.isinf(values).any()):
        return None
    where = np.array(people_at, dtype=int).reshape(-1, 2)
    P = int(where[:, 1].max()) + 1 if len(where) else 0
    keypoints = np.full((n_frames, P, K, 3), np.nan)
    person_ids = np.full((n_frames, P), -1, dtype=int)
    person_ids[where[:, 0], where[:, 1]] = ids
    if rows:
        full = np.array(at, dtype=int)
        keypoints[full[:, 0], full[:, 1]] = values.reshape(-1, K, 3)
    keypoints[np.all(keypoints == 0, axis=-1)] = np.nan
    return keypoints, person_ids


def _stack(json_dir: Path, files: list[Path], per_frame: list) -> tuple[np.ndarray, np.ndarray]:
    counts = {len(a) for arrays, _ in per_frame for a in arrays if len(a)}
    if len(counts) > 1:
        first = next(f for f, (arrays, _) in zip(files, per_frame) if any(len(a) != min(counts) for a in arrays))
        raise OpenKinError(f"people have different keypoint counts {sorted(counts)} (e.g. in {first.name})",
                           path=json_dir, fix="all files of a folder must come from the same pose model")
    n_kpt = counts.pop() if counts else 0
    n_people = max((len(arrays) for arrays, _ in per_frame), default=0)
    keypoints = np.full((len(files), n_people, n_kpt, 3), np.nan)
    ids = np.full((len(files), n_people), -1, dtype=int)
    for f, (arrays, pids) in enumerate(per_frame):
        for p, (arr, pid) in enumerate(zip(arrays, pids)):
            if len(arr):
                keypoints[f, p] = arr
            ids[f, p] = pid
    zeros = np.all(keypoints == 0, axis=-1)
    keypoints[zeros] = np.nan
    return keypoints, ids


# ---------------------------------------------------------------- writing
def openpose_frame(keypoints: np.ndarray, person_ids: np.ndarray | None = None) -> dict:
    """One frame (P, K, 3) → the OpenPose JSON dict; NaN keypoints become 0, 0, 0."""
    keypoints = np.asarray(keypoints, dtype=float)
    present = ~np.all(np.isnan(keypoints), axis=(1, 2))
    last = int(np.flatnonzero(present)[-1]) + 1 if present.any() else 0
    clean = np.where(np.isnan(keypoints).any(axis=-1, keepdims=True), 0.0, keypoints)
    people = []
    for p in range(last):
        pid = int(person_ids[p]) if person_ids is not None else -1
        person = {"person_id": [pid], "pose_keypoints_2d": clean[p].reshape(-1).tolist()}
        person.update({part: [] for part in _EMPTY_PARTS})
        people.append(person)
    return {"version": 1.3, "people": people}


def _dumps(frame: dict, finite: bool) -> bytes:
    """A frame dict → UTF-8 JSON: orjson (compact; ~5× faster than the stdlib) when all its
    numbers are ``finite``; else the stdlib, which writes literals (``Infinity``) where orjson writes null."""
    if _fast_dumps is not None and finite:
        return _fast_dumps(frame)
    return json.dumps(frame).encode("utf-8")


def write_openpose_dir(json_dir: str | Path, stem: str, keypoints: np.ndarray,
                       frame_numbers: np.ndarray | None = None, person_ids: np.ndarray | None = None,
                       progress: Progress | None = None) -> list[Path]:
    """Write ``keypoints (F, P, K, 3)`` as ``json_dir/{stem}_{frame:06d}.json``, one file per frame.

    Files are first written into a temporary folder beside ``json_dir`` and only
    moved in once all are written, so a failure leaves earlier files untouched
    (no fsync per file: thousands of small files, speed matters). Earlier
    ``{stem}_*.json`` files for frames not in this write are removed.
    ``person_ids``: (F, P) int, -1 unknown.
    """
    json_dir = Path(json_dir)
    keypoints, frame_numbers, person_ids = _check_write(json_dir, keypoints, frame_numbers, person_ids)
    with writing(json_dir):
        json_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{json_dir.name}.", dir=json_dir.parent))
        try:
            names = []
            tmp_s = str(tmp)  # plain strings: a Path per file costs as much as writing it
            finite = not np.isinf(keypoints).any()
            for f in range(len(keypoints)):
                name = f"{stem}_{int(frame_numbers[f]):06d}.json"
                with open(os.path.join(tmp_s, name), "wb") as fh:
                    fh.write(_dumps(openpose_frame(keypoints[f], person_ids[f]), finite))
                names.append(name)
                if f % 500 == 0:
                    report(progress, 0.9 * f / max(len(keypoints), 1), f"writing {json_dir.name}")
            _move_in(tmp, json_dir, stem, names)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    report(progress, 1.0, f"wrote {len(names)} frames")
    return [json_dir / n for n in names]


def _check_write(json_dir: Path, keypoints, frame_numbers, person_ids):
    keypoints = np.asarray(keypoints, dtype=float)
    if keypoints.ndim != 4 or keypoints.shape[-1] != 3:
        raise OpenKinError(f"keypoints must have shape (frames, people, keypoints, 3), got {keypoints.shape}",
                           path=json_dir, fix="add the people axis, e.g. keypoints[:, None] for one person")
    n, n_people = keypoints.shape[:2]
    frame_numbers = np.arange(n) if frame_numbers is None else np.asarray(frame_numbers).astype(int)
    if person_ids is None:
        person_ids = np.full((n, n_people), -1, dtype=int)
    person_ids = np.asarray(person_ids).astype(int)
    if frame_numbers.shape != (n,) or person_ids.shape != (n, n_people):
        raise OpenKinError(f"frame_numbers {frame_numbers.shape} / person_ids {person_ids.shape} do not match "
                           f"keypoints {keypoints.shape}", path=json_dir,
                           fix="give frame_numbers (F,) and person_ids (F, P)")
    if len(np.unique(frame_numbers)) != n:
        raise OpenKinError("frame_numbers repeat", path=json_dir, fix="give each frame its own number")
    return keypoints, frame_numbers, person_ids


def _move_in(tmp: Path, json_dir: Path, stem: str, names: list[str]) -> None:
    keep = set(names)
    src, dst = str(tmp), str(json_dir)
    for name in names:
        os.replace(os.path.join(src, name), os.path.join(dst, name))
    for old in json_dir.glob(f"{stem}*.json"):
        if old.name not in keep and _of_stem(old.name, stem) and frame_number(old) is not None:
            old.unlink()

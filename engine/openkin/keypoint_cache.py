"""Columnar cache of each camera folder's 2D keypoints: ``PROJECT/openkin/cache/<dir>/<cam>_json.kpc``.

Reading thousands of small pose JSON files is most of the time of association and
triangulation (600 frames × 4 cameras: ~0.1 s of ~0.3 s), and the run manifest reads them
all again to hash them. A camera folder is therefore read once: its keypoints
(:class:`openkin.formats.openpose.PoseFolder`) and each file's sha256 go into one file,
which every later stage and the manifest's folder hash reuse.

Validity: the cache stores each file's name and ``(inode, size, mtime_ns)``; a ``scandir``
of the folder (~2 µs per file) tells whether anything changed. Our writers replace files
(temporary + rename: a new inode), so a rewrite is seen even within one clock tick; a
file edited in place keeping its size within the same mtime tick is the one change it
cannot see. On any change the folder is read again; the file digests of unchanged entries
are kept (a file is hashed once), so the manifest's hash costs one read per changed file.

Only folders of an OpenKin project (``PROJECT/<dir>/<cam>_json`` with ``PROJECT/openkin/``)
are cached; anything else is read directly. A cache that cannot be written (read-only
project) or read (truncated, older version) is ignored with a debug log line: the cache
never changes a result, only the time to get it. Bad pose files raise the reader's errors
every time (a folder that does not parse has no keypoints in its cache).

Arrays stored: ``names (N,)`` file names, ``sig (N, 3)`` int64, ``digests (N, 32)`` uint8,
and, when the folder parsed, ``keypoints (F,P,K,3)``, ``frames (F,)``, ``ids (F,P)``,
``frame_names (F,)``, ``listed (F,)``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from stat import S_ISREG

import numpy as np

from .formats.openpose import PoseFolder, read_openpose_folder
from .progress import Progress, report

log = logging.getLogger(__name__)

VERSION = 2
CACHE_DIR = "cache"
SUFFIX = ".kpc"
# The file: MAGIC, the JSON header's length (8 bytes, little-endian), the JSON header
# {"version", "arrays": [[name, dtype, shape, offset, nbytes], ...]}, then the arrays' bytes.
# Chosen over .npz for speed: a read is one open and one read (~0.1 ms instead of ~0.9 ms for
# 600 frames: numpy parses each .npz member's header with ast.literal_eval).
MAGIC = b"OPENKIN-KEYPOINT-CACHE\n"
_DIGEST_ARRAYS = ("names", "sig", "digests")


def cache_file(folder: str | Path) -> Path | None:
    """Where ``folder``'s cache lives, or None when ``folder`` is not a camera's pose folder
    (``<cam>_json``, as :func:`openkin.inputs.pose_folders` finds them) of an OpenKin project."""
    folder = Path(folder).absolute()
    root = folder.parent.parent
    if "json" not in folder.name or not (root / "openkin").is_dir():
        return None
    return root / "openkin" / CACHE_DIR / folder.parent.name / f"{folder.name}{SUFFIX}"


def _signature(folder: Path) -> tuple[list[str], np.ndarray]:
    """Regular files of ``folder`` sorted by name → (names, ``sig (N, 3)`` inode, size, mtime_ns).

    One ``stat`` per entry, relative to an open descriptor of the folder (the kernel resolves
    one name, not the whole path: ~35% faster than ``scandir`` + ``DirEntry.stat`` for
    thousands of files); symbolic links are followed, as ``DirEntry.is_file()`` does."""
    if os.stat not in os.supports_dir_fd:  # e.g. Windows
        rows = [(e.name, st.st_ino, st.st_size, st.st_mtime_ns) for e in os.scandir(folder)
                if e.is_file(follow_symlinks=True) for st in (e.stat(),)]
        rows.sort()
        return [r[0] for r in rows], np.array([r[1:] for r in rows], dtype=np.int64).reshape(-1, 3)
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        names, rows, stat = [], [], os.stat
        for name in sorted(os.listdir(fd)):
            try:
                st = stat(name, dir_fd=fd)
            except FileNotFoundError:  # removed since the listing, or a dangling link
                continue
            if S_ISREG(st.st_mode):
                names.append(name)
                rows.append((st.st_ino, st.st_size, st.st_mtime_ns))
    finally:
        os.close(fd)
    return names, np.array(rows, dtype=np.int64).reshape(-1, 3)


# In-process memory of the last folders' signatures and digests, so that hashing a folder just
# read (the run manifest records each input) needs no reload of its cache file.
_RECENT: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
_RECENT_MAX = 64


def _remember(path: Path, names: list[str], sig: np.ndarray, digests: np.ndarray) -> None:
    _RECENT.pop(str(path), None)
    _RECENT[str(path)] = (names, sig, digests)
    while len(_RECENT) > _RECENT_MAX:
        _RECENT.pop(next(iter(_RECENT)))


def _load(path: Path | None, keypoints: bool = True) -> dict | None:
    """The cache file's arrays (``keypoints=False``: only names, sig and digests, read from the
    start of the file), or None when absent, unreadable or of another version."""
    if path is None or not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC) + 8)
            if head[:len(MAGIC)] != MAGIC:
                return None
            header = json.loads(fh.read(int.from_bytes(head[len(MAGIC):], "little")))
            if header.get("version") != VERSION:
                return None
            items = header["arrays"] if keypoints else [a for a in header["arrays"] if a[0] in _DIGEST_ARRAYS]
            size = max((offset + nbytes for _, _, _, offset, nbytes in items), default=0)
            buf = bytearray(size)  # writable arrays, as np.load gave
            if fh.readinto(buf) != size:
                return None  # truncated
        return {name: np.frombuffer(buf, dtype=np.dtype(dtype), count=int(np.prod(shape, dtype=int)),
                                    offset=offset).reshape(shape)
                for name, dtype, shape, offset, nbytes in items}
    except Exception as exc:  # a truncated or foreign file: the cache is only a speed-up
        log.debug("ignoring unreadable keypoint cache %s (%s)", path, exc)
        return None


def _encode(data: dict) -> list:
    """The cache file's parts: magic, header length, JSON header, then each array's bytes (C order,
    ``names``, ``sig`` and ``digests`` first so that :func:`_load` can stop after them)."""
    order = [k for k in _DIGEST_ARRAYS if k in data] + [k for k in data if k not in _DIGEST_ARRAYS]
    arrays = [(k, np.ascontiguousarray(data[k])) for k in order]
    items, offset = [], 0
    for name, a in arrays:
        items.append([name, a.dtype.str, list(a.shape), offset, a.nbytes])
        offset += a.nbytes
    header = json.dumps({"version": VERSION, "arrays": items}).encode()
    return [MAGIC, len(header).to_bytes(8, "little"), header] + [a.reshape(-1).view(np.uint8) for _, a in arrays]


def _save(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.writelines(_encode(data))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        path.with_suffix(".npz").unlink(missing_ok=True)  # the cache file of OpenKin before VERSION 2
        _remember(path, data["names"].tolist(), data["sig"], data["digests"])
    except OSError as exc:
        log.debug("keypoint cache not written %s (%s)", path, exc)


def _same(data: dict | None, names: list[str], sig: np.ndarray) -> bool:
    return (data is not None and data["sig"].shape == sig.shape and np.array_equal(data["sig"], sig)
            and data["names"].tolist() == names)


def _digests(folder: Path, names: list[str], sig: np.ndarray, old: dict | None,
             fresh: dict | None = None) -> np.ndarray:
    """``(N, 32)`` sha256 of each file: ``fresh`` ones (hashed while parsing), those unchanged
    since ``old``, else read and hashed now."""
    known = {}
    if old is not None and "digests" in old:
        known = {(n, tuple(s)): d for n, s, d in zip(old["names"].tolist(), old["sig"].tolist(), old["digests"])}
    fresh = fresh or {}
    out = np.zeros((len(names), 32), dtype=np.uint8)
    base = str(folder)
    for i, (name, s) in enumerate(zip(names, sig.tolist())):
        d = fresh.get(name)
        if d is None:
            d = known.get((name, tuple(s)))
        if d is None:
            with open(os.path.join(base, name), "rb") as fh:
                d = hashlib.sha256(fh.read()).digest()
        out[i] = np.frombuffer(d, dtype=np.uint8) if isinstance(d, bytes) else d
    return out


def _folder_arrays(pf: PoseFolder) -> dict:
    return {"keypoints": pf.keypoints, "frames": pf.frames, "ids": pf.ids,
            "frame_names": np.array(pf.names, dtype=str), "listed": pf.listed}


def _pose_folder(data: dict) -> PoseFolder:
    return PoseFolder(data["keypoints"], data["frames"].astype(int), data["ids"].astype(int),
                      data["frame_names"].tolist(), data["listed"].astype(int))


def _parse(folder: Path, names: list[str], sig: np.ndarray, old: dict | None,
           progress: Progress | None = None) -> tuple[PoseFolder, np.ndarray]:
    """Read ``folder`` (raises the reader's errors) → its :class:`PoseFolder` and file digests."""
    fresh: dict = {}
    pf = read_openpose_folder(folder, progress=progress, digests=fresh)
    return pf, _digests(folder, names, sig, old, fresh)


def read_folder(folder: str | Path, progress: Progress | None = None) -> PoseFolder:
    """:func:`openkin.formats.openpose.read_openpose_folder` of ``folder`` through its cache (see
    the module doc): the cached arrays when no file changed, else the folder read again (and
    the cache rewritten). Raises the reader's :class:`~openkin.errors.OpenKinError` for bad files."""
    folder = Path(folder)
    path = cache_file(folder)
    if path is None or not folder.is_dir():
        return read_openpose_folder(folder, progress=progress)
    names, sig = _signature(folder)
    data = _load(path)
    if _same(data, names, sig) and "keypoints" in data:
        _remember(path, names, sig, data["digests"])
        report(progress, 1.0, f"read {len(data['frames'])} frames (cached)")
        return _pose_folder(data)
    pf, digests = _parse(folder, names, sig, data, progress)
    _save(path, {"names": np.array(names, dtype=str), "sig": sig, "digests": digests, **_folder_arrays(pf)})
    return pf


def file_digests(folder: str | Path) -> list[tuple[str, bytes]]:
    """``[(file name, sha256 digest)]`` of every regular file of ``folder``, sorted by name (see
    :func:`digest_table`)."""
    names, digests = digest_table(folder)
    return list(zip(names, (bytes(d) for d in digests)))


def digest_table(folder: str | Path) -> tuple[list[str], np.ndarray]:
    """Every regular file of ``folder`` sorted by name → (names, ``digests (N, 32)`` uint8 sha256):
    from the cache for files unchanged since it was written, else by reading them. A cacheable
    pose folder is also parsed (in the same read) so that the next stage reading it finds its
    keypoints."""
    folder = Path(folder)
    path = cache_file(folder)
    names, sig = _signature(folder)
    if path is None:
        return names, _digests(folder, names, sig, None)
    recent = _RECENT.get(str(path))
    if recent is not None and recent[0] == names and np.array_equal(recent[1], sig):
        return names, recent[2]
    data = _load(path, keypoints=False)
    if _same(data, names, sig):
        _remember(path, names, sig, data["digests"])
        return names, data["digests"]
    arrays = {}
    try:
        pf, digests = _parse(folder, names, sig, data)
        arrays = _folder_arrays(pf)
    except Exception as exc:  # not a pose folder, or bad files: the stage reading them raises the reader's error
        log.debug("%s not cached as keypoints (%s)", folder, exc)
        digests = _digests(folder, names, sig, data)
    _save(path, {"names": np.array(names, dtype=str), "sig": sig, "digests": digests, **arrays})
    return names, digests


def derive_renamed(src: str | Path, dst: str | Path, rename) -> bool:
    """Seed ``dst``'s cache from ``src``'s when ``dst`` holds hard links (or copies) of ``src``'s
    files under new names: ``rename(name) -> (new name, frame shift) | None`` (None: file not
    carried over). Synchronisation writes ``pose-sync/`` so (288,000 files for a 10-minute
    8-camera take), and reading them all again to hash them cost as much as reading ``pose/``.
    The digests are the source's (same contents); the keypoints the source's rows with their
    frames shifted. Returns False (nothing written) when ``src`` has no valid cache with
    keypoints or ``dst`` holds other files; the cache is then built by the next read."""
    src, dst = Path(src), Path(dst)
    src_path, dst_path = cache_file(src), cache_file(dst)
    if src_path is None or dst_path is None:
        return False
    names, sig = _signature(src)
    data = _load(src_path)
    if not (_same(data, names, sig) and "keypoints" in data):
        return False
    digest_of, frame_of = {}, {}
    for name, digest in zip(names, data["digests"]):
        new = rename(name)
        if new is not None:
            digest_of[new[0]] = digest
            frame_of[name] = new
    dst_names, dst_sig = _signature(dst)
    if sorted(digest_of) != dst_names:
        return False
    old_names = data["frame_names"].tolist()
    keep = np.array([n in frame_of for n in old_names], dtype=bool)
    kept_names = [frame_of[n][0] for n in old_names if n in frame_of]
    shifts = np.array([frame_of[n][1] for n in old_names if n in frame_of], dtype=np.int64)
    arrays = {"keypoints": data["keypoints"][keep], "frames": data["frames"][keep] + shifts,
              "ids": data["ids"][keep], "frame_names": np.array(kept_names, dtype=str), "listed": data["listed"][keep]}
    digests = np.stack([digest_of[n] for n in dst_names]) if dst_names else np.zeros((0, 32), np.uint8)
    _save(dst_path, {"names": np.array(dst_names, dtype=str), "sig": dst_sig, "digests": digests, **arrays})
    return True

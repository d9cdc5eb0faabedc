"""Safe file writing: write to a temporary file beside the target, then rename.

A crash or an error half-way never leaves a truncated file, and a user's earlier
result is only replaced once the new one is complete.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import OpenKinError

log = logging.getLogger(__name__)

# errno -> (problem, fix) for write failures a user can act on
_WRITE_ERRORS = {
    errno.EACCES: ("permission denied", "make the folder writable (chmod u+w) or choose another output folder"),
    errno.EPERM: ("operation not permitted", "make the folder writable (chmod u+w) or choose another output folder"),
    errno.EROFS: ("the file system is read-only", "copy the project to a writable disk and run there"),
    errno.ENOSPC: ("no space left on the device", "free some disk space (or move the project to a larger "
                                                    "disk) and run again; earlier outputs were kept"),
    errno.EDQUOT: ("disk quota exceeded", "free some space within your quota and run again; earlier "
                                          "outputs were kept"),
    errno.EFBIG: ("file too large for this file system", "write to a disk whose file system allows large files"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter project path"),
}


def write_error(exc: OSError, path: str | Path) -> OpenKinError | None:
    """The :class:`OpenKinError` for an ``OSError`` met while writing ``path`` (permissions,
    read-only or full disk, quota), or None for errors that are not the user's to fix."""
    known = _WRITE_ERRORS.get(exc.errno)
    if known is None:
        return None
    problem, fix = known
    return OpenKinError(f"cannot write: {problem}", path=Path(path), fix=fix)


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a user-fixable ``OSError`` raised in the block into an :class:`OpenKinError` on ``path``.

    For writers that cannot use :func:`atomic_write` (folders of files, libraries)::

        with writing(out_dir):
            tmp = tempfile.mkdtemp(dir=out_dir.parent)
    """
    try:
        yield
    except OSError as exc:
        err = write_error(exc, _target(exc.filename, path) if exc.filename else path)
        if err is None:
            raise
        raise err from None


def _target(filename, path: str | Path) -> Path:
    """The file to name in a write error: the user's ``path`` for its temporary files and
    itself, the folder when the error was on a folder above it, else the file of the error."""
    filename, path = Path(os.fsdecode(filename)), Path(path)
    if filename in path.parents:
        return filename
    return path if filename.parent == path.parent or filename.parent == path else filename


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str | Path, path: Path, mode: int | None = None) -> None:
    """Give the temporary file the permissions a plain ``open()`` would have (``mode``, computed
    by the caller in the main thread: reading the umask changes it for a moment), then rename it."""
    os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
    os.replace(tmp, path)


# Temporary files of writes in progress. An interrupt that lands between a context manager's
# __enter__ and its block leaves the writer's generator suspended (its clean-up runs only when it
# is collected); a process that then leaves at once (os._exit, see openkin.cli) removes them here.
_PENDING: set[str] = set()


def remove_pending_temporaries() -> None:
    """Remove the temporary files of writes that never finished (before ``os._exit``)."""
    for name in list(_PENDING):
        with contextlib.suppress(OSError):
            os.unlink(name)
        _PENDING.discard(name)


def _new_temporary(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` (its folder made if needed), open (descriptor) and registered
    in :data:`_PENDING` so that an interrupted CLI removes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    _PENDING.add(tmp)
    return fd, tmp


def _drop_temporary(tmp: str) -> None:
    """Remove a failed write's temporary file (if still there) and forget it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    _PENDING.discard(tmp)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it over ``path``.

    Usage::

        with atomic_write(out / "a.trc") as f:
            f.write(text)
    """
    path = Path(path)
    binary = "b" in mode
    with writing(path):
        fd, tmp = _new_temporary(path)
        try:
            with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            settle()
            _publish(tmp, path)
        except BaseException:
            _drop_temporary(tmp)
            raise
        finally:
            _PENDING.discard(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for libraries that write files themselves
    (OpenSim, ezc3d, OpenCV); it is renamed over ``path`` only if the block succeeds."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = None
        try:   # an interrupt anywhere from here on (even before the yield) removes the temporary file
            fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
            _PENDING.add(name)
            tmp = Path(name)
            os.close(fd)
            yield tmp
            if _disk_full(tmp):  # the library may have stopped writing silently
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            settle()
            _publish(tmp, path)
        except BaseException:
            if tmp is not None:
                _drop_temporary(str(tmp))
            raise
        finally:
            if tmp is not None:
                _PENDING.discard(str(tmp))


# Writes handed to a background thread by write_later (their fsync and rename), in call order.
_LATER: list = []
_EXECUTOR = None


def write_later(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` like :func:`atomic_write`, but return once the temporary file is
    written: its fsync and rename run in a background thread, in call order, overlapping the
    caller's work (a stage starts computing while its manifest record reaches the disk).

    Guarantees kept: the file under its final name is never half-written (fsync before the
    rename, as atomic_write); order on disk follows the calls: every file this module publishes
    (atomic_write, atomic_path) and the association writer's folders wait for :func:`settle`
    first, so no output is replaced before an earlier ``write_later`` has landed. A process
    killed meanwhile leaves ``path`` as it was before (and its temporary file, which an
    interrupted CLI removes, see :func:`remove_pending_temporaries`)."""
    global _EXECUTOR
    path = Path(path)
    data = text.encode("utf-8")
    with writing(path):
        fd, tmp = _new_temporary(path)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            _drop_temporary(tmp)
            raise
    if _EXECUTOR is None:
        from concurrent.futures import ThreadPoolExecutor

        _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openkin-write-later")
    _LATER.append((_EXECUTOR.submit(_sync_and_publish, fd, tmp, path, 0o666 & ~_umask()), tmp))


def _sync_and_publish(fd: int, tmp: str, path: Path, mode: int) -> None:
    """(Background thread) fsync the written temporary file, close it, rename it over ``path``."""
    try:
        with writing(path):
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _publish(tmp, path, mode)
    except BaseException:
        _drop_temporary(tmp)
        raise
    finally:
        _PENDING.discard(tmp)


def settle() -> None:
    """Wait until every :func:`write_later` write is on disk under its name; raises the first
    one's error (an :class:`OpenKinError` for a full disk, as atomic_write would have)."""
    while _LATER:
        _LATER.pop(0)[0].result()


def _forget_in_child() -> None:
    """A forked child (worker processes of kinematics, pose) has no copy of the writing thread:
    it neither waits for its parent's background writes nor removes their temporary files."""
    global _EXECUTOR
    for _, tmp in _LATER:
        _PENDING.discard(tmp)
    _LATER.clear()
    _EXECUTOR = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _disk_full(path: Path) -> bool:
    """Whether the file system of ``path`` has no free block left (libraries such as OpenSim
    or ezc3d may leave an empty file and report nothing when the disk is full)."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail == 0


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_optional_toml(path: str | Path, unreadable: str = "ignored") -> dict:
    """A TOML file OpenKin wrote for itself (records, reports): ``{}`` when it is absent,
    and ``{}`` with a warning ending in ``unreadable`` when it cannot be parsed."""
    import tomllib

    path = Path(path)
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        log.warning("%s is unreadable: %s", path, unreadable)
        return {}


def _toml_ready(value):
    """``value`` with numpy scalars/arrays turned into Python numbers/lists, tuples into
    lists and ``None`` entries of tables dropped (TOML has no null), for ``tomli_w``."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_toml_ready(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def toml_dumps(doc: dict) -> str:
    """TOML text of a dict (numpy values, tuples and paths accepted; ``None`` dropped)."""
    import tomli_w

    return tomli_w.dumps(_toml_ready(doc))


def parse_toml_value(text: str):
    """A command-line value in TOML syntax (``2.5``, ``'kalman'``, ``[1, 2]``, ``true``);
    text that is not valid TOML is returned as the plain string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text

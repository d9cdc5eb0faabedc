"""Safe file writing: write to a temporary file beside the target, then rename.

A crash or an error half-way never leaves a truncated file, and a user's earlier
result is only replaced once the new one is complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str | Path, path: Path) -> None:
    """Give the temporary file the permissions a plain ``open()`` would have, then rename it."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it over ``path``.

    Usage::

        with atomic_write(out / "a.trc") as f:
            f.write(text)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for libraries that write files themselves
    (OpenSim, ezc3d, OpenCV); it is renamed over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


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

"""One run per project at a time: an OS file lock on ``PROJECT/openkin/.lock``.

The operating system holds the lock (``fcntl.flock`` on Linux, ``msvcrt.locking`` on
Windows) and releases it when the process ends, however it ends: a crashed or killed run
never leaves a stale lock behind. The file also says who holds it (PID, host, start time),
written after byte 0, the byte that is locked (on Windows a locked range cannot be read by
others).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from .errors import OpenKinError
from .fileio import writing

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
WAIT_POLL_S = 0.5


def _try_lock(fd: int) -> bool:
    """Lock byte 0 of ``fd`` without waiting; False when another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def holder(lock_path: Path) -> str:
    """What the lock file says about its holder ("PID 1234 on host since ..."), or 'unknown'."""
    try:
        with open(lock_path, "rb") as f:
            f.seek(1)
            text = f.read(200).decode("utf-8", "replace").strip()
        return text or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def project_lock(root: Path, wait: bool = False) -> Iterator[Path]:
    """Hold the project's lock for the duration of the ``with`` block.

    Another process holding it: :class:`OpenKinError` naming the project, the holder and the
    fix, at once; with ``wait=True``, wait for it (logged every minute).
    """
    root = Path(root)
    path = root / "openkin" / LOCK_NAME
    with writing(path):  # a read-only project or a full disk: OpenKinError naming the file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited, told = 0.0, -60.0
        while not _try_lock(fd):
            who = holder(path)
            if not wait:
                raise OpenKinError(f"another OpenKin run is processing this project ({who})", path=root,
                                   fix="wait until it finishes (or stop that process), or run again with --wait")
            if waited - told >= 60.0:
                log.info("waiting for the other run on %s to finish (%s)", root, who)
                told = waited
            time.sleep(WAIT_POLL_S)
            waited += WAIT_POLL_S
        try:
            os.lseek(fd, 1, os.SEEK_SET)
            os.ftruncate(fd, 1)
            os.write(fd, f"PID {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}\n"
                     .encode())
            yield path
        finally:
            _unlock(fd)
    finally:
        os.close(fd)

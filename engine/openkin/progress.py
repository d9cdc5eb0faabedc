"""Progress reporting through an injected callback.

Every long-running function takes ``progress: Progress | None``. It is called
with a fraction in [0, 1] and a short message, and returns ``False`` to ask the
work to stop (the Blender add-on's cancel button, Ctrl-C in the CLI).
"""
from __future__ import annotations

import threading
from typing import Callable, Protocol

_INTERRUPTED = threading.Event()  # set by the CLI's signal handler (on_interrupt_signal)


class Cancelled(Exception):
    """Raised inside a stage when its progress callback asked to stop."""


class Progress(Protocol):
    def __call__(self, fraction: float, message: str = "") -> bool | None: ...


def on_interrupt_signal(signum, frame) -> None:
    """The CLI's SIGINT/SIGTERM handler: remember the interrupt, then raise KeyboardInterrupt.

    Remembering it matters when the exception is swallowed: a signal that lands while a
    destructor, a weakref callback or a library's callback runs is printed as "Exception
    ignored" and dropped, and the run would go on. :func:`check_interrupted` (called by every
    progress report and before a stage is recorded as done) raises it again."""
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def clear_interrupted() -> None:
    """Forget an earlier interrupt (the start of a CLI command run in-process)."""
    _INTERRUPTED.clear()


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if the process was interrupted (see :func:`on_interrupt_signal`)."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


def report(progress: Progress | None, fraction: float, message: str = "") -> None:
    """Call ``progress`` if given; raise :class:`Cancelled` when it returns ``False``, and
    KeyboardInterrupt when the process was interrupted meanwhile."""
    check_interrupted()
    if progress is None:
        return
    if progress(min(max(fraction, 0.0), 1.0), message) is False:
        raise Cancelled(message or "cancelled")


def scaled(progress: Progress | None, start: float, end: float) -> Progress | None:
    """A callback mapping [0, 1] onto [start, end] of ``progress`` (sub-steps of a stage)."""
    if progress is None:
        return None

    def inner(fraction: float, message: str = "") -> bool | None:
        return progress(start + (end - start) * fraction, message)

    return inner


def tqdm_progress(desc: str) -> tuple[Callable[[float, str], bool], Callable[[], None]]:
    """A CLI progress bar as a callback, and a function that closes it."""
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, unit="‰", leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")  # time left: long takes

    def cb(fraction: float, message: str = "") -> bool:
        bar.n = int(fraction * 1000)
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()
        return True

    return cb, bar.close

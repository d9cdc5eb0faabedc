"""Progress reporting through an injected callback.

Every long-running function takes ``progress: Progress | None``. It is called
with a fraction in [0, 1] and a short message, and returns ``False`` to ask the
work to stop (the Blender add-on's cancel button, Ctrl-C in the CLI).
"""
from __future__ import annotations

from typing import Callable, Protocol


class Cancelled(Exception):
    """Raised inside a stage when its progress callback asked to stop."""


class Progress(Protocol):
    def __call__(self, fraction: float, message: str = "") -> bool | None: ...


def report(progress: Progress | None, fraction: float, message: str = "") -> None:
    """Call ``progress`` if given; raise :class:`Cancelled` when it returns ``False``."""
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

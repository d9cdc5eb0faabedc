"""The one error type users see: it names the file, the problem and the fix."""
from __future__ import annotations

from pathlib import Path


class OpenKinError(Exception):
    """A user-facing error: what went wrong, in which file, and how to fix it.

    The CLI prints it without a traceback and exits with code 2; the Blender
    add-on shows it in the panel.
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, fix: str | None = None):
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        fix = f"\n  fix: {self.fix}" if self.fix else ""
        return f"{where}{self.problem}{fix}"

    def __reduce__(self):
        return (_rebuild, (self.problem, self.path, self.fix))


def _rebuild(problem, path, fix):
    return OpenKinError(problem, path=path, fix=fix)

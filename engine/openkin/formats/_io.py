"""Small helpers shared by the format modules: reading files with clear errors,
and formatting numbers so that files round-trip exactly."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from ..errors import OpenKinError

log = logging.getLogger(__name__)


def read_text(path: str | Path, what: str, fix: str | None = None) -> str:
    """The text of ``path``; a missing or unreadable file is an :class:`OpenKinError`."""
    path = Path(path)
    if not path.is_file():
        problem = f"{what} not found" if not path.exists() else f"{what} is not a file"
        raise OpenKinError(problem, path=path, fix=fix or f"check the path of the {what}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OpenKinError(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})", path=path,
                           fix=f"give a text {what}, not a binary file") from None
    except OSError as exc:
        raise OpenKinError(f"cannot read {what}: {exc.strerror}", path=path, fix="check file permissions") from None


def read_bytes(path: str | Path, what: str, fix: str | None = None) -> bytes:
    """The bytes of ``path``; a missing file is an :class:`OpenKinError`."""
    path = Path(path)
    if not path.is_file():
        raise OpenKinError(f"{what} not found", path=path, fix=fix or f"check the path of the {what}")
    return path.read_bytes()


def parse_floats(cells: np.ndarray) -> np.ndarray:
    """Parse an array of strings into floats, empty strings becoming NaN.

    Raises ``ValueError`` on a cell that is not a number.
    """
    cells = np.char.strip(np.asarray(cells, dtype=str))
    cells = np.where(cells == "", "nan", cells)
    return cells.astype(float)


def fast_table(lines: list[str], width: int) -> np.ndarray | None:
    """Tab-separated numeric rows → (N, width) floats, empty cells NaN, parsed in C by
    ``np.loadtxt`` (for speed: TRC files reach millions of values).

    Returns None when rows are ragged, a cell is not a number, or extra columns hold
    values; the caller then parses row by row and names the bad line.
    """
    rows = [line.rstrip("\r") for line in lines if line.strip()]
    if not rows:
        return None
    text = "\n".join(rows) + "\n"
    if text.startswith("\t") or "\n\t" in text:
        return None
    text = text.replace("\t\t", "\tnan\t").replace("\t\t", "\tnan\t").replace("\t\n", "\tnan\n")
    try:
        table = np.loadtxt(io.StringIO(text), delimiter="\t", ndmin=2, dtype=float, comments=None)
    except ValueError:
        return None
    if table.shape[1] < width or (table.shape[1] > width and not np.isnan(table[:, width:]).all()):
        return None
    return table[:, :width]


def format_rows(table: np.ndarray, fmt: str = "%.10g", nan: str = "") -> list[str]:
    """(N, C) floats → N tab-joined lines, NaN written as ``nan`` text (C-level % formatting per row,
    several times faster than elementwise ``np.char.mod``)."""
    row_fmt = "\t".join([fmt] * table.shape[1])
    lines = [row_fmt % tuple(row) for row in np.asarray(table, dtype=float).tolist()]
    if nan != "nan" and np.isnan(table).any():
        lines = [line.replace("nan", nan) for line in lines]
    return lines


def declared_count(value: str | None) -> int | None:
    """A header's row count (``NumFrames``, ``nRows``) as an int, or None when absent or not a count."""
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def complete_lines(text: str, lines: list[str], width: int, declared: int | None) -> tuple[list[str], bool]:
    """The data ``lines`` without a last row cut off by truncation → (lines, dropped).

    The last row counts as cut off when the text does not end with a newline and the row
    has fewer than ``width`` cells, or fewer rows than ``declared`` are present (its last
    number may then be cut short too)."""
    if not lines or text.endswith(("\n", "\r")):
        return lines, False
    last = max((i for i, line in enumerate(lines) if line.strip()), default=None)
    if last is None:
        return lines, False
    n_rows = sum(1 for line in lines if line.strip())
    short = len(lines[last].rstrip("\r").split("\t")) < width
    if short or (declared is not None and n_rows < declared):
        return lines[:last], True
    return lines, False


def check_count(path: Path, what: str, declared: int | None, got: int, dropped: bool, key: str,
                next_frame: int | None = None) -> None:
    """Warn (naming the file and the frames lost) when fewer rows than ``declared`` were read, or
    a cut-off last row was dropped; an :class:`OpenKinError` when no row is left."""
    if got == 0 and (declared or dropped):
        raise OpenKinError(f"{what} has no complete data row (its header declares {declared} under {key}); "
                           "the file looks truncated", path=path,
                           fix="write the file again (rerun the stage that made it) or restore it from a copy")
    if declared is not None and got < declared:
        lost = declared - got
        which = (f"frames {next_frame}-{next_frame + lost - 1}" if next_frame is not None and lost > 1
                 else f"frame {next_frame}" if next_frame is not None else f"the last {lost}")
        log.warning("%s: the header declares %d frames (%s) but only %d complete rows are present: %s "
                    "lost (the file looks truncated); continuing with %d frames. Rerun the stage that wrote "
                    "it to get them back", path, declared, key, got, which, got)
    elif dropped:
        log.warning("%s: the last row is cut short (no newline at the end of the file): dropped; "
                    "continuing with %d frames", path, got)

"""Small helpers shared by the format modules: reading files with clear errors,
and formatting numbers so that files round-trip exactly."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import OpenKinError


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

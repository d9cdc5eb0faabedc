"""Small helpers shared by the format modules: reading files with clear errors,
and formatting numbers so that files round-trip exactly."""
from __future__ import annotations

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


def format_floats(values: np.ndarray, fmt: str = "%.10g", nan: str = "") -> np.ndarray:
    """Format an array of floats elementwise (vectorised); NaN becomes ``nan``.

    ``%.10g`` keeps 10 significant digits: sub-micrometre for positions in metres.
    """
    text = np.char.mod(fmt, np.asarray(values, dtype=float))
    if nan != "nan":
        text = np.where(np.isnan(values), nan, text)
    return text


def parse_floats(cells: np.ndarray) -> np.ndarray:
    """Parse an array of strings into floats, empty strings becoming NaN.

    Raises ``ValueError`` on a cell that is not a number.
    """
    cells = np.char.strip(np.asarray(cells, dtype=str))
    cells = np.where(cells == "", "nan", cells)
    return cells.astype(float)

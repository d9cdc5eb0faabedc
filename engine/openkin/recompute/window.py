"""Reading a window of frames of a long take without reading all of it: the 2D detections of
some frames (only their JSON files), some rows of a TRC file (only their lines parsed)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import OpenKinError
import re

from ..formats.openpose import read_openpose_json

_FRAME = re.compile(r"(\d+)(?!.*\d)")  # the last number of a file name (as the folder reader takes it)
from ..formats.trc import UNIT_SCALE, Trc


def read_pose_window(folders: list[Path], frames: np.ndarray) -> np.ndarray:
    """The detections of ``frames (F,)`` in each camera folder → ``(C,F,P,K,3)`` [x, y, conf],
    NaN where absent (as :func:`openkin.inputs.read_views` aligns them: by the frame number
    in the file name). Reads only those frames' files."""
    wanted = {int(f): i for i, f in enumerate(frames)}
    per_cam: list[dict[int, list[np.ndarray]]] = []
    for folder in folders:
        found: dict[int, list[np.ndarray]] = {}
        for entry in os.scandir(folder):
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            match = _FRAME.search(entry.name[:-5])
            n = int(match.group(1)) if match else None
            if n in wanted:
                found[wanted[n]] = read_openpose_json(entry.path)[0]
        per_cam.append(found)
    people = [a for found in per_cam for arrays in found.values() for a in arrays]
    K = max((a.shape[0] for a in people), default=0)
    P = max((len(arrays) for found in per_cam for arrays in found.values()), default=0)
    out = np.full((len(folders), len(frames), max(P, 1), K, 3), np.nan)
    for c, found in enumerate(per_cam):
        for i, arrays in found.items():
            for p, a in enumerate(arrays):
                out[c, i, p, :a.shape[0]] = a
    out[np.all(out == 0, axis=-1)] = np.nan  # absent points written 0, 0, 0 (as the folder reader)
    return out


def _lines(path: Path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def trc_frame_span(path: Path) -> tuple[int, int]:
    """First and last ``Frame#`` of a TRC file (reads its head and its tail only)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("utf-8", "replace").splitlines()
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - (1 << 16)))
        tail = f.read().decode("utf-8", "replace").splitlines()
    first = [line for line in head[5:] if line.strip()]
    last = [line for line in tail if line.strip()]
    if not first or not last:
        raise OpenKinError("TRC file has no data rows", path=path, fix="run its stage again")
    return int(first[0].split("\t", 1)[0]), int(last[-1].split("\t", 1)[0])


def read_trc_rows(path: Path, lo: int, hi: int) -> Trc:
    """Rows with ``lo <= Frame# <= hi`` of a TRC file → :class:`Trc` (metres), parsing only those."""
    lines = _lines(path)
    head = dict(zip(lines[1].split("\t"), lines[2].split("\t")))
    names = [c.strip() for c in lines[3].split("\t")[2:] if c.strip()]
    scale = UNIT_SCALE[head.get("Units", "m").strip().lower()]
    width = 2 + 3 * len(names)
    rows = []
    for line in lines[5:]:
        key = line.split("\t", 1)[0]
        if not key.strip() or not lo <= int(key) <= hi:
            continue
        cells = line.split("\t")
        rows.append([float(c) if c.strip() else np.nan for c in (cells + [""] * width)[:width]])
    table = np.array(rows, float).reshape(len(rows), width)
    return Trc(names, float(head["DataRate"]), table[:, 2:].reshape(len(rows), len(names), 3) * scale,
               frame_numbers=table[:, 0].astype(int), times=table[:, 1])

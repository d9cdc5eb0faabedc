"""Valid sample files and malformed variants for every reader, shared by the property
tests (``test_properties_formats.py``) and the fuzz benchmark (``tests/bench/bench_fuzz.py``).

``FORMATS``: name -> (suffix, sample writer, reader). A reader takes the path of one
file (OpenPose: the file is put in a ``cam01_json`` folder with valid neighbours).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from openkin.formats import calibration as cal
from openkin.formats.c3d import read_c3d, write_c3d
from openkin.formats.mot import Motion, read_mot, write_mot
from openkin.formats.openpose import openpose_frame, read_openpose_dir
from openkin.formats.trc import Trc, read_trc, write_trc

TOKENS = [b"NaN", b"nan", b"inf", b"-inf", b"Infinity", b"1e999", b"-", b"", b"abc", b'"NaN"', b'"1.0"',
          b"\t", b"\n", b"\r\n", b"[", b"]", b"{", b"}", b",", b"=", b"\x00", b"\xff\xfe", b"0", b"-1",
          b"99999999999999999999", b"true", b"null", b"[]", b"#", b"'", b'"', b"\\", b"endheader",
          b"PathFileType", b"[cam_9]", b"matrix = 1"]


def sample_cameras(rng: np.random.Generator, n: int = 2) -> list[cal.Camera]:
    cams = []
    for i in range(n):
        f = rng.uniform(300, 3000)
        K = [[f, 0, rng.uniform(100, 900)], [0, f * rng.uniform(0.9, 1.1), rng.uniform(100, 900)], [0, 0, 1]]
        dist = rng.normal(0, 0.05, 5 if i % 2 else 4)
        cams.append(cal.Camera(f"cam{i + 1:02d}", [1920, 1080], K, dist, rng.uniform(-2, 2, 3), rng.uniform(-5, 5, 3),
                               fisheye=bool(i % 3 == 2)))
    return cams


def sample_trc(rng: np.random.Generator, n: int = 12, m: int = 4) -> Trc:
    xyz = rng.normal(size=(n, m, 3))
    xyz[rng.random((n, m)) < 0.1] = np.nan
    return Trc([f"M{i}" for i in range(m)], 60.0, xyz, frame_numbers=np.arange(3, 3 + n))


def sample_motion(rng: np.random.Generator, n: int = 12) -> Motion:
    values = rng.normal(size=(n, 3)) * 30
    return Motion(["pelvis_tilt", "hip_flexion_r", "knee_angle_r"], np.arange(n) / 60, values)


def sample_pose(rng: np.random.Generator, k: int = 5) -> dict:
    kp = np.concatenate([rng.uniform(0, 1000, (2, k, 2)), rng.uniform(0.1, 1, (2, k, 1))], axis=-1)
    kp[1, 2] = np.nan
    return openpose_frame(kp, np.array([0, 1]))


def write_sample(fmt: str, path: Path, rng: np.random.Generator) -> Path:
    """A valid file of ``fmt`` at ``path``."""
    if fmt == "calibration":
        return cal.write_calibration(path, sample_cameras(rng))
    if fmt == "trc":
        return write_trc(path, sample_trc(rng))
    if fmt == "mot":
        return write_mot(path, sample_motion(rng))
    if fmt == "sto":
        return write_mot(path, sample_motion(rng))
    if fmt == "c3d":
        return write_c3d(path, sample_trc(rng))
    if fmt == "openpose":
        path.write_text(json.dumps(sample_pose(rng)))
        return path
    raise ValueError(fmt)


SUFFIX = {"calibration": ".toml", "trc": ".trc", "mot": ".mot", "sto": ".sto", "c3d": ".c3d", "openpose": ".json"}


def read(fmt: str, path: Path):
    """Run the reader of ``fmt`` on ``path`` (OpenPose: its folder, with valid neighbours)."""
    if fmt == "calibration":
        return cal.read_calibration(path)
    if fmt == "trc":
        return read_trc(path)
    if fmt in ("mot", "sto"):
        return read_mot(path)
    if fmt == "c3d":
        return read_c3d(path)
    if fmt == "openpose":
        folder = path.parent / "cam01_json"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        shutil.copy(path, folder / "cam01_000001.json")
        for frame in (0, 2):
            (folder / f"cam01_{frame:06d}.json").write_text(json.dumps(sample_pose(np.random.default_rng(frame))))
        return read_openpose_dir(folder)
    raise ValueError(fmt)


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One malformed variant of ``data``: random bytes, a truncation, or 1-4 random edits."""
    kind = rng.integers(0, 8)
    if kind == 0:
        return rng.integers(0, 256, rng.integers(0, 2000), dtype=np.uint8).tobytes()
    if kind == 1:
        return data[:rng.integers(0, len(data) + 1)]
    out = bytearray(data)
    for _ in range(rng.integers(1, 5)):
        out = _edit(out, rng)
    return bytes(out)


def _edit(out: bytearray, rng: np.random.Generator) -> bytearray:
    n = len(out)
    pos = int(rng.integers(0, n + 1))
    kind = rng.integers(0, 6)
    if kind == 0 and n:  # flip bytes
        for p in rng.integers(0, n, rng.integers(1, 8)):
            out[p] = int(rng.integers(0, 256))
        return out
    if kind == 1:  # insert a token
        return out[:pos] + TOKENS[rng.integers(0, len(TOKENS))] + out[pos:]
    if kind == 2:  # delete a span
        return out[:pos] + out[pos + int(rng.integers(1, 200)):]
    if kind == 3:  # replace a number-like run with a token
        lines = bytes(out).split(b"\n")
        i = int(rng.integers(0, len(lines)))
        cells = lines[i].split(b"\t") if b"\t" in lines[i] else lines[i].split(b",")
        j = int(rng.integers(0, len(cells)))
        cells[j] = TOKENS[rng.integers(0, len(TOKENS))]
        lines[i] = (b"\t" if b"\t" in lines[i] else b",").join(cells)
        return bytearray(b"\n".join(lines))
    if kind == 4:  # drop or duplicate a line
        lines = bytes(out).split(b"\n")
        i = int(rng.integers(0, len(lines)))
        lines = lines[:i] + lines[i + 1:] if rng.random() < 0.5 else lines[:i] + [lines[i]] + lines[i:]
        return bytearray(b"\n".join(lines))
    # duplicate a span
    span = out[pos:pos + int(rng.integers(1, 300))]
    return out[:pos] + span + out[pos:]

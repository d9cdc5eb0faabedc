"""Timings of the file formats at realistic sizes (prints figures; not a pytest test).

Run: .venv/bin/python tests/bench/bench_formats.py [--frames 2000]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from openkin.formats.c3d import read_c3d, write_c3d
from openkin.formats.mot import Motion, read_mot, write_mot
from openkin.formats.openpose import read_openpose_dir, write_openpose_dir
from openkin.formats.trc import Trc, read_trc, write_trc


def timed(label, fn):
    start = time.perf_counter()
    result = fn()
    print(f"{label:<48s} {time.perf_counter() - start:7.3f} s")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    n = args.frames
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        kp = rng.uniform(0, 1000, (n, 2, 26, 3))
        timed(f"OpenPose write {n} frames x 2 people x 26", lambda: write_openpose_dir(tmp / "c_json", "c", kp))
        timed(f"OpenPose read  {n} files", lambda: read_openpose_dir(tmp / "c_json"))
        xyz = rng.normal(size=(n, 80, 3))
        xyz[::9, 5] = np.nan
        trc = Trc([f"m{i}" for i in range(80)], 100.0, xyz)
        timed(f"TRC write {n} frames x 80 markers", lambda: write_trc(tmp / "a.trc", trc))
        timed(f"TRC read  {n} frames x 80 markers", lambda: read_trc(tmp / "a.trc"))
        timed(f"C3D write {n} frames x 80 markers", lambda: write_c3d(tmp / "a.c3d", trc))
        timed(f"C3D read  {n} frames x 80 markers", lambda: read_c3d(tmp / "a.c3d"))
        motion = Motion([f"q{i}" for i in range(40)], np.arange(n) / 100, rng.normal(size=(n, 40)))
        timed(f"MOT write {n} frames x 40 coordinates", lambda: write_mot(tmp / "a.mot", motion))
        timed(f"MOT read  {n} frames x 40 coordinates", lambda: read_mot(tmp / "a.mot"))


if __name__ == "__main__":
    main()

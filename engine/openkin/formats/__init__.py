"""File formats: calibration TOML (+ converters from other systems), OpenPose JSON,
TRC, MOT/STO and C3D. Every reader returns plain numpy arrays in documented shapes
and raises :class:`openkin.errors.OpenKinError` on bad input; every writer is atomic.

Import the submodules (``from openkin.formats import trc``) or the names below.
"""
from .c3d import read_c3d, write_c3d
from .calib_converters import convert_calibration
from .calibration import Camera, read_calibration, write_calibration
from .mot import Motion, read_mot, write_mot
from .openpose import read_openpose_dir, write_openpose_dir
from .trc import Trc, read_trc, write_trc, yup_to_zup, zup_to_yup

__all__ = [
    "read_c3d", "write_c3d",
    "convert_calibration",
    "Camera", "read_calibration", "write_calibration",
    "Motion", "read_mot", "write_mot",
    "read_openpose_dir", "write_openpose_dir",
    "Trc", "read_trc", "write_trc", "yup_to_zup", "zup_to_yup",
]

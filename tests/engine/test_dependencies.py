"""The environment the README's commands build: one OpenCV, no unmaintained TOML package."""
from __future__ import annotations

import importlib.metadata as md


def _installed() -> set[str]:
    return {(d.metadata["Name"] or "").lower().replace("_", "-") for d in md.distributions()}


def test_one_opencv_distribution():
    """Three OpenCV wheels writing one cv2/ folder was a defect: only the headless one
    (what the Blender extension ships) is installed, and rtmlib works with it."""
    opencv = sorted(n for n in _installed() if n.startswith("opencv"))
    assert opencv == ["opencv-python-headless"]
    import cv2
    import rtmlib  # noqa: F401  (installed without its OpenCV pins)

    assert hasattr(cv2, "dnn") and hasattr(cv2.aruco, "CharucoDetector")


def test_toml_through_tomllib_and_tomli_w():
    assert "toml" not in _installed() and "tomli-w" in _installed()

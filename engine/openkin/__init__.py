"""OpenKin: markerless multi-camera motion capture, from videos to an OpenSim skeleton.

The engine is a pure Python package (no ``bpy``): one module per pipeline stage,
file formats under :mod:`openkin.formats`, the command line in :mod:`openkin.cli`.

Python API (like Pose2Sim's ``runAll``): ``openkin.run(project, stages=None, overrides=None,
progress=None) -> RunResult`` (:mod:`openkin.pipeline`), imported on first use so that
``import openkin`` stays cheap.
"""
__version__ = "0.1.0"

__all__ = ["RunResult", "run", "__version__"]


def __getattr__(name: str):
    if name in ("run", "RunResult"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""OpenKin: markerless multi-camera motion capture, from videos to an OpenSim skeleton.

The engine is a pure Python package (no ``bpy``): one module per pipeline stage,
file formats under :mod:`openkin.formats`, the command line in :mod:`openkin.cli`.
"""
__version__ = "0.1.0"

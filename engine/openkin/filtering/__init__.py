"""Filtering: outlier rejection and smoothing of 3D keypoints (or joint angles).

Kernels take ``(F, ...)`` arrays sampled at ``rate`` Hz (NaN = missing, gaps
kept) and return arrays of the same shape:

- :func:`hampel` outlier rejection, then one of :data:`FILTERS`:
  ``butterworth``, ``butterworth_on_speed``, ``gaussian``, ``median``, ``loess``,
  ``kalman``, ``one_euro``, ``gcv_spline``, ``acc_minimizing``.
- :func:`filter_array` is the entry point for other stages (e.g. filtering IK
  joint angles): ``filter_array(xyz, rate, "butterworth", cut_off_frequency=6)``.

The stage (:mod:`openkin.filtering.stage`) filters the triangulated TRC files as Pose2Sim does.
"""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from ..errors import OpenKinError
from .kernels import acc_minimizing, butterworth, butterworth_on_speed, gaussian, gcv_spline, loess, median
from .outliers import hampel
from .recursive import kalman, one_euro

FILTERS: dict[str, Callable[..., np.ndarray]] = {
    "butterworth": butterworth,
    "butterworth_on_speed": butterworth_on_speed,
    "gaussian": gaussian,
    "median": median,
    "loess": loess,
    "kalman": kalman,
    "one_euro": one_euro,
    "gcv_spline": gcv_spline,
    "acc_minimizing": acc_minimizing,
}


def filter_params(method: str) -> list[str]:
    """Keyword parameters accepted by filter ``method`` (its ``[filtering.<method>]`` keys)."""
    fn = FILTERS[normalise_method(method)]
    return [p for p in list(inspect.signature(fn).parameters)[2:]]


def normalise_method(method: str) -> str:
    """Pose2Sim filter type name -> key of :data:`FILTERS` (case-insensitive, 'LOESS' accepted)."""
    key = str(method).strip().lower()
    if key not in FILTERS:
        raise OpenKinError(f"unknown filter type {method!r}",
                           fix=f"set [filtering] type to one of: {', '.join(FILTERS)}")
    return key


def filter_array(x: np.ndarray, rate: float, method: str, *, reject_outliers: bool = False,
                 **params) -> np.ndarray:
    """Filter x (F, ...) sampled at ``rate`` Hz along axis 0; returns a new (F, ...) array.

    ``method``: a key of :data:`FILTERS`; ``params``: that filter's keys (e.g.
    ``cut_off_frequency``, ``order``); unknown keys are an error. With
    ``reject_outliers`` a Hampel filter runs first. NaN stay NaN.
    """
    key = normalise_method(method)
    allowed = filter_params(key)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise OpenKinError(f"filter {key!r} has no parameter(s) {', '.join(unknown)}",
                           fix=f"use: {', '.join(allowed)}")
    if not rate or float(rate) <= 0:
        raise OpenKinError(f"frame rate must be > 0 to filter, got {rate}", fix="set [project] frame_rate")
    x = np.asarray(x, dtype=float)
    if reject_outliers:
        x = hampel(x)
    return FILTERS[key](x, float(rate), **params)


__all__ = ["FILTERS", "filter_array", "filter_params", "hampel", "normalise_method"]

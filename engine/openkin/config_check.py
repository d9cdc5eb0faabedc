"""Checking configuration layers against the typed sections of :mod:`openkin.config`.

Each layer (the session ``Config.toml``, the trial ``Config.toml``, the
``--set`` / panel overrides) is checked on its own, so an error names the file
the bad value came from. Three kinds of problem are errors:

- an unknown key (with the closest valid key),
- a value of the wrong type (the annotation says which types are valid),
- a value out of its range: annotations may carry a :class:`Check`
  (``Annotated[float, Range(gt=0)]``), e.g. a negative mass, a likelihood
  threshold above 1, a frame range that ends before it starts.

Checks that need several keys (a cut-off frequency against the Nyquist
frequency of the frame rate, a converter that exists) run on the merged
configuration, :func:`check_config`; the frame rate found in the videos when
``frame_rate = 'auto'`` is checked by :func:`check_rate`.

This module knows the annotation language, not the sections: it never imports
:mod:`openkin.config` (which imports it).

Value types (``typing`` annotations): ``bool`` (true/false only), ``int`` (a
whole number; ``6.0`` is accepted as 6), ``float`` (any number, stored as
float), ``str``, ``Literal[...]`` (one of the listed words, case-insensitive,
stored in the listed spelling), ``tuple[X, ...]`` / ``tuple[X, Y]`` (a TOML
array, stored as a tuple), ``Annotated[X, Check(...)]`` (X with a valid range)
and unions of these (``Literal['auto'] | float``: the word 'auto' or a number).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

from .errors import OpenKinError

DEFAULTS = "the defaults"  # origin of a key no layer set


# =========================================================================== value ranges
@dataclass(frozen=True)
class Check:
    """A constraint on a value: ``ok(value)``; ``valid`` says what is valid ("> 0",
    "between 0 and 1"); ``hint(value)`` may name a likely mistake ("centimetres?")."""

    ok: Callable[[Any], bool]
    valid: str
    hint: Callable[[Any], str | None] | None = None


def Range(*, gt: float | None = None, ge: float | None = None, lt: float | None = None,
          le: float | None = None, unit: str = "", hint: Callable[[Any], str | None] | None = None) -> Check:
    """A :class:`Check` for numbers: ``Range(gt=0)`` is "> 0", ``Range(ge=0, le=1)`` "between 0 and 1"."""
    u = f" {unit}" if unit else ""
    low = f"> {gt:g}" if gt is not None else f">= {ge:g}" if ge is not None else None
    high = f"< {lt:g}" if lt is not None else f"<= {le:g}" if le is not None else None
    if ge is not None and le is not None:
        words = f"between {ge:g} and {le:g}{u}"
    else:
        words = " and ".join(w + u for w in (low, high) if w)

    def ok(v) -> bool:
        return (math.isfinite(v) and (gt is None or v > gt) and (ge is None or v >= ge)
                and (lt is None or v < lt) and (le is None or v <= le))

    return Check(ok, words, hint)


def Odd(minimum: int = 1) -> Check:
    """An odd whole number >= ``minimum`` (a centred window)."""
    return Check(lambda v: v >= minimum and v % 2 == 1, f"an odd number >= {minimum}")


class _Mismatch(Exception):
    """The value is not of the annotated type."""


class _OutOfRange(Exception):
    """The value has the right type but fails its :class:`Check`."""

    def __init__(self, value, check: Check):
        super().__init__(value)
        self.value, self.check = value, check


# =========================================================================== types
def toml_fields(cls) -> dict[str, Any]:
    """TOML key -> type annotation (``Annotated`` kept), for a section dataclass."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if f.metadata.get("toml", True) and f.name != "custom_skeletons"}


def is_section(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def describe(tp) -> str:
    """Human words for a type annotation ("'auto' or a number > 0")."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        return " ".join([describe(base)] + [m.valid for m in meta if isinstance(m, Check)])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin is dict:
        return f"a table {{name = {describe(typing.get_args(tp)[1])}, ...}}"
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({describe(args[0])})"
        return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a quoted string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def convert(value, tp):
    """``value`` checked against ``tp`` and normalised (list -> tuple, int -> float...).

    Raises ``_Mismatch`` (wrong type) or ``_OutOfRange`` (right type, fails its Check).
    """
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        out = convert(value, base)
        for check in meta:
            if isinstance(check, Check) and not check.ok(out):
                raise _OutOfRange(out, check)
        return out
    if origin in (typing.Union, types.UnionType):
        for alt in typing.get_args(tp):
            try:
                return convert(value, alt)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if isinstance(value, str):
            for option in typing.get_args(tp):
                if isinstance(option, str) and option.lower() == value.lower():
                    return option
        raise _Mismatch
    if origin is tuple:
        return _convert_tuple(value, typing.get_args(tp))
    if origin is dict:  # an inline table {name = value, ...}
        if not isinstance(value, dict):
            raise _Mismatch
        kt, vt = typing.get_args(tp)
        return {convert(k, kt): convert(v, vt) for k, v in value.items()}
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise TypeError(f"config annotation not supported: {tp!r}")  # a bug in the schema, not user input


def _convert_tuple(value, args):
    if not isinstance(value, (list, tuple)):
        raise _Mismatch
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(convert(v, args[0]) for v in value)
    if len(value) != len(args):
        raise _Mismatch
    return tuple(convert(v, a) for v, a in zip(value, args))


def value_error(dotted: str, value, tp, source: str, problem: Exception) -> OpenKinError:
    """The OpenKinError for ``dotted = value`` (from ``source``) failing ``tp``."""
    key = dotted.rsplit(".", 1)[-1]
    if isinstance(problem, _OutOfRange):
        check = problem.check
        whole = problem.value == value
        what = "must be" if whole else f"{problem.value!r} is not"
        hint = check.hint(problem.value) if check.hint else None
        return OpenKinError(f"{dotted} = {value!r}: {what} {check.valid}", path=source,
                            fix=hint or f"set {key} to {describe(tp)}")
    return OpenKinError(f"{dotted} = {value!r}: expected {describe(tp)}", path=source,
                        fix=f"set {key} to {describe(tp)} (see the commented default Config.toml)")


# =========================================================================== one layer
def all_keys(cls, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every dotted key path below section ``cls``."""
    out = []
    for name, tp in toml_fields(cls).items():
        out.append(".".join(prefix + (name,)))
        if is_section(tp):
            out.extend(all_keys(tp, prefix + (name,)))
    return out


def unknown_key(cls, key: str, keypath: tuple[str, ...], source: str, root=None) -> OpenKinError:
    """The error for ``key`` not in section ``cls``, with the closest valid key of ``root``."""
    dotted = ".".join(keypath + (key,))
    siblings = list(toml_fields(cls))
    close = difflib.get_close_matches(key, siblings, n=1, cutoff=0.6)
    if close:
        hint = ".".join(keypath + (close[0],))
    else:
        everywhere = all_keys(root or cls)
        leaf_match = [k for k in everywhere if k.rsplit(".", 1)[-1] == key]
        close = leaf_match or difflib.get_close_matches(dotted, everywhere, n=1, cutoff=0.5)
        hint = close[0] if close else None
    where = f"[{'.'.join(keypath)}]" if keypath else "the top level"
    fix = (f"did you mean {hint!r}?" if hint else f"valid keys in {where}: {', '.join(siblings)}")
    return OpenKinError(f"unknown config key {dotted!r} in {where}", path=source, fix=fix)


def check_section(cls, raw, keypath: tuple[str, ...], source: str, root=None) -> dict:
    """Check one layer's table against section ``cls``; return it normalised (plain dict).

    ``root`` is the top-level class (for the closest-key hint); a section with a
    ``custom_skeletons`` field takes tables with a ``name`` as skeleton trees.
    """
    root = root or cls
    if not isinstance(raw, dict):
        raise OpenKinError(f"[{'.'.join(keypath)}] must be a table, got {raw!r}", path=source,
                           fix=f"write it as a section: [{'.'.join(keypath)}] followed by key = value lines")
    fields = toml_fields(cls)
    node_cls = skeleton_node_class(cls)
    out: dict = {}
    for key, value in raw.items():
        if node_cls is not None and key not in fields and _looks_like_skeleton(value):
            roots = [value] if isinstance(value, dict) else value  # [pose.X] (older Pose2Sim) or [[pose.X]]
            out.setdefault("custom_skeletons", {})[key] = check_skeleton(roots, keypath + (key,), source, node_cls)
            continue
        if key not in fields:
            raise unknown_key(cls, key, keypath, source, root)
        tp = fields[key]
        if is_section(tp):
            out[key] = check_section(tp, value, keypath + (key,), source, root)
            continue
        try:
            out[key] = convert(value, tp)
        except (_Mismatch, _OutOfRange) as problem:
            raise value_error(".".join(keypath + (key,)), value, tp, source, problem) from None
    return out


def skeleton_node_class(cls):
    """The node dataclass of ``cls.custom_skeletons: dict[str, tuple[Node, ...]]``, or None."""
    if not any(f.name == "custom_skeletons" for f in dataclasses.fields(cls)):
        return None
    hint = typing.get_type_hints(cls)["custom_skeletons"]
    return typing.get_args(typing.get_args(hint)[1])[0]


def _looks_like_skeleton(value) -> bool:
    if isinstance(value, dict):
        return "name" in value
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def check_skeleton(nodes: list, keypath: tuple[str, ...], source: str, node_cls) -> tuple:
    """``[[pose.NAME]]`` tree (name, id, children) -> ``node_cls(name, id, children)`` roots."""
    out = []
    for node in nodes:
        extra = set(node) - {"name", "id", "children"}
        if extra:
            raise OpenKinError(f"custom skeleton {'.'.join(keypath)}: unknown key(s) {sorted(extra)}",
                               path=source, fix="a skeleton node has only name, id and children")
        name, id_ = node.get("name"), node.get("id")
        if isinstance(id_, str):  # older Pose2Sim files quote ids ("19") or write "None"
            id_ = int(id_) if id_.strip().isdigit() else None if id_.strip() in ("", "None") else id_
        if not isinstance(name, str) or not (id_ is None or (isinstance(id_, int) and not isinstance(id_, bool))):
            raise OpenKinError(f"custom skeleton {'.'.join(keypath)}: node {node.get('name')!r} needs a "
                               f"string name and a whole-number id", path=source,
                               fix='e.g. name = "RKnee" and id = 14')
        children = node.get("children", [])
        if not isinstance(children, list):
            raise OpenKinError(f"custom skeleton {'.'.join(keypath)}: children of {name!r} must be "
                               "[[...children]] tables",
                               path=source, fix="see the CUSTOM example in the default Config.toml")
        out.append(node_cls(name, id_, check_skeleton(children, keypath + (name,), source, node_cls)))
    return tuple(out)


def key_origins(layer: dict, source: str, prefix: str = "") -> dict[str, str]:
    """``{dotted key: source}`` for every value a checked layer sets."""
    out: dict[str, str] = {}
    for key, value in layer.items():
        if key == "custom_skeletons":
            continue
        if isinstance(value, dict):
            out.update(key_origins(value, source, f"{prefix}{key}."))
        else:
            out[prefix + key] = source
    return out


# =========================================================================== the merged config
CONVERTERS = ("qualisys", "vicon", "opencap", "easymocap", "biocv", "caliscope", "anipose", "freemocap")


def _origin(config, key: str) -> str:
    return dict(getattr(config, "origins", {}) or {}).get(key, DEFAULTS)


def _get(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def check_config(config) -> None:
    """Checks across keys of a merged config (OpenKinError naming the key and its file)."""
    convert = config.calibration.convert
    if config.calibration.calibration_type == "convert" and convert.convert_from == "optitrack":
        key = "calibration.convert.convert_from"
        raise OpenKinError(f"{key} = 'optitrack': OpenKin has no OptiTrack converter (Pose2Sim lists it "
                           "but has none either)", path=_origin(config, key),
                           fix=f"export the calibration from Motive in a format OpenKin reads "
                               f"({', '.join(CONVERTERS)}), or use calibration_type = 'calculate'")
    rate = config.project.frame_rate
    if not isinstance(rate, str):
        check_rate(config, float(rate), f"project.frame_rate = {rate:g} (set in {_origin(config, 'project.frame_rate')})")


def rate_limited_keys(config) -> list[str]:
    """Dotted keys of the cut-off frequencies the run will use (Hz; each must be below Nyquist)."""
    keys = []
    f = config.filtering
    if f.filter:
        keys += _cutoff_keys(f, f.type)
    k = config.kinematics
    if k.filter_ik:
        keys += _cutoff_keys(f, k.ik_filter_type)
    keys.append("synchronization.filter_cutoff")  # smooths the 2D tracks of every sync method
    return keys


def _cutoff_keys(filtering, filter_type: str) -> list[str]:
    section = filter_type.lower()
    keys = []
    for name in ("cut_off_frequency", "d_cut_off_frequency"):
        if hasattr(getattr(filtering, section, None), name):
            keys.append(f"filtering.{section}.{name}")
    return keys


def check_rate(config, rate: float, rate_words: str) -> None:
    """Every cut-off frequency the run uses must be below the Nyquist frequency ``rate / 2``.

    ``rate_words`` says where the rate came from (for the message).
    """
    nyquist = rate / 2.0
    for key in rate_limited_keys(config):
        value = _get(config, key)
        if isinstance(value, str) or value < nyquist:
            continue
        origin = _origin(config, key)
        raise OpenKinError(f"{key} = {value:g} Hz is not below the Nyquist frequency {nyquist:g} Hz of the "
                           f"frame rate ({rate_words})", path=origin if origin != DEFAULTS else None,
                           fix=f"set {key} below {nyquist:g} Hz"
                               + (" (this is its default value)" if origin == DEFAULTS else ""))

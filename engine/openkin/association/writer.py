"""Writing an association as Pose2Sim's ``pose-associated/<cam>_json`` folders (slot n = person n)."""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..fileio import settle
from ..inputs import camera_name
from ..progress import Progress, report
from .kernels import Association

log = logging.getLogger(__name__)


def _frame_texts(people: np.ndarray) -> list[str]:
    """OpenPose JSON text of each frame. ``people (F,T,K,3)`` (NaN absent) → F strings; slot n is
    person n (an absent person before a present one is written as zeros, like Pose2Sim's ``{}``)."""
    F, T, K, _ = people.shape
    present = np.isfinite(people[..., 0]).any(-1)                              # (F,T)
    vals = np.where(np.isfinite(people).all(-1, keepdims=True), people, 0.0)   # OpenPose: 0, 0, 0 = absent
    fmt = ",".join(["%.3f,%.3f,%.4f"] * K)
    head = '{"version": 1.3, "people": ['
    empty = ', "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}'
    texts = []
    for f in range(F):  # string formatting in C: ~10 µs per person and frame
        last = int(np.flatnonzero(present[f])[-1]) + 1 if present[f].any() else 0
        people_txt = [f'{{"person_id": [{t}], "pose_keypoints_2d": [{fmt % tuple(vals[f, t].ravel())}]{empty}'
                      for t in range(last)]
        texts.append(head + ", ".join(people_txt) + "]}")
    return texts


def _write_camera(out_dir: Path, folder_name: str, stem: str, people: np.ndarray, frames: np.ndarray,
                  sources: tuple[str, list] | None = None) -> None:
    """Write one camera's folder into a temporary folder, then swap it in (the earlier folder is
    replaced only once the new one is complete). Written directly rather than through
    :func:`openkin.formats.openpose.write_openpose_dir`, whose per-file temporary + rename
    doubles the file-system work (measured 2-3× slower for thousands of small files).
    ``people (F,T,K,3)``; ``sources``: (input folder, per frame the name of an input file there
    holding exactly what would be written (its single person is person 0), or None): those are
    hard-linked instead of rewritten."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder_name}.", dir=out_dir))
    try:
        names = [f"{stem}_{int(f):06d}.json" for f in frames]
        todo = _link_unchanged(tmp, names, *(sources or (None, None)))
        tmp_s = str(tmp)
        for i, text in zip(todo.tolist(), _frame_texts(people[todo])):
            with open(os.path.join(tmp_s, names[i]), "w", encoding="utf-8") as fh:
                fh.write(text)
        final = out_dir / folder_name
        trash = out_dir / f".{folder_name}.old"
        shutil.rmtree(trash, ignore_errors=True)
        settle()  # the manifest's record of this run lands first (openkin.fileio.write_later)
        if final.exists():
            os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _link_unchanged(tmp: Path, names: list[str], src_dir: str | None, src_names: list | None) -> np.ndarray:
    """Hard-link ``src_dir/src_names[i]`` as ``tmp/names[i]`` where given → indices ``(n,)`` still to write.

    Chosen for speed: where association keeps a camera frame's single detection as person 0 (a
    single-person scene: nearly every file), the output file would hold the input's numbers, so
    the input file is linked (one cheap metadata operation; 600 frames × 4 cameras: 0.11 s
    instead of 0.35 s to format and create the files). The links are made relative to open
    descriptors of both folders (the kernel resolves one name instead of two whole paths: ~40%
    faster). The linked file keeps the detector's digits and person_id; both are valid
    OpenPose/Pose2Sim JSON. Our writers replace files (temporary + rename) rather than rewrite
    them in place, so a rerun of an earlier stage never changes a linked file under this folder.
    Where links fail (FAT/exFAT drives, another device, a vanished input) the rest is written."""
    if src_names is None:
        return np.arange(len(names))
    todo = []
    with contextlib.ExitStack() as stack:
        link = _linker(stack, str(src_dir), str(tmp))
        linking = True
        for i, (name, src) in enumerate(zip(names, src_names)):
            if src is not None and linking:
                try:
                    link(src, name)
                    continue
                except OSError as exc:
                    log.debug("hard link %s failed (%s): writing the files instead", src, exc)
                    linking = False
            todo.append(i)
    return np.array(todo, dtype=int)


def _linker(stack: contextlib.ExitStack, src_dir: str, dst_dir: str):
    """``link(src_name, dst_name)`` from ``src_dir`` into ``dst_dir``: by names relative to open
    descriptors of both folders (closed by ``stack``) where the platform allows, else by paths."""
    if os.link in os.supports_dir_fd:
        try:
            src_fd = os.open(src_dir, os.O_RDONLY)
            stack.callback(os.close, src_fd)
            dst_fd = os.open(dst_dir, os.O_RDONLY)
            stack.callback(os.close, dst_fd)
            return functools.partial(os.link, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except OSError as exc:  # the input folder vanished: every link would fail (then files are written)
            log.debug("cannot open %s or %s (%s): linking by paths", src_dir, dst_dir, exc)
    return lambda src, dst: os.link(os.path.join(src_dir, src), os.path.join(dst_dir, dst))


def _unchanged_sources(assoc: Association) -> list[tuple[str, list] | None]:
    """Per camera: (its input folder, per frame the name of the input file to reuse — its only
    listed person is kept as person 0 and nobody else is written there — else None), or None
    where unknown."""
    views, ch = assoc.views, assoc.choice
    C = ch.shape[1] if ch.ndim == 3 else len(views.folders)
    if views.files is None or views.listed is None or ch.shape[0] == 0:
        return [None] * C
    same = (ch[0] == 0) & (views.listed == 1) & (ch[1:] < 0).all(0)           # (C,F)
    return [(str(folder), [name if ok and name else None for ok, name in zip(same[c].tolist(), views.files[c])])
            for c, folder in enumerate(views.folders)]


def write_associated(assoc: Association, out_dir: Path, progress: Progress | None = None) -> list[Path]:
    """Write ``out_dir/<cam>_json/`` (slot n = person n); returns the folders written."""
    views = assoc.views
    T = assoc.choice.shape[0]
    people = np.stack([assoc.person_keypoints(t) for t in range(T)], axis=2) if T else \
        np.full(views.keypoints.shape[:2] + (0,) + views.keypoints.shape[3:], np.nan)  # (C,F,T,K,3)
    C = len(views.folders)
    sources = _unchanged_sources(assoc)
    for c, folder in enumerate(views.folders):
        _write_camera(out_dir, folder.name, camera_name(folder), people[c], views.frame_numbers, sources[c])
        report(progress, (c + 1) / C, f"wrote {folder.name}")
    return [out_dir / folder.name for folder in views.folders]


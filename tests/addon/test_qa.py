"""QA in Blender: the engine's 2D overlays over the camera videos (viewport background and
render), the QA timelines, "next worst frame", and the fix buttons.

The project: a synthetic person (OpenSim forward kinematics through the demo calibration,
left/right swaps injected in cam01 over known frames) triangulated by the engine, with
Pose2Sim's demo videos as the cameras' backgrounds. Truths: the JSON's coordinates through
``cv2.undistortPoints`` / ``cv2.projectPoints``, the reprojection file read with numpy, the
synth's record of the swapped frames, ``edits.toml`` read with tomllib.
"""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import bpy
import cv2
import numpy as np
import pytest

from addon_helpers import GENERIC_MODEL, ROOT, addon  # noqa: F401  (fixtures)

N_FRAMES = 60
SCALE = 0.5
OUT = ROOT / "demo" / "output"      # with the other renders (test_render.py)


@pytest.fixture(scope="module")
def qa_project(tmp_path_factory) -> Path:
    import openkin
    from openkin.assets import asset_path
    from openkin.overlays import write_overlays
    from openkin.synth import build_scene

    root = tmp_path_factory.mktemp("qa") / "trial"
    build_scene(root, "clean", n_frames=N_FRAMES, seed=1, swap_fraction=0.15, swap_cameras=1, noise_px=1.5,
                outlier_rate=0.02)
    assert openkin.run(root, stages=["triangulation"]).ok
    (root / "videos").mkdir()
    shutil.copy(asset_path("Demo_SinglePerson/videos/cam01.mp4"), root / "videos" / "cam01.mp4")   # one: fast
    (root / "kinematics").mkdir()
    shutil.copy(root / "truth" / "angles.mot", root / "kinematics" / f"trial_0-{N_FRAMES - 1}.mot")
    shutil.copy(asset_path(GENERIC_MODEL), root / "kinematics" / f"trial_0-{N_FRAMES - 1}_scaled.osim")
    write_overlays(root, scale=SCALE)
    return root


def _import(root: Path, overlays: bool = True):
    from blender_addon.scene.overlays import attach_project_overlays

    assert bpy.ops.openkin.import_project(directory=str(root)) == {"FINISHED"}
    scn = bpy.context.scene
    scn.openkin.project_dir = str(root)
    if overlays:
        assert attach_project_overlays(scn, root) == ["cam01", "cam02", "cam03", "cam04"]
    return scn


def _camera(root, name):
    from openkin.formats.calibration import read_calibration

    return next(c for c in read_calibration(next((root / "calibration").glob("*.toml"))) if c.name == name)


def _npz(root):
    with np.load(next((root / "pose-3d").glob("*_reprojection.npz"))) as z:
        return {k: z[k] for k in z.files}


def _truth_swaps(root) -> list[int]:
    return tomllib.loads((root / "truth" / "scene.toml").read_text())["events"]["cam01"]["swapped_frames"]


def _detections(root, cam, frame) -> np.ndarray:
    doc = json.loads(next((root / "pose" / f"{cam}_json").glob(f"*{frame:06d}.json")).read_text())
    return np.asarray(doc["people"][0]["pose_keypoints_2d"], float).reshape(-1, 3)


def _green(img):
    b, g, r = (img[..., i].astype(int) for i in range(3))
    return (g > 150) & (r < 120) & (b < 80)


def _hide_all_but_overlay(scn) -> None:
    for obj in scn.objects:
        if obj.get("openkin_marker") or obj.type in ("ARMATURE", "MESH") and "image plane" not in obj.name \
                and "overlay" not in obj.name:
            obj.hide_render = True          # the overlay alone over the video


def test_render_shows_detections_and_reprojected_markers(addon, qa_project):
    from blender_addon.scene.snapshot import render_camera
    from openkin.formats.trc import read_trc
    from openkin.skeletons import HALPE_26

    scn = _import(qa_project)
    _hide_all_but_overlay(scn)
    OUT.mkdir(parents=True, exist_ok=True)
    swapped = _truth_swaps(qa_project)
    frame = next(f for f in range(20, N_FRAMES) if f not in swapped)
    out = render_camera(scn, scn.objects["cam01"], frame + 1, OUT / "qa_overlay_cam01.png", percentage=50,
                        lighting="FLAT")
    img = cv2.imread(str(out))
    assert img.shape == (960, 544, 3)
    cam = _camera(qa_project, "cam01")
    det = _detections(qa_project, "cam01", frame)
    trc = read_trc(next((qa_project / "pose-3d").glob("*.trc")))
    row = list(trc.frame_numbers).index(frame)
    hits = 0
    for name in ("Head", "Hip", "LShoulder", "RShoulder", "Neck", "LKnee", "RKnee"):
        x, y, conf = det[HALPE_26.index(name)]
        und = cv2.undistortPoints(np.array([[[x, y]]]), cam.matrix, cam.distortions, P=cam.matrix)[0, 0]
        u, v = np.round((und + 0.5) * SCALE - 0.5).astype(int)
        dot = img[v - 1:v + 2, u - 1:u + 2].reshape(-1, 3).astype(int)
        p = trc.xyz[row, trc.marker_names.index(name)]
        uv, _ = cv2.projectPoints(np.array([[p[2], p[0], p[1]]]), cam.rotation, cam.translation, cam.matrix, np.zeros(5))
        mu, mv = np.round((uv[0, 0] + 0.5) * SCALE - 0.5).astype(int)
        arms = np.array([img[mv, mu + 6], img[mv, mu - 6], img[mv + 6, mu], img[mv - 6, mu]]).astype(int)
        green = (dot[:, 1] > 150) & (dot[:, 2] < 120) & (dot[:, 0] < 80)
        magenta = (arms[:, 2] > 200) & (arms[:, 0] > 200) & (arms[:, 1] < 80)
        hits += bool(conf >= 0.5 and green.all() and magenta.sum() >= 2)
    assert hits >= 5, hits
    # frame sync: the render shows this frame's overlay, not one 10 frames earlier
    mine = [cv2.imread(str(qa_project / "openkin" / "overlays" / "cam01" / f"cam01_{f:06d}.png"),
                       cv2.IMREAD_UNCHANGED) for f in (frame, frame - 10)]
    agree = [float(_green(img)[_green(m[..., :3]) & (m[..., 3] == 255)].mean()) for m in mine]
    assert agree[0] > 0.75 and agree[0] > agree[1] + 0.3, agree


def test_render_marks_a_corrected_swap(addon, qa_project):
    from blender_addon.scene.snapshot import render_camera

    scn = _import(qa_project)
    _hide_all_but_overlay(scn)
    OUT.mkdir(parents=True, exist_ok=True)
    swapped = _truth_swaps(qa_project)
    shots = {}
    for f in (swapped[1], next(f for f in range(20, N_FRAMES) if f not in swapped)):
        out = render_camera(scn, scn.objects["cam01"], f + 1, OUT / f"qa_overlay_cam01_frame{f}.png", percentage=50,
                            lighting="FLAT")
        img = cv2.imread(str(out))
        shots[f] = int(((img[..., 0] > 200) & (img[..., 1] > 200) & (img[..., 2] < 60)).sum())   # cyan
    assert shots[swapped[1]] > 100 and min(shots.values()) == 0, shots


def test_overlay_is_a_second_background_and_toggles(addon, qa_project):
    from blender_addon.scene.overlays import set_shown, sync_overlays

    scn = _import(qa_project)
    cam = scn.objects["cam01"]
    bgs = cam.data.background_images
    assert len(bgs) == 2 and bgs[0].image.source == "MOVIE" and bgs[1].image.source == "SEQUENCE"
    assert bgs[1].image_user.frame_start == 1 and bgs[1].image_user.frame_duration == N_FRAMES
    scn.camera = cam
    sync_overlays(scn)
    plane = scn.objects["cam01 overlay"]
    assert not plane.hide_render and scn.objects["cam02 overlay"].hide_render
    assert bpy.ops.openkin.qa_toggle_overlay(camera="cam01") == {"FINISHED"}
    assert plane.hide_render and not bgs[1].show_background_image
    set_shown(cam, True)
    assert not plane.hide_render and bgs[1].show_background_image


def test_timelines_equal_the_triangulation_figures(addon, qa_project):
    from blender_addon.scene.timelines import curve_values
    from openkin.formats.mot import read_mot

    scn = _import(qa_project, overlays=False)
    assert bpy.ops.openkin.qa_timelines() == {"FINISHED"}
    qa = scn.objects["OpenKin QA"]
    z = _npz(qa_project)
    frames = z["frame_numbers"] + 1
    with np.errstate(all="ignore"):
        error = np.nanmean(z["error_px"], axis=1)
        kept = np.where(np.isfinite(z["error_px"]), z["used"].sum(0), np.nan)
        cams = np.nanmean(kept, axis=1)
    for name, truth in (("P0 error", error), ("P0 cameras", cams)):
        f, v = curve_values(qa, name)
        ok = np.isfinite(truth)
        assert np.array_equal(f, frames[ok]), name
        np.testing.assert_allclose(v, truth[ok], rtol=1e-6, atol=1e-5, err_msg=name)
    f, v = curve_values(qa, "P0 kept cam03")
    kept3 = (z["used"][2] & np.isfinite(z["error_px"])).sum(axis=1)
    assert np.array_equal(f, frames) and np.array_equal(v, kept3)
    f, v = curve_values(qa, "P0 swaps cam01")
    assert sorted((f[v > 0] - 1).tolist()) == sorted(_truth_swaps(qa_project))
    knee = scn.objects["P0 RKnee"]                       # swaps shown apart from the error colour
    bag = knee.animation_data.action.layers[0].strips[0].channelbag(knee.animation_data.action_slot)
    fc = bag.fcurves.find('["openkin_swapped_views"]')
    assert sorted(int(k.co[0]) - 1 for k in fc.keyframe_points if k.co[1] > 0) == sorted(_truth_swaps(qa_project))
    # one camera's error at one frame, from the JSON and the TRC through OpenCV
    from openkin.formats.trc import read_trc

    cam = _camera(qa_project, "cam02")
    trc = read_trc(next((qa_project / "pose-3d").glob("*.trc")))
    names = [str(n) for n in z["keypoints"]]
    c, out_frame = list(z["cameras"]).index("cam02"), 25
    row = list(z["frame_numbers"]).index(out_frame)
    det = _detections(qa_project, "cam02", out_frame)
    from openkin.skeletons import HALPE_26
    errs = []
    for k, name in enumerate(names):
        if not z["used"][c, row, k]:
            continue
        x, y, _ = det[HALPE_26.index(name)]
        und = cv2.undistortPoints(np.array([[[x, y]]]), cam.matrix, cam.distortions, P=cam.matrix)[0, 0]
        p = trc.xyz[list(trc.frame_numbers).index(out_frame), trc.marker_names.index(name)]
        uv, _ = cv2.projectPoints(np.array([[p[2], p[0], p[1]]]), cam.rotation, cam.translation, cam.matrix, np.zeros(5))
        errs.append(np.linalg.norm(und - uv[0, 0]))
    f, v = curve_values(qa, "P0 error cam02")
    assert abs(v[list(f).index(out_frame + 1)] - np.mean(errs)) < 1e-3
    # joint angles: the .mot's values (degrees) on the scene frames of its times
    mot = read_mot(next((qa_project / "kinematics").glob("*.mot")))
    f, v = curve_values(qa, "P0 angle knee_angle_r")
    assert mot.in_degrees
    np.testing.assert_allclose(v, mot.values[:, mot.names.index("knee_angle_r")], rtol=1e-6, atol=1e-4)
    assert np.array_equal(f, np.round(mot.times * scn.render.fps / scn.render.fps_base).astype(int) + 1)


def test_jump_to_the_next_worst_frame(addon, qa_project):
    scn = _import(qa_project, overlays=False)
    assert bpy.ops.openkin.qa_timelines() == {"FINISHED"}
    z = _npz(qa_project)
    with np.errstate(all="ignore"):
        error = np.nanmean(z["error_px"], axis=1)
    order = z["frame_numbers"][np.argsort(-np.nan_to_num(error, nan=-1), kind="stable")] + 1
    scn.frame_set(1 if order[0] != 1 else 2)
    assert bpy.ops.openkin.qa_jump_worst(curve="P0 error") == {"FINISHED"}
    assert scn.frame_current == int(np.nanargmax(error)) + z["frame_numbers"][0] + 1 == order[0]
    assert bpy.ops.openkin.qa_jump_worst(curve="P0 error") == {"FINISHED"}
    assert scn.frame_current == order[1]
    assert bpy.ops.openkin.qa_jump_worst(curve="P0 error") == {"FINISHED"}
    assert scn.frame_current == order[2]
    scn.frame_set(order[2] + 1 if order[2] + 1 not in order[:3] else order[2] - 1)   # the user moves away
    assert bpy.ops.openkin.qa_jump_worst(curve="P0 error") == {"FINISHED"}
    assert scn.frame_current == order[0]


@pytest.fixture()
def edit_project(qa_project, tmp_path):
    pytest.importorskip("openkin.edits", reason="the engine's edits API (qaeng, #15) is not merged yet")
    root = tmp_path / "trial"
    shutil.copytree(qa_project, root, ignore=shutil.ignore_patterns("videos", "overlays"))
    return root


def _edits(root) -> list[dict]:
    path = root / "openkin" / "edits.toml"
    return tomllib.loads(path.read_text())["edit"]


def test_buttons_write_the_expected_edits(addon, edit_project):
    scn = _import(edit_project, overlays=False)
    q = scn.openkin_qa
    scn.use_preview_range = True
    scn.frame_preview_start, scn.frame_preview_end = 11, 41
    q.camera = "cam02"
    assert bpy.ops.openkin.qa_edit(kind="swap") == {"FINISHED"}
    q.camera, q.keypoint = "cam01", "RWrist, LWrist"
    assert bpy.ops.openkin.qa_edit(kind="wrong") == {"FINISHED"}
    q.use_preview_range, q.first, q.last, q.camera = False, 5, 9, "cam03"
    assert bpy.ops.openkin.qa_edit(kind="exclude_camera") == {"FINISHED"}
    q.camera, q.person, q.target = "cam04", 0, -1
    assert bpy.ops.openkin.qa_edit(kind="person") == {"FINISHED"}
    edits = _edits(edit_project)
    assert [e["kind"] for e in edits] == ["swap", "wrong", "exclude_camera", "person"]
    assert edits[0]["camera"] == "cam02" and edits[0]["frames"] == [10, 40]
    assert edits[1]["camera"] == "cam01" and edits[1]["keypoints"] == ["RWrist", "LWrist"] and edits[1]["frames"] == [10, 40]
    assert edits[2]["camera"] == "cam03" and edits[2]["frames"] == [4, 8]
    assert edits[3]["camera"] == "cam04" and edits[3]["person"] == 0 and edits[3]["target"] == -1


def test_merge_and_split_fields_make_the_edits(addon, edit_project):
    from blender_addon.qa_panel import frame_range, make_edit

    scn = _import(edit_project, overlays=False)
    q = scn.openkin_qa
    q.use_preview_range, q.first, q.last = False, 1, N_FRAMES
    q.keep, q.absorbed, q.person = 0, 1, 0
    merge = make_edit("merge", q, frame_range(bpy.context), 31)
    split = make_edit("split", q, frame_range(bpy.context), 31)
    assert (merge.kind, merge.persons, merge.frames) == ("merge", (0, 1), (0, N_FRAMES - 1))
    assert (split.kind, split.person, split.at) == ("split", 0, 30)


def test_bad_keypoint_is_a_clear_error(addon, edit_project):
    pytest.importorskip("openkin.recompute.edit", reason="the engine's project checks (qaeng, #15) are not merged yet")
    scn = _import(edit_project, overlays=False)
    q = scn.openkin_qa
    q.keypoint = "NoSuchKeypoint"
    q.camera = "cam01"
    with pytest.raises(RuntimeError) as e:
        bpy.ops.openkin.qa_edit(kind="wrong")
    assert "NoSuchKeypoint" in str(e.value) or "keypoint" in str(e.value).lower()
    assert not (edit_project / "openkin" / "edits.toml").is_file() or not _edits(edit_project)


def test_recompute_button_updates_the_scene(addon, edit_project):
    pytest.importorskip("openkin.recompute", reason="the engine's recompute (qaeng, #15) is not merged yet")
    from blender_addon import operators

    scn = _import(edit_project, overlays=False)
    swapped = _truth_swaps(edit_project)
    q = scn.openkin_qa
    q.use_preview_range, q.first, q.last, q.camera = False, swapped[0] + 1, swapped[-1] + 1, "cam01"
    assert bpy.ops.openkin.qa_edit(kind="swap") == {"FINISHED"}
    assert bpy.ops.openkin.qa_recompute() == {"FINISHED"}
    job = operators.current_job()
    assert job.status == "done", (job.error, job.log_path.read_text()[-2000:])
    assert scn.objects.get("OpenKin QA") is not None
    # the scene shows the recomputed files: a marker where the new TRC puts it
    from openkin.formats.trc import read_trc

    trc = read_trc(next((edit_project / "pose-3d").glob("*.trc")))
    f = swapped[0]
    row, k = list(trc.frame_numbers).index(f), trc.marker_names.index("RKnee")
    scn.frame_set(f + 1)
    knee = np.array(scn.objects["P0 RKnee"].matrix_world.translation)
    y_up = trc.xyz[row, k]
    np.testing.assert_allclose(knee, [y_up[2], y_up[0], y_up[1]], atol=1e-4)


def test_marker_colours_without_the_engines_file_do_not_count_swaps(qa_project, tmp_path):
    """Without the triangulation's file the add-on recomputes the errors: a detector's
    left/right swap (cam01, known frames) is undone as the triangulation does, not counted
    as an error; the engine's figures (views kept, swaps corrected) are the reference."""
    from blender_addon.core import capture, reprojection
    from openkin.skeletons import HALPE_26

    root = tmp_path / "trial"
    shutil.copytree(qa_project, root, ignore=shutil.ignore_patterns("videos", "overlays", "kinematics"))
    engine = _npz(root)
    next((root / "pose-3d").glob("*_reprojection.npz")).unlink()
    cap = capture.load_capture(capture.find_project(root))
    person = cap.people[0]
    dirs = reprojection.find_pose_dirs(root, [c.name for c in cap.cameras])
    args = (cap.cameras, dirs, person.markers, person.marker_frames, person.marker_names, HALPE_26.names)
    colours = reprojection.person_errors(*args, root=root, person=person.name)
    legs = [person.marker_names.index(n) for n in ("LKnee", "RKnee", "LAnkle", "RAnkle")]
    rows = np.isin(z := engine["frame_numbers"], _truth_swaps(root))
    assert rows.sum() >= 5
    # as filed (no swap undone), cam01 alone
    cam = next(c for c in cap.cameras if c.name == "cam01")
    from openkin.formats.openpose import read_openpose_dir
    kps, kp_frames, _ = read_openpose_dir(dirs["cam01"])
    kp_index = np.array([HALPE_26.names.index(n) for n in person.marker_names])
    filed = reprojection.camera_errors(cam, person.markers, person.marker_frames - 1, kps, kp_frames, kp_index, 0.3)
    undone = reprojection.camera_errors(cam, person.markers, person.marker_frames - 1, kps, kp_frames, kp_index, 0.3,
                                        reprojection.lr_parts(person.marker_names))
    assert np.nanmedian(filed[rows][:, legs]) > 20 and np.nanmedian(undone[rows][:, legs]) < 5   # (2 % outliers)
    # the colours there: the engine's level, not the swap's
    assert np.nanmedian(colours[rows][:, legs]) < 2 * np.nanmedian(engine["error_px"][rows][:, legs]) + 1.0
    assert z.shape[0] == colours.shape[0]


DEMO = ROOT / "demo" / "project"


@pytest.mark.skipif(not (DEMO / "pose-3d").is_dir() or not list((DEMO / "pose-3d").glob("*_reprojection.npz")),
                    reason="no real demo results: run `bash scripts/demo.sh` first")
def test_render_real_demo_overlay(addon, tmp_path):
    """Pose2Sim's demo processed by the pipeline: cam01's video with its real 2D detections and
    the reprojected triangulated markers, rendered to demo/output/qa_overlay_demo_cam01.png."""
    from blender_addon.scene.snapshot import render_camera
    from openkin.overlays import write_overlays

    root = tmp_path / "demo"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("blender_cache", "overlays", "*.blend", "report*"))
    for video in (root / "videos").iterdir():
        if video.stem != "cam01":
            video.unlink()                                  # one video to undistort: faster
    write_overlays(root, scale=SCALE, cameras=["cam01"])
    scn = _import(root, overlays=False)
    from blender_addon.scene.overlays import attach_project_overlays
    assert attach_project_overlays(scn, root) == ["cam01"]
    _hide_all_but_overlay(scn)
    out = ROOT / "demo" / "output" / "qa_overlay_demo_cam01.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    render_camera(scn, scn.objects["cam01"], 50, out, percentage=50, lighting="FLAT")
    img = cv2.imread(str(out))
    ov = cv2.imread(str(root / "openkin" / "overlays" / "cam01" / "cam01_000049.png"), cv2.IMREAD_UNCHANGED)
    drawn = (ov[..., 3] == 255) & _green(ov[..., :3])
    assert drawn.sum() > 100 and _green(img)[drawn].mean() > 0.75


def test_overlays_button_draws_in_a_job_and_lays_them_over(addon, qa_project, tmp_path):
    """Draw 2D Overlays: the engine draws in the background job runner (synchronous under
    blender -b), then the overlays are laid over the cameras."""
    from blender_addon import operators

    root = tmp_path / "trial"
    shutil.copytree(qa_project, root, ignore=shutil.ignore_patterns("videos", "overlays"))
    scn = _import(root, overlays=False)
    assert bpy.ops.openkin.qa_overlays() == {"FINISHED"}
    job = operators.current_job()
    assert job.status == "done" and "overlays" in job.timings, (job.error, job.log_path.read_text()[-2000:])
    assert len(list((root / "openkin" / "overlays" / "cam03").glob("cam03_*.png"))) == N_FRAMES
    assert [o.name for o in scn.objects if o.get("openkin_overlay_of")] == \
        ["cam01 overlay", "cam02 overlay", "cam03 overlay", "cam04 overlay"]
    assert bpy.ops.openkin.qa_overlays() == {"FINISHED"} and operators.current_job() is job   # current: no job
    import os
    import time
    npz = next((root / "pose-3d").glob("*_reprojection.npz"))
    os.utime(npz, (time.time() + 5, time.time() + 5))                   # newer results: drawn again
    assert bpy.ops.openkin.qa_overlays() == {"FINISHED"} and operators.current_job() is not job
    assert operators.current_job().status == "done"

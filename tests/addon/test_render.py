"""A rendered still of the demo from cam01: the (undistorted) video frame behind, the
markers and the skeleton's bone meshes over it. Written to demo/output/ for people to look at."""
import bpy
import pytest
import numpy as np

from addon_helpers import ROOT, addon, demo_project, synth_project  # noqa: F401  (fixtures)

FRAME = 50


def _gray(img):
    g = img[..., :3].mean(axis=-1)
    return (g - g.mean()) / (g.std() + 1e-9)


def test_render_synthetic_person_over_demo_video(addon, demo_project):
    import cv2

    from blender_addon.scene.snapshot import render_camera

    assert bpy.ops.openkin.import_project(directory=str(demo_project)) == {"FINISHED"}
    scn = bpy.context.scene
    out = ROOT / "demo" / "output" / "blender_synth_cam01.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    render_camera(scn, scn.objects["cam01"], FRAME, out, percentage=50)
    img = cv2.imread(str(out))
    assert img.shape == (960, 544, 3)
    # Frame sync: the render matches undistorted video frame FRAME-1 better than frame 0.
    movie = bpy.path.abspath(scn.objects["cam01"].data.background_images[0].image.filepath)
    vc = cv2.VideoCapture(movie)
    frames = [vc.read()[1] for _ in range(FRAME)]
    small = [cv2.resize(f, (544, 960), interpolation=cv2.INTER_AREA).astype(float) for f in (frames[0], frames[-1])]
    corr = [float((_gray(img.astype(float)) * _gray(f)).mean()) for f in small]
    assert corr[1] > 0.8 and corr[1] > corr[0] + 0.02, corr
    # Markers are drawn where OpenCV projects them (green pixels at the projected Nose).
    from openkin.formats.calibration import read_calibration
    from openkin.geometry import project_points, undistort_camera_points as undistort_points
    from blender_addon.core.capture import find_project
    cam = next(c for c in read_calibration(find_project(demo_project).calibration) if c.name == "cam01")
    nose = np.array(scn.objects["P0 Nose"].matrix_world.translation)
    u, v = (undistort_points(cam, project_points(cam, nose[None]))[0] + 0.5) * 0.5
    b, g, r = img[int(v), int(u)]
    assert g > 120 and g > r + 40 and g > b + 40, (u, v, img[int(v), int(u)])


DEMO = ROOT / "demo" / "project"


@pytest.mark.skipif(not list((DEMO / "kinematics").glob("*.mot")) if (DEMO / "kinematics").is_dir() else True,
                    reason="no real demo results: run `bash scripts/demo.sh` first")
def test_render_real_demo_results(addon):
    """The pipeline's own results on Pose2Sim's demo: the skeleton must lie on the person."""
    import cv2

    from blender_addon.scene.snapshot import render_camera

    assert bpy.ops.openkin.import_project(directory=str(DEMO)) == {"FINISHED"}
    scn = bpy.context.scene
    out = ROOT / "demo" / "output" / "blender_demo_cam01.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    render_camera(scn, scn.objects["cam01"], FRAME, out, percentage=50)
    assert cv2.imread(str(out)).shape == (960, 544, 3)
    # the pelvis bone is where the triangulated hip keypoint is (same capture, same world)
    arm = next(o for o in scn.objects if o.type == "ARMATURE" and o.get("openkin_role") is None)  # the OpenSim one
    hip = next(o for o in scn.objects if o.get("openkin_marker") == "Hip")
    pelvis = np.array((arm.matrix_world @ arm.pose.bones["pelvis"].matrix).translation)
    assert np.linalg.norm(pelvis - np.array(hip.matrix_world.translation)) < 0.15

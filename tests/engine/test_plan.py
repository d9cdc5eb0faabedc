"""The camera-placement planner against independent truths: Monte-Carlo triangulation of
noisy projections (OpenKin's DLT and robust triangulation), OpenCV's projection and
field-of-view functions, matplotlib's point-in-polygon, brute-force subset enumeration."""
from __future__ import annotations

import itertools
import json
import math

import cv2
import numpy as np
import pytest

from openkin.cli import main as cli_main
from openkin.errors import OpenKinError
from openkin.plan import kernel, layout, presets, volume
from openkin.formats.calib_converters import convert_calibration
from openkin.geometry import triangulate_dlt, triangulate_robust

DEMO_CALIB = "Demo_SinglePerson/calibration/Calib.qca.txt"
TRIALS = 2000
SIGMA = 3.0


@pytest.fixture(scope="module")
def demo_cameras():
    from openkin.assets import asset_path

    return convert_calibration(asset_path(DEMO_CALIB), "qualisys")


def ring8():
    p = presets.PRESETS["phone_main_16x9"]
    K, size = presets.intrinsics(p.hfov_deg, p.size)
    cams = []
    for i in range(8):
        a = 2 * np.pi * i / 8
        c = np.array([5 * np.cos(a), 5 * np.sin(a), (1.2, 2.4)[i % 2]])
        cams.append(layout.make_camera(f"cam{i + 1}", c, np.array([0, 0, 1.0]) - c, K, size))
    return cams


def _volume_for(cams):
    if len(cams) == 8:
        return volume.box_volume(-3, -3, 3, 3, 2.0)
    return volume.default_volume(np.stack([c.center for c in cams]), np.stack([c.R[2] for c in cams]))


def _pinhole_cv2(cam, X):
    """Undistorted pixel of X (3,) by OpenCV (what the pipeline triangulates)."""
    return cv2.projectPoints(X.reshape(1, 1, 3), cam.rotation, cam.translation, cam.matrix, None)[0].reshape(2)


def _monte_carlo(cams, X, seen, dropout, rng):
    """RMS 3D error (mm) of DLT and robust triangulation over TRIALS noisy, dropped-out views
    (RMS over the trials that triangulate), and the fraction that triangulate."""
    P = np.stack([c.projection for c in cams])
    uv = np.stack([_pinhole_cv2(c, X) for c in cams])
    pts = uv[:, None, :] + rng.normal(0.0, SIGMA, (len(cams), TRIALS, 2))
    keep = seen[:, None] & (rng.random((len(cams), TRIALS)) >= dropout)
    w = keep.astype(float)
    out = {}
    for name, Y in (("dlt", triangulate_dlt(pts, w, P)),
                    ("robust", triangulate_robust(pts, w, P, threshold=20.0).X)):
        ok = np.isfinite(Y[:, 0])
        out[name] = 1000 * math.sqrt(((Y[ok] - X) ** 2).sum(1).mean())
    out["p_ok"] = float((keep.sum(0) >= 2).mean())
    return out


@pytest.mark.parametrize("rig", ["demo", "ring8"])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_expected_error_matches_monte_carlo(rig, dropout, demo_cameras):
    cams = demo_cameras if rig == "demo" else ring8()
    grid = volume.make_grid(_volume_for(cams), 0.25)
    settings = kernel.PlanSettings(noise_px=SIGMA, dropout=dropout, tail_mass=0.0)
    res = kernel.evaluate(cams, grid.points, settings)
    rng = np.random.default_rng(7)
    candidates = np.flatnonzero((res.cameras_seeing >= 2) & (res.best_angle_deg > 10))
    picks = rng.choice(candidates, 8, replace=False)
    for i in picks:
        mc = _monte_carlo(cams, grid.points[i], res.seen[:, i], dropout, rng)
        expected = res.expected_error_mm[i]
        for name in ("dlt", "robust"):
            assert abs(expected / mc[name] - 1) < 0.20, (rig, dropout, i, expected, mc)
        assert abs(res.p_triangulated[i] - mc["p_ok"]) < 0.03


def test_optimal_model_is_the_ml_bound_and_never_above_dlt(demo_cameras):
    grid = volume.make_grid(_volume_for(demo_cameras), 0.25)
    dlt = kernel.evaluate(demo_cameras, grid.points, kernel.PlanSettings(dropout=0.0))
    opt = kernel.evaluate(demo_cameras, grid.points, kernel.PlanSettings(dropout=0.0, estimator="optimal"))
    ok = np.isfinite(dlt.expected_error_mm)
    assert np.all(opt.expected_error_mm[ok] <= dlt.expected_error_mm[ok] * (1 + 1e-9))
    # hand check at one point: σ² (Σ JᵀJ)⁻¹ with Jacobians by finite differences of OpenCV's projection
    i = int(np.flatnonzero(dlt.cameras_seeing == 3)[0])
    X = grid.points[i]
    info = np.zeros((3, 3))
    for cam, s in zip(demo_cameras, dlt.seen[:, i]):
        if s:
            J = np.stack([(_pinhole_cv2(cam, X + h) - _pinhole_cv2(cam, X - h)) / 2e-6 for h in np.eye(3) * 1e-6], 1)
            info += J.T @ J
    assert opt.expected_error_mm[i] == pytest.approx(1000 * 3.0 * math.sqrt(np.trace(np.linalg.inv(info))), rel=1e-5)


def test_dropout_sum_matches_brute_force_enumeration(demo_cameras):
    grid = volume.make_grid(_volume_for(demo_cameras), 0.5)
    p = 0.3
    s = kernel.PlanSettings(noise_px=1.0, dropout=p, tail_mass=0.0, estimator="optimal")
    terms = kernel.camera_terms(demo_cameras, grid.points, s)
    res = kernel.evaluate_terms(terms, s)
    info = terms.gram / terms.depth[:, None] ** 2                         # (C, 6, N)
    full = lambda v: np.array([[v[0], v[1], v[2]], [v[1], v[3], v[4]], [v[2], v[4], v[5]]])  # noqa: E731
    for i in np.flatnonzero(res.cameras_seeing >= 2)[::17]:
        cams = np.flatnonzero(terms.seen[:, i])
        num = den = 0.0
        for r in range(2, len(cams) + 1):
            for sub in itertools.combinations(cams, r):
                w = (1 - p) ** r * p ** (len(cams) - r)
                num += w * np.trace(np.linalg.inv(sum(full(info[c, :, i]) for c in sub)))
                den += w
        assert res.expected_error_mm[i] == pytest.approx(1000 * math.sqrt(num / den), rel=1e-6)
        assert res.p_triangulated[i] == pytest.approx(den, rel=1e-9)


def test_tail_mass_approximation_is_close_to_exact():
    cams = ring8()
    pts = volume.make_grid(volume.box_volume(-2, -2, 2, 2, 2.0), 0.5).points
    exact = kernel.evaluate(cams, pts, kernel.PlanSettings(dropout=0.1, tail_mass=0.0))
    approx = kernel.evaluate(cams, pts, kernel.PlanSettings(dropout=0.1))
    ok = np.isfinite(exact.expected_error_mm)
    assert np.max(np.abs(approx.expected_error_mm[ok] / exact.expected_error_mm[ok] - 1)) < 0.01


def test_visibility_matches_opencv_projection_with_distortion(demo_cameras):
    grid = volume.make_grid(volume.box_volume(-5, -5, 5, 5, 2.5), 0.3)
    s = kernel.PlanSettings(margin=0.05, max_distance=6.0)
    res = kernel.evaluate(demo_cameras, grid.points, s)
    for c, cam in enumerate(demo_cameras):
        uv = cv2.projectPoints(grid.points.reshape(-1, 1, 3), cam.rotation, cam.translation, cam.matrix,
                               cam.distortions)[0].reshape(-1, 2)
        depth = (grid.points @ cam.R.T + cam.translation)[:, 2]
        dist = np.linalg.norm(grid.points - cam.center, axis=1)
        w, h = cam.size
        inside = (uv[:, 0] >= 0.05 * w - 0.5) & (uv[:, 0] <= 0.95 * w - 0.5) & (uv[:, 1] >= 0.05 * h - 0.5) \
            & (uv[:, 1] <= 0.95 * h - 0.5)
        truth = inside & (depth > 0.2) & (dist <= 6.0)
        assert 0.05 < truth.mean() < 0.95
        assert np.array_equal(res.seen[c], truth), cam.name


def test_best_angle_by_hand():
    K, size = presets.intrinsics(60.0, (1000, 1000))
    a = layout.make_camera("a", [-3, 0, 1], [1, 0, 0], K, size)
    b = layout.make_camera("b", [0, -3, 1], [0, 1, 0], K, size)
    res = kernel.evaluate([a, b], np.array([[0.0, 0.0, 1.0], [0.5, 0.0, 1.0]]), kernel.PlanSettings(dropout=0))
    assert res.best_angle_deg[0] == pytest.approx(90.0)
    assert res.best_angle_deg[1] == pytest.approx(90 - math.degrees(math.atan2(0.5, 3)), abs=1e-9)


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_preset_field_of_view_by_opencv(name):
    p = presets.PRESETS[name]
    K, size = presets.intrinsics(p.hfov_deg, p.size)
    fovx, fovy, *_ = cv2.calibrationMatrixValues(K, (int(size[0]), int(size[1])), 1.0, 1.0)
    assert fovx == pytest.approx(p.hfov_deg, abs=0.1)
    K2, size2 = presets.intrinsics(p.hfov_deg, p.size, portrait=True)
    assert size2[1] > size2[0]
    assert cv2.calibrationMatrixValues(K2, (int(size2[0]), int(size2[1])), 1.0, 1.0)[1] == pytest.approx(p.hfov_deg, abs=0.1)


def test_phone_main_is_26mm_equivalent():
    # 35 mm-equivalent by the diagonal: a 4:3 frame's equivalent width is 43.27 × 4/5 = 34.6 mm
    assert presets.PRESETS["phone_main_4x3"].hfov_deg == pytest.approx(2 * math.degrees(math.atan(34.6146 / 2 / 26)), abs=0.01)


def test_layout_look_at_and_angles(tmp_path):
    f = tmp_path / "layout.toml"
    f.write_text('[volume]\nbox = [-1, -1, 1, 1]\nheight = 1.8\n'
                 '[[camera]]\nname = "a"\npreset = "webcam"\nposition = [0, -4, 1.5]\nlook_at = [0.3, 0, 1.0]\n'
                 '[[camera]]\nname = "b"\npreset = "gopro_linear"\nposition = [0, 0, 1]\nyaw = 90\npitch = 10\n')
    setup = layout.load_setup(f)
    a, b = setup.cameras
    assert np.allclose(_pinhole_cv2(a, np.array([0.3, 0, 1.0])), a.matrix[:2, 2], atol=1e-6)
    ahead = np.array([0, 5 * math.cos(math.radians(10)), 1 + 5 * math.sin(math.radians(10))])
    assert np.allclose(_pinhole_cv2(b, ahead), b.matrix[:2, 2], atol=1e-6)
    assert _pinhole_cv2(b, ahead + [1, 0, 0])[0] > b.matrix[0, 2]       # +X is to the right looking along +Y
    assert _pinhole_cv2(b, ahead + [0, 0, 1])[1] < b.matrix[1, 2]       # up is up in the image
    assert setup.volume == {"box": [-1, -1, 1, 1], "height": 1.8}


@pytest.mark.parametrize("text, words", [
    ('[[camera]]\nname = "x"\npreset = "iphone_99"\nposition = [0, 0, 1]\nlook_at = [1, 0, 1]\n', ["'x'", "iphone_99", "phone_main_16x9"]),
    ('[[camera]]\nname = "x"\npreset = "webcam"\nposition = [0, 0]\nlook_at = [1, 0, 1]\n', ["'x'", "position", "3 numbers"]),
    ('[[camera]]\nname = "x"\npreset = "webcam"\nposition = [0, 0, 1]\n', ["'x'", "orientation", "look_at"]),
    ('[[camera]]\nname = "x"\npreset = "webcam"\nposition = [0, 0, 1]\nlook_at = [1, 0, 1]\nfocal = 3\n', ["focal", "valid keys"]),
    ('[[camera]\nname = "x"\n', ["malformed TOML", "fix"]),
])
def test_bad_layout_is_a_clear_error(tmp_path, text, words):
    f = tmp_path / "bad_layout.toml"
    f.write_text(text)
    with pytest.raises(OpenKinError) as e:
        layout.load_setup(f)
    msg = str(e.value)
    assert "bad_layout.toml" in msg and "fix:" in msg
    for w in words:
        assert w in msg


def _write_layout(path, cams_text):
    path.write_text("".join(cams_text))
    return path


def test_cli_blind_camera_and_no_triangulation_are_clear_errors(tmp_path, capsys):
    cam = '[[camera]]\nname = "{n}"\npreset = "phone_main_16x9"\nposition = {p}\nlook_at = {t}\n'
    f = _write_layout(tmp_path / "blind.toml", [cam.format(n="front", p="[0, -4, 1.5]", t="[0, 0, 1]"),
                                                 cam.format(n="side", p="[4, 0, 1.5]", t="[0, 0, 1]"),
                                                 cam.format(n="wall", p="[0, 4, 1.5]", t="[0, 9, 1]")])
    assert cli_main(["plan", str(f), "--volume=-1,-1,1,1"]) == 2
    err = capsys.readouterr().err
    assert "wall" in err and "see nothing" in err and "blind.toml" in err and "look_at" in err
    g = _write_layout(tmp_path / "one.toml", [cam.format(n="front", p="[0, -4, 1.5]", t="[0, 0, 1]"),
                                               cam.format(n="back", p="[0, 4, 1.5]", t="[0, 9, 1]")])
    assert cli_main(["plan", str(g), "--volume=-1,-1,1,1", "--max-distance", "20"]) == 2
    assert "see nothing" in capsys.readouterr().err
    h = _write_layout(tmp_path / "apart.toml", [cam.format(n="left", p="[-6, 0, 1.5]", t="[-6, 3, 1]"),
                                                 cam.format(n="right", p="[6, 0, 1.5]", t="[6, 3, 1]")])
    assert cli_main(["plan", str(h), "--volume=-7,2,7,4"]) == 2
    err = capsys.readouterr().err
    assert "no point of the volume is seen by two cameras" in err and "apart.toml" in err


def test_cli_on_demo_writes_summary_json_png(tmp_path, capsys):
    from openkin.assets import asset_path

    out_json, out_png = tmp_path / "plan.json", tmp_path / "plan.png"
    assert cli_main(["plan", str(asset_path(DEMO_CALIB)), "--grid", "0.25", "--json", str(out_json),
                     "--png", str(out_png)]) == 0
    text = capsys.readouterr().out
    for w in ("seen by ≥ 2 cameras", "95th percentile", "worst region", "cam01"):
        assert w in text
    doc = json.loads(out_json.read_text())
    n = len(doc["points"])
    assert n > 1000 and len(doc["cameras_seeing"]) == n and len(doc["expected_error_mm"]) == n
    seen = np.array(doc["cameras_seeing"])
    err = np.array([np.nan if e is None else e for e in doc["expected_error_mm"]])
    assert np.all(np.isnan(err[seen < 2])) and np.all(np.isfinite(err[seen >= 2]))
    assert 0.5 < (seen >= 2).mean() < 1.0
    img = cv2.imread(str(out_png))
    assert img is not None and img.shape[0] > 600 and img.shape[1] > 600


def test_grid_counts_and_polygon_against_matplotlib():
    from matplotlib.path import Path as MplPath

    g = volume.make_grid(volume.box_volume(-3, -3, 3, 3, 2.0), 0.1)
    assert (len(g.xs), len(g.ys), len(g.zs)) == (61, 61, 21) and len(g.points) == 61 * 61 * 21
    poly = np.array([[0, 0], [4, 0], [4, 1], [1, 1], [1, 3], [0, 3]], float)      # an L-shaped room
    vol = volume.polygon_volume(poly, 2.0)
    g = volume.make_grid(vol, 0.13)
    gx, gy = np.meshgrid(g.xs, g.ys, indexing="ij")
    xy = np.stack([gx.ravel(), gy.ravel()], 1)
    truth = MplPath(poly).contains_points(xy, radius=1e-9) | MplPath(poly).contains_points(xy, radius=-1e-9)
    assert np.array_equal(g.columns.ravel(), truth)


def test_suggest_add_raises_coverage_and_respects_keep_out():
    from openkin.plan.optimise import suggest

    cams = ring8()[:2]
    vol = volume.box_volume(-3, -3, 3, 3, 2.0)
    pts = volume.make_grid(vol, 0.4).points
    keep = np.array([[-10.0, -10.0, 10.0, 0.0]])                              # no camera at y < 0
    s = kernel.PlanSettings(dropout=0.1)
    sug = suggest(cams, vol, pts, s, "add", keep_out=keep, n_angles=12)
    assert sug.after.seen2 > sug.before.seen2 + 0.05
    assert sug.camera.center[1] > 0
    # the reported 'after' is what evaluating the new layout gives
    again = kernel.evaluate(cams + [sug.camera], pts, s)
    assert (again.cameras_seeing >= 2).mean() == pytest.approx(sug.after.seen2)
    moved = suggest(cams, vol, pts, s, "move", n_angles=12)
    assert moved.after.key() >= moved.before.key()


def test_segment_distance_against_dense_sampling():
    from openkin.plan.motion import segment_distance

    rng = np.random.default_rng(3)
    p1, q1, p2, q2 = (rng.normal(size=(100, 3)) for _ in range(4))
    q2[:20] = p2[:20] + 1e-9 * rng.normal(size=(20, 3))                   # near-degenerate segments
    q1[20:40] = p1[20:40] + 0.3 * (q2[20:40] - p2[20:40])                  # parallel pairs
    t = np.linspace(0, 1, 301)[:, None]
    brute = np.array([np.linalg.norm((p1[i] + t * (q1[i] - p1[i]))[:, None] - (p2[i] + t * (q2[i] - p2[i]))[None],
                                     axis=-1).min() for i in range(len(p1))])
    got = segment_distance(p1, q1, p2, q2)
    assert np.all(got <= brute + 1e-12) and np.all(brute - got < 1e-2)


def test_occlusion_by_hand():
    from openkin.plan.motion import occluded

    cams = np.array([[0.0, -5.0, 1.0], [5.0, 0.0, 1.0]])
    joints = np.array([[[0.0, 1.0, 1.0], [-1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]])   # 1 frame, 3 joints
    bones, radii = np.array([[1, 2]]), np.array([0.1])                   # a bar from joint 1 to 2 along x
    hid = occluded(cams, joints, bones, radii)
    assert hid[0, 0, 0]                       # camera 0 looks at joint 0 through the bar
    assert not hid[1, 0, 0]                   # camera 1 sees joint 0 from the side, past the bar's end
    assert not hid[:, 0, 1:].any()            # the bar never hides its own ends
    joints[0, 0, 2] = 1.5                     # joint 0 lifted 0.5 m: camera 0's sight passes above the bar
    assert not occluded(cams, joints, bones, radii)[0, 0, 0]


def test_motion_plan_on_demo(demo_cameras, capsys):
    from openkin.assets import asset_path

    assert cli_main(["plan", str(asset_path(DEMO_CALIB)), "--grid", "0.5", "--motion", "2"]) == 0
    out = capsys.readouterr().out
    assert "per joint" in out
    table = out.split("per joint:")[1].strip().splitlines()[1:]
    assert len(table) == 26 and {r.split()[0] for r in table} >= {"LWrist", "RAnkle", "Nose"}
    hidden = [float(r.split()[2].rstrip("%")) for r in table]
    assert max(hidden) > 5 and min(hidden) < 50                          # the body hides some views, not all


@pytest.fixture(scope="module")
def small_rig():
    cams = ring8()[::2]
    pts = volume.make_grid(volume.box_volume(-2, -2, 2, 2, 2.0), 0.5).points
    return cams, pts


from hypothesis import given, settings as hyp_settings, strategies as st  # noqa: E402


@hyp_settings(max_examples=25, deadline=None)
@given(angle=st.floats(-np.pi, np.pi), shift=st.tuples(*[st.floats(-50, 50)] * 3),
       sigma=st.floats(0.2, 10), dropout=st.floats(0, 0.5))
def test_error_is_rigid_invariant_and_linear_in_noise(small_rig, angle, shift, sigma, dropout):
    """Moving the whole rig and volume together changes nothing; the error scales with σ."""
    from openkin.geometry import Camera, rotation_matrix, rotation_vector

    cams, pts = small_rig
    Rz = rotation_matrix([0.0, 0.0, angle])
    T = np.array(shift)
    moved = [Camera(name=c.name, size=c.size, matrix=c.matrix, distortions=c.distortions,
                    rotation=rotation_vector(c.R @ Rz.T), translation=c.translation - c.R @ Rz.T @ T) for c in cams]
    s1 = kernel.PlanSettings(noise_px=1.0, dropout=dropout, tail_mass=0.0)
    s2 = kernel.PlanSettings(noise_px=sigma, dropout=dropout, tail_mass=0.0)
    a = kernel.evaluate(cams, pts, s1)
    b = kernel.evaluate(moved, pts @ Rz.T + T, s2)
    assert np.array_equal(a.cameras_seeing, b.cameras_seeing)
    ok = np.isfinite(a.expected_error_mm)
    assert np.allclose(b.expected_error_mm[ok], sigma * a.expected_error_mm[ok], rtol=1e-6)
    assert np.allclose(a.p_triangulated, b.p_triangulated, atol=1e-12)


def test_cli_suggest_add_on_demo(tmp_path, capsys):
    from openkin.assets import asset_path

    png = tmp_path / "s.png"
    assert cli_main(["plan", str(asset_path(DEMO_CALIB)), "--grid", "0.5", "--suggest", "add", "--preset", "webcam",
                     "--keep-out=-10,2,10,10", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("seen by ≥ 2:"))
    before, after = (float(v.rstrip("%;")) for v in line.split(":")[1].split("→")[0:2] for v in [v.split()[0]])
    assert after > before
    pos = next(ln for ln in out.splitlines() if ln.strip().startswith("position ="))
    assert float(pos.split("[")[1].split(",")[1]) < 2                  # not in the keep-out band y > 2
    assert png.stat().st_size > 10_000
    assert cli_main(["plan", str(asset_path(DEMO_CALIB)), "--suggest", "add", "--preset", "iphone_99"]) == 2
    assert "iphone_99" in capsys.readouterr().err


def test_threaded_blocks_give_the_same_numbers(monkeypatch):
    cams = ring8()
    pts = volume.make_grid(volume.box_volume(-3, -3, 3, 3, 2.0), 0.2).points        # > one block
    s = kernel.PlanSettings(dropout=0.1)
    assert (kernel.evaluate(cams, pts, s).cameras_seeing >= 2).sum() > 2 * kernel.BLOCK
    threaded = kernel.evaluate(cams, pts, s)
    monkeypatch.setattr(kernel, "THREADS", 1)
    single = kernel.evaluate(cams, pts, s)
    assert np.array_equal(threaded.expected_error_mm, single.expected_error_mm, equal_nan=True)
    assert np.array_equal(threaded.p_triangulated, single.p_triangulated)

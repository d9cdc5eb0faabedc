"""LSTM marker augmentation: inputs as the augmenter expects, outputs where anatomy puts them."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("opensim")

from kinematics_truth import scene  # noqa: E402

from openkin import augmentation as aug  # noqa: E402
from openkin.errors import OpenKinError  # noqa: E402
from openkin.formats.trc import Trc, read_trc, write_trc  # noqa: E402
from openkin.skeletons import BLAZEPOSE, COCO_17  # noqa: E402

# augmented marker -> keypoint it sits near, and the largest plausible distance (m)
NEAR = {"r_knee_study": ("RKnee", 0.12), "L_mknee_study": ("LKnee", 0.12), "r_ankle_study": ("RAnkle", 0.10),
        "L_mankle_study": ("LAnkle", 0.10), "r_calc_study": ("RHeel", 0.10), "RHJC_study": ("RHip", 0.08),
        "LHJC_study": ("LHip", 0.08), "r_lelbow_study": ("RElbow", 0.10), "L_mwrist_study": ("LWrist", 0.10),
        "C7_study": ("Neck", 0.2), "r_toe_study": ("RBigToe", 0.10)}


@pytest.fixture(scope="module")
def walk():
    markers, xyz, *_ = scene(150)
    return list(markers), xyz.copy()


def test_augmented_markers_sit_on_the_body(walk):
    names, xyz = walk
    out_names, out = aug.augment(names, xyz, 1.85, 75.0)
    assert out_names == list(aug.LOWER_RESPONSES + aug.UPPER_RESPONSES) and out.shape == (150, 43, 3)
    assert np.isfinite(out).all()
    for marker, (kp, limit) in NEAR.items():
        d = np.linalg.norm(out[:, out_names.index(marker)] - xyz[:, names.index(kp)], axis=1)
        assert np.median(d) < limit, (marker, np.median(d))
    # medial and lateral knee markers straddle the knee keypoint (knee width 6-16 cm)
    width = np.linalg.norm(out[:, out_names.index("r_knee_study")] - out[:, out_names.index("r_mknee_study")], axis=1)
    assert 0.06 < np.median(width) < 0.16


def test_inputs_are_normalised_by_hip_and_height(walk):
    """Translating the person moves every output with it; height enters as a feature."""
    names, xyz = walk
    _, a = aug.augment(names, xyz, 1.8, 70.0)
    _, b = aug.augment(names, xyz + np.array([2.0, 0.0, -1.0]), 1.8, 70.0)
    assert np.abs(b - a - np.array([2.0, 0.0, -1.0])).max() < 1e-4
    _, c = aug.augment(names, xyz, 1.6, 70.0)
    assert np.abs(c - a).max() > 1e-3


def test_missing_keypoints_give_nan_frames_only(walk):
    names, xyz = walk
    holed = xyz.copy()
    holed[50:55, names.index("RHeel")] = np.nan
    _, out = aug.augment(names, holed, 1.8, 70.0)
    lower = slice(0, len(aug.LOWER_RESPONSES))
    assert np.isnan(out[50:55, lower]).all() and np.isfinite(out[:50]).all() and np.isfinite(out[55:]).all()
    assert np.isfinite(out[50:55, len(aug.LOWER_RESPONSES):]).all()  # the upper model does not need heels


@pytest.mark.parametrize("skeleton,lacking", [(COCO_17, ["RHeel", "LHeel", "RSmallToe"]),
                                              (BLAZEPOSE, ["RSmallToe", "LSmallToe"])])
def test_keypoint_set_without_feet_is_a_clear_error(skeleton, lacking):
    xyz = np.zeros((5, len(skeleton.names), 3))
    with pytest.raises(OpenKinError, match="needs keypoints this file lacks") as e:
        aug.augment(list(skeleton.names), xyz, 1.7, 70.0, path="p.trc")
    assert all(k in str(e.value) for k in lacking) and "Neck" not in str(e.value)  # Neck is derivable
    assert "use_augmentation" in str(e.value)


def test_implausible_height_is_refused(walk):
    names, xyz = walk
    with pytest.raises(OpenKinError, match="height"):
        aug.augment(names, xyz, 175.0, 70.0)


def test_stage_writes_lstm_trc_with_measured_height(tmp_path, walk):
    from openkin.config import load_config
    from openkin.project import ProjectPaths

    names, xyz = walk
    no_mid = [i for i, n in enumerate(names) if n not in ("Hip", "Neck")]  # derived by the stage
    write_trc(tmp_path / "pose-3d" / "walk_filt.trc", Trc([names[i] for i in no_mid], 60.0, xyz[:, no_mid]))
    write_trc(tmp_path / "pose-3d" / "walk.trc", Trc(names, 60.0, xyz))  # unfiltered: ignored
    (tmp_path / "Config.toml").write_text("[project]\nparticipant_mass = 80.0\n[markerAugmentation]\n"
                                          "feet_on_floor = true\nmake_c3d = false\n")
    aug.run_stage(load_config(tmp_path), ProjectPaths(tmp_path))
    out = read_trc(tmp_path / "pose-3d" / "walk_filt_LSTM.trc")
    assert not (tmp_path / "pose-3d" / "walk_LSTM.trc").exists()
    assert out.marker_names[:len(no_mid)] == [names[i] for i in no_mid]
    assert out.marker_names[len(no_mid):] == list(aug.LOWER_RESPONSES + aug.UPPER_RESPONSES)
    assert out.xyz.shape == (150, len(no_mid) + 43, 3)
    assert np.nanmin(out.xyz[..., 1]) == pytest.approx(0.01, abs=1e-5)  # feet on the floor


def test_height_from_the_trial(walk):
    from openkin.measure import participant_height

    names, xyz = walk
    h = participant_height(xyz, names)
    # the scaled model (generic ~1.70 m, factors 1.04-1.12) stands about 1.8-1.9 m tall
    assert 1.75 < h < 1.95
    no_head = [i for i, n in enumerate(names) if n not in ("Head", "Nose")]
    h2 = participant_height(xyz[:, no_head], [names[i] for i in no_head])
    assert abs(h2 - h) < 0.15  # leg length / 0.485 (Winter) without head keypoints

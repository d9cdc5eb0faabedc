"""openkin.edits: the edits file (round trip, bad files), checks against a project, conflict
rules, and the kernels applying edits (against independent truths: the synth's own swap
corruption, hand-built association arrays)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from openkin.edits import (KINDS, Edit, ProjectFacts, add_edit, apply_2d_edits, apply_person_edits, conflicts,
                           edits_path, parse_frames, read_edits, remove_edit, validate, write_edits)
from openkin.errors import OpenKinError
from openkin.skeletons import get_skeleton
from openkin.synth import corrupt

NAMES = list(get_skeleton("HALPE_26").names)

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
frames = st.tuples(st.integers(0, 10**6), st.integers(0, 1000)).map(lambda t: (t[0], t[0] + t[1]))
cams = st.sampled_from(["cam01", "cam02", "cam03", "Cam 04 \"left\""])


@st.composite
def an_edit(draw, i: int = 1) -> Edit:
    kind = draw(st.sampled_from(KINDS))
    f = draw(st.none() | frames)
    note = draw(text)
    if kind in ("swap", "exclude_camera"):
        return Edit(i, kind, f, camera=draw(cams), person=draw(st.none() | st.integers(0, 9)), note=note)
    if kind == "wrong":
        kps = tuple(draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True)))
        return Edit(i, kind, f, camera=draw(cams), keypoints=kps, note=note)
    if kind == "person":
        p = draw(st.integers(0, 9))
        return Edit(i, kind, f, camera=draw(cams), person=p, target=draw(st.sampled_from([-1, p + 1])), note=note)
    if kind == "merge":
        a = draw(st.integers(0, 9))
        return Edit(i, kind, f, persons=(a, a + draw(st.integers(1, 5))), note=note)
    return Edit(i, kind, None, person=draw(st.integers(0, 9)), at=draw(st.integers(0, 10**5)), note=note)


@settings(max_examples=60, deadline=None)
@given(st.lists(an_edit(), max_size=6))
def test_write_read_round_trip(tmp_path_factory, edits):
    root = tmp_path_factory.mktemp("rt")
    edits = [Edit(**{**e.__dict__, "id": i + 1}) for i, e in enumerate(edits)]
    write_edits(root, edits)
    assert read_edits(root) == edits
    assert all(e.describe().startswith(f"#{e.id} ") for e in read_edits(root))


def test_file_is_human_readable(tmp_path):
    add_edit(tmp_path, Edit(0, "swap", (10, 40), camera="cam02"))
    text = edits_path(tmp_path).read_text()
    assert '[[edit]]\nid = 1\nkind = "swap"\ncamera = "cam02"\nframes = [10, 40]\n' in text
    assert text.startswith("# OpenKin edits")


@pytest.mark.parametrize("body, problem", [
    ('[[edit]]\nid = 1\nkind = "flip"\ncamera = "cam01"\n', "unknown kind 'flip'"),
    ('[[edit]]\nid = 1\nkind = "swap"\n', "lacks camera"),
    ('[[edit]]\nid = 1\nkind = "swap"\ncamera = "c"\nframes = [40, 10]\n', "first <= last"),
    ('[[edit]]\nid = 1\nkind = "swap"\ncamera = "c"\ncolour = 3\n', "unknown key(s) ['colour']"),
    ('[[edit]]\nkind = "swap"\ncamera = "c"\n', "lacks 'id'"),
    ('[[edit]]\nid = 1\nkind = "swap"\ncamera = "c"\n[[edit]]\nid = 1\nkind = "swap"\ncamera = "d"\n', "ids repeat"),
    ('[[edit]\n', "not valid TOML"),
    ('[[edit]]\nid = 1\nkind = "merge"\npersons = [2, 2]\n', "two different persons"),
])
def test_bad_files_are_clear_errors(tmp_path, body, problem):
    edits_path(tmp_path).parent.mkdir(parents=True)
    edits_path(tmp_path).write_text(body)
    with pytest.raises(OpenKinError) as err:
        read_edits(tmp_path)
    assert problem in err.value.problem
    assert err.value.path == edits_path(tmp_path) and err.value.fix


def test_parse_frames():
    assert parse_frames("10-40") == (10, 40) and parse_frames("7") == (7, 7)
    for bad in ("40-10", "a-b", "", "-3", "1-2-3"):
        with pytest.raises(OpenKinError):
            parse_frames(bad)


FACTS = ProjectFacts(cameras=("cam01", "cam02"), frames=(0, 599), persons=(0, 1), keypoints=tuple(NAMES))


@pytest.mark.parametrize("edit, problem, fix", [
    (Edit(1, "swap", (1, 5), camera="cam09"), "no camera 'cam09'", "cam01, cam02"),
    (Edit(1, "wrong", (1, 5), camera="cam01", keypoints=("RWirst",)), "no keypoint 'RWirst'", "RWrist"),
    (Edit(1, "merge", None, persons=(0, 4)), "no person 4", "0, 1"),
    (Edit(1, "swap", (700, 800), camera="cam01"), "outside the capture's 0-599", "within 0-599"),
    (Edit(1, "split", None, person=1, at=900), "outside", "0-599"),
])
def test_edits_naming_what_does_not_exist_are_errors(tmp_path, edit, problem, fix):
    with pytest.raises(OpenKinError) as err:
        add_edit(tmp_path, edit, FACTS)
    assert problem in err.value.problem and fix in err.value.fix
    assert not edits_path(tmp_path).exists()  # nothing stored


def test_person_edit_may_name_a_new_person():
    validate([Edit(1, "person", (0, 9), camera="cam01", person=0, target=5)], FACTS)


def test_add_and_remove(tmp_path):
    a = add_edit(tmp_path, Edit(0, "swap", (10, 40), camera="cam02"), FACTS)
    b = add_edit(tmp_path, Edit(0, "exclude_camera", None, camera="cam01"), FACTS)
    assert (a.id, b.id) == (1, 2)
    assert remove_edit(tmp_path, 1) == a
    assert [e.id for e in read_edits(tmp_path)] == [2]
    assert add_edit(tmp_path, Edit(0, "swap", (1, 2), camera="cam01")).id == 3  # ids never reused
    with pytest.raises(OpenKinError) as err:
        remove_edit(tmp_path, 7)
    assert "existing ids: 2, 3" in err.value.fix


def test_conflicts_say_which_wins(tmp_path, caplog):
    add_edit(tmp_path, Edit(0, "swap", (10, 40), camera="cam02"))
    with caplog.at_level("WARNING"):
        add_edit(tmp_path, Edit(0, "exclude_camera", (30, 50), camera="cam02"))
    assert "the exclusion #2 wins" in caplog.text
    edits = read_edits(tmp_path) + [Edit(3, "swap", (35, 36), camera="cam02"), Edit(4, "merge", None, persons=(0, 1)),
                                    Edit(5, "merge", (0, 10), persons=(2, 1))]
    found = conflicts(edits)
    assert any("#1 and #3 both swap cam02" in w and "once" in w for w in found)
    assert any("#4 and #5" in w and "the later one wins" in w for w in found)
    assert not conflicts([Edit(1, "swap", (0, 5), camera="cam01"), Edit(2, "exclude_camera", (6, 9), camera="cam01")])


def _detections(C=3, F=50, seed=0):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(0, 1000, (C, F, len(NAMES), 3))
    kp[..., 2] = rng.uniform(0.5, 1, (C, F, len(NAMES)))
    return kp


def test_swap_edit_matches_the_synth_swap_corruption():
    kp = _detections()
    frame_numbers = np.arange(100, 150)
    out, locked = apply_2d_edits(kp, ["cam01", "cam02", "cam03"], frame_numbers, NAMES,
                                 [Edit(1, "swap", (110, 119), camera="cam02")])
    # truth: the synth's own left/right swap (openkin.synth.corrupt) of the same frames
    uv, conf = kp[1, :, None, :, :2].copy(), kp[1, :, None, :, 2].copy()
    sel = (frame_numbers >= 110) & (frame_numbers <= 119)
    corrupt.swap_left_right(uv, conf, sel, corrupt.mirror_index(get_skeleton("HALPE_26")))
    np.testing.assert_array_equal(out[1, :, :, :2], uv[:, 0])
    np.testing.assert_array_equal(out[1, :, :, 2], conf[:, 0])
    np.testing.assert_array_equal(out[[0, 2]], kp[[0, 2]])
    np.testing.assert_array_equal(locked, sel)
    twice, _ = apply_2d_edits(kp, ["cam01", "cam02", "cam03"], frame_numbers, NAMES,
                              [Edit(1, "swap", (110, 119), camera="cam02"), Edit(2, "swap", (110, 115), camera="cam02")])
    np.testing.assert_array_equal(twice, out)  # one exchange, not two


def test_exclude_and_wrong_edits_remove_detections_exclusion_wins():
    kp = _detections()
    fn = np.arange(50)
    edits = [Edit(1, "wrong", (5, 9), camera="cam01", keypoints=("RWrist", "LKnee")),
             Edit(2, "swap", (20, 29), camera="cam03"), Edit(3, "exclude_camera", (25, 34), camera="cam03"),
             Edit(4, "exclude_camera", (0, 49), camera="cam02", person=1)]
    out, _ = apply_2d_edits(kp, ["cam01", "cam02", "cam03"], fn, NAMES, edits, person=0)
    gone = np.isnan(out[..., 0])
    expected = np.zeros(gone.shape, bool)
    expected[0, 5:10, [NAMES.index("RWrist"), NAMES.index("LKnee")]] = True
    expected[2, 25:35] = True                      # excluded, swapped or not
    np.testing.assert_array_equal(gone, expected)  # person 1's exclusion does not touch person 0
    assert np.isnan(out[2, 25:35]).all()
    mirror = [NAMES.index(("R" if n[0] == "L" else "L") + n[1:]) if n[:1] in "LR" and n[1:2].isupper() else i
              for i, n in enumerate(NAMES)]
    np.testing.assert_array_equal(out[2, 20:25], kp[2, 20:25][:, mirror])
    with pytest.raises(OpenKinError, match="no camera 'cam07'"):
        apply_2d_edits(kp, ["cam01", "cam02", "cam03"], fn, NAMES, [Edit(9, "swap", (1, 2), camera="cam07")])


def test_person_edits_on_an_association():
    # choice (T=2, C=2, F=6): person 0 is slot 0, person 1 slot 1, everywhere
    ch = np.stack([np.zeros((2, 6), int), np.ones((2, 6), int)])
    fn = np.arange(10, 16)
    cams = ["cam01", "cam02"]
    out = apply_person_edits(ch, cams, fn, [Edit(1, "person", (12, 13), camera="cam02", person=0, target=1)])
    exp = ch.copy()
    exp[0, 1, 2:4], exp[1, 1, 2:4] = 1, 0
    np.testing.assert_array_equal(out, exp)
    out = apply_person_edits(ch, cams, fn, [Edit(1, "person", None, camera="cam01", person=1, target=-1)])
    assert (out[1, 0] == -1).all() and (out[1, 1] == 1).all() and (out[0] == 0).all()
    out = apply_person_edits(ch, cams, fn, [Edit(1, "split", None, person=0, at=14)])
    assert out.shape == (3, 2, 6)
    assert (out[0][:, :4] == 0).all() and (out[0][:, 4:] == -1).all() and (out[2][:, 4:] == 0).all()
    merged = apply_person_edits(out, cams, fn, [Edit(1, "merge", None, persons=(0, 2))])
    np.testing.assert_array_equal(merged[0], ch[0])      # split then merged back: the original person
    assert (merged[2] == -1).all()                       # the absorbed one stays, empty (no renumbering)
    gap = ch.copy()
    gap[0, 0, :3] = -1
    both = apply_person_edits(gap, cams, fn, [Edit(1, "merge", None, persons=(0, 1))])
    assert (both[0, 0] == [1, 1, 1, 0, 0, 0]).all()      # the kept person's own detections win
    assert (both[1] == -1).all()
    with pytest.raises(OpenKinError, match="no person 5"):
        apply_person_edits(ch, cams, fn, [Edit(3, "merge", None, persons=(0, 5))])

"""Every historical Pose2Sim Config.toml either loads or fails with a clear error naming the problem.

The fixture holds all 725 distinct versions of Pose2Sim's Config.toml files across its history
(tests/data/pose2sim_configs/README.md). A file "loads" when :func:`openkin.config.load_config`
returns; the only accepted failure is an :class:`OpenKinError` naming the file and the key or
line (three versions are not valid TOML: ``height = auto``). Anything else is a bug.
"""
from __future__ import annotations

import hashlib
import logging
import re
import tarfile
from pathlib import Path

import pytest

from openkin.config import load_config
from openkin.errors import OpenKinError

DATA = Path(__file__).resolve().parents[1] / "data" / "pose2sim_configs"
ARCHIVE = DATA / "configs.tar.xz"


def _members() -> dict[str, bytes]:
    with tarfile.open(ARCHIVE) as tar:
        return {Path(m.name).stem: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


CONFIGS = _members()
NOT_TOML = {"55afcb316f445b59271cf4c358665da24f69473a", "6bd951d0044c95163283901158e951a80225c139",
            "a9bfbc4920e8a7969df5cb52ea2fd3ad5c6068fa"}  # 'height = auto' / unquoted words: invalid TOML


def test_fixture_is_every_distinct_version():
    assert len(CONFIGS) == 725
    for name, data in CONFIGS.items():  # the name is the git blob hash of the content
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == name
    listed = [line.split("\t")[0] for line in (DATA / "MANIFEST.tsv").read_text().splitlines()[1:]]
    assert sorted(listed) == sorted(CONFIGS)


@pytest.mark.parametrize("blob", sorted(CONFIGS))
def test_historical_config_loads_or_names_the_problem(blob, tmp_path, caplog):
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "Config.toml").write_bytes(CONFIGS[blob])
    caplog.set_level(logging.WARNING)
    if blob in NOT_TOML:
        with pytest.raises(OpenKinError) as err:
            load_config(trial)
        assert re.search(r"malformed TOML: .*line \d+", str(err.value)) and "Config.toml" in str(err.value)
        return
    config = load_config(trial)
    assert config.sources == (str(trial / "Config.toml"),)


def _load(tmp_path, text: str):
    trial = tmp_path / "t"
    trial.mkdir(exist_ok=True)
    (trial / "Config.toml").write_text(text)
    return load_config(trial)


def test_pose2sim_01_sections_keep_their_values(tmp_path):
    config = _load(tmp_path, """
[project]
frames_range = [10, 300]
rawImg_folder_name = 'raw-2d'
[pose-2d]
pose_model = 'BODY_25B'
[2d-tracking]
tracked_keypoint = 'RShoulder'
error_threshold_tracking = 25
[3d-triangulation]
error_threshold_triangulation = 12
[3d-filtering]
type = 'gaussian'
display_figures = 'True'
   [3d-filtering.butterworth]
   type = 'low'
   cut_off_frequency = 7
   [3d-filtering.LOESS]
   nb_values_used = 31
[calibration]
type = 'qca'
   [calibration.qca]
   binning_factor = 2
""")
    assert config.project.frame_range == (10, 300)
    assert config.pose.pose_model == "BODY_25B"
    assert config.personAssociation.single_person.tracked_keypoint == "RShoulder"
    assert config.personAssociation.single_person.reproj_error_threshold_association == 25
    assert config.triangulation.reproj_error_threshold_triangulation == 12
    assert config.filtering.type == "gaussian" and config.filtering.display_figures is True
    assert config.filtering.butterworth.cut_off_frequency == 7 and config.filtering.loess.nb_values_used == 31
    assert config.calibration.calibration_type == "convert"
    assert config.calibration.convert.convert_from == "qualisys"
    assert config.calibration.convert.qualisys.binning_factor == 2


def test_changed_meanings_are_translated(tmp_path):
    config = _load(tmp_path, """
[personAssociation]
single_person = false
[calibration.convert]
convert_from = 'calibration/Calib.qca.txt'
[poseEstimation]
overwrite_pose = true
""")
    assert config.project.multi_person is True
    assert config.calibration.convert.convert_from == "qualisys"
    assert config.pose.overwrite_pose is True


def test_ignored_key_is_named_with_its_replacement(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    _load(tmp_path, "[triangulation.bundle_adjustment]\nenabled = true\n")
    assert any("triangulation.bundle_adjustment" in r.message and "[refinement]" in r.message for r in caplog.records)


def test_unknown_old_calibration_type_is_a_clear_error(tmp_path):
    with pytest.raises(OpenKinError, match="calibration.type = 'wand'"):
        _load(tmp_path, "[calibration]\ntype = 'wand'\n")

"""A Pose2Sim batch session made of synthetic trials (``openkin.synth``), for the batch tests and benchmark.

Layout (Pose2Sim's batch layout, one participant level)::

    dest/  Config.toml  calibration/Calib_scene.toml
      P01/  Config.toml
        T01/  Config.toml  pose/cam*_json  truth/
        T02/ ...

Each trial is a clean synth scene of its own seed (its own motion); the synth rig is the same for
every seed, so the trials' calibration is moved up to the session and shared.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from openkin.synth import build_scene

PARTICIPANT = "P01"


def trial_name(i: int) -> str:
    return f"T{i + 1:02d}"


def make_session(dest: Path, n_trials: int = 3, frames: int | list[int] = 30, participant_toml: str = "",
                 trial_toml: str = "") -> Path:
    """Build the session in ``dest`` (must not exist); returns ``dest``. ``frames``: of every trial, or
    one per trial; ``participant_toml`` and ``trial_toml``: text of the participant's and each
    trial's Config.toml."""
    dest = Path(dest)
    part = dest / PARTICIPANT
    for i in range(n_trials):
        trial = part / trial_name(i)
        build_scene(trial, "clean", n_frames=frames if isinstance(frames, int) else frames[i], seed=i)
        if i == 0:
            shutil.move(str(trial / "Config.toml"), dest / "Config.toml")
            shutil.move(str(trial / "calibration"), dest / "calibration")
        else:
            (trial / "Config.toml").unlink()
            shutil.rmtree(trial / "calibration")
        (trial / "Config.toml").write_text(trial_toml or "# trial: inherits the session's configuration\n")
    (part / "Config.toml").write_text(participant_toml or "# participant: inherits the session's configuration\n")
    return dest

"""The folders of a Pose2Sim-layout project, in one place."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPaths:
    """Folders of one trial. ``root`` holds Config.toml (or inherits one from its session folder)."""

    root: Path

    @property
    def calibration(self) -> Path:
        return self.root / "calibration"

    @property
    def videos(self) -> Path:
        return self.root / "videos"

    @property
    def pose(self) -> Path:
        return self.root / "pose"

    @property
    def pose_sync(self) -> Path:
        return self.root / "pose-sync"

    @property
    def pose_associated(self) -> Path:
        return self.root / "pose-associated"

    @property
    def pose_3d(self) -> Path:
        return self.root / "pose-3d"

    @property
    def kinematics(self) -> Path:
        return self.root / "kinematics"

    @property
    def reports(self) -> Path:
        return self.root / "openkin"

    @property
    def logs(self) -> Path:
        return self.root / "openkin" / "logs"

    @property
    def name(self) -> str:
        return self.root.name

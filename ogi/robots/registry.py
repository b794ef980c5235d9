"""Name -> `RobotSpec` for the built-in robots, and loading of user robots from TOML."""

from __future__ import annotations

from pathlib import Path

from ogi.robots.biped import BIPED
from ogi.robots.go2 import GO2
from ogi.robots.humanoid import HUMANOID
from ogi.robots.spec import RobotSpec

ROBOTS: dict[str, RobotSpec] = {GO2.name: GO2, BIPED.name: BIPED, HUMANOID.name: HUMANOID}


def robot_names() -> list[str]:
    return list(ROBOTS)


def get_robot(name_or_path: str) -> RobotSpec:
    """A built-in robot by name, or a user robot from a `.toml` file describing its MJCF."""
    if name_or_path.endswith(".toml"):
        from ogi.robots.mjcf_toml import load_robot_toml

        return load_robot_toml(Path(name_or_path))
    try:
        return ROBOTS[name_or_path]
    except KeyError:
        raise KeyError(
            f"unknown robot '{name_or_path}'; known robots: {', '.join(ROBOTS)} (or a path to a robot .toml file)"
        ) from None

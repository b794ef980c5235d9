"""Robots as data: `RobotSpec` plus an `MjSpec` builder, and the registry of known robots."""

from ogi.robots.instrument import STAND_KEY, actuator_names, instrument
from ogi.robots.registry import ROBOTS, get_robot, robot_names
from ogi.robots.spec import RobotSpec, RobotSpecError

__all__ = [
    "ROBOTS",
    "STAND_KEY",
    "RobotSpec",
    "RobotSpecError",
    "actuator_names",
    "get_robot",
    "instrument",
    "robot_names",
]

"""What an arena holds and what the planner may ask of the walker: the types shared by scenes, instructions,
the oracle, the camera and the planner.

Frames: world x forward at yaw 0, y to the left, z up; a pose is (x m, y m, yaw rad). An instruction is given
at a start pose; moves and turns are measured in that start frame.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

# colour name -> RGB in [0, 1]; distinct under the camera's flat shading
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.10),
    "green": (0.12, 0.70, 0.20),
    "blue": (0.12, 0.30, 0.90),
    "yellow": (0.92, 0.82, 0.10),
    "purple": (0.60, 0.20, 0.75),
}
SHAPES = ("box", "ball", "pillar", "cone")
# an obstacle: a grey block that no instruction names
OBSTACLE_RGB = (0.45, 0.45, 0.45)
ARENA_HALF_M = 4.0  # objects and robot stay inside [-4, 4] m on both axes


@dataclass(frozen=True)
class SceneObject:
    """A nameable object: colour x shape at a place on the ground."""

    colour: str
    shape: str
    xy: tuple[float, float]

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; known: {', '.join(COLOURS)}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; known: {', '.join(SHAPES)}")


@dataclass(frozen=True)
class Obstacle:
    """An unnamed block the walker must not walk into: centre and half sizes (m) on the ground, yaw (rad)."""

    xy: tuple[float, float]
    half_size: tuple[float, float]
    yaw: float = 0.0


@dataclass(frozen=True)
class Layout:
    """One arena: its objects (distinct colour-shape pairs) and obstacles, and where the robot starts."""

    objects: tuple[SceneObject, ...]
    obstacles: tuple[Obstacle, ...] = ()
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)  # robot pose (x, y, yaw)

    def find(self, colour: str | None, shape: str | None) -> int | None:
        """Index of the one object matching colour and/or shape (None of either: any), None if not exactly one."""
        hits = [
            i
            for i, o in enumerate(self.objects)
            if (colour is None or o.colour == colour) and (shape is None or o.shape == shape)
        ]
        return hits[0] if len(hits) == 1 else None


# The planner's subgoals: a codebook of walking commands within the walker's trained range
# (vx in [-1, 1], vy in [-0.5, 0.5], yaw rate in [-1, 1]), plus a stop.
SUBGOAL_VX_MPS = (-0.4, 0.0, 0.4, 0.8)
SUBGOAL_VY_MPS = (-0.3, 0.0, 0.3)
SUBGOAL_YAW_RADPS = (-0.8, -0.4, 0.0, 0.4, 0.8)
SUBGOALS: tuple[tuple[float, float, float], ...] = tuple(
    itertools.product(SUBGOAL_VX_MPS, SUBGOAL_VY_MPS, SUBGOAL_YAW_RADPS)
)
STOP = len(SUBGOALS)  # the index after the codebook: stand still, the instruction is done
NUM_SUBGOALS = len(SUBGOALS) + 1
MAX_STAGES = 4  # an instruction compiles to at most this many stages


def subgoal_command(index: int) -> tuple[float, float, float]:
    """(vx, vy, yaw rate) of a codebook index; STOP is standing still."""
    if index == STOP:
        return (0.0, 0.0, 0.0)
    if not 0 <= index < len(SUBGOALS):
        raise ValueError(f"subgoal index {index} outside 0..{STOP}")
    return SUBGOALS[index]


def nearest_subgoal(vx: float, vy: float, yaw_rate: float) -> int:
    """The codebook entry closest to a command (yaw rate weighted as 0.5 m/s per rad/s); never STOP."""

    def cost(entry: tuple[float, float, float]) -> float:
        return (entry[0] - vx) ** 2 + (entry[1] - vy) ** 2 + (0.5 * (entry[2] - yaw_rate)) ** 2

    return min(range(len(SUBGOALS)), key=lambda i: cost(SUBGOALS[i]))


def wrap_angle(angle: float) -> float:
    """Angle in (-pi, pi]."""
    return math.atan2(math.sin(angle), math.cos(angle))

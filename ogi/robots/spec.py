"""`RobotSpec`: a robot as data (joint order, default pose, gains, limits, named sites)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco


class RobotSpecError(ValueError):
    """A robot description is invalid; the message names the source and the field."""

    def __init__(self, source: str, field_name: str, problem: str):
        self.source = source
        self.field_name = field_name
        super().__init__(f"{source}: field '{field_name}': {problem}")


@dataclass(frozen=True, kw_only=True)
class RobotSpec:
    """Everything task code needs to know about a robot, by name; no simulation code.

    Per-joint tuples are in action order (the order of `joint_names`), which is also the order
    of the policy's actions and of the PD actuators; MuJoCo's qpos order may differ and is
    resolved by name when a model is compiled.
    """

    name: str
    joint_names: tuple[str, ...]
    default_pose: tuple[float, ...]  # rad, the `stand` keyframe's joint angles
    kp: tuple[float, ...]  # N*m/rad
    kd: tuple[float, ...]  # N*m*s/rad
    torque_limit: tuple[float, ...]  # N*m, symmetric
    joint_limits: tuple[tuple[float, float], ...]  # rad, (low, high)
    foot_sites: tuple[str, ...]
    imu_site: str
    base_body: str
    nominal_base_height: float  # m, base body origin above flat ground when standing
    build: Callable[[], mujoco.MjSpec] = field(compare=False, repr=False)
    # bodies whose contact with anything ends the episode as a fall
    termination_contact_bodies: tuple[str, ...] = ()
    # bodies whose contact is penalized (knees, shins) but not fatal
    undesired_contact_bodies: tuple[str, ...] = ()
    action_scale: float = 0.25  # rad per unit action
    source: str = "<builtin>"
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        src = self.source
        if n == 0:
            raise RobotSpecError(src, "joint_names", "must name at least one actuated joint")
        if len(set(self.joint_names)) != n:
            dup = sorted({j for j in self.joint_names if self.joint_names.count(j) > 1})
            raise RobotSpecError(src, "joint_names", f"duplicate joints {dup}")
        for name in ("default_pose", "kp", "kd", "torque_limit", "joint_limits"):
            value = getattr(self, name)
            if len(value) != n:
                raise RobotSpecError(
                    src, name, f"has {len(value)} entries, expected {n} (one per joint in joint_names)"
                )
        for name in ("default_pose", "kp", "kd", "torque_limit"):
            for joint, v in zip(self.joint_names, getattr(self, name)):
                if not math.isfinite(v):
                    raise RobotSpecError(src, name, f"non-finite value {v} for joint '{joint}'")
        for name in ("kp", "kd"):
            for joint, v in zip(self.joint_names, getattr(self, name)):
                if v < 0:
                    raise RobotSpecError(src, name, f"negative gain {v} for joint '{joint}' (must be >= 0)")
        for joint, v in zip(self.joint_names, self.torque_limit):
            if v <= 0:
                raise RobotSpecError(src, "torque_limit", f"{v} for joint '{joint}' must be > 0")
        for joint, lim, q0 in zip(self.joint_names, self.joint_limits, self.default_pose):
            if len(lim) != 2 or not lim[0] < lim[1]:
                raise RobotSpecError(src, "joint_limits", f"{lim} for joint '{joint}' must be (low, high), low < high")
            if not lim[0] <= q0 <= lim[1]:
                raise RobotSpecError(
                    src, "default_pose", f"{q0} for joint '{joint}' lies outside its limits {tuple(lim)}"
                )
        if not self.foot_sites:
            raise RobotSpecError(src, "foot_sites", "must name at least one foot site")
        if not (0 < self.nominal_base_height < 5):
            raise RobotSpecError(src, "nominal_base_height", f"{self.nominal_base_height} m must be in (0, 5)")
        if not (0 < self.action_scale <= 2):
            raise RobotSpecError(src, "action_scale", f"{self.action_scale} rad must be in (0, 2]")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

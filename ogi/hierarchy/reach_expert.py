"""A scripted expert for the humanoid's `reach` task: walk until the target is in reach, then reach for it.

This is the hand-off without coordination (the walking policy carries the robot, then the arm takes over), the
baseline the coordination policy must beat, and the source of demonstrations for the manipulation policy.

- Out of reach (the target more than `reach_m` from the pelvis, horizontally): the walking policy gets a velocity
  command toward the target, turning to face it (yaw rate proportional to its bearing) and walking forward once it
  roughly faces it, slower as it gets close.
- In reach: the command is zero (stand) and the nearer arm's joints take the angles that put its grasp point on
  the target (`solve_site_ik` from the current configuration); the other joints are the walking policy's.

`walker(policy_obs, command) -> actions` is any walking policy over the whole body (observations with the given
command, as `WalkVecEnv.set_commands` returns them); `None` holds the default pose (a robot that cannot walk, for
targets already in reach).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ogi.controllers.ik import solve_site_ik
from ogi.envs.sensing import yaw_of
from ogi.envs.wholebody import SIDES, WholeBodyVecEnv

ARM_JOINTS = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")
Walker = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ReachExpert:
    def __init__(
        self,
        env: WholeBodyVecEnv,
        walker: Walker | None = None,
        *,
        reach_m: float = 0.45,
        max_speed_mps: float = 0.6,
        max_yaw_rate_radps: float = 0.8,
        facing_rad: float = 0.5,
    ):
        if env.cfg.task != "reach":
            raise ValueError(f"the reach expert drives the 'reach' task, not '{env.cfg.task}'")
        self.env, self.walker = env, walker
        self.reach_m, self.max_speed, self.max_yaw_rate, self.facing = (
            reach_m,
            max_speed_mps,
            max_yaw_rate_radps,
            facing_rad,
        )
        names = list(env.walk.robot.joint_names)
        self.arm_joints = {side: [f"{side}_{j}_joint" for j in ARM_JOINTS] for side in SIDES}
        self.arm_index = {side: np.array([names.index(j) for j in joints]) for side, joints in self.arm_joints.items()}
        self.default_pose = np.asarray(env.walk.robot.default_pose)
        self.action_scale = env.walk.robot.action_scale
        self._qpos = env.walk.batch.bind("qpos")

    def command(self) -> np.ndarray:
        """(n, 3) the walking command toward each target; zero where it is in reach."""
        base = self.env.walk.rig.base_pose()
        offset = self.env.goal[:, :2] - base[:, :2]
        distance = np.linalg.norm(offset, axis=1)
        bearing = np.angle(np.exp(1j * (np.arctan2(offset[:, 1], offset[:, 0]) - yaw_of(base[:, 3:7]))))
        yaw_rate = np.clip(1.5 * bearing, -self.max_yaw_rate, self.max_yaw_rate)
        speed = np.clip(0.8 * (distance - 0.8 * self.reach_m), 0.0, self.max_speed)
        speed = np.where(np.abs(bearing) < self.facing, speed, 0.0)
        far = distance > self.reach_m
        return np.column_stack([speed * far, np.zeros_like(speed), yaw_rate * far])

    def act(self) -> np.ndarray:
        """(n, 23) joint-target actions for the env's current state."""
        env = self.env
        command = self.command()
        obs = env.walk.set_commands(command)
        n, j = env.num_envs, env.walk.robot.num_joints
        actions = np.zeros((n, j)) if self.walker is None else np.asarray(self.walker(obs["policy"], command), float)
        in_reach = ~command.any(axis=1)
        if in_reach.any():
            grasp = env.grasp_points()
            nearer = np.linalg.norm(grasp - env.goal[:, None], axis=2).argmin(axis=1)
            for i in np.flatnonzero(in_reach):
                side = SIDES[nearer[i]]
                result = solve_site_ik(
                    env.walk.model, self._qpos[i], f"{side}_grasp", env.goal[i], self.arm_joints[side]
                )
                index = self.arm_index[side]
                actions[i, index] = (result.joint_pos - self.default_pose[index]) / self.action_scale
        return actions

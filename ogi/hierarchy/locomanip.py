"""Loco-manipulation on the humanoid: a frozen walking policy, a manipulation policy for the arms, and the layer
that joins them.

- `Walker`: a trained walking policy (its checkpoint's own env config) driving the whole body from a velocity
  command; the joints it held while training (waist, arms) get the default pose from it.
- Arm skills map an end-effector target to the 8 arm joints' actions (left then right: shoulder pitch, roll, yaw,
  elbow), in the walk env's action units: `IKArm` (the scripted expert, damped least squares from the current
  pose, the nearer hand), `FlowArm` (a flow-matching policy over action chunks trained on the expert's
  demonstrations, replanned every `execute` steps), `ResidualArm` (a bounded correction on top of a base arm).
- `HandOff`: the scripted joint without coordination: walk toward the goal (turn to face it, walk forward) until
  it is within `reach_m`, then stand and give the arm the goal.
- `Coordinator`: a small policy that reads the task observation and both intents (the hand-off's command, the
  goal in the base frame, whether it is in reach) and emits the walking command and the end-effector target as
  bounded corrections of those intents, plus how early the arm engages. It starts as the hand-off and is trained
  with PPO on the whole task, the walker and the arm frozen.

`run_episodes` runs any of these on a whole-body env and counts successes. The arm's observation
(`arm_observation`, 17 numbers in the base frame): the target (3), the arm joints' offsets from the default pose
(8), both grasp points (6).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ogi.controllers.ik import solve_site_ik
from ogi.envs.config import held_joint_mask
from ogi.envs.observations import quat_rotate_inverse
from ogi.envs.sensing import yaw_of
from ogi.envs.wholebody import SIDES, TASK_OBS_SIZE, WholeBodyConfig, WholeBodyVecEnv
from ogi.policies.flow import FlowPolicy
from ogi.training.config import actor_observation
from ogi.training.policy_loading import LoadedPolicy, load_policy

ARM_JOINTS = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")
ARM_ACTION_SIZE = 2 * len(ARM_JOINTS)
ARM_OBS_SIZE = 3 + ARM_ACTION_SIZE + 6
COMMAND_SIZE = 3


def arm_joint_names() -> list[str]:
    return [f"{side}_{j}_joint" for side in SIDES for j in ARM_JOINTS]


def arm_index(env: WholeBodyVecEnv) -> np.ndarray:
    """(8,) indices of the arm joints among the robot's joints (and actions)."""
    names = list(env.walk.robot.joint_names)
    return np.array([names.index(j) for j in arm_joint_names()])


def to_base(env: WholeBodyVecEnv, world: np.ndarray) -> np.ndarray:
    """World points (n, 3) in each robot's base frame."""
    base = env.walk.rig.base_pose()
    return quat_rotate_inverse(base[:, 3:7], np.asarray(world, float) - base[:, :3])


def arm_observation(env: WholeBodyVecEnv, target_world: np.ndarray) -> np.ndarray:
    """(n, 17) float32: the target, the arm joints' offsets from the default pose, both grasp points; base frame."""
    index = arm_index(env)
    qpos = env.walk.rig.joint_pos()[:, index] - np.asarray(env.walk.robot.default_pose)[index]
    grasp = env.grasp_points()
    obs = np.concatenate([to_base(env, target_world), qpos, to_base(env, grasp[:, 0]), to_base(env, grasp[:, 1])], 1)
    return obs.astype(np.float32)


# actions reach +-3 rad from the default pose (walking trains with +-1 rad): an arm reaching near the chest bends
# its elbow by 2 rad
WHOLE_BODY_ACTION_CLIP = 12.0


def whole_body_config(walker: LoadedPolicy, **task) -> WholeBodyConfig:
    """The task config for a walker: the walk env it trained on (its observations), every joint under command,
    the wider action range of `WHOLE_BODY_ACTION_CLIP` (the walker's own actions stay clipped as in training)."""
    clip = max(walker.cfg.env.action_clip, WHOLE_BODY_ACTION_CLIP)
    walk = dataclasses.replace(walker.cfg.env, held_joints=(), action_clip=clip)
    return WholeBodyConfig(robot=walker.cfg.env.robot, walk=walk, **task)


# ---- the walking policy ---------------------------------------------------------------------------------------
class Walker:
    """A frozen walking policy for a whole-body env; `act(command)` returns the whole body's actions."""

    def __init__(self, policy: LoadedPolicy | Path | str, env: WholeBodyVecEnv):
        self.policy = policy if isinstance(policy, LoadedPolicy) else load_policy(Path(policy))
        if self.policy.cfg.env.robot != env.cfg.robot:
            raise ValueError(f"the walker drives '{self.policy.cfg.env.robot}', the task's robot is '{env.cfg.robot}'")
        self.env = env
        robot = env.walk.robot
        self.held = held_joint_mask(robot.joint_names, self.policy.cfg.env.held_joints)
        self.state = self.policy.actor.initial_state(env.num_envs)

    def reset(self, done: np.ndarray) -> None:
        self.state = self.policy.actor.reset_state(self.state, torch.as_tensor(np.asarray(done, bool)))

    @torch.no_grad()
    def act(self, command: np.ndarray) -> np.ndarray:
        obs = self.env.walk.set_commands(np.asarray(command, float))
        x = torch.as_tensor(actor_observation(obs, self.policy.cfg.actor_obs))
        mean, self.state = self.policy.actor(self.policy.normalizer(x), self.state)
        clip = self.policy.cfg.env.action_clip
        actions = np.clip(mean.numpy().astype(np.float64), -clip, clip)
        actions[:, self.held] = 0.0
        return actions


# ---- arm skills -------------------------------------------------------------------------------------------------
ArmSkill = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (target_world (n, 3), engaged (n,)) -> (n, 8)


class IKArm:
    """The scripted arm: the nearer hand's joints at the IK solution for the target, the other arm at rest."""

    def __init__(self, env: WholeBodyVecEnv):
        self.env = env
        self.index = arm_index(env)
        self.default = np.asarray(env.walk.robot.default_pose)[self.index]
        self.scale = env.walk.robot.action_scale
        self._qpos = env.walk.batch.bind("qpos")
        self.names = arm_joint_names()

    def __call__(self, target_world: np.ndarray, engaged: np.ndarray) -> np.ndarray:
        env = self.env
        actions = np.zeros((env.num_envs, ARM_ACTION_SIZE))
        if not engaged.any():
            return actions
        nearer = np.linalg.norm(env.grasp_points() - target_world[:, None], axis=2).argmin(axis=1)
        k = len(ARM_JOINTS)
        for i in np.flatnonzero(engaged):
            side = nearer[i]
            joints = self.names[side * k : (side + 1) * k]
            result = solve_site_ik(env.walk.model, self._qpos[i], f"{SIDES[side]}_grasp", target_world[i], joints)
            cols = slice(side * k, (side + 1) * k)
            actions[i, cols] = (result.joint_pos - self.default[cols]) / self.scale
        return actions


class FlowArm:
    """A flow-matching arm policy: a chunk of `horizon` actions drawn from the arm observation, the first
    `execute` of them played before drawing again (or sooner, when an env's target or engagement changes)."""

    def __init__(self, env: WholeBodyVecEnv, policy: FlowPolicy, *, execute: int = 4, seed: int = 0):
        if policy.cfg.obs_dim != ARM_OBS_SIZE or policy.cfg.action_dim != ARM_ACTION_SIZE:
            raise ValueError(
                f"an arm flow policy maps {ARM_OBS_SIZE} observations to {ARM_ACTION_SIZE} actions, "
                f"this one {policy.cfg.obs_dim} to {policy.cfg.action_dim}"
            )
        if not 1 <= execute <= policy.cfg.horizon:
            raise ValueError(f"execute = {execute} must be in [1, {policy.cfg.horizon}] (the chunk's horizon)")
        self.env, self.policy, self.execute = env, policy, execute
        self.generator = torch.Generator().manual_seed(seed)
        n = env.num_envs
        self.chunk = np.zeros((n, policy.cfg.horizon, ARM_ACTION_SIZE))
        self.age = np.full(n, execute)  # actions of the current chunk played
        self.last_target = np.full((n, 3), np.nan)
        self.was_engaged = np.zeros(n, dtype=bool)

    def reset(self, done: np.ndarray) -> None:
        self.age[np.asarray(done, bool)] = self.execute

    def __call__(self, target_world: np.ndarray, engaged: np.ndarray) -> np.ndarray:
        changed = (np.abs(target_world - self.last_target) > 0.02).any(axis=1) | (engaged != self.was_engaged)
        draw = engaged & ((self.age >= self.execute) | changed)
        if draw.any():
            obs = torch.as_tensor(arm_observation(self.env, target_world)[draw])
            self.chunk[draw] = self.policy.act(obs, generator=self.generator).numpy()
            self.age[draw] = 0
            self.last_target[draw] = target_world[draw]
        self.was_engaged = engaged.copy()
        rows = np.arange(self.env.num_envs)
        actions = self.chunk[rows, np.minimum(self.age, self.policy.cfg.horizon - 1)]
        self.age += engaged
        return np.where(engaged[:, None], actions, 0.0)


RESIDUAL_OBS_SIZE = ARM_OBS_SIZE + ARM_ACTION_SIZE


class ResidualArm:
    """base arm + `bound` * clip(residual(obs, base action), -1, 1): the residual policy reads the arm observation
    and the base's action; `residual` is any function (n, 25) -> (n, 8) (the trained actor's mean, or PPO's
    sampled action during training, set through `next_residual`).

    A learner that must see the observation before it acts calls `observe` first: the base arm is asked then,
    once, and the next call plays that same base action (a flow arm's chunk advances once per step)."""

    def __init__(self, env: WholeBodyVecEnv, base: ArmSkill, residual: Callable | None, *, bound: float = 0.3):
        self.env, self.base, self.residual, self.bound = env, base, residual, bound
        self.next_residual: np.ndarray | None = None
        self._base: np.ndarray | None = None  # the base action `observe` drew, for the next call

    def observation(self, target_world: np.ndarray, base_action: np.ndarray) -> np.ndarray:
        return np.concatenate([arm_observation(self.env, target_world), base_action], 1).astype(np.float32)

    def observe(self, target_world: np.ndarray, engaged: np.ndarray) -> np.ndarray:
        """(n, 25) the residual's observation for this step; the base arm acts now and the next call plays it."""
        self._base = self.base(target_world, engaged)
        return self.observation(target_world, self._base)

    def __call__(self, target_world: np.ndarray, engaged: np.ndarray) -> np.ndarray:
        base, self._base = (self.base(target_world, engaged) if self._base is None else self._base), None
        if self.next_residual is not None:
            raw, self.next_residual = self.next_residual, None
        elif self.residual is not None:
            raw = self.residual(self.observation(target_world, base))
        else:
            return base
        return np.where(engaged[:, None], base + self.bound * np.clip(raw, -1.0, 1.0), base)

    def reset(self, done: np.ndarray) -> None:
        if hasattr(self.base, "reset"):
            self.base.reset(done)


# ---- joining walking and the arm -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class HandOff:
    """Walk toward the goal until it is in reach, then stand and reach: the scripted joint of the two skills.

    In reach means near (`reach_m`) and in front (bearing within `facing_rad`): a target beside or behind the
    robot is turned to first. Engaged on nearness alone, the arm chased targets that the standing walker's heading
    drift had carried behind it, swinging backward, and the robot fell (9-22% of episodes with the flow arm,
    3-6% with this test).
    """

    reach_m: float = 0.45
    max_speed_mps: float = 0.5
    max_yaw_rate_radps: float = 0.8
    facing_rad: float = 0.5

    def command(
        self, env: WholeBodyVecEnv, reach_m: np.ndarray | float | None = None, goal: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """((n, 3) walking command toward each goal (the task's, or `goal` (n, 3)), (n,) in reach); zero command
        where in reach."""
        reach = self.reach_m if reach_m is None else reach_m
        base = env.walk.rig.base_pose()
        offset = (env.goal if goal is None else goal)[:, :2] - base[:, :2]
        distance = np.linalg.norm(offset, axis=1)
        bearing = np.angle(np.exp(1j * (np.arctan2(offset[:, 1], offset[:, 0]) - yaw_of(base[:, 3:7]))))
        yaw_rate = np.clip(1.5 * bearing, -self.max_yaw_rate_radps, self.max_yaw_rate_radps)
        speed = np.clip(0.8 * (distance - 0.8 * self.reach_m), 0.0, self.max_speed_mps)
        speed = np.where(np.abs(bearing) < self.facing_rad, speed, 0.0)
        in_reach = (distance <= reach) & (np.abs(bearing) < self.facing_rad)
        command = np.column_stack([speed, np.zeros_like(speed), yaw_rate]) * ~in_reach[:, None]
        return command, in_reach


COORDINATOR_OBS_SIZE = TASK_OBS_SIZE + COMMAND_SIZE + 3 + 1
COORDINATOR_ACTION_SIZE = COMMAND_SIZE + 3 + 1
# the coordinator's corrections at |action| = 1: command (vx, vy, yaw rate), target (m), reach radius (share)
COORDINATOR_BOUNDS = np.array([0.3, 0.2, 0.4, 0.1, 0.1, 0.1, 0.4])


def coordinator_observation(env: WholeBodyVecEnv, task_obs: np.ndarray, handoff: HandOff) -> np.ndarray:
    command, in_reach = handoff.command(env)
    return np.concatenate([task_obs, command, to_base(env, env.goal), in_reach[:, None]], 1).astype(np.float32)


class WholeBodyController:
    """Walker + arm skill, joined by the hand-off or by a coordinator (`coordinator(obs) -> (n, 7)` in [-1, 1]).

    `act(task_obs)` returns the whole body's actions for the env's current state. Without a walker (None) the
    body holds its default pose: for targets already in reach."""

    def __init__(
        self,
        env: WholeBodyVecEnv,
        walker: Walker | None,
        arm: ArmSkill,
        *,
        handoff: HandOff = HandOff(),
        coordinator: Callable[[np.ndarray], np.ndarray] | None = None,
        coordinate_every: int = 5,
    ):
        """coordinate_every: env steps a coordinator's decision holds (5: 10 Hz above the 50 Hz skills)."""
        self.env, self.walker, self.arm, self.handoff, self.coordinator = env, walker, arm, handoff, coordinator
        self.arm_index = arm_index(env)
        self.next_coordination: np.ndarray | None = None  # set by the coordinator's trainer: its sampled actions
        self.coordinate_every = coordinate_every
        self._decision = np.zeros((env.num_envs, COORDINATOR_ACTION_SIZE))
        self._age = np.full(env.num_envs, coordinate_every)

    def observation(self, task_obs: np.ndarray) -> np.ndarray:
        return coordinator_observation(self.env, task_obs, self.handoff)

    def act(self, task_obs: np.ndarray) -> np.ndarray:
        env = self.env
        target = env.goal.copy()
        if self.coordinator is None and self.next_coordination is None:
            command, engaged = self.handoff.command(env)
        else:
            raw = self.next_coordination
            self.next_coordination = None
            if raw is None:
                due = self._age >= self.coordinate_every
                if due.any():
                    self._decision[due] = self.coordinator(self.observation(task_obs))[due]
                    self._age[due] = 0
                self._age += 1
                raw = self._decision
            u = np.clip(raw, -1.0, 1.0) * COORDINATOR_BOUNDS
            command, engaged = self.handoff.command(env, self.handoff.reach_m * (1.0 + u[:, 6]))
            command = command + u[:, :3]
            base = env.walk.rig.base_pose()
            yaw = yaw_of(base[:, 3:7])
            cos, sin = np.cos(yaw), np.sin(yaw)
            target[:, 0] += cos * u[:, 3] - sin * u[:, 4]  # the correction is in the heading frame
            target[:, 1] += sin * u[:, 3] + cos * u[:, 4]
            target[:, 2] += u[:, 5]
        if self.walker is None:
            actions = np.zeros((env.num_envs, env.walk.robot.num_joints))
        else:
            actions = self.walker.act(command)
        arm = self.arm(target, engaged)
        actions[:, self.arm_index] = np.where(engaged[:, None], arm, actions[:, self.arm_index])
        return actions

    def reset(self, done: np.ndarray) -> None:
        self._age[np.asarray(done, bool)] = self.coordinate_every
        if self.walker is not None:
            self.walker.reset(done)
        if hasattr(self.arm, "reset"):
            self.arm.reset(done)


def run_episodes(
    env: WholeBodyVecEnv,
    act: Callable[[dict[str, np.ndarray]], np.ndarray],
    episodes: int,
    *,
    seed: int,
    reset: Callable[[np.ndarray], None] | None = None,
    on_episode: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Run `act(obs) -> actions` on an autoresetting env: each simulation's first `episodes / num_envs` episodes
    count (not the first to end, which would favour short ones: successes end early). Returns {success, falls,
    mean_seconds, episodes}. `reset(done)` is called for ended simulations (recurrent states, chunks)."""
    if not env.autoreset:
        raise ValueError("run_episodes needs an autoresetting env")
    if episodes % env.num_envs:
        raise ValueError(f"episodes = {episodes} must be a multiple of the env's {env.num_envs} simulations")
    per_env = episodes // env.num_envs
    obs, _ = env.reset(seed=seed)
    if reset is not None:
        reset(np.ones(env.num_envs, dtype=bool))
    counted = np.zeros(env.num_envs, dtype=np.int64)
    successes = falls = 0
    steps = np.zeros(env.num_envs, dtype=np.int64)
    lengths: list[int] = []
    while (counted < per_env).any():
        obs, _, terminated, truncated, info = env.step(act(obs))
        steps += 1
        done = terminated | truncated
        if done.any():
            ids = np.flatnonzero(done & (counted < per_env))
            successes += int(info["final_success"][ids].sum())
            falls += int(info["fell"][ids].sum())
            lengths += steps[ids].tolist()
            counted[ids] += 1
            steps[done] = 0
            if reset is not None:
                reset(done)
            if on_episode is not None and len(ids):
                on_episode(int(counted.sum()))
    return {
        "success": successes / episodes,
        "falls": falls / episodes,
        "mean_seconds": float(np.mean(lengths)) * env.walk.cfg.sim.ctrl_dt_s,
        "episodes": episodes,
    }

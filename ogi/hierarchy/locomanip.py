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
    walk = dataclasses.replace(walker.cfg.env, held_joints=(), held_motion=0.0, action_clip=clip)
    return WholeBodyConfig(robot=walker.cfg.env.robot, walk=walk, **task)


# ---- the walking policy ---------------------------------------------------------------------------------------
class Walker:
    """A frozen walking policy for a whole-body env; `act(command)` returns the whole body's actions.

    The joints it held in training (waist, arms) it reads as it saw them then: their positions, velocities and
    last actions at the mean its normalizer learned. It never saw them move (their last actions were always 0,
    their positions within 0.03 rad), so an arm raised by a manipulation policy would read as up to the
    normalizer's clip of 5 standard deviations on 30 inputs, and the walker falls within 2 s (arms held forward
    while standing: 16 of 16 simulations). A walker trained with those joints in motion (`held_motion`) reads
    them as they are."""

    def __init__(self, policy: LoadedPolicy | Path | str, env: WholeBodyVecEnv):
        self.policy = policy if isinstance(policy, LoadedPolicy) else load_policy(Path(policy))
        if self.policy.cfg.env.robot != env.cfg.robot:
            raise ValueError(f"the walker drives '{self.policy.cfg.env.robot}', the task's robot is '{env.cfg.robot}'")
        self.env = env
        robot = env.walk.robot
        self.held = held_joint_mask(robot.joint_names, self.policy.cfg.env.held_joints)
        self.state = self.policy.actor.initial_state(env.num_envs)
        slices = env.walk.policy_layout.slices()
        # a walker that trained with those joints moving (held_motion) reads them as they are
        held = np.flatnonzero(self.held) if self.policy.cfg.env.held_motion == 0 else np.zeros(0, dtype=np.int64)
        self.masked = np.concatenate([held + slices[g].start for g in ("joint_pos", "joint_vel", "last_action")])
        self.masked_value = self.policy.normalizer.mean.numpy()[self.masked].astype(np.float32)

    def reset(self, done: np.ndarray) -> None:
        self.state = self.policy.actor.reset_state(self.state, torch.as_tensor(np.asarray(done, bool)))

    @torch.no_grad()
    def act(self, command: np.ndarray) -> np.ndarray:
        obs = self.env.walk.set_commands(np.asarray(command, float))
        x = np.array(actor_observation(obs, self.policy.cfg.actor_obs), dtype=np.float32)
        x[:, self.masked] = self.masked_value
        x = torch.as_tensor(x)
        mean, self.state = self.policy.actor(self.policy.normalizer(x), self.state)
        clip = self.policy.cfg.env.action_clip
        actions = np.clip(mean.numpy().astype(np.float64), -clip, clip)
        actions[:, self.held] = 0.0
        return actions


# ---- arm skills -------------------------------------------------------------------------------------------------
ArmSkill = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (target_world (n, 3), engaged (n,)) -> (n, 8)


class IKArm:
    """The scripted arm: the nearer hand's joints at the IK solution for the target, the other arm at rest; or,
    with `both_hands_apart_m`, both hands on the target, that far apart across the robot's heading (pushing)."""

    def __init__(self, env: WholeBodyVecEnv, *, both_hands_apart_m: float | None = None):
        self.env = env
        self.index = arm_index(env)
        self.default = np.asarray(env.walk.robot.default_pose)[self.index]
        self.scale = env.walk.robot.action_scale
        self._qpos = env.walk.batch.bind("qpos")
        self.names = arm_joint_names()
        self.apart = both_hands_apart_m

    def __call__(self, target_world: np.ndarray, engaged: np.ndarray) -> np.ndarray:
        env = self.env
        actions = np.zeros((env.num_envs, ARM_ACTION_SIZE))
        if not engaged.any():
            return actions
        k = len(ARM_JOINTS)
        if self.apart is None:
            nearer = np.linalg.norm(env.grasp_points() - target_world[:, None], axis=2).argmin(axis=1)
        else:
            yaw = yaw_of(env.walk.rig.base_pose()[:, 3:7])
            left = 0.5 * self.apart * np.column_stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)])
        for i in np.flatnonzero(engaged):
            if self.apart is None:
                hands = [(int(nearer[i]), target_world[i])]
            else:
                hands = [(0, target_world[i] + left[i]), (1, target_world[i] - left[i])]
            for side, target in hands:
                joints = self.names[side * k : (side + 1) * k]
                result = solve_site_ik(env.walk.model, self._qpos[i], f"{SIDES[side]}_grasp", target, joints)
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
def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles in (-pi, pi]."""
    return np.angle(np.exp(1j * np.asarray(angle)))


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
        bearing = _wrap(np.arctan2(offset[:, 1], offset[:, 0]) - yaw_of(base[:, 3:7]))
        yaw_rate = np.clip(1.5 * bearing, -self.max_yaw_rate_radps, self.max_yaw_rate_radps)
        speed = np.clip(0.8 * (distance - 0.8 * self.reach_m), 0.0, self.max_speed_mps)
        speed = np.where(np.abs(bearing) < self.facing_rad, speed, 0.0)
        in_reach = (distance <= reach) & (np.abs(bearing) < self.facing_rad)
        command = np.column_stack([speed, np.zeros_like(speed), yaw_rate]) * ~in_reach[:, None]
        return command, in_reach

    def intents(
        self, env: WholeBodyVecEnv, scale: np.ndarray | float = 1.0, *, update: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """((n, 3) walking command, (n,) whether the arm is engaged, (n, 3) the arm's target in the world): what a
        controller asks of the two skills; `scale` multiplies the reach radius (how early the arm engages).
        `update` False: a look that leaves a stateful joint's state as it was."""
        command, engaged = self.command(env, self.reach_m * np.asarray(scale))
        return command, engaged, env.goal.copy()

    def reset(self, done: np.ndarray) -> None:
        """Stateless: nothing to forget."""


def footprint_radius(half_xy: np.ndarray, box_yaw: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(n,) distance from a box's centre to the edge of its footprint along the world angle `direction`."""
    a = np.asarray(direction) - box_yaw
    c, s = np.abs(np.cos(a)), np.abs(np.sin(a))
    return np.minimum(half_xy[:, 0] / np.maximum(c, 1e-9), half_xy[:, 1] / np.maximum(s, 1e-9))


@dataclass(kw_only=True)
class PushHandOff:
    """The scripted joint for `push`: walk round to the crate's far side from the goal (the stance), face the
    goal, put both hands on the crate and walk it to the goal, side-stepping back onto the line through the
    crate's centre and turning toward the goal as it drifts; back to the stance when the crate slips away.

    Its state is the mode of each simulation (approaching or pushing); `reset(done)` forgets ended episodes."""

    standoff_m: float = 0.38  # the base's centre to the crate's near face while pushing
    hand_height_m: float = 0.78  # where the hands press (at most 5 cm below the crate's top)
    hands_ahead_m: float = 0.34  # the hands held this far ahead of the base's centre (inside the face: they press)
    push_speed_mps: float = 0.25
    max_speed_mps: float = 0.5
    max_yaw_rate_radps: float = 0.8
    turn_speed_mps: float = 0.0  # walking speed while turning toward a far waypoint (0: turn in place)
    holonomic: bool = False  # toward a far waypoint by side and back steps, facing the goal (False: turn, walk)
    line_gain: float = 2.0  # side-step speed per metre off the line through the crate's centre
    max_side_mps: float = 0.3
    lost_lateral_m: float = 0.4  # off the line by more than this: back to the stance
    engage_m: float = 0.2  # at the stance within this, and facing the goal within `engage_rad`: push
    engage_rad: float = 0.4
    clearance_m: float = 0.5  # passing the crate on the way to the stance, this far from its corners
    pushing: np.ndarray | None = None

    def reset(self, done: np.ndarray) -> None:
        if self.pushing is not None:
            self.pushing[np.asarray(done, bool)] = False

    def intents(
        self, env: WholeBodyVecEnv, scale: np.ndarray | float = 1.0, *, update: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As `HandOff.intents`; `scale` multiplies how near the stance the push starts."""
        n = env.num_envs
        if self.pushing is None or len(self.pushing) != n:
            self.pushing = np.zeros(n, dtype=bool)
        base = env.walk.rig.base_pose()
        xy, heading = base[:, :2], yaw_of(base[:, 3:7])
        box, quat = env.box_pose()
        to_goal = env.goal[:, :2] - box[:, :2]
        remaining = np.linalg.norm(to_goal, axis=1)
        d = to_goal / np.maximum(remaining, 1e-9)[:, None]
        d_yaw = np.arctan2(d[:, 1], d[:, 0])
        side = np.column_stack([-d[:, 1], d[:, 0]])  # left of the push line
        radius = footprint_radius(env.box_half[:, :2], yaw_of(quat), d_yaw + np.pi)
        stance = box[:, :2] - d * (radius + self.standoff_m)[:, None]
        rel = xy - box[:, :2]
        along, lateral = (rel * d).sum(1), (rel * side).sum(1)
        facing_error = _wrap(d_yaw - heading)
        at_stance = np.linalg.norm(xy - stance, axis=1)
        engage = self.engage_m * np.asarray(scale)
        start = (at_stance < engage) & (np.abs(facing_error) < self.engage_rad)
        corner = np.linalg.norm(env.box_half[:, :2], axis=1)
        lost = (
            (np.abs(lateral) > self.lost_lateral_m)
            | (np.abs(facing_error) > 0.7)
            | (along < -(radius + self.standoff_m + 0.3))
            | (along > -radius)
        )
        pushing = (self.pushing | start) & ~lost
        if update:
            self.pushing = pushing

        # approaching: to the stance, round the crate when not yet behind it: beside it first (from the goal's
        # side), then beside and behind it, then the stance
        behind = along <= -(radius + 0.25)
        beside = box[:, :2] + side * (np.where(lateral >= 0, 1.0, -1.0) * (corner + self.clearance_m))[:, None]
        waypoint = np.where(
            behind[:, None],
            stance,
            np.where((along > 0.0)[:, None], beside - 0.1 * d, beside - d * (corner + 0.3)[:, None]),
        )
        offset = waypoint - xy
        distance = np.linalg.norm(offset, axis=1)
        bearing = _wrap(np.arctan2(offset[:, 1], offset[:, 0]) - heading)
        cos, sin = np.cos(heading), np.sin(heading)
        ox, oy = cos * offset[:, 0] + sin * offset[:, 1], -sin * offset[:, 0] + cos * offset[:, 1]
        # turning on the move: a walker may turn poorly in place (the humanoid's: 0.07 rad/s asked 0.8)
        walk = np.where(np.abs(bearing) < 0.5, np.clip(0.8 * distance, 0.0, self.max_speed_mps), self.turn_speed_mps)
        near = np.column_stack(
            [np.clip(2.0 * ox, -0.3, 0.3), np.clip(2.0 * oy, -0.3, 0.3), np.where(behind, 1.5 * facing_error, 0.0)]
        )
        far = np.column_stack([walk, np.zeros(n), 1.5 * bearing])
        if self.holonomic:  # sideways and backward steps toward the waypoint, turning to face the goal meanwhile
            shrink = np.minimum(1.0, self.max_speed_mps / np.maximum(np.hypot(ox, oy), 1e-9))
            far = np.column_stack([ox * shrink, np.clip(oy * shrink, -0.3, 0.3), 1.5 * facing_error])
        approach = np.where((distance > 0.3)[:, None], far, near)
        # pushing: ahead along the line, back onto it sideways, turned toward the goal
        slow = np.clip(remaining / 0.5, 0.3, 1.0)
        cross_line = np.clip(-self.line_gain * lateral, -self.max_side_mps, self.max_side_mps)
        push = np.column_stack([self.push_speed_mps * slow, cross_line * np.cos(facing_error), 1.5 * facing_error])
        command = np.where(pushing[:, None], push, approach)
        command[:, 2] = np.clip(command[:, 2], -self.max_yaw_rate_radps, self.max_yaw_rate_radps)

        # the hands: held out ahead of the chest from near the stance on, so that walking brings them onto the
        # crate (reaching for its face from afar swung the arms into it and shoved it away)
        engaged = pushing | ((at_stance < 0.5) & (np.abs(facing_error) < 0.5) & behind)
        top = box[:, 2] + env.box_half[:, 2]
        ahead = xy + self.hands_ahead_m * np.column_stack([cos, sin])
        target = np.column_stack([ahead, np.minimum(self.hand_height_m, top - 0.05)])
        return command, engaged, target


COORDINATOR_OBS_SIZE = TASK_OBS_SIZE + COMMAND_SIZE + 3 + 1
COORDINATOR_ACTION_SIZE = COMMAND_SIZE + 3 + 1
# the coordinator's corrections at |action| = 1: command (vx, vy, yaw rate), target (m), reach radius (share)
COORDINATOR_BOUNDS = np.array([0.3, 0.2, 0.4, 0.1, 0.1, 0.1, 0.4])


Joint = HandOff | PushHandOff  # the scripted joint of the two skills: intents(env, scale), reset(done)


def coordinator_observation(env: WholeBodyVecEnv, task_obs: np.ndarray, handoff: Joint) -> np.ndarray:
    command, engaged, target = handoff.intents(env, update=False)
    return np.concatenate([task_obs, command, to_base(env, target), engaged[:, None]], 1).astype(np.float32)


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
        handoff: Joint | None = None,
        coordinator: Callable[[np.ndarray], np.ndarray] | None = None,
        coordinate_every: int = 5,
    ):
        """coordinate_every: env steps a coordinator's decision holds (5: 10 Hz above the 50 Hz skills)."""
        handoff = (PushHandOff() if env.cfg.task == "push" else HandOff()) if handoff is None else handoff
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
        if self.coordinator is None and self.next_coordination is None:
            command, engaged, target = self.handoff.intents(env)
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
            command, engaged, target = self.handoff.intents(env, 1.0 + u[:, 6])
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
        self.handoff.reset(done)
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

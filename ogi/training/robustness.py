"""Robustness of a walker under perturbation schedules: falls, and distance walked along the command.

A schedule pushes every simulation of a batch on its own clock: a horizontal push of a given base velocity change,
spread over `duration_s`, in a direction relative to the robot's heading, landing `point_offset_m` ahead of the
base's centre, first after `first_s` and then every `interval_s`; optionally in bursts of `burst` pushes
`burst_gap_s` apart, and optionally on rough ground. The held-out schedules (`HELD_OUT`) differ from what
training used (random pushes of at most 0.5 m/s over one 20 ms step, 5-10 s apart, or of at most 0.8 m/s at
the adversary's budget; an adversary's of at most 0.8 m/s, at least 2 s apart, within 0.15 m of the centre) in
size, duration, timing, point of application and ground.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ogi.envs import WalkVecEnv
from ogi.envs.config import TerrainConfig, WalkConfig
from ogi.envs.curriculum import held_curriculum
from ogi.envs.observations import quat_rotate_inverse
from ogi.policies import Actor, EmpiricalNormalizer
from ogi.training.adversary import without_random_pushes, yaw_of
from ogi.training.config import actor_observation
from ogi.validation import ConfigError, check_range


@dataclass(frozen=True, kw_only=True)
class PerturbationSchedule:
    name: str
    velocity_mps: tuple[float, float] = (0.0, 0.0)  # base velocity change of one push, drawn per push
    duration_s: float = 0.02  # the push's force spread over this long
    heading_deg: tuple[float, float] = (-180.0, 180.0)  # push direction relative to the robot's heading
    point_offset_m: float = 0.0  # where along the body's x axis the push lands
    first_s: float = 1.0
    interval_s: tuple[float, float] = (3.0, 4.0)
    burst: int = 1  # pushes per burst
    burst_gap_s: float = 0.3
    rough_level: int | None = None  # rough ground at this curriculum level (0-9); None: flat

    def __post_init__(self) -> None:
        check_range(f"{self.name}.velocity_mps[0]", self.velocity_mps[0], 0.0, 10.0)
        check_range(f"{self.name}.velocity_mps[1]", self.velocity_mps[1], self.velocity_mps[0], 10.0)
        check_range(f"{self.name}.duration_s", self.duration_s, 0.001, 5.0)
        check_range(f"{self.name}.interval_s[0]", self.interval_s[0], 0.02, 1e4)
        check_range(f"{self.name}.interval_s[1]", self.interval_s[1], self.interval_s[0], 1e4)
        check_range(f"{self.name}.burst", self.burst, 1, 100)
        if self.rough_level is not None:
            check_range(f"{self.name}.rough_level", self.rough_level, 0, 9)
        if self.burst > 1 and self.burst_gap_s < self.duration_s:
            raise ConfigError(f"{self.name}: burst_gap_s = {self.burst_gap_s} must not be shorter than duration_s")


HELD_OUT = (
    # larger than any training push, from any side
    PerturbationSchedule(name="strong", velocity_mps=(1.2, 1.5)),
    # a shove from the side that lasts a fifth of a second
    PerturbationSchedule(name="long_lateral", velocity_mps=(1.4, 1.6), duration_s=0.2, heading_deg=(60.0, 120.0)),
    # a sideways push at the nose, further out than training's: it twists the body
    PerturbationSchedule(name="twist", velocity_mps=(0.9, 1.0), heading_deg=(80.0, 100.0), point_offset_m=0.3),
    # two pushes in quick succession, closer together than training ever pushed
    PerturbationSchedule(name="double", velocity_mps=(1.0, 1.1), burst=2, burst_gap_s=0.3, interval_s=(3.0, 4.0)),
    # rough ground while pushed as in training
    PerturbationSchedule(name="bumps", velocity_mps=(0.3, 0.5), interval_s=(4.0, 6.0), rough_level=1),
)


@dataclass(frozen=True)
class RobustnessResult:
    schedule: str
    episodes: int
    fall_rate: float
    distance_m: float  # mean distance walked along the commanded direction per episode (until a fall)
    pushes_per_episode: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def schedule_env(env_cfg: WalkConfig, schedule: PerturbationSchedule, num_envs: int, episode_s: float, seed: int):
    """The env config a schedule runs on: the training env without its random pushes, commands fixed per episode
    and never standing, rough ground at a fixed level when the schedule asks for it."""
    cfg = without_random_pushes(env_cfg)
    cfg = dataclasses.replace(
        cfg,
        num_envs=num_envs,
        episode_length_s=episode_s,
        seed=seed,
        commands=dataclasses.replace(cfg.commands, resample_s=episode_s + 1.0, standing_probability=0.0),
    )
    if schedule.rough_level is not None:
        curriculum = dataclasses.replace(cfg.terrain.curriculum, enabled=False)
        cfg = dataclasses.replace(
            cfg, terrain=TerrainConfig(enabled=True, kinds=("rough",), seed=seed, curriculum=curriculum)
        )
    return cfg


def schedule_start(cfg: WalkConfig, schedule: PerturbationSchedule, seed: int) -> tuple[WalkVecEnv, dict]:
    """The env of `schedule_env`, reset, every simulation on the schedule's terrain level; and its observation."""
    env = WalkVecEnv(cfg)
    obs, _ = env.reset(seed=seed)
    if schedule.rough_level is not None:
        env.curriculum = held_curriculum(
            schedule.rough_level, np.zeros(cfg.num_envs, dtype=np.int64), cfg.terrain.curriculum
        )
        obs, _ = env.reset()  # a seeded reset would draw the curriculum afresh
    return env, obs


@torch.no_grad()
def evaluate_robustness(
    actor: Actor,
    normalizer: EmpiricalNormalizer,
    env_cfg: WalkConfig,
    schedule: PerturbationSchedule,
    *,
    num_envs: int = 64,
    episode_s: float = 15.0,
    seed: int = 2024,
    actor_obs: str = "policy",
) -> RobustnessResult:
    """One episode per simulation under `schedule`, the policy deterministic; an episode that falls ends there.
    The same seed gives every policy the same robots, commands and pushes."""
    cfg = schedule_env(env_cfg, schedule, num_envs, episode_s, seed)
    env, obs = schedule_start(cfg, schedule, seed)
    rng = np.random.default_rng(seed + 1)
    dt = cfg.sim.ctrl_dt_s
    steps = cfg.max_episode_steps
    n = num_envs
    duration = max(1, round(schedule.duration_s / dt))
    gap = max(duration, round(schedule.burst_gap_s / dt))
    # each simulation's pushes, drawn ahead so that every policy meets the same ones: per step, the velocity
    # change that step delivers (0: none) and its direction relative to the heading
    dv_at = np.zeros((n, steps))
    heading_at = np.zeros((n, steps))
    for i in range(n):
        t = round(schedule.first_s / dt)
        while t < steps:
            for k in range(schedule.burst):
                start = t + k * gap
                dv_at[i, start : start + duration] = rng.uniform(*schedule.velocity_mps) / duration
                heading_at[i, start : start + duration] = np.deg2rad(rng.uniform(*schedule.heading_deg))
            t += round(rng.uniform(*schedule.interval_s) / dt)
    starts_at = np.diff(np.concatenate([np.zeros((n, 1)), dv_at > 0], axis=1), axis=1) > 0

    command = env.command.copy()
    direction = command[:, :2] / np.maximum(np.linalg.norm(command[:, :2], axis=1, keepdims=True), 1e-9)
    moving = np.linalg.norm(command[:, :2], axis=1) > 1e-6
    state = actor.initial_state(n)
    alive = np.ones(n, dtype=bool)
    fell = np.zeros(n, dtype=bool)
    distance = np.zeros(n)
    pushes = np.zeros(n)
    mass = env.rig.robot_mass()
    for step in range(steps):
        pushing = alive & (dv_at[:, step] > 0)
        if pushing.any():
            yaw = yaw_of(env.rig.base_pose()[:, 3:7])
            angle = yaw + heading_at[:, step]
            magnitude = np.where(pushing, mass * dv_at[:, step] / dt, 0.0)
            force = np.column_stack([magnitude * np.cos(angle), magnitude * np.sin(angle), np.zeros(n)])
            point = schedule.point_offset_m * np.column_stack([np.cos(yaw), np.sin(yaw), np.zeros(n)])
            env.push_next(force, np.cross(point, force))
        pushes += alive & starts_at[:, step]
        mean, state = actor(normalizer(torch.as_tensor(actor_observation(obs, actor_obs))), state)
        obs, _, terminated, truncated, info = env.step(np.where(alive[:, None], mean.numpy(), 0.0))
        quat = env.rig.base_pose()[:, 3:7]
        v_body = quat_rotate_inverse(quat, env.rig.base_lin_vel_world())[:, :2]
        distance += np.where(alive & moving, (v_body * direction).sum(axis=1) * dt, 0.0)
        fell |= info["fell"] & alive
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    return RobustnessResult(
        schedule=schedule.name,
        episodes=n,
        fall_rate=float(fell.mean()),
        distance_m=float(distance.mean()),
        pushes_per_episode=float(pushes.mean()),
    )

"""What a training run is: env, actor, critic, PPO and run settings; presets per (robot, task)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ogi.envs.config import (
    DEFAULT_REWARD_WEIGHTS,
    CommandConfig,
    GaitConfig,
    RewardConfig,
    SimConfig,
    WalkConfig,
)
from ogi.policies import ActorConfig, CriticConfig
from ogi.training.lagrangian import SafetyConfig
from ogi.training.ppo import PPOConfig
from ogi.validation import ConfigError, check_range, config_from_dict, read_toml, unknown_field

TASKS = ("walk",)


def _adversary_ppo() -> PPOConfig:
    # a small MLP learner over short rollouts: a fixed, lower learning rate (its reward is the walker's loss,
    # noisier than the walker's own) and more exploration of where and when to push
    return PPOConfig(learning_rate=3e-4, adaptive_lr=False, entropy_coef=0.003, epochs=4, minibatches=4)


@dataclass(frozen=True, kw_only=True)
class AdversaryConfig:
    """Adversarial self-play (`ogi train --adversary`): a push adversary, its own small policy trained with PPO,
    alternating with the walker and also trained against a league of frozen earlier walkers.

    Budget: each push changes the base velocity by at most `max_push_velocity_mps` over one policy step, lands
    within `point_offset_m` (body x, y) of the base's centre, comes at least `min_interval_s` after the episode's
    start and the previous push, and an episode holds at most `pushes_per_episode`. Schedule: `walker_iterations`
    walker updates (the adversary pushing, frozen), then `adversary_iterations` adversary rollouts and updates (the
    walker frozen: the current one, or with `league_probability` a snapshot taken every `snapshot_every` walker
    iterations, the newest `league_size` kept). With `warmup_rounds`, the adversary first trains alone against the
    starting walker (a fine-tuning run's), so that the walker meets a competent adversary from its first
    iteration. The adversary is rewarded `fall_reward` per fall and
    `walker_reward_coef` times minus the walker's reward per step.
    """

    enabled: bool = False
    max_push_velocity_mps: float = 0.8
    point_offset_m: tuple[float, float] = (0.15, 0.05)
    min_interval_s: float = 2.0
    pushes_per_episode: int = 4
    walker_iterations: int = 4
    adversary_iterations: int = 1
    league_size: int = 4
    snapshot_every: int = 20
    warmup_rounds: int = 0  # adversary rounds against the starting walker before the walker's first rollout
    league_probability: float = 0.5
    fall_reward: float = 1.0
    walker_reward_coef: float = 1.0
    random_pushes: bool = False  # keep the randomization's random pushes too
    hidden_sizes: tuple[int, ...] = (128, 64)
    ppo: PPOConfig = field(default_factory=_adversary_ppo)

    def __post_init__(self) -> None:
        check_range("adversary.max_push_velocity_mps", self.max_push_velocity_mps, 0.0, 10.0)
        if len(self.point_offset_m) != 2:
            raise ConfigError(f"adversary.point_offset_m = {self.point_offset_m!r} must be two lengths (x, y), m")
        for index, offset in enumerate(self.point_offset_m):
            check_range(f"adversary.point_offset_m[{index}]", offset, 0.0, 1.0)
        check_range("adversary.min_interval_s", self.min_interval_s, 0.02, 1e4)
        for name in (
            "pushes_per_episode",
            "walker_iterations",
            "adversary_iterations",
            "league_size",
            "snapshot_every",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"adversary.{name} = {value!r} must be a whole number")
        check_range("adversary.pushes_per_episode", self.pushes_per_episode, 1, 10_000)
        check_range("adversary.walker_iterations", self.walker_iterations, 1, 10_000)
        check_range("adversary.adversary_iterations", self.adversary_iterations, 1, 10_000)
        check_range("adversary.league_size", self.league_size, 0, 1000)
        check_range("adversary.snapshot_every", self.snapshot_every, 1, 10**9)
        check_range("adversary.warmup_rounds", self.warmup_rounds, 0, 10**6)
        check_range("adversary.league_probability", self.league_probability, 0.0, 1.0)
        check_range("adversary.fall_reward", self.fall_reward, 0.0, 1e4)
        check_range("adversary.walker_reward_coef", self.walker_reward_coef, 0.0, 1e4)
        if not self.hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden_sizes
        ):
            raise ConfigError(f"adversary.hidden_sizes = {self.hidden_sizes!r} must be positive layer widths")


# what the actor sees: "policy" (what the robot measures: a deployable policy) or "privileged" (the policy group
# followed by the simulator's privileged group: a teacher for distillation)
ACTOR_OBS = ("policy", "privileged")

# Training weights for `walk`: the env's table (`DEFAULT_REWARD_WEIGHTS`, every term) with these overrides.
# Tracking first, jitter costs as in legged_gym, a reward per foot for swings longer than the target, and a
# trot term (diagonal pairs in phase, pairs alternating) so that the gait is a trot rather than a shuffle.
# Holding the default pose is rewarded only lightly: with the env's defaults (pose 0.5, feet clearance -2)
# the policy settled into standing still.
WALK_WEIGHT_OVERRIDES = {
    "tracking_lin_vel": 1.5,
    "tracking_ang_vel": 0.75,
    "lin_vel_z": -2.0,
    "orientation": -1.0,
    "base_height": 0.0,
    "torques": -1e-4,
    "energy": 0.0,
    "feet_air_time": 1.0,
    "feet_clearance": 0.0,
    "feet_height": 0.0,
    "foot_slip": -0.05,
    "trot": 0.5,
    "pose": 0.1,
    "stand_still": -0.5,
}
WALK_WEIGHTS = {**DEFAULT_REWARD_WEIGHTS, **WALK_WEIGHT_OVERRIDES}

# Two-legged robots: the quadruped's table with the costs rescaled to a 32 kg body on 100-300 N*m/rad joints
# (squared torques are ~20x a go2's), an upright torso, and a gait clock (`GaitConfig`, as Unitree trains its
# G1) in place of the trot term: each foot is rewarded for following the clock's stance, swing and swing height.
BIPED_WEIGHT_OVERRIDES = {
    **WALK_WEIGHT_OVERRIDES,
    "orientation": -2.0,
    "torques": -1e-5,
    "joint_acc": -1e-7,
    "foot_slip": -0.1,
    "trot": 0.0,
    "gait_contact": 0.5,
    "gait_swing": 1.0,
    "feet_air_time": 0.5,
}
BIPED_WEIGHTS = {**DEFAULT_REWARD_WEIGHTS, **BIPED_WEIGHT_OVERRIDES}
# a stepping pattern under the policy: at the top of a swing the hip flexes 0.3 rad, the knee 0.6 rad and the
# ankle turns the foot back level (the policy learns to balance and steer on it rather than to discover stepping)
BIPED_SWING_OFFSETS_RAD = {"hip_pitch": -0.3, "knee": 0.6, "ankle_pitch": -0.3}
HUMANOID_HELD_JOINTS = ("waist", "shoulder", "elbow", "gripper")
# what a 1.3 m, 32 kg biped is asked: brisk walking, a side-step, turning, as G1 joystick tasks do
BIPED_COMMANDS = CommandConfig(lin_vel_x_mps=(-0.5, 0.8), lin_vel_y_mps=(-0.3, 0.3), yaw_rate_radps=(-0.8, 0.8))


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    env: WalkConfig = field(default_factory=WalkConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)  # the fall constraint (PPO-Lagrangian), off by default
    adversary: AdversaryConfig = field(default_factory=AdversaryConfig)  # adversarial self-play, off by default
    iterations: int = 1500
    max_minutes: float = 0.0  # wall-clock limit, 0: none
    checkpoint_every: int = 50  # iterations
    keep_last: int = 5  # newest checkpoints kept (and the best by eval score) after each save; 0: keep all
    seed: int = 0
    collect_threads: int = 1  # torch threads while the simulation steps (it takes the cores)
    update_threads: int = 2
    actor_obs: str = "policy"

    def __post_init__(self) -> None:
        if self.actor_obs not in ACTOR_OBS:
            raise ConfigError(f"actor_obs must be one of {', '.join(ACTOR_OBS)}, got {self.actor_obs!r}")
        check_range("iterations", self.iterations, 1, 10**9)
        check_range("max_minutes", self.max_minutes, 0.0, 1e6)
        check_range("checkpoint_every", self.checkpoint_every, 1, 10**9)
        if isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int) or self.keep_last < 0:
            raise ConfigError(
                f"keep_last = {self.keep_last!r} must be a whole number of checkpoints >= 0 (0: keep all)"
            )
        check_range("collect_threads", self.collect_threads, 1, 1024)
        check_range("update_threads", self.update_threads, 1, 1024)


def preset(robot: str = "go2", task: str = "walk") -> TrainConfig:
    """The default run for a robot and task: works out of the box on a 2-core machine.

    Training physics at 250 Hz (MuJoCo Playground's Go1 joystick rate); the trained policy is judged and
    deployed at 1 kHz. The solver keeps MuJoCo's limits: on the CPU, Newton stops at its tolerance after a few
    iterations anyway, and a single iteration (MuJoCo Menagerie's go2_mjx.xml, made for fixed-cost GPU steps)
    let robots holding still tip over. Omnidirectional commands (the env's ranges: vx in [-1, 1],
    vy in [-0.5, 0.5], yaw rate in [-1, 1], some standing). 256 simulations and a 64-unit GRU: the recurrent
    update costs per time step and per minibatch, not per sample, so wider minibatches and a narrower GRU keep
    the learner's share small. Small MLPs after the GRU (actor head 128-64, critic 128-128): the update's time went
    to the MLP layers (backward 0.5 s of 0.9 s an iteration), not to the recurrence; at these widths an iteration
    costs 0.56 s and the policy learns at least as fast per sample. A left-right symmetry loss (weight 1): without
    it the two diagonal pairs settled into unequal stance times (0.6 against 0.36 of the cycle); with it the gait
    is symmetric and is learned in fewer samples.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'; known tasks: {', '.join(TASKS)}")
    if is_biped(robot):
        env = WalkConfig(
            # a humanoid walks with its waist and arms held (its manipulation policy will own the arms): their
            # exploration noise spun the body about its vertical axis and no family walked after 12 minutes
            held_joints=HUMANOID_HELD_JOINTS if robot == "humanoid" else (),
            robot=robot,
            num_envs=256,
            sim=SimConfig(sim_dt_s=0.004),
            commands=BIPED_COMMANDS,
            gait=GaitConfig(enabled=True, swing_joint_offsets_rad=BIPED_SWING_OFFSETS_RAD),
            rewards=RewardConfig(weights=BIPED_WEIGHTS, feet_air_time_target_s=0.3, feet_air_time_max_s=0.4),
        )
    else:
        env = WalkConfig(
            robot=robot,
            num_envs=256,
            sim=SimConfig(sim_dt_s=0.004),
            rewards=RewardConfig(weights=WALK_WEIGHTS, feet_air_time_target_s=0.25, feet_air_time_max_s=0.3),
        )
    # initial std 0.5: at 1.0 the jitter's costs outweigh every reward and 93% of steps clip to zero
    return TrainConfig(
        env=env,
        actor=ActorConfig(kind="gru", init_std=0.5, recurrent_size=64, hidden_sizes=(128, 64)),
        critic=CriticConfig(hidden_sizes=(128, 128)),
        ppo=PPOConfig(epochs=5, minibatches=4, symmetry_coef=1.0),
        update_threads=1,
    )


def is_biped(robot: str) -> bool:
    """Whether the robot stands on two feet (the biped, the humanoid, a two-footed user robot)."""
    from ogi.robots.registry import get_robot

    try:
        spec = get_robot(robot)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None
    return len(spec.foot_sites) == 2


def load_train_config(path: Path, base: TrainConfig) -> TrainConfig:
    """Override `base` with the tables of a TOML file (`[env.sim]`, `[ppo]`, `[actor]`, ...)."""
    data = read_toml(path)
    try:
        return merge(base, data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def merge(base: Any, data: Mapping[str, Any], prefix: str = "") -> Any:
    """`base` with the fields `data` names replaced; nested tables merge into nested configs."""
    if not dataclasses.is_dataclass(base):
        raise ConfigError(f"{prefix or 'config'} is not a table")
    names = [f.name for f in dataclasses.fields(base)]
    changes: dict[str, Any] = {}
    leaves: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise unknown_field(key, names, prefix)
        current = getattr(base, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = merge(current, value, f"{prefix}{key}.")
        elif isinstance(current, Mapping) and isinstance(value, Mapping):
            leaves[key] = {**current, **value}  # e.g. reward weights: override some, keep the rest
        else:
            leaves[key] = value
    if leaves:
        typed = config_from_dict(type(base), leaves, prefix)  # type-checks the leaves with their own defaults
        changes.update({key: getattr(typed, key) for key in leaves})
    return dataclasses.replace(base, **changes)


def config_to_dict(cfg: Any) -> Any:
    """Plain JSON-able data of a (nested) config: mappings to dicts, tuples to lists."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {str(k): config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (tuple, list)):
        return [config_to_dict(v) for v in cfg]
    return cfg


def config_from_plain(data: Mapping[str, Any]) -> TrainConfig:
    """Rebuild a `TrainConfig` from `config_to_dict` output (a checkpoint's manifest)."""
    return merge(TrainConfig(), data)


def actor_observation(obs: Mapping[str, Any], actor_obs: str = "policy") -> Any:
    """The actor's input from an env observation dict: the policy group, or policy + privileged for a teacher."""
    import numpy as np

    if actor_obs == "policy":
        return obs["policy"]
    return np.concatenate([obs["policy"], obs["privileged"]], axis=-1)


def actor_observation_size(policy_size: int, privileged_size: int, actor_obs: str = "policy") -> int:
    return policy_size if actor_obs == "policy" else policy_size + privileged_size

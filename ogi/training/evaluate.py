"""Judge a policy on fresh episodes with its deterministic (mean) actions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.observations import quat_rotate_inverse
from ogi.policies import Actor, EmpiricalNormalizer
from ogi.training.config import actor_observation


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    episodes: int
    tracking_error_mps: float  # mean |cmd_xy - v_xy| after the settling time
    tracking_error_fastest_fifth_mps: float  # the same over the fastest fifth of commands
    fall_rate: float  # falls per episode
    mean_return: float
    mean_episode_length_s: float
    duty_factors: tuple[float, ...]  # per foot: fraction of time in contact
    terrain_level: float  # mean curriculum level (0 on flat ground)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def scores(self) -> dict[str, float]:
        """Scalars for a checkpoint's eval score vector."""
        return {
            "tracking_error_mps": self.tracking_error_mps,
            "tracking_error_fastest_fifth_mps": self.tracking_error_fastest_fifth_mps,
            "fall_rate": self.fall_rate,
            "mean_return": self.mean_return,
            "terrain_level": self.terrain_level,
            "min_duty_factor": min(self.duty_factors),
            "max_duty_factor": max(self.duty_factors),
        }


@torch.no_grad()
def evaluate(
    actor: Actor,
    normalizer: EmpiricalNormalizer,
    env_cfg: WalkConfig,
    *,
    num_envs: int = 32,
    episode_s: float = 20.0,
    settle_s: float = 2.0,
    seed: int = 12345,
    actor_obs: str = "policy",
    record: Path | None = None,
) -> EvalResult:
    """Run one episode per env (commands fixed per episode, no resampling) and summarize it.

    An env that falls ends its episode there; its tracking error counts until the fall.
    """
    cfg = dataclasses.replace(
        env_cfg,
        num_envs=num_envs,
        episode_length_s=episode_s,
        seed=seed,
        commands=dataclasses.replace(env_cfg.commands, resample_s=episode_s + 1.0, standing_probability=0.0),
    )
    # envs that end early restart by themselves; only each env's first episode is counted
    env = WalkVecEnv(cfg)
    obs, _ = env.reset(seed=seed)
    recorder = None
    if record is not None:  # an MCAP recording of the episodes, for ogi replay / ogi plot
        from ogi.replay import Recorder

        recorder = Recorder(env, record, meta={"source": "eval"})
    state = actor.initial_state(num_envs)
    steps = cfg.max_episode_steps
    settle = round(settle_s / cfg.sim.ctrl_dt_s)
    alive = np.ones(num_envs, dtype=bool)
    fell = np.zeros(num_envs, dtype=bool)
    ret = np.zeros(num_envs)
    length = np.zeros(num_envs)
    err_sum = np.zeros(num_envs)
    err_count = np.zeros(num_envs)
    contact = np.zeros((num_envs, len(env.robot.foot_sites)))
    command = env.command.copy()
    for step in range(steps):
        mean, state = actor(normalizer(torch.as_tensor(actor_observation(obs, actor_obs))), state)
        action = np.where(alive[:, None], mean.numpy(), 0.0)
        obs, reward, terminated, truncated, info = env.step(action)
        v_xy = env.rig.base_lin_vel_world()
        quat = env.rig.base_pose()[:, 3:7]
        v_body = quat_rotate_inverse(quat, v_xy)[:, :2]
        err = np.linalg.norm(command[:, :2] - v_body, axis=1)
        counted = alive & (step >= settle)
        err_sum += err * counted
        err_count += counted
        contact += (env.rig.foot_force() > 1.0) * alive[:, None]
        ret += reward * alive
        length += alive
        fell |= info["fell"] & alive
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    if recorder is not None:
        recorder.close()
    per_env_err = err_sum / np.maximum(err_count, 1)
    speed = np.linalg.norm(command[:, :2], axis=1)
    fastest = speed >= np.quantile(speed, 0.8)
    level = float(env.curriculum.level.mean()) if env.curriculum is not None else 0.0
    duty = contact.sum(axis=0) / max(length.sum(), 1.0)
    return EvalResult(
        episodes=num_envs,
        tracking_error_mps=float(per_env_err[err_count > 0].mean()) if (err_count > 0).any() else float("nan"),
        tracking_error_fastest_fifth_mps=float(per_env_err[fastest & (err_count > 0)].mean())
        if (fastest & (err_count > 0)).any()
        else float("nan"),
        fall_rate=float(fell.mean()),
        mean_return=float(ret.mean()),
        mean_episode_length_s=float(length.mean() * cfg.sim.ctrl_dt_s),
        duty_factors=tuple(float(d) for d in duty),
        terrain_level=level,
    )


@torch.no_grad()
def terrain_success(
    actor: Actor,
    normalizer: EmpiricalNormalizer,
    env_cfg: WalkConfig,
    *,
    level: int,
    episodes_per_kind: int,
    seed: int,
    actor_obs: str = "policy",
    episode_s: float | None = None,
) -> dict[str, float]:
    """Terrain kind -> success rate of fresh episodes on that kind's tiles at curriculum `level`.

    Success is the curriculum's own (no fall, at least `min_distance_fraction` of the commanded distance),
    judged on each simulation's first episode with deterministic actions; commands span their full range (the
    top command level); the rest of the env (randomization, pushes, terrain seed) is `env_cfg`'s.
    """
    from ogi.envs.curriculum import held_curriculum

    terrain = env_cfg.terrain
    if not terrain.enabled:
        raise ValueError("terrain_success needs an env with terrain.enabled")
    curriculum = dataclasses.replace(terrain.curriculum, enabled=False)
    if not 0 <= level <= curriculum.top_level:
        raise ValueError(f"level {level} outside 0..{curriculum.top_level}")
    kinds = terrain.kinds
    n = episodes_per_kind * len(kinds)
    cfg = dataclasses.replace(
        env_cfg,
        num_envs=n,
        seed=seed,
        terrain=dataclasses.replace(terrain, curriculum=curriculum),
        episode_length_s=episode_s or env_cfg.episode_length_s,
    )
    env = WalkVecEnv(cfg)
    env.reset(seed=seed)
    kind = np.arange(n) % len(kinds)
    env.curriculum = held_curriculum(level, kind, curriculum)
    obs, _ = env.reset()
    state = actor.initial_state(n)
    success = np.zeros(n, dtype=bool)
    pending = np.ones(n, dtype=bool)
    for _ in range(cfg.max_episode_steps):
        mean, state = actor(normalizer(torch.as_tensor(actor_observation(obs, actor_obs))), state)
        obs, _, terminated, truncated, info = env.step(mean.numpy())
        done = terminated | truncated
        ended = done & pending
        if ended.any():
            success[ended] = info["terrain_success"][ended]
            pending &= ~done
        if done.any():
            state = actor.reset_state(state, torch.as_tensor(done))
        if not pending.any():
            break
    return {name: float(success[kind == k].mean()) for k, name in enumerate(kinds)}

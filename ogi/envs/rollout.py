"""A fixed-policy rollout of the `walk` task with a progress bar and a summary (`ogi rollout`)."""

from __future__ import annotations

import time

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ogi.envs.config import WalkConfig
from ogi.envs.walk import WalkVecEnv


def run_rollout(cfg: WalkConfig, *, policy: str = "zero", seconds: float = 5.0, progress: bool = True) -> dict:
    """Step `cfg.num_envs` simulations for `seconds` of simulated time with zero or uniform random actions."""
    if policy not in ("zero", "random"):
        raise ValueError(f"policy '{policy}' must be 'zero' or 'random'")
    env = WalkVecEnv(cfg)
    obs, _ = env.reset(seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    steps = max(1, round(seconds / cfg.sim.ctrl_dt_s))
    n, nj = cfg.num_envs, env.robot.num_joints
    reward_sum = np.zeros(n)
    falls = diverged = episodes = 0
    returns: list[float] = []
    height = []
    start = time.perf_counter()
    columns = (TextColumn("[bold]rollout"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("rollout", total=steps, rate="")
        for step in range(steps):
            if policy == "zero":
                action = np.zeros((n, nj), dtype=np.float32)
            else:
                action = rng.uniform(-1.0, 1.0, (n, nj)).astype(np.float32)
            obs, reward, terminated, truncated, info = env.step(action)
            reward_sum += reward
            falls += int(info["fell"].sum())
            diverged += int(info["diverged"].sum())
            height.append(float(env.rig.base_pose()[:, 2].mean()))
            if "_episode" in info:
                mask = info["_episode"]
                episodes += int(mask.sum())
                returns += info["episode_return"][mask].tolist()
            if step % 10 == 0 or step == steps - 1:
                elapsed = time.perf_counter() - start
                bar.update(task, completed=step + 1, rate=f"{(step + 1) * n / max(elapsed, 1e-9):,.0f} env steps/s")
    wall = time.perf_counter() - start
    env.close()
    return {
        "robot": cfg.robot,
        "policy": policy,
        "num_envs": n,
        "policy_steps": steps,
        "simulated_s_per_env": steps * cfg.sim.ctrl_dt_s,
        "wall_s": wall,
        "env_steps_per_s": steps * n / wall,
        "realtime_factor": steps * n * cfg.sim.ctrl_dt_s / wall,
        "mean_reward_per_step": float(reward_sum.mean() / steps),
        "episodes_ended": episodes,
        "mean_episode_return": float(np.mean(returns)) if returns else float("nan"),
        "falls": falls,
        "diverged": diverged,
        "mean_base_height_m": float(np.mean(height)),
        "all_observations_finite": bool(all(np.isfinite(v).all() for v in obs.values())),
    }

"""A fixed-policy rollout of the `walk` task with a progress bar and a summary (`ogi rollout`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ogi.envs.config import WalkConfig
from ogi.envs.walk import WalkVecEnv

# a policy: (observations, done mask of the last step) -> actions (n, j)
PolicyFn = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]


class Closeable(Protocol):
    def close(self) -> None: ...


class RecorderFactory(Protocol):
    """Starts observing `env` from its next step (e.g. `functools.partial(ogi.replay.Recorder, path=...)`).

    The rollout passes what it knows about itself as `meta` and closes the returned recorder at the end.
    """

    def __call__(self, env: WalkVecEnv, *, meta: dict[str, Any]) -> Closeable: ...


def run_rollout(
    cfg: WalkConfig,
    *,
    policy: str | PolicyFn = "zero",
    seconds: float = 5.0,
    progress: bool = True,
    save: Path | None = None,
    recorder: RecorderFactory | None = None,
) -> dict:
    """Step `cfg.num_envs` simulations for `seconds` of simulated time and summarize.

    policy: "zero" (hold the default pose), "random" (uniform actions) or a function of the observations.
    save: write the trajectory (time, qpos, qvel, ctrl, reward per step) as safetensors plus a JSON sidecar.
    recorder: what to record the rollout with, e.g. an MCAP recording (`ogi.replay.Recorder`) for exact replay;
        the layer above chooses it, so the env layer does not depend on the replay layer.
    """
    if isinstance(policy, str) and policy not in ("zero", "random"):
        raise ValueError(f"policy '{policy}' must be 'zero', 'random' or a trained run")
    env = WalkVecEnv(cfg)
    obs, _ = env.reset(seed=cfg.seed)
    recording = None
    if recorder is not None:
        recording = recorder(
            env, meta={"source": "rollout", "policy": policy if isinstance(policy, str) else "trained"}
        )
    rng = np.random.default_rng(cfg.seed + 1)
    steps = max(1, round(seconds / cfg.sim.ctrl_dt_s))
    n, nj = cfg.num_envs, env.robot.num_joints
    reward_sum = np.zeros(n)
    falls = diverged = episodes = 0
    returns: list[float] = []
    height = []
    done = np.zeros(n, dtype=bool)
    trajectory: dict[str, list[np.ndarray]] = {"time": [], "qpos": [], "qvel": [], "ctrl": [], "reward": []}
    start = time.perf_counter()
    columns = (
        TextColumn("[bold]rollout"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("rollout", total=steps, rate="")
        for step in range(steps):
            if policy == "zero":
                action = np.zeros((n, nj), dtype=np.float32)
            elif policy == "random":
                action = rng.uniform(-1.0, 1.0, (n, nj)).astype(np.float32)
            else:
                action = policy(obs, done)
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated | truncated
            if save is not None:
                trajectory["time"].append(env.batch.bind("time").copy())
                trajectory["qpos"].append(env.rig.qpos().copy())
                trajectory["qvel"].append(env.rig.qvel().copy())
                trajectory["ctrl"].append(env.batch.bind("ctrl").copy())
                trajectory["reward"].append(reward.copy())
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
    if recording is not None:
        recording.close()
    if save is not None:
        _save_trajectory(Path(save), trajectory, env, cfg)
    env.close()
    return {
        "robot": cfg.robot,
        "policy": policy if isinstance(policy, str) else "trained",
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


def _save_trajectory(path: Path, trajectory: dict[str, list[np.ndarray]], env: WalkVecEnv, cfg: WalkConfig) -> None:
    """(steps, n, ...) arrays as safetensors, with the compiled model's MJCF and names in a JSON sidecar."""
    import mujoco
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {key: np.ascontiguousarray(np.stack(values)) for key, values in trajectory.items()}
    save_file(arrays, str(path), metadata={"format": "ogi-rollout-v0"})
    xml_path = path.with_suffix(".xml")
    xml_path.write_text(env.rig.spec.to_xml())
    sidecar = {
        "robot": cfg.robot,
        "num_envs": cfg.num_envs,
        "ctrl_dt_s": cfg.sim.ctrl_dt_s,
        "sim_dt_s": cfg.sim.sim_dt_s,
        "mujoco": mujoco.__version__,
        "model_xml": xml_path.name,
        "joint_names": list(env.robot.joint_names),
        "arrays": {key: list(value.shape) for key, value in arrays.items()},
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))

"""A single-env `gymnasium.Env` over the batched task, for `check_env`, Stable-Baselines3 and user code."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from ogi.envs.config import WalkConfig
from ogi.envs.walk import WalkVecEnv


class _OneOfBatch(gym.Env):
    """One simulation of a batched env `self.vec` (built with autoreset off) as a `gymnasium.Env`."""

    metadata = {"render_modes": []}

    def _wrap(self, vec) -> None:
        self.vec = vec
        self.observation_space = vec.single_observation_space
        self.action_space = vec.single_action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, _ = self.vec.reset(seed=seed)
        return _row(obs), {}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.vec.step(np.asarray(action)[None])
        return _row(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), _info_row(info)

    def close(self) -> None:
        self.vec.close()


class WalkEnv(_OneOfBatch):
    """One simulation of the `walk` task; the fast path for training is `WalkVecEnv`."""

    def __init__(self, robot: str = "go2", config: WalkConfig | None = None):
        base = config or WalkConfig(robot=robot)
        cfg = dataclasses.replace(base, num_envs=1, sim=dataclasses.replace(base.sim, nthread=1))
        self._wrap(WalkVecEnv(cfg, autoreset=False))


class WholeBodyEnv(_OneOfBatch):
    """One simulation of a whole-body task (`reach`, `pick_place`, `push`); the batched one is `WholeBodyVecEnv`."""

    def __init__(self, task: str = "reach", config=None):
        from ogi.envs.wholebody import WholeBodyConfig, WholeBodyVecEnv

        base = config or WholeBodyConfig(task=task)
        walk = dataclasses.replace(base.walk, sim=dataclasses.replace(base.walk.sim, nthread=1))
        self._wrap(WholeBodyVecEnv(dataclasses.replace(base, num_envs=1, walk=walk), autoreset=False))


def _row(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: value[0] for key, value in obs.items()}


def _info_row(info: dict) -> dict:
    out = {}
    for key, value in info.items():
        if isinstance(value, np.ndarray) and value.shape[:1] == (1,):
            out[key] = value[0].item() if value.ndim == 1 else value[0]
    return out


def make_walk_vec(num_envs: int = 64, robot: str = "go2", **kwargs) -> WalkVecEnv:
    """Vector entry point for `gymnasium.make_vec`."""
    return WalkVecEnv(WalkConfig(robot=robot, num_envs=num_envs, **kwargs))

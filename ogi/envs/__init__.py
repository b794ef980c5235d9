"""Batched MuJoCo environments: the `walk` task on `mujoco.batch`, and its single-env wrapper."""

import gymnasium

from ogi.envs.config import (
    CommandConfig,
    ConfigError,
    NoiseConfig,
    RandomizationConfig,
    RewardConfig,
    SimConfig,
    TerminationConfig,
    WalkConfig,
    load_walk_config,
)
from ogi.envs.rewards import REWARD_TERMS, RewardComposer, Signals
from ogi.envs.single import WalkEnv, make_walk_vec
from ogi.envs.walk import WalkVecEnv

ENV_IDS = {"go2": "ogi/Go2Walk-v0", "biped": "ogi/BipedWalk-v0", "humanoid": "ogi/HumanoidWalk-v0"}

for _robot, _env_id in ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(
            id=_env_id,
            entry_point="ogi.envs.single:WalkEnv",
            vector_entry_point="ogi.envs.single:make_walk_vec",
            kwargs={"robot": _robot},
        )

__all__ = [
    "ENV_IDS",
    "REWARD_TERMS",
    "CommandConfig",
    "ConfigError",
    "NoiseConfig",
    "RandomizationConfig",
    "RewardComposer",
    "RewardConfig",
    "Signals",
    "SimConfig",
    "TerminationConfig",
    "WalkConfig",
    "WalkEnv",
    "WalkVecEnv",
    "load_walk_config",
    "make_walk_vec",
]

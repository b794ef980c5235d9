"""Batched MuJoCo environments: the `walk` task on `mujoco.batch`, and its single-env wrapper.

Names load on first use (PEP 562): `ogi.envs.observations` or `ogi.envs.config` alone (the robot side's needs) do not
load the simulator. `import ogi` registers the Gymnasium ids (`ENV_IDS`).
"""

import importlib

_WHERE = {
    "ENV_IDS": "ogi.envs.registration",
    "TASK_ENV_IDS": "ogi.envs.registration",
    "WholeBodyConfig": "ogi.envs.wholebody",
    "WholeBodyEnv": "ogi.envs.single",
    "WholeBodyVecEnv": "ogi.envs.wholebody",
    "REWARD_TERMS": "ogi.envs.rewards",
    "CommandConfig": "ogi.envs.config",
    "ConfigError": "ogi.envs.config",
    "NoiseConfig": "ogi.envs.config",
    "RandomizationConfig": "ogi.envs.config",
    "RewardComposer": "ogi.envs.rewards",
    "RewardConfig": "ogi.envs.config",
    "Signals": "ogi.envs.rewards",
    "SimConfig": "ogi.envs.config",
    "TerminationConfig": "ogi.envs.config",
    "WalkConfig": "ogi.envs.config",
    "WalkEnv": "ogi.envs.single",
    "WalkVecEnv": "ogi.envs.walk",
    "load_walk_config": "ogi.envs.config",
    "make_walk_vec": "ogi.envs.single",
    "register_envs": "ogi.envs.registration",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'ogi.envs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

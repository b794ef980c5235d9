"""One short recording shared by the replay tests: domain randomization, frequent pushes, episode resets."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ogi.envs import WalkConfig
from ogi.envs.config import SimConfig

RECORDED_STEPS = 1000
NUM_SIMS = 3


def walk_config(**changes) -> WalkConfig:
    cfg = WalkConfig(num_envs=NUM_SIMS, episode_length_s=4.0, seed=3, sim=SimConfig(sim_dt_s=0.002, nthread=1))
    cfg = dataclasses.replace(cfg, randomization=dataclasses.replace(cfg.randomization, push_interval_s=(0.5, 1.5)))
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory) -> dict:
    """{"path", "steps": {name: (T, n, ...)}, "events": [...]}: a 1000-step random-action rollout recorded, and
    what the env itself reported at each step, collected beside the recorder for comparison."""
    from ogi.envs import WalkVecEnv
    from ogi.replay import Recorder

    path = Path(tmp_path_factory.mktemp("rec")) / "walk.mcap"
    env = WalkVecEnv(walk_config())
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    seen: dict[str, list] = {"qpos": [], "qvel": [], "reward": [], "command": [], "terminated": [], "truncated": [],
                             "pushed": [], "tracking_lin_vel": []}
    sizes = []
    with Recorder(env, path, meta={"source": "test"}) as recorder:
        for step in range(RECORDED_STEPS):
            command = env.command.copy()
            _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, (NUM_SIMS, env.robot.num_joints)))
            seen["command"].append(command)
            seen["reward"].append(reward.copy())
            seen["terminated"].append(terminated.copy())
            seen["truncated"].append(truncated.copy())
            seen["pushed"].append(info["pushed"].copy())
            seen["tracking_lin_vel"].append(info["reward/tracking_lin_vel"].copy())
            if not (terminated | truncated).any():  # after a reset the env holds the new episode's state
                seen["qpos"].append((step, env.rig.qpos().copy()))
                seen["qvel"].append((step, env.rig.qvel().copy()))
            if step == 500:
                recorder.add_event("safety", sim=1, cause="test_stop", data={"limit": 1.5})
            if step % 50 == 0:
                sizes.append(path.stat().st_size)
    env.close()
    return {"path": path, "seen": seen, "sizes": sizes, "env_cfg": walk_config()}

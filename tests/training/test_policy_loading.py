"""Loading a policy sizes its actor from the env's observation layouts and finds a run's newest valid checkpoint."""

import dataclasses

import numpy as np
import pytest

from ogi import checkpoints as ckpt
from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.config import SimConfig
from ogi.envs.sensing import DepthCameraConfig, HeightScanConfig
from ogi.robots import get_robot
from ogi.training.policy_loading import load_policy, observation_layouts, policy_function
from ogi.training.runner import Runner
from tests.training.test_train_e2e import tiny_config


@pytest.mark.parametrize("sensors", ["none", "depth_and_scan"])
def test_layouts_are_the_ones_the_env_builds(sensors):
    cfg = WalkConfig(num_envs=1, sim=SimConfig(sim_dt_s=0.002, nthread=1))
    if sensors != "none":
        cfg = dataclasses.replace(
            cfg,
            depth_camera=DepthCameraConfig(enabled=True, width=4, height=3),
            height_scan=HeightScanConfig(enabled=True, spacing_m=0.5),
        )
    env = WalkVecEnv(cfg)
    policy, privileged = observation_layouts(cfg, get_robot(cfg.robot))
    assert policy == env.policy_layout and privileged == env.privileged_layout
    assert ("depth_image" in policy.names) == (sensors != "none")


def test_a_run_loads_from_its_newest_valid_checkpoint(tmp_path):
    cfg = dataclasses.replace(tiny_config(kind="mlp"), actor_obs="privileged", keep_last=0)
    runner = Runner(cfg, tmp_path / "run")
    runner.train(iterations=2, progress=False, log=False)
    loaded = load_policy(tmp_path / "run")
    assert loaded.checkpoint.path == runner.last_checkpoint.path and loaded.cfg == cfg
    assert loaded.actor.obs_dim == runner.env.policy_layout.size + runner.env.privileged_layout.size
    first = ckpt.list_checkpoints(tmp_path / "run")[0]
    assert load_policy(first).checkpoint.iteration == 1  # a checkpoint directory loads as given

    act, env_cfg = policy_function(tmp_path / "run", 4)
    obs, _ = runner.env.reset(seed=0)
    assert env_cfg == cfg.env and act(obs, np.zeros(4, bool)).shape == (4, runner.env.robot.num_joints)


def test_a_directory_without_a_valid_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ckpt.NoValidCheckpointError, match="no valid checkpoint") as error:
        load_policy(tmp_path / "nothing")
    assert isinstance(error.value, FileNotFoundError) and isinstance(error.value, ckpt.CheckpointError)

"""A few seconds of real training: finite losses, checkpoints that verify, and a bit-identical resume."""

import dataclasses
import math
import shutil

import numpy as np
import pytest

from ogi import checkpoints as ckpt
from ogi.envs import WalkConfig
from ogi.envs.config import SimConfig
from ogi.policies import ActorConfig, CriticConfig
from ogi.training.config import TrainConfig
from ogi.training.ppo import PPOConfig
from ogi.training.runner import Runner


def tiny_config(kind: str = "gru") -> TrainConfig:
    return TrainConfig(
        env=WalkConfig(num_envs=4, episode_length_s=0.3, sim=SimConfig(sim_dt_s=0.002, nthread=1)),
        actor=ActorConfig(kind=kind, hidden_sizes=(32,), recurrent_size=16),
        critic=CriticConfig(hidden_sizes=(32,)),
        ppo=PPOConfig(rollout_steps=8, epochs=2, minibatches=2),
        iterations=2,
        checkpoint_every=1,
        collect_threads=1,
        update_threads=1,
        seed=3,
    )


def params(runner: Runner) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in [*runner.actor.parameters(), *runner.critic.parameters()]]


def test_training_runs_checkpoints_verify_and_resume_is_bit_identical(tmp_path):
    cfg = tiny_config()
    first = tmp_path / "run"
    runner = Runner(cfg, first)
    summary = runner.train(iterations=2, progress=False, log=False)
    assert summary["iterations"] == 2 and summary["env_steps"] == 2 * 4 * 8
    assert math.isfinite(summary["reward/total"])
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)

    runner.train(iterations=2, progress=False, log=False)
    uninterrupted = params(runner)
    chain = ckpt.verify_checkpoint(runner.last_checkpoint.path)
    assert [c.iteration for c in chain] == [4, 3, 2, 1]

    resumed = Runner(cfg, copy, resume=True)
    assert resumed.iteration == 2
    resumed.train(iterations=2, progress=False, log=False)
    for a, b in zip(uninterrupted, params(resumed)):
        np.testing.assert_array_equal(a, b)
    # the resumed run extends the copied chain from where it was
    assert [c.iteration for c in ckpt.verify_checkpoint(resumed.last_checkpoint.path)] == [4, 3, 2, 1]


def test_a_corrupt_newest_checkpoint_is_skipped_on_resume(tmp_path):
    cfg = tiny_config(kind="mlp")
    runner = Runner(cfg, tmp_path / "run")
    runner.train(iterations=2, progress=False, log=False)
    newest = runner.last_checkpoint.path / ckpt.WEIGHTS_FILENAME
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0x01
    newest.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointHashMismatchError):
        ckpt.verify_checkpoint(runner.last_checkpoint.path)
    with pytest.warns(ckpt.CorruptCheckpointWarning):
        resumed = Runner(cfg, tmp_path / "run", resume=True)
    assert resumed.iteration == 1


def test_a_new_run_refuses_a_directory_with_checkpoints(tmp_path):
    cfg = tiny_config(kind="mlp")
    Runner(cfg, tmp_path / "run").train(iterations=1, progress=False, log=False)
    with pytest.raises(FileExistsError, match="--resume"):
        Runner(cfg, tmp_path / "run")


def test_a_teacher_sees_privileged_observations_and_loads_back(tmp_path):
    from ogi.envs.sensing import HeightScanConfig
    from ogi.training.policy_loading import load_policy, policy_function

    base = tiny_config(kind="mlp")
    cfg = dataclasses.replace(
        base, actor_obs="privileged", env=dataclasses.replace(base.env, height_scan=HeightScanConfig(enabled=True))
    )
    runner = Runner(cfg, tmp_path / "teacher")
    policy = runner.env.policy_layout.size
    privileged = runner.env.privileged_layout.size
    assert runner.actor_normalizer.mean.shape[-1] == policy + privileged
    runner.train(iterations=1, progress=False, log=False)
    actor, normalizer, loaded_cfg, _ = load_policy(tmp_path / "teacher")
    assert loaded_cfg.actor_obs == "privileged"
    assert normalizer.mean.shape[-1] == policy + privileged
    act, env_cfg = policy_function(tmp_path / "teacher", 4)
    obs, _ = runner.env.reset(seed=0)
    assert act(obs, np.zeros(4, dtype=bool)).shape == (4, runner.env.robot.num_joints)


def test_actor_obs_is_checked():
    with pytest.raises(Exception, match="actor_obs"):
        TrainConfig(actor_obs="everything")

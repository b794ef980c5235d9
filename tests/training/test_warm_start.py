"""A teacher started from a walker acts exactly like it until training uses the added observations."""

import dataclasses

import numpy as np
import pytest
import torch

from ogi import checkpoints as ckpt
from ogi.envs.sensing import HeightScanConfig
from ogi.training.config import actor_observation
from ogi.training.runner import Runner
from ogi.training.warm_start import warm_start
from ogi.validation import ConfigError
from tests.training.test_train_e2e import tiny_config


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_a_privileged_run_starts_as_the_policy_it_came_from(tmp_path, kind):
    source_cfg = tiny_config(kind=kind)
    source = Runner(source_cfg, tmp_path / "walker")
    source.train(iterations=1, progress=False, log=False)
    teacher_cfg = dataclasses.replace(
        source_cfg,
        actor_obs="privileged",
        env=dataclasses.replace(source_cfg.env, height_scan=HeightScanConfig(enabled=True, spacing_m=0.5)),
    )
    teacher = Runner(teacher_cfg, tmp_path / "teacher")
    parent = warm_start(teacher, tmp_path / "walker")
    assert parent.checkpoint_sha256 == source.last_checkpoint.checkpoint_sha256

    obs, _ = teacher.env.reset(seed=5)
    n = teacher_cfg.env.num_envs
    with torch.no_grad():
        old_state, new_state = source.actor.initial_state(n), teacher.actor.initial_state(n)
        for _ in range(3):
            old, old_state = source.actor(source.actor_normalizer(torch.as_tensor(obs["policy"])), old_state)
            new, new_state = teacher.actor(
                teacher.actor_normalizer(torch.as_tensor(actor_observation(obs, "privileged"))), new_state
            )
            np.testing.assert_allclose(new.numpy(), old.numpy(), atol=1e-6)
            obs, *_ = teacher.env.step(new.numpy())

    # the critic comes along: its added privileged inputs start unread
    walker_view = np.concatenate([obs["policy"], obs["privileged"][:, : source.env.privileged_layout.size]], 1)
    with torch.no_grad():
        old_value = source.critic(source.critic_normalizer(torch.as_tensor(walker_view)))
        new_value = teacher.critic(teacher.critic_normalizer(torch.as_tensor(actor_observation(obs, "privileged"))))
    np.testing.assert_allclose(new_value.numpy(), old_value.numpy(), atol=1e-5)

    teacher.train(iterations=1, progress=False, log=False)
    chain = ckpt.verify_checkpoint(teacher.last_checkpoint.path)
    assert chain[-1].checkpoint_sha256 == source.last_checkpoint.checkpoint_sha256  # lineage reaches the walker


def test_another_actor_kind_is_refused(tmp_path):
    Runner(tiny_config(kind="mlp"), tmp_path / "walker").train(iterations=1, progress=False, log=False)
    other = Runner(tiny_config(kind="gru"), tmp_path / "other")
    with pytest.raises(ConfigError, match="actor"):
        warm_start(other, tmp_path / "walker")


def test_the_example_teacher_config_is_a_privileged_run_with_a_height_scan():
    from pathlib import Path

    from ogi.training.config import load_train_config, preset

    cfg = load_train_config(Path(__file__).parents[2] / "docs" / "examples" / "teacher.toml", preset("go2"))
    assert cfg.actor_obs == "privileged"
    assert cfg.env.height_scan.enabled and cfg.env.height_scan.spacing_m == 0.2


def _on_robot(cfg, robot: str):
    env = dataclasses.replace(cfg.env, robot=robot, held_joints=("waist", "shoulder", "elbow", "gripper"))
    return dataclasses.replace(cfg, env=env if robot == "humanoid" else dataclasses.replace(cfg.env, robot=robot))


def test_a_humanoid_starts_as_the_biped_whose_legs_it_has(tmp_path):
    from ogi.robots.registry import get_robot
    from ogi.training.policy_loading import observation_layouts

    biped_cfg = _on_robot(tiny_config(kind="gru"), "biped")
    biped = Runner(biped_cfg, tmp_path / "biped")
    biped.train(iterations=1, progress=False, log=False)
    humanoid = Runner(_on_robot(tiny_config(kind="gru"), "humanoid"), tmp_path / "humanoid")
    parent = warm_start(humanoid, tmp_path / "biped")
    assert parent.checkpoint_sha256 == biped.last_checkpoint.checkpoint_sha256

    # a humanoid observation, and the biped's view of it: the same terms with only the leg joints' values
    legs = [get_robot("humanoid").joint_names.index(j) for j in get_robot("biped").joint_names]
    layout, _ = observation_layouts(humanoid.cfg.env, get_robot("humanoid"))
    obs, _ = humanoid.env.reset(seed=2)
    rng = np.random.default_rng(0)
    full = obs["policy"] + rng.normal(0.0, 0.3, obs["policy"].shape).astype(np.float32)
    parts = []
    for part in layout.slices().values():
        values = full[:, part]
        parts.append(values[:, legs] if values.shape[1] == humanoid.env.robot.num_joints else values)
    biped_view = np.concatenate(parts, axis=1)
    with torch.no_grad():
        n = full.shape[0]
        old, _ = biped.actor(biped.actor_normalizer(torch.as_tensor(biped_view)), biped.actor.initial_state(n))
        new, _ = humanoid.actor(humanoid.actor_normalizer(torch.as_tensor(full)), humanoid.actor.initial_state(n))
    np.testing.assert_allclose(new.numpy()[:, legs], old.numpy(), atol=1e-5)
    others = [j for j in range(humanoid.env.robot.num_joints) if j not in legs]
    np.testing.assert_array_equal(new.numpy()[:, others], 0.0)  # the waist and arms start at their default pose
    # the critic values the same state alike (the privileged group follows the policy group on both robots)
    privileged = obs["privileged"]
    with torch.no_grad():
        old_value = biped.critic(biped.critic_normalizer(torch.as_tensor(np.concatenate([biped_view, privileged], 1))))
        new_value = humanoid.critic(humanoid.critic_normalizer(torch.as_tensor(np.concatenate([full, privileged], 1))))
    np.testing.assert_allclose(new_value.numpy(), old_value.numpy(), atol=1e-5)

    humanoid.train(iterations=1, progress=False, log=False)
    chain = ckpt.verify_checkpoint(humanoid.last_checkpoint.path)
    assert chain[-1].checkpoint_sha256 == biped.last_checkpoint.checkpoint_sha256


def test_a_robot_missing_the_source_robots_joints_is_refused(tmp_path):
    Runner(_on_robot(tiny_config(kind="gru"), "humanoid"), tmp_path / "humanoid").train(
        iterations=1, progress=False, log=False
    )
    biped = Runner(_on_robot(tiny_config(kind="gru"), "biped"), tmp_path / "biped")
    with pytest.raises(ConfigError, match="waist_yaw_joint"):
        warm_start(biped, tmp_path / "humanoid")

"""Held-out perturbation schedules: they are valid, push what they say, and judge every policy on the same pushes."""

import numpy as np
import pytest

from ogi.policies import EmpiricalNormalizer, make_actor
from ogi.training.config import actor_observation_size
from ogi.training.robustness import (
    HELD_OUT,
    PerturbationSchedule,
    evaluate_robustness,
    schedule_env,
    schedule_start,
)
from ogi.validation import ConfigError
from tests.training.test_train_e2e import tiny_config


def standing_actor(cfg):
    """An actor whose mean is zero: it holds the default pose."""
    from ogi.envs import WalkVecEnv

    env = WalkVecEnv(cfg.env)
    dim = actor_observation_size(env.policy_layout.size, env.privileged_layout.size, cfg.actor_obs)
    actor = make_actor(dim, env.robot.num_joints, cfg.actor)
    for p in actor.parameters():
        p.data.zero_()
    return actor, EmpiricalNormalizer(dim)


def test_held_out_schedules_differ_from_training_pushes():
    cfg = tiny_config()
    assert len({s.name for s in HELD_OUT}) == len(HELD_OUT)
    for schedule in HELD_OUT:
        env = schedule_env(cfg.env, schedule, 4, 2.0, 0)
        assert env.randomization.push_velocity_mps == 0.0  # only the schedule pushes
        assert env.commands.standing_probability == 0.0
        unseen = (
            schedule.velocity_mps[0] > 0.8
            or schedule.duration_s > 0.02
            or schedule.point_offset_m > 0.15
            or schedule.burst > 1
            or schedule.rough_level is not None
        )
        assert unseen, schedule.name


def test_a_hard_schedule_topples_a_standing_robot_that_no_pushes_leave_standing():
    cfg = tiny_config()
    actor, normalizer = standing_actor(cfg)
    calm = PerturbationSchedule(name="calm")
    hard = PerturbationSchedule(
        name="hard", velocity_mps=(3.0, 3.0), duration_s=0.2, first_s=0.2, interval_s=(0.5, 0.5)
    )
    quiet = evaluate_robustness(actor, normalizer, cfg.env, calm, num_envs=4, episode_s=1.5, seed=1)
    pushed = evaluate_robustness(actor, normalizer, cfg.env, hard, num_envs=4, episode_s=1.5, seed=1)
    assert quiet.fall_rate == 0.0 and quiet.pushes_per_episode == 0.0
    assert pushed.pushes_per_episode >= 1.0
    assert pushed.fall_rate > 0.0
    again = evaluate_robustness(actor, normalizer, cfg.env, hard, num_envs=4, episode_s=1.5, seed=1)
    assert again == pushed  # the same seed: the same robots, commands and pushes


def test_a_rough_schedule_holds_every_simulation_on_its_level():
    cfg = tiny_config()
    schedule = PerturbationSchedule(name="rough", rough_level=2)
    env, _ = schedule_start(schedule_env(cfg.env, schedule, 4, 1.0, 0), schedule, seed=0)
    assert env.curriculum.level.tolist() == [2, 2, 2, 2]


def test_bad_schedules_are_refused():
    with pytest.raises(ConfigError, match="velocity_mps"):
        PerturbationSchedule(name="x", velocity_mps=(1.0, 0.5))
    with pytest.raises(ConfigError, match="burst_gap_s"):
        PerturbationSchedule(name="x", duration_s=0.5, burst=2, burst_gap_s=0.1)
    with pytest.raises(ConfigError, match="rough_level"):
        PerturbationSchedule(name="x", rough_level=12)
    assert np.isfinite(HELD_OUT[0].velocity_mps).all()

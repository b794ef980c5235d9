"""The safety supervisor and crouch fallback in the walk env with the shipped go2 policy under a scripted push."""

import dataclasses

import numpy as np
import pytest

from ogi.controllers import ControlMode, FallbackConfig, SupervisorConfig
from ogi.envs import WalkVecEnv
from ogi.envs.supervised import SupervisedWalk
from ogi.training.policy_loading import policy_function

SHIPPED = "ogi/policies/pretrained/go2_walk_gru"
NUM_ENVS, SEED, EPISODE_S = 8, 1, 3.0
# the env's own fall height: min_base_height_fraction (0.5) x nominal base height (0.32 m)
FALL_HEIGHT_M = 0.16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(supervised: bool) -> tuple[np.ndarray, SupervisedWalk | None]:
    """Lowest base height of each simulation's first episode (0 once it fell); pushes of up to 1.5 m/s at 1 s, 2 s."""
    act, env_cfg = policy_function(SHIPPED, NUM_ENVS)
    cfg = dataclasses.replace(
        env_cfg,
        num_envs=NUM_ENVS,
        episode_length_s=EPISODE_S,
        seed=SEED,
        sim=dataclasses.replace(env_cfg.sim, nthread=1),
        randomization=dataclasses.replace(env_cfg.randomization, push_velocity_mps=1.5, push_interval_s=(1.0, 1.0)),
    )
    env = WalkVecEnv(cfg)
    limits = SupervisorConfig(max_tilt_rad=0.25, max_ang_vel_radps=2.0)
    wrapper = SupervisedWalk(env, limits, FallbackConfig()) if supervised else None
    stepper = wrapper or env
    obs, _ = stepper.reset(seed=SEED)
    done = np.zeros(NUM_ENVS, dtype=bool)
    alive = np.ones(NUM_ENVS, dtype=bool)
    lowest = np.full(NUM_ENVS, np.inf)
    for _ in range(cfg.max_episode_steps):
        obs, _, terminated, truncated, info = stepper.step(act(obs, done))
        height = np.where(info["fell"], 0.0, env.rig.base_pose()[:, 2])
        lowest = np.where(alive, np.minimum(lowest, height), lowest)
        done = terminated | truncated
        alive &= ~done
    return lowest, wrapper


@pytest.fixture(scope="module")
def runs():
    return _run(False), _run(True)


def test_supervisor_keeps_a_pushed_robot_up_that_the_bare_policy_drops(runs):
    (bare, _), (supervised, wrapper) = runs
    crossed_bare = bare < FALL_HEIGHT_M
    crossed_supervised = supervised < FALL_HEIGHT_M
    assert crossed_bare.sum() >= 2  # the push schedule makes the bare policy fall
    rescued = crossed_bare & ~crossed_supervised
    assert rescued.any()
    assert crossed_supervised.sum() < crossed_bare.sum()
    # the rescued robots were taken over by the fallback, and each switch was recorded with its cause
    for i in np.flatnonzero(rescued):
        events = wrapper.supervisors[i].events
        assert events and events[0].from_mode == "policy" and events[0].to_mode == ControlMode.CROUCH.value
        assert events[0].cause in ("tilt", "ang_vel", "joint_vel")


def test_fallback_gains_are_restored_after_an_episode_ends(runs):
    _, (_, wrapper) = runs
    kp, kd = wrapper.env.rig.pd_gains(np.arange(NUM_ENVS))
    policy_rows = wrapper.modes == ControlMode.POLICY.value
    np.testing.assert_allclose(kp[policy_rows], wrapper.nominal_kp[policy_rows])
    np.testing.assert_allclose(kd[policy_rows], wrapper.nominal_kd[policy_rows])


def test_recovery_hands_back_after_the_calm_time_without_asking_the_predictor_again():
    act, env_cfg = policy_function(SHIPPED, 2)
    cfg = dataclasses.replace(
        env_cfg,
        num_envs=2,
        seed=SEED,
        sim=dataclasses.replace(env_cfg.sim, nthread=1),
        randomization=dataclasses.replace(env_cfg.randomization, push_interval_s=(1e5, 1e5)),
    )
    env = WalkVecEnv(cfg)
    wrapper = SupervisedWalk(env, SupervisorConfig(rearm_stable_s=0.5), FallbackConfig(), rearm=True)
    obs, _ = wrapper.reset(seed=SEED)
    done = np.zeros(2, dtype=bool)
    for _ in range(25):  # settle from the spawn
        obs, *_, info = wrapper.step(act(obs, done))
    alarm = np.array([1.0, 0.0])  # the predictor says robot 0 is about to fall, and keeps saying so
    obs, *_, info = wrapper.step(act(obs, done), alarm)
    assert info["tripped"].tolist() == [True, False] and info["mode"].tolist() == ["crouch", "policy"]
    rearmed_at = None
    for step in range(1, 60):
        obs, *_, info = wrapper.step(act(obs, done), alarm)
        if info["rearmed"][0]:
            rearmed_at = step
            break
    # calm for rearm_stable_s (25 policy steps) counted from the trip, whatever the predictor says meanwhile
    assert rearmed_at is not None and 25 <= rearmed_at <= 40
    assert info["mode"][0] == "policy"
    np.testing.assert_allclose(env.rig.pd_gains(np.array([0]))[0], wrapper.nominal_kp[[0]])

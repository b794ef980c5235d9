"""The scripted reach expert: it steers the walker toward a far target and reaches for a near one."""

import numpy as np
import pytest

from ogi.envs.wholebody import WholeBodyConfig, WholeBodyVecEnv
from ogi.hierarchy.reach_expert import ReachExpert
from tests.envs.test_wholebody import STILL


@pytest.fixture(scope="module")
def env():
    env = WholeBodyVecEnv(WholeBodyConfig(task="reach", num_envs=3, walk=STILL), autoreset=False)
    yield env
    env.close()


def _around(env, forward_m, left_m, height_m):
    base = env.walk.rig.base_pose()
    yaw = 2 * np.arctan2(base[:, 6], base[:, 3])
    heading = np.column_stack([np.cos(yaw), np.sin(yaw)])
    left = np.column_stack([-np.sin(yaw), np.cos(yaw)])
    xy = base[:, :2] + forward_m * heading + left_m * left
    return np.column_stack([xy, np.full(len(xy), height_m)])


def test_a_far_target_gets_a_command_toward_it_and_a_near_one_none(env):
    env.reset(seed=0)
    targets = np.stack(
        [_around(env, 2.0, 0.0, 1.0)[0], _around(env, 0.0, 2.0, 1.0)[1], _around(env, 0.3, -0.2, 1.0)[2]]
    )
    env.place_goal([0, 1, 2], targets)
    command = ReachExpert(env).command()
    assert command[0, 0] > 0.3 and abs(command[0, 2]) < 0.05  # ahead: walk forward
    assert command[1, 0] == 0.0 and command[1, 2] > 0.5  # to the left: turn left first, in place
    assert not command[2].any()  # in reach: stand


def test_the_expert_touches_a_target_in_reach_with_the_nearer_hand(env):
    env.reset(seed=1)
    env.place_goal(
        [0, 1, 2],
        np.stack([_around(env, 0.3, 0.2, 0.95)[0], _around(env, 0.3, -0.2, 0.95)[1], _around(env, 0.35, 0.0, 1.0)[2]]),
    )
    expert = ReachExpert(env)
    touched = np.zeros(3, dtype=bool)
    for _ in range(40):
        _, _, terminated, _, info = env.step(expert.act())
        touched |= info["success"]
        if terminated.all():
            break
    assert touched.all() and not info["fell"].any()


def test_the_expert_drives_only_the_reach_task():
    env = WholeBodyVecEnv(WholeBodyConfig(task="push", num_envs=1))
    with pytest.raises(ValueError, match="not 'push'"):
        ReachExpert(env)

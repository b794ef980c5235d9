import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import ogi  # noqa: F401  (registers the envs)
from ogi.envs import ENV_IDS
from ogi.robots import robot_names

REGISTERED = [ENV_IDS[name] for name in robot_names() if name in ENV_IDS]


def test_every_builtin_robot_has_a_registered_env():
    assert REGISTERED and len(REGISTERED) == len(robot_names())
    for env_id in REGISTERED:
        assert env_id in gymnasium.registry


@pytest.mark.parametrize("env_id", REGISTERED)
def test_gymnasium_check_env(env_id):
    env = gymnasium.make(env_id)
    gym_check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", REGISTERED)
def test_stable_baselines3_check_env(env_id):
    env = gymnasium.make(env_id)
    with warnings.catch_warnings():
        # SB3 recommends [-1, 1] action boxes; ours spans the clip range of the PD offsets
        warnings.filterwarnings("ignore", message=".*symmetric and normalized Box action space.*")
        sb3_check_env(env.unwrapped, warn=True)
    env.close()


def test_make_vec_gives_the_batched_env():
    envs = gymnasium.make_vec("ogi/Go2Walk-v0", num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = envs.reset(seed=0)
    assert obs["policy"].shape[0] == 3
    envs.close()


@pytest.mark.parametrize("task", ["reach", "pick_place", "push"])
def test_whole_body_tasks_are_registered_and_pass_gymnasiums_check(task):
    from ogi.envs import TASK_ENV_IDS

    env = gymnasium.make(TASK_ENV_IDS[task])
    gym_check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["task"].shape == (20,) and env.action_space.shape == (23,)
    env.close()

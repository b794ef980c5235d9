import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.config import RandomizationConfig, SimConfig
from ogi.robots import robot_names

SMALL = WalkConfig(num_envs=4, sim=SimConfig(nthread=1))


@pytest.fixture(scope="module")
def go2_env():
    env = WalkVecEnv(SMALL)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("robot", robot_names())
def test_smoke_every_robot(robot):
    env = WalkVecEnv(dataclasses.replace(SMALL, robot=robot))
    obs, info = env.reset(seed=1)
    nj = env.robot.num_joints
    assert obs["policy"].shape == (4, 9 + 3 * nj) and obs["policy"].dtype == np.float32
    assert obs["privileged"].shape == (4, env.privileged_layout.size)
    assert env.single_action_space.shape == (nj,)
    rng = np.random.default_rng(0)
    for _ in range(25):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, (4, nj)))
        assert reward.shape == terminated.shape == truncated.shape == (4,)
        assert np.isfinite(reward).all()
        for group in obs.values():
            assert np.isfinite(group).all()
        assert not info["diverged"].any()
    assert env.observation_space.contains(obs)


def test_reward_equals_sum_of_logged_terms(go2_env):
    rng = np.random.default_rng(2)
    for _ in range(10):
        _, reward, _, _, info = go2_env.step(rng.normal(0, 1, (4, 12)))
        terms = [v for k, v in info.items() if k.startswith("reward/")]
        assert len(terms) == len(go2_env.rewards.active) + go2_env.cfg.rewards.only_positive
        np.testing.assert_allclose(reward, np.sum(terms, axis=0), rtol=0, atol=1e-12)


def test_standing_robot_stays_up_with_zero_actions():
    cfg = dataclasses.replace(SMALL, randomization=RandomizationConfig(enabled=False))
    env = WalkVecEnv(cfg)
    env.reset(seed=0)
    for _ in range(100):  # 2 s
        _, _, terminated, _, _ = env.step(np.zeros((4, 12)))
        assert not terminated.any()
    height = env.rig.base_pose()[:, 2]
    assert (height > 0.6 * env.robot.nominal_base_height).all()


def test_divergence_injection_terminates_only_that_env():
    env = WalkVecEnv(SMALL)
    env.reset(seed=0)
    env.step(np.zeros((4, 12)))
    env.rig.qvel()[2, :] = np.nan
    obs, reward, terminated, truncated, info = env.step(np.zeros((4, 12)))
    assert info["diverged"].tolist() == [False, False, True, False]
    assert terminated[2] and not truncated[2]
    assert reward[2] == 0.0
    assert not info["fell"][2]
    assert info["_final_obs"][2] and info["_episode"][2]
    for group in obs.values():
        assert np.isfinite(group).all()
    # the diverged env restarted from a clean state, the others kept going
    assert env.episode_step.tolist() == [2, 2, 0, 2]
    assert np.isfinite(env.rig.qvel()).all()
    assert env.diverged_total == 1
    _, _, terminated, _, info = env.step(np.zeros((4, 12)))
    assert not info["diverged"].any()


def test_huge_velocity_is_caught_as_divergence():
    env = WalkVecEnv(SMALL)
    env.reset(seed=0)
    env.rig.qvel()[1, env.rig.dof_adr] = 1e9
    _, _, terminated, _, info = env.step(np.zeros((4, 12)))
    assert info["diverged"][1] and terminated[1]


def test_per_env_reset_leaves_others_untouched():
    env = WalkVecEnv(SMALL)
    env.reset(seed=0)
    rng = np.random.default_rng(3)
    for _ in range(10):
        env.step(rng.normal(0, 1, (4, 12)))
    before = env.rig.qpos().copy()
    steps_before = env.episode_step.copy()
    env._reset_envs(np.array([1]))
    after = env.rig.qpos()
    np.testing.assert_array_equal(after[[0, 2, 3]], before[[0, 2, 3]])
    assert not np.array_equal(after[1], before[1])
    assert env.episode_step[1] == 0 and (env.episode_step[[0, 2, 3]] == steps_before[[0, 2, 3]]).all()


def test_time_limit_truncates_and_autoresets():
    env = WalkVecEnv(dataclasses.replace(SMALL, episode_length_s=0.1))  # 5 policy steps
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(np.zeros((4, 12)))
    assert truncated.all() and not terminated.any()
    assert info["episode_length"].tolist() == [5, 5, 5, 5]
    assert set(info["final_obs"]) == {"policy", "privileged"}
    assert (env.episode_step == 0).all()


def test_without_autoreset_a_finished_env_must_be_reset():
    env = WalkVecEnv(dataclasses.replace(SMALL, episode_length_s=0.04), autoreset=False)
    env.reset(seed=0)
    env.step(np.zeros((4, 12)))
    _, _, _, truncated, _ = env.step(np.zeros((4, 12)))
    assert truncated.all()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((4, 12)))
    env.reset()
    env.step(np.zeros((4, 12)))


def test_same_seed_same_rollout():
    def run():
        env = WalkVecEnv(SMALL)
        obs, _ = env.reset(seed=7)
        for _ in range(5):
            obs, *_ = env.step(np.full((4, 12), 0.3))
        return obs["policy"]

    np.testing.assert_array_equal(run(), run())


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(min_value=-10.0, max_value=10.0, width=32),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=hnp.arrays(np.float32, (4, 12), elements=finite_or_not))
def test_bad_actions_are_clipped_or_flagged_never_corrupting(go2_env, action):
    env = go2_env
    expected_flags = ~np.isfinite(action).all(axis=1)
    obs, reward, _, _, info = env.step(action)
    np.testing.assert_array_equal(info["nonfinite_action"], expected_flags)
    assert not info["diverged"].any()
    assert np.isfinite(env.rig.qpos()).all() and np.isfinite(env.rig.qvel()).all()
    assert np.isfinite(reward).all()
    # stored actions (fed back as observations) are finite and within the clip range
    assert np.isfinite(env.action).all() and (np.abs(env.action) <= env.cfg.action_clip).all()
    pd_targets = env.rig._ctrl[:, env.rig.pd_ids]
    assert (np.abs(pd_targets - env.default_pose) <= env.robot.action_scale * env.cfg.action_clip + 1e-9).all()


def test_saved_state_continues_bit_for_bit():
    cfg = dataclasses.replace(SMALL, episode_length_s=0.3)
    rng = np.random.default_rng(5)
    actions = rng.normal(0, 1, (30, 4, 12))
    env = WalkVecEnv(cfg)
    env.reset(seed=1)
    for a in actions[:10]:
        env.step(a)
    arrays, meta = env.get_state()
    reference = [env.step(a) for a in actions[10:]]

    restored = WalkVecEnv(cfg)  # a fresh process would build the env the same way
    restored.reset(seed=99)
    restored.set_state(arrays, meta)
    for (obs, reward, term, trunc, _), action in zip(reference, actions[10:]):
        obs2, reward2, term2, trunc2, _ = restored.step(action)
        np.testing.assert_array_equal(reward2, reward)
        np.testing.assert_array_equal(term2, term)
        np.testing.assert_array_equal(trunc2, trunc)
        for key in obs:
            np.testing.assert_array_equal(obs2[key], obs[key])


def test_diagonal_pairs_from_leg_names():
    from ogi.envs.walk import gait_pairs

    np.testing.assert_array_equal(gait_pairs(("FR_foot", "FL_foot", "RR_foot", "RL_foot")), [[0, 3], [1, 2]])
    np.testing.assert_array_equal(gait_pairs(("RL_foot", "FR_foot", "RR_foot", "FL_foot")), [[1, 0], [3, 2]])
    np.testing.assert_array_equal(gait_pairs(("left_foot", "right_foot")), [[0, 0], [1, 1]])
    assert gait_pairs(("a", "b", "c")).shape == (0, 2)


def test_set_commands_reaches_the_observation_and_rejects_bad_input():
    env = WalkVecEnv(WalkConfig(num_envs=2))
    env.reset(seed=0)
    command = np.array([[0.5, -0.2, 0.3], [-1.0, 0.0, 0.0]])
    obs = env.set_commands(command)
    from ogi.envs.observations import COMMAND_SCALE

    seen = obs["policy"][:, env.policy_layout.slices()["command"]]
    np.testing.assert_allclose(seen, command * COMMAND_SCALE, atol=1e-6)
    with pytest.raises(ValueError, match="finite"):
        env.set_commands(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="shape"):
        env.set_commands(np.zeros((3, 3)))


def test_solver_settings_reach_the_model():
    env = WalkVecEnv(WalkConfig(num_envs=1, sim=SimConfig(sim_dt_s=0.004, solver_iterations=1, ls_iterations=5)))
    assert (env.model.opt.iterations, env.model.opt.ls_iterations) == (1, 5)
    assert env.model.opt.timestep == pytest.approx(0.004)


def test_dropping_the_unread_imu_sensors_leaves_trajectories_bit_identical():
    from mujoco import batch as mjbatch

    from ogi.envs.rig import UNREAD_SENSORS, Rig
    from ogi.envs.scene import build_scene_model
    from ogi.robots import get_robot

    robot = get_robot("go2")
    sim = SimConfig(sim_dt_s=0.004, nthread=1)
    full = build_scene_model(robot, sim)
    rig = Rig(robot, sim, randomize=False)
    assert all(rig.model.sensor(name) for name in ("FR_foot_touch", "base_contact"))
    assert not any(name in [rig.model.sensor(i).name for i in range(rig.model.nsensor)] for name in UNREAD_SENSORS)
    qpos = []
    for model in (full, rig.model):
        batch = mjbatch.Batch(model, 2, nthread=1)
        batch.reset(None, keyframe=model.key("stand").id)
        batch.bind("ctrl")[:] = np.linspace(-0.3, 0.3, model.nu)
        batch.step(nstep=200)
        qpos.append(batch.bind("qpos").copy())
    np.testing.assert_array_equal(qpos[0], qpos[1])


def test_the_gait_clock_is_observed_and_asks_each_foot_in_turn():
    from ogi.envs.config import GaitConfig

    cfg = WalkConfig(robot="biped", num_envs=2, gait=GaitConfig(enabled=True, period_s=0.8, stance_fraction=0.55))
    env = WalkVecEnv(cfg)
    obs, _ = env.reset(seed=0)
    assert env.policy_layout.names[-1] == "gait_phase"
    np.testing.assert_allclose(obs["policy"][:, -2:], [[0.0, 1.0]] * 2, atol=1e-6)  # phase 0 at reset
    env.set_commands(np.array([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    for _ in range(10):  # 0.2 s: a quarter of the cycle
        obs, *_ = env.step(np.zeros((2, 12)))
    np.testing.assert_allclose(obs["policy"][:, -2:], [[1.0, 0.0]] * 2, atol=1e-5)
    # left foot at phase 0.25 (stance), right at 0.75 (swing); a standing command keeps both down
    np.testing.assert_array_equal(env.gait_stance(), [[True, False], [True, True]])
    # the swinging right foot, at phase 0.75, is 0.2 / 0.45 of the way through its swing's arch
    arch = 0.08 * np.sin(np.pi * 0.2 / 0.45)
    np.testing.assert_allclose(env.gait_foot_height(), [[0.0, arch], [0.0, 0.0]], atol=1e-6)
    for _ in range(20):  # half a cycle on, the feet have swapped
        env.step(np.zeros((2, 12)))
    np.testing.assert_array_equal(env.gait_stance()[0], [False, True])
    np.testing.assert_allclose(env.gait_foot_height()[0], [arch, 0.0], atol=1e-6)


def test_the_gait_clock_is_refused_for_a_quadruped():
    from ogi.envs.config import GaitConfig

    with pytest.raises(ValueError, match="two-footed robots; 'go2' has 4 feet"):
        WalkVecEnv(WalkConfig(num_envs=1, gait=GaitConfig(enabled=True)))


def test_held_joints_stay_at_the_default_pose_whatever_the_policy_says():
    cfg = WalkConfig(robot="humanoid", num_envs=1, held_joints=("shoulder", "elbow"))
    env = WalkVecEnv(cfg)
    env.reset(seed=0)
    seen = []
    set_targets = env.rig.set_targets
    env.rig.set_targets = lambda q_des, tau_ff: (seen.append(q_des.copy()), set_targets(q_des, tau_ff))
    env.step(np.ones((1, 23)))
    names = env.robot.joint_names
    held = [i for i, j in enumerate(names) if "shoulder" in j or "elbow" in j]
    assert len(held) == 8 and not env.action[0, held].any() and env.action[0, 0] == 1.0
    np.testing.assert_allclose(seen[0][0, held], np.asarray(env.robot.default_pose)[held])
    with pytest.raises(ValueError, match=r"held_joints \['wrist'\] name none"):
        WalkVecEnv(WalkConfig(robot="humanoid", num_envs=1, held_joints=("wrist",)))


def test_held_joints_in_motion_go_where_the_env_draws_whatever_the_policy_says():
    from ogi.validation import ConfigError

    cfg = WalkConfig(
        robot="humanoid",
        num_envs=3,
        held_joints=("shoulder", "elbow"),
        held_motion=0.5,
        held_motion_period_s=(0.1, 0.3),
    )
    names = WalkVecEnv(WalkConfig(robot="humanoid", num_envs=1)).robot.joint_names
    held = [i for i, j in enumerate(names) if "shoulder" in j or "elbow" in j]

    def run(policy_value: float) -> np.ndarray:
        env = WalkVecEnv(cfg)
        env.reset(seed=4)
        seen = []
        for _ in range(25):
            env.step(np.full((3, 23), policy_value))
            seen.append(env.action[:, held].copy())
        return np.stack(seen)

    moved = run(1.0)
    np.testing.assert_array_equal(run(-1.0), moved)  # the policy's outputs for held joints count for nothing
    assert np.abs(moved).max() > 0.3  # they move (the still version reads 0 throughout)
    assert (np.abs(np.diff(moved, axis=0)) <= 2 * 4.0 / 50 + 1e-9).all()  # smooth: at most the action range per s
    env = WalkVecEnv(cfg)
    limits = np.asarray(env.robot.joint_limits)[held]
    default = np.asarray(env.robot.default_pose)[held]
    targets = default + env.robot.action_scale * moved
    assert (targets >= default + 0.5 * (limits[:, 0] - default) - 1e-9).all()
    assert (targets <= default + 0.5 * (limits[:, 1] - default) + 1e-9).all()
    with pytest.raises(ConfigError, match="held_joints names none"):
        WalkVecEnv(WalkConfig(robot="humanoid", num_envs=1, held_motion=0.5))
    with pytest.raises(ConfigError, match="held_motion"):
        WalkConfig(robot="humanoid", held_joints=("shoulder",), held_motion=1.5)


def test_a_toml_table_may_set_held_motion_alone_over_a_preset_that_holds_joints(tmp_path):
    from ogi.training.config import load_train_config, preset

    path = tmp_path / "arms.toml"
    path.write_text("[env]\nheld_motion = 0.5\n")
    cfg = load_train_config(path, preset("humanoid"))
    assert cfg.env.held_motion == 0.5 and "shoulder" in cfg.env.held_joints

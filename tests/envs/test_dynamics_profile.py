"""A calibrated robot in the walk env (`WalkConfig.dynamics`, a `DynamicsProfile`): joint dynamics and base mass in
the model, the randomized motor strength centred on the profile's, and the command delay (`sim.command_delay_s`)."""

import dataclasses
import hashlib

import mujoco
import numpy as np
import pytest

from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.config import DynamicsConfig, NoiseConfig, RandomizationConfig, SimConfig, load_walk_config
from ogi.robots.dynamics import ProfileError
from ogi.validation import ConfigError

SIM = SimConfig(nthread=1, sim_dt_s=0.004)  # 5 physics steps per 20 ms policy step
SMALL = WalkConfig(num_envs=2, sim=SIM, noise=NoiseConfig(enabled=False))
DELAY_SUBSTEPS = 2
DELAYED = dataclasses.replace(SMALL, sim=dataclasses.replace(SIM, command_delay_s=DELAY_SUBSTEPS * SIM.sim_dt_s))

PROFILE = """\
[joints.hip]
armature = 0.02
damping = 0.3
frictionloss = 0.4
[joints.calf]
damping = 0.5
[motors]
strength = 0.8
delay_ms = 8.0
speed_knee_rad_s = 15.0
max_speed_rad_s = 30.0
[body]
base_mass_offset_kg = 1.5
"""


@pytest.fixture
def profile_path(tmp_path):
    path = tmp_path / "calibrated.toml"
    path.write_text(PROFILE)
    return path


def run(env: WalkVecEnv, actions: np.ndarray) -> list[np.ndarray]:
    """Every simulation's integration state after reset and after each step of `actions` (steps, n, j)."""
    env.reset(seed=3)
    states = [env.batch.state.copy()]
    for action in actions:
        env.step(action)
        states.append(env.batch.state.copy())
    return states


def hand_step(env: WalkVecEnv, state: np.ndarray, phases: list[tuple[np.ndarray | None, int]]) -> np.ndarray:
    """(n, nq) qpos after stepping each simulation from `state` with plain `mj_step`: for each (ctrl, steps) phase,
    ctrl (n, nu) written first (None: the state's own) then `steps` physics steps."""
    qpos = []
    for sim in range(env.num_envs):
        model = env.batch.get_model(sim)
        data = mujoco.MjData(model)
        mujoco.mj_setState(model, data, np.ascontiguousarray(state[sim]), mujoco.mjtState.mjSTATE_INTEGRATION)
        for ctrl, steps in phases:
            if ctrl is not None:
                data.ctrl[:] = ctrl[sim]
            mujoco.mj_step(model, data, nstep=steps)
        qpos.append(data.qpos.copy())
    return np.array(qpos)


# ---- (a) no delay ----------------------------------------------------------------------------------------------
def test_a_zero_delay_is_bit_identical_to_no_delay_field():
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 2, 12))
    explicit = dataclasses.replace(SMALL, sim=dataclasses.replace(SIM, command_delay_s=0.0))
    below_half_a_step = dataclasses.replace(SMALL, sim=dataclasses.replace(SIM, command_delay_s=0.4 * SIM.sim_dt_s))
    assert below_half_a_step.sim.delay_substeps == 0
    reference = run(WalkVecEnv(SMALL), actions)
    for cfg in (explicit, below_half_a_step):
        for ours, theirs in zip(run(WalkVecEnv(cfg), actions), reference):
            assert ours.tobytes() == theirs.tobytes()


def test_a_without_delay_the_new_targets_act_from_the_first_physics_step():
    env = WalkVecEnv(SMALL)
    env.reset(seed=1)
    env.step(np.full((2, 12), 0.5))
    before = env.batch.state.copy()
    env.step(np.full((2, 12), -0.5))
    ctrl = env.batch.bind("ctrl").copy()
    expected = hand_step(env, before, [(ctrl, SIM.substeps)])
    assert env.rig.qpos().tobytes() == expected.tobytes()


# ---- (b) a delay of k physics steps ----------------------------------------------------------------------------
def test_b_the_previous_targets_act_for_the_delay_then_the_new_ones():
    assert DELAYED.sim.delay_substeps == DELAY_SUBSTEPS
    env = WalkVecEnv(DELAYED)
    env.reset(seed=1)
    env.step(np.full((2, 12), 0.5))
    before = env.batch.state.copy()
    previous = env.batch.bind("ctrl").copy()
    action = np.full((2, 12), -0.5)
    env.step(action)
    ctrl = env.batch.bind("ctrl").copy()
    # the actuators hold this step's targets once it ends, and held the last step's before
    np.testing.assert_array_equal(ctrl[:, env.rig.pd_ids], env.default_pose + env.robot.action_scale * action)
    np.testing.assert_array_equal(
        previous[:, env.rig.pd_ids], env.default_pose + env.robot.action_scale * np.full((2, 12), 0.5)
    )
    delayed = hand_step(env, before, [(None, DELAY_SUBSTEPS), (ctrl, SIM.substeps - DELAY_SUBSTEPS)])
    undelayed = hand_step(env, before, [(ctrl, SIM.substeps)])
    assert env.rig.qpos().tobytes() == delayed.tobytes()
    assert np.abs(env.rig.qpos() - undelayed).max() > 1e-6


def test_b_delay_changes_the_motion_from_the_first_step():
    actions = np.random.default_rng(0).uniform(-1, 1, (3, 2, 12))
    plain, delayed = WalkVecEnv(SMALL), WalkVecEnv(DELAYED)
    plain.reset(seed=3)
    delayed.reset(seed=3)
    np.testing.assert_array_equal(plain.rig.qpos(), delayed.rig.qpos())
    for action in actions:
        plain.step(action)
        delayed.step(action)
        assert np.abs(plain.rig.qpos() - delayed.rig.qpos()).max() > 1e-6


def test_b_a_reset_simulation_starts_from_its_own_targets_not_the_ended_episodes():
    env = WalkVecEnv(DELAYED)
    env.reset(seed=2)
    for _ in range(5):
        env.step(np.full((2, 12), 1.0))
    ctrl = env.batch.bind("ctrl")
    held = ctrl[1].copy()
    env.reset_at(np.array([0]), np.array([[0.0, 0.0, 0.3]]))
    np.testing.assert_array_equal(ctrl[0, env.rig.pd_ids], env.default_pose)  # a zero action's targets
    np.testing.assert_array_equal(ctrl[0, env.rig.ff_ids], env.tau_ff[0])
    np.testing.assert_array_equal(ctrl[1], held)  # the other simulation's previous targets carry on
    # a fresh start is exactly a start with no history: the same as a new env reset with the same seed
    fresh = WalkVecEnv(DELAYED)
    env.reset(seed=4)
    fresh.reset(seed=4)
    action = np.full((2, 12), -0.7)
    env.step(action)
    fresh.step(action)
    assert env.batch.state.tobytes() == fresh.batch.state.tobytes()


def test_b_a_delay_of_almost_a_whole_step_holds_the_new_targets_for_the_next():
    sim = dataclasses.replace(SIM, command_delay_s=0.019)  # rounds to all 5 physics steps
    assert sim.delay_substeps == sim.substeps
    env = WalkVecEnv(dataclasses.replace(SMALL, sim=sim))
    env.reset(seed=1)
    before = env.batch.state.copy()
    action = np.full((2, 12), 0.5)
    env.step(action)
    np.testing.assert_array_equal(hand_step(env, before, [(None, sim.substeps)]), env.rig.qpos())
    np.testing.assert_array_equal(
        env.batch.bind("ctrl")[:, env.rig.pd_ids], env.default_pose + env.robot.action_scale * action
    )


# ---- (c) a profile in the model and the randomization --------------------------------------------------------------
def test_c_profile_dynamics_and_base_mass_land_in_the_model(profile_path):
    nominal = WalkVecEnv(SMALL)
    env = WalkVecEnv(dataclasses.replace(SMALL, dynamics=DynamicsConfig(profile=str(profile_path))))
    dofs = env.rig.dof_adr
    names = env.robot.joint_names
    for name, hip, calf in (("armature", 0.02, None), ("damping", 0.3, 0.5), ("frictionloss", 0.4, None)):
        values, nominal_values = getattr(env.model, f"dof_{name}")[dofs], getattr(nominal.model, f"dof_{name}")[dofs]
        for i, joint in enumerate(names):
            expected = hip if "hip" in joint else calf if "calf" in joint and calf is not None else nominal_values[i]
            assert values[i] == expected, (name, joint)
    base = env.rig.base_id
    assert env.model.body_mass[base] == pytest.approx(nominal.model.body_mass[base] + 1.5)
    assert env.rig.nominal_robot_mass == pytest.approx(nominal.rig.nominal_robot_mass + 1.5)
    # randomized added mass comes on top of the offset
    env.reset(seed=0)
    added = env.batch.expanded("body_mass")[:, base] - env.model.body_mass[base]
    np.testing.assert_allclose(added, env.domain.added_base_mass_kg, rtol=0, atol=1e-12)
    assert env.sim.command_delay_s == pytest.approx(0.008) and env.sim.delay_substeps == 2


def test_c_strength_scales_the_randomized_interval(profile_path):
    cfg = dataclasses.replace(SMALL, num_envs=64, dynamics=DynamicsConfig(profile=str(profile_path)))
    env = WalkVecEnv(cfg)
    low, high = cfg.randomization.motor_strength
    assert env.randomization.motor_strength == pytest.approx((0.8 * low, 0.8 * high))
    assert env.cfg == cfg  # the config stays as given
    env.reset(seed=0)
    strength = env.domain.motor_strength
    assert (strength >= 0.8 * low).all() and (strength <= 0.8 * high).all() and strength.max() < low
    kp, kd = env.rig.pd_gains(np.arange(64))
    np.testing.assert_allclose(kp, env.robot.kp * (strength * env.domain.kp_scale)[:, None], rtol=1e-12)
    np.testing.assert_allclose(kd, env.robot.kd * (strength * env.domain.kd_scale)[:, None], rtol=1e-12)


def test_c_without_randomization_every_simulation_has_the_profiles_strength(profile_path):
    off = RandomizationConfig(enabled=False)
    nominal = WalkVecEnv(dataclasses.replace(SMALL, randomization=off))
    env = WalkVecEnv(dataclasses.replace(SMALL, randomization=off, dynamics=DynamicsConfig(profile=str(profile_path))))
    nominal.reset(seed=0)
    env.reset(seed=0)
    kp, kd = env.rig.pd_gains(np.arange(2))
    np.testing.assert_allclose(kp, 0.8 * np.broadcast_to(env.robot.kp, kp.shape), rtol=1e-12)
    np.testing.assert_allclose(kd, 0.8 * np.broadcast_to(env.robot.kd, kd.shape), rtol=1e-12)
    limit = env.model.jnt_actfrcrange[env.rig.joint_ids, 1]
    np.testing.assert_allclose(limit, 0.8 * np.asarray(env.robot.torque_limit), rtol=1e-12)
    np.testing.assert_array_equal(env.domain.motor_strength, [0.8, 0.8])
    # the gravity feed-forward: 0.8 of what the (heavier) robot needs
    np.testing.assert_allclose(env.tau_ff, 0.8 * env.rig.gravity_torque(), rtol=1e-12)


def test_c_from_file_records_the_text_and_hash_and_the_env_uses_the_recorded_text(profile_path):
    recorded = DynamicsConfig.from_file(profile_path)
    assert recorded.toml == PROFILE
    assert recorded.sha256 == hashlib.sha256(profile_path.read_bytes()).hexdigest()
    profile_path.unlink()  # a run keeps its robot whatever happens to the file
    env = WalkVecEnv(dataclasses.replace(SMALL, dynamics=recorded))
    assert env.dynamics.strength == 0.8


def test_c_walk_config_toml_names_the_profile(tmp_path, profile_path):
    config = tmp_path / "walk.toml"
    config.write_text(f'num_envs = 2\n[sim]\nnthread = 1\n[dynamics]\nprofile = "{profile_path}"\n')
    cfg = load_walk_config(config)
    assert cfg.dynamics.profile == str(profile_path)
    assert WalkVecEnv(cfg).dynamics.base_mass_offset_kg == 1.5


# ---- (d) clear errors --------------------------------------------------------------------------------------------
def test_d_a_delay_of_a_control_period_or_more_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"sim.command_delay_s = 0.02 must be below the control period"):
        SimConfig(command_delay_s=0.02)
    with pytest.raises(ConfigError, match="sim.command_delay_s"):
        SimConfig(command_delay_s=-0.001)
    config = tmp_path / "walk.toml"
    config.write_text("[sim]\ncommand_delay_s = 0.05\n")
    with pytest.raises(ConfigError, match=r"walk.toml: sim.command_delay_s = 0.05 must be below"):
        load_walk_config(config)
    slow = tmp_path / "slow.toml"
    slow.write_text("[motors]\ndelay_ms = 20.0\n")
    with pytest.raises(ConfigError, match=r"slow.toml: motors.delay_ms = 20.0 must be below the control period"):
        WalkVecEnv(dataclasses.replace(SMALL, dynamics=DynamicsConfig(profile=str(slow))))


def test_d_a_delay_set_twice_is_an_error(profile_path):
    cfg = dataclasses.replace(DELAYED, dynamics=DynamicsConfig(profile=str(profile_path)))
    with pytest.raises(ConfigError, match="both set the command delay"):
        WalkVecEnv(cfg)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[motors]\nstrenght = 0.9\n", r"bad.toml: motors: unknown key\(s\) \['strenght'\]"),
        ("[motors]\nstrength = 9.0\n", r"bad.toml: motors.strength = 9.0 must be in"),
        ("[joints.hip]\ndamping = 'high'\n", r"bad.toml: joints.hip.damping = 'high' must be a number"),
        ("[joints.elbow]\ndamping = 0.1\n", r"bad.toml: joint class\(es\) \['elbow'\] match no joint of robot 'go2'"),
        ("[motors\nstrength = 1\n", r"bad.toml: not valid TOML"),
    ],
)
def test_d_a_malformed_profile_names_the_file_and_the_field(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ProfileError, match=message):
        WalkVecEnv(dataclasses.replace(SMALL, dynamics=DynamicsConfig(profile=str(bad))))
    if "elbow" not in text:  # whether a class fits is the robot's question, asked when the env is built
        with pytest.raises(ProfileError, match=message):
            DynamicsConfig.from_file(bad)


def test_d_a_missing_or_changed_profile_is_an_error(tmp_path, profile_path):
    with pytest.raises(ProfileError, match="nothing.toml: no such dynamics profile"):
        DynamicsConfig.from_file(tmp_path / "nothing.toml")
    pinned = DynamicsConfig(profile=str(profile_path), sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ProfileError, match="the profile changed"):
        WalkVecEnv(dataclasses.replace(SMALL, dynamics=pinned))
    with pytest.raises(ConfigError, match="dynamics.sha256"):
        DynamicsConfig(profile=str(profile_path), sha256="abc")
    with pytest.raises(ConfigError, match="set dynamics.profile"):
        DynamicsConfig(toml=PROFILE)


def test_recording_a_delayed_env_is_refused_rather_than_unreplayable(tmp_path):
    import dataclasses

    from ogi.envs import WalkConfig, WalkVecEnv
    from ogi.replay import Recorder

    cfg = WalkConfig()
    cfg = dataclasses.replace(cfg, num_envs=2, sim=dataclasses.replace(cfg.sim, command_delay_s=0.004))
    env = WalkVecEnv(cfg)
    with pytest.raises(ValueError, match="cannot record an env with a command delay"):
        Recorder(env, tmp_path / "r.mcap")


def test_the_1khz_judge_keeps_the_robots_command_delay():
    import dataclasses

    from ogi.envs import WalkConfig
    from ogi.training.walk_eval import full_fidelity

    cfg = WalkConfig()
    cfg = dataclasses.replace(cfg, sim=dataclasses.replace(cfg.sim, command_delay_s=0.006))
    judged = full_fidelity(cfg)
    assert judged.sim.sim_dt_s == 0.001 and judged.sim.command_delay_s == 0.006 and judged.sim.delay_substeps == 6

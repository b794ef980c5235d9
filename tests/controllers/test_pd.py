import mujoco
import numpy as np
import pytest

from ogi.controllers import gravity_compensation_torque, pd_torque, subtree_mask
from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.config import SimConfig
from ogi.envs.scene import build_scene_spec
from ogi.robots import actuator_names, get_robot, robot_names


def test_pd_torque_hand_computed():
    # kp (q_des - q) + kd (qd_des - qd) + tau_ff = 40 (0.5 - 0.2) + 1 (0 - 2) + 0.5 = 10.5
    assert pd_torque(0.2, 2.0, 0.5, 40.0, 1.0, 0.5, 23.7) == pytest.approx(10.5)
    # 40 (1.0 - 0) - 0 + 0 = 40 -> clipped to 23.7
    assert pd_torque(0.0, 0.0, 1.0, 40.0, 1.0, 0.0, 23.7) == pytest.approx(23.7)
    # negative side: 40 (-1 - 0) - 1 (3) - 5 = -48 -> -45.43
    assert pd_torque(0.0, 3.0, -1.0, 40.0, 1.0, -5.0, 45.43) == pytest.approx(-45.43)
    # velocity target: 10 (0) + 2 (1.5 - 0.5) + 0 = 2
    assert pd_torque(0.3, 0.5, 0.3, 10.0, 2.0, 0.0, 100.0, qd_des=1.5) == pytest.approx(2.0)


def test_pd_torque_broadcasts_over_batch():
    q = np.zeros((5, 3))
    tau = pd_torque(q, q, np.ones((5, 3)), np.array([1.0, 2.0, 3.0]), 0.0, 0.0, np.array([10.0, 1.5, 10.0]))
    np.testing.assert_allclose(tau, np.tile([1.0, 1.5, 3.0], (5, 1)))


def _random_state(model, rng, robot):
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("stand").id)
    for name, (lo, hi) in zip(robot.joint_names, robot.joint_limits):
        data.qpos[model.jnt_qposadr[model.joint(name).id]] = rng.uniform(lo, hi)
    data.qvel[:] = rng.normal(0.0, 3.0, model.nv)
    return data


@pytest.mark.parametrize("robot_name", robot_names())
def test_native_actuators_equal_pure_pd(robot_name):
    robot = get_robot(robot_name)
    model = build_scene_spec(robot, SimConfig()).compile()
    pd_ids = [model.actuator(a).id for a in actuator_names(robot)[0]]
    ff_ids = [model.actuator(a).id for a in actuator_names(robot)[1]]
    dofs = [model.jnt_dofadr[model.joint(j).id] for j in robot.joint_names]
    qadr = [model.jnt_qposadr[model.joint(j).id] for j in robot.joint_names]
    rng = np.random.default_rng(0)
    for _ in range(50):
        data = _random_state(model, rng, robot)
        q_des = np.array([rng.uniform(lo, hi) for lo, hi in robot.joint_limits])
        tau_ff = rng.normal(0.0, 10.0, robot.num_joints)
        data.ctrl[pd_ids] = q_des
        data.ctrl[ff_ids] = tau_ff
        mujoco.mj_forward(model, data)
        expected = pd_torque(data.qpos[qadr], data.qvel[dofs], q_des, robot.kp, robot.kd, tau_ff, robot.torque_limit)
        np.testing.assert_allclose(data.qfrc_actuator[dofs], expected, rtol=0, atol=1e-9)


def test_batched_randomized_gains_equal_pure_pd():
    """Per-simulation motor strength and gain scales reach MuJoCo's actuators as the pure law says."""
    env = WalkVecEnv(WalkConfig(num_envs=8, sim=SimConfig(nthread=1)))
    env.reset(seed=3)
    rig, dom = env.rig, env.domain
    assert np.ptp(dom.motor_strength) > 0  # randomization really varies across sims
    rng = np.random.default_rng(1)
    q_des = env.default_pose + rng.normal(0, 0.3, (8, 12))
    strength = dom.motor_strength[:, None]
    tau_ff = rig.gravity_torque() * strength
    rig.set_targets(q_des, tau_ff)
    env.batch.forward()
    kp = rig.kp * strength * dom.kp_scale[:, None]
    kd = rig.kd * strength * dom.kd_scale[:, None]
    expected = pd_torque(rig.joint_pos(), rig.joint_vel(), q_des, kp, kd, tau_ff, rig.torque_limit * strength)
    np.testing.assert_allclose(rig.joint_torque(), expected, rtol=0, atol=1e-9)


def test_gravity_feedforward_matches_mujoco_gravcomp():
    robot = get_robot("go2")
    spec = build_scene_spec(robot, SimConfig())
    for body in spec.bodies:
        if body.name not in ("world", robot.base_body):
            body.gravcomp = 1.0
    model = spec.compile()
    joint_ids = np.array([model.joint(j).id for j in robot.joint_names])
    mask = subtree_mask(model, joint_ids)
    dofs = model.jnt_dofadr[joint_ids]
    rng = np.random.default_rng(2)
    for _ in range(20):
        data = _random_state(model, rng, robot)
        quat = rng.normal(size=4)
        data.qpos[3:7] = quat / np.linalg.norm(quat)
        mujoco.mj_forward(model, data)
        ours = gravity_compensation_torque(
            data.xaxis[joint_ids][None],
            data.xanchor[joint_ids][None],
            data.xipos[None],
            model.body_mass,
            mask.astype(float),
            model.opt.gravity,
        )[0]
        np.testing.assert_allclose(ours, data.qfrc_gravcomp[dofs], rtol=1e-9, atol=1e-9)

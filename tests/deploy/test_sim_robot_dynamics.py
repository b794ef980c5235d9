"""The simulated robot as hardware that differs from its model: hung start, motor strength, command delay, noise."""

import numpy as np
import pytest

from ogi.deploy.bridge import MotorCommand
from ogi.deploy.sim_robot import SimRobot, SimRobotConfig
from ogi.robots import get_robot
from ogi.robots.dynamics import nominal_profile


@pytest.fixture(scope="module")
def go2():
    return get_robot("go2")


def _hold(robot, offset=0.3):
    z = np.zeros(robot.num_joints)
    return MotorCommand(
        q=np.array(robot.default_pose) + offset, dq=z, kp=np.array(robot.kp), kd=np.array(robot.kd), tau=z
    )


def test_hung_robot_keeps_its_base_still_and_its_feet_off_the_ground(go2):
    sim = SimRobot(go2, SimRobotConfig(start="hung"))
    start = sim.base_position()
    sim.apply(_hold(go2))
    sim.step(500)
    assert np.allclose(sim.base_position(), start)
    assert start[2] > go2.nominal_base_height + 0.3
    assert np.all(sim.latest_state().foot_force == 0.0)
    assert np.allclose(sim.latest_state().q, np.array(go2.default_pose) + 0.3, atol=0.1)


def test_strength_scales_the_torque_and_delay_holds_the_command_back(go2):
    nominal = SimRobot(go2, SimRobotConfig(start="hung"))
    weak = SimRobot(go2, SimRobotConfig(start="hung", dynamics=nominal_profile(go2).with_values(strength=0.5)))
    late = SimRobot(go2, SimRobotConfig(start="hung", dynamics=nominal_profile(go2).with_values(delay_ms=5.0)))
    for sim in (nominal, weak, late):
        sim.apply(_hold(go2))
        sim.step(1)
    first = nominal.latest_state().tau_est
    assert np.abs(first).max() > 5.0
    assert np.allclose(weak.latest_state().tau_est, 0.5 * first, rtol=1e-6, atol=1e-9)
    assert np.allclose(late.latest_state().tau_est, 0.0)  # the zero-torque command still acts
    late.step(4)
    assert np.allclose(late.latest_state().tau_est, 0.0)
    late.step(1)  # five ticks after it was sent: from the same state as the nominal robot's first tick
    assert np.allclose(late.latest_state().tau_est, first, rtol=0.05)  # the joints sagged a little meanwhile


def test_joint_noise_is_on_what_is_published_only(go2):
    clean = SimRobot(go2, SimRobotConfig(start="hung"))
    noisy = SimRobot(go2, SimRobotConfig(start="hung", joint_noise=(0.01, 0.1)))
    assert not np.allclose(clean.latest_state().q, noisy.latest_state().q)
    assert np.allclose(clean.data.qpos, noisy.data.qpos)
    with pytest.raises(ValueError, match="joint_noise"):
        SimRobotConfig(joint_noise=(-1.0, 0.0))

"""The sequence filter every bridge uses, and the in-process simulated robot's motor law."""

import numpy as np

from ogi.controllers.pd import pd_torque
from ogi.deploy.bridge import LinkStats, MotorCommand, SequenceFilter, SimBridge
from ogi.deploy.sim_robot import SimRobot, SimRobotConfig
from ogi.robots import get_robot


def test_sequence_filter_drops_duplicates_and_old_messages_but_follows_a_wrap():
    stats = LinkStats()
    accept = SequenceFilter(stats).accept
    assert [accept(s) for s in (5, 6, 6, 4, 9)] == [True, True, False, False, True]
    assert (stats.received, stats.dropped_duplicate, stats.dropped_reordered) == (3, 1, 1)
    wrapping = SequenceFilter(LinkStats())
    assert wrapping.accept(2**32 - 2) and wrapping.accept(2**32 - 1)
    assert wrapping.accept(0) and wrapping.accept(1)  # the 32-bit counter wrapped: still newer


def test_sim_robot_applies_the_motor_law_and_starts_lying():
    go2 = get_robot("go2")
    robot = SimRobot(go2, SimRobotConfig())
    assert robot.base_position()[2] < 0.12  # folded legs, base near the ground
    bridge = SimBridge(robot)
    first = bridge.latest_state()
    q_cmd = np.asarray(go2.default_pose)
    command = MotorCommand(q=q_cmd, dq=np.zeros(12), kp=np.asarray(go2.kp), kd=np.asarray(go2.kd), tau=np.full(12, 0.5))
    bridge.send(command)
    robot.step(1)
    state = bridge.latest_state()
    assert state.sequence == first.sequence + 1 and bridge.stats.received == 2
    # the torque of that step: tau + kp (q_cmd - q) + kd (0 - dq), clamped, from the state before it
    expected = pd_torque(first.q, first.dq, q_cmd, go2.kp, go2.kd, 0.5, go2.torque_limit)
    np.testing.assert_allclose(robot.data.ctrl[robot._ff_ids], expected)
    assert np.abs(expected).max() == max(go2.torque_limit)  # the folded calves ask for more than the limit
    robot.step(2000)  # two seconds holding the default pose: the robot stands up
    assert robot.base_position()[2] > 0.25

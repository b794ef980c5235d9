"""The DDS bridge on loopback: motor order, sequence numbers, CRC, and every kind of bad message dropped and counted."""

import itertools
import time

import numpy as np
import pytest
from cyclonedds._clayer import ddspy_write, ddspy_write_ts
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from ogi.deploy.bridge import MotorCommand, RobotState
from ogi.deploy.dds import DdsBridge, DdsRobotServer, participant
from ogi.deploy.messages import (
    HEAD,
    LEVEL_FLAG_LOW,
    LOWCMD_TOPIC,
    LOWSTATE_TOPIC,
    LowCmd_,
    LowState_,
    lowstate_layout,
    message_crc,
    struct_crc,
)
from ogi.robots import get_robot

# legs swapped pairwise: model joint i lives in SDK slot INDEX[i]
INDEX = [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]
_domains = itertools.count(60)


def _wait(predicate, timeout_s=5.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _state_payload(tick: int, q_sdk: np.ndarray, crc_delta: int = 0) -> bytes:
    layout = lowstate_layout()
    buffer = layout.new_buffer()
    layout.put(buffer, "head", HEAD)
    layout.put(buffer, "level_flag", LEVEL_FLAG_LOW)
    slots = np.zeros(20, np.float32)
    slots[:12] = q_sdk
    layout.put(buffer, "motor_state.q", slots)
    layout.put(buffer, "imu_state.quaternion", [1.0, 0.0, 0.0, 0.0])
    layout.put(buffer, "tick", tick)
    layout.put(buffer, "crc", (struct_crc(layout.c_bytes(buffer)) + crc_delta) & 0xFFFFFFFF)
    return buffer.tobytes()


@pytest.fixture
def state_link():
    domain = next(_domains)
    bridge = DdsBridge(INDEX, 12, domain_id=domain, max_age_s=0.5)
    dp = participant(domain)
    writer = DataWriter(dp, Topic(dp, LOWSTATE_TOPIC, LowState_))
    yield bridge, writer
    bridge.close()


def test_states_are_mapped_to_model_order_and_bad_ones_counted(state_link):
    bridge, writer = state_link
    q_sdk = np.arange(12, dtype=np.float32) / 10
    tick = itertools.count(1000)
    assert _wait(lambda: ddspy_write(writer._ref, _state_payload(next(tick), q_sdk)) or bridge.latest_state())
    time.sleep(0.3)  # let the writes still in flight land
    good = bridge.latest_state()
    np.testing.assert_allclose(good.q, q_sdk[INDEX], rtol=1e-6)
    np.testing.assert_allclose(good.quat_wxyz, [1, 0, 0, 0])
    last = good.sequence
    base = bridge.stats.as_dict()

    def send_and_wait(payload, counter, **kw):
        (ddspy_write_ts(writer._ref, payload, kw["ts"]) if "ts" in kw else ddspy_write(writer._ref, payload))
        assert _wait(lambda: bridge.stats.as_dict()[counter] == base[counter] + 1), counter
        base[counter] += 1

    send_and_wait(_state_payload(last, q_sdk), "dropped_duplicate")
    send_and_wait(_state_payload(last - 5, q_sdk), "dropped_reordered")
    send_and_wait(_state_payload(last + 100, q_sdk, crc_delta=1), "dropped_corrupt")
    flipped = bytearray(_state_payload(last + 101, q_sdk))
    flipped[40] ^= 0x10  # a bit flipped in flight; the CRC no longer matches
    send_and_wait(bytes(flipped), "dropped_corrupt")
    send_and_wait(_state_payload(last + 102, q_sdk), "dropped_stale", ts=time.time_ns() - 2_000_000_000)
    assert bridge.latest_state().sequence == last  # none of them replaced the good state
    send_and_wait(_state_payload(last + 103, q_sdk * 2), "received")
    np.testing.assert_allclose(bridge.latest_state().q, 2 * q_sdk[INDEX], rtol=1e-6)


class _StubRobot:
    def __init__(self):
        self.robot = get_robot("go2")
        self.applied: list[MotorCommand] = []

    def apply(self, command):
        self.applied.append(command)

    def on_state(self, state):
        pass


def test_commands_carry_sequence_and_crc_and_reach_the_robot_in_model_order():
    domain = next(_domains)
    stub = _StubRobot()
    server = DdsRobotServer(stub, INDEX, domain_id=domain, max_age_s=0.5)
    bridge = DdsBridge(INDEX, 12, domain_id=domain, max_age_s=0.5)
    dp = participant(domain)
    reference = DataReader(dp, Topic(dp, LOWCMD_TOPIC, LowCmd_))
    try:
        rng = np.random.default_rng(0)
        command = MotorCommand(*(rng.normal(size=12) for _ in range(5)))
        assert _wait(lambda: bridge.send(command) or stub.applied)
        for name in ("q", "dq", "kp", "kd", "tau"):
            np.testing.assert_allclose(getattr(stub.applied[-1], name), getattr(command, name), rtol=1e-6)
        (msg, *_) = reference.take(N=100)  # cyclonedds' own codec reads what our fast encoder wrote
        assert message_crc(msg) == msg.crc and msg.reserve >= 1
        assert tuple(msg.head) == HEAD and msg.level_flag == LEVEL_FLAG_LOW
        for i, slot in enumerate(INDEX):
            assert msg.motor_cmd[slot].q == pytest.approx(command.q[i], rel=1e-6)
            assert msg.motor_cmd[slot].mode == 1
        assert msg.motor_cmd[15].q == pytest.approx(2.146e9)  # unused motors hold the stop value
        assert server.stats.dropped_corrupt == 0
        # the robot publishes states; the bridge accepts each new tick once
        server.publish(
            RobotState(
                sequence=7,
                received_s=0.0,
                quat_wxyz=np.array([1.0, 0, 0, 0]),
                gyro_body=np.zeros(3),
                accel_body=np.zeros(3),
                q=command.q,
                dq=command.dq,
                tau_est=command.tau,
            )
        )
        assert _wait(lambda: bridge.latest_state() is not None)
        np.testing.assert_allclose(bridge.latest_state().q, command.q, rtol=1e-6)
        # a command computed from tick 7 names it in sn[0]: the robot side times state -> command
        answer = MotorCommand(command.q, command.dq, command.kp, command.kd, command.tau, source_sequence=7)
        assert _wait(lambda: bridge.send(answer) or server.latency_s)
        assert len(server.latency_s) == 1 and 0.0 < server.latency_s[0] < 5.0
        assert stub.applied[-1].source_sequence == 7
    finally:
        server.close()
        bridge.close()


def test_an_unmapped_robot_is_refused():
    with pytest.raises(ValueError, match="no SDK motor order"):
        DdsBridge(None, 12, domain_id=next(_domains))
    with pytest.raises(ValueError, match="permutation"):
        DdsBridge([0] * 12, 12, domain_id=next(_domains))


def test_interface_configs_name_one_interface():
    from ogi.deploy.dds import interface_config, loopback_config

    assert interface_config("lo") == loopback_config()
    assert "<AllowMulticast>false</AllowMulticast>" in loopback_config() and "127.0.0.1" in loopback_config()
    assert '<NetworkInterface name="eth0"/>' in interface_config("eth0")
    with pytest.raises(ValueError, match="interface name"):
        interface_config('eth0"/><Peer address="10.0.0.1')


def test_depth_images_reach_a_depth_bridge_and_repeated_ones_are_dropped():
    from ogi.deploy.bridge import DepthFrame
    from ogi.envs.sensing import DepthCameraConfig

    domain = next(_domains)
    stub = _StubRobot()
    stub.depth_camera = DepthCameraConfig(enabled=True)
    server = DdsRobotServer(stub, INDEX, domain_id=domain, max_age_s=0.5)
    bridge = DdsBridge(INDEX, 12, domain_id=domain, max_age_s=0.5, depth=True)
    try:
        assert bridge.has_depth and bridge.latest_depth() is None
        depth = np.linspace(0.2, 1.9, 108)
        frame = DepthFrame(frame=3, state_tick=41, received_s=0.0, width=12, height=9, max_range_m=2.0, depth_m=depth)
        assert _wait(lambda: stub.on_depth(frame) or bridge.latest_depth() is not None)
        got = bridge.latest_depth()
        assert (got.frame, got.state_tick, got.width, got.height) == (3, 41, 12, 9)
        np.testing.assert_allclose(got.depth_m, depth, atol=5e-4)
        server.publish_depth(frame)  # the same frame again
        assert _wait(lambda: bridge.depth_stats.dropped_duplicate >= 1)
    finally:
        server.close()
        bridge.close()

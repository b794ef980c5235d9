"""The SDK message layout, the CRC over the C struct, and the fast wire codec against cyclonedds' own."""

import numpy as np
import pytest

from ogi.deploy.messages import (
    HEAD,
    LEVEL_FLAG_LOW,
    MOTOR_MODE_SERVO,
    POS_STOP_F,
    VEL_STOP_F,
    LowCmd_,
    LowState_,
    crc32_mpeg2,
    lowcmd_layout,
    lowstate_layout,
    message_crc,
    struct_crc,
)
from ogi.deploy.wire import WireError


def _bitwise_crc(words: np.ndarray) -> int:
    # the SDK's loop: each 32-bit word fed most-significant bit first, polynomial 0x04C11DB7
    crc = 0xFFFFFFFF
    for word in words.tolist():
        for bit in range(31, -1, -1):
            top = crc >> 31
            crc = (crc << 1) & 0xFFFFFFFF
            if top ^ ((word >> bit) & 1):
                crc ^= 0x04C11DB7
    return crc


def test_crc32_mpeg2_check_value():
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7


def test_lowcmd_c_layout_is_812_bytes():
    assert lowcmd_layout().c_size == 812
    assert lowcmd_layout().leaves["crc"].c_offsets.tolist() == [808]
    assert lowcmd_layout().leaves["reserve"].c_offsets.tolist() == [804]
    assert lowcmd_layout().leaves["motor_cmd.q"].c_offsets.tolist()[:2] == [28, 64]  # 24 + 4, stride 36


def test_crc_test_vector_zero_message():
    assert message_crc(LowCmd_()) == 0x4B5A4880


def test_crc_test_vector_stop_command():
    msg = LowCmd_(head=list(HEAD), level_flag=LEVEL_FLAG_LOW)
    for motor in msg.motor_cmd:
        motor.mode, motor.q, motor.dq = MOTOR_MODE_SERVO, POS_STOP_F, VEL_STOP_F
    assert message_crc(msg) == 0x06E577CD


def test_fast_crc_equals_the_bitwise_loop():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 812, dtype=np.uint8).tobytes()
    assert struct_crc(data) == _bitwise_crc(np.frombuffer(data, dtype="<u4")[:-1])


def test_crc_changes_with_one_flipped_bit():
    msg = LowCmd_()
    before = message_crc(msg)
    msg.motor_cmd[11].kd = 1e-30
    assert message_crc(msg) != before


@pytest.mark.parametrize("cls", [LowCmd_, LowState_])
def test_wire_codec_equals_cyclonedds_codec(cls):
    layout = lowcmd_layout() if cls is LowCmd_ else lowstate_layout()
    rng = np.random.default_rng(1)
    msg = cls(head=list(HEAD), level_flag=LEVEL_FLAG_LOW, reserve=123456, crc=0xDEADBEEF)
    buffer = layout.new_buffer()
    for path in ("head", "level_flag", "reserve", "crc"):
        layout.put(buffer, path, [HEAD[0], HEAD[1]] if path == "head" else getattr(msg, path))
    motors = msg.motor_cmd if cls is LowCmd_ else msg.motor_state
    prefix = "motor_cmd" if cls is LowCmd_ else "motor_state"
    for name in ("mode", "q", "dq", "kp" if cls is LowCmd_ else "tau_est"):
        values = rng.integers(0, 3, 20) if name == "mode" else rng.normal(size=20).astype(np.float32)
        for motor, value in zip(motors, values):
            setattr(motor, name, value.item())
        layout.put(buffer, f"{prefix}.{name}", values)
    if cls is LowState_:
        layout.put(buffer, "imu_state.quaternion", msg.imu_state.quaternion)
    reference = msg.serialize(use_version_2=False)
    assert buffer.tobytes() == reference
    decoded = layout.get(layout.check_wire(reference), f"{prefix}.q")
    np.testing.assert_array_equal(decoded, np.array([m.q for m in motors], dtype=np.float32))


def test_wire_rejects_short_and_big_endian_payloads():
    layout = lowstate_layout()
    good = LowState_().serialize(use_version_2=False)
    with pytest.raises(WireError, match="bytes"):
        layout.check_wire(good[:100])
    with pytest.raises(WireError, match="little-endian"):
        layout.check_wire(b"\x00\x00" + good[2:])

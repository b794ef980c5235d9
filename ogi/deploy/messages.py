"""The Unitree SDK2 low-level messages (Go2 `LowCmd_` / `LowState_`) as CycloneDDS types, their C layout, and CRC32.

The IDL types match the public SDK's type names and field order (sequential, final structs), so a program
built on the SDK talks to ours. The CRC is computed over the little-endian C struct with natural alignment
(812 bytes for `LowCmd_`), never over the CDR bytes on the wire: numpy structured dtypes with `align=True`
give that layout.

Our use of spare fields: `LowCmd_.reserve` carries the command's sequence number (incremented by one per
command), `LowState_.tick` the robot's state counter (one per physics step). Both directions carry a CRC.

`DepthImage_` (topic `rt/ogi/depth`, our own type) carries the downward depth camera a depth student reads:
frame counter, the `LowState_.tick` it was taken at, size, range, and depth in millimetres (0: no return),
with the same head and CRC rule as the SDK's messages.
"""

# no `from __future__ import annotations`: cyclonedds reads the field types at run time

import functools
import zlib
from dataclasses import dataclass, field

import numpy as np
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.annotations import autoid, final
from cyclonedds.idl.types import array, float32, int16, int32, uint8, uint16, uint32

from ogi.deploy.wire import Layout

HEAD = (0xFE, 0xEF)
LEVEL_FLAG_LOW = 0xFF
MOTOR_MODE_SERVO = 0x01
POS_STOP_F = 2.146e9  # "no position control" value of MotorCmd_.q
VEL_STOP_F = 16000.0  # "no velocity control" value of MotorCmd_.dq
NUM_MOTOR_SLOTS = 20  # the messages carry 20 motors; a Go2 uses the first 12
LOWCMD_TOPIC = "rt/lowcmd"
LOWSTATE_TOPIC = "rt/lowstate"
DEPTH_TOPIC = "rt/ogi/depth"
MAX_DEPTH_PIXELS = 1024  # DepthImage_ carries up to this many pixels (a 32 x 32 image)
_NS = "unitree_go.msg.dds_."


@final
@autoid("sequential")
@dataclass
class MotorCmd_(IdlStruct, typename=_NS + "MotorCmd_"):
    mode: uint8 = 0
    q: float32 = 0.0
    dq: float32 = 0.0
    tau: float32 = 0.0
    kp: float32 = 0.0
    kd: float32 = 0.0
    reserve: array[uint32, 3] = field(default_factory=lambda: [0, 0, 0])


@final
@autoid("sequential")
@dataclass
class BmsCmd_(IdlStruct, typename=_NS + "BmsCmd_"):
    off: uint8 = 0
    reserve: array[uint8, 3] = field(default_factory=lambda: [0, 0, 0])


@final
@autoid("sequential")
@dataclass
class LowCmd_(IdlStruct, typename=_NS + "LowCmd_"):
    head: array[uint8, 2] = field(default_factory=lambda: [0, 0])
    level_flag: uint8 = 0
    frame_reserve: uint8 = 0
    sn: array[uint32, 2] = field(default_factory=lambda: [0, 0])
    version: array[uint32, 2] = field(default_factory=lambda: [0, 0])
    bandwidth: uint16 = 0
    motor_cmd: array[MotorCmd_, 20] = field(default_factory=lambda: [MotorCmd_() for _ in range(NUM_MOTOR_SLOTS)])
    bms_cmd: BmsCmd_ = field(default_factory=BmsCmd_)
    wireless_remote: array[uint8, 40] = field(default_factory=lambda: [0] * 40)
    led: array[uint8, 12] = field(default_factory=lambda: [0] * 12)
    fan: array[uint8, 2] = field(default_factory=lambda: [0, 0])
    gpio: uint8 = 0
    reserve: uint32 = 0
    crc: uint32 = 0


@final
@autoid("sequential")
@dataclass
class MotorState_(IdlStruct, typename=_NS + "MotorState_"):
    mode: uint8 = 0
    q: float32 = 0.0
    dq: float32 = 0.0
    ddq: float32 = 0.0
    tau_est: float32 = 0.0
    q_raw: float32 = 0.0
    dq_raw: float32 = 0.0
    ddq_raw: float32 = 0.0
    temperature: uint8 = 0
    lost: uint32 = 0
    reserve: array[uint32, 2] = field(default_factory=lambda: [0, 0])


@final
@autoid("sequential")
@dataclass
class IMUState_(IdlStruct, typename=_NS + "IMUState_"):
    quaternion: array[float32, 4] = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])
    gyroscope: array[float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    accelerometer: array[float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rpy: array[float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    temperature: uint8 = 0


@final
@autoid("sequential")
@dataclass
class BmsState_(IdlStruct, typename=_NS + "BmsState_"):
    version_high: uint8 = 0
    version_low: uint8 = 0
    status: uint8 = 0
    soc: uint8 = 0
    current: int32 = 0
    cycle: uint16 = 0
    bq_ntc: array[uint8, 2] = field(default_factory=lambda: [0, 0])
    mcu_ntc: array[uint8, 2] = field(default_factory=lambda: [0, 0])
    cell_vol: array[uint16, 15] = field(default_factory=lambda: [0] * 15)


@final
@autoid("sequential")
@dataclass
class LowState_(IdlStruct, typename=_NS + "LowState_"):
    head: array[uint8, 2] = field(default_factory=lambda: [0, 0])
    level_flag: uint8 = 0
    frame_reserve: uint8 = 0
    sn: array[uint32, 2] = field(default_factory=lambda: [0, 0])
    version: array[uint32, 2] = field(default_factory=lambda: [0, 0])
    bandwidth: uint16 = 0
    imu_state: IMUState_ = field(default_factory=IMUState_)
    motor_state: array[MotorState_, 20] = field(default_factory=lambda: [MotorState_() for _ in range(NUM_MOTOR_SLOTS)])
    bms_state: BmsState_ = field(default_factory=BmsState_)
    foot_force: array[int16, 4] = field(default_factory=lambda: [0] * 4)
    foot_force_est: array[int16, 4] = field(default_factory=lambda: [0] * 4)
    tick: uint32 = 0
    wireless_remote: array[uint8, 40] = field(default_factory=lambda: [0] * 40)
    bit_flag: uint8 = 0
    adc_reel: float32 = 0.0
    temperature_ntc1: uint8 = 0
    temperature_ntc2: uint8 = 0
    power_v: float32 = 0.0
    power_a: float32 = 0.0
    fan_frequency: array[uint16, 4] = field(default_factory=lambda: [0] * 4)
    reserve: uint32 = 0
    crc: uint32 = 0


@final
@autoid("sequential")
@dataclass
class DepthImage_(IdlStruct, typename="ogi.msg.dds_.DepthImage_"):
    head: array[uint8, 2] = field(default_factory=lambda: [0, 0])
    width: uint16 = 0
    height: uint16 = 0
    max_range_mm: uint16 = 0
    frame: uint32 = 0  # the camera's frame counter: strictly increasing
    state_tick: uint32 = 0  # LowState_.tick of the robot state the image was taken at
    depth_mm: array[uint16, 1024] = field(default_factory=lambda: [0] * MAX_DEPTH_PIXELS)  # row-major
    crc: uint32 = 0


_BIT_REVERSED_BYTES = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 of bytes: polynomial 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final XOR.

    zlib's CRC-32 is the reflected form of the same polynomial with a final XOR, so reflecting every input
    byte, undoing the final XOR and reflecting the 32-bit result gives the unreflected CRC, at C speed.
    """
    reflected = zlib.crc32(data.translate(_BIT_REVERSED_BYTES)) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def struct_crc(c_bytes: bytes) -> int:
    """The SDK's CRC of a C struct: its little-endian uint32 words but the last (the crc field), MSB first."""
    if len(c_bytes) % 4:
        raise ValueError(f"a C struct of {len(c_bytes)} bytes is not a whole number of 32-bit words")
    words = np.frombuffer(c_bytes, dtype="<u4")[:-1]
    return crc32_mpeg2(words.astype(">u4").tobytes())


@functools.cache
def lowcmd_layout() -> Layout:
    return Layout(LowCmd_)


@functools.cache
def lowstate_layout() -> Layout:
    return Layout(LowState_)


@functools.cache
def depth_layout() -> Layout:
    return Layout(DepthImage_)


def message_crc(msg: LowCmd_ | LowState_) -> int:
    """CRC of a message object over its C layout (through cyclonedds' own codec: for tests, not for loops)."""
    layout = lowcmd_layout() if isinstance(msg, LowCmd_) else lowstate_layout()
    return struct_crc(layout.c_bytes(np.frombuffer(msg.serialize(use_version_2=False), dtype=np.uint8)))

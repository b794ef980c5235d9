"""The DDS bridge: the Unitree SDK2 low-level topics (`rt/lowcmd`, `rt/lowstate`) over CycloneDDS.

`DdsBridge` is the runtime's side (publishes LowCmd_, takes LowState_); `DdsRobotServer` plays the robot's
side for a `SimRobot` (publishes LowState_, takes LowCmd_). Both check every incoming message and drop,
counting by reason (`LinkStats`): a wrong length, encapsulation, head or level flag, or a CRC that does not
match the C-layout CRC (corrupt); a sequence number equal to (duplicate) or older than (reordered) the last
accepted one; a DDS source timestamp older than `max_age_s` on arrival (stale; needs the two clocks to agree,
as on one host; None turns it off). Sequence numbers: `LowCmd_.reserve` counts commands, `LowState_.tick`
counts robot states, and `LowCmd_.sn[0]` names the state tick a command was computed from, so the robot side
measures state-to-command latency (`DdsRobotServer.latency_s`). Motors are mapped between the model's joint
order and the SDK's by the manifest's `sdk_motor_index` (by joint name at export).

Participants are made on a `Domain` with an explicit configuration (`loopback_config`), so nothing leaves
the host and no environment variable is needed. Messages are encoded and decoded with `ogi.deploy.wire`,
whose bytes equal cyclonedds' own codec; only cyclonedds' raw write/take are used on the hot path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
from cyclonedds._clayer import ddspy_take, ddspy_write
from cyclonedds.core import InstanceState, Policy, Qos, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from ogi.deploy.bridge import DepthFrame, LinkStats, MotorCommand, RobotState, SequenceFilter
from ogi.deploy.messages import (
    DEPTH_TOPIC,
    HEAD,
    LEVEL_FLAG_LOW,
    LOWCMD_TOPIC,
    LOWSTATE_TOPIC,
    MAX_DEPTH_PIXELS,
    MOTOR_MODE_SERVO,
    NUM_MOTOR_SLOTS,
    POS_STOP_F,
    VEL_STOP_F,
    DepthImage_,
    LowCmd_,
    LowState_,
    depth_layout,
    lowcmd_layout,
    lowstate_layout,
    struct_crc,
)
from ogi.deploy.wire import WireError

DEFAULT_DOMAIN_ID = 1  # the public simulator's domain; a real robot uses 0
_ANY = SampleState.Any | ViewState.Any | InstanceState.Any
_domains: dict[int, Domain] = {}
_domain_lock = threading.Lock()


def loopback_config() -> str:
    """CycloneDDS configuration: the loopback interface only, unicast discovery to localhost."""
    return (
        '<CycloneDDS><Domain id="any"><General>'
        '<Interfaces><NetworkInterface name="lo"/></Interfaces>'
        "<AllowMulticast>false</AllowMulticast></General>"
        "<Discovery><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>64</MaxAutoParticipantIndex>"
        '<Peers><Peer address="127.0.0.1"/></Peers></Discovery>'
        "</Domain></CycloneDDS>"
    )


def interface_config(interface: str) -> str:
    """CycloneDDS configuration for one named network interface (e.g. the one cabled to a robot)."""
    if interface == "lo":
        return loopback_config()
    if not interface.replace("-", "").replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"network interface name {interface!r} has characters no interface name has")
    return (
        '<CycloneDDS><Domain id="any"><General>'
        f'<Interfaces><NetworkInterface name="{interface}"/></Interfaces>'
        "</General></Domain></CycloneDDS>"
    )


def participant(domain_id: int, config: str | None = None) -> DomainParticipant:
    """A participant on `domain_id`, the domain configured once per process (loopback unless `config`)."""
    with _domain_lock:
        if domain_id not in _domains:
            _domains[domain_id] = Domain(domain_id, config or loopback_config())
    return DomainParticipant(domain_id)


def _qos() -> Qos:
    return Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(8))


def motor_order(sdk_motor_index: Sequence[int] | None, num_joints: int) -> np.ndarray:
    """(n,) SDK motor slot of each model joint; refuses a missing or invalid map."""
    if sdk_motor_index is None:
        raise ValueError("this robot has no SDK motor order (manifest robot.sdk_motor_index is null)")
    index = np.asarray(sdk_motor_index, dtype=np.int64)
    if sorted(index.tolist()) != list(range(num_joints)) or num_joints > NUM_MOTOR_SLOTS:
        raise ValueError(f"sdk_motor_index {index.tolist()} is not a permutation of 0..{num_joints - 1}")
    return index


class _ReadLoop:
    """A reader on one topic and the thread that hands each valid sample to `on_payload(payload, source_ns)`."""

    def __init__(self, dp: DomainParticipant, topic: str, message: type, on_payload):
        self._reader = DataReader(dp, Topic(dp, topic, message), qos=_qos())
        self._waitset = WaitSet(dp)
        self._waitset.attach(ReadCondition(self._reader, _ANY))
        self._on_payload = on_payload
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dds-{topic}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._waitset.wait(duration(milliseconds=20))
            samples = ddspy_take(self._reader._ref, _ANY, 16)
            if isinstance(samples, int):
                continue
            for payload, info in samples:
                if info.valid_data:
                    self._on_payload(payload, info.source_timestamp)

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=1.0)


def _too_old(max_age_s: float | None, source_ns: int) -> bool:
    """A sample whose DDS source timestamp is more than `max_age_s` old on arrival (None: no age check)."""
    return max_age_s is not None and (time.time_ns() - source_ns) * 1e-9 > max_age_s


class _Endpoint:
    """A reader thread with a wait set, a writer, and the checks common to both sides."""

    def __init__(
        self,
        domain_id: int,
        read_topic: tuple[str, type],
        write_topic: tuple[str, type],
        max_age_s: float | None,
        config: str | None,
    ):
        self.stats = LinkStats()
        self.max_age_s = max_age_s
        self.dp = participant(domain_id, config)
        self._writer = DataWriter(self.dp, Topic(self.dp, write_topic[0], write_topic[1]), qos=_qos())
        self._filter = SequenceFilter(self.stats)
        self._read_loop = _ReadLoop(self.dp, read_topic[0], read_topic[1], self._on_payload)

    def _check(self, layout, payload: bytes, source_ns: int, sequence_path: str) -> np.ndarray | None:
        """The payload's bytes if it passes every check, else None (counted)."""
        try:
            data = layout.check_wire(payload)
        except WireError:
            self.stats.dropped_corrupt += 1
            return None
        head = layout.get(data, "head")
        crc = int(layout.get(data, "crc")[0])
        if (
            tuple(head) != HEAD
            or int(layout.get(data, "level_flag")[0]) != LEVEL_FLAG_LOW
            or struct_crc(layout.c_bytes(data)) != crc
        ):
            self.stats.dropped_corrupt += 1
            return None
        if _too_old(self.max_age_s, source_ns):
            self.stats.dropped_stale += 1
            return None
        if not self._filter.accept(int(layout.get(data, sequence_path)[0])):
            return None
        return data

    def _on_payload(self, payload: bytes, source_ns: int) -> None:
        raise NotImplementedError

    def _write(self, layout, buffer: np.ndarray) -> None:
        layout.put(buffer, "crc", struct_crc(layout.c_bytes(buffer)))
        ddspy_write(self._writer._ref, buffer.tobytes())
        self.stats.sent += 1

    def close(self) -> None:
        self._read_loop.close()


def _new_command_buffer() -> np.ndarray:
    layout = lowcmd_layout()
    buffer = layout.new_buffer()
    layout.put(buffer, "head", HEAD)
    layout.put(buffer, "level_flag", LEVEL_FLAG_LOW)
    layout.put(buffer, "motor_cmd.q", POS_STOP_F)
    layout.put(buffer, "motor_cmd.dq", VEL_STOP_F)
    return buffer


class DdsBridge(_Endpoint):
    """The runtime's side: `send` publishes LowCmd_, `latest_state` returns the newest accepted LowState_."""

    def __init__(
        self,
        sdk_motor_index: Sequence[int],
        num_joints: int,
        *,
        domain_id: int = DEFAULT_DOMAIN_ID,
        max_age_s: float | None = 0.1,
        config: str | None = None,
        depth: bool = False,
    ):
        self.index = motor_order(sdk_motor_index, num_joints)
        self.depth_stats = LinkStats()
        self._latest: RobotState | None = None
        self._lock = threading.Lock()
        self._sequence = 0
        self._template = _new_command_buffer()
        modes = np.zeros(NUM_MOTOR_SLOTS, dtype=np.uint8)
        modes[self.index] = MOTOR_MODE_SERVO
        lowcmd_layout().put(self._template, "motor_cmd.mode", modes)
        # motors the robot does not use hold the SDK's stop values and zero gains
        self._unused = {
            name: np.full(NUM_MOTOR_SLOTS, {"q": POS_STOP_F, "dq": VEL_STOP_F}.get(name, 0.0))
            for name in ("q", "dq", "kp", "kd", "tau")
        }
        super().__init__(domain_id, (LOWSTATE_TOPIC, LowState_), (LOWCMD_TOPIC, LowCmd_), max_age_s, config)
        self._depth = DepthSubscriber(self.dp, max_age_s, self.depth_stats) if depth else None

    @property
    def has_depth(self) -> bool:
        return self._depth is not None

    def latest_depth(self) -> DepthFrame | None:
        return None if self._depth is None else self._depth.latest()

    def close(self) -> None:
        if self._depth is not None:
            self._depth.close()
        super().close()

    def _on_payload(self, payload: bytes, source_ns: int) -> None:
        layout = lowstate_layout()
        data = self._check(layout, payload, source_ns, "tick")
        if data is None:
            return
        i = self.index

        def motors(name: str) -> np.ndarray:
            return layout.get(data, f"motor_state.{name}")[i].astype(np.float64)

        state = RobotState(
            sequence=int(layout.get(data, "tick")[0]),
            received_s=time.monotonic(),
            quat_wxyz=layout.get(data, "imu_state.quaternion").astype(np.float64),
            gyro_body=layout.get(data, "imu_state.gyroscope").astype(np.float64),
            accel_body=layout.get(data, "imu_state.accelerometer").astype(np.float64),
            q=motors("q"),
            dq=motors("dq"),
            tau_est=motors("tau_est"),
            foot_force=layout.get(data, "foot_force").astype(np.float64),
        )
        with self._lock:
            self._latest = state

    def latest_state(self) -> RobotState | None:
        with self._lock:
            return self._latest

    def send(self, command: MotorCommand) -> None:
        layout = lowcmd_layout()
        buffer = self._template.copy()
        for name in ("q", "dq", "kp", "kd", "tau"):
            values = self._unused[name].copy()
            values[self.index] = getattr(command, name)
            layout.put(buffer, f"motor_cmd.{name}", values)
        self._sequence += 1
        layout.put(buffer, "reserve", self._sequence)
        layout.put(buffer, "sn", [command.source_sequence & 0xFFFFFFFF, 0])
        self._write(layout, buffer)


class DdsRobotServer(_Endpoint):
    """The robot's side for a `SimRobot`: publishes its states, applies the commands that pass the checks."""

    def __init__(
        self,
        sim_robot,
        sdk_motor_index: Sequence[int],
        *,
        domain_id: int = DEFAULT_DOMAIN_ID,
        max_age_s: float | None = 0.1,
        config: str | None = None,
    ):
        self.sim_robot = sim_robot
        self.index = motor_order(sdk_motor_index, sim_robot.robot.num_joints)
        self.publishing = threading.Event()
        self.publishing.set()
        self._published_at: dict[int, float] = {}  # tick -> time.monotonic() of publication (recent ticks)
        self._answered: set[int] = set()
        self.latency_s: list[float] = []  # per state tick: publication -> first command computed from it
        self._template = lowstate_layout().new_buffer()
        layout = lowstate_layout()
        layout.put(self._template, "head", HEAD)
        layout.put(self._template, "level_flag", LEVEL_FLAG_LOW)
        super().__init__(domain_id, (LOWCMD_TOPIC, LowCmd_), (LOWSTATE_TOPIC, LowState_), max_age_s, config)
        sim_robot.on_state = self.publish
        self.depth_sent = 0
        self._depth_writer = None
        if getattr(sim_robot, "depth_camera", None) is not None:
            self._depth_writer = DataWriter(self.dp, Topic(self.dp, DEPTH_TOPIC, DepthImage_), qos=_qos())
            sim_robot.on_depth = self.publish_depth

    def publish_depth(self, frame: DepthFrame) -> None:
        """Publish one depth image (called on the simulation thread); nothing while publishing is paused."""
        if not self.publishing.is_set() or self._depth_writer is None:
            return
        ddspy_write(self._depth_writer._ref, encode_depth(frame).tobytes())
        self.depth_sent += 1

    def publish(self, state: RobotState) -> None:
        """Publish one state (called on the simulation thread); nothing while publishing is paused."""
        if not self.publishing.is_set():
            return
        layout = lowstate_layout()
        buffer = self._template.copy()
        for name, values in (("q", state.q), ("dq", state.dq), ("tau_est", state.tau_est)):
            slots = np.zeros(NUM_MOTOR_SLOTS, dtype=np.float32)
            slots[self.index] = values
            layout.put(buffer, f"motor_state.{name}", slots)
        modes = np.zeros(NUM_MOTOR_SLOTS, dtype=np.uint8)
        modes[: len(self.index)] = MOTOR_MODE_SERVO
        layout.put(buffer, "motor_state.mode", modes)
        layout.put(buffer, "imu_state.quaternion", state.quat_wxyz)
        layout.put(buffer, "imu_state.gyroscope", state.gyro_body)
        layout.put(buffer, "imu_state.accelerometer", state.accel_body)
        layout.put(buffer, "foot_force", np.clip(np.round(state.foot_force), -32768, 32767))
        tick = state.sequence & 0xFFFFFFFF
        layout.put(buffer, "tick", tick)
        self._write(layout, buffer)
        self._published_at[tick] = time.monotonic()
        if len(self._published_at) > 4096:
            for old in list(self._published_at)[:2048]:
                self._published_at.pop(old, None)

    def _on_payload(self, payload: bytes, source_ns: int) -> None:
        layout = lowcmd_layout()
        data = self._check(layout, payload, source_ns, "reserve")
        if data is None:
            return
        fields = {
            name: layout.get(data, f"motor_cmd.{name}")[self.index].astype(np.float64)
            for name in ("q", "dq", "kp", "kd", "tau")
        }
        source = int(layout.get(data, "sn")[0])
        published = self._published_at.get(source)
        if published is not None and source not in self._answered:
            self._answered.add(source)
            self.latency_s.append(time.monotonic() - published)
            if len(self._answered) > 4096:
                self._answered.clear()
        command = MotorCommand(**fields, source_sequence=source)
        if command.is_finite():
            self.sim_robot.apply(command)
        else:
            self.stats.dropped_corrupt += 1


def encode_depth(frame: DepthFrame) -> np.ndarray:
    """A `DepthImage_` wire buffer (CRC set) of a depth frame: millimetres, 0 where nothing came back."""
    pixels = frame.width * frame.height
    if frame.depth_m.shape != (pixels,) or pixels > MAX_DEPTH_PIXELS:
        raise ValueError(
            f"a depth image of {frame.width}x{frame.height} needs {pixels} <= {MAX_DEPTH_PIXELS} values, "
            f"got {frame.depth_m.shape}"
        )
    layout = depth_layout()
    buffer = layout.new_buffer()
    layout.put(buffer, "head", HEAD)
    layout.put(buffer, "width", frame.width)
    layout.put(buffer, "height", frame.height)
    layout.put(buffer, "max_range_mm", round(frame.max_range_m * 1000.0))
    layout.put(buffer, "frame", frame.frame & 0xFFFFFFFF)
    layout.put(buffer, "state_tick", frame.state_tick & 0xFFFFFFFF)
    depth = np.zeros(MAX_DEPTH_PIXELS)
    depth[:pixels] = np.clip(np.round(np.nan_to_num(frame.depth_m, nan=0.0) * 1000.0), 0, 65535)
    layout.put(buffer, "depth_mm", depth)
    layout.put(buffer, "crc", struct_crc(layout.c_bytes(buffer)))
    return buffer


def decode_depth(payload: bytes, received_s: float) -> DepthFrame:
    """A depth frame from `DepthImage_` wire bytes; WireError for a malformed one (length, head, size, CRC)."""
    layout = depth_layout()
    data = layout.check_wire(payload)
    width, height = int(layout.get(data, "width")[0]), int(layout.get(data, "height")[0])
    max_range_mm = int(layout.get(data, "max_range_mm")[0])
    if (
        tuple(layout.get(data, "head")) != HEAD
        or struct_crc(layout.c_bytes(data)) != int(layout.get(data, "crc")[0])
        or not 0 < width * height <= MAX_DEPTH_PIXELS
        or max_range_mm == 0
    ):
        raise WireError("a DepthImage_ with a wrong head, CRC, size or range")
    return DepthFrame(
        frame=int(layout.get(data, "frame")[0]),
        state_tick=int(layout.get(data, "state_tick")[0]),
        received_s=received_s,
        width=width,
        height=height,
        max_range_m=max_range_mm / 1000.0,
        depth_m=layout.get(data, "depth_mm")[: width * height].astype(np.float64) / 1000.0,
    )


class DepthSubscriber:
    """Takes `DepthImage_` on `rt/ogi/depth` on its own thread; drops corrupt, repeated, reordered, stale ones."""

    def __init__(self, dp: DomainParticipant, max_age_s: float | None, stats: LinkStats):
        self.stats = stats
        self.max_age_s = max_age_s
        self._filter = SequenceFilter(stats)
        self._latest: DepthFrame | None = None
        self._lock = threading.Lock()
        self._read_loop = _ReadLoop(dp, DEPTH_TOPIC, DepthImage_, self.on_payload)

    def on_payload(self, payload: bytes, source_ns: int) -> None:
        try:
            frame = decode_depth(payload, time.monotonic())
        except WireError:
            self.stats.dropped_corrupt += 1
            return
        if _too_old(self.max_age_s, source_ns):
            self.stats.dropped_stale += 1
            return
        if not self._filter.accept(frame.frame):
            return
        with self._lock:
            self._latest = frame

    def latest(self) -> DepthFrame | None:
        with self._lock:
            return self._latest

    def close(self) -> None:
        self._read_loop.close()

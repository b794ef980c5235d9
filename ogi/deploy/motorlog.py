"""Motor logs: what a controller sent to a robot and what it heard back, to MCAP, for calibration and inspection.

Two streams, each in blocks of up to `block` samples (a crash loses at most one block per stream):

- `/ogi/lowstate`: every new robot state the controller read: the robot's counter (`sequence`, LowState_.tick),
  the controller-clock time it was received, joint angles, velocities and torque estimates, IMU.
- `/ogi/lowcmd`: every motor command sent: the send time on the clock states are received on, the counter of
  the state it was computed from (`source_sequence`), and the command (q, dq, kp, kd, tau).

Messages use the recording format's `ogi.arrays` encoding (ogi.replay.format). A run driven by the 5 Hz
planner adds each decision as an event (with its stage, subgoal and command as `data`) and each image it read on
`/ogi/camera` (RGB-D as uint8). The first message, on
`/ogi/motorlog`, is JSON: robot, joint names, the robot's counter rate (`tick_hz`), and the caller's metadata
(what routine, which profile, ...). `read_motor_log` reads a log whose writer died (no footer) up to its last
whole message and says so (`truncated`).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.exceptions import McapError
from mcap.records import Channel, Footer, Message
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from ogi.deploy.bridge import MotorCommand, RobotState
from ogi.replay.format import ENCODING_ARRAYS, ENCODING_JSON, RecordingError, pack_arrays, unpack_arrays
from ogi.robots import RobotSpec

FORMAT = "ogi-motorlog"
FORMAT_VERSION = 1
TOPIC_INFO = "/ogi/motorlog"
TOPIC_STATE = "/ogi/lowstate"
TOPIC_COMMAND = "/ogi/lowcmd"
TOPIC_EVENTS = "/ogi/motorlog_events"  # JSON {"name", "controller_s", "sequence"[, "data"]}: phases, decisions
TOPIC_CAMERA = "/ogi/camera"  # the planner's head-camera images it read: frame, state_tick, controller_s, image
STATE_FIELDS = ("sequence", "received_s", "q", "dq", "tau_est", "quat_wxyz", "gyro_body", "accel_body")
COMMAND_FIELDS = ("sent_s", "source_sequence", "q", "dq", "kp", "kd", "tau")


class MotorLogWriter:
    """Appends states and commands; `close()` (or the context manager) writes the file's index and footer."""

    def __init__(self, path: str | Path, robot: RobotSpec, *, tick_hz: float, meta: dict[str, Any] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.robot = robot
        self.block = 200
        self._file = open(self.path, "wb")
        # small chunks: what the file holds when a controller dies is what was flushed, not a megabyte less
        self._writer = Writer(self._file, compression=CompressionType.LZ4, chunk_size=32 * 1024)
        self._writer.start(profile="ogi", library="ogi")
        self._channels = {
            topic: self._writer.register_channel(topic, encoding, self._writer.register_schema("", "", b""))
            for topic, encoding in (
                (TOPIC_INFO, ENCODING_JSON),
                (TOPIC_STATE, ENCODING_ARRAYS),
                (TOPIC_COMMAND, ENCODING_ARRAYS),
                (TOPIC_EVENTS, ENCODING_JSON),
                (TOPIC_CAMERA, ENCODING_ARRAYS),
            )
        }
        self.info = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "robot": robot.name,
            "joint_names": list(robot.joint_names),
            "tick_hz": float(tick_hz),
            "created_unix_s": time.time(),
            **(meta or {}),
        }
        self._write(TOPIC_INFO, json.dumps(self.info).encode())
        self._states: list[RobotState] = []
        self._commands: list[tuple[float, MotorCommand]] = []
        self._last_sequence: int | None = None
        self.samples = {"state": 0, "command": 0}
        self.closed = False

    def _write(self, topic: str, payload: bytes) -> None:
        now = time.time_ns()
        self._writer.add_message(self._channels[topic], log_time=now, data=payload, publish_time=now)

    def state(self, state: RobotState) -> None:
        """Log a state read; the same state read twice is logged once."""
        if self.closed or state.sequence == self._last_sequence:
            return
        self._last_sequence = state.sequence
        self._states.append(state)
        if len(self._states) >= self.block:
            self._flush_states()

    def event(self, name: str, controller_s: float, sequence: int | None, data: dict[str, Any] | None = None) -> None:
        """Mark a moment (a phase of a routine, a planner decision), at controller time and the robot counter last
        read; `data` (JSON-serializable) rides along."""
        if not self.closed:
            event = {"name": name, "controller_s": controller_s, "sequence": sequence}
            if data is not None:
                event["data"] = data
            self._write(TOPIC_EVENTS, json.dumps(event).encode())

    def image(self, controller_s: float, frame: int, state_tick: int, image: np.ndarray) -> None:
        """One head-camera image (H, W, C) in [0, 1], stored as uint8."""
        if self.closed:
            return
        pixels = np.round(np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)
        meta = {"frame": int(frame), "state_tick": int(state_tick), "controller_s": float(controller_s)}
        self._write(TOPIC_CAMERA, pack_arrays(meta, {"image": pixels}))

    def command(self, sent_s: float, command: MotorCommand) -> None:
        if self.closed:
            return
        self._commands.append((sent_s, command))
        if len(self._commands) >= self.block:
            self._flush_commands()

    def _flush_states(self) -> None:
        if not self._states:
            return
        s = self._states
        arrays = {
            "sequence": np.array([x.sequence for x in s], dtype=np.int64),
            "received_s": np.array([x.received_s for x in s], dtype=np.float64),
            **{name: np.array([getattr(x, name) for x in s], dtype=np.float64) for name in STATE_FIELDS[2:]},
        }
        self._write(TOPIC_STATE, pack_arrays({}, arrays))
        self.samples["state"] += len(s)
        self._states = []
        self._file.flush()

    def _flush_commands(self) -> None:
        if not self._commands:
            return
        c = self._commands
        arrays = {
            "sent_s": np.array([t for t, _ in c], dtype=np.float64),
            "source_sequence": np.array(
                [-1 if x.source_sequence is None else x.source_sequence for _, x in c], dtype=np.int64
            ),
            **{name: np.array([getattr(x, name) for _, x in c], dtype=np.float64) for name in COMMAND_FIELDS[2:]},
        }
        self._write(TOPIC_COMMAND, pack_arrays({}, arrays))
        self.samples["command"] += len(c)
        self._commands = []
        self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        self._flush_states()
        self._flush_commands()
        self._writer.finish()
        self._file.close()
        self.closed = True

    def __enter__(self) -> MotorLogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class MotorLog:
    path: Path
    info: dict[str, Any]
    states: dict[str, np.ndarray]  # STATE_FIELDS, each (n, ...) in arrival order
    commands: dict[str, np.ndarray]  # COMMAND_FIELDS, each (m, ...)
    events: list[dict[str, Any]]
    truncated: bool
    sha256: str
    images: list[tuple[dict[str, Any], np.ndarray]] = field(default_factory=list)  # (meta, (H, W, C) uint8)

    @property
    def tick_hz(self) -> float:
        return float(self.info["tick_hz"])

    def state_time_s(self) -> np.ndarray:
        """The robot's clock at each state: its counter over its rate, from the first state."""
        seq = self.states["sequence"]
        return (seq - seq[0]) / self.tick_hz

    def command_time_s(self) -> np.ndarray:
        """Each command on the robot's clock: its source state's time plus how long after that state arrived it
        was sent (compute and queueing on the controller). Commands before the first logged state are dropped
        by `commands_on_robot_clock`."""
        seq = self.states["sequence"]
        index = {int(s): i for i, s in enumerate(seq)}
        src = self.commands["source_sequence"]
        rows = np.array([index.get(int(s), -1) for s in src])
        t = np.full(len(src), np.nan)
        ok = rows >= 0
        robot_t = self.state_time_s()
        # controller seconds run time_scale times slower than the robot's on a slowed simulation
        scale = float(self.info.get("time_scale", 1.0))
        t[ok] = robot_t[rows[ok]] + scale * (self.commands["sent_s"][ok] - self.states["received_s"][rows[ok]])
        return t


def read_motor_log(path: str | Path) -> MotorLog:
    """Read a motor log; a corrupt file raises RecordingError, a truncated one returns what was whole."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such motor log") from None
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a directory, not a motor log") from None
    channels: dict[int, Channel] = {}
    info: dict[str, Any] | None = None
    blocks: dict[str, list[dict[str, np.ndarray]]] = {TOPIC_STATE: [], TOPIC_COMMAND: []}
    events: list[dict[str, Any]] = []
    images: list[tuple[dict[str, Any], np.ndarray]] = []
    footer = False
    try:
        for record in StreamReader(io.BytesIO(raw), validate_crcs=True).records:
            if isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message):
                topic = channels[record.channel_id].topic if record.channel_id in channels else None
                if topic == TOPIC_INFO:
                    info = json.loads(record.data)
                elif topic == TOPIC_EVENTS:
                    events.append(json.loads(record.data))
                elif topic == TOPIC_CAMERA:
                    meta, arrays = unpack_arrays(record.data, f"{path}: {topic}")
                    images.append((meta, arrays["image"]))
                elif topic in blocks:
                    blocks[topic].append(unpack_arrays(record.data, f"{path}: {topic}")[1])
            elif isinstance(record, Footer):
                footer = True
    except RecordingError:
        raise
    except (McapError, struct.error, EOFError, ValueError, KeyError, IndexError) as err:
        if info is None:
            raise RecordingError(f"{path}: not a motor log ({type(err).__name__}: {err})") from None
    except Exception as err:  # the decompressor's own errors on a cut-off chunk
        if info is None:
            raise RecordingError(f"{path}: not a motor log ({type(err).__name__}: {err})") from None
    if info is None or info.get("format") != FORMAT:
        raise RecordingError(f"{path}: not a motor log (no {TOPIC_INFO} message of format '{FORMAT}')")
    if info.get("format_version") != FORMAT_VERSION:
        version = info.get("format_version")
        raise RecordingError(f"{path}: motor log format version {version}, expected {FORMAT_VERSION}")
    states = _concat(blocks[TOPIC_STATE], STATE_FIELDS)
    commands = _concat(blocks[TOPIC_COMMAND], COMMAND_FIELDS)
    return MotorLog(
        path=path,
        info=info,
        states=states,
        commands=commands,
        events=events,
        truncated=not footer,
        sha256=hashlib.sha256(raw).hexdigest(),
        images=images,
    )


def _concat(blocks: list[dict[str, np.ndarray]], fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not blocks:
        return {name: np.zeros((0,)) for name in fields}
    return {name: np.concatenate([b[name] for b in blocks]) for name in fields}

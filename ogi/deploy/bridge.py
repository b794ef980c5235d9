"""The one small protocol every robot bridge implements, and the in-process simulation bridge.

A bridge hands the runtime the robot's latest state (with the robot's sequence number and the monotonic
time it arrived) and carries motor commands (q, dq, kp, kd, tau per motor) to the robot. Arrays are in the
model's joint order; a bridge that speaks another motor order (the SDK's) maps by name inside.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RobotState:
    """One robot state sample. Arrays (n_joints,) in model order unless noted."""

    sequence: int  # the robot's own counter: strictly increasing for fresh samples
    received_s: float  # time.monotonic() when the sample arrived at this side
    quat_wxyz: np.ndarray  # (4,) base orientation from the IMU, w first
    gyro_body: np.ndarray  # (3,) rad/s, body frame
    accel_body: np.ndarray  # (3,) m/s^2, body frame (specific force)
    q: np.ndarray  # rad
    dq: np.ndarray  # rad/s
    tau_est: np.ndarray  # N*m
    foot_force: np.ndarray = field(default_factory=lambda: np.zeros(4))  # (4,) N, robot's foot order


@dataclass(frozen=True)
class DepthFrame:
    """One image of the downward depth camera, as a depth student reads it."""

    frame: int  # the camera's counter: strictly increasing for fresh images
    state_tick: int  # the robot state's sequence number the image was taken at
    received_s: float  # time.monotonic() when the image arrived at this side
    width: int
    height: int
    max_range_m: float
    depth_m: np.ndarray  # (height * width,) row-major, m along each pixel's ray; 0 where nothing came back

    def observation(self) -> np.ndarray:
        """The policy's `depth_image` field: depth / max_range in [0, 1], 0 where nothing came back."""
        return np.clip(self.depth_m / self.max_range_m, 0.0, 1.0)


@dataclass(frozen=True)
class CameraFrame:
    """One image of the head camera the 5 Hz planner reads: RGB-D, (height, width, 4) float32 in [0, 1] (depth as
    a fraction of the camera's range), as `ogi.envs.camera` makes it in training."""

    frame: int  # the camera's counter: strictly increasing for fresh images
    state_tick: int  # the robot state's sequence number the image was taken at
    received_s: float  # time.monotonic() when the image arrived at this side
    image: np.ndarray


@dataclass(frozen=True)
class Odometry:
    """Where the robot's state estimator puts its base on the ground plane (the planner's odometry)."""

    state_tick: int  # the robot state's sequence number it belongs to
    received_s: float
    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float  # planar speed of the base

    @property
    def pose(self) -> np.ndarray:
        """(3,) x m, y m, yaw rad."""
        return np.array([self.x_m, self.y_m, self.yaw_rad])


@dataclass(frozen=True)
class MotorCommand:
    """Per motor, model order: the motor applies tau + kp (q - q_meas) + kd (dq - dq_meas), clamped."""

    q: np.ndarray  # rad
    dq: np.ndarray  # rad/s
    kp: np.ndarray  # N*m/rad
    kd: np.ndarray  # N*m*s/rad
    tau: np.ndarray  # N*m
    source_sequence: int = 0  # sequence of the robot state this command was computed from (0: none)

    @staticmethod
    def zero_torque(n: int) -> MotorCommand:
        zeros = np.zeros(n)
        return MotorCommand(q=zeros, dq=zeros, kp=zeros, kd=zeros, tau=zeros)

    def is_finite(self) -> bool:
        return bool(np.isfinite(np.stack((self.q, self.dq, self.kp, self.kd, self.tau))).all())


@dataclass
class LinkStats:
    """Messages accepted and dropped on one direction of a link, by reason."""

    received: int = 0
    dropped_corrupt: int = 0  # bad CRC, header or length
    dropped_duplicate: int = 0  # sequence equal to the last accepted one
    dropped_reordered: int = 0  # sequence older than the last accepted one
    dropped_stale: int = 0  # older than the link's age limit when it arrived
    sent: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Bridge(Protocol):
    """A bridge to a robot with a depth camera also has `latest_depth() -> DepthFrame | None` (never blocks); one
    that serves the 5 Hz planner has `latest_image() -> CameraFrame | None` and `latest_odometry() -> Odometry |
    None`."""

    stats: LinkStats

    def latest_state(self) -> RobotState | None:
        """The newest accepted state, or None before the first; never blocks."""

    def send(self, command: MotorCommand) -> None:
        """Send one motor command; never blocks for long."""

    def close(self) -> None:
        """Release the link (idempotent)."""


class SequenceFilter:
    """Accept a message only if its sequence number is newer than the last accepted one; count the rest.

    Sequences are 32-bit counters on the wire: a step back by more than half the range is the counter
    wrapping around (after 49 days of 1 kHz ticks), not an old message.
    """

    WRAP = 1 << 32

    def __init__(self, stats: LinkStats):
        self.stats = stats
        self.last: int | None = None

    def accept(self, sequence: int) -> bool:
        if self.last is not None and sequence == self.last:
            self.stats.dropped_duplicate += 1
            return False
        if self.last is not None and sequence < self.last and self.last - sequence < self.WRAP // 2:
            self.stats.dropped_reordered += 1
            return False
        self.last = sequence
        self.stats.received += 1
        return True


class SimBridge:
    """The runtime's side of an in-process `SimRobot`: states and commands pass through its locked slots."""

    def __init__(self, robot: SimRobotLike):
        self.robot = robot
        self.stats = LinkStats()
        self._filter = SequenceFilter(self.stats)
        self._latest: RobotState | None = None
        self._lock = threading.Lock()

    def latest_state(self) -> RobotState | None:
        state = self.robot.latest_state()
        with self._lock:
            if state is not None and (self._latest is None or state.sequence != self._latest.sequence):
                if self._filter.accept(state.sequence):
                    self._latest = state
            return self._latest

    def send(self, command: MotorCommand) -> None:
        self.robot.apply(command)
        self.stats.sent += 1

    @property
    def has_depth(self) -> bool:
        return self.robot.depth_camera is not None

    def latest_depth(self) -> DepthFrame | None:
        """The simulated robot's newest depth image (None without a camera or before the first)."""
        return self.robot.latest_depth()

    @property
    def has_head_camera(self) -> bool:
        return getattr(self.robot, "ray_camera", None) is not None

    def latest_image(self) -> CameraFrame | None:
        """The simulated robot's newest head-camera image (None without an arena or before the first)."""
        return self.robot.latest_image()

    def latest_odometry(self) -> Odometry | None:
        return self.robot.latest_odometry()

    def close(self) -> None:
        pass


class SimRobotLike(Protocol):
    def latest_state(self) -> RobotState | None: ...

    def apply(self, command: MotorCommand) -> None: ...

    def latest_depth(self) -> DepthFrame | None: ...
    def latest_image(self) -> CameraFrame | None: ...
    def latest_odometry(self) -> Odometry | None: ...

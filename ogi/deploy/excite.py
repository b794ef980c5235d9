"""`ogi excite`: joint excitation for system identification, on a robot hung in the air, logged to MCAP.

The routine, each phase marked in the log: zero torque until a fresh state (`zero_torque_s`) -> ramp the PD
targets from the measured pose to the default pose (`ramp_s`, smoothstep) -> hold (`hold_s`) -> excite
(`seconds`): every joint at once, first a logarithmic chirp (`f_low_hz` to `f_high_hz`, its own phase per joint),
then a train of steps (`step_hold_s` each, random levels) -> hold -> damping. Targets stay within
`amplitude_rad` of the default pose and `limit_margin_rad` inside the joint limits; gains are the robot's own
kp and kd with no feed-forward, so the law is the one every controller here uses. The robot must hang free
(`ogi sim-robot --start hung`, or a gantry): its feet must not touch anything.

`Exciter.tick(now)` is one 1 kHz step (read state, send one command, log both); `run_realtime` clocks it on a
live bridge, `run_stepped` steps it in lockstep with a `SimRobot` (controller time = simulated time).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ogi.deploy.bridge import Bridge, MotorCommand
from ogi.deploy.motorlog import MotorLogWriter
from ogi.robots import RobotSpec
from ogi.validation import check_range

PHASES = ("waiting", "zero_torque", "ramp", "hold", "excite", "hold_after", "done")


@dataclass(frozen=True, kw_only=True)
class ExciteConfig:
    seconds: float = 20.0  # the excitation itself
    chirp_fraction: float = 0.6  # of `seconds`: chirps first, steps after
    amplitude_rad: float = 0.35
    f_low_hz: float = 0.3
    f_high_hz: float = 4.0
    step_hold_s: float = 0.4
    limit_margin_rad: float = 0.1
    zero_torque_s: float = 0.5
    ramp_s: float = 2.0
    hold_s: float = 1.0
    pd_hz: float = 1000.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("seconds", self.seconds, 1.0, 3600.0)
        check_range("chirp_fraction", self.chirp_fraction, 0.0, 1.0)
        check_range("amplitude_rad", self.amplitude_rad, 0.01, 1.0)
        check_range("f_high_hz", self.f_high_hz, 0.0, 20.0)
        if not 0.0 < self.f_low_hz < self.f_high_hz:
            raise ValueError(f"need 0 < f_low_hz ({self.f_low_hz}) < f_high_hz ({self.f_high_hz}) <= 20")
        check_range("step_hold_s", self.step_hold_s, 0.05, 10.0)
        for name in ("zero_torque_s", "ramp_s", "hold_s"):
            check_range(name, getattr(self, name), 0.0, 60.0)
        check_range("pd_hz", self.pd_hz, 100.0, 10000.0)

    @property
    def total_s(self) -> float:
        return self.zero_torque_s + self.ramp_s + 2 * self.hold_s + self.seconds


def excitation_targets(robot: RobotSpec, cfg: ExciteConfig, t: np.ndarray) -> np.ndarray:
    """(len(t), num_joints) joint targets at excitation times t (s from the excitation's start)."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    n = robot.num_joints
    pose = np.asarray(robot.default_pose)
    limits = np.asarray(robot.joint_limits)
    low = np.maximum(pose - cfg.amplitude_rad, limits[:, 0] + cfg.limit_margin_rad)
    high = np.minimum(pose + cfg.amplitude_rad, limits[:, 1] - cfg.limit_margin_rad)
    up, down = np.maximum(high - pose, 0.0), np.maximum(pose - low, 0.0)  # room above and below the pose
    rng = np.random.default_rng(cfg.seed)
    phases = rng.uniform(0, 2 * math.pi, n)
    chirp_s = cfg.chirp_fraction * cfg.seconds
    # logarithmic chirp: f(t) = f0 k^(t/T), phase 2 pi f0 T (k^(t/T) - 1) / ln k
    k = cfg.f_high_hz / cfg.f_low_hz
    tc = np.clip(t, 0.0, max(chirp_s, 1e-9))
    phase = 2 * math.pi * cfg.f_low_hz * max(chirp_s, 1e-9) * (k ** (tc / max(chirp_s, 1e-9)) - 1) / math.log(k)
    fade = np.clip(np.minimum(tc, chirp_s - tc) / 0.5, 0.0, 1.0)  # half a second in and out
    chirp = fade[:, None] * np.sin(phase[:, None] + phases[None])
    steps_count = int(math.ceil(max(cfg.seconds - chirp_s, 0.0) / cfg.step_hold_s)) + 1
    levels = rng.uniform(-1.0, 1.0, (steps_count, n))
    step_index = np.clip(((t - chirp_s) // cfg.step_hold_s).astype(int), 0, steps_count - 1)
    steps = levels[step_index]
    in_chirp = (t < chirp_s)[:, None]
    offset = np.where(in_chirp, chirp, steps)  # in [-1, 1]: 0 is the pose, +-1 the ends of its room
    q = pose + np.where(offset > 0, offset * up, offset * down)
    return np.where(((t < 0) | (t > cfg.seconds))[:, None], pose, q)


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class Exciter:
    """The excitation routine as a state machine: call `tick(now)` at the PD rate."""

    def __init__(self, robot: RobotSpec, bridge: Bridge, cfg: ExciteConfig, log: MotorLogWriter | None = None):
        self.robot, self.bridge, self.cfg, self.log = robot, bridge, cfg, log
        self.phase = "waiting"
        self._since = 0.0
        self._ramp_from: np.ndarray | None = None
        self._sequence: int | None = None
        self.kp, self.kd = np.asarray(robot.kp, float), np.asarray(robot.kd, float)
        self.pose = np.asarray(robot.default_pose, float)
        # the excitation's targets on the PD rate's grid, computed once (each tick looks its own up)
        self._targets = excitation_targets(robot, cfg, np.arange(round(cfg.seconds * cfg.pd_hz) + 1) / cfg.pd_hz)
        self.ticks = 0

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def _enter(self, phase: str, now: float) -> None:
        self.phase, self._since = phase, now
        if self.log is not None:
            self.log.event(phase, now, self._sequence)

    def tick(self, now: float) -> None:
        state = self.bridge.latest_state()
        if state is None:
            return
        if self.log is not None:
            self.log.state(state)
        self._sequence = state.sequence
        cfg, n = self.cfg, self.robot.num_joints
        zeros = np.zeros(n)
        elapsed = now - self._since
        if self.phase == "waiting":
            self._enter("zero_torque", now)
            elapsed = 0.0
        if self.phase == "zero_torque" and elapsed >= cfg.zero_torque_s:
            self._ramp_from = np.clip(state.q, *np.asarray(self.robot.joint_limits).T)
            self._enter("ramp", now)
        elif self.phase == "ramp" and elapsed >= cfg.ramp_s:
            self._enter("hold", now)
        elif self.phase == "hold" and elapsed >= cfg.hold_s:
            self._enter("excite", now)
        elif self.phase == "excite" and elapsed >= cfg.seconds:
            self._enter("hold_after", now)
        elif self.phase == "hold_after" and elapsed >= cfg.hold_s:
            self._enter("done", now)
        elapsed = now - self._since
        kp, kd = self.kp, self.kd
        if self.phase == "zero_torque":
            q_des, kp, kd = state.q.copy(), zeros, zeros
        elif self.phase == "done":
            q_des, kp = zeros, zeros
        elif self.phase == "ramp":
            s = _smoothstep(elapsed / max(cfg.ramp_s, 1e-9))
            q_des = self._ramp_from + s * (self.pose - self._ramp_from)
        elif self.phase == "excite":
            q_des = self._targets[min(round(elapsed * cfg.pd_hz), len(self._targets) - 1)]
        else:
            q_des = self.pose
        command = MotorCommand(q=q_des, dq=zeros, kp=kp, kd=kd, tau=zeros, source_sequence=state.sequence)
        self.bridge.send(command)
        if self.log is not None:
            self.log.command(now, command)
        self.ticks += 1


def run_stepped(exciter: Exciter, sim, progress=None) -> None:
    """Run the routine in lockstep with a `SimRobot` (one physics step per PD tick; controller time = sim time)."""
    ratio = sim.cfg.physics_hz / exciter.cfg.pd_hz
    if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
        raise ValueError(f"physics rate {sim.cfg.physics_hz} Hz is not a whole multiple of the PD rate")
    while not exciter.done:
        exciter.tick(sim.sim_time_s)
        sim.step(round(ratio))
        if progress is not None:
            progress(sim.sim_time_s)


def run_realtime(exciter: Exciter, progress=None, stop=None) -> None:
    """Run the routine on a live bridge at the PD rate on the monotonic clock (the one states are stamped on)."""
    period = 1.0 / exciter.cfg.pd_hz
    next_s = time.monotonic()
    while not exciter.done and not (stop is not None and stop()):
        now = time.monotonic()
        if now < next_s:
            time.sleep(next_s - now)
            continue
        exciter.tick(now)
        next_s += period
        if now - next_s > 0.05:
            next_s = now  # do not burst to catch up after a stall
        if progress is not None:
            progress(now)

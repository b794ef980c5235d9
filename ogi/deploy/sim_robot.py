"""`SimRobot`: a MuJoCo simulation playing a real robot in real time at 1 kHz (the sim-to-sim target).

Each physics step applies, per motor, the last command received through the motor law of the public SDK
simulator, `tau + kp (q_cmd - q) + kd (dq_cmd - dq)` clamped to the torque limit (`ogi.controllers.pd_torque`),
then publishes what the robot's sensors read: IMU quaternion, gyroscope, accelerometer, joint angles,
velocities and torques, foot forces. The robot starts lying on the ground with its legs folded, as a real
robot does when switched on. Physics runs on its own thread, locked to the monotonic clock; when it falls
behind by more than `max_lag_s` it skips ahead and counts a slip rather than running fast. `time_scale` < 1
runs the whole robot slower than real time (with the runtime's matching setting) on a machine too busy for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import mujoco
import numpy as np

from ogi.controllers.pd import pd_torque
from ogi.deploy.bridge import MotorCommand, RobotState
from ogi.envs.config import SimConfig
from ogi.envs.scene import build_scene_model
from ogi.robots import STAND_KEY, RobotSpec, actuator_names

LYING_THIGH_RAD = 1.25  # thigh and calf folded: the resting pose of a switched-off quadruped
LYING_CALF_FRACTION = 0.98  # of the calf's lower limit
SETTLE_S = 1.0


@dataclass(frozen=True, kw_only=True)
class SimRobotConfig:
    physics_hz: float = 1000.0
    state_every: int = 1  # publish a state sample every this many physics steps
    max_lag_s: float = 0.05  # wall seconds
    time_scale: float = 1.0  # simulated seconds per wall-clock second (below 1 on a machine too busy for real time)
    start: str = "lying"  # "lying" (folded on the ground) or "stand" (the stand keyframe)

    def __post_init__(self) -> None:
        if not 100.0 <= self.physics_hz <= 10000.0:
            raise ValueError(f"physics_hz = {self.physics_hz} must be in [100, 10000]")
        if self.state_every < 1:
            raise ValueError(f"state_every = {self.state_every} must be >= 1")
        if not 0.01 <= self.time_scale <= 1.0:
            raise ValueError(f"time_scale = {self.time_scale} must be in [0.01, 1]")
        if self.start not in ("lying", "stand"):
            raise ValueError(f"start = {self.start!r} must be 'lying' or 'stand'")


class SimRobot:
    """One simulated robot. `start()` runs physics in real time on a thread; `step(n)` advances by hand."""

    def __init__(self, robot: RobotSpec, cfg: SimRobotConfig | None = None):
        self.robot = robot
        self.cfg = cfg = cfg or SimRobotConfig()
        dt = 1.0 / cfg.physics_hz
        self.model = m = build_scene_model(robot, SimConfig(sim_dt_s=dt, ctrl_dt_s=dt))
        self.data = mujoco.MjData(m)
        pd_names, ff_names = actuator_names(robot)
        pd_ids = [m.actuator(a).id for a in pd_names]
        # the motor law is applied here, explicitly; the model's position actuators stay silent
        m.actuator_gainprm[pd_ids, 0] = 0.0
        m.actuator_biasprm[pd_ids, :3] = 0.0
        self._ff_ids = np.array([m.actuator(a).id for a in ff_names])
        joint_ids = [m.joint(j).id for j in robot.joint_names]
        self._qpos_adr = m.jnt_qposadr[joint_ids]
        self._dof_adr = m.jnt_dofadr[joint_ids]
        self._sensor = {
            name: (m.sensor_adr[m.sensor(name).id], m.sensor_dim[m.sensor(name).id])
            for name in ("imu_quat", "imu_gyro", "imu_acc", *(f"{f}_touch" for f in robot.foot_sites))
        }
        self._base_id = m.body(robot.base_body).id
        self._limit = np.asarray(robot.torque_limit)
        self._command = MotorCommand.zero_torque(robot.num_joints)
        self._lock = threading.Lock()
        self._latest: RobotState | None = None
        self.tick = 0
        self.slips = 0
        self.commands_applied = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset(cfg.start)

    # ---- set-up ------------------------------------------------------------------------------
    def _reset(self, start: str) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetDataKeyframe(m, d, m.key(STAND_KEY).id)
        if start == "lying":
            low = np.asarray(self.robot.joint_limits)[:, 0]
            pose = np.array(self.robot.default_pose)
            for i, name in enumerate(self.robot.joint_names):
                if "thigh" in name:
                    pose[i] = LYING_THIGH_RAD
                elif "calf" in name:
                    pose[i] = LYING_CALF_FRACTION * low[i]
            d.qpos[self._qpos_adr] = pose
            d.qpos[2] = 0.2  # dropped from a little height, it settles onto its folded legs
            mujoco.mj_forward(m, d)
            for _ in range(round(SETTLE_S * self.cfg.physics_hz)):
                self._physics_step(MotorCommand.zero_torque(self.robot.num_joints))
        self.tick = 0
        self._publish()

    # ---- physics -----------------------------------------------------------------------------
    def apply(self, command: MotorCommand) -> None:
        """Take a motor command (model order); it acts from the next physics step on."""
        with self._lock:
            self._command = command
            self.commands_applied += 1

    def _physics_step(self, command: MotorCommand) -> None:
        d = self.data
        q, dq = d.qpos[self._qpos_adr], d.qvel[self._dof_adr]
        # tau = clip(tau_ff + kp (q_cmd - q) + kd (dq_cmd - dq), -tau_max, tau_max)
        tau = pd_torque(q, dq, command.q, command.kp, command.kd, command.tau, self._limit, qd_des=command.dq)
        d.ctrl[self._ff_ids] = np.where(np.isfinite(tau), tau, 0.0)
        mujoco.mj_step(self.model, d)

    def step(self, n: int = 1) -> None:
        """Advance n physics steps with the current command, publishing as configured (no clock)."""
        for _ in range(n):
            with self._lock:
                command = self._command
            self._physics_step(command)
            self.tick += 1
            if self.tick % self.cfg.state_every == 0:
                self._publish()

    def _read(self, name: str) -> np.ndarray:
        adr, dim = self._sensor[name]
        return self.data.sensordata[adr : adr + dim].copy()

    def _publish(self) -> None:
        d = self.data
        state = RobotState(
            sequence=self.tick,
            received_s=time.monotonic(),
            quat_wxyz=self._read("imu_quat"),
            gyro_body=self._read("imu_gyro"),
            accel_body=self._read("imu_acc"),
            q=d.qpos[self._qpos_adr].copy(),
            dq=d.qvel[self._dof_adr].copy(),
            tau_est=d.qfrc_actuator[self._dof_adr].copy(),
            foot_force=np.concatenate([self._read(f"{f}_touch") for f in self.robot.foot_sites]),
        )
        with self._lock:
            self._latest = state
        self.on_state(state)

    def on_state(self, state: RobotState) -> None:
        """Called on the physics thread after each published state (a DDS server overrides it)."""

    def latest_state(self) -> RobotState | None:
        with self._lock:
            return self._latest

    # ---- ground truth for tests and summaries ------------------------------------------------
    def base_position(self) -> np.ndarray:
        return self.data.xpos[self._base_id].copy()

    @property
    def sim_time_s(self) -> float:
        return self.tick / self.cfg.physics_hz

    # ---- real time ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the simulated robot is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-robot", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _run(self) -> None:
        dt = 1.0 / (self.cfg.physics_hz * self.cfg.time_scale)  # wall seconds per physics step
        next_s = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_s:
                time.sleep(next_s - now)
                continue
            if now - next_s > self.cfg.max_lag_s:
                self.slips += 1
                next_s = now
            self.step(1)
            next_s += dt

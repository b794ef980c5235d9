"""`SimRobot`: a MuJoCo simulation playing a real robot in real time at 1 kHz (the sim-to-sim target).

Each physics step applies, per motor, the last command received through the motor law of the public SDK
simulator, `tau + kp (q_cmd - q) + kd (dq_cmd - dq)` clamped to the torque limit (`ogi.controllers.pd_torque`),
then publishes what the robot's sensors read: IMU quaternion, gyroscope, accelerometer, joint angles,
velocities and torques, foot forces. The robot starts lying on the ground with its legs folded, as a real
robot does when switched on. Physics runs on its own thread, locked to the monotonic clock; when it falls
behind by more than `max_lag_s` it skips ahead and counts a slip rather than running fast. `time_scale` < 1
runs the whole robot slower than real time (with the runtime's matching setting) on a machine too busy for it.

A dynamics profile (`ogi.robots.dynamics`) makes the robot differ from the model the policy and the calibration
know: its joints' armature, damping and dry friction and its base's mass are changed, and its motors deliver
`strength` times the law's torque, cut by a torque-speed curve, `delay_ms` after the command was sent. It is the
stand-in for hardware: nothing on the controller's side reads it. `start="hung"` welds the base in the air above
the ground, as a robot hangs on a gantry for identification runs.

Optionally the robot stands on a terrain course (one tile of the training terrain family, from a seed of its
own) and carries the downward depth camera a depth student was trained with: every `depth_every` physics
steps it takes an image by the training env's own ray marching against the ground, with the camera's noise
and dropout, and publishes it beside the state (`latest_depth`, `on_depth`).

Or it stands in an arena layout (`layout`: the objects and blocks of `ogi.envs.arena`, the robot at the layout's
start) with the head camera the 5 Hz planner reads: every `image_every` physics steps an RGB-D image by the
arena's own ray camera (`latest_image`). There, with every state, it also publishes odometry, the base's planar pose
and speed (`latest_odometry`: on a real robot its state estimator's, here the simulation's own), and whether it is
down (`is_down`); elsewhere neither is computed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import mujoco
import numpy as np

from ogi.controllers.pd import pd_torque
from ogi.deploy.bridge import CameraFrame, DepthFrame, MotorCommand, Odometry, RobotState
from ogi.envs import sensing
from ogi.envs.config import TERRAIN_KINDS, SimConfig
from ogi.envs.layout import Layout
from ogi.envs.scene import HUNG_CLEARANCE_M, build_scene_spec, compile_scene, hang_base
from ogi.envs.sensing import DepthCameraConfig
from ogi.robots import STAND_KEY, RobotSpec, actuator_names
from ogi.robots.dynamics import DynamicsProfile

LYING_THIGH_RAD = 1.25  # thigh and calf folded: the resting pose of a switched-off quadruped
LYING_CALF_FRACTION = 0.98  # of the calf's lower limit
SETTLE_S = 1.0


@dataclass(frozen=True, kw_only=True)
class SimRobotConfig:
    physics_hz: float = 1000.0
    state_every: int = 1  # publish a state sample every this many physics steps
    max_lag_s: float = 0.05  # wall seconds
    time_scale: float = 1.0  # simulated seconds per wall-clock second (below 1 on a machine too busy for real time)
    start: str = "lying"  # "lying" (folded on the ground), "stand" (the stand keyframe) or "hung" (base welded)
    terrain: str | None = None  # a terrain kind (ogi.envs.terrain) to stand on; None: the flat plane
    terrain_difficulty: float = 0.5  # in [0, 1], as a curriculum level's
    terrain_seed: int = 7  # the course's own seed; training tiles use the terrain config's (0 by default)
    terrain_tile_m: float = 8.0
    start_x_m: float = 0.0  # where the robot starts, along x from the course's centre (its platform)
    depth_camera: DepthCameraConfig | None = None  # the camera to carry (the artifact's), or None
    depth_every: int = 20  # physics steps per depth image (50 Hz at 1 kHz)
    depth_seed: int = 0  # the camera's noise and dropout
    dynamics: DynamicsProfile | None = None  # how the robot differs from its model (None: it does not)
    joint_noise: tuple[float, float] = (0.0, 0.0)  # std of the published joint angles (rad) and velocities (rad/s)
    noise_seed: int = 0
    layout: Layout | None = None  # an arena layout to stand in (objects, blocks, start), with the head camera
    image_every: int = 20  # physics steps per head-camera image (50 Hz at 1 kHz)

    def __post_init__(self) -> None:
        if not 100.0 <= self.physics_hz <= 10000.0:
            raise ValueError(f"physics_hz = {self.physics_hz} must be in [100, 10000]")
        if self.state_every < 1:
            raise ValueError(f"state_every = {self.state_every} must be >= 1")
        if not 0.01 <= self.time_scale <= 1.0:
            raise ValueError(f"time_scale = {self.time_scale} must be in [0.01, 1]")
        if self.start not in ("lying", "stand", "hung"):
            raise ValueError(f"start = {self.start!r} must be 'lying', 'stand' or 'hung'")
        if self.terrain is not None and self.terrain not in TERRAIN_KINDS:
            raise ValueError(f"terrain = {self.terrain!r} is not a terrain kind; known: {', '.join(TERRAIN_KINDS)}")
        if not 0.0 <= self.terrain_difficulty <= 1.0:
            raise ValueError(f"terrain_difficulty = {self.terrain_difficulty} must be in [0, 1]")
        if len(self.joint_noise) != 2 or not all(0.0 <= v <= 1.0 for v in self.joint_noise):
            raise ValueError(f"joint_noise = {self.joint_noise} must be two stds in [0, 1] (rad, rad/s)")
        if self.depth_every < 1:
            raise ValueError(f"depth_every = {self.depth_every} must be >= 1")
        if self.image_every < 1:
            raise ValueError(f"image_every = {self.image_every} must be >= 1")
        if self.layout is not None and (self.terrain is not None or self.start == "hung"):
            raise ValueError("an arena layout stands on the flat plane, on the robot's own feet: no terrain, not hung")


def camera_for(manifest) -> DepthCameraConfig | None:
    """The depth camera an artifact's policy was trained with (its manifest's), or None if it reads none."""
    fields = manifest["observation"].get("depth_camera")
    if fields is None:
        return None
    fields = dict(fields, mount_pos_m=tuple(fields["mount_pos_m"]))
    return DepthCameraConfig(**fields)


class SimRobot:
    """One simulated robot. `start()` runs physics in real time on a thread; `step(n)` advances by hand."""

    def __init__(self, robot: RobotSpec, cfg: SimRobotConfig | None = None):
        self.robot = robot
        self.cfg = cfg = cfg or SimRobotConfig()
        dt = 1.0 / cfg.physics_hz
        self.terrain = None
        self.start_xy = np.zeros(2)
        if cfg.terrain is not None:
            from ogi.envs.terrain_grid import build_terrain_grid

            self.terrain = build_terrain_grid(
                (cfg.terrain,), 1, cfg.terrain_tile_m, 0.05, cfg.terrain_seed, difficulty=cfg.terrain_difficulty
            )
            self.start_xy = self.terrain.tile_origin(np.array([0]), np.array([0]))[0] + np.array([cfg.start_x_m, 0.0])
        self.hung = cfg.start == "hung"
        self.start_yaw = 0.0
        spec = build_scene_spec(robot, SimConfig(sim_dt_s=dt, ctrl_dt_s=dt), self.terrain)
        arena = None
        if cfg.layout is not None:
            from ogi.envs.arena import ArenaConfig, add_arena_geoms, check_layout
            from ogi.envs.camera import add_head_camera

            arena = ArenaConfig()
            check_layout(arena, cfg.layout)
            add_arena_geoms(spec, arena)
            add_head_camera(spec, robot.base_body, arena.camera)
            self.start_xy = np.array(cfg.layout.start[:2], dtype=np.float64)
            self.start_yaw = float(cfg.layout.start[2])
        if self.hung:
            ground = float(self.ground_height(self.start_xy[None])[0])
            height = ground + robot.nominal_base_height + HUNG_CLEARANCE_M
            hang_base(spec, robot, (*self.start_xy, height))
        self.model = m = compile_scene(spec, robot)
        self.dynamics = cfg.dynamics
        if cfg.dynamics is not None:
            cfg.dynamics.apply_to_model(m, robot)
        # commands in flight: (physics tick from which on it acts, command)
        self._delay_ticks = round(cfg.dynamics.delay_s * cfg.physics_hz) if cfg.dynamics is not None else 0
        self._in_flight: deque[tuple[int, MotorCommand]] = deque()
        self.data = mujoco.MjData(m)
        self.ray_camera = None
        if arena is not None:
            from ogi.envs.arena import CAMERA_GROUPS, ArenaSlots, camera_colours
            from ogi.envs.camera import RayCamera

            self.colours = camera_colours(m)
            ArenaSlots(m, arena).write(cfg.layout, m.body_pos, m.body_quat, m.geom_rgba, m.geom_size, self.colours)
            mujoco.mj_setConst(m, self.data)
            self.ray_camera = RayCamera(m, arena.camera, CAMERA_GROUPS)
        self._latest_image: CameraFrame | None = None
        self._latest_odometry: Odometry | None = None
        self._down = False
        self.image_frames = 0
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
        self.depth_camera = cfg.depth_camera
        self._depth_directions = cfg.depth_camera.ray_directions_body() if cfg.depth_camera is not None else None
        self._depth_rng = np.random.default_rng(cfg.depth_seed)
        self._noise_rng = np.random.default_rng(cfg.noise_seed)
        self._latest_depth: DepthFrame | None = None
        self.depth_frames = 0
        self._reset(cfg.start)

    # ---- set-up ------------------------------------------------------------------------------
    def _reset(self, start: str) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetDataKeyframe(m, d, m.key(STAND_KEY).id)
        if start == "hung":
            mujoco.mj_forward(m, d)
            self.tick = 0
            self._publish()
            return
        ground = float(self.ground_height(self.start_xy[None])[0])
        d.qpos[:2] = self.start_xy
        d.qpos[2] += ground
        if self.start_yaw:
            turn = np.array([np.cos(self.start_yaw / 2), 0.0, 0.0, np.sin(self.start_yaw / 2)])
            mujoco.mju_mulQuat(d.qpos[3:7], turn, d.qpos[3:7].copy())
        mujoco.mj_forward(m, d)
        if start == "lying":
            low = np.asarray(self.robot.joint_limits)[:, 0]
            pose = np.array(self.robot.default_pose)
            for i, name in enumerate(self.robot.joint_names):
                if "thigh" in name:
                    pose[i] = LYING_THIGH_RAD
                elif "calf" in name:
                    pose[i] = LYING_CALF_FRACTION * low[i]
            d.qpos[self._qpos_adr] = pose
            d.qpos[2] = ground + 0.2  # dropped from a little height, it settles onto its folded legs
            mujoco.mj_forward(m, d)
            for _ in range(round(SETTLE_S * self.cfg.physics_hz)):
                self._physics_step(MotorCommand.zero_torque(self.robot.num_joints))
        self.tick = 0
        self._publish()

    # ---- physics -----------------------------------------------------------------------------
    def apply(self, command: MotorCommand) -> None:
        """Take a motor command (model order); it acts from the next physics step on."""
        with self._lock:
            if self._delay_ticks:
                self._in_flight.append((self.tick + self._delay_ticks, command))
            else:
                self._command = command
            self.commands_applied += 1

    def _physics_step(self, command: MotorCommand) -> None:
        d = self.data
        q, dq = d.qpos[self._qpos_adr], d.qvel[self._dof_adr]
        # tau = clip(tau_ff + kp (q_cmd - q) + kd (dq_cmd - dq), -tau_max, tau_max)
        tau = pd_torque(q, dq, command.q, command.kp, command.kd, command.tau, self._limit, qd_des=command.dq)
        if self.dynamics is not None:
            # the motor gives strength x the law's torque, within what it can give at this speed
            envelope = self.dynamics.torque_limit(self._limit, dq)
            tau = np.clip(self.dynamics.strength * tau, -envelope, envelope)
        d.ctrl[self._ff_ids] = np.where(np.isfinite(tau), tau, 0.0)
        mujoco.mj_step(self.model, d)

    def step(self, n: int = 1) -> None:
        """Advance n physics steps with the current command, publishing as configured (no clock)."""
        for _ in range(n):
            with self._lock:
                while self._in_flight and self._in_flight[0][0] <= self.tick:
                    self._command = self._in_flight.popleft()[1]
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
        q, dq = d.qpos[self._qpos_adr].copy(), d.qvel[self._dof_adr].copy()
        if any(self.cfg.joint_noise):  # encoders and their differentiation are not exact
            q += self._noise_rng.normal(0.0, self.cfg.joint_noise[0], q.shape)
            dq += self._noise_rng.normal(0.0, self.cfg.joint_noise[1], dq.shape)
        state = RobotState(
            sequence=self.tick,
            received_s=time.monotonic(),
            quat_wxyz=self._read("imu_quat"),
            gyro_body=self._read("imu_gyro"),
            accel_body=self._read("imu_acc"),
            q=q,
            dq=dq,
            tau_est=d.qfrc_actuator[self._dof_adr].copy(),
            foot_force=np.concatenate([self._read(f"{f}_touch") for f in self.robot.foot_sites]),
        )
        with self._lock:
            self._latest = state
        self.on_state(state)
        if self.depth_camera is not None and self.tick % self.cfg.depth_every == 0:
            self._publish_depth()
        if self.ray_camera is not None:  # in an arena: what the planner and the instruction's judge read
            self._publish_odometry(state.received_s)
            if self.tick % self.cfg.image_every == 0:
                self._publish_image()

    def _publish_odometry(self, received_s: float) -> None:
        d = self.data
        base = d.xpos[self._base_id]
        rotation = d.xmat[self._base_id].reshape(3, 3)
        odometry = Odometry(
            state_tick=self.tick,
            received_s=received_s,
            x_m=float(base[0]),
            y_m=float(base[1]),
            yaw_rad=float(np.arctan2(rotation[1, 0], rotation[0, 0])),
            speed_mps=float(np.linalg.norm(d.qvel[:2])),  # the free joint's linear velocity is in the world frame
        )
        down = self.fallen()
        with self._lock:
            self._latest_odometry = odometry
            self._down = down

    def _publish_image(self) -> None:
        d = self.data
        image = self.ray_camera.capture_data(self.model, d, d.xpos[self._base_id], d.xmat[self._base_id], self.colours)
        self.image_frames += 1
        frame = CameraFrame(frame=self.image_frames, state_tick=self.tick, received_s=time.monotonic(), image=image)
        with self._lock:
            self._latest_image = frame

    def _publish_depth(self) -> None:
        d, cam = self.data, self.depth_camera
        base = d.xpos[self._base_id][None].copy()
        quat = d.xquat[self._base_id][None].copy()
        step = self.terrain.resolution_m if self.terrain is not None else 0.1
        scaled = sensing.depth_image(base, quat, cam, self._depth_directions, self.ground_height, step, self._depth_rng)
        self.depth_frames += 1
        frame = DepthFrame(
            frame=self.depth_frames,
            state_tick=self.tick,
            received_s=time.monotonic(),
            width=cam.width,
            height=cam.height,
            max_range_m=cam.max_range_m,
            depth_m=scaled[0] * cam.max_range_m,
        )
        with self._lock:
            self._latest_depth = frame
        self.on_depth(frame)

    def on_state(self, state: RobotState) -> None:
        """Called on the physics thread after each published state (a DDS server overrides it)."""

    def on_depth(self, frame: DepthFrame) -> None:
        """Called on the physics thread after each depth image (a DDS server overrides it)."""

    def latest_state(self) -> RobotState | None:
        with self._lock:
            return self._latest

    def latest_depth(self) -> DepthFrame | None:
        with self._lock:
            return self._latest_depth

    def latest_image(self) -> CameraFrame | None:
        """The newest head-camera image (None outside an arena)."""
        with self._lock:
            return self._latest_image

    def latest_odometry(self) -> Odometry | None:
        """The newest odometry (None outside an arena)."""
        with self._lock:
            return self._latest_odometry

    def is_down(self) -> bool:
        """`fallen()` as of the newest published state: safe to ask from another thread while physics runs."""
        with self._lock:
            return self._down

    def ground_height(self, xy: np.ndarray) -> np.ndarray:
        """Ground height, m, under world points (..., 2): the course's heightfield, or 0 on the plane."""
        if self.terrain is None:
            return np.zeros(np.asarray(xy).shape[:-1])
        return self.terrain.height_at(np.asarray(xy, dtype=np.float64))

    # ---- ground truth for tests and summaries ------------------------------------------------
    def base_position(self) -> np.ndarray:
        return self.data.xpos[self._base_id].copy()

    def fallen(self, min_height_fraction: float = 0.5, max_tilt_rad: float = 1.0) -> bool:
        """Whether the robot is down: its base below `min_height_fraction` of the nominal height above the ground
        under it, or tilted beyond `max_tilt_rad`."""
        base = self.base_position()
        height = base[2] - float(self.ground_height(base[None, :2])[0])
        up = self.data.xmat[self._base_id].reshape(3, 3)[2, 2]  # cos(tilt)
        return bool(height < min_height_fraction * self.robot.nominal_base_height or up < np.cos(max_tilt_rad))

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

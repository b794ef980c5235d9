"""The robot-side program: a 50 Hz policy loop and a 1 kHz PD loop on their own threads, under a safety supervisor.

Start-up: zero torque (until a fresh state arrives and `zero_torque_s` has passed) -> ramp the PD targets from
the measured pose to the default pose over `ramp_s` (smoothstep) -> the policy drives, while the supervisor
allows it. Any of these switches the joints to a fallback (`ogi.controllers.fallback`) with a `SafetyEvent`
naming the cause: a signal beyond its limit or a non-finite action (the supervisor's own checks), a fall
predicted by the artifact's fall predictor (`fall_predicted`, run every policy step on the policy's own
observations), no fresh state for `stale_policy_periods` policy periods (`stale_state`), no fresh depth image
for a policy that reads one (`stale_depth`, `depth_layout`), an exception in a loop (`exception: ...`), a loop
running late (`policy_overrun`, `pd_overrun`), a stop request (`stop`). `rearm()` gives the joints back to the
policy, with its recurrent state reset; with `recover`, a crouch tripped by a signal limit or a predicted fall
is handed back by itself once the robot has been stable for the supervisor's re-arm time. On exit the joints
are damped.

PD placement (`pd_site`): "runtime" evaluates `pd_torque` here at 1 kHz and sends the torque (kp = kd = 0 to
the motor); "motor" sends targets and gains and the motor closes the loop (the torque computed here is then
the expected torque, kept for monitoring). Clocks are `time.monotonic`.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ogi.controllers.fallback import ControlMode, FallbackConfig, fallback_command
from ogi.controllers.pd import pd_torque
from ogi.controllers.supervisor import SafetyEvent, SafetySupervisor, SupervisorConfig
from ogi.deploy.artifact import Artifact, ArtifactError, FallPredictorSession, PolicySession, residual_runner
from ogi.deploy.bridge import Bridge, MotorCommand, RobotState
from ogi.deploy.feedforward import GravityFeedforward
from ogi.deploy.motorlog import MotorLogWriter
from ogi.envs import gait
from ogi.envs import observations as obs_def
from ogi.envs.config import GaitConfig, NoiseConfig
from ogi.robots import RobotSpec, get_robot

PHASES = ("waiting", "zero_torque", "ramp", "running", "stopped")
RECOVERABLE_CAUSES = ("tilt", "ang_vel", "joint_vel", "fall_predicted")  # what `recover` hands back after
_NO_NOISE = NoiseConfig(enabled=False)


@dataclass(frozen=True, kw_only=True)
class RuntimeConfig:
    command: tuple[float, float, float] = (0.0, 0.0, 0.0)  # vx m/s, vy m/s, yaw rate rad/s
    zero_torque_s: float = 0.5
    ramp_s: float = 2.0
    stale_policy_periods: float = 3.0
    policy_overrun_periods: float = 3.0  # a policy step this late trips the supervisor
    pd_overrun_s: float = 0.05  # a PD loop gap this long trips the supervisor
    damping_on_exit_s: float = 0.2
    pd_site: str = "motor"
    time_scale: float = 1.0  # controller seconds per wall second; must equal the simulated robot's
    use_fall_predictor: bool = True  # run the artifact's fall predictor (if it carries one) every policy step
    # recover: after a trip by a signal limit or the fall predictor (the crouch), give the joints back to the
    # policy by itself once the signals have stayed within their limits for supervisor.rearm_stable_s; trips to
    # damping (stale state, non-finite values, exceptions, overruns, stop) still wait for rearm()
    recover: bool = False
    stale_depth_s: float = 0.1  # a depth student's newest image older than this trips the crouch ("stale_depth")
    use_residual: bool = True  # add the artifact's actuator residual (if it carries one) while the policy drives
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    fallback: FallbackConfig = field(default_factory=FallbackConfig)

    def __post_init__(self) -> None:
        if self.pd_site not in ("runtime", "motor"):
            raise ValueError(f"pd_site = {self.pd_site!r} must be 'runtime' or 'motor'")
        for name in ("zero_torque_s", "ramp_s", "damping_on_exit_s"):
            if not 0.0 <= getattr(self, name) <= 60.0:
                raise ValueError(f"{name} = {getattr(self, name)} must be in [0, 60] s")
        if not 1.0 <= self.stale_policy_periods <= 100.0:
            raise ValueError(f"stale_policy_periods = {self.stale_policy_periods} must be in [1, 100]")
        if not 0.01 <= self.time_scale <= 1.0:
            raise ValueError(f"time_scale = {self.time_scale} must be in [0.01, 1]")
        if len(self.command) != 3 or not all(np.isfinite(self.command)):
            raise ValueError(f"command = {self.command} must be three finite numbers (vx, vy, yaw rate)")


def robot_for(artifact: Artifact) -> RobotSpec:
    """The artifact's robot, after checking the manifest agrees with this code's description of it."""
    robot = get_robot(artifact.robot_name)
    manifest = artifact.manifest["robot"]
    checks = {
        "joint_names": (list(robot.joint_names), manifest["joint_names"]),
        "default_pose_rad": (list(robot.default_pose), manifest["default_pose_rad"]),
        "kp": (list(robot.kp), manifest["kp"]),
        "kd": (list(robot.kd), manifest["kd"]),
        "torque_limit_nm": (list(robot.torque_limit), manifest["torque_limit_nm"]),
    }
    for name, (ours, theirs) in checks.items():
        if ours != theirs:
            raise ArtifactError(
                f"{artifact.path}: manifest robot.{name} {theirs} differs from robot "
                f"'{robot.name}' here {ours}; export again or use the matching code"
            )
    scales = {f["name"]: f["scale"] for f in artifact.manifest["observation"]["fields"]}
    expected = {
        "base_ang_vel": [obs_def.ANG_VEL_SCALE] * 3,
        "command": obs_def.COMMAND_SCALE.tolist(),
        "joint_vel": [obs_def.JOINT_VEL_SCALE] * robot.num_joints,
    }
    for name, scale in expected.items():
        if scales.get(name) != scale:
            raise ArtifactError(
                f"{artifact.path}: observation '{name}' scale {scales.get(name)} differs from this code's {scale}"
            )
    return robot


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class Runtime:
    """Runs one artifact on one bridge. `start()`, then `stop()` (or `run(seconds)` for both)."""

    def __init__(
        self, artifact: Artifact, bridge: Bridge, cfg: RuntimeConfig | None = None, log: MotorLogWriter | None = None
    ):
        self.artifact = artifact
        self.log = log  # every state read and command sent, to a motor log (ogi.deploy.motorlog)
        self.bridge = bridge
        self.cfg = cfg = cfg or RuntimeConfig()
        self.robot = robot = robot_for(artifact)
        n = robot.num_joints
        control = artifact.manifest["control"]
        self.policy_period_s = 1.0 / control["policy_rate_hz"]
        self.pd_period_s = 1.0 / control["pd_rate_hz"]
        self.session = PolicySession(artifact, threads=1)
        self.predictor = (
            FallPredictorSession(artifact, threads=1)
            if cfg.use_fall_predictor and artifact.fall_predictor_bytes is not None
            else None
        )
        self.last_fall_probability: float | None = None
        self.residual = residual_runner(artifact) if cfg.use_residual and artifact.residual_bytes is not None else None
        self.residual_dropped: str | None = None  # why the residual was switched off for the rest of the run
        self._residual_s = np.zeros(1 << 16)
        self._residual_abs = np.zeros(1 << 16)
        self.residual_ticks = 0
        self.feedforward = GravityFeedforward(robot) if control["gravity_feedforward"] else None
        self.default_pose = np.asarray(robot.default_pose)
        self.kp, self.kd = np.asarray(robot.kp), np.asarray(robot.kd)
        self.limit = np.asarray(robot.torque_limit)
        self.action_scale = artifact.manifest["action"]["scale_rad"]
        self.action_clip = artifact.manifest["action"]["clip"]
        held = set(artifact.manifest["action"].get("held_joints", []))
        self.held = np.array([j in held for j in robot.joint_names], dtype=bool)
        self.command = np.asarray(cfg.command, dtype=np.float64)
        gait_fields = control.get("gait")  # None: the policy reads no gait clock
        self.gait = None if gait_fields is None else GaitConfig(enabled=True, **gait_fields)
        self._swing_offsets = (
            None if self.gait is None else gait.swing_offset_matrix(self.gait, robot.joint_names, robot.foot_sites)
        )
        self.depth_camera = artifact.manifest["observation"].get("depth_camera")  # None: the policy reads none
        if self.depth_camera is not None and not getattr(bridge, "has_depth", False):
            raise ArtifactError(
                f"{artifact.path}: the policy reads a depth image and this bridge carries none (the simulated "
                "robot needs the artifact's camera: `ogi deploy --bridge sim` gives it one; over DDS the robot "
                "must publish rt/ogi/depth: `ogi sim-robot --depth-from ARTIFACT`)"
            )
        self.depth_frames_used = 0
        self.supervisor = SafetySupervisor(cfg.supervisor, n)
        self._rng = np.random.default_rng(0)  # policy_observation's signature; noise is off
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = time.monotonic()
        self.phase = "waiting"
        self._phase_since = 0.0
        self._ramp_from: np.ndarray | None = None
        self._q_des = self.default_pose.copy()
        self._tau_ff = np.zeros(n)
        self._last_action = np.zeros(n)
        self._fallback_since: tuple[ControlMode, float, np.ndarray] | None = None
        self._last_sequence: int | None = None
        self.last_fresh_s: float | None = None  # controller time the newest new-sequence state arrived
        self.last_torque = np.zeros(n)
        self.policy_steps = 0
        self.pd_ticks = 0
        self.policy_overruns = 0
        self.pd_overruns = 0
        self.errors: list[str] = []
        self._pd_periods = np.zeros(1 << 16)
        self._inference_s = np.zeros(1 << 14)
        self._fall_probabilities = np.zeros(1 << 14)

    # ---- clock and events ----------------------------------------------------------------------
    def now(self) -> float:
        """Controller time, s: monotonic wall time since start, times `time_scale`."""
        return (time.monotonic() - self.t0) * self.cfg.time_scale

    def _wall(self, controller_s: float) -> float:
        return controller_s / self.cfg.time_scale

    @property
    def mode(self) -> ControlMode:
        return self.supervisor.mode

    @property
    def events(self) -> list[SafetyEvent]:
        return list(self.supervisor.events)

    def trip(self, cause: str, mode: ControlMode = ControlMode.DAMPING) -> None:
        with self._lock:
            self.supervisor.trip(self.now(), cause, mode)

    def rearm(self, time_s: float | None = None) -> bool:
        """Give the joints back to the policy (fresh recurrent state) if the supervisor agrees and state is fresh.

        time_s: controller time of the request (default now).
        """
        now = self.now() if time_s is None else time_s
        with self._lock:
            if self.phase != "running" or self._stale(now):
                return False
            was = self.supervisor.mode
            ok = self.supervisor.rearm(now)
            if ok and was is not ControlMode.POLICY:
                self.session.reset()
                if self.predictor is not None:
                    self.predictor.reset()
                self._last_action[:] = 0.0
                self._fallback_since = None
            return ok

    def set_command(self, command) -> None:
        """The walking command from now on: (vx m/s, vy m/s, yaw rate rad/s), e.g. a planner's subgoal. A command
        that is not three finite numbers is refused (ValueError) and the one before is kept."""
        value = np.asarray(command, dtype=np.float64)
        if value.shape != (3,) or not np.isfinite(value).all():
            raise ValueError(f"command {command!r} must be three finite numbers (vx, vy, yaw rate)")
        with self._lock:
            self.command = value

    def log_event(self, name: str, data: dict[str, Any] | None = None) -> None:
        """Mark a moment in the motor log, if one is kept (e.g. a planner decision), beside the loops' writes."""
        if self.log is not None:
            with self._lock:
                self.log.event(name, self.now(), self._last_sequence, data)

    def log_image(self, frame: int, state_tick: int, image: np.ndarray) -> None:
        """Keep a camera image the planner read in the motor log, if one is kept."""
        if self.log is not None:
            with self._lock:
                self.log.image(self.now(), frame, state_tick, image)

    def _recoverable(self) -> bool:
        """The current fallback began with a trip that `recover` may hand back after (a limit, a prediction)."""
        last = self.supervisor.events[-1] if self.supervisor.events else None
        return last is not None and last.to_mode == ControlMode.CROUCH.value and last.cause in RECOVERABLE_CAUSES

    def _policy_drives(self) -> bool:
        return self.phase == "running" and self.supervisor.mode is ControlMode.POLICY

    # ---- state freshness -----------------------------------------------------------------------
    def _fresh_state(self) -> RobotState | None:
        state = self.bridge.latest_state()
        if state is not None and state.sequence != self._last_sequence:
            self._last_sequence = state.sequence
            self.last_fresh_s = (state.received_s - self.t0) * self.cfg.time_scale
        return state

    def _stale(self, now: float) -> bool:
        limit = self.cfg.stale_policy_periods * self.policy_period_s
        return self.last_fresh_s is None or now - self.last_fresh_s > limit

    # ---- the policy loop (50 Hz) ---------------------------------------------------------------
    def policy_tick(self, now: float) -> None:
        """One policy step at controller time `now` (the 50 Hz thread calls it; tests may, by hand)."""
        state = self._fresh_state()
        if state is None or self.phase not in ("ramp", "running"):
            return
        if self.feedforward is not None:  # the legs' load changes as the ramp unfolds them
            tau_ff = self.feedforward(state.quat_wxyz, state.q)
            with self._lock:
                self._tau_ff = tau_ff
        if self.phase != "running":
            return
        gravity = obs_def.projected_gravity(state.quat_wxyz[None])[0]
        with self._lock:
            mode = self.supervisor.check(
                now, gravity_body=gravity, ang_vel_body=state.gyro_body, joint_vel=state.dq, action=None
            )
        if mode is ControlMode.CROUCH and self.cfg.recover and self._recoverable() and self.rearm(now):
            mode = ControlMode.POLICY
        if mode is not ControlMode.POLICY:
            return
        depth = None
        if self.depth_camera is not None:
            depth = self._depth_observation(now)
            if depth is None:
                return
        clock = None
        if self.gait is not None:  # the env's clock: k policy steps since the start
            clock = gait.phase(np.array([self.policy_steps]), self.policy_period_s, self.gait.period_s)
        with self._lock:
            command = self.command.copy()
        obs = obs_def.policy_observation(
            state.gyro_body[None],
            gravity[None],
            command[None],
            (state.q - self.default_pose)[None],
            state.dq[None],
            self._last_action[None],
            _NO_NOISE,
            self._rng,
            gait_phase=clock,
            depth=depth,
        )[0]
        started = time.perf_counter()
        action = self.session.step(obs).astype(np.float64)
        probability = None
        if self.predictor is not None:  # p(fall within its horizon) from the window of policy observations
            probability = self.predictor.step(obs)
            self.last_fall_probability = probability
            self._fall_probabilities[self.policy_steps % len(self._fall_probabilities)] = probability
        self._inference_s[self.policy_steps % len(self._inference_s)] = time.perf_counter() - started
        self.policy_steps += 1
        with self._lock:
            mode = self.supervisor.check(
                now,
                gravity_body=gravity,
                ang_vel_body=state.gyro_body,
                joint_vel=state.dq,
                action=action,
                fall_probability=probability,
            )
            if mode is not ControlMode.POLICY:
                return
            action = np.clip(action, -self.action_clip, self.action_clip)
            action[self.held] = 0.0  # as in the walk env: held joints stay at the default pose
            self._last_action = action
            # q_des = default_pose + action_scale * action (+ the clock's swing offsets), as in the walk env
            self._q_des = self.default_pose + self.action_scale * action
            if clock is not None:
                self._q_des = (
                    self._q_des + gait.reference_offsets(clock, self.command[None], self.gait, self._swing_offsets)[0]
                )

    def _depth_observation(self, now: float) -> np.ndarray | None:
        """(1, pixels) the policy's depth field from the newest image, or None after tripping the fallback
        (no image yet, one older than `stale_depth_s`, or one of another size or range than trained)."""
        cam = self.depth_camera
        frame = self.bridge.latest_depth()
        cause = None
        if frame is None or now - (frame.received_s - self.t0) * self.cfg.time_scale > self.cfg.stale_depth_s:
            cause = "stale_depth"
        elif (frame.width, frame.height) != (cam["width"], cam["height"]) or not np.isclose(
            frame.max_range_m, cam["max_range_m"]
        ):
            cause = "depth_layout"
            message = (
                f"depth image {frame.width}x{frame.height} up to {frame.max_range_m} m; the policy was trained on "
                f"{cam['width']}x{cam['height']} up to {cam['max_range_m']} m"
            )
            if not self.errors or self.errors[-1] != message:
                self.errors.append(message)
        if cause is not None:
            with self._lock:
                if self.supervisor.mode is ControlMode.POLICY:
                    self.supervisor.trip(now, cause, ControlMode.CROUCH)
            return None
        self.depth_frames_used += 1
        return frame.observation()[None]

    def _policy_loop(self) -> None:
        period = self.policy_period_s
        next_s = self.now()
        while not self._stop.is_set():
            now = self.now()
            if now < next_s:
                self._stop.wait(self._wall(next_s - now))
                continue
            if now - next_s > self.cfg.policy_overrun_periods * period:
                self.policy_overruns += 1
                if self._policy_drives():
                    self.trip("policy_overrun")
                next_s = now
            try:
                self.policy_tick(now)
            except Exception as err:  # a robot must not keep the last targets after a failure
                self.errors.append(traceback.format_exc())
                self.trip(f"exception: {type(err).__name__}: {err}")
            next_s += period

    # ---- the PD loop (1 kHz) -------------------------------------------------------------------
    def _targets(self, now: float, state: RobotState) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(q_des, kp, kd, tau_ff) for this tick, by start-up phase and supervisor mode."""
        n = self.robot.num_joints
        if self.phase in ("waiting", "zero_torque"):
            return state.q.copy(), np.zeros(n), np.zeros(n), np.zeros(n)
        if self.phase == "ramp":
            s = _smoothstep((now - self._phase_since) / max(self.cfg.ramp_s, 1e-9))
            q_des = self._ramp_from + s * (self.default_pose - self._ramp_from)
            return q_des, self.kp, self.kd, self._tau_ff
        mode = self.supervisor.mode
        if mode is ControlMode.POLICY:
            return self._q_des, self.kp, self.kd, self._tau_ff
        if self._fallback_since is None or self._fallback_since[0] is not mode:
            # the fallback's clock starts at the switch; its start pose is the first measured after it
            since = self.supervisor.mode_since_s
            self._fallback_since = (mode, now if since is None else min(since, now), state.q.copy())
        _, since, q_switch = self._fallback_since
        q_des, kp, kd = fallback_command(
            mode, self.robot, self.cfg.fallback, q=state.q, q_at_switch=q_switch, t_in_mode_s=max(0.0, now - since)
        )
        return q_des, kp, kd, np.zeros(n)

    def _advance_phase(self, now: float, state: RobotState) -> None:
        if self.phase == "waiting":
            self.phase, self._phase_since = "zero_torque", now
        elif self.phase == "zero_torque" and now - self._phase_since >= self.cfg.zero_torque_s:
            self._ramp_from = np.clip(state.q, *np.asarray(self.robot.joint_limits).T)
            if self.feedforward is not None:
                self._tau_ff = self.feedforward(state.quat_wxyz, state.q)
            self.phase, self._phase_since = "ramp", now
        elif self.phase == "ramp" and now - self._phase_since >= self.cfg.ramp_s:
            self.session.reset()
            self._q_des = self.default_pose.copy()
            self.phase, self._phase_since = "running", now

    def pd_tick(self, now: float) -> None:
        """One PD step at controller time `now`: freshness, phase, targets, one motor command."""
        with self._lock:
            state = self._fresh_state()
            if state is None:
                return
            if self.log is not None:
                self.log.state(state)
            if self._stale(now) and self.phase != "waiting":
                if self.phase in ("zero_torque", "ramp"):
                    self.phase = "running"  # start-up is abandoned; the fallback owns the joints
                if self.supervisor.mode is not ControlMode.DAMPING:
                    self.supervisor.trip(now, "stale_state", ControlMode.DAMPING)
            self._advance_phase(now, state)
            q_des, kp, kd, tau_ff = self._targets(now, state)
        # tau = clip(kp (q_des - q) - kd dq + tau_ff, -tau_max, tau_max): the law the env trains with
        tau = pd_torque(state.q, state.dq, q_des, kp, kd, tau_ff, self.limit)
        if self.residual is not None:
            tau, tau_ff = self._add_residual(now, state, tau, tau_ff)
        self.last_torque = tau
        zeros = np.zeros_like(tau)
        if self.cfg.pd_site == "runtime":
            command = MotorCommand(q=q_des, dq=zeros, kp=zeros, kd=zeros, tau=tau, source_sequence=state.sequence)
        else:
            command = MotorCommand(
                q=q_des,
                dq=zeros,
                kp=np.asarray(kp, float),
                kd=np.asarray(kd, float),
                tau=tau_ff,
                source_sequence=state.sequence,
            )
        if not command.is_finite():
            self.supervisor.trip(now, "non_finite_command", ControlMode.DAMPING)
            command = MotorCommand(
                q=zeros, dq=zeros, kp=zeros, kd=self.kd * self.cfg.fallback.damping_kd_scale, tau=zeros
            )
        self.bridge.send(command)
        if self.log is not None:
            self.log.command(self.t0 + self._wall(now), command)  # on the clock states are received on

    def _add_residual(
        self, now: float, state: RobotState, tau: np.ndarray, tau_ff: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Law torque and feed-forward with the actuator residual added, while the policy drives and it is sane."""
        self.residual.observe(state.dq)
        if self.residual_dropped is not None or not self._policy_drives():
            return tau, tau_ff
        started = time.perf_counter()
        r = self.residual(tau)
        i = self.residual_ticks % len(self._residual_s)
        self._residual_s[i] = time.perf_counter() - started
        self.residual_ticks += 1
        if not np.all(np.isfinite(r)):
            self.residual_dropped = f"non-finite residual at {now:.3f} s"  # the law alone from here on
            return tau, tau_ff
        self._residual_abs[i] = float(np.mean(np.abs(r)))
        return tau + r, np.asarray(tau_ff, dtype=float) + r

    def _pd_loop(self) -> None:
        period = self.pd_period_s
        next_s = self.now()
        last_tick: float | None = None
        while not self._stop.is_set():
            now = self.now()
            if now < next_s:
                time.sleep(self._wall(next_s - now))
                continue
            if last_tick is not None:
                gap = now - last_tick
                self._pd_periods[self.pd_ticks % len(self._pd_periods)] = gap
                if gap > self.cfg.pd_overrun_s:
                    self.pd_overruns += 1
                    if self._policy_drives():
                        self.trip("pd_overrun")
            last_tick = now
            try:
                self.pd_tick(now)
            except Exception as err:
                self.errors.append(traceback.format_exc())
                self.trip(f"exception: {type(err).__name__}: {err}")
            self.pd_ticks += 1
            next_s += period
            if now - next_s > self.cfg.pd_overrun_s:
                next_s = now  # do not burst to catch up after a stall

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            raise RuntimeError("the runtime is already running")
        self.t0 = time.monotonic()
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._pd_loop, name="pd-1khz", daemon=True),
            threading.Thread(target=self._policy_loop, name="policy-50hz", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop both loops, then damp the joints for `damping_on_exit_s`."""
        if not self._threads:
            return
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads = []
        with self._lock:
            self.supervisor.trip(self.now(), "stop", ControlMode.DAMPING)
            self.phase = "stopped"
        n = self.robot.num_joints
        zeros = np.zeros(n)
        damping = MotorCommand(q=zeros, dq=zeros, kp=zeros, kd=self.kd * self.cfg.fallback.damping_kd_scale, tau=zeros)
        end = time.monotonic() + self._wall(self.cfg.damping_on_exit_s)
        while True:
            try:
                state = self.bridge.latest_state() if self.cfg.pd_site == "runtime" else None
                if state is not None:
                    tau = pd_torque(state.q, state.dq, state.q, zeros, damping.kd, zeros, self.limit)
                    self.bridge.send(MotorCommand(q=state.q, dq=zeros, kp=zeros, kd=zeros, tau=tau))
                else:
                    self.bridge.send(damping)
            except Exception:  # the link is gone: nothing more can reach the motors from here
                self.errors.append(traceback.format_exc())
                break
            if time.monotonic() >= end:
                break
            time.sleep(self._wall(self.pd_period_s))

    def report(self) -> dict[str, Any]:
        """Counts, timing (PD period jitter, inference latency) and every safety event, as plain data."""
        periods = self._pd_periods[: min(max(self.pd_ticks - 1, 0), len(self._pd_periods))]
        jitter_us = np.abs(periods - self.pd_period_s) * 1e6
        inference_ms = self._inference_s[: min(self.policy_steps, len(self._inference_s))] * 1e3

        def pct(values: np.ndarray, q: float) -> float | None:
            return float(np.percentile(values, q)) if len(values) else None

        return {
            "phase": self.phase,
            "mode": self.supervisor.mode.value,
            "policy_steps": self.policy_steps,
            "pd_ticks": self.pd_ticks,
            "policy_overruns": self.policy_overruns,
            "pd_overruns": self.pd_overruns,
            "pd_jitter_p50_us": pct(jitter_us, 50),
            "pd_jitter_p99_us": pct(jitter_us, 99),
            "inference_p50_ms": pct(inference_ms, 50),
            "inference_p99_ms": pct(inference_ms, 99),
            "fall_predictor": self.predictor is not None,
            "residual": self.residual is not None,
            "residual_ticks": self.residual_ticks,
            "residual_p50_ms": pct(self._residual_s[: min(self.residual_ticks, len(self._residual_s))] * 1e3, 50),
            "residual_p99_ms": pct(self._residual_s[: min(self.residual_ticks, len(self._residual_s))] * 1e3, 99),
            "residual_mean_abs_nm": pct(self._residual_abs[: min(self.residual_ticks, len(self._residual_abs))], 50),
            "residual_dropped": self.residual_dropped,
            "depth_frames_used": self.depth_frames_used,
            "fall_probability_max": float(
                self._fall_probabilities[: min(self.policy_steps, len(self._fall_probabilities))].max()
            )
            if self.predictor is not None and self.policy_steps
            else None,
            "bridge": self.bridge.stats.as_dict(),
            "events": [e.__dict__ for e in self.supervisor.events],
            "errors": list(self.errors),
        }

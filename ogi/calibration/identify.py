"""System identification of a robot's joints and motors from excitation logs, with `mujoco.sysid`.

The identification model is the robot hung in the air (its base welded, as during `ogi excite`), with contacts
off, and one actuator per joint that applies the controllers' motor law `strength (kp (q_cmd - q) - kd dq)`
clamped to strength x the torque limit. It is integrated with MuJoCo's Euler integrator, which keeps the law's
`kd` term explicit, as a motor driver closes it once per tick; joint damping stays implicit, as in every model
here. The command a joint acts on is the one sent `delay` earlier (linear interpolation of the logged
commands on the robot's clock), so the delay is a parameter like any other.

Fitted: per joint class (hip, thigh, calf on a Go2) armature, viscous damping and dry friction; one motor
strength; one command delay. `mujoco.sysid.optimize` (Gauss-Newton on finite-difference Jacobians over
batched rollouts) minimises the joint angle and velocity errors of open-loop rollouts over short windows, each
started from the measured state (multiple shooting: one window's error does not grow into the next's).
Windows are split into fitting and held-out ones; the report gives the held-out error before and after.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np
from mujoco import rollout as mj_rollout
from mujoco import sysid

from ogi.deploy.motorlog import MotorLog
from ogi.envs.scene import hang_base
from ogi.robots import RobotSpec
from ogi.robots.dynamics import DynamicsProfile, JointDynamics

JOINT_BOUNDS = {"armature": (0.001, 0.2), "damping": (0.0, 5.0), "frictionloss": (0.0, 5.0)}
STRENGTH_BOUNDS = (0.3, 2.0)
DELAY_BOUNDS_MS = (0.0, 40.0)
DELAY_SCAN_MS = 3.0  # after a fit, delays this far either side are tried with the rest held
DELAY_SCAN_STEP_MS = 0.25
DELAY_RESCANS = 2


class CalibrationError(ValueError):
    """Logs that cannot calibrate: wrong robot, no excitation, too short, not hung."""


@dataclass
class Window:
    log: int  # index of the log it comes from
    start_s: float  # robot clock
    times: np.ndarray  # (k,) robot clock
    q: np.ndarray  # (k, n) action order
    dq: np.ndarray
    cmd_t: np.ndarray  # the log's commands on the robot clock (whole log: the delay reaches back)
    cmd_q: np.ndarray


def identification_spec(robot: RobotSpec, profile: DynamicsProfile, dt_s: float) -> mujoco.MjSpec:
    """The hung robot with the motor law as actuators, joint sensors, joint dynamics from `profile`."""
    spec = robot.build()
    for collection in (spec.actuators, spec.sensors):
        for item in list(collection):
            spec.delete(item)
    hang_base(spec, robot, (0.0, 0.0, 1.0))
    for key in list(spec.keys):
        spec.delete(key)
    spec.option.timestep = dt_s
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_EULER
    spec.option.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    profile.apply_to_spec(spec, robot)
    s = profile.strength
    for j, name in enumerate(robot.joint_names):
        kp, kd, limit = robot.kp[j], robot.kd[j], robot.torque_limit[j]
        act = spec.add_actuator(name=f"{name}_law", target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.gainprm = [s * kp] + [0.0] * 9
        act.biasprm = [0.0, -s * kp, -s * kd] + [0.0] * 7
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-s * limit, s * limit]
    for name in robot.joint_names:
        spec.add_sensor(name=f"{name}_pos", type=mujoco.mjtSensor.mjSENS_JOINTPOS, objname=name,
                        objtype=mujoco.mjtObj.mjOBJ_JOINT)  # fmt: skip
    for name in robot.joint_names:
        spec.add_sensor(name=f"{name}_vel", type=mujoco.mjtSensor.mjSENS_JOINTVEL, objname=name,
                        objtype=mujoco.mjtObj.mjOBJ_JOINT)  # fmt: skip
    return spec


def excitation_windows(logs: Sequence[MotorLog], robot: RobotSpec, window_s: float) -> list[Window]:
    """Cut each log's excitation phase (its `excite` event to the next) into windows of `window_s`."""
    windows = []
    for i, log in enumerate(logs):
        if log.info.get("robot") != robot.name or log.info.get("joint_names") != list(robot.joint_names):
            raise CalibrationError(f"{log.path}: logged on robot '{log.info.get('robot')}', not '{robot.name}'")
        if log.info.get("routine") != "excite":
            raise CalibrationError(
                f"{log.path}: not an excitation log (routine {log.info.get('routine')!r}); record one with `ogi excite`"
            )
        names = [e["name"] for e in log.events]
        if "excite" not in names:
            raise CalibrationError(f"{log.path}: no excitation phase in the log (phases: {names})")
        begin = log.events[names.index("excite")]
        after = names.index("excite") + 1
        end = log.events[after] if after < len(names) else None
        seq = log.states["sequence"]
        t = log.state_time_s()
        lo = int(np.searchsorted(seq, begin["sequence"]))
        hi = int(np.searchsorted(seq, end["sequence"])) if end is not None else len(seq)
        if (hi - lo) / log.tick_hz < window_s:
            raise CalibrationError(
                f"{log.path}: its excitation lasts {(hi - lo) / log.tick_hz:.2f} s, shorter than one {window_s} s "
                "window" + (" (the log is truncated)" if log.truncated else "")
            )
        cmd_t = log.command_time_s()
        ok = np.isfinite(cmd_t)
        per = round(window_s * log.tick_hz)
        for start in range(lo, hi - per + 1, per):
            rows = slice(start, start + per + 1)
            windows.append(
                Window(
                    log=i,
                    start_s=float(t[start]),
                    times=t[rows],
                    q=log.states["q"][rows],
                    dq=log.states["dq"][rows],
                    cmd_t=cmd_t[ok],
                    cmd_q=log.commands["q"][ok],
                )
            )
    return windows


class Problem:
    """The parameters, the model they build, and rollouts of windows under them."""

    def __init__(self, robot: RobotSpec, start: DynamicsProfile, classes: Sequence[str], tick_hz: float):
        self.robot, self.classes, self.dt = robot, tuple(classes), 1.0 / tick_hz
        self.start = start
        params = sysid.ParameterDict()
        for cls in self.classes:
            dyn = start.joints.get(cls, JointDynamics())
            for name, (low, high) in JOINT_BOUNDS.items():
                value = getattr(dyn, name)
                value = float(np.clip(value if value is not None else (low + high) / 2, low, high))
                params.add(sysid.Parameter(f"{cls}.{name}", value, low, high, modifier=None))
        params.add(sysid.Parameter("strength", float(np.clip(start.strength, *STRENGTH_BOUNDS)), *STRENGTH_BOUNDS))
        params.add(sysid.Parameter("delay_ms", float(np.clip(start.delay_ms, *DELAY_BOUNDS_MS)), *DELAY_BOUNDS_MS))
        params.move_off_bounds()
        self.params = params
        self._spec_cache: dict[bytes, mujoco.MjModel] = {}

    def profile(self, params: sysid.ParameterDict) -> DynamicsProfile:
        return self.start.with_values(**{name: float(p.value[0]) for name, p in params.items()})

    def build(self, params: sysid.ParameterDict, _spec: mujoco.MjSpec | None = None) -> mujoco.MjModel:
        key = params.as_vector().tobytes()
        if key not in self._spec_cache:
            if len(self._spec_cache) > 64:
                self._spec_cache.clear()
            spec = identification_spec(self.robot, self.profile(params), self.dt)
            self._spec_cache[key] = spec.compile()
        return self._spec_cache[key]

    def initial_state(self, model: mujoco.MjModel, w: Window) -> np.ndarray:
        data = mujoco.MjData(model)
        for j, name in enumerate(self.robot.joint_names):
            jid = model.joint(name).id
            data.qpos[model.jnt_qposadr[jid]] = w.q[0, j]
            data.qvel[model.jnt_dofadr[jid]] = w.dq[0, j]
        data.time = w.times[0]
        state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS.value))
        mujoco.mj_getState(model, data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
        return state

    @staticmethod
    def controls(w: Window, times: np.ndarray) -> np.ndarray:
        """(len(times), n) the commands sent at robot times `times` (interpolated between logged ones)."""
        t = times
        return np.stack([np.interp(t, w.cmd_t, w.cmd_q[:, j]) for j in range(w.cmd_q.shape[1])], axis=1)

    def sequences(self, windows: Sequence[Window]) -> sysid.ModelSequences:
        model = self.build(self.params)
        controls, sensors, states, names = [], [], [], []
        for i, w in enumerate(windows):
            controls.append(sysid.TimeSeries(w.times, self.controls(w, w.times)))
            # a rollout's sensor row is read at the start of a step and stamped with the step's end time:
            # measured readings are stamped the same way, or the fitted delay comes out one tick short
            sensors.append(sysid.TimeSeries.from_names(w.times + self.dt, np.hstack([w.q, w.dq]), model))
            states.append(self.initial_state(model, w))
            names.append(f"window{i}")
        spec = identification_spec(self.robot, self.profile(self.params), self.dt)
        return sysid.ModelSequences("robot", spec, names, states, controls, sensors)

    def rollout_fn(self, windows: Sequence[Window]) -> Callable:
        """A `custom_rollout` for sysid that delays each window's commands by the candidate's delay."""
        by_start = {round(w.times[0], 9): w for w in windows}

        def rollout(models, datas, control_signal, initial_states, param_dicts, **mappings):
            n_chunks = len(control_signal) // len(param_dicts)
            controls = []
            for i, ts in enumerate(control_signal):
                delay_s = float(param_dicts[i // n_chunks]["delay_ms"].value[0]) / 1e3
                controls.append(self.controls(by_start[round(ts.times[0], 9)], ts.times[:-1] - delay_s))
            control = np.stack(controls)
            times = np.stack([ts.times[:-1] for ts in control_signal])
            init = np.stack(initial_states)
            state, sensordata = mj_rollout.rollout(list(models), list(datas), init, control)
            return _trajectories(models, init, control, times, state, sensordata, mappings)

        return rollout

    def predict(self, params: sysid.ParameterDict, w: Window) -> np.ndarray:
        """(k-1, n) joint angles an open-loop rollout of the window predicts at its times[1:]."""
        model = self.build(params)
        data = mujoco.MjData(model)
        control = self.controls(w, w.times[:-1] - float(params["delay_ms"].value[0]) / 1e3)[None]
        state, _ = mj_rollout.rollout(model, data, self.initial_state(model, w)[None], control)
        cols = [1 + model.jnt_qposadr[model.joint(name).id] for name in self.robot.joint_names]
        return state[0][:, cols]


def _trajectories(models, init, control, times, state, sensordata, mappings):
    from mujoco.sysid._src.trajectory import arrays2traj

    return arrays2traj(
        list(models),
        init,
        control,
        times,
        state,
        sensordata,
        mappings["rollout_signal_mapping"],
        mappings["rollout_state_mapping"],
        mappings["ctrl_mapping"],
    )


@dataclass
class FitResult:
    profile: DynamicsProfile
    start: DynamicsProfile
    values: dict[str, float]
    intervals: dict[str, float]  # 95% half-widths
    fit_windows: int
    held_out_windows: int
    held_out_rms_before_rad: float
    held_out_rms_after_rad: float
    iterations: int
    cost_start: float
    cost_end: float

    @property
    def traj_error_reduction(self) -> float:
        return 1.0 - self.held_out_rms_after_rad / max(self.held_out_rms_before_rad, 1e-12)


def delay_scan(problem: Problem, params: sysid.ParameterDict, windows: Sequence[Window], around_ms: float) -> float:
    """The delay (ms) within DELAY_SCAN_MS of `around_ms` with the least error, the other parameters held."""
    trial = params.copy()
    low, high = DELAY_BOUNDS_MS
    delays = np.arange(around_ms - DELAY_SCAN_MS, around_ms + DELAY_SCAN_MS + 1e-9, DELAY_SCAN_STEP_MS)
    delays = np.unique(np.clip(np.append(delays, around_ms), low, high))
    errors = []
    for d in delays:
        trial["delay_ms"].value[:] = d
        errors.append(rms_error(problem, trial, windows))
    return float(delays[int(np.argmin(errors))])


def rms_error(problem: Problem, params: sysid.ParameterDict, windows: Sequence[Window]) -> float:
    if not windows:
        return math.nan
    errors = [problem.predict(params, w) - w.q[1:] for w in windows]
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def fit(
    logs: Sequence[MotorLog],
    robot: RobotSpec,
    start: DynamicsProfile,
    *,
    held_out_logs: Sequence[MotorLog] = (),
    held_out_fraction: float = 0.25,
    window_s: float = 1.0,
    classes: Sequence[str] = ("hip", "thigh", "calf"),
    max_iters: int = 30,
    verbose: bool = False,
) -> FitResult:
    """Fit the joint and motor parameters to the logs' excitation; report held-out errors before and after."""
    if not logs:
        raise CalibrationError("no logs to calibrate from")
    rates = {log.tick_hz for log in (*logs, *held_out_logs)}
    if len(rates) != 1:
        raise CalibrationError(f"logs at different robot clock rates {sorted(rates)} Hz")
    tick_hz = rates.pop()
    windows = excitation_windows(logs, robot, window_s)
    if held_out_logs:
        fitting, held = windows, excitation_windows(held_out_logs, robot, window_s)
    else:
        # hold out the last windows of each log: the step train, which a fit on chirps has not seen, is in them
        fitting, held = [], []
        for i in range(len(logs)):
            mine = [w for w in windows if w.log == i]
            cut = len(mine) - max(1, round(held_out_fraction * len(mine))) if len(mine) > 1 else len(mine)
            fitting += mine[:cut]
            held += mine[cut:]
    problem = Problem(robot, start, classes, tick_hz)
    initial = problem.params.copy()
    before = rms_error(problem, initial, held)
    residual_fn = sysid.build_residual_fn(
        models_sequences=[problem.sequences(fitting)],
        build_model=problem.build,
        custom_rollout=problem.rollout_fn(fitting),
    )
    params = problem.params
    iterations = 0
    for round_ in range(DELAY_RESCANS + 1):
        # the backend prints every iteration whatever optimize's `verbose` says: keep it off a quiet terminal
        with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
            opt_params, result = sysid.optimize(
                initial_params=params, residual_fn=residual_fn, optimizer="mujoco", verbose=verbose, max_iters=max_iters
            )
        iterations += len(result.get("extras", {}).get("objective", []))
        # the cost has kinks at whole ticks of delay (commands are interpolated between ticks), where
        # Gauss-Newton can stall with the other parameters compensating: look around, restart if better
        delay = float(opt_params["delay_ms"].value[0])
        best = delay_scan(problem, opt_params, fitting, delay)
        if round_ == DELAY_RESCANS or abs(best - delay) < DELAY_SCAN_STEP_MS:
            break
        params = opt_params.copy()
        params["delay_ms"].value[:] = best
    residuals, _, _ = residual_fn(result.x, opt_params.copy())
    _, halfwidths = sysid.calculate_intervals(residuals, result.jac)
    names = [name for name, _ in opt_params.items()]
    values = {name: float(opt_params[name].value[0]) for name in names}
    after = rms_error(problem, opt_params, held)
    start_cost = float(np.sum(np.concatenate(residual_fn(initial.as_vector(), initial.copy())[0]) ** 2)) / 2
    end_cost = float(np.sum(np.concatenate(residuals) ** 2)) / 2
    return FitResult(
        profile=problem.profile(opt_params),
        start=start,
        values=values,
        intervals={name: float(h) for name, h in zip(names, np.atleast_1d(halfwidths))},
        fit_windows=len(fitting),
        held_out_windows=len(held),
        held_out_rms_before_rad=before,
        held_out_rms_after_rad=after,
        iterations=iterations,
        cost_start=start_cost,
        cost_end=end_cost,
    )

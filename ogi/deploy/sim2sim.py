"""Sim-to-sim: an exported policy (ONNX + manifest) walked by the deployment runtime on the 1 kHz robot.

The same `Runtime` and `SimRobot` as `ogi deploy --bridge sim`, stepped by hand on one clock (controller time
= simulated time) instead of two real-time threads, so the figures do not depend on how busy the machine is:
each millisecond the runtime runs one PD tick and the robot one physics step; every 20 ms the policy steps.
The robot starts lying folded, the runtime ramps it up, then each command is held and tracking is measured
on the full-fidelity model the training env only approximated.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from ogi.deploy.artifact import Artifact
from ogi.deploy.bridge import CameraFrame, DepthFrame, LinkStats, MotorCommand, Odometry, RobotState
from ogi.deploy.runtime import Runtime, RuntimeConfig
from ogi.deploy.sim_robot import SimRobot, SimRobotConfig, camera_for
from ogi.robots import get_robot
from ogi.robots.dynamics import DynamicsProfile

# (vx m/s, vy m/s, yaw rate rad/s): one per command family the walking benchmark judges
DEFAULT_COMMANDS = ((0.6, 0.0, 0.0), (-0.5, 0.0, 0.0), (0.0, 0.35, 0.0), (0.0, 0.0, 0.8), (0.4, -0.2, 0.4))
MIN_BASE_HEIGHT_FRACTION = 0.5
MAX_TILT_RAD = 1.0


class _SteppedBridge:
    """The sim bridge with states stamped in simulated seconds, so freshness is judged on the shared clock."""

    def __init__(self, robot: SimRobot):
        self.robot = robot
        self.stats = LinkStats()

    def latest_state(self) -> RobotState | None:
        state = self.robot.latest_state()
        return None if state is None else dataclasses.replace(state, received_s=self.robot.sim_time_s)

    @property
    def has_depth(self) -> bool:
        return self.robot.depth_camera is not None

    def latest_depth(self) -> DepthFrame | None:
        frame = self.robot.latest_depth()
        if frame is None:
            return None
        return dataclasses.replace(frame, received_s=frame.state_tick / self.robot.cfg.physics_hz)

    @property
    def has_head_camera(self) -> bool:
        return self.robot.ray_camera is not None

    def latest_image(self) -> CameraFrame | None:
        frame = self.robot.latest_image()
        return None if frame is None else dataclasses.replace(frame, received_s=self._stamp(frame.state_tick))

    def latest_odometry(self) -> Odometry | None:
        odometry = self.robot.latest_odometry()
        return None if odometry is None else dataclasses.replace(odometry, received_s=self._stamp(odometry.state_tick))

    def _stamp(self, tick: int) -> float:
        return tick / self.robot.cfg.physics_hz

    def send(self, command: MotorCommand) -> None:
        self.robot.apply(command)

    def close(self) -> None:
        pass


def _base_velocity_body(sim: SimRobot) -> tuple[np.ndarray, float]:
    """(linear velocity (3,) m/s in the base frame, yaw rate rad/s) of the simulated robot."""
    velocity = np.zeros(6)  # [angular (3), linear (3)], body frame
    mujoco.mj_objectVelocity(sim.model, sim.data, mujoco.mjtObj.mjOBJ_BODY, sim._base_id, velocity, 1)
    return velocity[3:], float(velocity[2])


def walk_command(
    artifact: Artifact,
    command: tuple[float, float, float],
    *,
    seconds: float,
    settle_s: float = 2.0,
    start_up_s: float = 3.0,
    terrain: str | None = None,
    terrain_difficulty: float = 0.5,
    terrain_seed: int = 7,
    dynamics: DynamicsProfile | None = None,
    joint_noise: tuple[float, float] = (0.0, 0.0),
    runtime_cfg: RuntimeConfig | None = None,
) -> dict[str, Any]:
    """Hold one command for `seconds` after start-up; mean linear and yaw-rate errors after `settle_s`.

    A quadruped starts lying folded and goes through the runtime's whole start-up (zero torque, then the ramp to
    its stance). A two-legged robot cannot stand up from the ground that way: it starts standing, as if held in a
    gantry, with no zero-torque phase; the ramp then holds its default pose until the policy takes over.
    `dynamics` makes the robot differ from its model (`ogi.robots.dynamics`), `joint_noise` adds encoder noise
    (std of angles rad, velocities rad/s) to what it publishes; `runtime_cfg` sets the runtime's
    options (its command and zero-torque time are this function's).
    """
    spec = get_robot(artifact.robot_name)
    two_legged = len(spec.foot_sites) == 2
    sim = SimRobot(
        spec,
        SimRobotConfig(
            start="stand" if two_legged else "lying",
            terrain=terrain,
            terrain_difficulty=terrain_difficulty,
            terrain_seed=terrain_seed,
            depth_camera=camera_for(artifact.manifest),
            dynamics=dynamics,
            joint_noise=joint_noise,
        ),
    )
    runtime_cfg = dataclasses.replace(
        runtime_cfg or RuntimeConfig(),
        command=command,
        zero_torque_s=0.0 if two_legged else RuntimeConfig.zero_torque_s,
    )
    runtime = Runtime(artifact, _SteppedBridge(sim), runtime_cfg)
    runtime.t0 = 0.0
    policy_every = round(runtime.policy_period_s / runtime.pd_period_s)
    ticks = round((start_up_s + seconds) / runtime.pd_period_s)
    measure_from = round((start_up_s + settle_s) / runtime.pd_period_s)
    lin_errors, yaw_errors = [], []
    fell = False
    for tick in range(ticks):
        now = tick * runtime.pd_period_s
        if tick % policy_every == 0:
            runtime.policy_tick(now)
        runtime.pd_tick(now)
        sim.step(1)
        if tick >= measure_from:
            v_body, yaw_rate = _base_velocity_body(sim)
            lin_errors.append(float(np.linalg.norm(np.asarray(command[:2]) - v_body[:2])))
            yaw_errors.append(abs(command[2] - yaw_rate))
            if sim.fallen(MIN_BASE_HEIGHT_FRACTION, MAX_TILT_RAD):
                fell = True
                break
    report = runtime.report()
    return {
        "command": list(command),
        "residual_p99_ms": report["residual_p99_ms"],
        "residual_mean_abs_nm": report["residual_mean_abs_nm"],
        "residual_dropped": report["residual_dropped"],
        "tracking_error_mps": float(np.mean(lin_errors)) if lin_errors else float("nan"),
        "yaw_error_radps": float(np.mean(yaw_errors)) if yaw_errors else float("nan"),
        "fell": fell,
        "safety_events": [event.cause for event in runtime.events],
        "seconds_walked": len(lin_errors) * runtime.pd_period_s,
        "depth_frames_used": runtime.depth_frames_used,
        "distance_m": float(np.linalg.norm(sim.base_position()[:2] - sim.start_xy)),
        "ground_reached_m": float(sim.ground_height(sim.base_position()[None, :2])[0]),
        "terrain": None
        if terrain is None
        else {"kind": terrain, "difficulty": terrain_difficulty, "seed": terrain_seed},
    }


def robot_commands(robot: str) -> tuple[tuple[float, float, float], ...]:
    """`DEFAULT_COMMANDS` clipped into the robot's command space (its `walk` preset's ranges)."""
    from ogi.training.config import preset

    space = preset(robot).env.commands
    low, high = zip(space.lin_vel_x_mps, space.lin_vel_y_mps, space.yaw_rate_radps)
    return tuple(tuple(float(v) for v in np.clip(c, low, high)) for c in DEFAULT_COMMANDS)


def sim_to_sim(
    run: Path,
    artifact_dir: Path,
    *,
    seconds: float = 20.0,
    commands: tuple[tuple[float, float, float], ...] | None = None,
) -> dict[str, Any]:
    """Export `run` to `artifact_dir`, walk each command on the 1 kHz robot; the summary over commands.

    By default the five `DEFAULT_COMMANDS`, each clipped into the robot's command space (its walk preset's).
    """
    from ogi.deploy.export import export_policy

    artifact = export_policy(Path(run), Path(artifact_dir))
    if commands is None:
        commands = robot_commands(artifact.robot_name)
    runs = [walk_command(artifact, command, seconds=seconds) for command in commands]
    return {
        "tracking_error_mps": float(np.mean([r["tracking_error_mps"] for r in runs])),
        "yaw_error_radps": float(np.mean([r["yaw_error_radps"] for r in runs])),
        "fell": any(r["fell"] for r in runs),
        "physics_hz": 1000,
        "per_command": runs,
    }


def walk_instruction(
    artifact: Artifact,
    text: str | None,
    decider,
    *,
    layout_seed: int = 0,
    episode=None,
    start_up_s: float = 4.0,
    runtime_cfg: RuntimeConfig | None = None,
    on_decision=None,
) -> dict[str, Any]:
    """An instruction through the deployment runtime on the 1 kHz robot standing in an arena, on one clock: the
    robot starts lying at the layout's start, the runtime stands it up, then `decider` (`ogi.hierarchy.episodes`:
    the planner or the oracle) drives the walking command at 5 Hz from the robot's head camera and odometry until
    STOP, a fall or the time limit (`ogi.deploy.instruction`). The first random layout from `layout_seed` that
    holds what `text` names (`ogi.hierarchy.run.layout_for`), or `episode`'s layout and instruction (an
    `ogi.hierarchy.episodes.Episode`, e.g. a held-out one; `text` None). Returns the judged outcome, the rates of the
    three loops over the instruction's time and the runtime's safety events."""
    from ogi.deploy.instruction import InstructionLoop
    from ogi.hierarchy.run import layout_for

    if (text is None) == (episode is None):
        raise ValueError("walk_instruction takes the words (text) or an episode, not both")
    if episode is not None:
        layout, instruction, seed = episode.layout, episode.instruction, None
    else:
        layout, instruction, seed = layout_for(text, layout_seed)
    sim = SimRobot(get_robot(artifact.robot_name), SimRobotConfig(layout=layout))
    bridge = _SteppedBridge(sim)
    runtime = Runtime(artifact, bridge, dataclasses.replace(runtime_cfg or RuntimeConfig(), command=(0.0, 0.0, 0.0)))
    runtime.t0 = 0.0
    loop = InstructionLoop(
        runtime, bridge, instruction, decider, layout=layout, fallen=sim.is_down, on_decision=on_decision
    )
    policy_every = round(runtime.policy_period_s / runtime.pd_period_s)
    ticks = round((start_up_s + loop.time_limit_s + 1.0) / runtime.pd_period_s)
    for tick in range(ticks):
        now = tick * runtime.pd_period_s
        if tick % policy_every == 0:
            loop.tick(now)
            if loop.done.is_set():
                break
            runtime.policy_tick(now)
        runtime.pd_tick(now)
        runtime.pd_ticks += 1  # as the runtime's own 1 kHz loop counts its ticks
        sim.step(1)
    outcome = loop.outcome()
    return {
        **outcome.as_dict(),
        "layout_seed": seed,
        "objects": [f"{o.name} at ({o.xy[0]:.1f}, {o.xy[1]:.1f})" for o in layout.objects],
        "safety_events": [event.cause for event in runtime.events],
        "image_frames": sim.image_frames,
    }

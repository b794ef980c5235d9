"""The functions behind `ogi deploy` and `ogi sim-robot`: wiring artifact, bridge, runtime and simulated robot.

Both run until their time is up or SIGINT/SIGTERM arrives, then shut down in order (the runtime damps the
joints before the link closes). `ogi sim-robot` also takes SIGUSR1 to stop publishing states (a link loss the
runtime must catch) and SIGUSR2 to resume, and can write a JSON-lines trace of the simulated base.
"""

from __future__ import annotations

import contextlib
import gc
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ogi.deploy.artifact import ArtifactError, load_artifact
from ogi.deploy.runtime import Runtime, RuntimeConfig
from ogi.deploy.sim_robot import SimRobot, SimRobotConfig, camera_for
from ogi.robots import get_robot
from ogi.robots.dynamics import load_profile

BRIDGES = ("sim", "dds")
DEFAULT_SECONDS = 20.0
INSTRUCTION_START_UP_S = 15.0  # allowed beyond an instruction's time limit: start-up, stand-up, a fallback or two


@contextlib.contextmanager
def stop_on_signals(extra: dict[int, Any] | None = None) -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (handlers restored after); main thread only."""
    stop = threading.Event()
    handlers = {signal.SIGINT: lambda *_: stop.set(), signal.SIGTERM: lambda *_: stop.set(), **(extra or {})}
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def deploy(
    artifact_dir: Path,
    *,
    bridge: str,
    seconds: float | None,
    command_vx: float,
    command_vy: float = 0.0,
    command_yaw: float = 0.0,
    domain_id: int = 1,
    time_scale: float = 1.0,
    pd_site: str = "motor",
    max_age_s: float | None = 0.1,
    interface: str = "lo",
    on_start: Callable[[], None] | None = None,
    recover: bool = False,
    use_fall_predictor: bool = True,
    terrain: str | None = None,
    terrain_difficulty: float = 0.5,
    log_path: Path | None = None,
    dynamics: Path | None = None,
    use_residual: bool = True,
    instruction: str | None = None,
    layout_seed: int = 0,
    planner: Path | None = None,
    oracle: bool = False,
    on_decision: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Run an artifact on a bridge for `seconds` (controller time; None: 20 s, or with an instruction its time limit
    and 15 s to stand up); returns the runtime's report.

    instruction: with the sim bridge, stand the robot in a random arena that holds what the words name (the first
    from `layout_seed`) and let the 5 Hz planner (`planner`, default the shipped go2 planner; or the scripted
    `oracle`) drive the walking command from the head camera and odometry (`ogi.deploy.instruction`); the run
    ends when the instruction does (or after `seconds`). The report adds `instruction`: the judged outcome, each
    decision, the rates of the three loops; `on_decision(decision)` sees each decision as it is made.

    log_path: record every state read and command sent to this motor log (MCAP, `ogi.deploy.motorlog`).
    dynamics: with the sim bridge, a profile TOML making the simulated robot differ from its model.

    bridge "sim": a simulated robot in this process (the report adds its base displacement and height);
    "dds": the robot on the DDS domain (`ogi sim-robot --bridge dds` or a real robot).
    """
    if bridge not in BRIDGES:
        raise ValueError(f"bridge {bridge!r} must be one of {', '.join(BRIDGES)}")
    if dynamics is not None and bridge != "sim":
        raise ValueError(f"--dynamics shapes the simulated robot; with --bridge {bridge} give it to `ogi sim-robot`")
    if terrain is not None and bridge != "sim":
        raise ValueError(f"--terrain places the simulated robot; with --bridge {bridge} give it to `ogi sim-robot`")
    layout = instruction_text = decider = None
    if instruction is not None:
        if bridge != "sim":
            raise ValueError(
                f"--instruction needs the head camera and odometry the planner reads; the {bridge} bridge carries "
                "neither yet: use --bridge sim"
            )
        if terrain is not None:
            raise ValueError("--instruction stands the robot in an arena on flat ground: leave out --terrain")
        from ogi.hierarchy.run import layout_for, load_decider

        layout, instruction_text, layout_seed = layout_for(instruction, layout_seed)
        decider = load_decider(planner, oracle=oracle)
        if seconds is None:  # the instruction's own time limit, after the robot has stood up
            from ogi.envs.instructions import time_limit_for

            seconds = time_limit_for(instruction_text) + INSTRUCTION_START_UP_S
    if seconds is None:
        seconds = DEFAULT_SECONDS
    artifact = load_artifact(artifact_dir)
    cfg = RuntimeConfig(
        command=(command_vx, command_vy, command_yaw),
        time_scale=time_scale,
        pd_site=pd_site,
        recover=recover,
        use_fall_predictor=use_fall_predictor,
        use_residual=use_residual,
    )
    sim = None
    if bridge == "sim":
        from ogi.deploy.bridge import SimBridge

        sim = SimRobot(
            get_robot(artifact.robot_name),
            SimRobotConfig(
                time_scale=time_scale,
                terrain=terrain,
                terrain_difficulty=terrain_difficulty,
                depth_camera=camera_for(artifact.manifest),
                dynamics=load_profile(dynamics) if dynamics is not None else None,
                layout=layout,
            ),
        )
        link = SimBridge(sim)
        sim.start()
    else:
        from ogi.deploy.dds import DdsBridge, interface_config

        link = DdsBridge(
            artifact.manifest["robot"]["sdk_motor_index"],
            artifact.num_joints,
            domain_id=domain_id,
            max_age_s=max_age_s,
            config=interface_config(interface),
            depth=camera_for(artifact.manifest) is not None,
        )
    start_xyz = sim.base_position() if sim is not None else None
    log = None
    if log_path is not None:
        from ogi.deploy.motorlog import MotorLogWriter

        robot = get_robot(artifact.robot_name)
        meta = {"routine": "deploy", "bridge": bridge, "artifact": str(artifact_dir), "time_scale": time_scale}
        log = MotorLogWriter(log_path, robot, tick_hz=1000.0, meta=meta)
    runtime = Runtime(artifact, link, cfg, log=log)
    loop = None
    if instruction_text is not None:
        from ogi.deploy.instruction import InstructionLoop

        runtime.set_command((0.0, 0.0, 0.0))  # nothing moves until the planner says so
        loop = InstructionLoop(
            runtime, link, instruction_text, decider, layout=layout, fallen=sim.is_down, on_decision=on_decision
        )
    # a full garbage collection over set-up's objects (torch, onnx) would stall both loops for tens of ms
    gc.freeze()
    with stop_on_signals() as stop:
        runtime.start()
        planner_thread, halt = None, threading.Event()
        if loop is not None:
            planner_thread = threading.Thread(target=loop.run, args=(halt,), name="planner-5hz", daemon=True)
            planner_thread.start()
        if on_start is not None:
            on_start()
        try:
            end = time.monotonic() + seconds / time_scale
            while not stop.is_set() and time.monotonic() < end:
                if loop is not None and loop.done.is_set():
                    break
                stop.wait(min(0.05, max(0.0, end - time.monotonic())))
        finally:
            if planner_thread is not None:
                halt.set()
                planner_thread.join(timeout=2.0)
            runtime.stop()
            link.close()
            if sim is not None:
                sim.stop()
            if log is not None:
                log.close()
            gc.unfreeze()
    report = runtime.report()
    report["interrupted"] = stop.is_set()
    if loop is not None:
        outcome = loop.outcome()
        report["instruction"] = {
            **outcome.as_dict(),
            "layout_seed": layout_seed,
            "objects": [f"{o.name} at ({o.xy[0]:.1f}, {o.xy[1]:.1f})" for o in layout.objects],
            "decision_log": [d.__dict__ for d in outcome.decisions],
            "planner_read": getattr(decider, "read_texts", {}).get(0),  # the words after the rewrite (None: oracle)
        }
    if sim is not None:
        end = sim.base_position()
        report["base_displacement_m"] = (end - start_xyz).tolist()
        report["base_height_m"] = float(end[2])
        report["sim_slips"] = sim.slips
        report["ground_height_m"] = float(sim.ground_height(end[None, :2])[0])
    return report


def serve_sim_robot(
    *,
    robot: str,
    seconds: float,
    domain_id: int,
    state_hz: float,
    time_scale: float,
    trace: Path | None,
    max_age_s: float | None,
    start: str = "lying",
    terrain: str | None = None,
    terrain_difficulty: float = 0.5,
    depth_from: Path | None = None,
    dynamics: Path | None = None,
) -> dict[str, Any]:
    """Play `robot` over DDS in real time until `seconds` pass or a signal stops it; returns a summary."""
    from ogi.deploy.dds import DdsRobotServer
    from ogi.deploy.export import sdk_motor_index

    spec = get_robot(robot)
    index = sdk_motor_index(spec)
    if index is None:
        raise ArtifactError(f"robot '{robot}' has no SDK motor order; the DDS bridge cannot serve it")
    every = round(1000.0 / state_hz)
    if not 1 <= every <= 100 or abs(1000.0 / every - state_hz) > 1e-6:
        raise ValueError(f"--state-hz {state_hz} must divide the 1000 Hz physics rate (1000, 500, 250, ...)")
    camera = camera_for(load_artifact(depth_from).manifest) if depth_from is not None else None
    sim = SimRobot(
        spec,
        SimRobotConfig(
            state_every=every,
            time_scale=time_scale,
            start=start,
            terrain=terrain,
            terrain_difficulty=terrain_difficulty,
            depth_camera=camera,
            dynamics=load_profile(dynamics) if dynamics is not None else None,
        ),
    )
    server = DdsRobotServer(sim, index, domain_id=domain_id, max_age_s=max_age_s)
    pause = {signal.SIGUSR1: lambda *_: server.publishing.clear(), signal.SIGUSR2: lambda *_: server.publishing.set()}
    start_xyz = sim.base_position()
    out = open(trace, "w") if trace is not None else None
    wall0 = time.monotonic()
    gc.freeze()
    with stop_on_signals(pause) as stop:
        sim.start()
        try:
            while not stop.wait(0.1) and time.monotonic() - wall0 < seconds / time_scale:
                if out is not None:
                    out.write(
                        json.dumps(
                            {
                                "wall_s": time.monotonic() - wall0,
                                "sim_s": sim.sim_time_s,
                                "base_xyz": sim.base_position().tolist(),
                                "publishing": server.publishing.is_set(),
                                "commands": server.stats.received,
                                "slips": sim.slips,
                            }
                        )
                        + "\n"
                    )
                    out.flush()
        finally:
            sim.stop()
            server.close()
            gc.unfreeze()
            if out is not None:
                out.close()
    latency_ms = np.asarray(server.latency_s) * 1e3
    return {
        "sim_s": sim.sim_time_s,
        "slips": sim.slips,
        "base_displacement_m": (sim.base_position() - start_xyz).tolist(),
        "link": server.stats.as_dict(),
        "depth_images_sent": server.depth_sent,
        "state_to_command_samples": len(latency_ms),
        "state_to_command_p50_ms": float(np.percentile(latency_ms, 50)) if len(latency_ms) else None,
        "state_to_command_p99_ms": float(np.percentile(latency_ms, 99)) if len(latency_ms) else None,
    }

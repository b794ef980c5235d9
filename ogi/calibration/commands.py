"""`ogi excite` and `ogi calibrate`: identification runs and fits, as thin layers over `ogi.calibration`.

`register(app)` adds both verbs to a Typer app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ogi.terminal import dumps_strict, fail


def excite(
    out: Annotated[Path, typer.Option(help="Motor log to write (MCAP).")],
    robot: Annotated[str, typer.Option(help="Robot to excite.")] = "go2",
    bridge: Annotated[
        str,
        typer.Option(
            help="sim: a simulated robot hung in this process, stepped as fast as it computes; dds: the robot on "
            "the DDS domain (`ogi sim-robot --start hung`, or a real robot hanging free on a gantry)."
        ),
    ] = "sim",
    seconds: Annotated[float, typer.Option(min=1.0, max=3600.0, help="Length of the excitation itself.")] = 20.0,
    amplitude: Annotated[float, typer.Option(min=0.01, max=1.0, help="Largest target offset, rad.")] = 0.35,
    f_high: Annotated[float, typer.Option(min=0.5, max=20.0, help="Highest chirp frequency, Hz.")] = 4.0,
    seed: Annotated[int, typer.Option(help="Chirp phases and step levels.")] = 0,
    dynamics: Annotated[
        Path | None,
        typer.Option(help="With --bridge sim: the simulated robot differs from its model by this profile (TOML)."),
    ] = None,
    domain_id: Annotated[int, typer.Option(min=0, max=232, help="DDS domain (0: a real robot, 1: simulator).")] = 1,
    interface: Annotated[str, typer.Option(help="Network interface for DDS (lo: loopback only).")] = "lo",
    tick_hz: Annotated[float, typer.Option(help="Rate of the robot's state counter (LowState_.tick).")] = 1000.0,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists.")] = False,
) -> None:
    """Excite every joint of a robot hung in the air (chirps, then steps) and log commands and states to MCAP.

    The robot must hang free: its feet must touch nothing. Gains are the robot's own kp and kd; targets stay
    within --amplitude of the default pose and inside the joint limits. Feed the log to `ogi calibrate`.
    """
    import numpy as np
    from rich.progress import Progress

    from ogi.deploy.bridge import MotorCommand
    from ogi.deploy.excite import ExciteConfig, Exciter, run_realtime, run_stepped
    from ogi.deploy.launch import stop_on_signals
    from ogi.deploy.motorlog import MotorLogWriter
    from ogi.robots import get_robot
    from ogi.robots.dynamics import ProfileError, load_profile

    if out.exists() and not force:
        fail(f"{out} exists; choose another --out or pass --force")
    if bridge not in ("sim", "dds"):
        fail(f"--bridge {bridge!r} must be 'sim' or 'dds'")
    if dynamics is not None and bridge != "sim":
        fail("--dynamics shapes the simulated robot; with --bridge dds give it to `ogi sim-robot --dynamics`")
    try:
        spec = get_robot(robot)
        cfg = ExciteConfig(seconds=seconds, amplitude_rad=amplitude, f_high_hz=f_high, seed=seed)
        profile = load_profile(dynamics) if dynamics is not None else None
    except (KeyError, ValueError, ProfileError) as err:
        fail(err)
    meta = {"routine": "excite", "bridge": bridge, "excite": cfg.__dict__, "time_scale": 1.0}
    with Progress(transient=True) as progress, MotorLogWriter(out, spec, tick_hz=tick_hz, meta=meta) as log:
        task = progress.add_task("exciting", total=cfg.total_s)
        if bridge == "sim":
            from ogi.deploy.sim2sim import _SteppedBridge
            from ogi.deploy.sim_robot import SimRobot, SimRobotConfig

            sim = SimRobot(spec, SimRobotConfig(start="hung", dynamics=profile))
            exciter = Exciter(spec, _SteppedBridge(sim), cfg, log)
            run_stepped(exciter, sim, progress=lambda t: progress.update(task, completed=t))
        else:
            from ogi.deploy.dds import DdsBridge, interface_config
            from ogi.deploy.export import sdk_motor_index

            index = sdk_motor_index(spec)
            if index is None:
                fail(f"robot '{robot}' has no SDK motor order; the DDS bridge cannot drive it")
            link = DdsBridge(index, spec.num_joints, domain_id=domain_id, config=interface_config(interface))
            exciter = Exciter(spec, link, cfg, log)
            start = None
            with stop_on_signals() as stop:
                try:

                    def tick(now: float) -> None:
                        nonlocal start
                        start = now if start is None else start
                        progress.update(task, completed=now - start)

                    run_realtime(exciter, progress=tick, stop=stop.is_set)
                finally:
                    zeros = np.zeros(spec.num_joints)
                    link.send(MotorCommand(q=zeros, dq=zeros, kp=zeros, kd=np.asarray(spec.kd), tau=zeros))
                    link.close()
    print(
        dumps_strict(
            {
                "log": str(out),
                "phase": exciter.phase,
                "states": log.samples["state"],
                "commands": log.samples["command"],
                "excite_s": cfg.seconds,
            }
        )
    )
    if exciter.phase != "done":
        fail(f"the excitation stopped in phase '{exciter.phase}'; the log keeps what was recorded")


def calibrate(
    logs: Annotated[list[Path], typer.Argument(help="Motor logs from `ogi excite` to fit on.")],
    out: Annotated[Path, typer.Option(help="Directory for the calibrated robot (robot.toml, robot.xml, report).")],
    robot: Annotated[str, typer.Option(help="The robot the logs come from.")] = "go2",
    held_out: Annotated[
        list[Path] | None,
        typer.Option(help="Logs kept out of the fit to judge it (default: the last quarter of each log)."),
    ] = None,
    start: Annotated[
        Path | None, typer.Option(help="Profile TOML to start from (default: the robot model's own values).")
    ] = None,
    window_s: Annotated[float, typer.Option(min=0.1, max=10.0, help="Open-loop window length, s.")] = 1.0,
    max_iters: Annotated[int, typer.Option(min=1, max=500, help="Gauss-Newton iterations per round.")] = 30,
    force: Annotated[bool, typer.Option(help="Write into a non-empty --out.")] = False,
    verbose: Annotated[bool, typer.Option(help="Print the optimizer's iterations.")] = False,
) -> None:
    """Fit joint armature, damping, dry friction, motor strength and command delay to excitation logs.

    Uses mujoco.sysid (Gauss-Newton over batched rollouts of the hung robot). Writes the calibrated robot with a
    manifest hashing every file and naming every log it came from; prints the report.
    """
    from ogi.calibration.calibrate import calibrate as run_calibrate
    from ogi.calibration.calibrate import report_markdown
    from ogi.calibration.identify import CalibrationError
    from ogi.replay.format import RecordingError
    from ogi.robots.dynamics import ProfileError

    print(f"calibrating {robot} from {len(logs)} log(s): a minute or two per 20 s of excitation", flush=True)
    try:
        report = run_calibrate(
            logs,
            robot,
            out,
            held_out=held_out or (),
            start_profile=start,
            window_s=window_s,
            max_iters=max_iters,
            force=force,
            verbose=verbose,
        )
    except (CalibrationError, RecordingError, ProfileError, KeyError) as err:
        fail(err)
    print(report_markdown(report))
    print(f"wrote {out}/robot.toml, robot.xml, report.json, report.md, manifest.json")


def train_residual(
    logs: Annotated[list[Path], typer.Argument(help="Motor logs from `ogi excite` to learn from.")],
    out: Annotated[Path, typer.Option(help="Run directory for the residual's checkpoint.")],
    robot: Annotated[str, typer.Option(help="The robot the logs come from.")] = "go2",
    held_out: Annotated[list[Path] | None, typer.Option(help="Logs kept out of training to judge it.")] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="What the motors should feel like: a calibration directory (`ogi calibrate`) or a profile TOML; "
            "default the robot model's own motors. Use the model the policy was trained on."
        ),
    ] = None,
    steps: Annotated[int, typer.Option(min=1, max=1_000_000, help="Optimizer steps.")] = 3000,
    seed: Annotated[int, typer.Option(help="Initialisation and batches.")] = 0,
) -> None:
    """Learn the 1 kHz actuator residual from excitation logs; export it with `ogi export --residual`.

    The residual is an inverse actuator model: the torque to add to the law's so that the joints move as the
    reference model's would. It cannot undo a command delay (it adds torque, it cannot send earlier).
    """
    from rich.progress import Progress

    from ogi.calibration.calibrate import load_calibration
    from ogi.calibration.identify import CalibrationError
    from ogi.calibration.residual import train_residual as run_train
    from ogi.checkpoints import CheckpointError, file_sha256
    from ogi.replay.format import RecordingError
    from ogi.robots.dynamics import ProfileError, load_profile

    try:
        profile, source = None, None
        if reference is not None and reference.is_dir():
            profile, manifest = load_calibration(reference)
            source = {"calibration": str(reference), "manifest_files": manifest["files"]}
        elif reference is not None:
            profile = load_profile(reference)
            source = {"profile": str(reference), "sha256": file_sha256(reference)}
        with Progress(transient=True) as progress:
            task = progress.add_task("training residual", total=steps)
            checkpoint, scores = run_train(
                logs,
                robot,
                out,
                held_out=held_out or (),
                reference=profile,
                reference_source=source,
                steps=steps,
                seed=seed,
                progress=lambda step, loss: progress.update(task, completed=step, description=f"loss {loss:.4f}"),
            )
    except (CalibrationError, RecordingError, ProfileError, CheckpointError, KeyError) as err:
        fail(err)
    print(dumps_strict({"checkpoint": str(checkpoint.path), **scores}))


def register(app: typer.Typer) -> None:
    app.command("excite")(excite)
    app.command("calibrate")(calibrate)
    app.command("train-residual")(train_residual)

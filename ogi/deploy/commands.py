"""`ogi export`, `ogi sim-robot`, `ogi deploy`: thin command-line layers over `ogi.deploy`'s functions.

`register(app)` adds the three verbs to a Typer app (the `ogi` entry point, or `python -m ogi.deploy`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ogi.terminal import dumps_strict, fail, print_error

console = Console()
TERRAIN_HELP = (
    "Stand the simulated robot on a course of this terrain kind (flat, rough, slope_up, slope_down, stairs_up, "
    "stairs_down, obstacles, stepping_stones, gaps, waves), from a seed of its own: the robot starts on the "
    "course's centre platform."
)
DIFFICULTY_HELP = "The course's difficulty, 0-1, as a curriculum level's."


def export(
    run: Annotated[Path, typer.Argument(help="Run directory (newest valid checkpoint) or checkpoint directory.")],
    out: Annotated[Path, typer.Option(help="Artifact directory to write (policy.onnx + manifest.json).")],
    fall_predictor: Annotated[
        Path | None,
        typer.Option(
            help="A fall predictor trained beside this policy (`ogi train-fall-predictor RUN`): exported as "
            "fall_predictor.onnx, run by the runtime every policy step to trip the fallback."
        ),
    ] = None,
    residual: Annotated[
        Path | None,
        typer.Option(
            help="An actuator residual for this robot (`ogi train-residual`): exported as residual.onnx, run by the "
            "runtime every 1 kHz tick while the policy drives."
        ),
    ] = None,
) -> None:
    """Export a trained policy to ONNX with a manifest of everything a robot program needs."""
    from ogi.checkpoints import CheckpointError
    from ogi.deploy.artifact import ArtifactError
    from ogi.deploy.export import export_policy

    try:
        artifact = export_policy(run, out, fall_predictor=fall_predictor, residual=residual)
    except (ArtifactError, CheckpointError, FileNotFoundError, KeyError, ValueError) as err:
        fail(err)
    policy = artifact.manifest["policy"]
    print(
        f"wrote {out}: {policy['file']} (sha256 {policy['sha256'][:12]}, inputs "
        f"{', '.join(i['name'] + str(i['shape']) for i in policy['inputs'])}), manifest.json (checkpoint "
        f"{artifact.manifest['source']['checkpoint_sha256'][:12]})"
        + (
            f", fall_predictor.onnx (window {artifact.manifest['fall_predictor']['window']}, horizon "
            f"{artifact.manifest['fall_predictor']['horizon_s']:g} s)"
            if "fall_predictor" in artifact.manifest
            else ""
        )
        + (", residual.onnx (1 kHz actuator residual)" if "residual" in artifact.manifest else "")
    )


def sim_robot(
    robot: Annotated[str, typer.Option(help="Robot to simulate.")] = "go2",
    bridge: Annotated[str, typer.Option(help="dds: serve rt/lowstate and rt/lowcmd over DDS.")] = "dds",
    seconds: Annotated[float, typer.Option(min=0.1, help="Simulated seconds to run (Ctrl-C stops earlier).")] = 3600.0,
    domain_id: Annotated[int, typer.Option(min=0, max=232, help="DDS domain (1: as the public simulator).")] = 1,
    state_hz: Annotated[float, typer.Option(help="LowState publishing rate; divides the 1000 Hz physics.")] = 500.0,
    time_scale: Annotated[float, typer.Option(min=0.01, max=1.0, help="Simulated seconds per wall second.")] = 1.0,
    trace: Annotated[Path | None, typer.Option(help="Write the base position as JSON lines every 0.1 s.")] = None,
    max_age_s: Annotated[float, typer.Option(min=0.0, help="Drop commands older than this (0: no age check).")] = 0.1,
    terrain: Annotated[str | None, typer.Option(help=TERRAIN_HELP)] = None,
    terrain_difficulty: Annotated[float, typer.Option(min=0.0, max=1.0, help=DIFFICULTY_HELP)] = 0.5,
    depth_from: Annotated[
        Path | None,
        typer.Option(
            help="An artifact whose policy reads the depth camera: carry that camera and publish its images "
            "on rt/ogi/depth (DepthImage_, 50 Hz)."
        ),
    ] = None,
    start: Annotated[
        str, typer.Option(help="lying (folded on the ground), stand, or hung (welded in the air: `ogi excite`).")
    ] = "lying",
    dynamics: Annotated[
        Path | None,
        typer.Option(
            help="A dynamics profile (TOML: joint armature, damping, friction; motor strength, delay, torque-speed "
            "curve; base mass offset) that makes the robot differ from its model, as hardware does."
        ),
    ] = None,
) -> None:
    """Play the robot in MuJoCo at 1 kHz in real time, over DDS on loopback (SIGUSR1 pauses its states)."""
    from ogi.deploy.launch import serve_sim_robot

    if bridge != "dds":
        fail(
            f"--bridge {bridge}: sim-robot serves over dds; the in-process sim bridge is started by "
            "`ogi deploy ARTIFACT --bridge sim`"
        )
    print(
        f"sim-robot {robot}: domain {domain_id} on loopback, LowState at {state_hz:g} Hz, "
        f"time scale {time_scale:g}; Ctrl-C to stop",
        flush=True,
    )
    try:
        summary = serve_sim_robot(
            robot=robot,
            seconds=seconds,
            domain_id=domain_id,
            state_hz=state_hz,
            time_scale=time_scale,
            trace=trace,
            max_age_s=max_age_s or None,
            terrain=terrain,
            terrain_difficulty=terrain_difficulty,
            depth_from=depth_from,
            start=start,
            dynamics=dynamics,
        )
    except (KeyError, ValueError) as err:
        fail(err)
    print(dumps_strict(summary))


def deploy(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory written by `ogi export`.")],
    bridge: Annotated[str, typer.Option(help="sim: simulated robot in this process; dds: robot on DDS.")] = "sim",
    seconds: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Seconds to run (Ctrl-C stops earlier, damping). Default 20; with --instruction, until it ends "
            "(at most its time limit and 15 s to stand up).",
        ),
    ] = None,
    command_vx: Annotated[float, typer.Option(help="Commanded forward velocity, m/s.")] = 0.5,
    command_vy: Annotated[float, typer.Option(help="Commanded sideways velocity (left positive), m/s.")] = 0.0,
    command_yaw: Annotated[float, typer.Option(help="Commanded yaw rate (counter-clockwise positive), rad/s.")] = 0.0,
    domain_id: Annotated[int, typer.Option(min=0, max=232, help="DDS domain (0: a real robot, 1: simulator).")] = 1,
    time_scale: Annotated[float, typer.Option(min=0.01, max=1.0, help="Must equal the simulated robot's.")] = 1.0,
    pd_site: Annotated[str, typer.Option(help="motor: send targets and gains; runtime: send PD torques.")] = "motor",
    max_age_s: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Drop states older than this by their DDS source "
            "timestamp (0: off, e.g. robot and computer on different clocks).",
        ),
    ] = 0.1,
    interface: Annotated[str, typer.Option(help="Network interface for DDS (lo: loopback only).")] = "lo",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON only.")] = False,
    recover: Annotated[
        bool,
        typer.Option(
            help="After a crouch tripped by a signal limit or the fall predictor, give the joints back to the "
            "policy once the robot has been stable for the supervisor's re-arm time (damping trips still stop)."
        ),
    ] = False,
    fall_predictor: Annotated[
        bool, typer.Option(help="Run the artifact's fall predictor, if it carries one, every policy step.")
    ] = True,
    terrain: Annotated[str | None, typer.Option(help=TERRAIN_HELP + " With --bridge sim only.")] = None,
    terrain_difficulty: Annotated[float, typer.Option(min=0.0, max=1.0, help=DIFFICULTY_HELP)] = 0.5,
    log: Annotated[
        Path | None,
        typer.Option(help="Record every state read and command sent to this motor log (MCAP), e.g. for calibration."),
    ] = None,
    dynamics: Annotated[
        Path | None,
        typer.Option(
            help="With --bridge sim: a dynamics profile (TOML) making the simulated robot differ from its model."
        ),
    ] = None,
    residual: Annotated[
        bool,
        typer.Option(help="Add the artifact's 1 kHz actuator residual, if it carries one, while the policy drives."),
    ] = True,
    instruction: Annotated[
        str | None,
        typer.Option(
            help='With --bridge sim: what to do, e.g. "go to the red box". The robot stands in a random arena that '
            "holds what the words name, and the 5 Hz planner drives the walking command from its head camera and "
            "odometry (the --command-* options are not used); the run ends with the instruction."
        ),
    ] = None,
    layout_seed: Annotated[int, typer.Option(min=0, help="With --instruction: seed of the random arena.")] = 0,
    planner: Annotated[
        Path | None,
        typer.Option(help="With --instruction: planner checkpoint or run directory (default: the shipped one)."),
    ] = None,
    oracle: Annotated[
        bool, typer.Option("--oracle", help="With --instruction: the scripted oracle, which knows the scene, decides.")
    ] = False,
) -> None:
    """Run an exported policy: start-up ramp, 50 Hz policy, 1 kHz PD, safety supervisor; damping on exit.

    With --instruction (sim bridge) the 5 Hz planner drives it: each decision is printed (and kept in --log with
    the image it read), then the outcome judged by the instruction's criteria and the rate of each loop.
    """
    from ogi.deploy.artifact import ArtifactError
    from ogi.deploy.launch import deploy as run_deploy

    if instruction is None and (planner is not None or oracle or layout_seed):
        fail("--planner, --oracle and --layout-seed choose how an instruction is carried out: give --instruction")
    said: list[str] = []

    def on_decision(decision) -> None:
        from ogi.envs.layout import STOP

        what = "stop" if decision.subgoal == STOP else "vx {:+.1f} vy {:+.1f} yaw {:+.1f}".format(*decision.command)
        line = f"stage {decision.stage}: {what}"
        if not as_json and (not said or said[-1] != line):
            said.append(line)
            print(f"{decision.time_s:5.1f} s  {line}", file=sys.stderr, flush=True)

    try:
        report = run_deploy(
            artifact,
            bridge=bridge,
            seconds=seconds,
            command_vx=command_vx,
            command_vy=command_vy,
            command_yaw=command_yaw,
            domain_id=domain_id,
            time_scale=time_scale,
            pd_site=pd_site,
            max_age_s=max_age_s or None,
            interface=interface,
            on_start=_announce(bridge, seconds, instruction),
            recover=recover,
            use_fall_predictor=fall_predictor,
            terrain=terrain,
            terrain_difficulty=terrain_difficulty,
            log_path=log,
            dynamics=dynamics,
            use_residual=residual,
            instruction=instruction,
            layout_seed=layout_seed,
            planner=planner,
            oracle=oracle,
            on_decision=on_decision,
        )
    except (ArtifactError, KeyError, ValueError, FileNotFoundError) as err:
        fail(err)
    if as_json:
        print(dumps_strict(report))
        return
    table = Table(title=Text(f"deploy {artifact} over {bridge}"))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report.items():
        if key in ("events", "errors", "bridge", "instruction"):
            continue
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else Text(str(value)))
    for name, count in report["bridge"].items():
        table.add_row(f"bridge/{name}", str(count))
    console.print(table)
    for event in report["events"]:
        print(f"  {event['time_s']:8.3f} s  {event['from_mode']} -> {event['to_mode']}  ({event['cause']})")
    for error in report["errors"]:
        print_error(error)
    done = report.get("instruction")
    if done is not None:
        verdict = {True: "done", False: f"not done ({done['outcome']})", None: done["outcome"]}[done["success"]]
        rates = done["rates_hz"]
        if done.get("planner_read") not in (None, done["instruction"]):
            print(f"the planner read it as {done['planner_read']!r}")
        print(f"{done['instruction']!r}: {verdict} after {done['seconds']} s; walked {done['path_m']} m")
        if rates:
            print(
                f"rates: planner {rates['planner']:.3g} Hz, policy {rates['policy']:.3g} Hz, PD {rates['pd']:.4g} Hz "
                f"({done['decisions']} decisions)"
            )


def _announce(bridge: str, seconds: float | None, instruction: str | None):
    def on_start() -> None:
        # on stderr, so that --json output stays one JSON object
        how_long = "until the instruction ends" if seconds is None and instruction else f"for {seconds or 20:g} s"
        what = f" to {instruction!r}" if instruction else ""
        print(
            f"deploy: running{what} on the {bridge} bridge {how_long}; Ctrl-C stops with damping",
            file=sys.stderr,
            flush=True,
        )

    return on_start


def register(app: typer.Typer) -> None:
    """Add `export`, `sim-robot` and `deploy` to `app`."""
    app.command("export")(export)
    app.command("sim-robot")(sim_robot)
    app.command("deploy")(deploy)

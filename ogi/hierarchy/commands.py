"""`ogi run` and `ogi train-planner`: thin command-line layers over the hierarchy package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ogi.terminal import fail, print_json

console = Console()


def register(app: typer.Typer) -> None:
    """Add `run` and `train-planner` to the `ogi` app."""
    app.command("run")(run)
    app.command("train-planner")(train_planner)


def run(
    instruction: Annotated[str, typer.Option(help='What to do, e.g. "go to the red box" or "turn left then stop".')],
    robot: Annotated[str, typer.Option(help="Robot (the shipped walker is go2's).")] = "go2",
    planner: Annotated[
        Path | None, typer.Option(help="Planner checkpoint or run directory (default: the shipped go2 planner).")
    ] = None,
    oracle: Annotated[
        bool, typer.Option("--oracle", help="Let the scripted oracle, which knows the scene, decide instead.")
    ] = False,
    best_of_n: Annotated[int, typer.Option(min=1, max=64, help="Candidates per decision scored by --verifier.")] = 1,
    verifier: Annotated[Path | None, typer.Option(help="Verifier checkpoint for --best-of-n.")] = None,
    walker: Annotated[
        Path | None, typer.Option(help="Walking policy run (default: the shipped go2_walk_omni).")
    ] = None,
    layout_seed: Annotated[int, typer.Option(min=0, help="Seed of the random arena (objects, obstacles, start).")] = 0,
    record: Annotated[Path, typer.Option(help="Write the run to this MCAP file (open it with `ogi replay`).")] = Path(
        "run.mcap"
    ),
    no_record: Annotated[bool, typer.Option("--no-record", help="Write no recording.")] = False,
    no_supervisor: Annotated[
        bool,
        typer.Option(
            "--no-supervisor", help="Run without the safety supervisor between the walking policy and the PD."
        ),
    ] = False,
    no_recover: Annotated[
        bool,
        typer.Option(
            "--no-recover",
            help="Keep a tripped robot in its fallback crouch to the end (default: hand it back to the walking "
            "policy after 1 s of calm signals, so it goes on with the instruction).",
        ),
    ] = False,
    no_rewrite: Annotated[
        bool,
        typer.Option(
            "--no-rewrite",
            help="Let the planner read the words as typed (default: clauses in wording it was not trained on are "
            "first said again in training wording by its own pretrained language model, where that paraphrase "
            "reads as a training instruction with the same colours, shapes, numbers and sides).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Walk an instruction: the planner at 5 Hz, the walking policy at 50 Hz, the PD at 1 kHz, in a random arena.

    Prints progress at each planner decision, then the outcome judged by the instruction's criteria and the rate
    each loop ran at; the recording holds every step, a `planner` event per decision and the head camera's images.
    The safety supervisor watches tilt, body rates and joint speeds: beyond a limit it crouches the robot, and
    after 1 s of calm hands it back to the walking policy; each switch is printed and recorded as a `safety` event.
    """
    from ogi.hierarchy.episodes import Safety
    from ogi.hierarchy.pipeline import SHIPPED_WALKER
    from ogi.hierarchy.run import load_decider, run_instruction

    if not no_record and record.is_dir():
        fail(f"--record {record} is a directory; give a file name such as run.mcap (or --no-record)")

    if robot != "go2":
        fail(f"the planner drives go2's walking policy; robot {robot!r} has no shipped walker (use --robot go2)")
    try:
        decider = load_decider(
            planner, oracle=oracle, best_of_n=best_of_n, verifier=verifier, rewrite=not (oracle or no_rewrite)
        )
    except (ValueError, FileNotFoundError) as error:
        fail(error)
    said: list[str] = []

    def on_decision(inputs, choice, limit_s: float) -> None:
        from ogi.envs.layout import STOP, subgoal_command

        read = getattr(decider, "read_texts", {}).get(0)
        if not said and read is not None and read != " ".join(inputs.texts[0].lower().split()).rstrip(". "):
            said.append(f"reads: {read}")
            if not as_json:
                console.print(f"the planner reads: {read!r}", markup=False, highlight=False)

        stage, subgoal = int(choice.stages[0]), int(choice.subgoals[0])
        command = "stop" if subgoal == STOP else "vx {:+.1f} vy {:+.1f} yaw {:+.1f}".format(*subgoal_command(subgoal))
        line = f"stage {stage}: {command}"
        if not said or said[-1] != line:
            said.append(line)
            if not as_json:
                console.print(f"{float(inputs.times_s[0]):5.1f}/{limit_s:.0f} s  {line}", markup=False, highlight=False)

    if no_supervisor and no_recover:
        fail("--no-recover sets what the safety supervisor does after a trip; it means nothing with --no-supervisor")

    def on_safety(event: dict) -> None:
        if not as_json:
            console.print(
                f"{event['time_s']:5.1f} s  safety: {event['from']} -> {event['to']} ({event['cause']})",
                markup=False,
                highlight=False,
            )

    try:
        result = run_instruction(
            instruction,
            decider,
            layout_seed=layout_seed,
            walker=SHIPPED_WALKER if walker is None else walker,
            record=None if no_record else record,
            on_decision=on_decision,
            safety=None if no_supervisor else Safety(recover=not no_recover),
            on_safety=on_safety,
        )
    except (ValueError, FileNotFoundError) as error:
        fail(error)
    outcomes = result.outcomes
    summary = {
        "instruction": result.instruction.text,
        "stages": result.instruction.kind,
        "layout_seed": result.layout_seed,
        "objects": [f"{o.name} at ({o.xy[0]:.1f}, {o.xy[1]:.1f})" for o in result.layout.objects],
        "success": bool(outcomes.success[0]),
        "outcome": outcomes.reasons[0],
        "seconds": round(float(outcomes.seconds[0]), 2),
        "path_m": round(float(outcomes.path_m[0]), 2),
        "decisions": int(outcomes.decisions[0]),
        "planner_read": getattr(decider, "read_texts", {}).get(0),
        "safety": None
        if outcomes.trips is None
        else {
            "trips": int(outcomes.trips[0]),
            "fallback_s": round(float(outcomes.fallback_s[0]), 2),
            "events": result.safety_events,
        },
        "rates_hz": {name: round(value, 3) for name, value in result.rates.hz.items()},
        "recording": str(result.recording) if result.recording else None,
    }
    if as_json:
        print_json(summary)
        return
    verdict = "done" if summary["success"] else f"not done ({summary['outcome']})"
    console.print(f"{summary['instruction']!r}: {verdict} after {summary['seconds']} s", markup=False)
    console.print(f"walked {summary['path_m']} m, {summary['decisions']} planner decisions", markup=False)
    safety = summary["safety"]
    if safety is None:
        console.print("safety supervisor: off", markup=False)
    else:
        console.print(
            f"safety supervisor: {safety['trips']} trips, {safety['fallback_s']} s in the fallback", markup=False
        )
    rates = summary["rates_hz"]
    console.print(
        f"rates: planner {rates['planner']:g} Hz, policy {rates['policy']:g} Hz, PD {rates['pd']:g} Hz", markup=False
    )
    if result.recording:
        console.print(f"recording: {result.recording} (ogi replay {result.recording})", markup=False)


def train_planner(
    out: Annotated[Path, typer.Option(help="Directory for the stages' checkpoints and the summary.")],
    seed: Annotated[int, typer.Option(min=0)] = 0,
    eval_episodes: Annotated[int, typer.Option(min=2, help="Held-out episodes per evaluated planner.")] = 200,
    num_envs: Annotated[int, typer.Option(min=1, max=4096, help="Simulations played at once.")] = 64,
) -> None:
    """Train the 5 Hz planner through every stage (pretrain, SFT on oracle demonstrations with DAgger, RL, verifier),
    and a blind planner, then evaluate them and the oracle on held-out instructions and layouts."""
    from ogi.hierarchy.pipeline import PipelineConfig, PlannerPipeline

    pipeline = PlannerPipeline(PipelineConfig(seed=seed, eval_episodes=eval_episodes, num_envs=num_envs), out)
    result = pipeline.run()
    print_json({"success": result.success, "checkpoints": {k: str(v) for k, v in result.checkpoints.items()}})

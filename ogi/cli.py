"""`ogi`: one command-line entry point, each verb a thin layer over an importable function."""

from __future__ import annotations

import dataclasses
import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ogi.calibration.commands import register as register_calibration
from ogi.deploy.commands import register as register_deploy
from ogi.hierarchy.commands import register as register_hierarchy
from ogi.lm.commands import register as register_lm
from ogi.rendering import no_opengl_message, offscreen_gl_errors
from ogi.replay.commands import register as register_replay
from ogi.terminal import fail, plain_table, print_json
from ogi.training.distill_commands import register as register_distill
from ogi.training.preference_commands import register as register_preference
from ogi.training.safety_commands import register as register_safety

# rich_markup_mode=None: help texts are plain, so `[env]` or `[low, high]` in a help text stays as written
app = typer.Typer(
    help="OGI: train, inspect and deploy walking policies in MuJoCo simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console()


@app.command()
def robots(
    name: Annotated[str | None, typer.Argument(help="Robot name or robot .toml: print its joints.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table (with the joints).")] = False,
) -> None:
    """List the built-in robots (DoF, mass, heights, feet), or NAME's joints with their limits and gains."""
    from ogi.robots import get_robot
    from ogi.robots.summary import joint_rows, robot_summaries, robot_summary

    if name is None:
        summaries = robot_summaries()
        if as_json:
            print_json(summaries)
            return
        header = ("robot", "DoF", "mass kg", "height m", "base height m", "feet")
        print(
            plain_table(
                header,
                [
                    (
                        row["name"],
                        str(row["dof"]),
                        f"{row['mass_kg']:.2f}",
                        f"{row['height_m']:.2f}",
                        f"{row['base_height_m']:.2f}",
                        str(len(row["feet"])),
                    )
                    for row in summaries
                ],
            )
        )
        print("ogi robots NAME lists a robot's joints")
        return
    try:
        robot = get_robot(name)
        summary = robot_summary(robot)
    except (KeyError, ValueError) as err:  # a RobotSpecError is a ValueError
        fail(err)
    rows = joint_rows(robot)
    if as_json:
        print_json({**summary, "joint_details": rows})
        return
    print(f"{robot.name}: {summary['dof']} actuated joints in action order; feet {', '.join(summary['feet'])}")
    print("angles in rad, kp in N*m/rad, kd in N*m*s/rad, torque limit in N*m (m, N/m, N*s/m, N for a slide joint)")
    header = ("joint", "default", "low", "high", "kp", "kd", "torque limit")
    keys = ("default_rad", "low_rad", "high_rad", "kp", "kd", "torque_limit_nm")
    print(plain_table(header, [(row["name"], *(f"{row[key]:.4g}" for key in keys)) for row in rows]))


@app.command()
def rollout(
    robot: Annotated[str, typer.Option(help="Built-in robot name or path to a robot .toml.")] = "go2",
    policy: Annotated[
        str,
        typer.Option(
            help="zero: hold the default pose; random: uniform actions; or a trained run directory or checkpoint."
        ),
    ] = "zero",
    num_envs: Annotated[int, typer.Option(min=1, help="Simulations stepped together.")] = 16,
    seconds: Annotated[float, typer.Option(min=0.02, help="Simulated seconds per simulation.")] = 5.0,
    threads: Annotated[int, typer.Option(min=0, help="Simulation threads (0: all cores).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    config: Annotated[Path | None, typer.Option(help="TOML file with a walk task config.")] = None,
    save: Annotated[Path | None, typer.Option(help="Write the trajectory here (.safetensors + .json + .xml).")] = None,
    record: Annotated[
        Path | None, typer.Option(help="Record the rollout here (.mcap) for ogi replay / ogi plot.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run a rollout of the `walk` task (zero, random or trained policy) and print a summary."""
    from functools import partial

    from ogi.envs import ConfigError, WalkConfig, load_walk_config
    from ogi.envs.rollout import run_rollout
    from ogi.replay import Recorder

    try:
        policy_fn = None
        base = load_walk_config(config) if config else WalkConfig()
        if policy not in ("zero", "random"):
            from ogi.training.policy_loading import policy_function

            policy_fn, trained_env = policy_function(Path(policy), num_envs)
            base = trained_env if config is None else base
            robot = trained_env.robot
        cfg = dataclasses.replace(
            base, robot=robot, num_envs=num_envs, seed=seed, sim=dataclasses.replace(base.sim, nthread=threads)
        )
        if not cfg.sim.ctrl_dt_s <= seconds:
            raise ConfigError(f"--seconds {seconds} is shorter than one policy step ({cfg.sim.ctrl_dt_s} s)")
        summary = run_rollout(
            cfg,
            policy=policy_fn or policy,
            seconds=seconds,
            progress=not as_json,
            save=save,
            recorder=None if record is None else partial(Recorder, path=record),
        )
    except (ConfigError, KeyError, ValueError, FileNotFoundError) as err:
        fail(err)
    if as_json:
        print_json(summary)
        return
    table = Table(title=Text(f"rollout: {cfg.robot}, {policy} policy, {num_envs} envs x {seconds:g} s"))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else Text(str(value)))
    console.print(table)


class Algo(str, Enum):
    ogi = "ogi"
    sb3_ppo = "sb3-ppo"


class ActorKind(str, Enum):
    mlp = "mlp"
    gru = "gru"
    lstm = "lstm"
    transformer = "transformer"


@app.command()
def train(
    robot: Annotated[str, typer.Option(help="Robot name or robot .toml.")] = "go2",
    task: Annotated[str, typer.Option(help="Task (walk).")] = "walk",
    algo: Annotated[
        Algo, typer.Option(help="ogi: our recurrent PPO; sb3-ppo: Stable-Baselines3 PPO baseline.")
    ] = Algo.ogi,
    config: Annotated[
        Path | None, typer.Option(help="TOML overriding the preset ([env], [ppo], [actor], ...).")
    ] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Run directory (default runs/<robot>-<task>-<time>).")] = None,
    iterations: Annotated[int | None, typer.Option(min=1, help="PPO iterations.")] = None,
    minutes: Annotated[float | None, typer.Option(min=0.0, help="Stop after this many minutes of training.")] = None,
    num_envs: Annotated[int | None, typer.Option(min=1, help="Simulations stepped together.")] = None,
    actor: Annotated[ActorKind | None, typer.Option(help="Actor network.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --run-dir from its newest valid checkpoint.")
    ] = False,
    evaluate_after: Annotated[bool, typer.Option("--eval/--no-eval", help="Evaluate the final policy.")] = True,
    fall_limit: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Constrain Pr(an episode ends in a fall) to at most this (PPO-Lagrangian)."
        ),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Start the actor from this trained run or checkpoint of the same actor kind: a walker of this "
            "robot whose observations are a prefix of this run's (e.g. for a privileged teacher), or of a robot whose "
            "joints this one has (e.g. the biped's walker for the humanoid: the legs carry over by joint name)."
        ),
    ] = None,
    until_walks: Annotated[
        bool,
        typer.Option(
            "--until-walks",
            help="Judge the policy every minute on the 1 kHz model per command family (forward, backward, "
            "lateral, turning, mixed) and stop once it walks (linear error <= 0.10 m/s, yaw-rate error <= 0.15 rad/s, "
            "falls <= 2%, duty factors in [0.35, 0.65]); --minutes is then the cap.",
        ),
    ] = False,
    dynamics: Annotated[
        Path | None,
        typer.Option(
            help="Train on a calibrated robot: a dynamics profile .toml (joint armature, damping, friction; motor "
            "strength and delay; base mass offset). Its text and sha256 are recorded with the run; combine with "
            "--init-from to fine-tune a trained policy on it."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Data-parallel PPO replicas on Ray (pip install 'ogi[scale]'): each steps num_envs / workers "
            "simulations and all average gradients; rank 0 writes logs and checkpoints; a dead worker is replaced "
            "from the last checkpoint.",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="With --workers: a running Ray cluster ('auto' on one of its nodes); default a local Ray."),
    ] = None,
    threads_per_worker: Annotated[int, typer.Option(min=1, help="With --workers: CPU threads per replica.")] = 1,
    adversary: Annotated[
        bool,
        typer.Option(
            "--adversary",
            help="Adversarial self-play: a push adversary (its own small PPO policy) learns where, when and how hard "
            "to push within a budget, alternating with the walker and against a league of its frozen snapshots; "
            "its pushes replace the random ones. Budget and schedule: [adversary] in --config.",
        ),
    ] = False,
) -> None:
    """Train a walking policy with PPO; live progress, TensorBoard logs, checkpoints with lineage."""
    from ogi.training.cli_train import run_train

    code = run_train(
        robot=robot,
        task=task,
        algo=algo.value,
        config=config,
        run_dir=run_dir,
        iterations=iterations,
        minutes=minutes,
        num_envs=num_envs,
        actor=actor.value if actor else None,
        seed=seed,
        resume=resume,
        evaluate_after=evaluate_after,
        console=console,
        fall_limit=fall_limit,
        init_from=init_from,
        until_walks=until_walks,
        dynamics=dynamics,
        workers=workers,
        ray_address=ray_address,
        threads_per_worker=threads_per_worker,
        adversary=adversary,
    )
    raise typer.Exit(code)


@app.command("eval")
def eval_run(
    run: Annotated[Path, typer.Argument(help="Run directory or checkpoint directory.")],
    num_envs: Annotated[int, typer.Option(min=1, help="Fresh episodes, one per simulation.")] = 32,
    seconds: Annotated[float, typer.Option(min=0.1, help="Episode length, s.")] = 20.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    record: Annotated[Path | None, typer.Option(help="Record the evaluation episodes here (.mcap).")] = None,
    families: Annotated[
        bool,
        typer.Option(
            "--families",
            help="Judge per command family (forward, backward, lateral, turning, mixed) on the 1 kHz model "
            "and say whether the policy walks.",
        ),
    ] = False,
) -> None:
    """Evaluate a trained policy (deterministic actions): tracking error, fall rate, duty factors, terrain level."""
    from ogi.training.cli_train import run_eval

    raise typer.Exit(
        run_eval(
            run, num_envs=num_envs, seconds=seconds, as_json=as_json, console=console, record=record, families=families
        )
    )


@app.command()
def verify(
    path: Annotated[Path, typer.Argument(help="Checkpoint directory, or a run directory to check every checkpoint.")],
) -> None:
    """Re-derive every hash of a checkpoint and walk its lineage chain back to the run's start.

    Exit code 0 if every checkpoint verifies, 1 if one does not, 2 if PATH does not exist."""
    from ogi.training.cli_train import run_verify

    if not path.exists():
        fail(f"{path} does not exist (a checkpoint directory or a run directory)")
    raise typer.Exit(run_verify(path))


@app.command("copy-checkpoint")
def copy_checkpoint_command(
    source: Annotated[Path, typer.Argument(help="Checkpoint directory to copy (verified first).")],
    destination: Annotated[Path, typer.Argument(help="New directory for the copy.")],
    parent: Annotated[
        Path | None,
        typer.Option(help="Where the copy's parent now lives (it must be the checkpoint SOURCE records as parent)."),
    ] = None,
) -> None:
    """Copy a checkpoint, its lineage re-pointed at a copy of its parent (e.g. to ship a fine-tuned policy beside
    the policy it started from); `ogi verify DESTINATION` then walks back through the parent's copy."""
    from ogi.checkpoints import CheckpointError, copy_checkpoint

    try:
        copy = copy_checkpoint(source, destination, parent=parent)
    except (CheckpointError, OSError) as error:
        fail(str(error))
    console.print(f"copied to {copy.path} (checkpoint {copy.checkpoint_sha256[:12]}, parent {copy.parent_dir})")


terrain_app = typer.Typer(
    help="Terrain family: look at it, print its difficulty table.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(terrain_app, name="terrain")


@terrain_app.command("preview")
def terrain_preview(
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("terrain.png"),
    robot: Annotated[str, typer.Option(help="Robot standing on each tile.")] = "go2",
    kinds: Annotated[str | None, typer.Option(help="Comma-separated kinds (default: all).")] = None,
    cell_width: Annotated[int, typer.Option(min=32, max=2048, help="Pixels per cell, horizontally.")] = 240,
    cell_height: Annotated[int, typer.Option(min=32, max=2048, help="Pixels per cell, vertically.")] = 180,
    seed: Annotated[int, typer.Option(help="Terrain seed.")] = 0,
) -> None:
    """Render every terrain kind (rows) at difficulty 0, 0.25, 0.5, 0.75, 1 (columns) to a PNG, offscreen."""
    from ogi.envs.config import TerrainConfig
    from ogi.envs.terrain_preview import render_terrain_preview, write_png
    from ogi.robots import get_robot

    try:
        chosen = tuple(k.strip() for k in kinds.split(",")) if kinds else TerrainConfig().kinds
        terrain = TerrainConfig(enabled=True, kinds=chosen, seed=seed)
        image = render_terrain_preview(get_robot(robot), terrain, cell_px=(cell_width, cell_height))
    except (KeyError, ValueError) as err:  # ConfigError and RobotSpecError are ValueErrors too
        fail(err)
    except offscreen_gl_errors() as err:
        fail(no_opengl_message(err))
    write_png(out, image)
    print(
        f"wrote {out} ({image.shape[1]}x{image.shape[0]}): rows {', '.join(terrain.kinds)}; "
        "columns difficulty 0, 0.25, 0.5, 0.75, 1"
    )


@terrain_app.command("table")
def terrain_table() -> None:
    """Print the difficulty -> parameter table (Markdown)."""
    from ogi.envs.terrain import difficulty_table_markdown

    print(difficulty_table_markdown())


# each layer adds its own verbs; its command module imports only typer, rich and ogi.terminal at this point
register_replay(app)  # replay, plot
register_safety(app)  # train-fall-predictor
register_preference(app)  # train-gait-style
register_distill(app)  # distill
register_deploy(app)  # export, sim-robot, deploy
register_calibration(app)  # excite, calibrate, train-residual
register_lm(app)  # lm pretrain|sft|reward|rlhf|sample
register_hierarchy(app)  # run, train-planner


def main() -> None:
    # a headless machine renders offscreen through EGL unless the user chose another backend
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
    app()


if __name__ == "__main__":
    main()

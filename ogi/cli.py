"""`ogi`: one command-line entry point, each verb a thin layer over an importable function."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="OGI: train, inspect and deploy walking policies in MuJoCo simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


@app.command()
def robots(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the built-in robots: degrees of freedom, mass, standing height, actuated joints."""
    from ogi.robots.summary import robot_summaries

    rows = robot_summaries()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="OGI robots")
    for column in ("robot", "DoF", "mass kg", "height m", "base height m", "actuated joints"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"], str(row["dof"]), f"{row['mass_kg']:.2f}", f"{row['height_m']:.2f}",
            f"{row['base_height_m']:.2f}", ", ".join(j.removesuffix("_joint") for j in row["joints"]),
        )
    console.print(table)


class RolloutPolicy(str, Enum):
    zero = "zero"
    random = "random"


@app.command()
def rollout(
    robot: Annotated[str, typer.Option(help="Built-in robot name or path to a robot .toml.")] = "go2",
    policy: Annotated[RolloutPolicy, typer.Option(help="zero: hold the default pose; random: uniform actions.")] = RolloutPolicy.zero,
    num_envs: Annotated[int, typer.Option(min=1, help="Simulations stepped together.")] = 16,
    seconds: Annotated[float, typer.Option(min=0.02, help="Simulated seconds per simulation.")] = 5.0,
    threads: Annotated[int, typer.Option(min=0, help="Simulation threads (0: all cores).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    config: Annotated[Optional[Path], typer.Option(help="TOML file with a walk task config.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run a zero- or random-action rollout of the `walk` task and print a summary."""
    from ogi.envs import ConfigError, WalkConfig, load_walk_config
    from ogi.envs.config import SimConfig
    from ogi.envs.rollout import run_rollout

    try:
        base = load_walk_config(config) if config else WalkConfig()
        cfg = dataclasses.replace(
            base, robot=robot, num_envs=num_envs, seed=seed, sim=dataclasses.replace(base.sim, nthread=threads)
        )
        if not cfg.sim.ctrl_dt_s <= seconds:
            raise ConfigError(f"--seconds {seconds} is shorter than one policy step ({cfg.sim.ctrl_dt_s} s)")
        summary = run_rollout(cfg, policy=policy.value, seconds=seconds, progress=not as_json)
    except (ConfigError, KeyError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    table = Table(title=f"rollout: {cfg.robot}, {policy.value} actions, {num_envs} envs x {seconds:g} s")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

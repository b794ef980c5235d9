"""`ogi train-fall-predictor`: the safety commands, registered on the main app by `register(app)`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ogi.terminal import dumps_strict, print_error


def train_fall_predictor_command(
    run: Path,
    *,
    out: Path | None,
    horizon_s: float,
    window: int,
    num_envs: int,
    seconds: float,
    push_mps: float,
    terrain: bool,
    epochs: int,
    seed: int,
    console: Console,
) -> int:
    """Collect labelled rollouts of the policy at `run`, fit the predictor, judge it on held-out rollouts, save it."""
    from ogi import checkpoints as ckpt
    from ogi.training.fall_predictor import (
        FallPredictorTrainConfig,
        collect_fall_data,
        evaluate_predictor,
        save_predictor,
        train_predictor,
    )
    from ogi.training.policy_loading import load_policy
    from ogi.validation import ConfigError

    try:
        cfg = FallPredictorTrainConfig(
            horizon_s=horizon_s,
            window=window,
            num_envs=num_envs,
            seconds=seconds,
            push_velocity_mps=push_mps,
            terrain=terrain,
            epochs=epochs,
        )
        _, _, _, policy_checkpoint = load_policy(run)
        out = out or (Path(run) / "fall_predictor")
        if ckpt.list_checkpoints(out):
            raise FileExistsError(f"{out} already holds a checkpoint; choose another --out")
        console.print(
            f"collecting {seconds:g} s x {num_envs} rollouts of {policy_checkpoint.path} (pushes up to "
            f"{push_mps:g} m/s{', rough terrain' if terrain else ''})",
            markup=False,
            soft_wrap=True,
        )
        data = collect_fall_data(run, cfg, seed=seed)
        held_out = collect_fall_data(run, cfg, seed=seed + 1)
        predictor, train_stats = train_predictor(data, cfg, seed=seed)
    except (ConfigError, FileNotFoundError, FileExistsError, ckpt.CheckpointError, ValueError) as err:
        return print_error(err)
    metrics = evaluate_predictor(predictor, held_out, threshold=cfg.threshold, lookback_s=cfg.lookback_s)
    saved = save_predictor(
        out,
        predictor,
        cfg,
        policy_checkpoint=policy_checkpoint,
        metrics=metrics,
        train_stats=train_stats,
        samples=len(data.labels),
    )
    table = Table(title=f"fall predictor (H = {horizon_s:g} s), held-out rollouts")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"saved {saved.path}", markup=False, soft_wrap=True)
    print(dumps_strict({"checkpoint": str(saved.path), **metrics}))
    return 0


def register(app: typer.Typer) -> None:
    """Add the safety commands to `app`."""

    @app.command("train-fall-predictor")
    def train_fall_predictor(
        run: Annotated[Path, typer.Argument(help="The policy: a run directory or checkpoint directory.")],
        out: Annotated[
            Path | None, typer.Option(help="Directory for the predictor (default RUN/fall_predictor).")
        ] = None,
        horizon_s: Annotated[
            float, typer.Option(min=0.02, max=60.0, help="H: predict a fall within this many seconds.")
        ] = 0.5,
        window: Annotated[int, typer.Option(min=1, max=1000, help="Policy steps of observation history.")] = 5,
        num_envs: Annotated[int, typer.Option(min=1, help="Simulations per rollout set.")] = 64,
        seconds: Annotated[
            float, typer.Option(min=0.1, help="Simulated seconds per simulation (training set).")
        ] = 30.0,
        push_mps: Annotated[float, typer.Option(min=0.0, max=10.0, help="Largest push, m/s of base velocity.")] = 1.5,
        terrain: Annotated[bool, typer.Option("--terrain/--flat", help="Rough terrain or flat ground.")] = True,
        epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 12,
        seed: Annotated[int, typer.Option(help="Seed of the training rollouts (held-out: seed + 1).")] = 0,
    ) -> None:
        """Train p(fall within H s | recent policy observations) from rollouts with pushes and rough terrain."""
        raise typer.Exit(
            train_fall_predictor_command(
                run,
                out=out,
                horizon_s=horizon_s,
                window=window,
                num_envs=num_envs,
                seconds=seconds,
                push_mps=push_mps,
                terrain=terrain,
                epochs=epochs,
                seed=seed,
                console=Console(),
            )
        )

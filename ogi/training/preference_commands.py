"""`ogi train-gait-style`: fine-tune a walker with a gait-style reward model learned from preferences; registered
on the main app by `register(app)`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ogi.terminal import dumps_strict, print_error


def train_gait_style_command(
    run: Path,
    *,
    run_dir: Path,
    minutes: float,
    iterations: int | None,
    weight: float,
    retrain_every: int,
    kl: float,
    collect_s: float,
    num_envs: int | None,
    seed: int,
    console: Console,
) -> int:
    """Collect clips of the walker at `run`, label pairs with the scripted labeller, fit the first reward model
    (saved under RUN_DIR/reward_model), then fine-tune the walker with the model's reward and a KL penalty to
    itself (RUN_DIR/walker), refitting the model on fresh clips every `retrain_every` iterations."""
    from ogi import checkpoints as ckpt
    from ogi.training.policy_loading import load_policy
    from ogi.training.preference import PreferenceConfig, PreferenceRewardHook
    from ogi.training.preference_benchmark import BenchmarkSizes, finetune_from, first_reward_model
    from ogi.training.preference_data import LinearStyleLabeller
    from ogi.validation import ConfigError

    try:
        if minutes <= 0 and iterations is None:
            raise ConfigError("give --minutes > 0 or --iterations: the fine-tuning needs an end")
        measure_every = min(10, retrain_every) if retrain_every else 10
        pref = PreferenceConfig(
            seed=seed, reward_weight=weight, retrain_every=retrain_every, measure_every=measure_every
        )
        if ckpt.list_checkpoints(run_dir / "reward_model") or ckpt.list_checkpoints(run_dir / "walker"):
            raise FileExistsError(f"{run_dir} already holds a gait-style run; choose another --run-dir")
        policy = load_policy(run)
        train_cfg, checkpoint = policy.cfg, policy.checkpoint
        envs = num_envs or BenchmarkSizes.collect_envs
        console.print(
            f"collecting {collect_s:g} s x {envs} simulations of {checkpoint.path}", markup=False, soft_wrap=True
        )
        labeller = LinearStyleLabeller()
        model, pairs, fit, saved, _ = first_reward_model(
            policy, pref, labeller, run_dir / "reward_model", seconds=collect_s, num_envs=envs, seed=seed
        )
    except (ConfigError, FileNotFoundError, FileExistsError, ckpt.CheckpointError, ValueError) as err:
        return print_error(err)
    console.print(
        f"reward model: accuracy {fit['accuracy']:.3f} on {fit['test_pairs']} held-out pairs "
        f"({fit['train_pairs']} training pairs); saved {saved.path}",
        markup=False,
        soft_wrap=True,
    )
    hook = PreferenceRewardHook(
        model,
        pref,
        labeller,
        num_envs=num_envs or train_cfg.env.num_envs,
        ctrl_dt_s=train_cfg.env.sim.ctrl_dt_s,
        initial_pairs=pairs,
    )
    runner, summary = finetune_from(
        "walker",
        policy,
        run_dir,
        minutes=minutes,
        seed=seed,
        hook=hook,
        reference_kl_coef=kl,
        progress=True,
        num_envs=num_envs,
        iterations=iterations,
    )
    result = {
        "reward_model": str(saved.path),
        "initial_accuracy": fit["accuracy"],
        "accuracy_on_fresh_samples": [h["accuracy_fresh"] for h in hook.history],
        "initial_model_on_fresh_samples": [h["accuracy_initial_model"] for h in hook.history],
        "refits": hook.refits,
        "iterations": runner.iteration,
        "checkpoint": str(runner.last_checkpoint.path) if runner.last_checkpoint else None,
        "episode_fall_rate": summary.get("episode/fall_rate"),
    }
    (run_dir / "gait_style.json").write_text(json.dumps(result, indent=2))
    print(dumps_strict(result))
    return 0


def register(app: typer.Typer) -> None:
    """Add the preference commands to `app`."""

    @app.command("train-gait-style")
    def train_gait_style(
        run: Annotated[Path, typer.Argument(help="The walker to start from: a run or checkpoint directory.")],
        run_dir: Annotated[Path, typer.Option(help="Where the reward model and the fine-tuned walker go.")],
        minutes: Annotated[float, typer.Option(min=0.0, help="Minutes of fine-tuning.")] = 4.0,
        iterations: Annotated[
            int | None, typer.Option(min=1, help="Stop after this many PPO iterations instead of the clock.")
        ] = None,
        weight: Annotated[float, typer.Option(min=0.0, help="Weight of the learned reward beside the env's.")] = 0.02,
        retrain_every: Annotated[
            int,
            typer.Option(
                min=0, help="Refit the reward model on fresh labelled clips every this many iterations (0: never)."
            ),
        ] = 10,
        kl: Annotated[float, typer.Option(min=0.0, help="KL penalty to the starting walker.")] = 0.02,
        collect_s: Annotated[float, typer.Option(min=0.1, help="Simulated seconds of clips for the first fit.")] = 20.0,
        num_envs: Annotated[int | None, typer.Option(min=2, help="Simulations (default: the walker's own).")] = None,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    ) -> None:
        """Learn a gait-style reward from preference pairs (a scripted labeller over gait features the policy never
        observes) and fine-tune a walker with it: the env's reward plus the model's, a KL penalty to the starting
        walker, the model refitted on the walker's fresh clips as it changes. Prints the model's accuracy on fresh
        samples as it goes (drift)."""
        raise typer.Exit(
            train_gait_style_command(
                run,
                run_dir=run_dir,
                minutes=minutes,
                iterations=iterations,
                weight=weight,
                retrain_every=retrain_every,
                kl=kl,
                collect_s=collect_s,
                num_envs=num_envs,
                seed=seed,
                console=Console(),
            )
        )

"""`ogi distill`: teacher run -> student run (DAgger on the KL), then optional KL-anchored PPO fine-tuning."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ogi.terminal import dumps_strict, print_error


def register(app: typer.Typer) -> None:
    """Add the `distill` command to `app`."""
    app.command("distill")(distill)


def distill(
    teacher_run: Annotated[
        Path, typer.Argument(help='Teacher run (trained with actor_obs = "privileged") or checkpoint.')
    ],
    out: Annotated[Path, typer.Option("--out", help="Student run directory to create.")],
    minutes: Annotated[
        float, typer.Option(min=0.0, help="Wall-clock minutes of distillation (0: --iterations decides).")
    ] = 5.0,
    iterations: Annotated[int | None, typer.Option(min=1, help="Distillation iterations.")] = None,
    depth: Annotated[
        bool, typer.Option("--depth/--no-depth", help="Give the student the downward depth camera.")
    ] = True,
    num_envs: Annotated[int | None, typer.Option(min=1, help="Simulations (default: the teacher's).")] = None,
    finetune_minutes: Annotated[
        float, typer.Option(min=0.0, help="Then PPO-fine-tune the student this long (0: no).")
    ] = 0.0,
    finetune_iterations: Annotated[
        int | None, typer.Option(min=1, help="Fine-tuning iterations instead of minutes.")
    ] = None,
    kl_coef: Annotated[float, typer.Option(min=0.0, help="beta of the fine-tuning's KL(pi || pi_distilled).")] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    evaluate_after: Annotated[
        bool, typer.Option("--eval/--no-eval", help="Evaluate teacher and student at the end.")
    ] = True,
    eval_seconds: Annotated[float, typer.Option(min=0.1, help="Evaluation episode length, s.")] = 10.0,
) -> None:
    """Distill a privileged teacher into a deployable student (policy observations + depth image) on the
    student's own rollouts; `ogi eval OUT` and `ogi rollout --policy OUT` then run the student."""
    console = Console()
    code = run_distill(
        teacher_run,
        out,
        minutes=minutes,
        iterations=iterations,
        depth=depth,
        num_envs=num_envs,
        finetune_minutes=finetune_minutes,
        finetune_iterations=finetune_iterations,
        kl_coef=kl_coef,
        seed=seed,
        evaluate_after=evaluate_after,
        eval_seconds=eval_seconds,
        console=console,
    )
    raise typer.Exit(code)


def run_distill(
    teacher_run: Path,
    out: Path,
    *,
    minutes: float,
    iterations: int | None,
    depth: bool,
    num_envs: int | None,
    finetune_minutes: float,
    finetune_iterations: int | None,
    kl_coef: float,
    seed: int,
    evaluate_after: bool,
    eval_seconds: float,
    console: Console,
) -> int:
    """The function behind `ogi distill`; returns the exit code (2 for bad input, with the reason printed)."""
    from ogi import checkpoints as ckpt
    from ogi.training.distill import DistillConfig, Distiller, load_teacher, student_config
    from ogi.validation import ConfigError

    if minutes == 0 and iterations is None:
        return print_error("--minutes 0 needs --iterations")
    try:
        teacher = load_teacher(teacher_run)
        cfg = student_config(teacher.cfg, depth=depth, num_envs=num_envs)
        distill_cfg = DistillConfig(
            max_minutes=minutes,
            iterations=iterations or 10**9,
            seed=seed,
            collect_threads=cfg.collect_threads,
            update_threads=cfg.update_threads,
        )
        distiller = Distiller(teacher, cfg, distill_cfg, out)
    except (ConfigError, FileNotFoundError, FileExistsError, KeyError, ValueError, ckpt.CheckpointError) as err:
        return print_error(err)
    console.print(
        f"teacher {teacher.checkpoint.path} -> student {out} ({'with' if depth else 'without'} depth image)",
        markup=False,
        soft_wrap=True,
    )
    summary = distiller.train(console=Console(stderr=True), save_final=not evaluate_after)
    result: dict = {"distill": summary}
    if evaluate_after:
        from ogi.training.evaluate import evaluate

        teacher_eval = evaluate(
            teacher.actor,
            teacher.normalizer,
            teacher.cfg.env,
            num_envs=16,
            episode_s=eval_seconds,
            actor_obs="privileged",
        )
        student_eval = evaluate(distiller.student, distiller.normalizer, cfg.env, num_envs=16, episode_s=eval_seconds)
        if distiller.last_checkpoint is None or distiller.last_checkpoint.iteration != distiller.iteration:
            # the final checkpoint carries its eval scores (those with something to average)
            distiller.save({k: v for k, v in student_eval.scores().items() if math.isfinite(v)})
        result["teacher_eval"] = teacher_eval.as_dict()
        result["student_eval"] = student_eval.as_dict()
    if finetune_minutes > 0 or finetune_iterations is not None:
        from ogi.training.distill_finetune import finetune_student

        result["finetune"] = finetune_student(
            out,
            out / "finetune",
            minutes=finetune_minutes,
            iterations=finetune_iterations,
            reference_kl_coef=kl_coef,
            console=console,
        )
        if evaluate_after:
            from ogi.training.evaluate import evaluate
            from ogi.training.policy_loading import load_policy

            actor, normalizer, tuned_cfg, _ = load_policy(out / "finetune")
            result["finetuned_eval"] = evaluate(
                actor, normalizer, tuned_cfg.env, num_envs=16, episode_s=eval_seconds
            ).as_dict()
    (out / "distill_summary.json").write_text(dumps_strict(result, indent=2))
    _print(console, result)
    return 0


def _print(console: Console, result: dict) -> None:
    table = Table(title="distillation summary")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for section, values in result.items():
        for key, value in values.items():
            if isinstance(value, float):
                table.add_row(f"{section}/{key}", f"{value:.4g}")
            elif isinstance(value, int):
                table.add_row(f"{section}/{key}", str(value))
    console.print(table)

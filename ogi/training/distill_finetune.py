"""PPO fine-tuning of a distilled student, held near it: max J(pi) - beta KL(pi || pi_distilled).

The learner starts from the student's weights and normalizer; the distilled student, frozen, is the reference
(`ogi.training.ppo.FrozenPolicy`) and the asymmetric critic (policy + privileged observations) starts fresh.
The student's normalizer is held fixed so that learner and reference read the same normalized inputs.
The fine-tuned checkpoints go to their own run directory; the first names the distilled checkpoint as parent,
so the lineage reads fine-tuned -> distilled -> teacher.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from rich.console import Console

from ogi.training.ppo import FrozenPolicy
from ogi.validation import check_range

# fine-tuning moves a policy that already walks: smaller steps than PPO from scratch
FINETUNE_LEARNING_RATE = 3e-4


def finetune_student(
    student_run: Path,
    run_dir: Path,
    *,
    minutes: float,
    reference_kl_coef: float = 0.1,
    iterations: int | None = None,
    update_threads: int | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> dict:
    """PPO on the student in `student_run` for `minutes` (or `iterations`), KL-anchored to it; returns the summary.

    run_dir receives the fine-tuned run (checkpoints, summary.json); the student run is left untouched.
    update_threads: torch threads for the PPO update (None: the student run's setting).
    """
    from ogi.training.policy_loading import load_policy
    from ogi.training.runner import Runner

    check_range("minutes", minutes, 0.0, 1e6)
    check_range("reference_kl_coef", reference_kl_coef, 0.0, 1e3)
    actor, normalizer, cfg, checkpoint = load_policy(Path(student_run))
    if cfg.actor_obs != "policy":
        raise ValueError(
            f"{student_run}: actor_obs = {cfg.actor_obs!r}; fine-tuning takes a student run (actor_obs = 'policy')"
        )
    ppo = dataclasses.replace(
        cfg.ppo,
        reference_kl_coef=reference_kl_coef,
        learning_rate=min(cfg.ppo.learning_rate, FINETUNE_LEARNING_RATE),
        min_learning_rate=min(cfg.ppo.min_learning_rate, FINETUNE_LEARNING_RATE),
    )
    cfg = dataclasses.replace(
        cfg,
        ppo=ppo,
        max_minutes=minutes,
        iterations=iterations or 10**9,
        update_threads=update_threads or cfg.update_threads,
    )
    reference = FrozenPolicy(actor, normalizer, cfg.env.num_envs)
    runner = Runner(cfg, Path(run_dir), reference=reference)
    runner.actor.load_state_dict(actor.state_dict())
    runner.actor_normalizer.load_state_dict(normalizer.state_dict())
    runner.actor_normalizer.until = max(1, int(runner.actor_normalizer.count.item()))
    runner.last_checkpoint = checkpoint
    start = time.perf_counter()
    summary = runner.train(progress=progress, log=False, save_final=False)
    if runner.last_checkpoint is checkpoint or runner.last_checkpoint.iteration != runner.iteration:
        runner.save()
    summary.update(
        {
            "wall_s": time.perf_counter() - start,
            "checkpoint": str(runner.last_checkpoint.path),
            "parent": str(checkpoint.path),
            "reference_kl_coef": reference_kl_coef,
        }
    )
    (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    if console is not None:
        console.print(
            f"fine-tuned {runner.iteration} iterations -> {runner.last_checkpoint.path}", markup=False, soft_wrap=True
        )
    return summary

"""`ogi lm ...`: the language-model pipeline from the command line, each verb a thin layer over ogi.lm functions.

Defaults run end to end on the generated instruction corpus:
    ogi lm pretrain && ogi lm sft && ogi lm reward && ogi lm rlhf && ogi lm sample --prompt "walk forward 2 meters"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ogi.terminal import fail, print_json

_RUNS = Path("runs/lm")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        help="TOML file with this stage's config (fields at top level, "
        "model and optimizer tables); options override it."
    ),
]
SeedOption = Annotated[int | None, typer.Option(help="Random seed (data, initialization, sampling).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def _errors() -> tuple[type[BaseException], ...]:
    from ogi.checkpoints import CheckpointError
    from ogi.validation import ConfigError

    return (ConfigError, CheckpointError, ValueError, FileNotFoundError)


def _run(work: Callable[[], dict[str, Any]], as_json: bool) -> None:
    try:
        summary = work()
    except _errors() as error:
        fail(error)
    if as_json:
        print_json(summary)
        return
    for key, value in summary.items():
        print(f"  {key:<24} {value:.4g}" if isinstance(value, float) else f"  {key:<24} {value}")


def _progress(label: str, quiet: bool) -> Callable[[int, int, dict[str, float]], None] | None:
    if quiet:
        return None

    def report(step: int, total: int, metrics: dict[str, float]) -> None:
        every = max(1, total // 10)
        if step % every == 0 or step == total:
            shown = "  ".join(f"{name} {value:.4g}" for name, value in metrics.items())
            print(f"{label} {step}/{total}  {shown}", flush=True)

    return report


def pretrain_command(
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Run directory; the checkpoint goes to OUT/checkpoints/<step>.")] = _RUNS
    / "pretrain",
    steps: Annotated[int | None, typer.Option(min=1, help="Optimizer steps (default from config: 300).")] = None,
    compute_budget: Annotated[
        float | None,
        typer.Option(
            help="Training FLOPs C: size model and tokens by the compute-optimal rule (C = 6 N D, D ~ 20 N, then 30% "
            "smaller N) instead of the config's shape and steps."
        ),
    ] = None,
    tokenizer: Annotated[str | None, typer.Option(help="word (default) or bpe.")] = None,
    seed: SeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pretrain a causal transformer on the generated corpus (next-token loss, warm-up + cosine AdamW)."""

    def work() -> dict[str, Any]:
        from ogi.lm.config import PretrainConfig, load_config
        from ogi.lm.pretrain import pretrain

        cfg = load_config(
            PretrainConfig, config, steps=steps, seed=seed, tokenizer=tokenizer, compute_budget_flops=compute_budget
        )
        result = pretrain(cfg, run_dir=out, progress=_progress("pretrain", as_json))
        summary: dict[str, Any] = {
            "checkpoint": str(result.checkpoint.path) if result.checkpoint else None,
            "parameters": result.parameters,
            "steps": result.steps,
            "corpus_tokens": result.corpus_tokens,
            "tokens_trained": result.tokens_trained,
            "perplexity": result.perplexity,
            "unigram_perplexity": result.unigram_perplexity,
        }
        if result.compute_plan is not None:
            plan = result.compute_plan
            summary.update(
                {
                    "compute_flops": plan.compute_flops,
                    "optimal_N": round(plan.optimal_parameters),
                    "optimal_D": round(plan.optimal_tokens),
                    "chosen_N": plan.parameters,
                    "chosen_D": plan.tokens,
                    "layers": plan.model.n_layers,
                    "width": plan.model.width,
                }
            )
        return summary

    _run(work, as_json)


def sft_command(
    config: ConfigOption = None,
    init: Annotated[Path, typer.Option(help="Pretrained run directory or checkpoint to start from.")] = _RUNS
    / "pretrain",
    out: Annotated[Path, typer.Option(help="Run directory for the SFT checkpoint.")] = _RUNS / "sft",
    data: Annotated[
        Path | None,
        typer.Option(help='JSON lines of {"prompt", "response"} to train on instead of generated demonstrations.'),
    ] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Optimizer steps (default from config: 600).")] = None,
    seed: SeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Supervised fine-tuning on (instruction, plan) demonstrations; loss on response tokens only."""

    def work() -> dict[str, Any]:
        from ogi.lm.config import SFTConfig, load_config
        from ogi.lm.corpus import Demonstration
        from ogi.lm.data import read_jsonl
        from ogi.lm.sft import supervised_finetune
        from ogi.lm.store import load_language_model

        cfg = load_config(SFTConfig, config, steps=steps, seed=seed)
        base = load_language_model(init, expect_stage=("pretrain", "sft"))
        demos = None if data is None else [Demonstration(**row) for row in read_jsonl(data, ("prompt", "response"))]
        result = supervised_finetune(
            base.model,
            base.tokenizer,
            cfg,
            demonstrations=demos,
            run_dir=out,
            parent=base.checkpoint,
            progress=_progress("sft", as_json),
        )
        return {
            "checkpoint": str(result.checkpoint.path) if result.checkpoint else None,
            "steps": result.steps,
            "response_tokens_trained": result.response_tokens_trained,
            "final_loss": result.final_loss,
            "heldout_exact_match": result.exact_match,
            "heldout_verified": result.verified,
        }

    _run(work, as_json)


def reward_command(
    config: ConfigOption = None,
    init: Annotated[
        Path, typer.Option(help="SFT run directory or checkpoint whose trunk starts the reward model.")
    ] = _RUNS / "sft",
    out: Annotated[Path, typer.Option(help="Run directory for the reward-model checkpoint.")] = _RUNS / "reward",
    data: Annotated[
        Path | None,
        typer.Option(help='JSON lines of {"prompt", "chosen", "rejected"} instead of generated preference pairs.'),
    ] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Optimizer steps (default from config: 200).")] = None,
    seed: SeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train a reward model on preference pairs with -log sigmoid(R(x, y_w) - R(x, y_l)); report held-out accuracy."""

    def work() -> dict[str, Any]:
        from ogi.lm.config import RewardConfig, load_config
        from ogi.lm.corpus import PreferencePair
        from ogi.lm.data import read_jsonl
        from ogi.lm.reward_model import train_reward_model
        from ogi.lm.store import load_language_model

        cfg = load_config(RewardConfig, config, steps=steps, seed=seed)
        base = load_language_model(init, expect_stage=("sft", "pretrain"))
        pairs = (
            None
            if data is None
            else [PreferencePair(**row) for row in read_jsonl(data, ("prompt", "chosen", "rejected"))]
        )
        result = train_reward_model(
            base.model,
            base.tokenizer,
            cfg,
            pairs=pairs,
            run_dir=out,
            parent=base.checkpoint,
            progress=_progress("reward", as_json),
        )
        return {
            "checkpoint": str(result.checkpoint.path) if result.checkpoint else None,
            "steps": result.steps,
            "final_loss": result.final_loss,
            "heldout_pairwise_accuracy": result.accuracy,
            "train_pairwise_accuracy": result.train_accuracy,
        }

    _run(work, as_json)


def rlhf_command(
    config: ConfigOption = None,
    policy: Annotated[
        Path, typer.Option(help="SFT run directory or checkpoint: the starting policy and the frozen KL reference.")
    ] = _RUNS / "sft",
    reward_model: Annotated[
        Path | None,
        typer.Option(help="Reward-model run directory or checkpoint; 'none' to use only the plan verifier."),
    ] = _RUNS / "reward",
    verifier_reward: Annotated[
        bool, typer.Option(help="Add the programmatic plan score (the verifier) to the reward.")
    ] = True,
    out: Annotated[Path, typer.Option(help="Run directory for the RLHF checkpoint.")] = _RUNS / "rlhf",
    iterations: Annotated[int | None, typer.Option(min=1, help="PPO iterations (default from config: 30).")] = None,
    beta: Annotated[float | None, typer.Option(min=0.0, help="Initial KL penalty weight (default 0.05).")] = None,
    target_kl: Annotated[
        float | None, typer.Option(min=0.0, help="Adapt beta toward this per-response KL (0: fixed beta).")
    ] = None,
    seed: SeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """PPO with a per-token KL penalty to the SFT policy (maximize mean score minus beta KL); logs reward, KL and
    penalty rate per iteration."""

    def work() -> dict[str, Any]:
        from ogi.lm.config import RLHFConfig, load_config
        from ogi.lm.corpus import plan_score
        from ogi.lm.reward_model import RewardModel
        from ogi.lm.rlhf import train_rlhf
        from ogi.lm.store import load_language_model

        cfg = load_config(RLHFConfig, config, iterations=iterations, seed=seed, beta=beta, target_kl=target_kl)
        start = load_language_model(policy, expect_stage=("sft", "rlhf", "pretrain"))
        scorer = None
        if reward_model is not None and str(reward_model) != "none":
            loaded = load_language_model(reward_model, expect_stage=("reward",))
            if loaded.tokenizer.to_dict() != start.tokenizer.to_dict():
                raise ValueError(f"--reward-model {reward_model} uses another tokenizer than --policy {policy}")
            scorer = RewardModel.from_parts(loaded.model, loaded.heads)
        result = train_rlhf(
            start.model,
            start.tokenizer,
            cfg,
            reward_model=scorer,
            reward_function=plan_score if verifier_reward else None,
            run_dir=out,
            parent=start.checkpoint,
            log=_progress("rlhf iteration", as_json),
        )
        return {
            "checkpoint": str(result.checkpoint.path) if result.checkpoint else None,
            "iterations": len(result.history),
            "reward_before": result.before["reward"],
            "reward_after": result.after["reward"],
            "reward_gain": result.reward_gain,
            "kl": result.after["kl"],
            "penalty_rate": result.after["penalty_rate"],
            "final_beta": result.history[-1]["beta"],
        }

    _run(work, as_json)


def sample_command(
    prompt: Annotated[str, typer.Option(help="Instruction to answer, e.g. 'walk forward 2 meters then turn left'.")],
    model: Annotated[Path, typer.Option(help="Run directory or checkpoint of any stage.")] = _RUNS / "rlhf",
    n: Annotated[int, typer.Option(min=1, help="Candidates to sample; with N > 1 the verifier picks one.")] = 1,
    verifier: Annotated[
        str, typer.Option(help="'plan' (programmatic plan score) or a reward-model run/checkpoint.")
    ] = "plan",
    greedy: Annotated[bool, typer.Option(help="Greedy decoding (ignores --n, --temperature, --top-k).")] = False,
    temperature: Annotated[float, typer.Option(min=1e-3, help="Sampling temperature.")] = 1.0,
    top_k: Annotated[int, typer.Option(min=0, help="Sample among the k most likely tokens (0: all).")] = 0,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest response in tokens.")] = 32,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Answer one instruction: greedy, sampled, or best-of-N with a verifier."""

    def work() -> dict[str, Any]:
        import torch

        from ogi.lm.best_of_n import function_verifier, pick_best, reward_model_verifier, sample_candidates
        from ogi.lm.corpus import is_correct, plan_score
        from ogi.lm.reward_model import RewardModel
        from ogi.lm.sft import greedy_response
        from ogi.lm.store import load_language_model

        loaded = load_language_model(model)
        if greedy:
            response, candidates, scores = (
                greedy_response(loaded.model, loaded.tokenizer, prompt, max_new_tokens),
                [],
                [],
            )
        else:
            if verifier == "plan":
                check = function_verifier(plan_score)
            else:
                scorer = load_language_model(Path(verifier), expect_stage=("reward",))
                check = reward_model_verifier(RewardModel.from_parts(scorer.model, scorer.heads), scorer.tokenizer)
            candidates = sample_candidates(
                loaded.model,
                loaded.tokenizer,
                prompt,
                n,
                generator=torch.Generator().manual_seed(seed),
                temperature=temperature,
                top_k=top_k,
                max_new_tokens=max_new_tokens,
            )
            response, scores = pick_best(prompt, candidates, check)
        return {
            "prompt": prompt,
            "response": response,
            "prompt_tokens": loaded.tokenizer.count(prompt),
            "response_tokens": loaded.tokenizer.count(response),
            "correct": is_correct(prompt, response),
            "candidates": len(candidates),
            "best_score": max(scores) if scores else None,
        }

    _run(work, as_json)


def register(app: typer.Typer) -> None:
    """Add the ``lm`` sub-app (pretrain, sft, reward, rlhf, sample) to ``app``."""
    lm = typer.Typer(
        help="Language-model pipeline: pretrain -> SFT -> reward model -> PPO-RLHF with KL; sampling and best-of-N.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    lm.command("pretrain")(pretrain_command)
    lm.command("sft")(sft_command)
    lm.command("reward")(reward_command)
    lm.command("rlhf")(rlhf_command)
    lm.command("sample")(sample_command)
    app.add_typer(lm, name="lm")

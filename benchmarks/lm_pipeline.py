"""The language-model pipeline end to end on the generated instruction corpus, with its figures as one JSON object.

Stages: pretrain (held-out perplexity against a unigram baseline) -> SFT (held-out exact match) -> reward model
(held-out pairwise accuracy) -> PPO-RLHF with a KL penalty and target KL (reward gain and final KL on held-out
prompts, sampled with the same seed before and after) -> best-of-N from the SFT model with the reward model as
verifier (success for N = 1, 4, 16 on held-out prompts, next to pass@N, the success of a perfect verifier).
With 3000 demonstrations SFT already answers most prompts, so RLHF is also run from a second SFT on few
demonstrations (``low_data_*``), where the reward has room to teach: once rewarded by the plan verifier alone, once by
the reward model alone (``low_data_rm_*``). Greedy exact match before and after is measured on the same 200 held-out
demonstrations. Every stage is seeded.
Timed on CPU with one torch thread; on a shared machine the minutes vary with the other load.

    python benchmarks/lm_pipeline.py [--seed 0] [--out docs/lm_pipeline.json] [--runs DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from ogi.lm.best_of_n import best_of_n_success, reward_model_verifier
from ogi.lm.config import PretrainConfig, RewardConfig, RLHFConfig, SFTConfig
from ogi.lm.corpus import is_correct, plan_score, split_demonstrations
from ogi.lm.pretrain import pretrain
from ogi.lm.reward_model import train_reward_model
from ogi.lm.rlhf import train_rlhf
from ogi.lm.sft import evaluate_demonstrations, supervised_finetune


def run(seed: int, runs: Path, best_of_n_prompts: int, low_data_examples: int) -> dict:
    start = time.perf_counter()
    stage_minutes = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        stage_minutes[name] = round((now - since) / 60, 3)
        return now

    sft_config = SFTConfig(seed=seed)
    t = time.perf_counter()
    pre = pretrain(PretrainConfig(seed=seed), run_dir=runs / "pretrain")
    t = lap("pretrain", t)
    pretrained = copy.deepcopy(pre.model)
    sft = supervised_finetune(pre.model, pre.tokenizer, sft_config, run_dir=runs / "sft", parent=pre.checkpoint)
    t = lap("sft", t)
    reward = train_reward_model(
        sft.model, pre.tokenizer, RewardConfig(seed=seed), run_dir=runs / "reward", parent=sft.checkpoint
    )
    t = lap("reward", t)
    rlhf_config = RLHFConfig(seed=seed, target_kl=2.0)
    rlhf = train_rlhf(
        copy.deepcopy(sft.model),
        pre.tokenizer,
        rlhf_config,
        reward_model=reward.reward_model,
        reward_function=plan_score,
        run_dir=runs / "rlhf",
        parent=sft.checkpoint,
    )
    t = lap("rlhf", t)
    _, sft_heldout = split_demonstrations(sft_config.train_examples, sft_config.heldout_examples, seed)
    rlhf_exact, _ = evaluate_demonstrations(rlhf.policy, pre.tokenizer, sft_heldout)
    low_data = supervised_finetune(
        pretrained, pre.tokenizer, replace(sft_config, train_examples=low_data_examples, steps=300)
    )
    # Before and after on the same 200 held-out demonstrations (low_data.exact_match is on its own split's).
    low_data_exact, low_data_verified = evaluate_demonstrations(low_data.model, pre.tokenizer, sft_heldout)
    low_data_rlhf = train_rlhf(copy.deepcopy(low_data.model), pre.tokenizer, rlhf_config, reward_function=plan_score)
    low_data_rlhf_exact, low_data_rlhf_verified = evaluate_demonstrations(
        low_data_rlhf.policy, pre.tokenizer, sft_heldout
    )
    t = lap("low_data_sft_rlhf", t)
    # The same start taught by the reward model alone; the plan score is only measured.
    low_data_rm = train_rlhf(
        copy.deepcopy(low_data.model),
        pre.tokenizer,
        replace(rlhf_config, programmatic_weight=0.0),
        reward_model=reward.reward_model,
        reward_function=plan_score,
    )
    low_data_rm_exact, _ = evaluate_demonstrations(low_data_rm.policy, pre.tokenizer, sft_heldout)
    t = lap("low_data_rm_rlhf", t)
    _, heldout = split_demonstrations(0, best_of_n_prompts, seed + 101)
    report = best_of_n_success(
        sft.model,
        pre.tokenizer,
        [demo.prompt for demo in heldout],
        (1, 4, 16),
        reward_model_verifier(reward.reward_model, pre.tokenizer),
        is_correct,
        seed=seed,
    )
    lap("best_of_n", t)
    return {
        "ppl_model": round(pre.perplexity, 4),
        "ppl_unigram": round(pre.unigram_perplexity, 4),
        "sft_exact_match": sft.exact_match,
        "rm_accuracy": round(reward.accuracy, 4),
        "rlhf_reward_gain": round(rlhf.reward_gain, 4),
        "rlhf_kl": round(rlhf.after["kl"], 4),
        "rlhf_target_kl": rlhf_config.target_kl,
        "rlhf_reward_before": round(rlhf.before["reward"], 4),
        "rlhf_reward_after": round(rlhf.after["reward"], 4),
        "rlhf_plan_score_before": round(rlhf.before["programmatic"], 4),
        "rlhf_plan_score_after": round(rlhf.after["programmatic"], 4),
        "rlhf_penalty_rate": rlhf.after["penalty_rate"],
        "rlhf_exact_match": rlhf_exact,
        "low_data_demonstrations": low_data_examples,
        "low_data_sft_exact_match": low_data_exact,
        "low_data_sft_verified": low_data_verified,
        "low_data_rlhf_reward_gain": round(low_data_rlhf.reward_gain, 4),
        "low_data_rlhf_kl": round(low_data_rlhf.after["kl"], 4),
        "low_data_rlhf_plan_score_before": round(low_data_rlhf.before["programmatic"], 4),
        "low_data_rlhf_plan_score_after": round(low_data_rlhf.after["programmatic"], 4),
        "low_data_rlhf_exact_match": low_data_rlhf_exact,
        "low_data_rlhf_verified": low_data_rlhf_verified,
        "low_data_rm_rlhf_reward_gain": round(low_data_rm.reward_gain, 4),
        "low_data_rm_rlhf_kl": round(low_data_rm.after["kl"], 4),
        "low_data_rm_rlhf_plan_score_before": round(low_data_rm.before["programmatic"], 4),
        "low_data_rm_rlhf_plan_score_after": round(low_data_rm.after["programmatic"], 4),
        "low_data_rm_rlhf_exact_match": low_data_rm_exact,
        "best_of_n": {str(n): value for n, value in report.success.items()},
        "pass_at_n": {str(n): value for n, value in report.oracle.items()},
        "parameters": pre.parameters,
        "vocab_size": pre.tokenizer.vocab_size,
        "corpus_tokens": pre.corpus_tokens,
        "tokens_trained": pre.tokens_trained,
        "sft_response_tokens_trained": sft.response_tokens_trained,
        "best_of_n_prompts": best_of_n_prompts,
        "stage_minutes": stage_minutes,
        "minutes": round((time.perf_counter() - start) / 60, 3),
        "seed": seed,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--best-of-n-prompts", type=int, default=100)
    parser.add_argument(
        "--low-data-demonstrations",
        type=int,
        default=200,
        help="Demonstrations of the second, data-poor SFT that RLHF then improves.",
    )
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    parser.add_argument("--runs", type=Path, default=None, help="Keep the checkpoints here (default: a temp dir).")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args.seed, args.runs or Path(scratch), args.best_of_n_prompts, args.low_data_demonstrations)
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

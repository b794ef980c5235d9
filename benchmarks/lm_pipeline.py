"""The language-model pipeline end to end on the generated instruction corpus, with its figures as one JSON object.

Stages: pretrain (held-out perplexity against a unigram baseline) -> SFT (held-out exact match) -> reward model
(held-out pairwise accuracy) -> PPO-RLHF with a KL penalty and target KL (reward gain and final KL on held-out
prompts, sampled with the same seed before and after) -> best-of-N with the reward model as verifier (success for
N = 1, 4, 16 on held-out prompts, next to pass@N, the success of a perfect verifier). Every stage is seeded.
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
from pathlib import Path

import torch

from ogi.lm.best_of_n import best_of_n_success, reward_model_verifier
from ogi.lm.config import PretrainConfig, RewardConfig, RLHFConfig, SFTConfig
from ogi.lm.corpus import is_correct, plan_score, split_demonstrations
from ogi.lm.pretrain import pretrain
from ogi.lm.reward_model import train_reward_model
from ogi.lm.rlhf import train_rlhf
from ogi.lm.sft import supervised_finetune


def run(seed: int, runs: Path, best_of_n_prompts: int) -> dict:
    start = time.perf_counter()
    stage_minutes = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        stage_minutes[name] = round((now - since) / 60, 3)
        return now

    t = time.perf_counter()
    pre = pretrain(PretrainConfig(seed=seed), run_dir=runs / "pretrain")
    t = lap("pretrain", t)
    sft = supervised_finetune(pre.model, pre.tokenizer, SFTConfig(seed=seed), run_dir=runs / "sft",
                              parent=pre.checkpoint)
    t = lap("sft", t)
    reward = train_reward_model(sft.model, pre.tokenizer, RewardConfig(seed=seed), run_dir=runs / "reward",
                                parent=sft.checkpoint)
    t = lap("reward", t)
    rlhf_config = RLHFConfig(seed=seed, target_kl=2.0)
    rlhf = train_rlhf(copy.deepcopy(sft.model), pre.tokenizer, rlhf_config, reward_model=reward.reward_model,
                      reward_function=plan_score, run_dir=runs / "rlhf", parent=sft.checkpoint)
    t = lap("rlhf", t)
    _, heldout = split_demonstrations(0, best_of_n_prompts, seed + 101)
    report = best_of_n_success(sft.model, pre.tokenizer, [demo.prompt for demo in heldout], (1, 4, 16),
                               reward_model_verifier(reward.reward_model, pre.tokenizer), is_correct, seed=seed)
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
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    parser.add_argument("--runs", type=Path, default=None, help="Keep the checkpoints here (default: a temp dir).")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args.seed, args.runs or Path(scratch), args.best_of_n_prompts)
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""The 5 Hz planner from scratch and what it achieves: success on held-out instructions and layouts for the oracle,
SFT (with DAgger rounds), SFT + RL, SFT + RL + best-of-N with the verifier, and a blind planner; the planner's
decision latency on one core; the three loops' measured rates on the 1 kHz model.

Every stage trains from scratch (the language model too) and runs its episodes in the arena with the shipped
omnidirectional walker at its training physics (250 Hz); checkpoints of every stage, with lineage, stay under
--out. The planners read each instruction as their pretrained language model says it in training wording
(`ogi.hierarchy.rewrite`); `sft_rl_literal` is the RL planner reading the words as given. Prints progress lines,
then one JSON object (last on stdout).

    python benchmarks/planner.py [--out runs/planner-bench] [--eval-episodes 200] [--seed 0] [--quick]

`--evaluate CKPT` trains nothing: it plays the held-out episodes with the oracle and with a trained planner (the
shipped one: `--evaluate shipped`), reading the words as given and rewritten, on the same layouts and simulator
noise, and prints `success` (`oracle`, `planner`, `planner_rewrite`) with the per-novelty detail.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ogi.hierarchy.episodes import OracleDecider
from ogi.hierarchy.pipeline import PipelineConfig, PlannerPipeline
from ogi.hierarchy.planner_rl import PlannerRLConfig
from ogi.hierarchy.planner_training import PlannerPretrainConfig, PlannerSFTConfig
from ogi.hierarchy.planner_verifier import VerifierConfig
from ogi.hierarchy.run import run_instruction
from ogi.policies.planner import decision_latency


def quick_config(seed: int) -> PipelineConfig:
    """A few minutes end to end: to try the pipeline, not to measure it."""
    return PipelineConfig(
        seed=seed,
        num_envs=16,
        documents=600,
        pretrain=PlannerPretrainConfig(steps=50, batch_size=16),
        demo_episodes=32,
        dagger_rounds=1,
        dagger_episodes=16,
        sft=PlannerSFTConfig(steps=200),
        dagger_sft_steps=100,
        rl=PlannerRLConfig(iterations=1, episodes_per_iteration=16),
        verifier_episodes=16,
        verifier=VerifierConfig(steps=50),
        eval_episodes=16,
        seen_wording_episodes=8,
    )


def evaluate(path: Path | None, episodes: int, seed: int) -> dict:
    """A trained planner on held-out episodes, reading the words as given and rewritten, beside the oracle."""
    from ogi.hierarchy.episodes import play_episodes
    from ogi.hierarchy.pipeline import SHIPPED_WALKER, _summary, make_arena, sample_episodes
    from ogi.hierarchy.planner_episodes import PlannerDecider
    from ogi.hierarchy.rewrite import pretrained_rewriter
    from ogi.hierarchy.run import SHIPPED_PLANNER
    from ogi.policies.planner import load_planner

    path = SHIPPED_PLANNER if path is None else path
    loaded = load_planner(path, expect_stage=("sft", "rl"))
    rewriter = pretrained_rewriter(path)
    heldout = sample_episodes(episodes, "heldout", seed)
    arms = {
        "oracle": lambda: OracleDecider(),
        "planner": lambda: PlannerDecider.greedy(loaded.planner),
        "planner_rewrite": lambda: PlannerDecider.greedy(loaded.planner, rewrite=rewriter),
    }
    success, detail = {}, {}
    for name, decider in arms.items():
        begin = time.perf_counter()
        env, walker = make_arena(SHIPPED_WALKER, 64, 0.004, seed=seed + 1)  # the same noise for every arm
        outcomes, _ = play_episodes(env, walker, heldout, decider(), keep=False)
        env.close()
        success[name] = round(outcomes.success_rate, 4)
        detail[name] = _summary(outcomes, heldout)
        print(f"held-out {name}: success {success[name]:.3f}, {time.perf_counter() - begin:.0f} s", file=sys.stderr)
    rewritten = [rewriter(e.instruction.text) for e in heldout]
    changed = [(e.instruction.text, r) for e, r in zip(heldout, rewritten) if r != e.instruction.text]
    return {
        "success": success,
        "success_over_oracle": {
            name: round(value / success["oracle"], 4) if success["oracle"] else None for name, value in success.items()
        },
        "episodes": episodes,
        "detail": detail,
        "rewritten": {"instructions": len(changed), "examples": changed[:12]},
        "planner": str(loaded.checkpoint.path),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/planner-bench"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that every stage runs")
    parser.add_argument(
        "--evaluate", metavar="CKPT", help="train nothing: judge this planner ('shipped': the shipped one)"
    )
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))  # training; the latency is measured on one thread
    if args.evaluate is not None:
        start = time.perf_counter()
        report = evaluate(None if args.evaluate == "shipped" else Path(args.evaluate), args.eval_episodes, args.seed)
        report["minutes"] = round((time.perf_counter() - start) / 60, 2)
        report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}
        print(json.dumps(report))
        return
    cfg = quick_config(args.seed) if args.quick else PipelineConfig(seed=args.seed, eval_episodes=args.eval_episodes)
    start = time.perf_counter()
    pipeline = PlannerPipeline(cfg, args.out, log=lambda line: print(line, file=sys.stderr, flush=True))
    result = pipeline.run()

    from ogi.policies.planner import load_planner

    planner = load_planner(result.checkpoints["sft_rl"]).planner
    torch.set_num_threads(1)
    latency = decision_latency(planner, decisions=300)
    # the three rates on the deployed physics: one instruction played at 1 kHz
    played = run_instruction("walk forward two meters then stop", OracleDecider(), layout_seed=args.seed)
    report = {
        "success": {name: round(value, 4) for name, value in result.success.items()},
        "success_over_oracle": {
            name: round(value / result.success["oracle"], 4) if result.success.get("oracle") else None
            for name, value in result.success.items()
        },
        "episodes": cfg.eval_episodes,
        "latency_ms": {"p50": round(latency.p50_ms, 3), "p99": round(latency.p99_ms, 3), "threads": 1},
        "rates_hz": {name: round(value, 6) for name, value in played.rates.hz.items()},
        "rates_check": {"instruction": played.instruction.text, "success": bool(played.outcomes.success[0])},
        "training_rates_hz": {name: round(value, 3) for name, value in result.rates.hz.items()},
        "detail": result.detail,
        "checkpoints": {name: str(path) for name, path in result.checkpoints.items()},
        "config": json.loads(json.dumps(dataclasses.asdict(cfg), default=str)),
        "minutes": round((time.perf_counter() - start) / 60, 2),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

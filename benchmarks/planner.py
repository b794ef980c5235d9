"""The 5 Hz planner from scratch and what it achieves: success on held-out instructions and layouts for the oracle,
SFT (with DAgger rounds), SFT + RL, SFT + RL + best-of-N with the verifier, and a blind planner; the planner's
decision latency on one core; the three loops' measured rates on the 1 kHz model.

Every stage trains from scratch (the language model too) and runs its episodes in the arena with the shipped
omnidirectional walker at its training physics (250 Hz); checkpoints of every stage, with lineage, stay under
--out. Prints progress lines, then one JSON object (last on stdout).

    python benchmarks/planner.py [--out runs/planner-bench] [--eval-episodes 200] [--seed 0] [--quick]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/planner-bench"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that every stage runs")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))  # training; the latency is measured on one thread
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

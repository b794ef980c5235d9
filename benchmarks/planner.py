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
noise, and prints `success` (`oracle`, `planner`, `planner_rewrite`) with the per-novelty detail. With
`--deploy-episodes N` the oracle and the rewriting planner play the first N of them again through the deployment
runtime (`ogi.deploy.sim2sim.walk_instruction`: the exported walker at 1 kHz, camera and odometry from the
simulated robot): `oracle_deployed`, `planner_rewrite_deployed`, with the arena's success on the same episodes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections import Counter
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


def evaluate(path: Path | None, episodes: int, seed: int, deploy_episodes: int = 0) -> dict:
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
        detail[name] = {**_summary(outcomes, heldout), "successes": outcomes.success.tolist()}
        print(f"held-out {name}: success {success[name]:.3f}, {time.perf_counter() - begin:.0f} s", file=sys.stderr)
    if deploy_episodes:
        # the first held-out episodes again, through the deployment runtime on the 1 kHz robot (ONNX walker, the
        # robot starting lying down, camera and odometry from the simulated robot), stepped on one clock
        import tempfile

        from ogi.deploy.export import export_policy
        from ogi.deploy.sim2sim import walk_instruction

        with tempfile.TemporaryDirectory() as tmp:
            artifact = export_policy(SHIPPED_WALKER, Path(tmp) / "walker")
            for name in ("oracle", "planner_rewrite"):
                begin = time.perf_counter()
                runs = [walk_instruction(artifact, None, arms[name](), episode=e) for e in heldout[:deploy_episodes]]
                deployed = [bool(r["success"]) for r in runs]
                arena = detail[name]["successes"][:deploy_episodes]
                success[f"{name}_deployed"] = round(sum(deployed) / len(deployed), 4)
                detail[f"{name}_deployed"] = {
                    "success": success[f"{name}_deployed"],
                    "arena_success_same_episodes": round(sum(arena) / len(arena), 4),
                    "agree": sum(a == b for a, b in zip(deployed, arena)),
                    "reasons": dict(Counter(r["outcome"] for r in runs)),
                    "rates_hz": runs[0]["rates_hz"],
                    "safety_events": sum(len(r["safety_events"]) for r in runs),
                }
                print(
                    f"deployed {name}: success {success[f'{name}_deployed']:.3f} on {len(runs)} episodes, "
                    f"{time.perf_counter() - begin:.0f} s",
                    file=sys.stderr,
                )
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
    parser.add_argument(
        "--deploy-episodes",
        type=int,
        default=0,
        help="with --evaluate: play the first N held-out episodes again through the deployment runtime at 1 kHz",
    )
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))  # training; the latency is measured on one thread
    if args.evaluate is not None:
        start = time.perf_counter()
        path = None if args.evaluate == "shipped" else Path(args.evaluate)
        report = evaluate(path, args.eval_episodes, args.seed, args.deploy_episodes)
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

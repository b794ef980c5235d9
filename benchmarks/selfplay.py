"""Self-play for robustness, a gait-style reward from preferences, and a plan critic: what each buys.

1. Robustness: three walkers fine-tuned for the same CPU time from the shipped omnidirectional walker
   (`go2_walk_omni`): with the preset's random pushes (domain randomization: at most 0.5 m/s, 5-10 s apart), with
   random pushes at the adversary's budget (at most 0.8 m/s, 2-8 s apart), and against the push adversary
   (`ogi train --adversary`: at most 0.8 m/s, 2 s apart, 4 per episode, where and when it learns). Each is then
   judged under held-out perturbation schedules (`ogi.training.robustness.HELD_OUT`: stronger, longer, twisting,
   doubled pushes and rough ground, none used in training): falls and distance walked; and on flat ground without
   pushes: linear-velocity tracking error.
2. Preferences (`ogi.training.preference.preference_benchmark`): the gait trained with a reward model learned from
   scripted preference pairs against the hand-tuned gait, judged by a held-out labeller; the reward model's
   accuracy on fresh samples with and without retraining.
3. The plan critic (`ogi.hierarchy.plan_critic.critic_benchmark`): planner success on held-out instructions with
   and without the critic trained by self-play.

The fine-tuning arms stop on equal process CPU time (the machine may be shared; CPU time is the work each got)
and report their wall-clock minutes too. Prints progress to stderr, one JSON object last on stdout.

    python benchmarks/selfplay.py [--parts robustness,preference,critic] [--cpu-minutes 8] [--out runs/selfplay]
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

import numpy as np
import torch

from ogi import checkpoints as ckpt
from ogi.training.config import config_from_plain
from ogi.training.evaluate import evaluate
from ogi.training.robustness import HELD_OUT, evaluate_robustness
from ogi.training.runner import Runner

SHIPPED = Path(__file__).resolve().parents[1] / "ogi" / "policies" / "pretrained" / "go2_walk_omni"
ARMS = ("random", "random_budget", "adversary")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def arm_config(arm: str, seed: int):
    """The shipped walker's training config, changed for one arm."""
    cfg = config_from_plain(ckpt.load_checkpoint(SHIPPED).checkpoint.config)
    cfg = dataclasses.replace(cfg, seed=seed, iterations=10**9, max_minutes=0.0, checkpoint_every=10**9, keep_last=2)
    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, seed=seed))
    if arm == "random_budget":
        budget = cfg.adversary
        randomization = dataclasses.replace(
            cfg.env.randomization, push_velocity_mps=budget.max_push_velocity_mps, push_interval_s=(2.0, 8.0)
        )
        cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, randomization=randomization))
    elif arm == "adversary":
        cfg = dataclasses.replace(cfg, adversary=dataclasses.replace(cfg.adversary, enabled=True))
    return cfg


def start_from_shipped(runner: Runner) -> None:
    """Actor, critic and both normalizers from the shipped checkpoint (fine-tuning, not a cold critic)."""
    loaded = ckpt.load_checkpoint(SHIPPED)

    def under(prefix: str, tensors: dict) -> dict:
        return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}

    runner.actor.load_state_dict(under("actor/", loaded.weights))
    runner.actor_normalizer.load_state_dict(under("actor_normalizer/", loaded.weights))
    runner.critic.load_state_dict(under("critic/", loaded.state))
    runner.critic_normalizer.load_state_dict(under("critic_normalizer/", loaded.state))
    runner.last_checkpoint = loaded.checkpoint  # lineage: the arm's checkpoints descend from the shipped one


def train_arm(arm: str, out: Path, cpu_minutes: float, seed: int) -> tuple[Runner, dict]:
    cfg = arm_config(arm, seed)
    runner = Runner(cfg, out / arm)
    start_from_shipped(runner)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    budget_s = 60.0 * cpu_minutes

    def out_of_time(r: Runner) -> bool:
        return time.process_time() - cpu0 >= budget_s

    summary = runner.train(progress=False, log=True, stop_when=out_of_time)
    stats = runner.last_stats
    info = {
        "iterations": runner.iteration,
        "walker_env_steps": runner.env_steps,
        "cpu_minutes": (time.process_time() - cpu0) / 60.0,
        "wall_minutes": (time.perf_counter() - wall0) / 60.0,
        "final_fall_rate": summary.get("episode/fall_rate"),
        "checkpoint": str(runner.last_checkpoint.path),
    }
    if runner.hooks:
        adversary = runner.hooks[0]
        info["adversary_env_steps"] = adversary.env_steps
        info["league_size"] = len(adversary.league)
        info["adversary_last"] = {k: v for k, v in stats.items() if k.startswith("adversary/")}
    return runner, info


def judge(runner: Runner, episodes: int, seed: int) -> dict:
    cfg = runner.cfg
    results = {}
    for schedule in HELD_OUT:
        t0 = time.perf_counter()
        result = evaluate_robustness(
            runner.actor, runner.actor_normalizer, cfg.env, schedule, num_envs=episodes, seed=seed
        )
        results[schedule.name] = result.as_dict()
        log(
            f"  {schedule.name}: falls {result.fall_rate:.3f}, distance {result.distance_m:.2f} m"
            f" ({time.perf_counter() - t0:.0f} s)"
        )
    from ogi.training.adversary import without_random_pushes

    flat = evaluate(
        runner.actor,
        runner.actor_normalizer,
        without_random_pushes(cfg.env),
        num_envs=episodes,
        episode_s=15.0,
        seed=seed,
        actor_obs=cfg.actor_obs,
    )
    return {
        "held_out": results,
        "fall_rate": float(np.mean([r["fall_rate"] for r in results.values()])),
        "distance_m": float(np.mean([r["distance_m"] for r in results.values()])),
        "flat_tracking_error_mps": flat.tracking_error_mps,
        "flat_fall_rate": flat.fall_rate,
    }


def robustness(out: Path, cpu_minutes: float, episodes: int, seed: int, arms: tuple[str, ...]) -> dict:
    report: dict = {"arms": {}}
    shipped_runner = Runner(arm_config("random", seed), out / "shipped")
    start_from_shipped(shipped_runner)
    log("shipped walker, before fine-tuning")
    report["shipped"] = judge(shipped_runner, episodes, seed + 1)
    for arm in arms:
        log(f"arm {arm}: fine-tuning for {cpu_minutes:g} CPU-minutes")
        runner, info = train_arm(arm, out, cpu_minutes, seed)
        log(f"arm {arm}: {info['iterations']} iterations in {info['wall_minutes']:.1f} min; judging")
        report["arms"][arm] = {"training": info, **judge(runner, episodes, seed + 1)}
    arms_report = report["arms"]
    if "random" in arms_report and "adversary" in arms_report:
        random_falls = arms_report["random"]["fall_rate"]
        adversary_falls = arms_report["adversary"]["fall_rate"]
        report["fall_reduction_vs_random"] = 1.0 - adversary_falls / random_falls if random_falls > 0 else None
        report["distance_gain_vs_random"] = (
            arms_report["adversary"]["distance_m"] / arms_report["random"]["distance_m"] - 1.0
        )
        random_error = arms_report["random"]["flat_tracking_error_mps"]
        report["flat_tracking_loss"] = arms_report["adversary"]["flat_tracking_error_mps"] / random_error - 1.0
    if "random_budget" in arms_report and "adversary" in arms_report:
        budget_falls = arms_report["random_budget"]["fall_rate"]
        report["fall_reduction_vs_random_at_budget"] = (
            1.0 - arms_report["adversary"]["fall_rate"] / budget_falls if budget_falls > 0 else None
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="robustness,preference,critic")
    parser.add_argument("--arms", default=",".join(ARMS), help="robustness arms: " + ", ".join(ARMS))
    parser.add_argument("--cpu-minutes", type=float, default=8.0, help="fine-tuning per robustness arm")
    parser.add_argument("--episodes", type=int, default=64, help="episodes per held-out schedule")
    parser.add_argument("--preference-minutes", type=float, default=4.0, help="fine-tuning per preference arm")
    parser.add_argument("--out", type=Path, default=Path("runs/selfplay"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = set(parts) - {"robustness", "preference", "critic"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    if set(arms) - set(ARMS):
        parser.error(f"unknown arms: {', '.join(sorted(set(arms) - set(ARMS)))}")
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "seed": args.seed,
    }
    if "robustness" in parts:
        report = robustness(args.out / "robustness", args.cpu_minutes, args.episodes, args.seed, arms)
        result["robustness"] = report
        result["fall_reduction_vs_random"] = report.get("fall_reduction_vs_random")
        result["flat_tracking_loss"] = report.get("flat_tracking_loss")
    if "preference" in parts:
        from ogi.training.preference import preference_benchmark

        report = preference_benchmark(
            seed=args.seed, minutes_per_arm=args.preference_minutes, out=args.out / "preference"
        )
        result["preference"] = report
        result["style_win_rate"] = report["style_win_rate"]
        result["rm_accuracy_drift"] = report["rm_accuracy_drift"]
    if "critic" in parts:
        from ogi.hierarchy.plan_critic import critic_benchmark

        report = critic_benchmark(seed=args.seed, out=args.out / "critic")
        result["critic"] = report
        result["critic_success_gain"] = report["critic_success_gain"]
    result["minutes"] = (time.perf_counter() - started) / 60.0
    text = json.dumps(result, indent=1)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

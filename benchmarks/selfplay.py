"""Self-play for robustness, a gait-style reward from preferences, and a plan critic: what each buys.

1. Robustness: three walkers fine-tuned for the same CPU time from the shipped omnidirectional walker
   (`go2_walk_omni`): with the preset's random pushes (domain randomization: at most 0.5 m/s, 5-10 s apart), with
   random pushes at the adversary's budget (at most 0.8 m/s, 2-8 s apart), and against the push adversary
   (`ogi train --adversary`: at most 0.8 m/s, 2 s apart, 4 per episode, where and when it learns), and against
   the adversary with a head start (`adversary_warm`: 60 rounds against the starting walker first). Each is then
   judged under held-out perturbation schedules (`ogi.training.robustness.HELD_OUT`: stronger, longer, twisting,
   doubled pushes and rough ground, none used in training): falls and distance walked; and on flat ground without
   pushes: linear-velocity tracking error.
2. Preferences (`ogi.training.preference_benchmark.preference_benchmark`): the gait trained with a reward model
   learned from scripted preference pairs against the hand-tuned gait, judged by a held-out labeller; the reward
   model's accuracy on fresh samples with and without retraining.
3. The plan critic (`ogi.hierarchy.plan_critic_benchmark.critic_benchmark`): planner success on held-out
   instructions with and without the critic trained by self-play.

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
ARMS = ("random", "random_budget", "adversary", "adversary_warm")
WARMUP_ROUNDS = 60  # adversary_warm: the adversary's head start against the starting walker, inside the arm's budget


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
    elif arm == "adversary_warm":
        adversary = dataclasses.replace(cfg.adversary, enabled=True, warmup_rounds=WARMUP_ROUNDS)
        cfg = dataclasses.replace(cfg, adversary=adversary)
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


def judge_schedules(actor, normalizer, env_cfg, schedules, episodes: int, seed: int) -> dict:
    results = {}
    for schedule in schedules:
        t0 = time.perf_counter()
        result = evaluate_robustness(actor, normalizer, env_cfg, schedule, num_envs=episodes, seed=seed)
        results[schedule.name] = result.as_dict()
        log(
            f"  {schedule.name}: falls {result.fall_rate:.3f}, distance {result.distance_m:.2f} m"
            f" ({time.perf_counter() - t0:.0f} s)"
        )
    return results


def judge(runner: Runner, episodes: int, seed: int) -> dict:
    cfg = runner.cfg
    results = judge_schedules(runner.actor, runner.actor_normalizer, cfg.env, HELD_OUT, episodes, seed)
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
    return {"held_out": results, "flat_tracking_error_mps": flat.tracking_error_mps, "flat_fall_rate": flat.fall_rate}


def _mean(arm: dict, key: str, names: list[str]) -> float:
    return float(np.mean([arm["held_out"][name][key] for name in names]))


def summarize_robustness(report: dict) -> dict:
    """The headline figures from the per-schedule results: falls and distance over the push schedules (their
    pooled mean), the rough-ground schedule apart, and the adversary against each random arm."""
    pushes = [s.name for s in HELD_OUT if s.rough_level is None]
    ground = [s.name for s in HELD_OUT if s.rough_level is not None]
    for arm in [*([report["shipped"]] if "shipped" in report else []), *report["arms"].values()]:
        arm["fall_rate_pushes"] = _mean(arm, "fall_rate", pushes)
        arm["distance_m_pushes"] = _mean(arm, "distance_m", pushes)
        arm["fall_rate_all"] = _mean(arm, "fall_rate", pushes + ground)
        if ground:
            arm["fall_rate_rough"] = _mean(arm, "fall_rate", ground)
    arms = report["arms"]
    summary: dict = {}
    for name, prefix in (("adversary", ""), ("adversary_warm", "warm_")):
        if name not in arms:
            continue
        adversary = arms[name]
        for baseline, suffix in (("random", ""), ("random_budget", "_at_budget")):
            if baseline not in arms:
                continue
            base = arms[baseline]
            key = f"{prefix}fall_reduction_vs_random{suffix}"
            summary[key] = (
                1.0 - adversary["fall_rate_pushes"] / base["fall_rate_pushes"] if base["fall_rate_pushes"] > 0 else None
            )
            summary[f"{key}_with_rough"] = (
                1.0 - adversary["fall_rate_all"] / base["fall_rate_all"] if base["fall_rate_all"] > 0 else None
            )
            summary[f"{prefix}distance_gain_vs_random{suffix}"] = (
                adversary["distance_m_pushes"] / base["distance_m_pushes"] - 1.0
            )
            summary[f"{prefix}flat_tracking_loss{suffix}"] = (
                adversary["flat_tracking_error_mps"] / base["flat_tracking_error_mps"] - 1.0
            )
    return summary


def robustness(
    out: Path, cpu_minutes: float, episodes: int, seed: int, arms: tuple[str, ...], shipped: bool = True
) -> dict:
    report: dict = {"arms": {}, "cpu_minutes_per_arm": cpu_minutes, "episodes_per_schedule": episodes}
    if shipped:
        shipped_runner = Runner(arm_config("random", seed), out / "shipped")
        start_from_shipped(shipped_runner)
        log("shipped walker, before fine-tuning")
        report["shipped"] = judge(shipped_runner, episodes, seed + 1)
    for arm in arms:
        log(f"arm {arm}: fine-tuning for {cpu_minutes:g} CPU-minutes")
        runner, info = train_arm(arm, out, cpu_minutes, seed)
        log(f"arm {arm}: {info['iterations']} iterations in {info['wall_minutes']:.1f} min; judging")
        report["arms"][arm] = {"training": info, **judge(runner, episodes, seed + 1)}
    report.update(summarize_robustness(report))
    return report


def headline(result: dict) -> dict:
    """The headline keys from whichever parts `result` holds (robustness: the mean over its seeds)."""
    keys: dict = {}
    runs = result.get("robustness_seeds") or ([result["robustness"]] if "robustness" in result else [])
    if runs:
        # the headline is the adversary with a head start where it was run (the configuration to use when
        # fine-tuning), the adversary from a cold start otherwise; both are kept by arm
        warm = all("adversary_warm" in run["arms"] for run in runs)
        for key in ("fall_reduction_vs_random", "flat_tracking_loss", "fall_reduction_vs_random_at_budget"):
            by_arm = {}
            for arm, prefix in (("adversary", ""), ("adversary_warm", "warm_")):
                values = [run.get(prefix + key) for run in runs if run.get(prefix + key) is not None]
                if values:
                    by_arm[arm] = float(np.mean(values))
            keys[key] = by_arm.get("adversary_warm" if warm else "adversary")
            keys[f"{key}_by_arm"] = by_arm
    if "preference" in result:
        keys["style_win_rate"] = result["preference"]["style_win_rate"]
        keys["rm_accuracy_drift"] = result["preference"]["rm_accuracy_drift"]
    if "critic" in result:
        keys["critic_success_gain"] = result["critic"]["critic_success_gain"]
    return keys


def rejudge_rough(path: Path) -> None:
    """Judge again, in place, the rough-ground schedules of a robustness result this script wrote: every arm's
    final checkpoint and the shipped walker (their figures before a fix to how the schedule holds its level)."""
    from ogi.training.policy_loading import load_policy

    part = json.loads(path.read_text())
    run = part["robustness"]
    rough = [s for s in HELD_OUT if s.rough_level is not None]
    seed = part["seed"]
    arms = {name: Path(arm["training"]["checkpoint"]) for name, arm in run["arms"].items()}
    if "shipped" in run:
        arms["shipped"] = SHIPPED
    for name, checkpoint in arms.items():
        log(f"{path.name}: {name}")
        actor, normalizer, cfg, _ = load_policy(checkpoint)
        target = run["shipped"] if name == "shipped" else run["arms"][name]
        target["held_out"].update(
            judge_schedules(actor, normalizer, cfg.env, rough, run.get("episodes_per_schedule", 64), seed + 1)
        )
    path.write_text(json.dumps(part, indent=1) + "\n")


def merge(paths: list[Path]) -> dict:
    """One result from several runs of this script: every robustness run (one per seed) under
    `robustness_seeds`, the other parts as they are, the headline keys recomputed (robustness: the seeds' mean)."""
    result: dict = {"merged_from": [str(p) for p in paths], "robustness_seeds": []}
    by_seed: dict = {}
    for path in paths:
        part = json.loads(path.read_text())
        if "robustness" in part:  # runs of one seed (arms run apart) become one
            run = part["robustness"]
            seed = part.get("seed")
            if seed in by_seed:
                by_seed[seed]["arms"].update(run["arms"])
                if "shipped" in run:
                    by_seed[seed].setdefault("shipped", run["shipped"])
            else:
                by_seed[seed] = {**run, "seed": seed}
        for key in ("preference", "critic", "machine"):
            if key in part:
                result[key] = part[key]
    for run in by_seed.values():
        run.update(summarize_robustness(run))
        result["robustness_seeds"].append(run)
    result.update(headline(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="robustness,preference,critic")
    parser.add_argument("--arms", default=",".join(ARMS), help="robustness arms: " + ", ".join(ARMS))
    parser.add_argument("--cpu-minutes", type=float, default=8.0, help="fine-tuning per robustness arm")
    parser.add_argument("--episodes", type=int, default=64, help="episodes per held-out schedule")
    parser.add_argument(
        "--shipped", action=argparse.BooleanOptionalAction, default=True, help="judge the starting walker too"
    )
    parser.add_argument("--preference-minutes", type=float, default=4.0, help="fine-tuning per preference arm")
    parser.add_argument("--out", type=Path, default=Path("runs/selfplay"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="combine JSON files this script wrote (parts run apart, robustness for several seeds) into one",
    )
    parser.add_argument("--rejudge-rough", type=Path, nargs="+", default=None, help=rejudge_rough.__doc__)
    parser.add_argument(
        "--critic-literal",
        action="store_true",
        help="the critic's generator reads held-out wording as given (default: as its pretrained model rewrites it)",
    )
    args = parser.parse_args()
    if args.rejudge_rough:
        for path in args.rejudge_rough:
            rejudge_rough(path)
        return
    if args.merge:
        print(json.dumps(merge(args.merge), indent=1))
        return
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
        result["robustness"] = robustness(
            args.out / f"robustness-seed{args.seed}", args.cpu_minutes, args.episodes, args.seed, arms, args.shipped
        )
    if "preference" in parts:
        from ogi.training.preference_benchmark import preference_benchmark

        result["preference"] = preference_benchmark(
            seed=args.seed, minutes_per_arm=args.preference_minutes, out=args.out / "preference"
        )
    if "critic" in parts:
        from ogi.hierarchy.plan_critic_benchmark import critic_benchmark

        torch.set_num_threads(1)  # the planner's episodes: one thread (a second spins on a busy 2-core machine)
        result["critic"] = critic_benchmark(seed=args.seed, out=args.out / "critic", rewrite=not args.critic_literal)
    result["minutes"] = (time.perf_counter() - started) / 60.0
    result.update(headline(result))
    text = json.dumps(result, indent=1)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

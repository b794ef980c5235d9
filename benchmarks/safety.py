"""Falls under strong pushes: unconstrained vs PPO-Lagrangian fine-tuning vs the safety supervisor on top.

The task: the shipped go2 walking policy's env with pushes of up to `--push` m/s every 2-3 s and 6 s episodes,
strong enough that the policy falls in a good share of episodes. Stages, each in this process:

1. fine-tune the shipped policy for the same number of iterations twice on that task, (a) without and (b) with the
   fall constraint Pr(fall) <= delta (PPO-Lagrangian); both start from the same weights and seed;
2. train the fall predictor on rollouts of (a) on the same task (seeds apart from the evaluation's);
3. evaluate on fresh episodes (deterministic actions, first episode per simulation): (a), (b), and (a) with
   the safety supervisor (signal limits + the predictor) and the crouch fallback, twice: the crouch held to the
   episode's end, and with recovery (the crouch handed back to the policy after --rearm-stable-s of calm
   signals, as `ogi deploy --recover` does); then a sweep of recovery settings (predictor thresholds, limits).
   A fall is the env's own event (base or thigh contact, tilt, low base); a crouch that keeps the base up is not
   one. Distance: how far each episode's robot got from its start (until it fell or the episode ended);
   `distance_kept` is the supervised policy's over the unsupervised one's.

Prints one JSON object (also written to --out). --reuse skips stage 1 when --work-dir holds both fine-tuned runs.

    python benchmarks/safety.py [--iterations 60] [--push 1.5] [--eval-envs 64] [--out docs/safety.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ogi import checkpoints as ckpt
from ogi.controllers import FallbackConfig, SupervisorConfig
from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.supervised import SupervisedWalk
from ogi.training.config import actor_observation
from ogi.training.lagrangian import SafetyConfig
from ogi.training.policy_loading import load_policy
from ogi.training.runner import Runner

if TYPE_CHECKING:
    from ogi.policies.fall_predictor import FallPredictor

SHIPPED = Path(__file__).resolve().parent.parent / "ogi" / "policies" / "pretrained" / "go2_walk_gru"
TRACKING_TERM = "reward/tracking_lin_vel"


def push_task(env: WalkConfig, push_mps: float, episode_s: float) -> WalkConfig:
    return dataclasses.replace(
        env,
        episode_length_s=episode_s,
        randomization=dataclasses.replace(env.randomization, push_velocity_mps=push_mps, push_interval_s=(2.0, 3.0)),
    )


def warm_start(runner: Runner, loaded: ckpt.LoadedCheckpoint) -> None:
    """Actor, critic and both normalizers from a checkpoint; optimizer, env and cost critic start fresh."""
    w, s = loaded.weights, loaded.state
    runner.actor.load_state_dict({k.removeprefix("actor/"): v for k, v in w.items() if k.startswith("actor/")})
    runner.actor_normalizer.load_state_dict(
        {k.removeprefix("actor_normalizer/"): v for k, v in w.items() if k.startswith("actor_normalizer/")}
    )
    runner.critic.load_state_dict({k.removeprefix("critic/"): v for k, v in s.items() if k.startswith("critic/")})
    runner.critic_normalizer.load_state_dict(
        {k.removeprefix("critic_normalizer/"): v for k, v in s.items() if k.startswith("critic_normalizer/")}
    )


def finetune(
    out: Path, env: WalkConfig, iterations: int, safety: SafetyConfig, learning_rate: float
) -> tuple[Path, dict]:
    """Fine-tune the shipped policy; (checkpoint path, last iteration's stats)."""
    _, _, base, _ = load_policy(SHIPPED)
    cfg = dataclasses.replace(
        base,
        env=env,
        iterations=iterations,
        max_minutes=0.0,
        checkpoint_every=10**9,
        safety=safety,
        collect_threads=1,
        update_threads=1,
        ppo=dataclasses.replace(base.ppo, learning_rate=learning_rate, min_learning_rate=min(1e-5, learning_rate)),
    )
    runner = Runner(cfg, out)
    warm_start(runner, ckpt.load_checkpoint(SHIPPED))
    history = []
    start = time.perf_counter()
    for _ in range(iterations):
        stats = runner.collect()
        stats.update(runner.update())
        runner.iteration += 1
        history.append({k: float(v) for k, v in stats.items() if k.startswith(("safety/", "episode/", "reward/total"))})
        print(
            f"{out.name}: it {runner.iteration}/{iterations} {time.perf_counter() - start:.0f} s "
            f"fall_probability {stats['safety/fall_probability']:.3f} lambda {stats.get('safety/lambda', 0.0):.3f}",
            file=sys.stderr,
            flush=True,
        )
    saved = runner.save()
    (out / "history.json").write_text(json.dumps(history))
    return saved.path, history[-1]


@torch.no_grad()
def rollout_falls(
    policy_path: Path,
    env: WalkConfig,
    num_envs: int,
    seed: int,
    *,
    supervisor: SupervisorConfig | None = None,
    fallback: FallbackConfig | None = None,
    predictor: FallPredictor | None = None,
    rearm: bool = True,
) -> dict:
    """First-episode fall rate, mean tracking reward per step (alive steps) and supervisor trips."""
    actor, normalizer, train_cfg, _ = load_policy(policy_path)
    cfg = dataclasses.replace(env, num_envs=num_envs, seed=seed)
    vec = WalkVecEnv(cfg)
    supervised = SupervisedWalk(vec, supervisor, fallback or FallbackConfig(), rearm=rearm) if supervisor else None
    obs, _ = (supervised or vec).reset(seed=seed)
    state = actor.initial_state(num_envs)
    window = predictor.new_window(num_envs) if predictor is not None else None
    alive = np.ones(num_envs, dtype=bool)
    fell = np.zeros(num_envs, dtype=bool)
    tripped = np.zeros(num_envs, dtype=bool)
    tracking, steps_alive = 0.0, 0
    spawn = vec.spawn_xy.copy()
    distance = np.zeros(num_envs)  # how far each first episode's robot got from its start, m
    in_fallback = 0
    for _ in range(cfg.max_episode_steps):
        mean, state = actor(normalizer(torch.as_tensor(actor_observation(obs, train_cfg.actor_obs))), state)
        if supervised is not None:
            probability = None
            if predictor is not None:
                probability = predictor.step(window, obs["policy"])
            obs, _, terminated, truncated, info = supervised.step(mean.numpy(), probability)
            tripped |= info["tripped"] & alive
            if window is not None:  # as the runtime: the predictor's window starts over with the policy
                predictor.reset_window(window, info["rearmed"])
            in_fallback += int(((info["mode"] != "policy") & alive).sum())
        else:
            obs, _, terminated, truncated, info = vec.step(mean.numpy())
        tracking += float(info[TRACKING_TERM][alive].sum())
        steps_alive += int(alive.sum())
        fell |= info["fell"] & alive
        done = terminated | truncated
        # displacement while the first episode runs (the step that ends it resets the pose: one step short)
        still = alive & ~done
        distance[still] = np.linalg.norm(vec.rig.base_pose()[still, :2] - spawn[still], axis=1)
        if window is not None:
            predictor.reset_window(window, done)
        alive &= ~done
        if not alive.any():
            break
    return {
        "fall_rate": float(fell.mean()),
        "tracking_reward_per_step": tracking / max(steps_alive, 1),
        "trip_rate": float(tripped.mean()),
        "distance_m": float(distance.mean()),
        "fallback_share": in_fallback / max(steps_alive, 1),
        "episodes": num_envs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60, help="fine-tuning iterations, each run")
    parser.add_argument("--push", type=float, default=1.5, help="largest push, m/s of base velocity")
    parser.add_argument("--episode-s", type=float, default=6.0)
    parser.add_argument("--fall-limit", type=float, default=0.02)
    parser.add_argument("--lambda-lr", type=float, default=0.5)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--num-envs", type=int, default=128, help="fine-tuning simulations")
    parser.add_argument("--eval-envs", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="simulation threads (0: all cores)")
    parser.add_argument("--max-tilt", type=float, default=0.25, help="supervisor tilt limit, rad")
    parser.add_argument("--max-ang-vel", type=float, default=2.0, help="supervisor angular speed limit, rad/s")
    parser.add_argument("--predictor-threshold", type=float, default=0.3, help="fall probability that trips")
    parser.add_argument(
        "--sweep-thresholds",
        type=float,
        nargs="*",
        default=[0.3, 0.5, 0.7, 0.9],
        help="predictor thresholds of the recovery sweep (each with the limits as given and twice as loose)",
    )
    parser.add_argument("--sweep-stable-s", type=float, default=0.5, help="re-arm time of the recovery sweep")
    parser.add_argument("--lambda-kp", type=float, default=0.0, help="PID Lagrangian: proportional gain")
    parser.add_argument("--lambda-kd", type=float, default=0.0, help="PID Lagrangian: derivative gain")
    parser.add_argument(
        "--rearm-stable-s", type=float, default=1.0, help="stable time before the policy takes over again"
    )
    parser.add_argument("--eval-seed", type=int, default=777, help="seed of the evaluation episodes")
    parser.add_argument("--predictor-seconds", type=float, default=16.0, help="simulated s of predictor data per sim")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/safety-benchmark"))
    parser.add_argument("--reuse", action="store_true", help="reuse fine-tuned checkpoints in --work-dir")
    parser.add_argument("--finetune-only", action="store_true", help="stop after stage 1")
    parser.add_argument("--only", choices=("unconstrained", "lagrangian"), default=None, help="fine-tune just this run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    # one thread each for torch and the simulation: on a shared machine spinning worker threads cost more than they give
    torch.set_num_threads(1)
    start = time.perf_counter()

    _, _, shipped_cfg, _ = load_policy(SHIPPED)
    single = dataclasses.replace(shipped_cfg.env.sim, nthread=args.threads)
    task = push_task(
        dataclasses.replace(shipped_cfg.env, num_envs=args.num_envs, sim=single), args.push, args.episode_s
    )
    runs = {
        "unconstrained": SafetyConfig(),
        "lagrangian": SafetyConfig(
            enabled=True,
            fall_limit=args.fall_limit,
            lambda_lr=args.lambda_lr,
            lambda_kp=args.lambda_kp,
            lambda_kd=args.lambda_kd,
        ),
    }
    paths, train_stats = {}, {}
    for name, safety in runs.items():
        if args.only and name != args.only:
            continue
        run_dir = args.work_dir / name
        if args.reuse and ckpt.latest_valid_checkpoint(run_dir) is not None:
            paths[name] = ckpt.latest_valid_checkpoint(run_dir).path
            history = json.loads((run_dir / "history.json").read_text())
            train_stats[name] = history[-1]
            continue
        paths[name], train_stats[name] = finetune(run_dir, task, args.iterations, safety, args.learning_rate)
    finetune_s = time.perf_counter() - start
    if args.finetune_only:
        print(
            json.dumps(
                {"checkpoints": {k: str(v) for k, v in paths.items()}, "train": train_stats, "finetune_s": finetune_s}
            )
        )
        return
    from ogi.training.fall_predictor import (
        FallPredictorTrainConfig,
        collect_fall_data,
        evaluate_predictor,
        train_predictor,
    )

    # the benchmark's own task (flat ground, the same pushes); `ogi train-fall-predictor` adds rough terrain
    predictor_cfg = FallPredictorTrainConfig(
        num_envs=32, seconds=args.predictor_seconds, push_velocity_mps=args.push, terrain=False
    )
    data = collect_fall_data(paths["unconstrained"], predictor_cfg, seed=101)
    held_out = collect_fall_data(
        paths["unconstrained"], dataclasses.replace(predictor_cfg, seconds=args.predictor_seconds / 2), seed=202
    )
    predictor, _ = train_predictor(data, predictor_cfg)
    predictor_metrics = evaluate_predictor(predictor, held_out)

    eval_task = dataclasses.replace(task, num_envs=args.eval_envs)
    seed = args.eval_seed
    shipped = rollout_falls(SHIPPED, eval_task, args.eval_envs, seed)
    unconstrained = rollout_falls(paths["unconstrained"], eval_task, args.eval_envs, seed)
    lagrangian = rollout_falls(paths["lagrangian"], eval_task, args.eval_envs, seed)
    supervisor = SupervisorConfig(
        max_tilt_rad=args.max_tilt,
        max_ang_vel_radps=args.max_ang_vel,
        fall_probability_threshold=args.predictor_threshold,
        rearm_stable_s=args.rearm_stable_s,
    )

    def supervise(cfg: SupervisorConfig, rearm: bool) -> dict:
        return rollout_falls(
            paths["unconstrained"], eval_task, args.eval_envs, seed, supervisor=cfg, predictor=predictor, rearm=rearm
        )

    supervised = supervise(supervisor, rearm=False)  # the crouch holds to the episode's end
    recovered = supervise(supervisor, rearm=True)  # the crouch hands back after rearm_stable_s of calm
    sweep = []
    for threshold in args.sweep_thresholds:
        for tilt, ang_vel in ((args.max_tilt, args.max_ang_vel), (2 * args.max_tilt, 2 * args.max_ang_vel)):
            point = SupervisorConfig(
                max_tilt_rad=tilt,
                max_ang_vel_radps=ang_vel,
                fall_probability_threshold=threshold,
                rearm_stable_s=args.sweep_stable_s,
            )
            r = supervise(point, rearm=True)
            sweep.append(
                {
                    "threshold": threshold,
                    "max_tilt_rad": tilt,
                    "max_ang_vel_radps": ang_vel,
                    "rearm_stable_s": args.sweep_stable_s,
                    "fall_rate": r["fall_rate"],
                    "distance_m": r["distance_m"],
                    "trip_rate": r["trip_rate"],
                    "fallback_share": r["fallback_share"],
                }
            )
            print(f"sweep: {json.dumps(sweep[-1])}", file=sys.stderr, flush=True)
    a = unconstrained["fall_rate"]
    walked = unconstrained["distance_m"]

    def reduction(rate: float) -> float | None:
        return (a - rate) / a if a > 0 else None

    for point in sweep:
        point["fall_reduction"] = reduction(point["fall_rate"])
        point["distance_kept"] = point["distance_m"] / walked if walked > 0 else None
    result = {
        "fall_rate_unconstrained": a,
        "fall_rate_lagrangian": lagrangian["fall_rate"],
        "fall_rate_supervised": supervised["fall_rate"],
        "fall_rate_recovered": recovered["fall_rate"],
        # supervisor + recovery (the crouch handed back once calm): what the bar asks for, beside distance kept
        "fall_reduction": reduction(recovered["fall_rate"]),
        "distance_kept": recovered["distance_m"] / walked if walked > 0 else None,
        "fall_reduction_without_recovery": reduction(supervised["fall_rate"]),
        "distance_kept_without_recovery": supervised["distance_m"] / walked if walked > 0 else None,
        "distance_m": {
            "unconstrained": walked,
            "lagrangian": lagrangian["distance_m"],
            "supervised": supervised["distance_m"],
            "recovered": recovered["distance_m"],
            "shipped": shipped["distance_m"],
        },
        "recovery_sweep": sweep,
        "reward_ratio_lagrangian": lagrangian["tracking_reward_per_step"] / unconstrained["tracking_reward_per_step"],
        "predictor_auroc": predictor_metrics["auroc"],
        "lead_time_s": predictor_metrics["mean_lead_time_s"],
        "fall_limit": args.fall_limit,
        "fall_rate_shipped": shipped["fall_rate"],
        "supervised_trip_rate": supervised["trip_rate"],
        "recovered_trip_rate": recovered["trip_rate"],
        "recovered_fallback_share": recovered["fallback_share"],
        "predictor": predictor_metrics,
        "tracking_reward_per_step": {
            "unconstrained": unconstrained["tracking_reward_per_step"],
            "lagrangian": lagrangian["tracking_reward_per_step"],
            "supervised": supervised["tracking_reward_per_step"],
            "recovered": recovered["tracking_reward_per_step"],
            "shipped": shipped["tracking_reward_per_step"],
        },
        "final_lambda": train_stats["lagrangian"].get("safety/lambda"),
        "train_fall_probability": {k: v.get("safety/fall_probability") for k, v in train_stats.items()},
        "setup": {
            "push_mps": args.push,
            "eval_seed": args.eval_seed,
            "finetune_reused": args.reuse,
            "push_interval_s": [2.0, 3.0],
            "episode_s": args.episode_s,
            "finetune_iterations": args.iterations,
            "finetune_envs": args.num_envs,
            "eval_episodes": args.eval_envs,
            "supervisor": {
                "max_tilt_rad": supervisor.max_tilt_rad,
                "max_ang_vel_radps": supervisor.max_ang_vel_radps,
                "max_joint_vel_radps": supervisor.max_joint_vel_radps,
                "fall_probability_threshold": supervisor.fall_probability_threshold,
                "rearm_stable_s": supervisor.rearm_stable_s,
            },
            "lambda_kp": args.lambda_kp,
            "lambda_kd": args.lambda_kd,
            "finetune_s": finetune_s,
            "total_s": time.perf_counter() - start,
            "machine": (
                f"{platform.machine()}, {platform.processor() or 'cpu'}, torch threads 1, "
                f"simulation threads {args.threads}"
            ),
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

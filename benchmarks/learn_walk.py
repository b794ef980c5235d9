"""How fast the default preset learns to walk, from scratch, on flat ground.

Trains `ogi train`'s go2 walk preset and, every `--eval-every-min` minutes of training, judges the
deterministic policy on fresh 20 s episodes with forward commands in [0, 1] m/s. Walking means:
(a) mean tracking error <= 0.1 m/s overall and <= 0.15 m/s for the fastest fifth of commands,
(b) falls in <= 2% of episodes, (c) every foot's duty factor (time in contact) in [0.2, 0.8].
Training time excludes the judging. Prints one JSON object and writes the learning curve as PNG.

    python benchmarks/learn_walk.py [--actor gru|mlp] [--minutes 10] [--out runs/learn_walk_gru]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import shutil
import time
from pathlib import Path

from ogi.policies import ActorConfig
from ogi.training.config import preset
from ogi.training.evaluate import evaluate
from ogi.training.runner import Runner


def walks(result) -> bool:
    return (
        result.tracking_error_mps <= 0.1
        and result.tracking_error_fastest_fifth_mps <= 0.15
        and result.fall_rate <= 0.02
        and all(0.2 <= d <= 0.8 for d in result.duty_factors)
    )


def plot_curve(curve: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [c["train_minutes"] for c in curve]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].plot(minutes, [c["tracking_error_mps"] for c in curve], "o-", label="all commands")
    axes[0].plot(minutes, [c["tracking_error_fastest_fifth_mps"] for c in curve], "s--", label="fastest fifth")
    axes[0].axhline(0.1, color="gray", lw=0.8)
    axes[0].set(xlabel="training minutes", ylabel="tracking error m/s", ylim=(0, None))
    axes[0].legend()
    axes[1].plot(minutes, [c["fall_rate"] for c in curve], "o-", color="tab:red")
    axes[1].axhline(0.02, color="gray", lw=0.8)
    axes[1].set(xlabel="training minutes", ylabel="falls per 20 s episode", ylim=(0, 1.05))
    for foot in range(len(curve[0]["duty_factors"])):
        axes[2].plot(minutes, [c["duty_factors"][foot] for c in curve], "o-", label=f"foot {foot}")
    axes[2].axhspan(0.2, 0.8, color="green", alpha=0.08)
    axes[2].set(xlabel="training minutes", ylabel="duty factor", ylim=(0, 1.05))
    axes[2].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="go2")
    parser.add_argument("--actor", default="gru", choices=["mlp", "gru", "lstm", "transformer"])
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes (judging excluded)")
    parser.add_argument("--eval-every-min", type=float, default=1.0)
    parser.add_argument("--eval-envs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="run directory (replaced)")
    args = parser.parse_args()

    cfg = preset(args.robot, "walk")
    cfg = dataclasses.replace(cfg, actor=dataclasses.replace(cfg.actor, kind=args.actor), seed=args.seed,
                              env=dataclasses.replace(cfg.env, seed=args.seed), checkpoint_every=10**9)
    out = args.out or Path("runs") / f"learn_walk_{args.actor}"
    shutil.rmtree(out, ignore_errors=True)
    runner = Runner(cfg, out)
    train_s = 0.0
    curve: list[dict] = []
    minutes_to_walk = None
    next_eval = args.eval_every_min * 60
    while train_s < args.minutes * 60:
        start = time.perf_counter()
        runner.train(iterations=1, progress=False, log=False, save_final=False)
        train_s += time.perf_counter() - start
        if train_s >= next_eval or train_s >= args.minutes * 60:
            next_eval += args.eval_every_min * 60
            result = evaluate(runner.actor, runner.actor_normalizer, cfg.env, num_envs=args.eval_envs, episode_s=20.0)
            point = {"train_minutes": train_s / 60, "env_steps": runner.env_steps, **result.as_dict()}
            curve.append(point)
            watched = ("reward/total", "reward/tracking_lin_vel", "policy/std", "policy/learning_rate", "policy/kl",
                       "episode/fall_rate", "perf/env_steps_per_s")
            print(json.dumps({**{k: point[k] for k in ("train_minutes", "env_steps", "tracking_error_mps",
                                                        "tracking_error_fastest_fifth_mps", "fall_rate", "duty_factors")},
                              "train": {k: round(runner.last_stats.get(k, float("nan")), 5) for k in watched}}),
                  flush=True)
            if minutes_to_walk is None and walks(result):
                minutes_to_walk = train_s / 60
    runner.save(eval_scores={k: v for k, v in curve[-1].items() if isinstance(v, float)})
    png = out / "learning_curve.png"
    plot_curve(curve, png, f"{args.robot} walk, {args.actor} actor, {cfg.env.num_envs} envs, "
               f"{1 / cfg.env.sim.sim_dt_s:.0f} Hz physics")
    final = curve[-1]
    result = {
        "robot": args.robot,
        "actor": args.actor,
        "minutes_to_walk": minutes_to_walk,
        "final_tracking_error": final["tracking_error_mps"],
        "final_tracking_error_fastest_fifth": final["tracking_error_fastest_fifth_mps"],
        "final_fall_rate": final["fall_rate"],
        "duty_factors": final["duty_factors"],
        "env_steps": runner.env_steps,
        "train_minutes": train_s / 60,
        "env_steps_per_s": runner.env_steps / train_s,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "learning_curve_png": str(png),
        "curve": curve,
    }
    (out / "learn_walk.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""How fast the default preset learns to walk in every direction, from scratch, on flat ground.

Trains `ogi train`'s go2 walk preset (omnidirectional commands) and, every `--eval-every-min` minutes of
training, judges the deterministic policy on the full-fidelity model (1 kHz, full solver) per command family
(forward, backward, lateral, turning, mixed; fresh 20 s episodes, one fixed command each). Walking means,
for every family: linear error <= 0.10 m/s, yaw-rate error <= 0.15 rad/s, falls in <= 2% of episodes, every
foot's duty factor in [0.35, 0.65] (`ogi.training.walk_eval`); `minutes_to_walk_mean_over_families` applies the
error bounds to the errors averaged over the families instead. Training time excludes the judging.
At the end the policy is exported to ONNX and run by the deployment runtime on the sim bridge at 1 kHz
(`sim2sim`). Prints one JSON object (last on stdout) and writes the learning curve as PNG.

    python benchmarks/learn_walk.py [--robot go2|biped|humanoid] [--actor gru|mlp] [--minutes 10] [--seed 0]
        [--config over.toml] [--out runs/learn_walk_gru]

Each robot trains with its own preset and is judged in its own command space (two-legged robots: vx in
[-0.5, 0.8] m/s, vy in [-0.3, 0.3] m/s, yaw rate in [-0.8, 0.8] rad/s; a gait clock; the humanoid's arms held).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import shutil
import time
from pathlib import Path

from ogi.training.config import load_train_config, preset
from ogi.training.runner import Runner
from ogi.training.walk_eval import FAMILIES, evaluate_families, full_fidelity, summarize, walks


def plot_curve(curve: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [c["train_minutes"] for c in curve]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    for family in FAMILIES:
        axes[0].plot(minutes, [c["families"][family]["lin_error_mps"] for c in curve], "o-", label=family)
        axes[1].plot(minutes, [c["families"][family]["yaw_error_radps"] for c in curve], "o-", label=family)
        axes[2].plot(minutes, [c["families"][family]["falls"] for c in curve], "o-", label=family)
    axes[0].axhline(0.10, color="gray", lw=0.8)
    axes[0].set(xlabel="training minutes", ylabel="linear error m/s", ylim=(0, None))
    axes[0].legend(fontsize=7)
    axes[1].axhline(0.15, color="gray", lw=0.8)
    axes[1].set(xlabel="training minutes", ylabel="yaw-rate error rad/s", ylim=(0, None))
    axes[2].axhline(0.02, color="gray", lw=0.8)
    axes[2].set(xlabel="training minutes", ylabel="falls per 20 s episode", ylim=(0, 1.05))
    feet = len(curve[0]["families"]["mixed"]["duty_factors"])
    for foot in range(feet):
        axes[3].plot(minutes, [c["families"]["mixed"]["duty_factors"][foot] for c in curve], "o-", label=f"foot {foot}")
    axes[3].axhspan(0.35, 0.65, color="green", alpha=0.08)
    axes[3].set(xlabel="training minutes", ylabel="duty factor (mixed)", ylim=(0, 1.05))
    axes[3].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def sim2sim(run_dir: Path, seconds: float) -> dict:
    """Export the run to ONNX and walk it with the deployment runtime on the sim bridge at 1 kHz."""
    from ogi.deploy.sim2sim import sim_to_sim

    return sim_to_sim(run_dir, run_dir / "artifact", seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="go2")
    parser.add_argument("--actor", default="gru", choices=["mlp", "gru", "lstm", "transformer"])
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes (judging excluded)")
    parser.add_argument("--eval-every-min", type=float, default=1.0)
    parser.add_argument("--envs-per-family", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stop-when-walking", action="store_true", help="end at the first judging that walks")
    parser.add_argument("--sim2sim-seconds", type=float, default=20.0, help="0: skip the sim-to-sim check")
    parser.add_argument("--update-threads", type=int, default=None, help="torch threads for the update (preset: 2)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (replaced)")
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from a trained walker (this robot's, or one whose joints this robot has, e.g. the biped's "
        "for the humanoid) and judge it before training; the JSON names it",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML overriding the preset ([actor], [critic], [ppo], [env...])"
    )
    args = parser.parse_args()

    cfg = preset(args.robot, "walk")
    if args.config is not None:
        cfg = load_train_config(args.config, cfg)
    cfg = dataclasses.replace(
        cfg,
        actor=dataclasses.replace(cfg.actor, kind=args.actor),
        seed=args.seed,
        env=dataclasses.replace(cfg.env, seed=args.seed),
        checkpoint_every=10**9,
    )
    if args.update_threads is not None:
        cfg = dataclasses.replace(cfg, update_threads=args.update_threads)
    # walking is judged with any held joints still, as every walker is (a run that trains with them in motion too)
    judge_cfg = dataclasses.replace(full_fidelity(cfg.env), held_motion=0.0)
    out = args.out or Path("runs") / f"learn_walk_{args.actor}_seed{args.seed}"
    shutil.rmtree(out, ignore_errors=True)
    runner = Runner(cfg, out)
    train_s = 0.0
    curve: list[dict] = []
    minutes_to_walk = None
    minutes_to_walk_mean = None  # the criterion on errors averaged over the families instead of in every one
    next_eval = args.eval_every_min * 60
    source = None
    if args.init_from is not None:
        from ogi.training.warm_start import warm_start

        source = warm_start(runner, args.init_from)
    judge_start = source is not None  # a warm start is judged before it trains
    while train_s < args.minutes * 60 or judge_start:
        if not judge_start:
            start = time.perf_counter()
            runner.train(iterations=1, progress=False, log=False, save_final=False)
            train_s += time.perf_counter() - start
        if judge_start or train_s >= next_eval or train_s >= args.minutes * 60:
            judge_start = False
            while next_eval <= train_s:  # (the judging of a warm start, at minute 0, keeps the schedule)
                next_eval += args.eval_every_min * 60
            families = evaluate_families(
                runner.actor, runner.actor_normalizer, judge_cfg, envs_per_family=args.envs_per_family
            )
            point = {
                "train_minutes": train_s / 60,
                "env_steps": runner.env_steps,
                "walks": walks(families),
                **summarize(families),
            }
            curve.append(point)
            watched = (
                "reward/total",
                "reward/tracking_lin_vel",
                "reward/trot",
                "policy/std",
                "policy/learning_rate",
                "episode/fall_rate",
                "perf/env_steps_per_s",
            )
            brief = {
                f: {
                    k: (round(v, 3) if isinstance(v, float) else [round(d, 2) for d in v])
                    for k, v in r.items()
                    if k != "episodes"
                }
                for f, r in point["families"].items()
            }
            print(
                json.dumps(
                    {
                        "train_minutes": round(point["train_minutes"], 2),
                        "env_steps": runner.env_steps,
                        "walks": point["walks"],
                        "families": brief,
                        "train": {k: round(runner.last_stats.get(k, float("nan")), 5) for k in watched},
                    }
                ),
                flush=True,
            )
            if minutes_to_walk_mean is None and walks(families, averaged=True):
                minutes_to_walk_mean = train_s / 60
            if minutes_to_walk is None and point["walks"]:
                minutes_to_walk = train_s / 60
                if args.stop_when_walking:
                    break
    runner.save(
        eval_scores={
            "worst_lin_error_mps": curve[-1]["worst_lin_error_mps"],
            "worst_yaw_error_radps": curve[-1]["worst_yaw_error_radps"],
        }
    )
    png = out / "learning_curve.png"
    plot_curve(
        curve,
        png,
        f"{args.robot} walk, {args.actor} actor, {cfg.env.num_envs} envs, "
        f"{1 / cfg.env.sim.sim_dt_s:.0f} Hz training physics, judged at 1 kHz",
    )
    final = curve[-1]
    fams = final["families"]
    lin = [r["lin_error_mps"] for r in fams.values()]
    result = {
        "robot": args.robot,
        "init_from": None
        if source is None
        else {
            "path": str(args.init_from),
            "robot": source.manifest["config"]["env"]["robot"],
            "env_steps": source.step,
        },
        "actor": args.actor,
        "seed": args.seed,
        "minutes_to_walk": minutes_to_walk,
        "minutes_to_walk_mean_over_families": minutes_to_walk_mean,
        "final_tracking_error": sum(lin) / len(lin),  # mean over families, m/s
        "final_tracking_error_fastest_fifth": fams["forward"]["lin_error_mps"],  # the forward family's, m/s
        "yaw_error_radps": sum(r["yaw_error_radps"] for r in fams.values()) / len(fams),
        "final_fall_rate": max(r["falls"] for r in fams.values()),
        "duty_factors": fams["mixed"]["duty_factors"],
        "families": fams,
        "env_steps": runner.env_steps,
        "train_minutes": train_s / 60,
        "env_steps_per_s": runner.env_steps / train_s,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "learning_curve_png": str(png),
        "curve": curve,
        "sim2sim": sim2sim(out, args.sim2sim_seconds) if args.sim2sim_seconds > 0 else None,
    }
    (out / "learn_walk.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

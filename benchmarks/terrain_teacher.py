"""A privileged rough-terrain teacher trained from scratch: how far up the curriculum it climbs, per terrain kind.

Trains go2's walk preset with every terrain kind on, the terrain curriculum (levels follow each simulation's
success), the height scan in the privileged group and a privileged actor (the teacher `ogi distill` reads), from
random weights, for `--minutes` of training on this machine. Every `--report-every-min` minutes it records the
curriculum: mean level (0-1 of the top), per kind, share of simulations at the top level, command level. A
simulation that passes the top level is sent to a random level (so the top keeps being revisited): a mean level
near 1 is not reachable, about 0.6 means most simulations clear the top.

At each `--judge-every-min` and at the end the deterministic policy is judged at the top level of every kind:
`--episodes-per-kind` fresh 20 s episodes each, omnidirectional commands at the full range, pushes as in
training. Success is the curriculum's own (no fall, at least half the commanded distance covered). The final
judgement runs on the deployment physics (1 kHz, full solver). Judging time is not training time.

Prints one JSON object (last on stdout; also written to --json): `minutes`, `mean_level`, `top_level_success`
(kind -> rate), `curve` (the reports), `checkpoint`.

    python benchmarks/terrain_teacher.py [--minutes 60] [--seed 0] [--init-from WALKER] [--out DIR] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import shutil
import time
from pathlib import Path

import torch

from ogi.envs import WalkConfig
from ogi.envs.config import HeightScanConfig, TerrainConfig
from ogi.envs.curriculum import CurriculumConfig
from ogi.training.config import TrainConfig, load_train_config, preset
from ogi.training.evaluate import terrain_success
from ogi.training.runner import Runner
from ogi.training.walk_eval import full_fidelity


def teacher_config(seed: int, num_envs: int, base: TrainConfig | None = None) -> TrainConfig:
    """go2's walk preset (or `base`, a trained walker's config) as a privileged rough-terrain teacher: every kind,
    curriculum, height scan."""
    cfg = base or preset("go2", "walk")
    env = dataclasses.replace(
        cfg.env,
        num_envs=num_envs,
        seed=seed,
        # 500 Hz physics: at the flat preset's 250 Hz the feet's contacts with the heightfield let the flat walker
        # fall in 16% of 20 s episodes on flat tiles (none at 500 Hz, none on the plane at either rate)
        sim=dataclasses.replace(cfg.env.sim, sim_dt_s=0.002),
        # a window of two episodes: a simulation that clears its tile twice moves up (four: half the climb in an hour);
        # commands at their full range from the start, as the flat preset's: with the command curriculum the batch
        # cleared the small early commands by standing, the command level reached the top within 4 minutes, and
        # the policy stood (tracking 40% of its best, every simulation at level 0) after 8 minutes
        terrain=TerrainConfig(enabled=True, curriculum=CurriculumConfig(window=2, command_levels=1)),
        height_scan=HeightScanConfig(enabled=True, spacing_m=0.2),  # 9 x 6 rays around the base
    )
    return dataclasses.replace(
        cfg,
        env=env,
        seed=seed,
        actor_obs="privileged",  # the preset's symmetry loss mirrors both groups (ogi.envs.symmetry)
        update_threads=1,
        checkpoint_every=10**9,
    )


def top_level_success(actor, normalizer, env_cfg: WalkConfig, actor_obs: str, **judge) -> dict[str, float]:
    """kind -> success rate of fresh episodes at the top level (`ogi.training.evaluate.terrain_success`)."""
    top = env_cfg.terrain.curriculum.top_level
    return terrain_success(actor, normalizer, env_cfg, level=top, actor_obs=actor_obs, **judge)


def curriculum_point(runner: Runner, train_s: float) -> dict:
    env = runner.env
    summary = env.curriculum_summary()
    top = env.cfg.terrain.curriculum.top_level
    return {
        "train_minutes": train_s / 60,
        "env_steps": runner.env_steps,
        "mean_level": summary["mean_level"] / top,
        "mean_level_per_kind": dict(
            zip(env.cfg.terrain.kinds, (round(v / top, 4) for v in summary["mean_level_per_kind"]))
        ),
        "fraction_at_top": summary["fraction_at_top"],
        "command_level": summary["command_level"],
        "fall_rate": float(runner.last_stats.get("episode/fall_rate", float("nan"))),
        "tracking_reward": float(runner.last_stats.get("reward/tracking_lin_vel", float("nan"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="training minutes (judging excluded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--config", type=Path, default=None, help="TOML overriding the teacher preset")
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from a trained flat walker (its architecture and settings; the added inputs start at zero "
        "weight) instead of from scratch",
    )
    parser.add_argument("--report-every-min", type=float, default=2.0, help="curriculum report period")
    parser.add_argument("--judge-every-min", type=float, default=15.0, help="top-level judging period (0: end only)")
    parser.add_argument("--episodes-per-kind", type=int, default=16)
    parser.add_argument("--save-every-min", type=float, default=10.0, help="checkpoint period (a crash loses less)")
    parser.add_argument("--out", type=Path, default=Path("runs/terrain_teacher"), help="run directory (replaced)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()

    base = None
    if args.init_from is not None:
        from ogi.training.policy_loading import load_policy

        base = dataclasses.replace(load_policy(args.init_from)[2], max_minutes=0.0, iterations=10**9)
    cfg = teacher_config(args.seed, args.num_envs, base)
    if args.config is not None:
        cfg = load_train_config(args.config, cfg)
    shutil.rmtree(args.out, ignore_errors=True)
    runner = Runner(cfg, args.out)
    if args.init_from is not None:
        from ogi.training.warm_start import warm_start

        warm_start(runner, args.init_from)
    judge = {"episodes_per_kind": args.episodes_per_kind, "seed": 4321}
    train_s = 0.0
    curve: list[dict] = []
    next_report, next_judge, next_save = args.report_every_min * 60, args.judge_every_min * 60, args.save_every_min * 60
    while train_s < args.minutes * 60:
        start = time.perf_counter()
        runner.train(iterations=1, progress=False, log=False, save_final=False)
        train_s += time.perf_counter() - start
        last = train_s >= args.minutes * 60
        if train_s >= next_report or last:
            next_report += args.report_every_min * 60
            point = curriculum_point(runner, train_s)
            if args.judge_every_min > 0 and train_s >= next_judge and not last:
                next_judge += args.judge_every_min * 60
                point["top_level_success"] = top_level_success(
                    runner.actor, runner.actor_normalizer, cfg.env, cfg.actor_obs, **judge
                )
            curve.append(point)
            print(json.dumps(point), flush=True)
        if train_s >= next_save and not last:
            next_save += args.save_every_min * 60
            runner.save()
    saved = runner.save()
    final = top_level_success(runner.actor, runner.actor_normalizer, full_fidelity(cfg.env), cfg.actor_obs, **judge)
    rates = list(final.values())
    result = {
        "minutes": train_s / 60,
        "mean_level": curve[-1]["mean_level"],
        "mean_level_per_kind": curve[-1]["mean_level_per_kind"],
        "fraction_at_top": curve[-1]["fraction_at_top"],
        "top_level_success": final,
        "kinds_at_least_half": sum(r >= 0.5 for r in rates),
        "kinds_at_least_0.8": sum(r >= 0.8 for r in rates),
        "env_steps": runner.env_steps,
        "env_steps_per_s": runner.env_steps / train_s,
        "checkpoint": str(saved.path),
        "curve": curve,
        "setup": {
            "init_from": str(args.init_from) if args.init_from else None,
            "seed": args.seed,
            "num_envs": args.num_envs,
            "episodes_per_kind": args.episodes_per_kind,
            "judged_at": "1 kHz, full solver, pushes as in training, full command range",
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        },
    }
    text = json.dumps(result, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

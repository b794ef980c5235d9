"""Throughput of the full `walk` env against bare `Batch.step` of the same compiled model.

Both run in this process, interleaved in rounds so that machine noise hits them alike; the figures
are medians over rounds. Prints one JSON object.

    python benchmarks/env_throughput.py [--robot go2] [--num-envs 64] [--threads 2] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import mujoco
import numpy as np
from mujoco import batch as mjbatch

from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.config import SimConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="go2")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps-per-round", type=int, default=100, help="policy steps per round")
    args = parser.parse_args()

    cfg = WalkConfig(robot=args.robot, num_envs=args.num_envs, sim=SimConfig(nthread=args.threads))
    env = WalkVecEnv(cfg)
    env.reset(seed=0)
    substeps = cfg.sim.substeps
    bare = mjbatch.Batch(env.model, args.num_envs, nthread=args.threads)
    bare_ctrl = bare.bind("ctrl")
    rng = np.random.default_rng(0)
    actions = rng.normal(0.0, 0.5, (args.steps_per_round, args.num_envs, env.robot.num_joints)).astype(np.float32)
    # the bare batch drives the same PD targets from the same states, so both simulate alike motions
    pd_targets = env.default_pose + env.robot.action_scale * np.clip(actions, -cfg.action_clip, cfg.action_clip)

    env_rates, bare_rates = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        env_rates.append(args.steps_per_round * args.num_envs / (time.perf_counter() - start))
        bare.state[:] = env.batch.state
        start = time.perf_counter()
        for targets in pd_targets:
            bare_ctrl[:, env.rig.pd_ids] = targets
            bare.step(nstep=substeps)
        bare_rates.append(args.steps_per_round * args.num_envs / (time.perf_counter() - start))

    env_rate, bare_rate = statistics.median(env_rates), statistics.median(bare_rates)
    print(
        json.dumps(
            {
                "robot": args.robot,
                "num_envs": args.num_envs,
                "threads": args.threads,
                "sim_dt_s": cfg.sim.sim_dt_s,
                "substeps": substeps,
                "env_policy_steps_per_s": round(env_rate, 1),
                "bare_policy_steps_per_s": round(bare_rate, 1),
                "physics_steps_per_s": round(env_rate * substeps, 1),
                "ratio_flat": round(env_rate / bare_rate, 4),
                "ratio_flat_median_of_rounds": round(statistics.median(e / b for e, b in zip(env_rates, bare_rates)), 4),
                "env_rates_per_round": [round(r, 1) for r in env_rates],
                "bare_rates_per_round": [round(r, 1) for r in bare_rates],
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "mujoco": mujoco.__version__,
                "machine": platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

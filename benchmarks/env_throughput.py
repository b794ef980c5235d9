"""Throughput of the full `walk` env against bare `Batch.step` of the same compiled model.

Flat ground, then the rough-terrain preset (terrain grid, curriculum, height scan, depth camera). In each,
env and bare batch run in this process, interleaved in rounds so that machine noise hits them alike; the
figures are medians over rounds. Prints one JSON object.

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


def measure(cfg: WalkConfig, rounds: int, steps_per_round: int, threads: int) -> dict:
    """Median env and bare rates, interleaved round by round, for one env config."""
    env = WalkVecEnv(cfg)
    env.reset(seed=0)
    substeps = cfg.sim.substeps
    n = cfg.num_envs
    bare = mjbatch.Batch(env.model, n, nthread=threads)
    # the bare batch runs the same per-simulation models: terrain contact and randomized fields included
    for name in mjbatch.MODEL_FIELDS:
        values = env.batch.expanded(name)
        if values is not None:
            bare.expand(name)[:] = values
    bare.set_const()
    bare_ctrl = bare.bind("ctrl")
    rng = np.random.default_rng(0)
    actions = rng.normal(0.0, 0.5, (steps_per_round, n, env.robot.num_joints)).astype(np.float32)
    # the bare batch drives the same PD targets from the same states, so both simulate alike motions
    pd_targets = env.default_pose + env.robot.action_scale * np.clip(actions, -cfg.action_clip, cfg.action_clip)

    env_rates, bare_rates = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        env_rates.append(steps_per_round * n / (time.perf_counter() - start))
        bare.state[:] = env.batch.state
        start = time.perf_counter()
        for targets in pd_targets:
            bare_ctrl[:, env.rig.pd_ids] = targets
            bare.step(nstep=substeps)
        bare_rates.append(steps_per_round * n / (time.perf_counter() - start))
    reset_ms = []
    for i in range(20):
        start = time.perf_counter()
        env._reset_envs(np.array([i % n]))
        reset_ms.append((time.perf_counter() - start) * 1e3)
    env_rate, bare_rate = statistics.median(env_rates), statistics.median(bare_rates)
    return {
        "env_policy_steps_per_s": round(env_rate, 1),
        "bare_policy_steps_per_s": round(bare_rate, 1),
        "physics_steps_per_s": round(env_rate * substeps, 1),
        "ratio": round(env_rate / bare_rate, 4),
        "ratio_median_of_rounds": round(statistics.median(e / b for e, b in zip(env_rates, bare_rates)), 4),
        "one_env_reset_ms": round(statistics.median(reset_ms), 3),
        "env_rates_per_round": [round(r, 1) for r in env_rates],
        "bare_rates_per_round": [round(r, 1) for r in bare_rates],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="go2")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps-per-round", type=int, default=100, help="policy steps per round")
    parser.add_argument("--skip-rough", action="store_true", help="measure the flat env only")
    args = parser.parse_args()

    sim = SimConfig(nthread=args.threads)
    flat_cfg = WalkConfig(robot=args.robot, num_envs=args.num_envs, sim=sim)
    flat = measure(flat_cfg, args.rounds, args.steps_per_round, args.threads)
    result = {
        "robot": args.robot,
        "num_envs": args.num_envs,
        "threads": args.threads,
        "sim_dt_s": flat_cfg.sim.sim_dt_s,
        "substeps": flat_cfg.sim.substeps,
        "env_policy_steps_per_s": flat["env_policy_steps_per_s"],
        "bare_policy_steps_per_s": flat["bare_policy_steps_per_s"],
        "physics_steps_per_s": flat["physics_steps_per_s"],
        "ratio_flat": flat["ratio"],
        "flat": flat,
    }
    if not args.skip_rough:
        rough_cfg = WalkConfig.rough(robot=args.robot, num_envs=args.num_envs, sim=sim)
        rough = measure(rough_cfg, args.rounds, args.steps_per_round, args.threads)
        result["ratio_rough"] = rough["ratio"]
        result["rough"] = rough
        result["rough_sensing"] = {
            "height_scan_rays": len(rough_cfg.height_scan.offsets()),
            "depth_pixels": rough_cfg.depth_camera.pixels,
        }
    result.update(
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        mujoco=mujoco.__version__,
        machine=platform.machine(),
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

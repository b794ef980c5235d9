"""Cost of recording: the same `walk` rollout with the MCAP recorder on and off, in one process.

Each round runs the rollout twice from the same seed with the same actions, once recording and once not,
alternating which goes first; the figures are medians over rounds. A rollout's time covers opening the
recorder (model XML, patch), every step, and closing the file. Prints one JSON object; `slowdown` is
t_on / t_off - 1 of the medians.

    python benchmarks/recording_overhead.py [--num-envs 16] [--steps 500] [--rounds 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import mujoco
import numpy as np

from ogi.envs import WalkConfig, WalkVecEnv
from ogi.replay import Recorder


def rollout(cfg: WalkConfig, actions: np.ndarray, record: Path | None) -> tuple[float, int]:
    """(wall seconds, recording bytes) of one rollout; the env is built and reset before the clock starts."""
    env = WalkVecEnv(cfg)
    env.reset(seed=cfg.seed)
    start = time.perf_counter()
    recorder = Recorder(env, record) if record is not None else None
    for action in actions:
        env.step(action)
    if recorder is not None:
        recorder.close()
    wall = time.perf_counter() - start
    env.close()
    return wall, (record.stat().st_size if record is not None else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", default="go2")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=500, help="policy steps per rollout (50 Hz)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="simulation threads, 0: all cores")
    args = parser.parse_args()

    base = WalkConfig(robot=args.robot, num_envs=args.num_envs, seed=0)
    cfg = dataclasses.replace(base, sim=dataclasses.replace(base.sim, nthread=args.threads))
    probe = WalkVecEnv(cfg)
    actions = np.random.default_rng(0).normal(0.0, 0.5, (args.steps, args.num_envs, probe.robot.num_joints))
    probe.close()
    on, off, sizes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rollout.mcap"
        rollout(cfg, actions[:5], path)  # warm caches and imports outside the measurement
        for round_index in range(args.rounds):
            order = (True, False) if round_index % 2 == 0 else (False, True)
            for recording in order:
                wall, size = rollout(cfg, actions, path if recording else None)
                (on if recording else off).append(wall)
                if recording:
                    sizes.append(size)
    t_on, t_off = statistics.median(on), statistics.median(off)
    env_steps = args.steps * args.num_envs
    print(json.dumps({
        "benchmark": "recording_overhead",
        "robot": args.robot,
        "num_envs": args.num_envs,
        "policy_steps": args.steps,
        "substeps": cfg.sim.substeps,
        "rounds": args.rounds,
        "threads": args.threads,
        "t_on_s": t_on,
        "t_off_s": t_off,
        "slowdown": t_on / t_off - 1.0,
        "per_round_slowdown": [a / b - 1.0 for a, b in zip(on, off)],
        "times_on_s": on,
        "times_off_s": off,
        "recording_bytes": int(statistics.median(sizes)),
        "bytes_per_env_step": statistics.median(sizes) / env_steps,
        "env_steps_per_s_off": env_steps / t_off,
        "mujoco": mujoco.__version__,
        "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()

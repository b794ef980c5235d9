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


class _Timer:
    """Wraps a callable and adds up the seconds spent in it."""

    def __init__(self, call):
        self.call, self.seconds = call, 0.0

    def __call__(self, *args):
        start = time.perf_counter()
        try:
            return self.call(*args)
        finally:
            self.seconds += time.perf_counter() - start


def rollout(cfg: WalkConfig, actions: np.ndarray, record: Path | None) -> dict:
    """One rollout: wall and CPU seconds, the recorder's own seconds, recording bytes.

    The env is built and reset before the clocks start. The recorder's own time is its open and close, plus
    the time in its two hooks less the env step and physics calls inside them, each timed from outside.
    """
    env = WalkVecEnv(cfg)
    env.reset(seed=cfg.seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    recorder = Recorder(env, record) if record is not None else None
    if recorder is not None:
        env_step = recorder._orig_env_step = _Timer(recorder._orig_env_step)
        physics = recorder._orig_rig_step = _Timer(recorder._orig_rig_step)
        rig_hook = env.rig.step = _Timer(env.rig.step)
    loop_start = time.perf_counter()
    for action in actions:
        env.step(action)
    loop_s = time.perf_counter() - loop_start
    if recorder is not None:
        recorder.close()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    env.close()
    own = 0.0
    if recorder is not None:
        # open + close, the env-step hook less the env step, the physics hook less the physics
        own = (wall - loop_s) + (loop_s - env_step.seconds) + (rig_hook.seconds - physics.seconds)
    return {"wall_s": wall, "cpu_s": cpu, "recorder_own_s": own, "bytes": record.stat().st_size if record else 0}


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
    on, off = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rollout.mcap"
        rollout(cfg, actions[:5], path)  # warm caches and imports outside the measurement
        for round_index in range(args.rounds):
            order = (True, False) if round_index % 2 == 0 else (False, True)
            for recording in order:
                (on if recording else off).append(rollout(cfg, actions, path if recording else None))
    median = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    t_on, t_off = median(on, "wall_s"), median(off, "wall_s")
    env_steps = args.steps * args.num_envs
    print(
        json.dumps(
            {
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
                # CPU time of the process (all threads): less sensitive to other processes on the machine
                "cpu_on_s": median(on, "cpu_s"),
                "cpu_off_s": median(off, "cpu_s"),
                "slowdown_cpu": median(on, "cpu_s") / median(off, "cpu_s") - 1.0,
                # the recorder's own seconds (hooks, encoding, writing, open and close) against the plain rollout
                "recorder_own_s": median(on, "recorder_own_s"),
                "recorder_share": median(on, "recorder_own_s") / t_off,
                "per_round_slowdown": [a["wall_s"] / b["wall_s"] - 1.0 for a, b in zip(on, off)],
                "times_on_s": [r["wall_s"] for r in on],
                "times_off_s": [r["wall_s"] for r in off],
                "recording_bytes": int(median(on, "bytes")),
                "bytes_per_env_step": median(on, "bytes") / env_steps,
                "env_steps_per_s_off": env_steps / t_off,
                "mujoco": mujoco.__version__,
                "machine": platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Training throughput on the same `go2 walk` env: OGI's GRU PPO vs sb3-contrib RecurrentPPO (LSTM).

Both get the same number of envs, recurrent hidden size, rollout length, epochs and minibatches; the rate
counts env steps including updates. The bare env rate (random actions, no learning) is measured in the
same run, so `train_over_env` says what the learner costs. Prints one JSON object.
Needs `sb3-contrib` (pip install sb3-contrib); without it the RecurrentPPO figures are null.

    python benchmarks/trainer_throughput.py [--num-envs 128] [--iterations 6] [--sb3-iterations 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ogi.envs import WalkVecEnv
from ogi.training.config import preset
from ogi.training.runner import Runner


def env_rate(cfg, steps: int) -> float:
    env = WalkVecEnv(cfg.env)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.normal(0, 0.5, (steps, cfg.env.num_envs, env.robot.num_joints)).astype(np.float32)
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return steps * cfg.env.num_envs / (time.perf_counter() - start)


def ogi_rate(cfg, iterations: int, workdir: Path) -> tuple[float, list[float]]:
    runner = Runner(cfg, workdir / "ogi")
    runner.train(iterations=1, progress=False, log=False, save_final=False)  # warm-up
    rates = []
    for _ in range(iterations):
        start = time.perf_counter()
        runner.train(iterations=1, progress=False, log=False, save_final=False)
        rates.append(cfg.env.num_envs * cfg.ppo.rollout_steps / (time.perf_counter() - start))
    return statistics.median(rates), rates


def sb3_recurrent_rate(cfg, iterations: int) -> float | None:
    try:
        from sb3_contrib import RecurrentPPO
    except ImportError:
        return None
    from stable_baselines3.common.vec_env import VecMonitor

    from ogi.training.sb3 import SB3VecEnv, sb3_ppo_kwargs

    torch.set_num_threads(cfg.update_threads)
    kwargs = sb3_ppo_kwargs(cfg)
    kwargs.pop("target_kl")  # OGI adapts its step size instead of stopping epochs early: keep the work equal
    kwargs["policy_kwargs"].update(lstm_hidden_size=cfg.actor.recurrent_size, n_lstm_layers=1, enable_critic_lstm=False)
    venv = VecMonitor(SB3VecEnv(WalkVecEnv(cfg.env)))
    model = RecurrentPPO("MlpLstmPolicy", venv, verbose=0, **kwargs)
    per_iteration = cfg.env.num_envs * cfg.ppo.rollout_steps
    model.learn(total_timesteps=per_iteration)  # warm-up
    start = time.perf_counter()
    model.learn(total_timesteps=iterations * per_iteration, reset_num_timesteps=False)
    return iterations * per_iteration / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--sb3-iterations", type=int, default=2)
    args = parser.parse_args()

    cfg = preset("go2", "walk")
    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, num_envs=args.num_envs), checkpoint_every=10**9)
    workdir = Path(tempfile.mkdtemp(prefix="ogi-trainer-bench-"))
    try:
        bare = env_rate(cfg, 2 * cfg.ppo.rollout_steps)
        ogi, ogi_rounds = ogi_rate(cfg, args.iterations, workdir)
        bare_after = env_rate(cfg, 2 * cfg.ppo.rollout_steps)
        sb3 = sb3_recurrent_rate(cfg, args.sb3_iterations)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    env_steps_per_s = statistics.median([bare, bare_after])
    print(
        json.dumps(
            {
                "robot": "go2",
                "num_envs": args.num_envs,
                "rollout_steps": cfg.ppo.rollout_steps,
                "epochs": cfg.ppo.epochs,
                "minibatches": cfg.ppo.minibatches,
                "recurrent_size": cfg.actor.recurrent_size,
                "physics_hz": round(1 / cfg.env.sim.sim_dt_s),
                "ogi_steps_per_s": round(ogi, 1),
                "ogi_steps_per_s_per_iteration": [round(r, 1) for r in ogi_rounds],
                "sb3_recurrent_steps_per_s": round(sb3, 1) if sb3 is not None else None,
                "ratio_vs_sb3_recurrent": round(ogi / sb3, 2) if sb3 else None,
                "env_steps_per_s": round(env_steps_per_s, 1),
                "train_over_env": round(ogi / env_steps_per_s, 3),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Training throughput on the same `go2 walk` env: OGI's GRU PPO vs sb3-contrib RecurrentPPO (LSTM).

Both get the same number of envs, recurrent hidden size, rollout length, epochs and minibatches; the rate
counts env steps including updates. The bare env rate (random actions, no learning) is measured in the
same run, so `train_over_env` says what the learner costs; the preset is also measured without its symmetry
loss (`*_without_symmetry`), which costs one more recurrent pass per minibatch. Prints one JSON object.
Needs `sb3-contrib` (pip install sb3-contrib); without it the RecurrentPPO figures are null.

    python benchmarks/trainer_throughput.py [--num-envs 256] [--iterations 6] [--sb3-iterations 2]
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


def ogi_rate(cfg, iterations: int, workdir: Path) -> dict:
    """Median training rate over iterations, and where an iteration's time goes (collection vs update)."""
    runner = Runner(cfg, workdir)
    runner.train(iterations=1, progress=False, log=False, save_final=False)  # warm-up
    rates, collect, update = [], [], []
    for _ in range(iterations):
        start = time.perf_counter()
        runner.collect()
        middle = time.perf_counter()
        runner.update()
        end = time.perf_counter()
        rates.append(cfg.env.num_envs * cfg.ppo.rollout_steps / (end - start))
        collect.append(middle - start)
        update.append(end - middle)
    return {
        "steps_per_s": statistics.median(rates),
        "per_iteration": rates,
        "collect_s": statistics.median(collect),
        "update_s": statistics.median(update),
    }


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
    parser.add_argument("--num-envs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--sb3-iterations", type=int, default=2)
    args = parser.parse_args()

    cfg = preset("go2", "walk")
    num_envs = args.num_envs or cfg.env.num_envs
    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, num_envs=num_envs), checkpoint_every=10**9)
    plain = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, symmetry_coef=0.0))
    workdir = Path(tempfile.mkdtemp(prefix="ogi-trainer-bench-"))
    try:
        bare = env_rate(cfg, 2 * cfg.ppo.rollout_steps)
        measured = ogi_rate(cfg, args.iterations, workdir / "preset")
        without_symmetry = ogi_rate(plain, args.iterations, workdir / "no-symmetry")
        ogi = measured["steps_per_s"]
        bare_after = env_rate(cfg, 2 * cfg.ppo.rollout_steps)
        sb3 = sb3_recurrent_rate(cfg, args.sb3_iterations)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    env_steps_per_s = statistics.median([bare, bare_after])
    print(
        json.dumps(
            {
                "robot": "go2",
                "num_envs": num_envs,
                "rollout_steps": cfg.ppo.rollout_steps,
                "epochs": cfg.ppo.epochs,
                "minibatches": cfg.ppo.minibatches,
                "recurrent_size": cfg.actor.recurrent_size,
                "physics_hz": round(1 / cfg.env.sim.sim_dt_s),
                "ogi_steps_per_s": round(ogi, 1),
                "ogi_steps_per_s_per_iteration": [round(r, 1) for r in measured["per_iteration"]],
                "collect_s_per_iteration": round(measured["collect_s"], 3),
                "update_s_per_iteration": round(measured["update_s"], 3),
                "symmetry_coef": cfg.ppo.symmetry_coef,
                "ogi_steps_per_s_without_symmetry": round(without_symmetry["steps_per_s"], 1),
                "update_s_per_iteration_without_symmetry": round(without_symmetry["update_s"], 3),
                "sb3_recurrent_steps_per_s": round(sb3, 1) if sb3 is not None else None,
                "ratio_vs_sb3_recurrent": round(ogi / sb3, 2) if sb3 else None,
                "env_steps_per_s": round(env_steps_per_s, 1),
                "train_over_env": round(ogi / env_steps_per_s, 3),
                "train_over_env_without_symmetry": round(without_symmetry["steps_per_s"] / env_steps_per_s, 3),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""The other scale-out shape, measured against the replicas: Ray actors as rollout workers feeding one learner.

Each worker holds the simulations of its share and a copy of the networks; every iteration the learner sends the
actor, critic and normalizer statistics to every worker, each worker collects one rollout (actions, values,
advantages and returns computed on its side, as in one process), and sends its rollout storage and its
normalizers' increments back; the learner stacks the rollouts along the simulation axis, merges the increments and
runs the PPO update on the whole global batch, alone. `benchmarks/scale_out.py --rollout-workers` times it and
counts the bytes each way; `ogi train --workers` uses the replicas (`ogi.training.distributed`), for the reasons in
docs/scale_out.md. No checkpoints are written here: this is a measurement, not a way to train.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ogi.training.config import TrainConfig
from ogi.training.distributed import apply_increment, normalizer_increment, normalizer_moments, replica_config

STORAGE_FIELDS = (
    "policy_obs",
    "critic_obs",
    "actions",
    "means",
    "log_probs",
    "values",
    "rewards",
    "dones",
    "starts",
    "advantages",
    "returns",
)


def _network_state(runner) -> dict[str, np.ndarray]:
    out = {}
    for prefix, module in (
        ("actor", runner.actor),
        ("critic", runner.critic),
        ("actor_normalizer", runner.actor_normalizer),
        ("critic_normalizer", runner.critic_normalizer),
    ):
        out.update({f"{prefix}/{k}": v.detach().numpy().copy() for k, v in module.state_dict().items()})
    return out


def _load_network_state(runner, state: dict[str, np.ndarray]) -> None:
    for prefix, module in (
        ("actor", runner.actor),
        ("critic", runner.critic),
        ("actor_normalizer", runner.actor_normalizer),
        ("critic_normalizer", runner.critic_normalizer),
    ):
        module.load_state_dict(
            {k[len(prefix) + 1 :]: torch.from_numpy(v) for k, v in state.items() if k.startswith(prefix + "/")}
        )


class Worker:
    """One rollout worker's simulations and networks (a Ray actor in `run_rollout_workers`)."""

    def __init__(self, cfg: TrainConfig, scratch: Path, rank: int, world: int, threads: int):
        from ogi.training.runner import Runner

        torch.set_num_threads(threads)
        self.runner = Runner(replica_config(cfg, rank, world, threads), Path(scratch) / f"worker{rank}")
        seed = cfg.seed + rank * 1_000_003
        torch.manual_seed(seed)
        self.runner.obs, _ = self.runner.env.reset(seed=seed)

    def collect(self, state: dict[str, np.ndarray]) -> dict[str, Any]:
        runner = self.runner
        _load_network_state(runner, state)
        before = [normalizer_moments(n) for n in (runner.actor_normalizer, runner.critic_normalizer)]
        started = time.perf_counter()
        stats = runner.collect()
        collect_s = time.perf_counter() - started
        runner.ppo._step = 0  # what the update would do: the next rollout fills the storage from its start
        st = runner.ppo.storage
        norms = (runner.actor_normalizer, runner.critic_normalizer)
        increments = [normalizer_increment(norm, b).numpy() for norm, b in zip(norms, before)]
        return {
            "storage": {name: getattr(st, name).numpy() for name in STORAGE_FIELDS},
            "state0": [s.numpy() for s in st.state0],
            "normalizer_increments": increments,
            "reward": stats["reward/total"],
            "collect_s": collect_s,
        }


def run_rollout_workers(cfg: TrainConfig, scratch: Path, *, workers: int, threads: int, seconds: float) -> dict:
    """Train for `seconds` with `workers` rollout workers and one learner (this process); figures, no checkpoints."""
    import ray

    from ogi.training.runner import Runner

    remote = ray.remote(num_cpus=threads)(Worker)
    actors = [remote.remote(cfg, scratch, rank, workers, threads) for rank in range(workers)]
    torch.set_num_threads(2)
    learner = Runner(cfg, Path(scratch) / "learner")  # its simulations are never stepped: the workers' are
    st = learner.ppo.storage
    sent = received = 0
    iterations = steps = 0
    collect_wait_s = update_s = 0.0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        state = _network_state(learner)
        sent += sum(v.nbytes for v in state.values()) * workers
        t0 = time.perf_counter()
        results = ray.get([a.collect.remote(state) for a in actors])
        collect_wait_s += time.perf_counter() - t0
        received += sum(
            sum(v.nbytes for v in r["storage"].values())
            + sum(s.nbytes for s in r["state0"])
            + sum(i.nbytes for i in r["normalizer_increments"])
            for r in results
        )
        for name in STORAGE_FIELDS:
            setattr(st, name, torch.from_numpy(np.concatenate([r["storage"][name] for r in results], axis=1)))
        st.state0 = tuple(
            torch.from_numpy(np.concatenate([r["state0"][i] for r in results], axis=0))
            for i in range(len(results[0]["state0"]))
        )
        st.log_std_at_collection = learner.actor.log_std.detach().clone()
        for k, norm in enumerate((learner.actor_normalizer, learner.critic_normalizer)):
            merged = torch.from_numpy(np.sum([r["normalizer_increments"][k] for r in results], axis=0))
            apply_increment(norm, normalizer_moments(norm), merged)
        t1 = time.perf_counter()
        learner.update()
        update_s += time.perf_counter() - t1
        iterations += 1
        steps += cfg.env.num_envs * cfg.ppo.rollout_steps
    wall = time.perf_counter() - started
    for a in actors:
        ray.kill(a)
    return {
        "steps_per_s": steps / wall,
        "iterations": iterations,
        "bytes_to_workers_per_iter": sent / max(iterations, 1),
        "bytes_from_workers_per_iter": received / max(iterations, 1),
        "collect_wait_s_per_iter": collect_wait_s / max(iterations, 1),
        "learner_update_s_per_iter": update_s / max(iterations, 1),
    }

"""Data-parallel PPO replicas: the one training loop on several processes (or machines), gloo all-reduce on CPU.

Each replica is a whole `Runner` with its share of the simulations (`num_envs / workers`), its own
`mujoco.batch` and its own seed stream for simulation and action noise; the networks start from rank 0's weights.
What keeps them one run:
- every minibatch step uses the mean gradient of all replicas (one all-reduce of the flattened gradients before
  clipping), so with the same global batch the update is the single-process one;
- the adaptive learning rate follows the KL averaged over replicas, so every replica keeps the same rate;
- after each rollout the observation normalizers are merged (their batch sums and sums of squares added up),
  so every replica normalizes with the statistics of the global batch;
- the fall probability the Lagrangian's dual step reads, the logged figures and the curriculum summary are
  averaged over replicas; rank 0 alone writes TensorBoard, the console and checkpoints (the one format, with
  lineage); rank 0 decides when to stop, and tells the others.

`Collective` counts the bytes each replica sends and the seconds it waits in collectives, for
`benchmarks/scale_out.py`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ogi.training.config import TrainConfig

WORKER_SEED_STRIDE = 1_000_003  # replica r simulates and samples from seed + r * stride
LOGGED_MEAN_PREFIXES = ("reward/", "terrain/", "safety/", "loss/", "policy/")
EPISODE_KEYS = ("episode/return", "episode/length_s", "episode/fall_rate")


class Collective:
    """Mean-reductions over the replicas of one run (torch.distributed, gloo), with byte and time counts."""

    def __init__(self, rank: int, world: int, init_method: str, timeout_s: float = 120.0):
        self.rank, self.world = rank, world
        if world > 1:
            dist.init_process_group(
                "gloo", init_method=init_method, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s)
            )
        self.bytes_sent = 0
        self.seconds = 0.0
        self.calls = 0

    def _all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world == 1:
            return tensor
        started = time.perf_counter()
        dist.all_reduce(tensor)
        self.seconds += time.perf_counter() - started
        # a ring all-reduce sends 2 (world - 1) / world of the tensor from every replica
        self.bytes_sent += int(2 * (self.world - 1) / self.world * tensor.numel() * tensor.element_size())
        self.calls += 1
        return tensor

    def mean_grads(self, params: list[torch.Tensor]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if self.world == 1 or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        self._all_reduce(flat).div_(self.world)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean_scalar(self, value: float) -> float:
        return float(self.mean_values(np.array([value]))[0])

    def mean_values(self, values: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(values, dtype=np.float64))
        return (self._all_reduce(t.clone()) / self.world).numpy()

    def sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        return self._all_reduce(tensor.clone())

    def broadcast_(self, tensor: torch.Tensor) -> None:
        if self.world > 1:
            started = time.perf_counter()
            dist.broadcast(tensor, src=0)
            self.seconds += time.perf_counter() - started
            self.bytes_sent += tensor.numel() * tensor.element_size() if self.rank == 0 else 0
            self.calls += 1

    def decide(self, flag: bool) -> bool:
        """Rank 0's flag, on every replica."""
        t = torch.tensor([1.0 if flag else 0.0])
        self.broadcast_(t)
        return bool(t.item())

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def normalizer_moments(norm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(count, sum, sum of squares) of everything a normalizer has seen, float64."""
    count = norm.count.clone()
    return count, norm.mean * count, (norm.var + norm.mean.square()) * count


def normalizer_increment(norm, before) -> torch.Tensor:
    """[count, sum (dim), sum of squares (dim)] a normalizer has seen since its moments were `before`."""
    count, total, sq = normalizer_moments(norm)
    return torch.cat([(count - before[0]).reshape(1), total - before[1], sq - before[2]])


def apply_increment(norm, before, increment: torch.Tensor) -> None:
    """Set a normalizer to the moments `before` plus `increment` (several replicas' increments summed)."""
    count0, sum0, sq0 = before
    dim = sum0.numel()
    n = count0 + increment[0]
    if n <= 0:
        return
    mean = (sum0 + increment[1 : 1 + dim]) / n
    norm.mean.copy_(mean)
    norm.var.copy_(torch.clamp((sq0 + increment[1 + dim :]) / n - mean.square(), min=0.0))
    norm.count.copy_(n)


def merge_normalizer(norm, before, collective: Collective) -> None:
    """Replace each replica's statistics by those of the global batch: the start plus every replica's increment."""
    apply_increment(norm, before, collective.sum_tensor(normalizer_increment(norm, before)))


def replica_config(cfg: TrainConfig, rank: int, world: int, threads: int) -> TrainConfig:
    if cfg.env.num_envs % world:
        raise ValueError(f"num_envs = {cfg.env.num_envs} must be a multiple of workers = {world}")
    # a replica owns `threads` cores: its simulation threads and torch's
    sim = dataclasses.replace(cfg.env.sim, nthread=threads)
    env = dataclasses.replace(cfg.env, num_envs=cfg.env.num_envs // world, sim=sim)
    return dataclasses.replace(cfg, env=env, collect_threads=1, update_threads=threads)


def run_replica(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    rank: int,
    world: int,
    init_method: str,
    threads: int = 1,
    resume: bool = False,
    init_from: Path | None = None,
    deadline_unix_s: float | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """One replica's whole run; rank 0 writes the run directory. Returns rank 0's summary (others: their counts)."""
    from ogi.training.runner import Runner, _summary_writer

    torch.set_num_threads(threads)
    collective = Collective(rank, world, init_method)
    run_dir = Path(run_dir)
    local_cfg = replica_config(cfg, rank, world, threads)
    if rank == 0:
        runner = Runner(local_cfg, run_dir, resume=resume)
        runner.checkpoint_config = cfg  # checkpoints record the run (all replicas), not rank 0's share
        # the run's config is the global one (every replica's share together), with the replica layout beside it
        (run_dir / "config.json").write_text(json.dumps(_config_dict(cfg), indent=2))
    else:
        # a replica's own directory holds only its config: rank 0 alone writes checkpoints
        runner = Runner(local_cfg, run_dir / "workers" / f"rank{rank}", resume=False)
    (run_dir / "workers").mkdir(parents=True, exist_ok=True)
    (run_dir / "workers" / f"rank{rank}.pid").write_text(str(os.getpid()))
    if init_from is not None and not resume:
        from ogi.training.warm_start import warm_start

        warm_start(runner, init_from)
    # one set of weights, optimizer state and counters everywhere: rank 0's (a resumed rank 0 read them from the
    # run's newest checkpoint; the others may be on machines that do not hold the run directory)
    _init_optimizer_state(runner.ppo.optimizer)
    for tensor in _shared_tensors(runner):
        collective.broadcast_(tensor)
    dual = runner.ppo.lagrangian.dual if runner.ppo.lagrangian is not None else None
    counters = torch.tensor(
        [
            float(runner.iteration),
            float(runner.env_steps),
            runner.ppo.learning_rate,
            *((dual.multiplier, dual.integral, float(dual.updates)) if dual is not None else ()),
        ],
        dtype=torch.float64,
    )
    collective.broadcast_(counters)
    runner.iteration, runner.env_steps = int(counters[0]), int(counters[1])
    runner.ppo.learning_rate = float(counters[2])
    for group in runner.ppo.optimizer.param_groups:
        group["lr"] = runner.ppo.learning_rate
    if dual is not None:
        dual.multiplier, dual.integral, dual.updates = float(counters[3]), float(counters[4]), int(counters[5])
    iteration = counters[:1].clone()
    # each replica its own simulations and action noise
    seed = cfg.seed + rank * WORKER_SEED_STRIDE + runner.iteration
    torch.manual_seed(seed)
    if rank > 0:
        runner.obs, _ = runner.env.reset(seed=seed)
    runner.ppo.collective = collective

    writer = _summary_writer(run_dir / "tb") if rank == 0 else None
    started = time.perf_counter()
    start_steps = runner.env_steps
    stats: dict[str, float] = {}
    compute_s = 0.0
    last_line = 0.0
    try:
        while runner.iteration < cfg.iterations:
            t0 = time.perf_counter()
            comm0 = collective.seconds
            norms = (runner.actor_normalizer, runner.critic_normalizer)
            before = [normalizer_moments(n) for n in norms]
            stats = runner.collect()
            for norm, snapshot in zip(norms, before):
                merge_normalizer(norm, snapshot, collective)
            runner.rollout_fall_probability = collective.mean_scalar(runner.rollout_fall_probability)
            runner.env_steps += (world - 1) * local_cfg.env.num_envs * cfg.ppo.rollout_steps
            stats.update(runner.update())
            runner.iteration += 1
            stats.update(_mean_stats(stats, collective))
            elapsed = time.perf_counter() - started
            stats["perf/env_steps_per_s"] = (runner.env_steps - start_steps) / max(elapsed, 1e-9)
            stats["perf/iteration_s"] = time.perf_counter() - t0
            stats["perf/collective_s"] = collective.seconds - comm0
            compute_s += stats["perf/iteration_s"] - stats["perf/collective_s"]
            runner.last_stats = stats
            if rank == 0:
                for key, value in stats.items():
                    writer.add_scalar(key, value, runner.env_steps)
                if progress and (elapsed - last_line > 30 or runner.iteration == cfg.iterations):
                    last_line = elapsed
                    print(_line(runner.iteration, runner.env_steps, elapsed, stats, world), flush=True)
                if runner.iteration % cfg.checkpoint_every == 0:
                    runner.save()
            late = cfg.max_minutes and elapsed > 60 * cfg.max_minutes
            late = late or (deadline_unix_s is not None and time.time() > deadline_unix_s)
            if collective.decide(bool(late)):
                break
        if rank == 0 and (runner.last_checkpoint is None or runner.last_checkpoint.iteration != runner.iteration):
            runner.save()
    finally:
        if writer is not None:
            writer.close()
        collective.close()
    wall = time.perf_counter() - started
    iterations = max(runner.iteration - int(iteration.item()), 1)
    summary = {
        "rank": rank,
        "workers": world,
        "iterations": runner.iteration,
        "env_steps": runner.env_steps,
        "wall_s": wall,
        "env_steps_per_s": (runner.env_steps - start_steps) / max(wall, 1e-9),
        "comm_bytes_per_iter": collective.bytes_sent / iterations,
        "comm_s_per_iter": collective.seconds / iterations,
        "compute_s_per_iter": compute_s / iterations,
        "collective_calls_per_iter": collective.calls / iterations,
        "checkpoint": str(runner.last_checkpoint.path) if rank == 0 and runner.last_checkpoint else None,
        **{k: v for k, v in stats.items() if k.startswith(("episode/", "reward/total"))},
    }
    if rank == 0:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _mean_stats(stats: dict[str, float], collective: Collective) -> dict[str, float]:
    """The logged figures averaged over replicas. Every replica reduces the same keys in the same order: those
    every iteration has, then the episode figures, which a replica has only once an episode of its ended (a
    replica without one counts for none of their means)."""
    keys = sorted(k for k in stats if k.startswith(LOGGED_MEAN_PREFIXES) and not k.startswith("episode/"))
    values = [float(stats[k]) for k in keys]
    present = [k in stats for k in EPISODE_KEYS]
    values += [float(stats[k]) if p else 0.0 for k, p in zip(EPISODE_KEYS, present)] + [float(p) for p in present]
    total = collective.sum_tensor(torch.tensor(values, dtype=torch.float64)).numpy()
    n = len(keys)
    out = dict(zip(keys, (total[:n] / collective.world).tolist()))
    counts = total[n + len(EPISODE_KEYS) :]
    for i, key in enumerate(EPISODE_KEYS):
        if counts[i] > 0:
            out[key] = float(total[n + i] / counts[i])
    return out


def _config_dict(cfg: TrainConfig) -> dict:
    from ogi.training.config import config_to_dict

    return config_to_dict(cfg)


def _shared_tensors(runner) -> list[torch.Tensor]:
    """Everything that must be equal on every replica: networks, normalizers, the optimizer's moments."""
    tensors = [*runner.actor.state_dict().values(), *runner.critic.state_dict().values()]
    tensors += [*runner.actor_normalizer.state_dict().values(), *runner.critic_normalizer.state_dict().values()]
    if runner.ppo.lagrangian is not None:
        tensors += list(runner.ppo.lagrangian.cost_critic.state_dict().values())
    optimizer = runner.ppo.optimizer
    for group in optimizer.param_groups:  # parameter order, then key order: a loaded state keeps the file's order
        for p in group["params"]:
            state = optimizer.state[p]
            tensors += [state[key] for key in sorted(state) if torch.is_tensor(state[key])]
    return [t for t in tensors if t.is_floating_point() or t.dtype in (torch.int64, torch.float64)]


def _init_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Give every parameter Adam's state as a first step would (zero moments, step 0), so that every replica holds
    the same tensors to receive rank 0's into; Adam then behaves as if it had created them itself."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def _line(iteration: int, env_steps: int, elapsed_s: float, stats: dict[str, float], world: int) -> str:
    return (
        f"it {iteration} | {env_steps:,} steps | {elapsed_s / 60:.1f} min | "
        f"{stats.get('perf/env_steps_per_s', 0):,.0f} steps/s on {world} workers | "
        f"reward/step {stats.get('reward/total', 0):+.4f} | falls {stats.get('episode/fall_rate', 0):.3f} | "
        f"collective {stats.get('perf/collective_s', 0) * 1e3:.0f} ms"
    )

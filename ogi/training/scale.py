"""`ogi train --workers N [--ray-address ADDR]`: data-parallel PPO replicas as Ray actors, with a replaced worker
when one dies.

Ray places the replicas (one CPU-thread group each, `threads` CPUs) on the machines of a cluster (`--ray-address
auto` on a node of a running cluster) or on this machine (a local Ray, started and stopped here); the replicas
talk to each other directly over gloo (`ogi.training.distributed`), rank 0's node hosting the rendezvous. Ray is
imported only here, and only with `--workers`: `pip install ogi[scale]`.

Faults: if a replica's process dies, the collective calls of the others fail or time out; the driver then stops
every replica, logs the event (stderr and `RUN/events.jsonl`), and starts a fresh set that resumes from the run's
newest checkpoint (rank 0 writes one every `checkpoint_every` iterations), up to `max_restarts` times. What the run
loses is the iterations since that checkpoint, nothing written.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ogi.training.config import TrainConfig


class ScaleError(RuntimeError):
    """The replicas could not run (Ray missing, a bad address, too many restarts)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _event(run_dir: Path, kind: str, **data: Any) -> None:
    record = {"time_unix_s": time.time(), "kind": kind, **data}
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"workers: {kind}: {json.dumps(data)}", file=sys.stderr, flush=True)


def train_distributed(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    workers: int,
    ray_address: str | None = None,
    threads: int = 1,
    resume: bool = False,
    init_from: Path | None = None,
    max_restarts: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    """Run `workers` replicas to the end of the run; returns rank 0's summary with every replica's counts."""
    try:
        import ray
    except ImportError:
        raise ScaleError("--workers needs Ray: pip install 'ogi[scale]' (or pip install ray)") from None
    if workers < 1:
        raise ScaleError(f"workers = {workers} must be >= 1")
    if cfg.env.num_envs % workers:
        raise ScaleError(f"num_envs = {cfg.env.num_envs} must be a multiple of --workers {workers}")
    run_dir = Path(run_dir)
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(
                address=ray_address,
                num_cpus=None if ray_address else max(workers * threads, 1),
                include_dashboard=False,
                log_to_driver=True,
                configure_logging=False,
            )
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise ScaleError(f"could not reach a Ray cluster at {ray_address!r}: {err}") from None
    deadline = time.time() + 60 * cfg.max_minutes if cfg.max_minutes else None

    @ray.remote(num_cpus=threads, max_restarts=0)
    class Replica:
        def address(self) -> str:
            return ray.util.get_node_ip_address()

        def pid(self) -> int:
            import os

            return os.getpid()

        def run(self, **kwargs) -> dict[str, Any]:
            from ogi.training.distributed import run_replica

            return run_replica(**kwargs)

    # a replica's process died (RayActorError, WorkerCrashedError) or, waiting on it, another's collective failed
    lost = (ray.exceptions.RayActorError, ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError)
    restarts = 0
    summaries: list[dict[str, Any]] = []
    try:
        while True:
            # rank 0 writes the run directory: it runs on this machine, beside the driver
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
            actors = [Replica.options(scheduling_strategy=here).remote()]
            actors += [Replica.remote() for _ in range(workers - 1)]
            host = ray.get(actors[0].address.remote())
            init_method = f"tcp://{host}:{_free_port()}"
            pids = ray.get([a.pid.remote() for a in actors])
            _event(run_dir, "start", workers=workers, restart=restarts, pids=pids, rendezvous=init_method)
            futures = [
                a.run.remote(
                    cfg=cfg,
                    run_dir=run_dir,
                    rank=rank,
                    world=workers,
                    init_method=init_method,
                    threads=threads,
                    resume=resume or restarts > 0,
                    init_from=init_from if restarts == 0 else None,
                    deadline_unix_s=deadline,
                    progress=progress and rank == 0,
                )
                for rank, a in enumerate(actors)
            ]
            try:
                summaries = _wait_all(ray, futures)
                break
            except lost as err:
                failure = str(err).splitlines()[0][:300]
                for a in actors:
                    ray.kill(a, no_restart=True)
                restarts += 1
                _event(run_dir, "worker_lost", restart=restarts, error=failure)
                if restarts > max_restarts:
                    raise ScaleError(f"a worker failed {restarts} times; last: {failure}") from None
                if not (run_dir / "checkpoints").exists():
                    raise ScaleError(f"a worker failed before the first checkpoint: {failure}") from None
    finally:
        if started_here:
            ray.shutdown()
    summary = dict(summaries[0])
    summary["restarts"] = restarts
    summary["replicas"] = [
        {k: s[k] for k in ("rank", "env_steps_per_s", "comm_bytes_per_iter", "comm_s_per_iter")} for s in summaries
    ]
    _event(run_dir, "finish", iterations=summary["iterations"], restarts=restarts)
    return summary


def _wait_all(ray, futures: list) -> list[dict[str, Any]]:
    """Results of every replica; the first failure raises at once (the others would wait on it forever)."""
    pending = list(futures)
    done: dict[int, Any] = {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            done[futures.index(ref)] = ray.get(ref)
    return [done[i] for i in range(len(futures))]

"""Training beyond one process: the engine's overhead here, what it sends, and how that projects to a cluster.

1. `single`: one process, the go2 walk preset at `--num-envs` simulations, 2 threads (mujoco.batch and torch);
2. `workers_2`: the same run as two data-parallel replicas on a local Ray (`ogi train --workers 2`), one thread
   each, `--num-envs / 2` simulations each: the same global batch.
Both run `--seconds` of training after start-up (Ray's start and the replicas' set-up are not counted; the
steps/s are each loop's own), side by side, `--rounds` times alternating; medians.

Communication: the bytes each replica sends per iteration (ring all-reduce: 2 (N - 1) / N of every reduced
tensor) and the seconds it spends in collectives, measured on the two local replicas. The projection to N
machines (weak scaling: each machine keeps its share, the global batch grows) assumes a ring all-reduce over a
network of `--bandwidth-gbps` with `--latency-us` per message step: per iteration
`t_comm(N) = calls x 2 (N - 1) x latency + 2 (N - 1) / N x payload / bandwidth`, and efficiency
`t_compute / (t_compute + t_comm(N))` with `t_compute` the replica's measured time per iteration outside
collectives.

`--rollout-workers` adds the other shape to each round: two Ray actors each stepping half the simulations with a
copy of the networks and sending their rollouts to one learner (this process, 2 threads) that runs the whole
update (`ogi.training.rollout_workers`): its steps/s and the bytes each way per iteration.

Learning (`--learning-minutes M`): the go2 walk preset (256 simulations, seed 0) trained M minutes in one process
and M minutes as two replicas; the mean reward per step against env steps from each run's TensorBoard log, and
each final policy judged by `ogi.training.evaluate` (32 episodes of 10 s). Per-sample learning should match within
seed noise: the global batch and the update are the same.

Prints one JSON object (last on stdout); `--png` plots the learning curves.

    python benchmarks/scale_out.py [--seconds 60] [--rounds 2] [--num-envs 64] [--learning-minutes 5 --png F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def config(num_envs: int, seconds: float):
    from ogi.training.config import preset

    cfg = preset("go2", "walk")
    env = dataclasses.replace(cfg.env, num_envs=num_envs, sim=dataclasses.replace(cfg.env.sim, nthread=2))
    return dataclasses.replace(cfg, env=env, iterations=1_000_000, max_minutes=seconds / 60, checkpoint_every=10_000)


def single(cfg, out: Path) -> dict:
    from ogi.training.runner import Runner

    runner = Runner(dataclasses.replace(cfg, collect_threads=1, update_threads=2), out)
    summary = runner.train(progress=False, log=False, save_final=False)
    return {"steps_per_s": summary["env_steps_per_s"], "iterations": summary["iterations"]}


def workers(cfg, out: Path, n: int) -> dict:
    from ogi.training.scale import train_distributed

    summary = train_distributed(cfg, out, workers=n, threads=1, progress=False)
    ranks = summary["replicas"]
    rank0 = ranks[0]
    return {
        "steps_per_s": summary["env_steps_per_s"],
        "iterations": summary["iterations"],
        "comm_bytes_per_iter": float(np.mean([r["comm_bytes_per_iter"] for r in ranks])),
        "comm_s_per_iter": float(np.mean([r["comm_s_per_iter"] for r in ranks])),
        "compute_s_per_iter": summary["compute_s_per_iter"],
        "collective_calls_per_iter": summary["collective_calls_per_iter"],
        "rank0": rank0,
    }


def curve(run: Path, tag: str = "reward/total") -> list[list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return [[float(e.step), float(e.value)] for e in acc.Scalars(tag)]


def learning(minutes: float, out: Path) -> dict:
    from ogi.training.config import preset
    from ogi.training.evaluate import evaluate
    from ogi.training.policy_loading import load_policy
    from ogi.training.runner import Runner
    from ogi.training.scale import train_distributed

    cfg = dataclasses.replace(preset("go2", "walk"), max_minutes=minutes, iterations=1_000_000, seed=0)
    result = {}
    runner = Runner(cfg, out / "single")
    runner.train(progress=False)
    two = train_distributed(cfg, out / "workers_2", workers=2, threads=1, progress=False)
    for name, run in (("single", out / "single"), ("workers_2", out / "workers_2")):
        actor, normalizer, _, checkpoint = load_policy(run)
        judged = evaluate(actor, normalizer, cfg.env, num_envs=32, episode_s=10.0)
        points = curve(run)
        result[name] = {
            "env_steps": checkpoint.step,
            "curve_reward_per_step": points,
            "final_reward_per_step": float(np.mean([v for _, v in points[-5:]])),
            "eval": judged.scores(),
        }
    result["workers_2"]["steps_per_s"] = two["env_steps_per_s"]
    return result


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, label in (("single", "1 process x 2 threads"), ("workers_2", "2 replicas x 1 thread")):
        points = np.array(result[name]["curve_reward_per_step"])
        ax.plot(points[:, 0] / 1e6, points[:, 1], label=label)
    ax.set_xlabel("env steps (millions)")
    ax.set_ylabel("reward per step")
    ax.set_title("go2 walk preset, seed 0: learning per sample")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def project(payload_bytes: float, calls: float, compute_s: float, machines: int, gbps: float, latency_us: float):
    steps = 2 * (machines - 1)
    comm = calls * steps * latency_us * 1e-6 + steps / machines * payload_bytes / (gbps * 1e9 / 8)
    return compute_s / (compute_s + comm), comm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--bandwidth-gbps", type=float, default=10.0)
    parser.add_argument("--latency-us", type=float, default=50.0)
    parser.add_argument("--learning-minutes", type=float, default=0.0, help="also compare learning (0: skip)")
    parser.add_argument("--png", type=Path, default=None, help="plot the learning curves here")
    parser.add_argument("--rollout-workers", action="store_true", help="also time rollout workers + one learner")
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    cfg = config(args.num_envs, args.seconds)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            one = single(cfg, Path(tmp) / f"single{r}")
            two = workers(cfg, Path(tmp) / f"workers{r}", 2)
            rounds.append({"single": one, "workers_2": two})
            if args.rollout_workers:
                from ogi.training.rollout_workers import run_rollout_workers

                rounds[-1]["rollout_workers_2"] = run_rollout_workers(
                    cfg, Path(tmp) / f"rollout{r}", workers=2, threads=1, seconds=args.seconds
                )
                print(json.dumps({"round": r, "rollout_workers_2": rounds[-1]["rollout_workers_2"]}), flush=True)
            print(json.dumps({"round": r, "single": one["steps_per_s"], "workers_2": two["steps_per_s"]}), flush=True)
        learned = learning(args.learning_minutes, Path(tmp) / "learning") if args.learning_minutes else None
    ray.shutdown()
    if learned is not None and args.png is not None:
        plot(learned, args.png)
    single_rate = float(np.median([r["single"]["steps_per_s"] for r in rounds]))
    two_rate = float(np.median([r["workers_2"]["steps_per_s"] for r in rounds]))
    comm_bytes = float(np.median([r["workers_2"]["comm_bytes_per_iter"] for r in rounds]))
    comm_s = float(np.median([r["workers_2"]["comm_s_per_iter"] for r in rounds]))
    compute_s = float(np.median([r["workers_2"]["compute_s_per_iter"] for r in rounds]))
    calls = float(np.median([r["workers_2"]["collective_calls_per_iter"] for r in rounds]))
    payload = comm_bytes  # at N = 2 a replica sends 2 (2 - 1) / 2 = 1 x the reduced payload
    projected, projected_comm = {}, {}
    for machines in (8, 64):
        eff, t = project(payload, calls, compute_s, machines, args.bandwidth_gbps, args.latency_us)
        projected[str(machines)], projected_comm[str(machines)] = eff, t
    result = {
        "engine": "ray actors as data-parallel PPO replicas, gloo all-reduce (torch.distributed) between them",
        "steps_per_s": {
            "single": single_rate,
            "workers_2": two_rate,
            **(
                {"rollout_workers_2": float(np.median([r["rollout_workers_2"]["steps_per_s"] for r in rounds]))}
                if args.rollout_workers
                else {}
            ),
        },
        "ratio_rollout_workers_2": float(
            np.median([r["rollout_workers_2"]["steps_per_s"] / r["single"]["steps_per_s"] for r in rounds])
        )
        if args.rollout_workers
        else None,
        # each round runs both side by side: the median of its ratios is robust to the machine's load drifting
        "ratio_2workers": float(
            np.median([r["workers_2"]["steps_per_s"] / r["single"]["steps_per_s"] for r in rounds])
        ),
        "ratio_of_medians": two_rate / single_rate,
        "comm_bytes_per_iter": comm_bytes,
        "comm_s_per_iter": comm_s,
        "compute_s_per_iter": compute_s,
        "collective_calls_per_iter": calls,
        "projected_efficiency": projected,
        "projected_comm_s_per_iter": projected_comm,
        "projection_network": {"bandwidth_gbps": args.bandwidth_gbps, "latency_us": args.latency_us},
        "num_envs": args.num_envs,
        "seconds_per_run": args.seconds,
        "rounds": rounds,
        "learning": learned,
        "created_unix_s": time.time(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Data-parallel PPO replicas: merged normalizers, one set of weights, reproducible runs, rank 0's checkpoints."""

import multiprocessing as mp
import socket
import tomllib

import numpy as np
import pytest
import torch

from ogi import checkpoints as ckpt
from ogi.policies import EmpiricalNormalizer
from ogi.training.config import load_train_config, preset
from ogi.training.distributed import merge_normalizer, normalizer_moments, replica_config
from tests.training.test_cli_train import TINY as CLI_TINY

TINY = "iterations = 3\ncheckpoint_every = 2\n" + CLI_TINY  # top-level keys before the tables


class _SumOf:
    """A stand-in collective whose sum adds the increments every replica reports."""

    def __init__(self, increments):
        self.increments = increments

    def sum_tensor(self, tensor):
        return sum(self.increments)


def test_merged_normalizers_equal_one_normalizer_over_the_global_batch():
    torch.manual_seed(0)
    start = torch.randn(50, 3, dtype=torch.float64) * 2 + 1
    batches = [torch.randn(30, 3, dtype=torch.float64) * s + s for s in (1.0, 3.0)]
    replicas = []
    for batch in batches:
        norm = EmpiricalNormalizer(3)
        norm.update(start)
        before = normalizer_moments(norm)
        norm.update(batch)
        count, total, sq = normalizer_moments(norm)
        increment = torch.cat([(count - before[0]).reshape(1), total - before[1], sq - before[2]])
        replicas.append((norm, before, increment))
    everything = EmpiricalNormalizer(3)
    everything.update(torch.cat([start, *batches]))
    increments = [r[2] for r in replicas]
    for norm, before, _ in replicas:
        merge_normalizer(norm, before, _SumOf(increments))
        assert torch.allclose(norm.mean, everything.mean) and torch.allclose(norm.var, everything.var)
        assert norm.count == everything.count


def test_replica_config_splits_the_simulations(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    cfg = load_train_config(path, preset("go2", "walk"))
    assert replica_config(cfg, 1, 2, 1).env.num_envs == 2
    with pytest.raises(ValueError, match="multiple of workers = 3"):
        replica_config(cfg, 0, 3, 1)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _replica(cfg_text, run_dir, rank, world, init_method, queue):
    from ogi.training.distributed import run_replica

    cfg = load_train_config_from_text(cfg_text)
    summary = run_replica(cfg, run_dir, rank=rank, world=world, init_method=init_method)
    queue.put((rank, summary))


def load_train_config_from_text(text):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(text)
        return load_train_config(path, preset("go2", "walk"))


def _run(run_dir, world=2):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    init = f"tcp://127.0.0.1:{_port()}"
    procs = [ctx.Process(target=_replica, args=(TINY, run_dir, r, world, init, queue)) for r in range(world)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def test_two_replicas_are_one_reproducible_run(tmp_path):
    assert tomllib.loads(TINY)["env"]["num_envs"] == 4
    first = _run(tmp_path / "a")
    _run(tmp_path / "b")
    assert first[0]["iterations"] == 3 and first[0]["env_steps"] == 3 * 4 * 8  # the global batch, counted once
    assert first[0]["comm_bytes_per_iter"] > 0 and first[1]["comm_bytes_per_iter"] > 0
    assert not (tmp_path / "a" / "workers" / "rank1" / "checkpoints").exists()  # rank 0 alone checkpoints
    report = ckpt.verify_path(tmp_path / "a")
    assert report.ok, report
    a = ckpt.load_checkpoint(ckpt.latest_valid_checkpoint(tmp_path / "a").path)
    b = ckpt.load_checkpoint(ckpt.latest_valid_checkpoint(tmp_path / "b").path)
    assert a.checkpoint.iteration == 3
    for key, value in a.weights.items():
        assert torch.equal(value, b.weights[key]), key  # same seed, same workers: the same run
    assert np.isfinite(first[0]["env_steps_per_s"])

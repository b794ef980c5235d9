"""`ogi train --workers` on a local Ray: two replicas finish a run; a killed worker is replaced from a checkpoint."""

import json
import os
import signal
import threading
import time

import pytest
import ray

from ogi import checkpoints as ckpt
from ogi.training.scale import train_distributed
from tests.training.test_cli_train import TINY as CLI_TINY
from tests.training.test_distributed import load_train_config_from_text


def tiny(iterations: int) -> str:
    """The CLI tests' smallest run, `iterations` long, checkpointing every 2 (top-level keys before the tables)."""
    return f"iterations = {iterations}\ncheckpoint_every = 2\n" + CLI_TINY


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


def _events(run_dir):
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_two_workers_finish_a_run(local_ray, tmp_path):
    cfg = load_train_config_from_text(tiny(3))
    summary = train_distributed(cfg, tmp_path / "run", workers=2, progress=False)
    assert summary["iterations"] == 3 and summary["restarts"] == 0
    assert len(summary["replicas"]) == 2 and all(r["comm_bytes_per_iter"] > 0 for r in summary["replicas"])
    assert [e["kind"] for e in _events(tmp_path / "run")] == ["start", "finish"]
    assert ckpt.verify_path(tmp_path / "run").ok


def test_a_killed_worker_is_replaced_and_the_run_finishes(local_ray, tmp_path):
    run = tmp_path / "run"
    cfg = load_train_config_from_text(tiny(14))
    result = {}

    def train():
        result["summary"] = train_distributed(cfg, run, workers=2, progress=False)

    thread = threading.Thread(target=train)
    thread.start()
    deadline = time.time() + 240
    while not ckpt.list_checkpoints(run) or not (run / "workers" / "rank1.pid").exists():
        assert time.time() < deadline and thread.is_alive(), "no checkpoint came"
        time.sleep(0.2)
    os.kill(int((run / "workers" / "rank1.pid").read_text()), signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    summary = result["summary"]
    assert summary["restarts"] == 1 and summary["iterations"] == 14
    kinds = [e["kind"] for e in _events(run)]
    assert kinds == ["start", "worker_lost", "start", "finish"]
    assert ckpt.verify_path(run).ok


def test_ogi_train_workers_from_the_command_line(local_ray, tmp_path):
    from typer.testing import CliRunner

    from ogi.cli import app

    config = tmp_path / "tiny.toml"
    config.write_text(tiny(2))
    run = tmp_path / "run"
    args = ["train", "--config", str(config), "--run-dir", str(run), "--workers", "2", "--no-eval"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 workers x 2 simulations" in result.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 2 and summary["workers"] == 2
    bad = CliRunner().invoke(
        app, ["train", "--config", str(config), "--workers", "3", "--run-dir", str(tmp_path / "b")]
    )
    assert bad.exit_code != 0 and "must be a multiple of --workers 3" in bad.output


def test_rollout_workers_feed_one_learner(local_ray, tmp_path):
    from ogi.training.rollout_workers import run_rollout_workers

    cfg = load_train_config_from_text(tiny(3))
    figures = run_rollout_workers(cfg, tmp_path, workers=2, threads=1, seconds=2.0)
    assert figures["iterations"] >= 1 and figures["steps_per_s"] > 0
    assert figures["bytes_from_workers_per_iter"] > 0 and figures["bytes_to_workers_per_iter"] > 0

"""A training run keeps only its newest checkpoints, still verifies, resumes after pruning and says where from."""

import dataclasses
import io

import pytest
from rich.console import Console

from ogi import checkpoints as ckpt
from ogi.training.cli_train import run_train, run_verify
from ogi.training.config import TrainConfig, load_train_config
from ogi.training.runner import Runner
from ogi.validation import ConfigError
from tests.training.test_train_e2e import tiny_config


def test_a_run_keeps_its_last_checkpoints_and_resumes_after_pruning(tmp_path):
    cfg = dataclasses.replace(tiny_config(kind="mlp"), keep_last=2)
    runner = Runner(cfg, tmp_path / "run")
    runner.train(iterations=4, progress=False, log=False)
    kept = ckpt.list_checkpoints(tmp_path / "run")
    assert [ckpt.verify_checkpoint(path)[0].iteration for path in kept] == [3, 4]
    assert len(list((tmp_path / "run" / "checkpoints").iterdir())) == 4  # two of them are pruned records
    lineage = ckpt.verify_lineage(runner.last_checkpoint.path)
    assert [c.iteration for c in lineage.checkpoints] == [4, 3] and lineage.pruned_parent.iteration == 2

    resumed = Runner(cfg, tmp_path / "run", resume=True)
    assert resumed.iteration == 4 and resumed.env_steps == runner.env_steps
    resumed.train(iterations=1, progress=False, log=False)
    assert [c.iteration for c in ckpt.verify_checkpoint(resumed.last_checkpoint.path)] == [5, 4]


def test_keep_last_zero_keeps_every_checkpoint(tmp_path):
    runner = Runner(dataclasses.replace(tiny_config(kind="mlp"), keep_last=0), tmp_path / "run")
    runner.train(iterations=3, progress=False, log=False)
    assert len(ckpt.list_checkpoints(tmp_path / "run")) == 3


def test_keep_last_is_validated_with_a_clear_error(tmp_path):
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match=r"keep_last = .* whole number .*0: keep all"):
            TrainConfig(keep_last=bad)
    toml = tmp_path / "run.toml"
    toml.write_text("keep_last = 3\n")
    assert load_train_config(toml, TrainConfig()).keep_last == 3


def test_resume_prints_the_checkpoint_it_continues_from(tmp_path):
    cfg = dataclasses.replace(tiny_config(kind="mlp"), keep_last=1)
    Runner(cfg, tmp_path / "run").train(iterations=2, progress=False, log=False)
    out = io.StringIO()
    code = run_train(
        robot="go2",
        task="walk",
        algo="ogi",
        config=None,
        run_dir=tmp_path / "run",
        iterations=3,
        minutes=None,
        num_envs=None,
        actor=None,
        seed=None,
        resume=True,
        evaluate_after=False,
        console=Console(file=out, width=200),
    )
    assert code == 0
    assert f"resumed from checkpoint 2 (step {2 * 4 * 8})" in out.getvalue()


def test_verify_reports_a_chain_that_ends_at_a_pruned_parent(tmp_path, capsys):
    runner = Runner(dataclasses.replace(tiny_config(kind="mlp"), keep_last=2), tmp_path / "run")
    runner.train(iterations=3, progress=False, log=False)
    assert run_verify(runner.last_checkpoint.path) == 0
    output = capsys.readouterr().out
    pruned = ckpt.read_pruned(tmp_path / "run" / "checkpoints" / f"{4 * 8:09d}")
    assert "ok " in output and "2 checkpoint(s)" in output and "was pruned" in output
    assert pruned.checkpoint_sha256[:12] in output
    assert run_verify(tmp_path / "run") == 0
    assert "INVALID" not in capsys.readouterr().out


def test_verify_prints_invalid_checkpoints(tmp_path, capsys):
    runner = Runner(dataclasses.replace(tiny_config(kind="mlp"), keep_last=0), tmp_path / "run")
    runner.train(iterations=3, progress=False, log=False)
    assert run_verify(runner.last_checkpoint.path) == 0
    output = capsys.readouterr().out
    assert "3 checkpoint(s)" in output and runner.last_checkpoint.checkpoint_sha256[:12] in output
    state = runner.last_checkpoint.state_path
    data = bytearray(state.read_bytes())
    data[-5] ^= 0x01
    state.write_bytes(bytes(data))
    assert run_verify(runner.last_checkpoint.path) == 1
    assert "INVALID" in capsys.readouterr().out
    assert run_verify(tmp_path / "empty") == 1

"""`ogi train`, `ogi verify`, `ogi eval` and `ogi rollout --policy` end to end, on a tiny configuration."""

import json

import pytest
from safetensors.numpy import load_file
from typer.testing import CliRunner

from ogi.cli import app
from tests.strict_json import loads_strict

TINY = """
[env]
num_envs = 4
episode_length_s = 0.5
[env.sim]
sim_dt_s = 0.002
nthread = 1
[ppo]
rollout_steps = 8
epochs = 1
minibatches = 2
[actor]
hidden_sizes = [32]
recurrent_size = 16
[critic]
hidden_sizes = [32]
"""

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.toml"
    config.write_text(TINY)
    run = root / "run"
    result = runner.invoke(
        app, ["train", "--config", str(config), "--run-dir", str(run), "--iterations", "2", "--no-eval"]
    )
    assert result.exit_code == 0, result.output
    return root, run


def test_train_writes_a_verifiable_run(trained):
    root, run = trained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 2 and summary["env_steps"] == 2 * 4 * 8
    assert (run / "config.json").exists() and (run / "tb").is_dir()
    result = runner.invoke(app, ["verify", str(run)])
    assert result.exit_code == 0, result.output


def test_verify_reports_a_flipped_bit(trained, tmp_path):
    import shutil

    _, run = trained
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    newest = sorted((copy / "checkpoints").iterdir())[-1] / "weights.safetensors"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x10
    newest.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify", str(newest.parent)])
    assert result.exit_code == 1  # a check that found a difference, not bad input
    assert "HashMismatch" in result.output or "sha256" in result.output


def test_eval_and_rollout_with_the_trained_policy(trained):
    root, run = trained
    result = runner.invoke(app, ["eval", str(run), "--num-envs", "2", "--seconds", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = loads_strict(result.stdout)
    assert report["episodes"] == 2 and 0.0 <= report["fall_rate"] <= 1.0 and len(report["duty_factors"]) == 4
    out = root / "rollout.safetensors"
    result = runner.invoke(
        app,
        [
            "rollout",
            "--policy",
            str(run),
            "--num-envs",
            "2",
            "--seconds",
            "0.2",
            "--threads",
            "1",
            "--save",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    arrays = load_file(str(out))
    assert arrays["qpos"].shape[:2] == (10, 2)
    assert json.loads(out.with_suffix(".json").read_text())["robot"] == "go2"


def test_eval_per_command_family_says_whether_the_policy_walks(trained):
    _, run = trained
    result = runner.invoke(app, ["eval", str(run), "--families", "--num-envs", "5", "--seconds", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = loads_strict(result.stdout)
    assert set(report["families"]) == {"forward", "backward", "lateral", "turning", "mixed"}
    assert report["physics_hz"] == 1000 and report["walks"] is False  # two iterations of training do not walk
    assert report["worst_lin_error_mps"] >= report["families"]["forward"]["lin_error_mps"]


def test_until_walks_reports_that_the_policy_did_not_walk_in_time(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", "--config", str(config), "--run-dir", str(run), "--iterations", "2", "--no-eval", "--until-walks"],
    )
    assert result.exit_code == 0, result.output
    assert "training until the policy walks" in result.stdout and "did not walk yet" in result.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["walks"] is False and summary["minutes_to_walk"] is None


def test_the_training_summary_prints_a_run_that_was_judged(capsys):
    from rich.console import Console

    from ogi.training.cli_train import _print_summary

    judgement = {"train_minutes": 1.0, "walks": False, "families": {"forward": {"lin_error_mps": 0.5}}}
    _print_summary(Console(width=200), {"iterations": 3, "walks": False, "judgements": [judgement, judgement]})
    out = capsys.readouterr().out
    assert "judgements" in out and "2" in out and "walks" in out


def test_bad_train_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ppo]\nclip = -1\n")
    result = runner.invoke(app, ["train", "--config", str(bad), "--run-dir", str(tmp_path / "r"), "--iterations", "1"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "ppo.clip" in result.stderr
    result = runner.invoke(app, ["train", "--resume", "--run-dir", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and str(tmp_path / "nothing") in result.stderr


def test_sb3_baseline_trains_the_same_env(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(
        TINY.replace("[actor]\nhidden_sizes = [32]\nrecurrent_size = 16", '[actor]\nkind = "mlp"\nhidden_sizes = [32]')
    )
    run = tmp_path / "sb3"
    result = runner.invoke(
        app, ["train", "--algo", "sb3-ppo", "--config", str(config), "--run-dir", str(run), "--iterations", "2"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] >= 2 * 4 * 8
    weights = load_file(str(run / "sb3_policy.safetensors"))
    assert any(key.startswith("mlp_extractor") for key in weights)


def test_a_terrain_run_below_500_hz_is_told_to_raise_the_rate():
    import dataclasses

    from ogi.envs.config import TerrainConfig
    from ogi.training.cli_train import terrain_rate_warning
    from ogi.training.config import preset

    cfg = preset("go2", "walk")
    assert terrain_rate_warning(cfg) is None  # flat ground
    rough = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, terrain=TerrainConfig(enabled=True)))
    assert "sim_dt_s = 0.002" in terrain_rate_warning(rough)
    fast = dataclasses.replace(
        rough, env=dataclasses.replace(rough.env, sim=dataclasses.replace(rough.env.sim, sim_dt_s=0.002))
    )
    assert terrain_rate_warning(fast) is None

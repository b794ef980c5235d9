"""`ogi lm ...` through typer's CliRunner on a fresh app, so the test does not depend on ogi.cli's wiring."""

import pytest
import typer
from typer.testing import CliRunner

from ogi.checkpoints import verify_checkpoint
from ogi.lm.commands import register
from tests.lm.conftest import TINY_REWARD_TOML, TINY_RLHF_TOML, TINY_SFT_TOML, TINY_TOML
from tests.strict_json import loads_strict

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer(rich_markup_mode=None)  # plain help, as the `ogi` entry point prints it
    register(application)
    return application


def invoke(app, *args):
    result = runner.invoke(app, ["lm", *args])
    assert result.exit_code == 0, result.output
    return loads_strict(result.stdout) if "--json" in args else result.output


def test_help_lists_every_stage(app):
    output = invoke(app, "--help")
    for command in ("pretrain", "sft", "reward", "rlhf", "sample"):
        assert command in output
    assert "compute-optimal" in " ".join(invoke(app, "pretrain", "--help").split())  # at any terminal width


def test_pipeline_through_the_cli(app, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    for stage, text in (("sft", TINY_SFT_TOML), ("reward", TINY_REWARD_TOML), ("rlhf", TINY_RLHF_TOML)):
        (tmp_path / f"{stage}.toml").write_text(text)
    runs = tmp_path / "runs"
    pre = invoke(app, "pretrain", "--config", str(config), "--out", str(runs / "pre"), "--json")
    assert pre["steps"] == 30 and pre["tokens_trained"] == 30 * 8 * 48 and pre["perplexity"] < pre["unigram_perplexity"]
    sft = invoke(
        app,
        "sft",
        "--config",
        str(tmp_path / "sft.toml"),
        "--init",
        str(runs / "pre"),
        "--out",
        str(runs / "sft"),
        "--steps",
        "5",
        "--json",
    )
    assert sft["steps"] == 5 and 0 <= sft["heldout_exact_match"] <= 1
    reward = invoke(
        app,
        "reward",
        "--config",
        str(tmp_path / "reward.toml"),
        "--init",
        str(runs / "sft"),
        "--out",
        str(runs / "rm"),
        "--steps",
        "5",
        "--json",
    )
    assert 0 <= reward["heldout_pairwise_accuracy"] <= 1
    rlhf = invoke(
        app,
        "rlhf",
        "--config",
        str(tmp_path / "rlhf.toml"),
        "--policy",
        str(runs / "sft"),
        "--reward-model",
        str(runs / "rm"),
        "--out",
        str(runs / "rl"),
        "--iterations",
        "1",
        "--target-kl",
        "1.0",
        "--json",
    )
    assert rlhf["iterations"] == 1 and rlhf["penalty_rate"] >= 0
    assert len(verify_checkpoint(rlhf["checkpoint"])) == 3
    sample = invoke(
        app,
        "sample",
        "--model",
        str(runs / "rl"),
        "--prompt",
        "walk forward 2 meters",
        "--n",
        "3",
        "--verifier",
        str(runs / "rm"),
        "--json",
    )
    assert sample["candidates"] == 3 and sample["prompt_tokens"] == 4
    greedy = invoke(app, "sample", "--model", str(runs / "sft"), "--prompt", "sit down", "--greedy", "--json")
    assert greedy["candidates"] == 0 and isinstance(greedy["response"], str)
    again = runner.invoke(app, ["lm", "pretrain", "--config", str(config), "--out", str(runs / "pre")])
    assert again.exit_code == 2 and again.stderr.startswith("error: ") and "never overwritten" in again.stderr


def test_compute_budget_prints_chosen_n_and_d(app, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    summary = invoke(
        app, "pretrain", "--config", str(config), "--out", str(tmp_path / "run"), "--compute-budget", "1e9", "--json"
    )
    assert summary["chosen_N"] == summary["parameters"] and summary["chosen_D"] > 0
    assert summary["tokens_trained"] >= summary["chosen_D"]
    assert summary["optimal_D"] == pytest.approx(20 * summary["optimal_N"], abs=20)


def test_bad_config_and_data_are_reported_not_raised(app, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("stepz = 2\n")
    result = runner.invoke(app, ["lm", "pretrain", "--config", str(config), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "did you mean 'steps'" in result.stderr
    result = runner.invoke(app, ["lm", "sft", "--init", str(tmp_path / "missing"), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and str(tmp_path / "missing") in result.stderr
    data = tmp_path / "demos.jsonl"
    data.write_text('{"prompt": "sit down"}\n')
    config.write_text(TINY_TOML)
    invoke(app, "pretrain", "--config", str(config), "--out", str(tmp_path / "pre"), "--steps", "2", "--json")
    result = runner.invoke(
        app, ["lm", "sft", "--init", str(tmp_path / "pre"), "--out", str(tmp_path / "s"), "--data", str(data)]
    )
    assert result.exit_code == 2 and "field 'response'" in result.stderr and result.stderr.count("\n") == 1

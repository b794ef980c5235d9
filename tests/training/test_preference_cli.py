"""`ogi train-gait-style`: from a shipped walker to a reward model and a fine-tuned walker, both with lineage."""

import json

from typer.testing import CliRunner

from ogi import checkpoints as ckpt
from ogi.cli import app
from ogi.training.preference import load_gait_reward_model
from ogi.training.preference_benchmark import SHIPPED_WALKER


def test_train_gait_style_fits_a_model_and_fine_tunes_the_walker(tmp_path):
    out = tmp_path / "style"
    args = ["train-gait-style", str(SHIPPED_WALKER), "--run-dir", str(out), "--iterations", "4"]
    args += ["--num-envs", "16", "--collect-s", "6", "--retrain-every", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "gait_style.json").read_text())
    assert summary["iterations"] == 4 and summary["refits"] >= 1
    assert 0.0 <= summary["initial_accuracy"] <= 1.0
    model = load_gait_reward_model(out / "reward_model")
    assert model.obs_dim > 0
    # the walker's lineage runs through the shipped checkpoint
    chain = ckpt.verify_checkpoint(ckpt.latest_valid_checkpoint(out / "walker").path)
    assert len(chain) >= 2
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "already holds" in again.output


def test_train_gait_style_needs_an_end(tmp_path):
    args = ["train-gait-style", str(SHIPPED_WALKER), "--run-dir", str(tmp_path / "x"), "--minutes", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "--iterations" in result.output

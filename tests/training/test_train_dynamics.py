"""`ogi train --dynamics`: a run on a calibrated robot records the profile in its config and checkpoints, keeps it
when the file is gone, and fine-tunes a trained policy with `--init-from`."""

import hashlib
import json

import pytest
from typer.testing import CliRunner

from ogi import checkpoints as ckpt
from ogi.cli import app
from ogi.envs import WalkVecEnv
from ogi.training.config import config_from_plain
from tests.training.test_cli_train import TINY as CLI_TINY

TINY = CLI_TINY  # the CLI tests' smallest run

PROFILE = """\
[joints.calf]
damping = 0.4
[motors]
strength = 0.9
delay_ms = 6.0
[body]
base_mass_offset_kg = 0.5
"""

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamics")
    config, profile = root / "tiny.toml", root / "calibrated.toml"
    config.write_text(TINY)
    profile.write_text(PROFILE)
    common = ["train", "--config", str(config), "--iterations", "1"]
    nominal, tuned = root / "nominal", root / "tuned"
    result = runner.invoke(app, [*common, "--run-dir", str(nominal), "--no-eval"])
    assert result.exit_code == 0, result.output
    # evaluated, as by default: the run saves its own final checkpoint though the one it started from has the
    # same iteration number
    result = runner.invoke(
        app, [*common, "--run-dir", str(tuned), "--dynamics", str(profile), "--init-from", str(nominal)]
    )
    assert result.exit_code == 0, result.output
    return root, profile, nominal, tuned


def test_the_checkpoint_records_the_profile(runs):
    _, profile, nominal, tuned = runs
    digest = hashlib.sha256(profile.read_bytes()).hexdigest()
    checkpoint = ckpt.latest_valid_checkpoint(tuned)
    for recorded in (json.loads((tuned / "config.json").read_text()), checkpoint.config):
        assert recorded["env"]["dynamics"] == {"profile": str(profile), "toml": PROFILE, "sha256": digest}
    assert ckpt.latest_valid_checkpoint(nominal).config["env"]["dynamics"]["profile"] == ""
    # fine-tuned: the first checkpoint's parent is the nominal run's
    assert checkpoint.parent_sha256 == ckpt.latest_valid_checkpoint(nominal).checkpoint_sha256


def test_a_checkpoint_rebuilds_its_robot_without_the_file(runs, tmp_path):
    _, profile, _, tuned = runs
    cfg = config_from_plain(ckpt.latest_valid_checkpoint(tuned).config)
    moved = tmp_path / "moved.toml"
    profile.rename(moved)
    try:
        env = WalkVecEnv(cfg.env)
        assert env.dynamics.strength == 0.9 and env.sim.delay_substeps == 3
    finally:
        moved.rename(profile)


def test_bad_profiles_and_resume_give_clear_errors(runs, tmp_path):
    root, profile, _, tuned = runs
    slow = tmp_path / "slow.toml"
    slow.write_text("[motors]\ndelay_ms = 25.0\n")
    common = ["train", "--config", str(root / "tiny.toml"), "--iterations", "1", "--no-eval"]
    result = runner.invoke(app, [*common, "--run-dir", str(tmp_path / "slow"), "--dynamics", str(slow)])
    assert result.exit_code != 0 and "motors.delay_ms = 25.0 must be below the control period" in result.output
    result = runner.invoke(app, [*common, "--run-dir", str(tmp_path / "gone"), "--dynamics", str(tmp_path / "no")])
    assert result.exit_code != 0 and "no such dynamics profile" in result.output
    result = runner.invoke(app, ["train", "--resume", "--run-dir", str(tuned), "--dynamics", str(profile)])
    assert result.exit_code != 0 and "--dynamics starts a new run" in result.output


def test_an_init_from_run_without_evaluation_saves_its_own_final_checkpoint(runs, tmp_path):
    root, _, nominal, _ = runs
    run = tmp_path / "warm"
    args = ["train", "--config", str(root / "tiny.toml"), "--iterations", "1", "--no-eval"]
    result = runner.invoke(app, [*args, "--run-dir", str(run), "--init-from", str(nominal)])
    assert result.exit_code == 0, result.output
    own = ckpt.latest_valid_checkpoint(run)
    assert own is not None and own.path.parent.parent == run
    assert own.parent_sha256 == ckpt.latest_valid_checkpoint(nominal).checkpoint_sha256

from typer.testing import CliRunner

from ogi.cli import app
from ogi.replay import Recording, replay_check


def _run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_rollout_record_writes_a_recording_that_replays_exactly(tmp_path):
    path = tmp_path / "rollout.mcap"
    _run(
        "rollout",
        "--policy",
        "random",
        "--num-envs",
        "2",
        "--seconds",
        "0.6",
        "--threads",
        "1",
        "--record",
        str(path),
        "--json",
    )
    recording = Recording(path)
    assert recording.num_steps == 30 and recording.num_sims == 2
    assert recording.info["source"] == "rollout" and recording.info["policy"] == "random"
    assert replay_check(recording).exact


def test_eval_record_with_the_shipped_policy(tmp_path):
    path = tmp_path / "eval.mcap"
    _run(
        "eval",
        "ogi/policies/pretrained/go2_walk_gru",
        "--num-envs",
        "2",
        "--seconds",
        "0.4",
        "--record",
        str(path),
        "--json",
    )
    recording = Recording(path)
    assert recording.num_steps == 20 and recording.info["source"] == "eval"
    assert replay_check(recording).exact

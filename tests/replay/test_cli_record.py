import subprocess
import sys

from ogi.replay import Recording, replay_check


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ogi.cli", *args], capture_output=True, text=True, timeout=300)


def test_rollout_record_writes_a_recording_that_replays_exactly(tmp_path):
    path = tmp_path / "rollout.mcap"
    result = _run("rollout", "--policy", "random", "--num-envs", "2", "--seconds", "0.6", "--threads", "1",
                  "--record", str(path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    recording = Recording(path)
    assert recording.num_steps == 30 and recording.num_sims == 2
    assert recording.info["source"] == "rollout" and recording.info["policy"] == "random"
    assert replay_check(recording).exact


def test_eval_record_with_the_shipped_policy(tmp_path):
    path = tmp_path / "eval.mcap"
    result = _run("eval", "ogi/policies/pretrained/go2_walk_gru", "--num-envs", "2", "--seconds", "0.4",
                  "--record", str(path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    recording = Recording(path)
    assert recording.num_steps == 20 and recording.info["source"] == "eval"
    assert replay_check(recording).exact

import json

from typer.testing import CliRunner

from ogi.cli import app
from ogi.robots import robot_names

runner = CliRunner()


def test_robots_lists_every_robot_with_real_numbers():
    result = runner.invoke(app, ["robots", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(rows) == set(robot_names())
    go2 = rows["go2"]
    assert go2["dof"] == 12 and 14.5 < go2["mass_kg"] < 16.0
    assert 0.25 < go2["base_height_m"] < 0.4
    assert go2["joints"][0] == "FR_hip_joint"  # SDK motor order


def test_rollout_prints_a_summary():
    result = runner.invoke(app, ["rollout", "--num-envs", "2", "--seconds", "0.4", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["policy_steps"] == 20 and summary["diverged"] == 0 and summary["all_observations_finite"]


def test_rollout_bad_input_gives_a_clear_error():
    result = runner.invoke(app, ["rollout", "--robot", "dog"])
    assert result.exit_code == 2 and "unknown robot 'dog'" in result.output
    result = runner.invoke(app, ["rollout", "--num-envs", "0"])
    assert result.exit_code != 0

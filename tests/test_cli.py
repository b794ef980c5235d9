import os
import re
import subprocess
import sys

import click
import pytest
import typer
from typer.testing import CliRunner

from ogi.cli import app
from ogi.robots import get_robot, robot_names
from tests.strict_json import loads_strict

runner = CliRunner()

# the two hints rich markup used to eat: a TOML table header and a range
JOINTS_NOT_TABLES = """name = "bad"
mjcf = "robot.xml"
base_body = "base"
imu_site = "imu"
foot_sites = ["foot"]
nominal_base_height = 0.3
joints = 5
"""
RANGE_NOT_A_PAIR = JOINTS_NOT_TABLES.replace(
    "joints = 5\n",
    """[[joints]]
name = "knee"
default = 0.0
kp = 1.0
kd = 0.1
torque_limit = 1.0
range = [1.0]
""",
)


@pytest.fixture
def bad_robots(tmp_path):
    """Two robot TOML files, paths long enough that an 80-column terminal would wrap their messages."""
    folder = tmp_path / ("robot_folder_" + "x" * 60)
    folder.mkdir()
    joints, limits = folder / "joints_not_tables.toml", folder / "range_not_a_pair.toml"
    joints.write_text(JOINTS_NOT_TABLES)
    limits.write_text(RANGE_NOT_A_PAIR)
    return {
        joints: f"error: {joints}: field 'joints': must be [[joints]] tables (an array of tables), got int 5\n",
        limits: f"error: {limits}: field 'joints[0].range': must be [low, high], got list [1.0]\n",
    }


def test_robots_lists_every_robot_with_real_numbers():
    result = runner.invoke(app, ["robots", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in loads_strict(result.output)}
    assert set(rows) == set(robot_names())
    go2 = rows["go2"]
    assert go2["dof"] == 12 and 14.5 < go2["mass_kg"] < 16.0
    assert 0.25 < go2["base_height_m"] < 0.4
    assert go2["joints"][0] == "FR_hip_joint"  # SDK motor order
    assert go2["feet"] == ["FR_foot", "FL_foot", "RR_foot", "RL_foot"]


def test_robots_table_is_one_line_per_robot():
    result = runner.invoke(app, ["robots"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["robot", "DoF", "mass", "kg", "height", "m", "base", "height", "m", "feet"]
    humanoid = next(line for line in lines if line.startswith("humanoid "))
    assert humanoid.split()[1] == "23" and humanoid.split()[-1] == "2"
    assert len(lines) == 1 + len(robot_names()) + 1  # header, robots, the hint to `ogi robots NAME`
    assert "hip" not in result.output  # joints are listed per robot, not here


def test_robots_name_prints_each_joint_with_its_limits_and_gains():
    result = runner.invoke(app, ["robots", "humanoid"])
    assert result.exit_code == 0, result.output
    robot = get_robot("humanoid")
    rows = {
        line.split()[0]: line.split()[1:]
        for line in result.output.splitlines()
        if line.split() and line.split()[0] in robot.joint_names
    }
    assert list(rows) == list(robot.joint_names)
    knee = robot.joint_names.index("left_knee_joint")
    low, high = robot.joint_limits[knee]
    assert [float(x) for x in rows["left_knee_joint"]] == pytest.approx(
        [robot.default_pose[knee], low, high, robot.kp[knee], robot.kd[knee], robot.torque_limit[knee]], rel=1e-3
    )
    details = loads_strict(runner.invoke(app, ["robots", "go2", "--json"]).output)["joint_details"]
    assert [d["name"] for d in details] == list(get_robot("go2").joint_names)
    assert details[0]["low_rad"] < details[0]["default_rad"] < details[0]["high_rad"]


def test_rollout_prints_a_summary():
    result = runner.invoke(app, ["rollout", "--num-envs", "2", "--seconds", "0.4", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = loads_strict(result.output)  # no episode ends in 0.4 s: the mean return is null, not NaN
    assert summary["policy_steps"] == 20 and summary["diverged"] == 0 and summary["all_observations_finite"]
    assert summary["episodes_ended"] == 0 and summary["mean_episode_return"] is None


def test_rollout_bad_input_gives_a_clear_error():
    result = runner.invoke(app, ["rollout", "--robot", "dog"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown robot 'dog'; known robots: ") and result.stdout == ""
    result = runner.invoke(app, ["rollout", "--num-envs", "0"])
    assert result.exit_code == 2  # click's own usage error


@pytest.mark.parametrize(
    "verb",
    [["robots"], ["rollout", "--robot"], ["terrain", "preview", "--robot"], ["train", "--robot"]],
    ids=lambda verb: " ".join(verb),
)
@pytest.mark.parametrize("columns", ["40", "200"])
def test_errors_keep_their_brackets_on_one_line(bad_robots, verb, columns, tmp_path):
    for toml, expected in bad_robots.items():
        result = runner.invoke(
            app,
            [*verb, str(toml), *(["--out", str(tmp_path / "t.png")] if "preview" in verb else [])],
            env={"COLUMNS": columns},
        )
        assert result.exit_code == 2, result.output
        assert result.stderr == expected and result.stdout == ""


def test_an_error_in_a_real_process_is_plain_on_stderr(bad_robots):
    toml, expected = next(iter(bad_robots.items()))
    out = subprocess.run(
        [sys.executable, "-m", "ogi.cli", "rollout", "--robot", str(toml)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, COLUMNS="40", FORCE_COLOR="1", TERM="xterm"),
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == expected  # no colour codes, no wrapping, no traceback


def test_verify_of_a_missing_path_is_bad_input(tmp_path):
    result = runner.invoke(app, ["verify", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert (
        result.stderr == f"error: {tmp_path / 'nothing'} does not exist (a checkpoint directory or a run directory)\n"
    )


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_help_keeps_its_bracketed_words():
    group = typer.main.get_command(app)
    checked = []
    for path, command in _commands(group):
        texts = [command.help or ""] + [getattr(param, "help", None) or "" for param in command.params]
        words = {word for text in texts for word in re.findall(r"\[[^\[\]\s]+\]", text)}
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "60"})
        assert result.exit_code == 0, (path, result.output)
        for word in words:
            assert word in result.output, (path, word)
            checked.append((path, word))
    assert {(("train",), "[env]"), (("train",), "[ppo]"), (("train",), "[actor]")} <= set(checked)
    assert "([env], [ppo], [actor], ...)" in " ".join(runner.invoke(app, ["train", "--help"]).output.split())


def test_copy_checkpoint_ships_a_policy_beside_its_parent_and_refuses_the_wrong_parent(tmp_path):
    from tests.checkpoints.test_format import _save

    parent = _save(tmp_path / "a", 100)
    child = _save(tmp_path / "b", 200, parent=parent)
    shipped = tmp_path / "shipped"
    assert runner.invoke(app, ["copy-checkpoint", str(parent.path), str(shipped / "parent")]).exit_code == 0
    result = runner.invoke(
        app, ["copy-checkpoint", str(child.path), str(shipped / "child"), "--parent", str(shipped / "parent")]
    )
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["verify", str(shipped / "child")]).exit_code == 0
    wrong = runner.invoke(app, ["copy-checkpoint", str(child.path), str(tmp_path / "x"), "--parent", str(child.path)])
    assert wrong.exit_code == 2 and "not the parent" in wrong.stderr

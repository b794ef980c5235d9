"""`ogi export`, `ogi deploy`, `ogi sim-robot` through Typer's test runner on a fresh app."""

import json

import typer
from typer.testing import CliRunner

from ogi.deploy.commands import register
from tests.strict_json import loads_strict

from .conftest import PRETRAINED

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_register_adds_the_three_verbs():
    names = {command.name for command in _app().registered_commands}
    assert names == {"export", "sim-robot", "deploy"}


def test_export_writes_a_loadable_artifact(tmp_path):
    result = runner.invoke(_app(), ["export", str(PRETRAINED), "--out", str(tmp_path / "art")])
    assert result.exit_code == 0, result.output
    assert "policy.onnx" in result.output
    manifest = json.loads((tmp_path / "art" / "manifest.json").read_text())
    assert manifest["robot"]["name"] == "go2"


def test_export_of_a_missing_run_is_a_clear_error(tmp_path):
    result = runner.invoke(_app(), ["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "art")])
    assert result.exit_code == 2 and result.stdout == ""
    # one line, the path whole however long the temporary directory is
    assert result.stderr.startswith(f"error: {tmp_path / 'nothing'}: no valid checkpoint")
    assert result.stderr.count("\n") == 1


def test_deploy_on_the_sim_bridge_starts_up_and_damps_on_exit(exported):
    result = runner.invoke(
        _app(), ["deploy", str(exported), "--bridge", "sim", "--seconds", "1.0", "--time-scale", "0.5", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = loads_strict(result.stdout.strip().splitlines()[-1])
    assert report["phase"] == "stopped" and report["mode"] == "damping"
    # "stop" unless the busy machine already tripped the supervisor into damping (e.g. "stale_state")
    assert report["events"][-1]["to_mode"] == "damping"
    assert report["pd_ticks"] > 100 and report["bridge"]["sent"] > 100 and not report["errors"]


def test_deploy_refuses_a_tampered_artifact(artifact_copy):
    (artifact_copy / "policy.onnx").write_bytes(b"not a model")
    result = runner.invoke(_app(), ["deploy", str(artifact_copy), "--seconds", "1"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "bytes" in result.stderr


def test_deploy_takes_a_whole_velocity_command_and_refuses_a_non_finite_one(exported):
    result = runner.invoke(
        _app(),
        ["deploy", str(exported), "--bridge", "sim", "--seconds", "1", "--command-vy", "0.2", "--command-yaw", "nan"],
    )
    assert result.exit_code == 2
    assert "error: command = (0.5, 0.2, nan) must be three finite numbers (vx, vy, yaw rate)" in result.stderr


def test_sim_robot_serves_only_over_dds():
    result = runner.invoke(_app(), ["sim-robot", "--bridge", "sim", "--seconds", "1"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --bridge sim: sim-robot serves over dds; the in-process sim bridge is started by "
        "`ogi deploy ARTIFACT --bridge sim`\n"
    )


def test_sigint_stops_a_deploy_with_damping(exported):
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ogi.deploy",
            "deploy",
            str(exported),
            "--bridge",
            "sim",
            "--seconds",
            "60",
            "--time-scale",
            "0.5",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "running" in process.stderr.readline()  # the handlers are in place once this is printed
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    report = loads_strict(out.strip().splitlines()[-1])
    assert report["interrupted"] is True and report["phase"] == "stopped"
    assert report["mode"] == "damping" and report["events"][-1]["to_mode"] == "damping"

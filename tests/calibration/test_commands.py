"""`ogi excite`, `ogi calibrate`, `ogi train-residual` and `ogi export --residual` from the command line."""

import json

from typer.testing import CliRunner

from ogi.cli import app
from ogi.robots import get_robot
from ogi.robots.dynamics import nominal_profile

from ..deploy.conftest import PRETRAINED

runner = CliRunner()


def _last_json(output: str) -> dict:
    return json.loads(next(line for line in reversed(output.splitlines()) if line.startswith("{")))


def test_excite_calibrate_residual_export(tmp_path):
    hidden = tmp_path / "hidden.toml"
    hidden.write_text(nominal_profile(get_robot("go2")).with_values(strength=0.8, delay_ms=4.0).to_toml())
    log = tmp_path / "excite.mcap"
    result = runner.invoke(app, ["excite", "--out", str(log), "--seconds", "3", "--dynamics", str(hidden)])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.output)
    assert summary["phase"] == "done" and summary["states"] > 5000
    again = runner.invoke(app, ["excite", "--out", str(log), "--seconds", "3"])
    assert again.exit_code != 0 and "exists" in again.output

    out = tmp_path / "cal"
    result = runner.invoke(app, ["calibrate", str(log), "--out", str(out), "--max-iters", "2", "--window-s", "0.5"])
    assert result.exit_code == 0, result.output
    assert "| strength |" in result.output and (out / "manifest.json").exists()

    run = tmp_path / "residual"
    result = runner.invoke(
        app, ["train-residual", str(log), "--out", str(run), "--steps", "20", "--reference", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "train_r2" in _last_json(result.output)

    artifact = tmp_path / "artifact"
    result = runner.invoke(app, ["export", str(PRETRAINED), "--out", str(artifact), "--residual", str(run)])
    assert result.exit_code == 0, result.output
    assert "residual.onnx" in result.output and (artifact / "residual.onnx").exists()


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[motors]\nstrength = -1\n")
    result = runner.invoke(app, ["excite", "--out", str(tmp_path / "x.mcap"), "--dynamics", str(bad)])
    assert result.exit_code != 0 and "motors.strength = -1.0 must be in [0.05, 5]" in result.output
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"nothing")
    result = runner.invoke(app, ["calibrate", str(junk), "--out", str(tmp_path / "cal")])
    assert result.exit_code != 0 and "not a motor log" in result.output

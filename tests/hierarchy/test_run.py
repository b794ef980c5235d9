"""`ogi run`: one instruction through the three rates at 1 kHz, recorded with its decisions and images, replayable
bit for bit."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ogi.cli import app
from ogi.replay.check import replay_check
from ogi.replay.reader import Recording

runner = CliRunner()


def test_ogi_run_walks_an_instruction_and_records_a_replayable_run(tmp_path):
    path = tmp_path / "run.mcap"
    result = runner.invoke(
        app, ["run", "--oracle", "--instruction", "Walk forward one meter and stop.", "--record", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["success"] is True and summary["outcome"] == "success"
    assert summary["rates_hz"] == {"planner": 5.0, "policy": 50.0, "pd": 1000.0}
    assert 0.7 < summary["path_m"] < 1.5
    # supervised by default; a calm walk never trips it
    assert summary["safety"] == {"trips": 0, "fallback_s": 0.0, "events": []}
    recording = Recording(path)
    assert recording.info["instruction"] == summary["instruction"]
    decisions = [e for e in recording.events if e["kind"] == "planner"]
    assert len(decisions) == summary["decisions"] == recording.camera_frames
    assert decisions[-1]["cause"] == "stop" and decisions[0]["data"]["command"][0] > 0.0
    assert decisions[0]["data"]["tokens"][0] == "<act_0>"
    assert not [e for e in recording.events if e["kind"] == "safety"]
    meta, image = next(recording.images(sim=0))
    assert image.shape == (24, 32, 4) and image.dtype.name == "uint8"
    replayed = replay_check(recording)
    assert replayed.exact and replayed.steps == recording.num_steps > 0


def test_ogi_run_explains_words_it_does_not_know():
    result = runner.invoke(app, ["run", "--oracle", "--instruction", "dance a little jig", "--no-record"])
    assert result.exit_code == 2
    assert "dance a little jig" in result.output


def test_ogi_run_refuses_recovery_settings_without_a_supervisor():
    result = runner.invoke(app, ["run", "--instruction", "stop", "--no-supervisor", "--no-recover", "--no-record"])
    assert result.exit_code == 2 and "--no-recover" in result.output


def test_ogi_run_refuses_a_robot_without_a_walker():
    result = runner.invoke(app, ["run", "--robot", "biped", "--instruction", "stop"])
    assert result.exit_code == 2 and "go2" in result.output


def test_ogi_run_drives_the_shipped_planner_by_default():
    result = runner.invoke(app, ["run", "--instruction", "stand still", "--no-record", "--no-supervisor", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["recording"] is None and summary["decisions"] >= 1
    assert summary["safety"] is None and summary["planner_read"] == "stand still"
    assert summary["rates_hz"] == {"planner": 5.0, "policy": 50.0, "pd": 1000.0}


def test_ogi_run_says_held_out_wording_again_in_training_words_unless_told_not_to():
    said = runner.invoke(app, ["run", "--instruction", "Halt.", "--no-record", "--no-supervisor", "--json"])
    assert said.exit_code == 0, said.output
    assert json.loads(said.output)["planner_read"] == "stop"
    literal = runner.invoke(app, ["run", "--instruction", "Halt.", "--no-record", "--no-rewrite", "--json"])
    assert literal.exit_code == 0, literal.output
    assert json.loads(literal.output)["planner_read"] == "halt"


def test_layout_for_tries_layouts_until_one_holds_the_named_object_and_refuses_unknown_words():
    from ogi.envs.instructions import AbsentObjectError
    from ogi.hierarchy.run import layout_for

    layout, instruction, seed = layout_for("go to the purple cone", 0)
    assert seed >= 0 and layout.objects[instruction.targets[0]].name == "purple cone"
    with pytest.raises(ValueError, match="dance") as refused:
        layout_for("dance a little jig", 0)
    assert not isinstance(refused.value, AbsentObjectError)

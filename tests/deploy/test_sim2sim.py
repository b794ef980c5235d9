import numpy as np

from ogi.deploy.artifact import load_artifact
from ogi.deploy.sim2sim import walk_command


def test_stepped_sim_to_sim_walks_the_shipped_policy_forward(exported):
    # start-up (zero torque, ramp) then 2 s of a forward command on the 1 kHz robot, one clock for both sides
    result = walk_command(load_artifact(exported), (0.5, 0.0, 0.0), seconds=2.0, settle_s=1.0)
    assert not result["fell"] and result["safety_events"] == []
    assert result["seconds_walked"] == 1.0
    # the shipped walker tracks forward commands: well under the 0.5 m/s a standing robot would miss by
    assert np.isfinite(result["tracking_error_mps"]) and result["tracking_error_mps"] < 0.25


def test_a_robot_that_is_never_stood_up_counts_as_fallen(exported):
    # no start-up time: the policy never runs and the folded robot's base is below half its standing height
    result = walk_command(load_artifact(exported), (0.5, 0.0, 0.0), seconds=0.5, settle_s=0.0, start_up_s=0.0)
    assert result["fell"] and result["seconds_walked"] < 0.01


def test_sim_to_sim_asks_each_robot_only_what_its_command_space_holds():
    from ogi.deploy.sim2sim import DEFAULT_COMMANDS, robot_commands

    assert robot_commands("go2") == DEFAULT_COMMANDS
    biped = robot_commands("biped")
    assert (0.0, 0.3, 0.0) in biped and all(abs(vy) <= 0.3 and -0.5 <= vx <= 0.8 for vx, vy, _ in biped)


def test_the_shipped_biped_walks_through_the_runtime_on_its_gait_clock(tmp_path):
    from pathlib import Path

    from ogi.deploy.export import export_policy

    shipped = Path(__file__).resolve().parents[2] / "ogi" / "policies" / "pretrained" / "biped_walk"
    artifact = export_policy(shipped, tmp_path / "biped")
    assert artifact.manifest["control"]["gait"]["period_s"] == 0.8
    assert [f["name"] for f in artifact.manifest["observation"]["fields"]][-1] == "gait_phase"
    # held standing, then 3 s of a forward command on the 1 kHz robot: the runtime drives the clock it was trained on
    result = walk_command(artifact, (0.5, 0.0, 0.0), seconds=3.0, settle_s=1.0)
    assert not result["fell"] and result["safety_events"] == []
    assert result["tracking_error_mps"] < 0.2  # a biped standing still would miss by 0.5 m/s

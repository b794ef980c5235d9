"""The 5 Hz planner over the deployment runtime: the simulated robot in an arena with the head camera and odometry,
the instruction loop beside the runtime, `ogi deploy --instruction`, and what the motor log keeps of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ogi.cli import app
from ogi.deploy.artifact import load_artifact
from ogi.deploy.motorlog import MotorLogWriter, read_motor_log
from ogi.deploy.sim2sim import walk_instruction
from ogi.deploy.sim_robot import SimRobot, SimRobotConfig
from ogi.envs.arena import ArenaConfig, ArenaVecEnv
from ogi.envs.config import SimConfig, WalkConfig
from ogi.envs.layout import STOP, Layout, Obstacle, SceneObject
from ogi.hierarchy.run import load_decider
from ogi.robots import get_robot

runner = CliRunner()
LAYOUT = Layout(
    objects=(SceneObject("red", "box", (2.0, 0.5)), SceneObject("blue", "ball", (1.5, -1.0))),
    obstacles=(Obstacle((-1.5, 0.0), (0.2, 0.3), 0.3),),
    start=(0.3, -0.2, 0.4),
)


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    """The shipped omnidirectional walker, exported once (the planner's walker)."""
    from ogi.deploy.export import export_policy
    from ogi.hierarchy.pipeline import SHIPPED_WALKER

    out = tmp_path_factory.mktemp("omni") / "artifact"
    export_policy(SHIPPED_WALKER, out)
    return out


def test_the_simulated_robot_in_an_arena_sees_what_the_training_camera_sees_and_reports_its_odometry():
    env = ArenaVecEnv(ArenaConfig(), WalkConfig(num_envs=1, sim=SimConfig(sim_dt_s=0.001)))
    env.set_layouts([0], [LAYOUT])
    trained = env.camera([0])[0]
    env.close()
    sim = SimRobot(get_robot("go2"), SimRobotConfig(layout=LAYOUT, start="stand", image_every=1))
    sim.step(1)
    frame, odometry = sim.latest_image(), sim.latest_odometry()
    assert frame.image.shape == trained.shape == (24, 32, 4)
    np.testing.assert_allclose(frame.image, trained, atol=1e-5)
    # the red box straight ahead is in view: a reddish patch the bare arena would not show
    red = frame.image[..., 0] - frame.image[..., 1]
    assert red.max() > 0.25
    np.testing.assert_allclose(odometry.pose, LAYOUT.start, atol=1e-6)
    assert odometry.speed_mps < 1e-6 and odometry.state_tick == 1
    with pytest.raises(ValueError, match="flat plane"):
        SimRobotConfig(layout=LAYOUT, terrain="rough")


def test_the_oracle_walks_an_instruction_through_the_runtime_at_exactly_5_50_and_1000_hz(omni):
    artifact = load_artifact(omni)
    seen = []
    result = walk_instruction(
        artifact, "walk forward one meter and stop", load_decider(None, oracle=True), on_decision=seen.append
    )
    assert result["success"] is True and result["outcome"] == "success" and result["judged"] is True
    assert result["rates_hz"] == {"planner": 5.0, "policy": 50.0, "pd": 1000.0}
    assert 0.7 < result["path_m"] < 1.5 and result["safety_events"] == []
    assert len(seen) == result["decisions"] and seen[-1].subgoal == STOP and seen[0].command[0] > 0.0
    assert [round(d.time_s, 3) for d in seen[:3]] == [0.0, 0.2, 0.4]


def test_the_shipped_planner_reads_the_robots_head_camera_in_deployment(omni):
    artifact = load_artifact(omni)
    seen = []
    result = walk_instruction(artifact, "stand still", load_decider(None, oracle=False), on_decision=seen.append)
    assert result["decisions"] >= 1 and result["image_frames"] > 0
    frames = [d.image_frame for d in seen]
    assert all(f is not None for f in frames) and frames == sorted(frames)


def test_ogi_deploy_carries_out_an_instruction_and_logs_each_decision(omni, tmp_path):
    log = tmp_path / "run.mcap"
    result = runner.invoke(
        app,
        [
            "deploy",
            str(omni),
            "--instruction",
            "walk forward one meter and stop",
            "--oracle",
            "--json",
            "--log",
            str(log),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    done = report["instruction"]
    assert done["judged"] is True and done["decisions"] >= 5 and done["outcome"] != "not_started"
    assert len(done["decision_log"]) == done["decisions"] and done["planner_read"] is None  # the oracle reads none
    planner_events = [e for e in read_motor_log(log).events if e["name"] == "planner"]
    assert len(planner_events) == done["decisions"]
    assert planner_events[0]["data"]["tokens"][0] == "<act_0>" and planner_events[0]["data"]["command"][0] > 0.0


def test_ogi_deploy_refuses_an_instruction_it_cannot_carry_out():
    over_dds = runner.invoke(app, ["deploy", "unused", "--bridge", "dds", "--instruction", "stop"])
    assert over_dds.exit_code == 2 and "--bridge sim" in over_dds.output
    alone = runner.invoke(app, ["deploy", "unused", "--oracle"])
    assert alone.exit_code == 2 and "--instruction" in alone.output


def test_a_motor_log_keeps_decisions_with_their_data_and_the_images_they_read(tmp_path):
    path = tmp_path / "log.mcap"
    image = np.linspace(0.0, 1.0, 24 * 32 * 4, dtype=np.float32).reshape(24, 32, 4)
    with MotorLogWriter(path, get_robot("go2"), tick_hz=1000.0) as writer:
        writer.image(1.25, 7, 1250, image)
        writer.event("planner", 1.25, 1250, {"stage": 1, "subgoal": 12})
        writer.event("ramp", 0.5, 500)
    log = read_motor_log(path)
    assert log.events[0]["data"] == {"stage": 1, "subgoal": 12} and "data" not in log.events[1]
    meta, pixels = log.images[0]
    assert meta == {"frame": 7, "state_tick": 1250, "controller_s": 1.25}
    assert pixels.dtype == np.uint8 and pixels.shape == (24, 32, 4)
    np.testing.assert_allclose(pixels / 255.0, image, atol=0.5 / 255 + 1e-6)


def test_walk_instruction_takes_the_words_or_an_episode_and_plays_a_given_layout(omni):
    from ogi.envs.instructions import parse_instruction
    from ogi.hierarchy.episodes import Episode

    artifact = load_artifact(omni)
    episode = Episode(LAYOUT, parse_instruction("turn left 90 degrees and stop", LAYOUT))
    with pytest.raises(ValueError, match="not both"):
        walk_instruction(artifact, "stop", load_decider(None, oracle=True), episode=episode)
    result = walk_instruction(artifact, None, load_decider(None, oracle=True), episode=episode)
    assert result["success"] is True and result["layout_seed"] is None
    assert result["objects"] == ["red box at (2.0, 0.5)", "blue ball at (1.5, -1.0)"]

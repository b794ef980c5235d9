"""A depth student reaches the robot: the sim robot's camera, the DepthImage_ topic, and the runtime's use of it."""

import dataclasses

import numpy as np
import pytest

from ogi.controllers.fallback import ControlMode
from ogi.deploy.artifact import ArtifactError
from ogi.deploy.bridge import DepthFrame
from ogi.deploy.dds import decode_depth, encode_depth
from ogi.deploy.messages import DepthImage_
from ogi.deploy.runtime import Runtime, RuntimeConfig
from ogi.deploy.sim_robot import SimRobot, SimRobotConfig, camera_for
from ogi.deploy.wire import WireError
from ogi.envs.sensing import DepthCameraConfig
from ogi.robots import get_robot

from .test_runtime import FakeBridge, RecordingSession, _run

GO2 = get_robot("go2")
CAMERA = DepthCameraConfig(enabled=True, noise_std_m=0.0, dropout_probability=0.0)


@pytest.fixture(scope="module")
def depth_artifact(tmp_path_factory):
    """A depth student (untrained weights) of go2's teacher preset, saved by the trainer and exported."""
    from ogi.deploy.export import export_policy
    from ogi.envs.sensing import HeightScanConfig
    from ogi.training.config import preset
    from ogi.training.distill import student_config
    from ogi.training.runner import Runner

    teacher = preset("go2", "walk")
    teacher = dataclasses.replace(
        teacher,
        actor_obs="privileged",
        env=dataclasses.replace(teacher.env, height_scan=HeightScanConfig(enabled=True, spacing_m=0.2)),
    )
    cfg = student_config(teacher, depth=True, num_envs=2)
    run = tmp_path_factory.mktemp("student") / "run"
    Runner(cfg, run).save()
    return export_policy(run, run.parent / "artifact")


def _frame(received_s: float, width: int = 12, height: int = 9, frame: int = 1) -> DepthFrame:
    depth = np.linspace(0.1, 2.5, width * height)
    return DepthFrame(frame, 0, received_s, width, height, 2.0, depth)


class DepthBridge(FakeBridge):
    has_depth = True

    def __init__(self):
        super().__init__()
        self.depth: DepthFrame | None = None

    def latest_depth(self):
        return self.depth


def test_a_depth_policy_needs_a_bridge_that_carries_depth(depth_artifact):
    assert camera_for(depth_artifact.manifest).width == 12
    with pytest.raises(ArtifactError, match="reads a depth image and this bridge carries none"):
        Runtime(depth_artifact, FakeBridge(), RuntimeConfig())


def test_the_runtime_reads_the_newest_image_and_trips_on_a_stale_or_foreign_one(depth_artifact):
    bridge = DepthBridge()
    rt = Runtime(depth_artifact, bridge, RuntimeConfig(zero_torque_s=0.5, ramp_s=2.0))
    rt.t0 = 0.0
    rt.session = recorder = RecordingSession()
    bridge.depth = _frame(2.5)
    _run(rt, bridge, 0.0, 2.56)
    assert rt.mode is ControlMode.POLICY and recorder.seen
    np.testing.assert_allclose(recorder.seen[-1][-108:], np.clip(bridge.depth.depth_m / 2.0, 0, 1), atol=1e-6)
    _run(rt, bridge, 2.56, 2.7, seq0=8000)  # the image is now 0.2 s old
    assert rt.mode is ControlMode.CROUCH and rt.events[-1].cause == "stale_depth"

    rt = Runtime(depth_artifact, bridge, RuntimeConfig(zero_torque_s=0.5, ramp_s=2.0))
    rt.t0 = 0.0
    bridge.depth = _frame(2.5, width=8, height=6)
    _run(rt, bridge, 0.0, 2.56)
    assert rt.events[-1].cause == "depth_layout" and "trained on 12x9" in rt.errors[-1]


def test_the_sim_robots_camera_sees_the_plane_where_geometry_puts_it():
    sim = SimRobot(GO2, SimRobotConfig(start="stand", depth_camera=CAMERA))
    sim.step(20)
    frame = sim.latest_depth()
    assert frame is not None and frame.state_tick == 20 and frame.depth_m.shape == (108,)
    d = sim.data
    rot = d.xmat[sim._base_id].reshape(3, 3)
    origin = d.xpos[sim._base_id] + rot @ np.asarray(CAMERA.mount_pos_m)
    directions = CAMERA.ray_directions_body() @ rot.T
    expected = np.minimum(origin[2] / -directions[:, 2], CAMERA.max_range_m)  # the ray meets z = 0
    np.testing.assert_allclose(frame.depth_m, expected, atol=0.01)


def test_the_sim_robot_stands_on_a_stairs_course_it_can_see():
    sim = SimRobot(GO2, SimRobotConfig(start="stand", terrain="stairs_up", terrain_difficulty=0.8, depth_camera=CAMERA))
    steps = sim.ground_height(sim.start_xy + np.array([[0.0, 0.0], [1.5, 0.0], [3.0, 0.0]]))
    assert steps[0] == pytest.approx(0.0, abs=1e-6) and steps[2] > steps[1] > 0.05  # the ground rises outward
    base = sim.base_position()
    assert base[2] == pytest.approx(GO2.nominal_base_height, abs=0.1)
    with pytest.raises(ValueError, match="is not a terrain kind"):
        SimRobotConfig(terrain="lava")


def test_depth_images_cross_the_wire_in_millimetres_and_bad_ones_are_refused():
    frame = _frame(0.0, frame=7)
    buffer = encode_depth(frame)
    got = decode_depth(buffer.tobytes(), 3.0)
    assert (got.frame, got.width, got.height, got.max_range_m, got.received_s) == (7, 12, 9, 2.0, 3.0)
    np.testing.assert_allclose(got.depth_m, frame.depth_m, atol=5e-4)
    decoded = DepthImage_.deserialize(buffer.tobytes())  # cyclonedds' own codec reads the same message
    assert decoded.width == 12 and decoded.depth_mm[1] == round(frame.depth_m[1] * 1000)
    corrupt = bytearray(buffer.tobytes())
    corrupt[40] ^= 0x01
    with pytest.raises(WireError):
        decode_depth(bytes(corrupt), 0.0)
    with pytest.raises(ValueError, match="needs 4096 <= 1024"):
        encode_depth(DepthFrame(1, 0, 0.0, 64, 64, 2.0, np.zeros(4096)))


def test_a_depth_student_walks_the_sim_bridge_on_its_own_images(depth_artifact):
    from ogi.deploy.sim2sim import walk_command

    result = walk_command(
        depth_artifact, (0.3, 0.0, 0.0), seconds=0.6, settle_s=0.1, start_up_s=3.0, terrain="stairs_up"
    )
    assert "stale_depth" not in result["safety_events"] and "depth_layout" not in result["safety_events"]
    assert result["terrain"]["kind"] == "stairs_up" and result["seconds_walked"] > 0
    assert result["depth_frames_used"] >= 25  # one image per policy step from the policy's first

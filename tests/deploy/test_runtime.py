"""The runtime's state machine, stepped by hand with a fake bridge (no threads, no clock)."""

import dataclasses
import time

import numpy as np
import pytest

from ogi.controllers.fallback import ControlMode
from ogi.controllers.pd import pd_torque
from ogi.deploy.artifact import ArtifactError, load_artifact
from ogi.deploy.bridge import LinkStats, RobotState
from ogi.deploy.feedforward import GravityFeedforward
from ogi.deploy.runtime import Runtime, RuntimeConfig, robot_for
from ogi.robots import get_robot

GO2 = get_robot("go2")


class FakeBridge:
    def __init__(self):
        self.stats = LinkStats()
        self.state: RobotState | None = None
        self.sent = []

    def latest_state(self):
        return self.state

    def send(self, command):
        self.sent.append(command)

    def close(self):
        pass

    def publish(self, sequence: int, received_s: float, q=None, quat=(1.0, 0.0, 0.0, 0.0)):
        q = np.asarray(GO2.default_pose) if q is None else q
        self.state = RobotState(
            sequence=sequence,
            received_s=received_s,
            quat_wxyz=np.asarray(quat, float),
            gyro_body=np.zeros(3),
            accel_body=np.zeros(3),
            q=np.asarray(q, float),
            dq=np.zeros(12),
            tau_est=np.zeros(12),
        )


class NaNSession:
    def step(self, obs):
        return np.full(12, np.nan, dtype=np.float32)

    def reset(self):
        pass


@pytest.fixture
def runtime(exported):
    bridge = FakeBridge()
    rt = Runtime(load_artifact(exported), bridge, RuntimeConfig(zero_torque_s=0.5, ramp_s=2.0))
    rt.t0 = 0.0  # controller time = the received_s the fake bridge stamps
    return rt, bridge


def _run(rt, bridge, start_s, end_s, q=None, seq0=1000):
    """Tick the PD loop every ms and the policy every 20 ms, with a fresh state at every ms."""
    ticks = round((end_s - start_s) * 1000)
    for k in range(ticks):
        now = start_s + k * 1e-3
        bridge.publish(seq0 + round(now * 1000), now, q=q)
        rt.pd_tick(now)
        if k % 20 == 0:
            rt.policy_tick(now)


def test_start_up_is_zero_torque_then_a_smooth_ramp_to_the_default_pose(runtime):
    rt, bridge = runtime
    lying = np.asarray(GO2.default_pose) + 0.6
    _run(rt, bridge, 0.0, 0.4, q=lying)
    assert rt.phase == "zero_torque"
    last = bridge.sent[-1]
    assert np.all(last.kp == 0) and np.all(last.kd == 0) and np.all(last.tau == 0)
    _run(rt, bridge, 0.4, 1.5, q=lying)  # ramp began at 0.5 s: at 1.5 s it is half way (smoothstep(0.5) = 0.5)
    assert rt.phase == "ramp"
    np.testing.assert_allclose(bridge.sent[-1].q, lying - 0.3, atol=0.01)
    np.testing.assert_allclose(bridge.sent[-1].kp, GO2.kp)
    _run(rt, bridge, 1.5, 2.7)
    assert rt.phase == "running" and rt.mode is ControlMode.POLICY
    assert rt.policy_steps > 0 and rt.events == []


def test_stale_state_damps_within_one_policy_period_and_needs_a_rearm(runtime):
    rt, bridge = runtime
    _run(rt, bridge, 0.0, 3.0)
    assert rt.mode is ControlMode.POLICY
    last_fresh = bridge.state.received_s
    for k in range(200):  # the same sample again and again: nothing fresh
        now = 3.0 + k * 1e-3
        rt.pd_tick(now)
        if rt.mode is ControlMode.DAMPING:
            break
    (event,) = rt.events
    assert event.cause == "stale_state" and event.to_mode == "damping"
    assert 0.06 < event.time_s - last_fresh <= 0.06 + 0.02  # 3 policy periods, caught within one more
    assert np.all(bridge.sent[-1].kp == 0) and np.all(bridge.sent[-1].kd > 0)
    assert rt.rearm(3.1) is False  # still stale: no re-arm
    _run(rt, bridge, 3.2, 5.0, seq0=10_000)  # fresh, calm states again for 1.8 s: still damping
    assert rt.mode is ControlMode.DAMPING and len(rt.events) == 1
    assert rt.rearm(5.0) is True and rt.mode is ControlMode.POLICY
    assert rt.events[-1].cause == "rearm"
    steps = rt.policy_steps
    _run(rt, bridge, 5.0, 5.1, seq0=30_000)
    assert rt.policy_steps > steps


def test_a_nan_action_switches_to_damping(runtime):
    rt, bridge = runtime
    _run(rt, bridge, 0.0, 2.6)
    rt.session = NaNSession()
    _run(rt, bridge, 2.6, 2.7)
    assert rt.events[0].cause == "non_finite_action" and rt.mode is ControlMode.DAMPING
    assert all(np.all(np.isfinite(c.q)) for c in bridge.sent)


def test_runtime_pd_site_sends_the_pd_law_torque(exported):
    bridge = FakeBridge()
    rt = Runtime(load_artifact(exported), bridge, RuntimeConfig(zero_torque_s=0.0, ramp_s=0.0, pd_site="runtime"))
    rt.t0 = 0.0
    q = np.asarray(GO2.default_pose) + 0.05
    bridge.publish(1, 0.0, q=q)
    rt.pd_tick(0.0)
    for k in (1, 2):  # zero torque -> ramp (of zero length) -> running, targets at the default pose
        bridge.publish(1 + k, k * 1e-3, q=q)
        rt.pd_tick(k * 1e-3)
    assert rt.phase == "running"
    command = bridge.sent[-1]
    expected = pd_torque(q, np.zeros(12), GO2.default_pose, GO2.kp, GO2.kd, rt._tau_ff, GO2.torque_limit)
    np.testing.assert_allclose(command.tau, expected)
    assert np.all(command.kp == 0) and np.all(command.kd == 0)
    np.testing.assert_allclose(command.tau[:3], -40 * 0.05 + rt._tau_ff[:3], rtol=1e-9)


def test_an_exception_in_a_loop_is_a_safety_event(exported):
    class Broken(FakeBridge):
        def latest_state(self):
            raise OSError("link lost")

    rt = Runtime(load_artifact(exported), Broken(), RuntimeConfig())
    rt.start()
    time.sleep(0.2)
    rt.stop()
    assert any(e.cause.startswith("exception: OSError: link lost") for e in rt.events)
    assert rt.errors


def test_a_manifest_for_another_robot_description_is_refused(exported):
    artifact = load_artifact(exported)
    manifest = dict(artifact.manifest)
    manifest["robot"] = dict(manifest["robot"], kp=[20.0] * 12)
    with pytest.raises(ArtifactError, match="robot.kp"):
        robot_for(dataclasses.replace(artifact, manifest=manifest))


def test_gravity_feedforward_equals_the_training_env():
    from ogi.envs import WalkConfig, WalkVecEnv
    from ogi.envs.config import RandomizationConfig

    env = WalkVecEnv(WalkConfig(num_envs=2, randomization=RandomizationConfig(enabled=False)))
    env.reset(seed=3)
    feedforward = GravityFeedforward(GO2)
    for i in range(2):
        quat = env.rig.base_pose()[i, 3:7]
        np.testing.assert_allclose(feedforward(quat, env.rig.joint_pos()[i]), env.tau_ff[i], atol=1e-9)
    assert np.abs(env.tau_ff).max() > 0.5  # the legs carry real loads


def test_a_tilt_beyond_the_limit_crouches_with_the_fallback_targets(runtime):
    from ogi.controllers.fallback import fallback_command

    rt, bridge = runtime
    _run(rt, bridge, 0.0, 2.6)
    tilt = 0.9  # rad about x, beyond the supervisor's 0.7
    quat = (np.cos(tilt / 2), np.sin(tilt / 2), 0.0, 0.0)
    q = np.asarray(GO2.default_pose)
    for k in range(40):
        now = 2.6 + k * 1e-3
        bridge.publish(5000 + k, now, q=q, quat=quat)
        rt.pd_tick(now)
        if k % 20 == 0:
            rt.policy_tick(now)
    (event,) = rt.events
    assert event.cause == "tilt" and event.to_mode == "crouch" and rt.mode is ControlMode.CROUCH
    expected = fallback_command(
        ControlMode.CROUCH, GO2, rt.cfg.fallback, q=q, q_at_switch=q, t_in_mode_s=now - event.time_s
    )
    np.testing.assert_allclose(bridge.sent[-1].q, expected[0], atol=1e-6)
    np.testing.assert_allclose(bridge.sent[-1].kp, expected[1])


class RecordingSession:
    def __init__(self):
        self.seen = []

    def step(self, obs):
        self.seen.append(np.array(obs))
        return np.zeros(12, dtype=np.float32)

    def reset(self):
        pass


def test_a_policy_with_a_gait_clock_reads_the_clock_the_env_trained_it_on(exported):
    from ogi.deploy.export import observation_fields
    from ogi.envs import gait

    artifact = load_artifact(exported)
    fields = observation_fields(12, depth_pixels=0, gait_clock=True)
    assert fields[-1]["name"] == "gait_phase" and fields[-1]["offset"] == 45 and fields[-1]["size"] == 2
    manifest = dict(
        artifact.manifest,
        observation=dict(artifact.manifest["observation"], fields=fields, size=47),
        control=dict(
            artifact.manifest["control"],
            gait={
                "period_s": 0.8,
                "stance_fraction": 0.5,
                "swing_height_m": 0.08,
                "swing_joint_offsets_rad": {"calf": -0.5},
            },
        ),
    )
    bridge = FakeBridge()
    cfg = RuntimeConfig(zero_torque_s=0.5, ramp_s=2.0, command=(0.5, 0.0, 0.0))
    rt = Runtime(dataclasses.replace(artifact, manifest=manifest), bridge, cfg)
    rt.t0 = 0.0
    rt.session = recorder = RecordingSession()
    _run(rt, bridge, 0.0, 3.0)
    assert len(recorder.seen) > 10
    # the k-th policy step since running began sees the clock an env episode shows at its k-th step
    expected = gait.clock_features(gait.phase(np.arange(len(recorder.seen)), 0.02, 0.8))
    np.testing.assert_allclose(np.stack(recorder.seen)[:, -2:], expected, atol=1e-6)
    # the targets carry the swinging legs' offsets of the clock the last action was chosen on
    clock = gait.phase(np.array([len(recorder.seen) - 1]), 0.02, 0.8)
    offsets = gait.swing_offset_matrix(rt.gait, GO2.joint_names, GO2.foot_sites)
    expected_q = (
        np.asarray(GO2.default_pose) + gait.reference_offsets(clock, np.array([cfg.command]), rt.gait, offsets)[0]
    )
    np.testing.assert_allclose(rt._q_des, expected_q)
    assert np.abs(offsets).sum() == 2.0 and np.abs(rt._q_des - GO2.default_pose).max() > 0.1  # one calf per foot


def test_held_joints_are_held_by_the_runtime_as_in_the_env(exported):
    artifact = load_artifact(exported)
    manifest = dict(artifact.manifest, action=dict(artifact.manifest["action"], held_joints=["FR_calf_joint"]))
    bridge = FakeBridge()
    rt = Runtime(dataclasses.replace(artifact, manifest=manifest), bridge, RuntimeConfig(zero_torque_s=0.5, ramp_s=2.0))
    rt.t0 = 0.0

    class Ones:
        def step(self, obs):
            return np.ones(12, dtype=np.float32)

        def reset(self):
            pass

    rt.session = Ones()
    _run(rt, bridge, 0.0, 3.0)
    calf = list(GO2.joint_names).index("FR_calf_joint")
    assert rt._q_des[calf] == GO2.default_pose[calf]
    assert rt._q_des[calf - 1] == pytest.approx(GO2.default_pose[calf - 1] + rt.action_scale)

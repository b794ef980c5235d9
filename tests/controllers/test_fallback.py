import numpy as np
import pytest

from ogi.controllers.fallback import ControlMode, FallbackConfig, crouch_pose, fallback_command, fallback_torque
from ogi.robots import get_robot
from ogi.validation import ConfigError

GO2 = get_robot("go2")


def test_crouch_starts_at_switch_pose_and_ends_at_crouch_pose_with_stiff_then_soft_gains():
    cfg = FallbackConfig(crouch_duration_s=0.4, stiff_s=1.0)
    start = np.asarray(GO2.default_pose) + 0.05
    q = start.copy()
    q0, kp0, kd0 = fallback_command(ControlMode.CROUCH, GO2, cfg, q=q, q_at_switch=start, t_in_mode_s=0.0)
    np.testing.assert_allclose(q0, start)
    np.testing.assert_allclose(kp0, 1.5 * np.asarray(GO2.kp))
    np.testing.assert_allclose(kd0, 2.5 * np.asarray(GO2.kd))
    # halfway: smoothstep(0.5) = 0.5
    q_half, _, _ = fallback_command(ControlMode.CROUCH, GO2, cfg, q=q, q_at_switch=start, t_in_mode_s=0.2)
    np.testing.assert_allclose(q_half, start + 0.5 * (crouch_pose(GO2, cfg) - start))
    q_end, kp_end, kd_end = fallback_command(ControlMode.CROUCH, GO2, cfg, q=q, q_at_switch=start, t_in_mode_s=1.5)
    np.testing.assert_allclose(q_end, crouch_pose(GO2, cfg))
    np.testing.assert_allclose(kp_end, 1.0 * np.asarray(GO2.kp))
    np.testing.assert_allclose(kd_end, 2.0 * np.asarray(GO2.kd))


def test_crouch_pose_is_lower_and_inside_limits():
    pose = crouch_pose(GO2, FallbackConfig())
    low, high = np.asarray(GO2.joint_limits).T
    assert np.all(pose >= low) and np.all(pose <= high)
    # go2 calves (every third joint) fold further: -1.5 * 1.25 = -1.875 rad
    np.testing.assert_allclose(pose[2::3], -1.875)
    explicit = crouch_pose(GO2, FallbackConfig(crouch_pose=tuple([0.0, 1.0, -9.0] * 4)))
    np.testing.assert_allclose(explicit[2::3], low[2::3])  # clipped to the calf limit


def test_damping_has_zero_stiffness_and_positive_damping():
    q = np.asarray(GO2.default_pose)
    q_des, kp, kd = fallback_command(ControlMode.DAMPING, GO2, FallbackConfig(), q=q, q_at_switch=q, t_in_mode_s=3.0)
    assert np.all(kp == 0.0) and np.all(kd > 0.0)
    tau = fallback_torque(GO2, q + 0.3, np.full(12, 2.0), q_des, kp, kd)
    np.testing.assert_allclose(tau, -3.0 * np.asarray(GO2.kd) * 2.0)


def test_fallback_torques_stay_within_limits_for_random_states():
    rng = np.random.default_rng(0)
    low, high = np.asarray(GO2.joint_limits).T
    limit = np.asarray(GO2.torque_limit)
    cfg = FallbackConfig(stiff_kp_scale=20.0)  # stiff enough that unclipped torques would exceed the limits
    exceeded = False
    for _ in range(200):
        q = rng.uniform(low - 0.3, high + 0.3)
        qd = rng.normal(0, 30, 12)
        switch = rng.uniform(low, high)
        t = rng.uniform(0, 3)
        for mode in (ControlMode.CROUCH, ControlMode.DAMPING):
            q_des, kp, kd = fallback_command(mode, GO2, cfg, q=q, q_at_switch=switch, t_in_mode_s=t)
            raw = kp * (q_des - q) - kd * qd
            exceeded |= bool(np.any(np.abs(raw) > limit))
            tau = fallback_torque(GO2, q, qd, q_des, kp, kd)
            assert np.all(np.abs(tau) <= limit + 1e-12)
            assert np.all(q_des >= low - 1e-12) or mode is ControlMode.DAMPING
    assert exceeded  # the clamp was exercised


def test_batched_command_matches_single():
    rng = np.random.default_rng(1)
    q = rng.normal(0, 0.2, (5, 12)) + np.asarray(GO2.default_pose)
    t = np.array([0.0, 0.1, 0.5, 1.2, 4.0])
    batched = fallback_command(ControlMode.CROUCH, GO2, FallbackConfig(), q=q, q_at_switch=q, t_in_mode_s=t)
    for i in range(5):
        single = fallback_command(ControlMode.CROUCH, GO2, FallbackConfig(), q=q[i], q_at_switch=q[i], t_in_mode_s=t[i])
        for a, b in zip(batched, single):
            np.testing.assert_allclose(a[i], b)


def test_bad_input_names_the_field():
    with pytest.raises(ConfigError, match="stiff_s"):
        FallbackConfig(crouch_duration_s=1.0, stiff_s=0.5)
    with pytest.raises(ConfigError, match="damping_kd_scale"):
        FallbackConfig(damping_kd_scale=0.0)
    with pytest.raises(ConfigError, match="crouch_pose"):
        crouch_pose(GO2, FallbackConfig(crouch_pose=(0.0, 1.0)))
    q = np.zeros(12)
    with pytest.raises(ValueError, match="no fallback command"):
        fallback_command(ControlMode.POLICY, GO2, FallbackConfig(), q=q, q_at_switch=q, t_in_mode_s=0.0)
    with pytest.raises(ValueError, match="q_at_switch"):
        fallback_command(ControlMode.CROUCH, GO2, FallbackConfig(), q=q, q_at_switch=np.zeros(3), t_in_mode_s=0.0)
    with pytest.raises(ValueError, match="t_in_mode_s"):
        fallback_command(ControlMode.CROUCH, GO2, FallbackConfig(), q=q, q_at_switch=q, t_in_mode_s=-1.0)

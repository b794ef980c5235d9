import numpy as np
import pytest

from ogi.controllers.fallback import ControlMode
from ogi.controllers.supervisor import SafetyEvent, SafetySupervisor, SupervisorConfig, tilt_rad
from ogi.validation import ConfigError

LEVEL = np.array([0.0, 0.0, -1.0])
ZERO3 = np.zeros(3)
NJ = 12


def good(sup: SafetySupervisor, t: float, **overrides) -> ControlMode:
    kwargs = dict(gravity_body=LEVEL, ang_vel_body=ZERO3, joint_vel=np.zeros(NJ), action=np.zeros(NJ))
    kwargs.update(overrides)
    return sup.check(t, **kwargs)


def tilted(angle_rad: float) -> np.ndarray:
    return np.array([np.sin(angle_rad), 0.0, -np.cos(angle_rad)])


def test_tilt_from_gravity():
    assert tilt_rad(LEVEL) == pytest.approx(0.0)
    assert tilt_rad(tilted(0.3)) == pytest.approx(0.3)
    assert tilt_rad(2 * tilted(1.2)) == pytest.approx(1.2)


def test_stays_in_policy_within_limits():
    sup = SafetySupervisor(SupervisorConfig(), NJ)
    for k in range(50):
        assert good(sup, 0.02 * k, gravity_body=tilted(0.69), ang_vel_body=np.array([0, 0, 5.9])) is ControlMode.POLICY
    assert sup.events == []


@pytest.mark.parametrize(
    ("overrides", "cause", "mode"),
    [
        (dict(gravity_body=tilted(0.8)), "tilt", ControlMode.CROUCH),
        (dict(ang_vel_body=np.array([4.0, 4.0, 4.0])), "ang_vel", ControlMode.CROUCH),
        (dict(joint_vel=np.r_[np.zeros(11), -31.0]), "joint_vel", ControlMode.CROUCH),
        (dict(action=np.r_[np.zeros(11), np.nan]), "non_finite_action", ControlMode.DAMPING),
        (dict(joint_vel=np.r_[np.zeros(11), np.inf]), "non_finite_state", ControlMode.DAMPING),
        (dict(fall_probability=0.7), "fall_predicted", ControlMode.CROUCH),
    ],
)
def test_each_cause_switches_once_and_is_recorded(overrides, cause, mode):
    sup = SafetySupervisor(SupervisorConfig(), NJ)
    assert good(sup, 0.0) is ControlMode.POLICY
    assert good(sup, 0.02, **overrides) is mode
    assert sup.events == [SafetyEvent(0.02, "policy", mode.value, cause)]
    # never back by itself, even with good signals for a long time
    for k in range(200):
        assert good(sup, 0.04 + 0.02 * k) is mode
    assert len(sup.events) == 1
    assert sup.time_in_mode(1.02) == pytest.approx(1.0)


def test_predictor_below_threshold_does_not_fire():
    sup = SafetySupervisor(SupervisorConfig(fall_probability_threshold=0.5), NJ)
    assert good(sup, 0.0, fall_probability=0.49) is ControlMode.POLICY
    assert good(sup, 0.02, fall_probability=0.5) is ControlMode.CROUCH


def test_external_trip_and_escalation():
    sup = SafetySupervisor(SupervisorConfig(), NJ)
    sup.trip(1.0, "bridge_loss", ControlMode.CROUCH)
    sup.trip(1.5, "loop_overrun")  # crouch -> damping
    sup.trip(1.6, "stale_state")  # already damping: no switch
    assert sup.mode is ControlMode.DAMPING
    assert [(e.from_mode, e.to_mode, e.cause) for e in sup.events] == [
        ("policy", "crouch", "bridge_loss"),
        ("crouch", "damping", "loop_overrun"),
    ]
    with pytest.raises(ValueError, match="fallback mode"):
        sup.trip(2.0, "x", ControlMode.POLICY)
    with pytest.raises(ValueError, match="cause"):
        sup.trip(2.0, "")


def test_rearm_refused_while_unstable_and_accepted_after_stable_time():
    sup = SafetySupervisor(SupervisorConfig(rearm_stable_s=1.0), NJ)
    good(sup, 0.0, gravity_body=tilted(1.0))
    assert sup.mode is ControlMode.CROUCH
    # still tilted: refused
    for k in range(1, 100):
        good(sup, 0.02 * k, gravity_body=tilted(0.9))
    assert not sup.rearm(2.0)
    # stable from t = 2.0; refused before 3.0, and an excursion restarts the clock
    for k in range(0, 40):
        good(sup, 2.0 + 0.02 * k)
    assert not sup.rearm(2.78)
    good(sup, 2.8, ang_vel_body=np.array([0, 0, 10.0]))
    assert sup.mode is ControlMode.CROUCH  # a violation in a fallback mode adds no event
    for k in range(1, 60):
        good(sup, 2.8 + 0.02 * k)
    assert not sup.rearm(3.7)
    for k in range(60, 80):
        good(sup, 2.8 + 0.02 * k)
    assert sup.rearm(3.9)
    assert sup.mode is ControlMode.POLICY
    assert [e.cause for e in sup.events] == ["tilt", "rearm"]
    assert sup.events[-1] == SafetyEvent(3.9, "crouch", "policy", "rearm")
    assert sup.rearm(4.0)  # already in policy: nothing recorded
    assert len(sup.events) == 2


def test_trip_restarts_the_stable_clock():
    sup = SafetySupervisor(SupervisorConfig(rearm_stable_s=0.5), NJ)
    for k in range(100):
        good(sup, 0.02 * k)  # stable for 2 s
    sup.trip(2.0, "exception")
    assert not sup.rearm(2.1)
    for k in range(1, 30):
        good(sup, 2.0 + 0.02 * k)
    assert sup.rearm(2.58)


def test_reset_returns_to_policy_and_keeps_events():
    sup = SafetySupervisor(SupervisorConfig(), NJ)
    good(sup, 0.0, fall_probability=0.9)
    sup.reset()
    assert sup.mode is ControlMode.POLICY and len(sup.events) == 1


def test_bad_config_and_shapes_name_the_field():
    with pytest.raises(ConfigError, match="max_tilt_rad"):
        SupervisorConfig(max_tilt_rad=-1.0)
    with pytest.raises(ConfigError, match="fall_probability_threshold"):
        SupervisorConfig(fall_probability_threshold=1.5)
    with pytest.raises(ConfigError, match="limit_mode"):
        SupervisorConfig(limit_mode=ControlMode.POLICY)
    assert SupervisorConfig(limit_mode="damping").limit_mode is ControlMode.DAMPING
    sup = SafetySupervisor(SupervisorConfig(), NJ)
    with pytest.raises(ValueError, match="joint_vel"):
        good(sup, 0.0, joint_vel=np.zeros(3))

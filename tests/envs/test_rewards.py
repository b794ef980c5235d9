import numpy as np
import pytest

from ogi.envs import REWARD_TERMS, RewardComposer, RewardConfig, Signals
from ogi.envs import rewards as R


def make_signals(**overrides) -> Signals:
    n, j, f = 2, 3, 2
    base = dict(
        command=np.zeros((n, 3)),
        lin_vel_body=np.zeros((n, 3)),
        ang_vel_body=np.zeros((n, 3)),
        projected_gravity=np.tile([0.0, 0.0, -1.0], (n, 1)),
        base_height=np.full(n, 0.3),
        base_height_target=0.3,
        joint_pos_rel=np.zeros((n, j)),
        joint_pos=np.zeros((n, j)),
        joint_vel=np.zeros((n, j)),
        joint_acc=np.zeros((n, j)),
        torque=np.zeros((n, j)),
        action=np.zeros((n, j)),
        last_action=np.zeros((n, j)),
        soft_joint_low=np.full(j, -1.0),
        soft_joint_high=np.full(j, 1.0),
        pose_weights=np.ones(j),
        foot_contact=np.zeros((n, f), bool),
        foot_first_contact=np.zeros((n, f), bool),
        foot_air_time_s=np.zeros((n, f)),
        foot_vel_xy=np.zeros((n, f, 2)),
        foot_height=np.zeros((n, f)),
        foot_swing_peak=np.zeros((n, f)),
        joint_power=np.zeros((n, j)),
        undesired_contacts=np.zeros(n),
        fell=np.zeros(n, bool),
        gait_pairs=np.zeros((0, 2), dtype=np.int64),
    )
    base.update(overrides)
    return Signals(**base)


def test_tracking_terms_by_hand():
    s = make_signals(
        command=np.array([[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]),
        lin_vel_body=np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]),
        ang_vel_body=np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
    )
    # |(1,0) - (0.5,0.5)|^2 = 0.5 -> exp(-0.5 / 0.25) = exp(-2)
    np.testing.assert_allclose(R.reward_tracking_lin_vel(s, 0.25), [np.exp(-2.0), 1.0])
    # (0.5 - 0)^2 = 0.25 -> exp(-1)
    np.testing.assert_allclose(R.reward_tracking_ang_vel(s, 0.25), [np.exp(-1.0), 1.0])


def test_stability_and_effort_costs_by_hand():
    s = make_signals(
        lin_vel_body=np.array([[0.0, 0.0, 0.3], [0.0, 0.0, 0.0]]),
        ang_vel_body=np.array([[1.0, 2.0, 9.0], [0.0, 0.0, 0.0]]),
        projected_gravity=np.array([[0.6, 0.0, -0.8], [0.0, 0.0, -1.0]]),
        base_height=np.array([0.2, 0.3]),
        torque=np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]]),
        joint_acc=np.array([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        action=np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
        last_action=np.array([[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]),
    )
    np.testing.assert_allclose(R.cost_lin_vel_z(s), [0.09, 0.0])
    np.testing.assert_allclose(R.cost_ang_vel_xy(s), [5.0, 0.0])
    np.testing.assert_allclose(R.cost_orientation(s), [0.36, 0.0])
    np.testing.assert_allclose(R.cost_base_height(s), [0.01, 0.0])
    np.testing.assert_allclose(R.cost_torques(s), [9.0, 0.0])
    np.testing.assert_allclose(R.cost_joint_acc(s), [100.0, 0.0])
    np.testing.assert_allclose(R.cost_action_rate(s), [5.0, 0.0])  # 1^2 + 2^2


def test_feet_terms_by_hand():
    s = make_signals(
        command=np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        foot_first_contact=np.array([[True, False], [True, True]]),
        foot_air_time_s=np.array([[0.3, 0.0], [0.5, 0.5]]),
        foot_contact=np.array([[True, False], [True, True]]),
        foot_vel_xy=np.array([[[0.1, 0.2], [5.0, 5.0]], [[0.0, 0.0], [1.0, 0.0]]]),
    )
    # env 0 moving: (0.3 - 0.1) = 0.2; env 1 asked to stand: 0
    np.testing.assert_allclose(R.reward_feet_air_time(s, 0.1), [0.2, 0.0])
    # only feet in contact slip: 0.01 + 0.04 = 0.05; env 1: 0 + 1
    np.testing.assert_allclose(R.cost_foot_slip(s), [0.05, 1.0])


def test_swing_and_energy_terms_by_hand():
    s = make_signals(
        foot_height=np.array([[0.08, 0.0], [0.18, 0.0]]),
        foot_vel_xy=np.array([[[3.0, 4.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]]),
        foot_first_contact=np.array([[True, False], [True, True]]),
        foot_swing_peak=np.array([[0.04, 0.0], [0.08, 0.16]]),
        joint_power=np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]]),
    )
    # |0.08-0.08| sqrt(5) + |0-0.08| sqrt(0) = 0; env 1: |0.18-0.08| sqrt(1) = 0.1
    np.testing.assert_allclose(R.cost_feet_clearance(s, 0.08), [0.0, 0.1], atol=1e-12)
    # (0.04/0.08 - 1)^2 = 0.25; env 1: 0 + (0.16/0.08 - 1)^2 = 1
    np.testing.assert_allclose(R.cost_feet_height(s, 0.08), [0.25, 1.0])
    np.testing.assert_allclose(R.cost_energy(s), [3.5, 0.0])


def test_limit_pose_and_event_terms_by_hand():
    s = make_signals(
        joint_pos=np.array([[1.5, -1.2, 0.0], [0.0, 0.0, 0.0]]),
        joint_pos_rel=np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]]),
        pose_weights=np.array([1.0, 1.0, 0.1]),
        undesired_contacts=np.array([2, 0]),
        fell=np.array([True, False]),
    )
    np.testing.assert_allclose(R.cost_joint_limits(s), [0.7, 0.0])  # 0.5 above + 0.2 below
    np.testing.assert_allclose(R.reward_pose(s), [np.exp(-1.1), 1.0])
    np.testing.assert_allclose(R.cost_stand_still(s), [2.0, 0.0])  # command is zero: sum |q - q0|
    np.testing.assert_allclose(R.cost_undesired_contacts(s), [2.0, 0.0])
    np.testing.assert_allclose(R.cost_termination(s), [1.0, 0.0])


def test_costs_are_non_negative_on_random_signals():
    rng = np.random.default_rng(0)
    s = make_signals(
        **{
            name: rng.normal(size=getattr(make_signals(), name).shape)
            for name in ("lin_vel_body", "ang_vel_body", "torque", "joint_acc", "action", "joint_pos", "joint_pos_rel")
        }
    )
    cfg = RewardConfig()
    for name, term in REWARD_TERMS.items():
        if hasattr(R, f"cost_{name}"):
            assert (term(s, cfg) >= 0).all(), name


def test_composer_total_equals_sum_of_weighted_terms():
    rng = np.random.default_rng(1)
    s = make_signals(command=rng.normal(size=(2, 3)), torque=rng.normal(size=(2, 3)), fell=np.array([True, False]))
    composer = RewardComposer(RewardConfig(), ctrl_dt_s=0.02)
    total, terms = composer(s)
    np.testing.assert_allclose(total, sum(terms.values()))
    # weight carries the sign and is scaled by the policy period
    np.testing.assert_allclose(terms["reward/termination"], [-1.0 * 0.02, 0.0])


def test_only_positive_clips_before_the_termination_penalty():
    s = make_signals(torque=np.array([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), fell=np.array([True, False]))
    weights = {"torques": -1.0, "pose": 1.0, "termination": -10.0}
    clipped = RewardComposer(RewardConfig(weights=weights, only_positive=True), ctrl_dt_s=0.02)
    total, terms = clipped(s)
    # env 0: -1 * 1e4 * 0.02 + 1 * 0.02 < 0 -> clipped to 0, then the termination -10 * 0.02 = -0.2
    np.testing.assert_allclose(total, [-0.2, 0.02])
    np.testing.assert_allclose(total, sum(terms.values()))
    assert (terms["reward/clip"] >= 0).all()
    raw, raw_terms = RewardComposer(RewardConfig(weights=weights, only_positive=False), ctrl_dt_s=0.02)(s)
    assert "reward/clip" not in raw_terms
    np.testing.assert_allclose(raw, [-200.0 + 0.02 - 0.2, 0.02])


def test_unknown_reward_term_raises_at_construction():
    with pytest.raises(ValueError, match="unknown reward terms"):
        RewardComposer(RewardConfig(weights={"tracking_lin_vel": 1.0, "fly": 2.0}), ctrl_dt_s=0.02)


def test_trot_rewards_a_diagonal_pair_stance_only_while_moving():
    pairs = np.array([[0, 3], [1, 2]])  # FR+RL, FL+RR
    contact = np.array(
        [
            [1, 0, 0, 1],  # trot stance of one diagonal pair: 1
            [1, 1, 1, 1],  # all four down (a walk's overlap): pairs in phase but not alternating: 0
            [1, 1, 0, 0],  # front pair down (a bound): pairs out of phase: 0
            [1, 0, 1, 1],  # one pair down, the other half down: 0.5 * (1 + 0) * 1 = 0.5
            [1, 0, 0, 1],  # a trot stance while commanded to stand: 0
        ],
        dtype=bool,
    )
    n = len(contact)
    command = np.tile([0.5, 0.0, 0.0], (n, 1))
    command[4] = 0.0
    s = make_signals(
        command=command,
        foot_contact=contact,
        gait_pairs=pairs,
        lin_vel_body=np.zeros((n, 3)),
        ang_vel_body=np.zeros((n, 3)),
        projected_gravity=np.tile([0.0, 0.0, -1.0], (n, 1)),
        base_height=np.full(n, 0.3),
    )
    np.testing.assert_allclose(R.reward_trot(s), [1.0, 0.0, 0.0, 0.5, 0.0])
    # without gait pairs the term is zero
    np.testing.assert_allclose(R.reward_trot(make_signals(foot_contact=np.ones((2, 2), bool))), [0.0, 0.0])


def test_a_bipeds_trot_is_alternating_single_stance():
    contact = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=bool)  # single, single, double support, flight
    s = make_signals(
        command=np.tile([0.5, 0.0, 0.0], (4, 1)), foot_contact=contact, gait_pairs=np.array([[0, 0], [1, 1]])
    )
    np.testing.assert_allclose(R.reward_trot(s), [1.0, 1.0, 0.0, 0.0])


def test_feet_air_time_counts_while_turning_in_place():
    s = make_signals(
        command=np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]),
        foot_first_contact=np.array([[True, False], [True, False]]),
        foot_air_time_s=np.array([[0.3, 0.0], [0.3, 0.0]]),
    )
    np.testing.assert_allclose(R.reward_feet_air_time(s, 0.2), [0.1, 0.0])


def test_gait_contact_counts_feet_where_the_clock_wants_them():
    contact = np.array([[1, 0], [1, 1], [0, 1]], dtype=bool)
    stance = np.array([[1, 0], [1, 0], [1, 0]], dtype=bool)
    np.testing.assert_allclose(
        R.reward_gait_contact(make_signals(foot_contact=contact, gait_stance=stance)), [1.0, 0.5, 0.0]
    )
    assert not R.reward_gait_contact(make_signals(foot_contact=contact)).any()  # no clock: no reward


def test_gait_swing_is_one_at_the_clocks_foot_height_and_falls_off_with_the_error():
    target = np.array([[0.0, 0.08], [0.0, 0.08]])
    height = np.array([[0.0, 0.08], [0.0, 0.0]])  # on the arch; the swing foot left on the ground
    out = R.reward_gait_swing(make_signals(foot_height=height, gait_foot_height=target))
    np.testing.assert_allclose(out, [1.0, np.exp(-0.0064 / 0.01)])

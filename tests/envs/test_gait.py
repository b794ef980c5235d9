"""The gait clock: phases, stance, the swing arch and the swing-leg offsets, as the env and the runtime use them."""

import numpy as np
import pytest

from ogi.envs import WalkConfig, WalkVecEnv, gait
from ogi.envs.config import GaitConfig
from ogi.robots import get_robot
from ogi.validation import ConfigError

CFG = GaitConfig(
    enabled=True, period_s=0.8, stance_fraction=0.5, swing_joint_offsets_rad={"knee": 0.6, "hip_pitch": -0.3}
)


def test_the_feet_take_turns_and_stand_together_when_told_to_stand():
    clock = np.array([0.0, 0.25, 0.75])
    walking = np.tile([0.5, 0.0, 0.0], (3, 1))
    np.testing.assert_array_equal(gait.stance(clock, walking, CFG, 2), [[True, False], [True, False], [False, True]])
    np.testing.assert_array_equal(gait.stance(clock, np.zeros((3, 3)), CFG, 2), np.ones((3, 2), bool))
    # a quarter into its swing the right foot is at sin(pi / 2) of the arch: its top
    np.testing.assert_allclose(gait.swing_arch(clock, walking, CFG, 2)[1], [0.0, 1.0], atol=1e-12)


def test_swing_offsets_lift_only_the_swinging_leg():
    biped = get_robot("biped")
    offsets = gait.swing_offset_matrix(CFG, biped.joint_names, biped.foot_sites)
    names = list(biped.joint_names)
    assert offsets[0, names.index("left_knee_joint")] == 0.6 and offsets[0, names.index("right_knee_joint")] == 0.0
    assert (
        offsets[1, names.index("right_hip_pitch_joint")] == -0.3
        and offsets[1, names.index("left_hip_pitch_joint")] == 0
    )
    assert not offsets[:, names.index("left_ankle_roll_joint")].any()
    walking = np.tile([0.5, 0.0, 0.0], (2, 1))
    ref = gait.reference_offsets(np.array([0.25, 0.5]), walking, CFG, offsets)
    assert ref[0, names.index("right_knee_joint")] == pytest.approx(0.6) and ref[0, names.index("left_knee_joint")] == 0
    assert not ref[1].any()  # at 0.5 the left foot lands and the right one takes over: both on the ground
    assert not gait.reference_offsets(np.array([0.25]), np.zeros((1, 3)), CFG, offsets).any()  # standing


def test_the_env_adds_the_swing_offsets_to_the_targets_the_policy_acts_on():
    cfg = WalkConfig(robot="biped", num_envs=1, gait=CFG)
    env = WalkVecEnv(cfg)
    env.reset(seed=0)
    env.set_commands(np.array([[0.5, 0.0, 0.0]]))
    for _ in range(10):  # 0.2 s: the clock at 0.25, the right leg at the top of its swing
        env.step(np.zeros((1, 12)))
    knee = list(env.robot.joint_names).index("right_knee_joint")
    assert env.gait_reference()[0, knee] == pytest.approx(0.6)
    seen = []
    set_targets = env.rig.set_targets
    env.rig.set_targets = lambda q_des, tau_ff: (seen.append(q_des.copy()), set_targets(q_des, tau_ff))
    env.step(np.zeros((1, 12)))
    assert seen[0][0, knee] == pytest.approx(env.default_pose[knee] + 0.6)


def test_bad_gait_settings_are_refused_with_the_field_named():
    with pytest.raises(ConfigError, match="gait.swing_joint_offsets_rad.knee"):
        GaitConfig(swing_joint_offsets_rad={"knee": 3.0})
    with pytest.raises(ConfigError, match="gait.stance_fraction"):
        GaitConfig(stance_fraction=1.2)

import dataclasses

import mujoco
import numpy as np
import pytest

from ogi.robots import STAND_KEY, RobotSpecError, get_robot, instrument
from ogi.robots.go2 import GO2


@pytest.fixture(scope="module")
def go2_model():
    return instrument(GO2.build(), GO2).compile()


def test_go2_matches_public_dimensions(go2_model):
    m = go2_model
    assert m.body_subtreemass[m.body("base").id] == pytest.approx(15.205, abs=0.01)
    assert m.body_mass[m.body("base").id] == pytest.approx(6.921)
    # thigh and calf lengths: 0.213 m between joint anchors and to the foot
    assert np.linalg.norm(m.body_pos[m.body("FL_calf").id]) == pytest.approx(0.213)
    assert np.linalg.norm(m.body_pos[m.body("FL_foot").id]) == pytest.approx(0.213)
    np.testing.assert_allclose(m.body_pos[m.body("FR_hip").id], [0.1934, -0.0465, 0.0])


def test_action_order_is_sdk_motor_order_and_mapped_by_name(go2_model):
    m = go2_model
    assert GO2.joint_names[:3] == ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint")
    assert GO2.joint_names[3:6] == ("FL_hip_joint", "FL_thigh_joint", "FL_calf_joint")
    # the body tree is built FL first, so qpos order differs from action order
    qpos_order = np.argsort([m.jnt_qposadr[m.joint(j).id] for j in GO2.joint_names])
    assert GO2.joint_names[qpos_order[0]] == "FL_hip_joint"


def test_instrumented_robot_has_named_actuators_sensors_and_stand_key(go2_model):
    m = go2_model
    assert m.nu == 24
    for name in ("imu_gyro", "imu_acc", "imu_quat", "FR_foot_touch", "base_contact", "FL_calf_contact"):
        m.sensor(name)
    limits = m.jnt_actfrcrange[[m.joint(j).id for j in GO2.joint_names]]
    np.testing.assert_allclose(limits[:, 1], GO2.torque_limit)
    data = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, data, m.key(STAND_KEY).id)
    mujoco.mj_kinematics(m, data)
    lowest = min(data.site_xpos[m.site(f).id, 2] for f in GO2.foot_sites) - 0.022
    assert 0.0 < lowest < 0.002  # feet just above the ground


@pytest.mark.parametrize(
    "change, field",
    [
        ({"kp": (-1.0,) + GO2.kp[1:]}, "kp"),
        ({"default_pose": GO2.default_pose[:-1]}, "default_pose"),
        ({"torque_limit": (0.0,) + GO2.torque_limit[1:]}, "torque_limit"),
        ({"joint_names": GO2.joint_names[:-1] + ("FR_hip_joint",)}, "joint_names"),
        ({"default_pose": (5.0,) + GO2.default_pose[1:]}, "default_pose"),
        ({"nominal_base_height": -0.3}, "nominal_base_height"),
    ],
)
def test_bad_robot_spec_names_the_field(change, field):
    with pytest.raises(RobotSpecError, match=f"field '{field}'"):
        dataclasses.replace(GO2, **change)


def test_missing_joint_in_model_is_a_clear_error():
    robot = dataclasses.replace(GO2, joint_names=("FR_hip_jiont",) + GO2.joint_names[1:], source="my_robot.toml")
    with pytest.raises(RobotSpecError, match=r"my_robot.toml.*'FR_hip_jiont'.*did you mean 'FR_hip_joint'"):
        instrument(robot.build(), robot)


def test_unknown_robot_name():
    with pytest.raises(KeyError, match="known robots: go2"):
        get_robot("dog")

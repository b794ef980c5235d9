"""Hand inverse kinematics: a reachable point is reached, in simulation too; an unreachable one says how far."""

import numpy as np
import pytest

from ogi.controllers.ik import solve_site_ik
from ogi.envs.wholebody import WholeBodyConfig, WholeBodyVecEnv
from tests.envs.test_wholebody import STILL

ARM = [f"right_{j}_joint" for j in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")]


@pytest.fixture(scope="module")
def env():
    env = WholeBodyVecEnv(WholeBodyConfig(task="reach", num_envs=1, walk=STILL), autoreset=False)
    yield env
    env.close()


def _ahead(env, forward_m, right_m, height_m):
    base = env.walk.rig.base_pose()[0]
    yaw = 2 * np.arctan2(base[6], base[3])
    point = base[:3] + forward_m * np.array([np.cos(yaw), np.sin(yaw), 0.0])
    point += right_m * np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    point[2] = height_m
    return point


def test_the_arm_solution_reaches_the_point_and_the_robot_touches_it(env):
    env.reset(seed=0)
    target = _ahead(env, 0.35, 0.2, 0.95)
    qpos = env.walk.batch.bind("qpos")[0].copy()
    result = solve_site_ik(env.walk.model, qpos, "right_grasp", target, ARM)
    assert result.error_m < 0.005
    env.place_goal([0], [target])
    names, robot = list(env.walk.robot.joint_names), env.walk.robot
    action = np.zeros((1, 23))
    arm = [names.index(j) for j in ARM]
    action[0, arm] = (result.joint_pos - np.asarray(robot.default_pose)[arm]) / robot.action_scale
    for _ in range(50):  # the PD carries the arm there; the task sees a touch
        _, _, terminated, _, info = env.step(action)
        if terminated[0]:
            break
    assert info["success"][0] and not info["fell"][0]


def test_an_unreachable_point_ends_near_it_and_says_how_far(env):
    env.reset(seed=0)
    target = _ahead(env, 1.5, 0.0, 1.0)  # beyond arm's reach: the legs must carry the hand there
    qpos = env.walk.batch.bind("qpos")[0].copy()
    result = solve_site_ik(env.walk.model, qpos, "right_grasp", target, ARM, max_iterations=200)
    assert 0.8 < result.error_m < 1.3
    low, high = env.walk.model.jnt_range[[env.walk.model.joint(j).id for j in ARM]].T
    assert ((result.joint_pos >= low) & (result.joint_pos <= high)).all()
    with pytest.raises(ValueError, match="finite world position"):
        solve_site_ik(env.walk.model, qpos, "right_grasp", [np.nan, 0.0, 1.0], ARM)


def test_with_the_waist_the_jaws_close_across_the_heading_at_table_height(env):
    import mujoco

    env.reset(seed=0)
    base = env.walk.rig.base_pose()[0]
    yaw = 2 * np.arctan2(base[6], base[3])
    across = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    target = _ahead(env, 0.35, 0.1, 0.75)
    qpos = env.walk.batch.bind("qpos")[0].copy()
    joints = ["waist_yaw_joint", *ARM]
    model = env.walk.model
    # from a grasping shape (upper arm turned in, elbow bent): from the arm hanging it stops at the elbow's limit
    qpos[model.jnt_qposadr[[model.joint(j).id for j in joints]]] = [0.0, -1.0, 0.0, -1.5, -1.0]
    result = solve_site_ik(
        env.walk.model, qpos, "right_grasp", target, joints, axis=([1.0, 0.0, 0.0], across), max_iterations=300
    )
    assert result.error_m < 0.005 and result.axis_error_rad < 0.03
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    data.qpos[model.jnt_qposadr[[model.joint(j).id for j in joints]]] = result.joint_pos
    mujoco.mj_kinematics(model, data)
    closing = data.site_xmat[model.site("right_grasp").id].reshape(3, 3)[:, 0]
    assert abs(closing @ across) > np.cos(0.03)  # the hand's closing axis lies across the heading
    assert np.linalg.norm(data.site_xpos[model.site("right_grasp").id] - target) < 0.005
    # a direction the hand cannot take there (its y axis straight down): the result says how far it stays
    down = solve_site_ik(model, qpos, "right_grasp", target, joints, axis=([0.0, 1.0, 0.0], [0.0, 0.0, -1.0]))
    data.qpos[model.jnt_qposadr[[model.joint(j).id for j in joints]]] = down.joint_pos
    mujoco.mj_kinematics(model, data)
    y_axis = data.site_xmat[model.site("right_grasp").id].reshape(3, 3)[:, 1]
    assert down.axis_error_rad == pytest.approx(np.arccos(min(1.0, abs(y_axis[2]))), abs=1e-6)
    assert down.error_m == pytest.approx(np.linalg.norm(data.site_xpos[model.site("right_grasp").id] - target))
    with pytest.raises(ValueError, match="non-zero 3-vector"):
        solve_site_ik(env.walk.model, qpos, "right_grasp", target, ARM, axis=([0.0, 0.0, 0.0], across))

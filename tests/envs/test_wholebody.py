"""Whole-body tasks: objects placed at random, programmatic success, a contact grasp that holds a box."""

import numpy as np
import pytest

from ogi.envs import WalkConfig
from ogi.envs.config import RandomizationConfig
from ogi.envs.wholebody import EDGE_INSET_M, TABLE_HALF_XY_M, TASK_OBS_SIZE, WholeBodyConfig, WholeBodyVecEnv
from ogi.validation import ConfigError

# a nominal robot standing still on PD alone: no drawn masses, gains or initial joint offsets to topple it
STILL = WalkConfig(randomization=RandomizationConfig(enabled=False, initial_joint_offset_rad=0.0))


def _joint(env, name):
    return list(env.walk.robot.joint_names).index(name)


def test_reach_targets_lie_beyond_arms_reach_and_a_touch_ends_the_episode_with_success():
    env = WholeBodyVecEnv(WholeBodyConfig(task="reach", num_envs=4, seed=0))
    obs, _ = env.reset(seed=1)
    start = env.walk.rig.base_pose()[:, :2]
    horizontal = np.linalg.norm(env.goal[:, :2] - start, axis=1)
    assert ((horizontal >= 0.99) & (horizontal <= 2.51)).all()
    assert ((env.goal[:, 2] >= 0.7) & (env.goal[:, 2] <= 1.1)).all()
    assert obs["task"].shape == (4, TASK_OBS_SIZE) and np.isfinite(obs["task"]).all()
    assert (env.progress_distance() > 0.4).all()  # the hands hang by the hips; the targets are >= 1 m away
    np.testing.assert_allclose(obs["task"][:, -1], env.progress_distance(), rtol=1e-6)
    hand = env.grasp_points()[:2, 1].copy()
    env.place_goal([0, 1], hand + [[0.01, 0.0, 0.0], [0.5, 0.0, 0.0]])
    _, reward, terminated, truncated, info = env.step(np.zeros((4, 23)))
    assert info["success"][0] and not info["success"][1] and terminated[0] and not terminated[1]
    assert info["final_success"][0] and reward[0] >= 10.0 and not truncated.any()
    assert env.progress_distance()[0] > 0.4  # simulation 0 began a new episode with a new target
    env.close()


def test_push_succeeds_with_the_box_inside_the_goal_disk_only():
    env = WholeBodyVecEnv(WholeBodyConfig(task="push", num_envs=2, seed=0))
    env.reset(seed=0)
    box, _ = env.box_pose()
    assert ((env.box_half[:, :2] >= 0.25) & (env.box_half[:, :2] <= 0.35)).all()
    assert ((env.box_half[:, 2] >= 0.4) & (env.box_half[:, 2] <= 0.5)).all()
    np.testing.assert_allclose(box[:, 2], env.box_half[:, 2])  # standing on the floor
    assert (np.linalg.norm(box[:, :2], axis=1) >= 0.99).all()
    # the crate slides: its friction, not the floor's (randomized up to 1.25), decides its contacts
    model = env.walk.model
    assert model.geom_friction[env.box_geom, 0] == pytest.approx(0.3) and model.geom_priority[env.box_geom] == 1
    goal = env.goal.copy()
    env.place_box([0, 1], goal + [[0.1, 0.0, 0.3], [0.4, 0.0, 0.3]], [[1.0, 0, 0, 0]] * 2)
    info = None
    for _ in range(15):  # the boxes drop onto the floor
        _, _, terminated, _, info = env.step(np.zeros((2, 23)))
        if terminated[0]:
            break
    assert info["final_success"][0] and not env.success[1]
    env.close()


def test_push_can_put_the_crate_ahead_of_the_robot_and_the_goal_beyond_it():
    """The manipulation-only version: the crate 0.75-0.9 m ahead, the goal on past it within 0.3 rad."""
    cfg = WholeBodyConfig(
        task="push",
        num_envs=8,
        push_box_distance_m=(0.75, 0.9),
        push_box_bearing_rad=(-0.2, 0.2),
        goal_bearing_rad=(-0.3, 0.3),
    )
    env = WholeBodyVecEnv(cfg)
    env.reset(seed=4)
    base = env.walk.rig.base_pose()
    box, _ = env.box_pose()
    heading = 2 * np.arctan2(base[:, 6], base[:, 3])
    to_box = box[:, :2] - base[:, :2]
    to_goal = env.goal[:, :2] - box[:, :2]
    bearing = np.angle(np.exp(1j * (np.arctan2(to_box[:, 1], to_box[:, 0]) - heading)))
    turn = np.angle(np.exp(1j * (np.arctan2(to_goal[:, 1], to_goal[:, 0]) - np.arctan2(to_box[:, 1], to_box[:, 0]))))
    assert (np.abs(bearing) <= 0.2 + 1e-6).all() and (np.abs(turn) <= 0.3 + 1e-6).all()
    assert ((np.linalg.norm(to_box, axis=1) >= 0.75 - 1e-6) & (np.linalg.norm(to_box, axis=1) <= 0.9 + 1e-6)).all()
    with pytest.raises(ConfigError, match="goal_bearing_rad"):
        WholeBodyConfig(task="push", goal_bearing_rad=(0.0, 4.0))
    with pytest.raises(ConfigError, match="push_box_friction"):
        WholeBodyConfig(task="push", push_box_friction=0.0)
    env.close()


@pytest.fixture(scope="module")
def pick():
    env = WholeBodyVecEnv(WholeBodyConfig(task="pick_place", num_envs=1, seed=0, walk=STILL), autoreset=False)
    yield env
    env.close()


def test_pick_place_puts_a_graspable_box_on_the_first_table(pick):
    pick.reset(seed=3)
    box, quat = pick.box_pose()
    assert pick.box_half[0, 0] == pytest.approx(0.015)
    # near the edge the robot comes from, its thin side along that edge
    start = pick.walk.rig.base_pose()[0, :2]
    offset = box[0, :2] - pick.table_xy[0, 0]
    inset = np.asarray(TABLE_HALF_XY_M) - np.abs(offset)
    axis = int(np.argmin(inset))
    assert inset[axis] == pytest.approx(EDGE_INSET_M) and abs(offset[1 - axis]) < 1e-9
    assert np.sign(offset[axis]) == np.sign(start[axis] - pick.table_xy[0, 0, axis])
    box_x = np.array(
        [1 - 2 * (quat[0, 2] ** 2 + quat[0, 3] ** 2), 2 * (quat[0, 1] * quat[0, 2] + quat[0, 0] * quat[0, 3])]
    )
    assert abs(box_x[1 - axis]) >= np.cos(0.16)  # the 3 cm side along the edge
    # the goal: as far inside the second table's edge that faces the first
    goal_offset = pick.goal[0, :2] - pick.table_xy[0, 1]
    assert np.min(np.asarray(TABLE_HALF_XY_M) - np.abs(goal_offset)) == pytest.approx(EDGE_INSET_M)
    assert box[0, 2] == pytest.approx(pick.table_height[0, 0] + pick.box_half[0, 2])
    assert np.linalg.norm(pick.table_xy[0, 1] - pick.table_xy[0, 0]) >= 2.0
    for _ in range(10):
        _, _, terminated, _, info = pick.step(np.zeros((1, 23)))
    assert not info["success"][0] and not info["held"].any()  # resting on the first table is neither


def test_a_closed_gripper_holds_the_box_by_contact_and_nothing_welds_it(pick):
    pick.reset(seed=0)
    gripper = _joint(pick, "right_gripper_joint")
    action = np.zeros((1, 23))
    action[0, gripper] = 0.08  # open the jaws to 4 cm
    for _ in range(25):
        pick.step(action)
    hand = pick.walk.model.body("right_hand").id
    hand_quat = pick.walk.batch.bind("xquat")[0, hand].copy()
    pick.place_box([0], [pick.grasp_points()[0, 1]], [hand_quat])  # between the jaws, aligned with the hand
    action[0, gripper] = -4.0  # squeeze
    held = []
    for _ in range(100):
        _, _, terminated, _, info = pick.step(action)
        held.append(info["held"][0].copy())
    assert not terminated[0]
    assert held[-1].tolist() == [False, True] and np.mean([h[1] for h in held]) > 0.9
    # let go: the box drops and is held no more
    action[0, gripper] = 0.08
    for _ in range(25):
        _, _, _, _, info = pick.step(action)
    assert not info["held"].any()


def test_pick_place_succeeds_when_the_box_rests_on_the_second_table_let_go(pick):
    pick.reset(seed=5)
    pick.place_box([0], [pick.goal[0] + [0.0, 0.0, 0.005]], [[1.0, 0.0, 0.0, 0.0]])
    for _ in range(10):
        _, _, terminated, _, info = pick.step(np.zeros((1, 23)))
        if terminated[0]:
            break
    assert info["success"][0]
    pick.reset(seed=5)  # tipped over on its side on the second table: not set down
    pick.place_box([0], [pick.goal[0] - [0.0, 0.0, 0.02]], [[np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0]])
    for _ in range(10):
        _, _, _, _, info = pick.step(np.zeros((1, 23)))
    assert not info["success"][0]


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="task"):
        WholeBodyConfig(task="juggle")
    with pytest.raises(ConfigError, match="target_distance_m"):
        WholeBodyConfig(target_distance_m=(2.0, 1.0))
    with pytest.raises(ConfigError, match="no grasp sites|cannot do whole-body tasks"):
        WholeBodyVecEnv(WholeBodyConfig(robot="biped", num_envs=1))
    env = WholeBodyVecEnv(WholeBodyConfig(task="reach", num_envs=1))
    with pytest.raises(ValueError, match="has no box"):
        env.place_box([0], [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0, 0.0]])

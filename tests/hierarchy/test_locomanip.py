"""The loco-manipulation layers: the hand-off steers toward a far goal and reaches a near one, the IK arm touches
it, a flow arm trained on the expert's demonstrations imitates it, the residual and the coordinator stay within
their bounds, and learners round-trip through checkpoints."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ogi.envs.wholebody import WholeBodyConfig, WholeBodyVecEnv
from ogi.hierarchy.locomanip import (
    ARM_ACTION_SIZE,
    ARM_OBS_SIZE,
    COORDINATOR_ACTION_SIZE,
    COORDINATOR_BOUNDS,
    COORDINATOR_OBS_SIZE,
    WHOLE_BODY_ACTION_CLIP,
    FlowArm,
    HandOff,
    IKArm,
    PushHandOff,
    ResidualArm,
    Walker,
    WholeBodyController,
    arm_index,
    arm_observation,
    footprint_radius,
    whole_body_config,
)
from ogi.hierarchy.locomanip_training import (
    LoopConfig,
    collect_arm_demos,
    load_mlp_policy,
    ppo_loop,
    save_mlp_policy,
)
from ogi.policies.flow import FlowConfig, FlowPolicy, FlowTrainConfig, train_flow_policy
from ogi.training.policy_loading import load_policy
from ogi.training.ppo import PPOConfig
from tests.envs.test_wholebody import STILL as STILL_WALK

STILL = dataclasses.replace(STILL_WALK, action_clip=WHOLE_BODY_ACTION_CLIP)

NEAR = dict(target_distance_m=(0.25, 0.4), target_bearing_rad=(-0.45, 0.45), episode_s=1.0)


@pytest.fixture(scope="module")
def env():
    env = WholeBodyVecEnv(WholeBodyConfig(task="reach", num_envs=3, walk=STILL), autoreset=False)
    yield env
    env.close()


@pytest.fixture(scope="module")
def near():
    env = WholeBodyVecEnv(WholeBodyConfig(task="reach", num_envs=4, walk=STILL, seed=3, **NEAR))
    yield env
    env.close()


def _around(env, forward_m, left_m, height_m):
    base = env.walk.rig.base_pose()
    yaw = 2 * np.arctan2(base[:, 6], base[:, 3])
    heading = np.column_stack([np.cos(yaw), np.sin(yaw)])
    left = np.column_stack([-np.sin(yaw), np.cos(yaw)])
    xy = base[:, :2] + forward_m * heading + left_m * left
    return np.column_stack([xy, np.full(len(xy), height_m)])


def test_the_hand_off_walks_toward_a_far_goal_and_stands_at_a_near_one(env):
    env.reset(seed=0)
    targets = np.stack(
        [_around(env, 2.0, 0.0, 1.0)[0], _around(env, 0.0, 2.0, 1.0)[1], _around(env, 0.35, -0.15, 1.0)[2]]
    )
    env.place_goal([0, 1, 2], targets)
    command, in_reach = HandOff().command(env)
    assert command[0, 0] > 0.3 and abs(command[0, 2]) < 0.05  # ahead: walk forward
    assert command[1, 0] == 0.0 and command[1, 2] > 0.5  # to the left: turn left first, in place
    assert not command[2].any()  # in reach: stand
    assert in_reach.tolist() == [False, False, True]
    # a larger reach radius (the coordinator's) engages earlier; near but beside the robot is not in reach
    _, wider = HandOff().command(env, np.array([2.5, 2.5, 0.45]))
    assert wider.tolist() == [True, False, True]
    # another goal than the task's (the box to walk to, say): env 0 now turns left toward a point beside it
    command, _ = HandOff().command(env, goal=np.stack([_around(env, 0.0, 2.0, 1.0)[0]] * 3))
    assert command[0, 0] == 0.0 and command[0, 2] > 0.5


@pytest.fixture(scope="module")
def push():
    env = WholeBodyVecEnv(WholeBodyConfig(task="push", num_envs=2, walk=STILL), autoreset=False)
    yield env
    env.close()


def _heading(env):
    base = env.walk.rig.base_pose()
    return 2 * np.arctan2(base[:, 6], base[:, 3])


def test_footprint_radius_is_the_centre_to_edge_distance_along_a_direction():
    half = np.array([[0.3, 0.2]] * 4)
    radius = footprint_radius(half, np.array([0.0, 0.0, np.pi / 2, 0.0]), np.array([0.0, np.pi / 2, 0.0, np.pi / 4]))
    np.testing.assert_allclose(radius, [0.3, 0.2, 0.2, 0.2 * np.sqrt(2)])


def test_the_push_hand_off_goes_round_the_crate_and_pushes_from_behind_it(push):
    """Env 0 stands beyond the crate on the goal's side, facing it: it must go round (turn away, not walk into
    it). Env 1 stands at the stance behind the crate, facing the goal: it pushes, both
    hands held out ahead at the crate's height, and walks on."""
    push.reset(seed=0)
    heading = _heading(push)
    half = push.box_half
    box = np.stack([_around(push, 1.0, 0.0, 0.0)[0], _around(push, PushHandOff().standoff_m + half[1, 0], 0.0, 0.0)[1]])
    box[:, 2] = half[:, 2]
    quat = np.column_stack([np.cos(heading / 2), np.zeros(2), np.zeros(2), np.sin(heading / 2)])
    push.place_box([0, 1], box, quat)
    goal = np.stack([_around(push, -1.0, 0.0, 0.0)[0], _around(push, 2.5, 0.0, 0.0)[1]])
    push.place_goal([0, 1], goal)
    handoff = PushHandOff()
    command, engaged, target = handoff.intents(push)
    assert command[0, 0] == 0.0 and abs(command[0, 2]) >= 0.5  # turns toward a point beside the crate first
    assert engaged.tolist() == [False, True] and handoff.pushing.tolist() == [False, True]
    assert command[1, 0] > 0.2 and abs(command[1, 2]) < 0.1
    ahead = _around(push, handoff.hands_ahead_m, 0.0, 0.0)[1]
    np.testing.assert_allclose(target[1, :2], ahead[:2], atol=1e-9)
    assert target[1, 2] == pytest.approx(min(handoff.hand_height_m, 2 * half[1, 2] - 0.05))
    # a look leaves the state alone; a reset forgets the push
    handoff.pushing[:] = False
    assert handoff.intents(push, update=False)[1].tolist() == [False, True] and not handoff.pushing.any()
    handoff.intents(push)
    handoff.reset(np.array([False, True]))
    assert not handoff.pushing.any()


def test_the_ik_arm_can_hold_both_hands_on_one_target_apart_across_the_heading(push):
    push.reset(seed=1)
    push.place_box([0, 1], [[50.0, 0.0, 0.5], [50.0, 0.0, 0.5]], [[1.0, 0, 0, 0]] * 2)
    target = _around(push, 0.26, 0.0, 0.85)
    arm = IKArm(push, both_hands_apart_m=0.25)
    index = arm_index(push)
    for _ in range(40):
        actions = np.zeros((2, push.walk.robot.num_joints))
        actions[:, index] = arm(target, np.array([True, True]))
        push.step(actions)
    grasp = push.grasp_points()
    np.testing.assert_allclose(grasp[:, 0], _around(push, 0.26, 0.125, 0.85), atol=0.05)  # PD sag
    np.testing.assert_allclose(grasp[:, 1], _around(push, 0.26, -0.125, 0.85), atol=0.05)


def test_the_ik_arm_touches_a_target_in_reach_with_the_nearer_hand(env):
    env.reset(seed=1)
    env.place_goal(
        [0, 1, 2],
        np.stack(
            [_around(env, 0.35, 0.15, 0.95)[0], _around(env, 0.35, -0.15, 0.95)[1], _around(env, 0.35, 0.0, 1.0)[2]]
        ),
    )
    controller = WholeBodyController(env, None, IKArm(env))
    index = arm_index(env)
    actions = controller.act(np.zeros((3, 20)))
    assert actions[0, index[:4]].any() and not actions[0, index[4:]].any()  # target on the left: the left arm
    assert actions[1, index[4:]].any() and not actions[1, index[:4]].any()
    touched = np.zeros(3, dtype=bool)
    for _ in range(40):
        _, _, terminated, _, info = env.step(controller.act(np.zeros((3, 20))))
        touched |= info["success"]
        if terminated.all():
            break
    assert touched.all() and not info["fell"].any()


def test_arm_observation_reads_the_target_and_hands_in_the_base_frame(env):
    env.reset(seed=2)
    target = _around(env, 0.3, 0.0, 1.0)
    obs = arm_observation(env, target)
    base_height = env.walk.rig.base_pose()[:, 2]
    assert obs.shape == (3, ARM_OBS_SIZE) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[:, 0], 0.3, atol=0.05)  # ahead, whatever the heading
    np.testing.assert_allclose(obs[:, 1], 0.0, atol=0.05)
    np.testing.assert_allclose(obs[:, 2], 1.0 - base_height, atol=0.05)
    np.testing.assert_allclose(obs[:, 3:11], 0.0, atol=0.05)  # arms at the default pose
    assert (obs[:, 12] > 0).all() and (obs[:, 15] < 0).all()  # left hand on the left, right on the right


def test_flow_arm_plays_its_chunk_in_order_then_draws_again(near):
    near.reset(seed=0)
    policy = FlowPolicy(FlowConfig(obs_dim=ARM_OBS_SIZE, action_dim=ARM_ACTION_SIZE, horizon=4, hidden=8, layers=1))
    arm = FlowArm(near, policy, execute=2)
    engaged = np.array([True, True, False, True])
    target = near.goal.copy()
    first = arm(target, engaged)
    chunk = arm.chunk.copy()
    second = arm(target, engaged)
    np.testing.assert_allclose(first[engaged], chunk[engaged, 0])
    np.testing.assert_allclose(second[engaged], chunk[engaged, 1])
    assert not first[2].any()  # not engaged: rest
    arm(target, engaged)  # two played: a new chunk
    assert not np.allclose(arm.chunk[engaged], chunk[engaged])
    with pytest.raises(ValueError, match="17 observations to 8 actions"):
        FlowArm(near, FlowPolicy(FlowConfig(obs_dim=5, action_dim=8)))
    with pytest.raises(ValueError, match="execute"):
        FlowArm(near, policy, execute=5)


def test_a_flow_arm_trained_on_the_experts_demonstrations_reaches_toward_targets(near):
    expert = WholeBodyController(near, None, IKArm(near))
    obs, chunks, stats = collect_arm_demos(near, expert, 150, horizon=4, seed=0)
    assert obs.shape[1:] == (ARM_OBS_SIZE,) and chunks.shape[1:] == (4, ARM_ACTION_SIZE) and len(obs) == len(chunks)
    assert stats["expert_success"] >= 0.9 and stats["episodes"] >= 20
    # the last step of an episode: its chunk repeats its one action
    assert np.isfinite(chunks).all() and (chunks[:, -1] == chunks[:, -2]).any()
    policy, losses = train_flow_policy(
        obs,
        chunks,
        FlowConfig(obs_dim=ARM_OBS_SIZE, action_dim=ARM_ACTION_SIZE, horizon=4, hidden=64, layers=2),
        FlowTrainConfig(steps=300, batch_size=128),
    )
    assert losses["final_loss"] < 0.8 * losses["first_loss"]

    def closest_approach(arm):
        controller = WholeBodyController(near, None, arm)
        near.reset(seed=50)
        closest = np.full(near.num_envs, np.inf)
        for _ in range(30):
            *_, info = near.step(controller.act(None))
            closest = np.minimum(closest, info["progress_distance_m"])  # before an ended episode's reset
        return closest.mean()

    rest = closest_approach(lambda target, engaged: np.zeros((near.num_envs, ARM_ACTION_SIZE)))
    assert closest_approach(FlowArm(near, policy)) < 0.6 * rest


def test_the_residual_is_bounded_and_only_acts_when_engaged(near):
    near.reset(seed=0)
    base = lambda target, engaged: np.where(engaged[:, None], 1.0, 0.0) * np.ones((4, ARM_ACTION_SIZE))  # noqa: E731
    arm = ResidualArm(near, base, lambda obs: np.full((len(obs), ARM_ACTION_SIZE), 50.0), bound=0.2)
    engaged = np.array([True, False, True, False])
    out = arm(near.goal, engaged)
    np.testing.assert_allclose(out[engaged], 1.2)
    np.testing.assert_allclose(out[~engaged], 0.0)
    assert arm.observation(near.goal, out).shape == (4, ARM_OBS_SIZE + ARM_ACTION_SIZE)
    # observe() asks the base once; the next call plays that same base action
    calls = []
    counted = ResidualArm(near, lambda t, e: calls.append(1) or base(t, e), lambda obs: np.zeros((4, 8)), bound=0.2)
    obs = counted.observe(near.goal, engaged)
    np.testing.assert_allclose(obs[:, ARM_OBS_SIZE:][engaged], 1.0)
    np.testing.assert_allclose(counted(near.goal, engaged)[engaged], 1.0)
    assert len(calls) == 1


def test_the_coordinators_corrections_are_bounded_in_the_heading_frame(env):
    env.reset(seed=4)
    env.place_goal([0, 1, 2], _around(env, 2.0, 0.0, 1.0))
    seen = {}

    def arm(target, engaged):
        seen["target"], seen["engaged"] = target.copy(), engaged.copy()
        return np.zeros((3, ARM_ACTION_SIZE))

    raw = np.zeros((3, COORDINATOR_ACTION_SIZE))
    raw[:, 3] = 5.0  # target forward, clipped to the bound
    raw[0, 6] = 1.0  # env 0: reach radius grown by the bound's share, still short of 2 m
    controller = WholeBodyController(env, None, arm, coordinator=lambda obs: raw)
    assert controller.observation(np.zeros((3, 20), np.float32)).shape == (3, COORDINATOR_OBS_SIZE)
    controller.act(np.zeros((3, 20)))
    shift = seen["target"] - env.goal
    forward = _around(env, 1.0, 0.0, 0.0)[:, :2] - _around(env, 0.0, 0.0, 0.0)[:, :2]
    np.testing.assert_allclose(shift[:, :2], COORDINATOR_BOUNDS[3] * forward, atol=1e-9)
    assert not seen["engaged"].any()
    # a decision holds for coordinate_every steps, then the coordinator is asked again; an ended episode asks at once
    calls = []
    held = WholeBodyController(env, None, arm, coordinator=lambda obs: calls.append(1) or raw, coordinate_every=3)
    for _ in range(7):
        held.act(np.zeros((3, 20)))
    assert len(calls) == 3
    held.reset(np.array([True, False, False]))
    held.act(np.zeros((3, 20)))
    assert len(calls) == 4


def test_ppo_loop_counts_its_decisions_and_the_learner_round_trips(near, tmp_path):
    """The loop on the residual alone (base at rest), targets in reach; the saved policy acts the same after
    loading and is refused under another role."""
    rest = lambda target, engaged: np.zeros((near.num_envs, ARM_ACTION_SIZE))  # noqa: E731
    arm = ResidualArm(near, rest, None, bound=1.0)
    controller = WholeBodyController(near, None, arm)

    def control(obs, action):
        arm.next_residual = action
        return controller.act(obs["task"])

    cfg = LoopConfig(minutes=0.05, seed=0, hidden_sizes=(16,), ppo=PPOConfig(rollout_steps=8, epochs=2, minibatches=2))
    actor, normalizer, stats = ppo_loop(
        near, lambda obs: arm.observation(near.goal, np.zeros((4, ARM_ACTION_SIZE))), control, 25, 8, cfg
    )
    assert stats["iterations"] >= 1 and stats["decisions"] == stats["iterations"] * 8 * 4
    saved = save_mlp_policy(
        tmp_path / "r", actor, normalizer, role="arm_residual", cfg=cfg, obs_size=25, act_size=8, stats=stats
    )
    act, checkpoint = load_mlp_policy(saved.path, "arm_residual")
    x = np.random.default_rng(0).normal(size=(5, 25)).astype(np.float32)
    with torch.no_grad():
        expected, _ = actor(normalizer(torch.as_tensor(x)), ())
    np.testing.assert_allclose(act(x), expected.numpy(), atol=1e-6)
    from ogi.checkpoints import CheckpointError

    with pytest.raises(CheckpointError, match="not a coordinator"):
        load_mlp_policy(saved.path, "coordinator")


HUMANOID_WALK = Path(__file__).resolve().parents[2] / "ogi" / "policies" / "pretrained" / "humanoid_walk"


def test_the_shipped_humanoid_walker_carries_the_body_toward_a_far_target():
    """The walker in a whole-body env (the walk env it trained on, every joint commanded): its held joints get the
    default pose, and the hand-off's command walks the robot toward a target 2 m ahead without falling."""
    walker_policy = load_policy(HUMANOID_WALK)
    env = WholeBodyVecEnv(whole_body_config(walker_policy, task="reach", num_envs=2, seed=0), autoreset=False)
    env.reset(seed=0)
    env.place_goal([0, 1], _around(env, 2.0, 0.0, 0.9))
    walker = Walker(walker_policy, env)
    controller = WholeBodyController(env, walker, IKArm(env))
    start = env.progress_distance()
    for _ in range(150):
        actions = controller.act(None)
        assert not actions[:, walker.held].any()
        _, _, terminated, _, info = env.step(actions)
        assert not info["fell"].any()
    assert (env.progress_distance() < start - 0.3).all()
    # its held joints read as in training: raising the arms changes nothing it sees (sensor noise off)
    quiet = dataclasses.replace(env.cfg.walk, noise=dataclasses.replace(env.cfg.walk.noise, enabled=False))
    still = WholeBodyVecEnv(dataclasses.replace(env.cfg, walk=quiet), autoreset=False)
    still.reset(seed=0)
    still_walker = Walker(walker_policy, still)
    calm = still_walker.act(np.zeros((2, 3)))
    qpos = still.walk.batch.bind("qpos")
    rows = qpos[:]
    rows[:, still.walk.rig.qpos_adr[arm_index(still)]] += 1.0
    qpos[:] = rows
    still.walk.batch.forward(np.arange(2))
    assert not np.allclose(still.walk.rig.joint_pos()[:, arm_index(still)], 0.0, atol=0.5)
    still_walker.reset(np.ones(2, dtype=bool))
    np.testing.assert_array_equal(still_walker.act(np.zeros((2, 3))), calm)
    biped = WholeBodyConfig(task="reach", num_envs=1, robot="humanoid")
    with pytest.raises(ValueError, match="drives 'biped'"):
        Walker(load_policy(HUMANOID_WALK.parent / "biped_walk"), WholeBodyVecEnv(biped))

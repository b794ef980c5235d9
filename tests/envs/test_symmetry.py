import numpy as np
import pytest
import torch

from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.observations import policy_layout
from ogi.envs.symmetry import Mirror, joint_mirror, layout_mirror, mirror_partner
from ogi.policies import ActorConfig, Critic, CriticConfig, EmpiricalNormalizer, make_actor
from ogi.training.ppo import PPO, PPOConfig, symmetry_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GO2_JOINTS = [f"{leg}_{part}_joint" for leg in ("FR", "FL", "RR", "RL") for part in ("hip", "thigh", "calf")]
GO2_AXES = np.tile([[1.0, 0, 0], [0, 1.0, 0], [0, 1.0, 0]], (4, 1))


def test_go2_joints_swap_sides_and_abduction_flips_sign():
    m = joint_mirror(GO2_JOINTS, GO2_AXES)
    # FR hip, thigh, calf <- FL hip, thigh, calf; RR <- RL
    assert m.index.tolist() == [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]
    assert m.sign.tolist() == [-1, 1, 1] * 4
    q = np.arange(12.0)
    np.testing.assert_array_equal(m(m(q)), q)  # a reflection twice is the identity
    assert (
        mirror_partner("left_knee_joint") == "right_knee_joint"
        and mirror_partner("waist_yaw_joint") == "waist_yaw_joint"
    )


def test_tilted_hinges_and_slide_joints_mirror_by_their_axes():
    # a shoulder-yaw axis tilted by the arms' rolled-out stance, and gripper jaws sliding along x
    names = ["left_shoulder_yaw_joint", "right_shoulder_yaw_joint", "left_gripper_joint", "right_gripper_joint"]
    axes = [[0.0, -0.15, 0.989], [0.0, 0.15, 0.989], [1.0, 0, 0], [1.0, 0, 0]]
    m = joint_mirror(names, axes, [False, False, True, True])
    assert m.index.tolist() == [1, 0, 3, 2]
    assert m.sign.tolist() == [-1, -1, 1, 1]  # yaw flips; a jaw's opening is the same on either side


@pytest.mark.parametrize("robot", ["biped", "humanoid"])
def test_two_legged_robots_have_a_mirror(robot):
    env = WalkVecEnv(WalkConfig(robot=robot, num_envs=1))
    obs_mirror, joints = env.mirrors()
    names = env.robot.joint_names
    partner = {n: names[i] for n, i in zip(names, joints.index)}
    flips = dict(zip(names, joints.sign))
    assert partner["left_knee_joint"] == "right_knee_joint" and flips["left_knee_joint"] == 1
    assert flips["left_hip_pitch_joint"] == 1
    assert flips["left_hip_roll_joint"] == -1 and flips["left_hip_yaw_joint"] == -1
    if robot == "humanoid":
        assert partner["waist_yaw_joint"] == "waist_yaw_joint" and flips["waist_yaw_joint"] == -1
        assert partner["left_gripper_joint"] == "right_gripper_joint" and flips["left_gripper_joint"] == 1
    q = np.random.default_rng(0).normal(size=len(names))
    np.testing.assert_allclose(joints(joints(q)), q)


def test_policy_observation_mirror_by_hand():
    m = layout_mirror(policy_layout(12), joint_mirror(GO2_JOINTS, GO2_AXES))
    obs = np.zeros(45)
    obs[0:3] = [0.1, 0.2, 0.3]  # angular velocity: axial, x and z flip
    obs[3:6] = [0.0, 0.5, -0.8]  # gravity: y flips
    obs[6:9] = [0.7, 0.2, 0.4]  # command: a forward-left turning to the left becomes forward-right turning right
    obs[9] = 0.05  # FR hip offset -> FL hip, negated
    out = m(obs)
    np.testing.assert_allclose(out[0:9], [-0.1, 0.2, -0.3, 0.0, -0.5, -0.8, 0.7, -0.2, -0.4])
    assert out[12] == -0.05 and out[9] == 0.0
    np.testing.assert_allclose(m(out), obs)


def test_mirror_refuses_what_it_cannot_reflect():
    with pytest.raises(ValueError, match="no mirror partner 'FL_hip_joint'"):
        joint_mirror(["FR_hip_joint"], [[1.0, 0, 0]])
    with pytest.raises(ValueError, match="whose reflection is not the axis"):
        joint_mirror(["FR_hip_joint", "FL_hip_joint"], [[0.7, 0.7, 0], [0.7, 0.7, 0]])
    with pytest.raises(ValueError, match="'depth_image' has no mirror image"):
        layout_mirror(policy_layout(12, depth_pixels=4), joint_mirror(GO2_JOINTS, GO2_AXES))
    with pytest.raises(ValueError, match="permute"):
        Mirror(np.array([0, 0]), np.array([1.0, 1.0]))


def test_env_mirrors_match_the_go2_by_hand_and_reflect_a_real_standing_state():
    env = WalkVecEnv(WalkConfig(num_envs=2, seed=1))
    obs_mirror, action_mirror = env.mirrors()
    assert action_mirror.index.tolist() == [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]
    assert action_mirror.sign.tolist() == [-1, 1, 1] * 4
    # the default pose is symmetric: the mirror image of the pose is the pose
    q0 = np.asarray(env.robot.default_pose)
    np.testing.assert_allclose(action_mirror(q0), q0)
    assert obs_mirror.index.shape == (env.policy_layout.size,)
    hips = q0[[0, 3, 6, 9]]
    np.testing.assert_allclose(hips[[1, 0, 3, 2]], -hips)


def _ppo(coef: float, n: int = 4, steps: int = 8) -> PPO:
    torch.manual_seed(0)
    actor = make_actor(45, 12, ActorConfig(kind="gru", recurrent_size=8, hidden_sizes=(16,)))
    critic = Critic(64, CriticConfig(hidden_sizes=(16,)))
    mirrors = (layout_mirror(policy_layout(12), joint_mirror(GO2_JOINTS, GO2_AXES)), joint_mirror(GO2_JOINTS, GO2_AXES))
    ppo = PPO(
        actor,
        critic,
        EmpiricalNormalizer(45),
        EmpiricalNormalizer(64),
        n,
        PPOConfig(rollout_steps=steps, minibatches=1, epochs=1, symmetry_coef=coef),
        mirrors=mirrors,
    )
    return ppo


def _loss(ppo: PPO, obs, state0, starts) -> torch.Tensor:
    mean = ppo.actor.forward_sequence(obs, state0, starts)
    mirrored = ppo.actor.forward_sequence(ppo._mirror_obs(obs), state0, starts)
    return symmetry_loss(mirrored, ppo.mirrors[1](mean.detach()), starts)


def test_symmetry_loss_is_zero_for_a_symmetric_policy_and_training_shrinks_it():
    ppo = _ppo(1.0)
    obs = torch.randn(8, 4, 45)
    starts = torch.zeros(8, 4, dtype=torch.bool)
    starts[0] = True
    state0 = ppo.actor.initial_state(4)
    # a policy whose means are always zero is its own mirror image
    with torch.no_grad():
        for p in ppo.actor.head[-1].parameters():
            p.zero_()
        assert float(_loss(ppo, obs, state0, starts)) == 0.0
        assert float(symmetry_loss(torch.zeros(8, 4, 12), torch.ones(8, 4, 12), starts)) == 1.0
    ppo = _ppo(1.0)
    with torch.no_grad():  # an asymmetric policy: each joint its own offset
        ppo.actor.head[-1].bias.copy_(torch.linspace(-0.5, 0.6, 12))
    optimizer = torch.optim.Adam(ppo.actor.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = _loss(ppo, obs, state0, starts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[0] > 0.05 and losses[-1] < 0.3 * losses[0]


def test_the_first_steps_of_a_mirrored_sequence_count_only_after_a_reset():
    starts = torch.zeros(6, 2, dtype=torch.bool)
    starts[2, 1] = True  # env 1 began an episode at step 2
    error = torch.zeros(6, 2, 1)
    error[:2] = 1.0  # steps 0 and 1: before the warm-up in env 0, before the reset in env 1
    error[3, 1] = 1.0  # after env 1's reset: counted
    # counted cells: env 0 steps 4, 5; env 1 steps 2-5: six; the one counted error is 1
    assert float(symmetry_loss(error, torch.zeros_like(error), starts)) == pytest.approx(1 / 6)


def test_one_update_with_the_symmetry_loss_logs_it_and_stays_finite():
    ppo = _ppo(1.0)
    st = ppo.storage
    for buffer in (st.policy_obs, st.critic_obs, st.actions, st.means, st.advantages, st.returns):
        buffer.normal_()
    st.state0 = ppo.actor.initial_state(4)
    ppo.begin_rollout()
    out = ppo.update()
    assert out["loss/symmetry"] > 0.0 and all(np.isfinite(v) for v in out.values())


def test_symmetry_needs_mirrors():
    actor = make_actor(45, 12, ActorConfig(kind="mlp", hidden_sizes=(8,)))
    with pytest.raises(ValueError, match="needs the observation and action mirrors"):
        PPO(
            actor,
            Critic(64, CriticConfig(hidden_sizes=(8,))),
            EmpiricalNormalizer(45),
            EmpiricalNormalizer(64),
            2,
            PPOConfig(symmetry_coef=0.5),
        )


def test_the_gait_clock_mirrors_half_a_cycle_on():
    m = layout_mirror(policy_layout(12, gait_clock=True), joint_mirror(GO2_JOINTS, GO2_AXES))
    obs = np.zeros(47)
    obs[-2:] = [0.6, 0.8]  # (sin, cos): the other foot's turn is the clock half a cycle on
    np.testing.assert_allclose(m(obs)[-2:], [-0.6, -0.8])


def test_privileged_mirror_by_hand():
    from ogi.envs.observations import privileged_layout
    from ogi.envs.sensing import HeightScanConfig
    from ogi.envs.symmetry import privileged_mirror

    scan = HeightScanConfig(enabled=True, length_m=0.4, width_m=0.4, spacing_m=0.2)  # 3 x 3 points
    offsets = scan.offsets()
    feet = ("FR_foot", "FL_foot", "RR_foot", "RL_foot")
    m = privileged_mirror(privileged_layout(4, scan_points=9), feet, offsets)
    obs = np.zeros(19 + 9)  # velocity 3, height 1, domain 8, feet 4, push 3, scan 9
    obs[0:3] = [0.5, 0.2, 0.1]  # base velocity: y flips
    obs[6:9] = [0.01, 0.02, 0.03]  # centre-of-mass offset (domain features 2..4): y flips
    obs[12:16] = [1, 0, 0, 1]  # FR and RL down -> FL and RR down
    obs[16:19] = [0.0, 3.0, 0.0]  # push to the left -> to the right
    left = offsets[:, 1] > 0.1
    obs[19:][left] = 0.3  # the ground lower on the left -> lower on the right
    out = m(obs)
    np.testing.assert_allclose(out[0:3], [0.5, -0.2, 0.1])
    np.testing.assert_allclose(out[6:9], [0.01, -0.02, 0.03])
    assert out[12:16].tolist() == [0, 1, 1, 0] and out[17] == -3.0
    right = offsets[:, 1] < -0.1
    assert (out[19:][right] == 0.3).all() and (out[19:][~right] == 0.0).all()
    np.testing.assert_allclose(m(out), obs)
    with pytest.raises(ValueError, match="not symmetric"):
        privileged_mirror(privileged_layout(4, scan_points=2), feet, np.array([[0.0, 0.1], [0.0, 0.2]]))


def test_a_teachers_mirror_covers_both_groups():
    from ogi.envs.sensing import HeightScanConfig

    env = WalkVecEnv(WalkConfig(num_envs=1, height_scan=HeightScanConfig(enabled=True, spacing_m=0.2)))
    obs_mirror, _ = env.mirrors("privileged")
    size = env.policy_layout.size + env.privileged_layout.size
    assert obs_mirror.index.shape == (size,)
    x = np.random.default_rng(0).normal(size=size)
    np.testing.assert_allclose(obs_mirror(obs_mirror(x)), x)
    np.testing.assert_array_equal(obs_mirror.index[: env.policy_layout.size], env.mirrors()[0].index)

import math

import numpy as np
import pytest
import torch

from ogi.policies import ActorConfig, Critic, CriticConfig, EmpiricalNormalizer, make_actor
from ogi.training.ppo import (
    PPO,
    PPOConfig,
    adapt_learning_rate,
    clipped_surrogate_loss,
    clipped_value_loss,
    compute_gae,
)
from ogi.validation import ConfigError


def test_gae_hand_computed():
    # one env, three steps, gamma 0.5, lambda 0.5, episode ends at t = 1
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [2.0]])
    dones = torch.tensor([[False], [True], [False]])
    last = torch.tensor([4.0])
    adv, ret = compute_gae(rewards, values, dones, last, gamma=0.5, lam=0.5)
    # t=2: delta = 3 + 0.5*4 - 2 = 3;               A2 = 3
    # t=1: delta = 2 + 0 - 1 = 1 (episode ended);    A1 = 1
    # t=0: delta = 1 + 0.5*1.0 - 0.5 = 1;            A0 = 1 + 0.25 * 1 = 1.25
    np.testing.assert_allclose(adv[:, 0].numpy(), [1.25, 1.0, 3.0])
    np.testing.assert_allclose(ret[:, 0].numpy(), [1.75, 2.0, 5.0])


def test_gae_with_lambda_one_is_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    r = torch.tensor(rng.normal(size=(6, 1)), dtype=torch.float32)
    v = torch.tensor(rng.normal(size=(6, 1)), dtype=torch.float32)
    last = torch.tensor([0.7])
    adv, _ = compute_gae(r, v, torch.zeros(6, 1, dtype=torch.bool), last, gamma=0.9, lam=1.0)
    expected = [
        sum(0.9**k * float(r[t + k]) for k in range(6 - t)) + 0.9 ** (6 - t) * 0.7 - float(v[t]) for t in range(6)
    ]
    np.testing.assert_allclose(adv[:, 0].numpy(), expected, rtol=1e-5)


def test_clipped_surrogate_by_hand():
    adv = torch.tensor([1.0, -1.0, 2.0])
    old = torch.zeros(3)
    new = torch.log(torch.tensor([1.5, 1.5, 0.9]))  # ratios 1.5, 1.5, 0.9
    # min(1.5*1, 1.2*1) = 1.2; min(1.5*-1, 1.2*-1) = -1.5; min(0.9*2, 0.9*2) = 1.8 -> mean 0.5 -> loss -0.5
    assert float(clipped_surrogate_loss(new, old, adv, 0.2)) == pytest.approx(-0.5)


def test_clipped_value_loss_by_hand():
    values, old, returns = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]), torch.tensor([3.0, 1.0])
    # env 0: unclipped (2-3)^2 = 1, clipped 1 + 0.2 = 1.2 -> (1.2 - 3)^2 = 3.24 -> max 3.24; env 1: 1, 1 -> 1
    assert float(clipped_value_loss(values, old, returns, 0.2)) == pytest.approx((3.24 + 1.0) / 2)


def test_adaptive_learning_rate_follows_kl():
    cfg = PPOConfig(learning_rate=1e-3, desired_kl=0.01)
    assert adapt_learning_rate(1e-3, 0.05, cfg) == pytest.approx(1e-3 / 1.5)
    assert adapt_learning_rate(1e-3, 0.001, cfg) == pytest.approx(1.5e-3)
    assert adapt_learning_rate(1e-3, 0.01, cfg) == pytest.approx(1e-3)
    assert adapt_learning_rate(cfg.max_learning_rate, 0.0, cfg) == cfg.max_learning_rate
    assert adapt_learning_rate(cfg.min_learning_rate, 1.0, cfg) == cfg.min_learning_rate


def test_bad_ppo_config_names_the_field():
    with pytest.raises(ConfigError, match="ppo.clip"):
        PPOConfig(clip=0.0)
    with pytest.raises(ConfigError, match="ppo.epochs"):
        PPOConfig(epochs=2.5)


@pytest.mark.parametrize("kind", ["mlp", "gru", "lstm", "transformer"])
def test_update_sees_the_collected_policy_and_resets_state_at_episode_ends(kind):
    """BPTT masking: the update's first pass reproduces the collection's log-probs (same state, same resets)."""
    torch.manual_seed(0)
    n, obs_dim, act_dim, steps = 6, 5, 2, 7
    actor = make_actor(
        obs_dim, act_dim, ActorConfig(kind=kind, hidden_sizes=(16,), recurrent_size=8, model_dim=8, heads=2)
    )
    actor.train()
    critic = Critic(obs_dim + 3, CriticConfig(hidden_sizes=(16,)))
    ppo = PPO(
        actor,
        critic,
        EmpiricalNormalizer(obs_dim),
        EmpiricalNormalizer(obs_dim + 3),
        n,
        PPOConfig(rollout_steps=steps, epochs=1, minibatches=2),
    )
    rng = torch.Generator().manual_seed(1)
    for _ in range(2):  # two rollouts: the second starts from carried, partly reset state
        ppo.begin_rollout()
        for _ in range(steps):
            obs = torch.randn(n, obs_dim, generator=rng)
            ppo.act(obs, torch.cat([obs, torch.randn(n, 3, generator=rng)], dim=1))
            done = torch.rand(n, generator=rng) < 0.3
            ppo.process_step(torch.randn(n, generator=rng), done, torch.zeros(n, dtype=torch.bool))
        ppo.compute_returns(torch.randn(n, obs_dim + 3, generator=rng))
        st = ppo.storage
        with torch.no_grad():
            mean = actor.forward_sequence(st.policy_obs, st.state0, st.starts)
        np.testing.assert_allclose(mean.numpy(), st.means.numpy(), atol=1e-5)
        assert not st.starts[0].any()
        np.testing.assert_array_equal(st.starts[1:].numpy(), st.dones[:-1].numpy())
        stats = ppo.update()
        assert all(math.isfinite(v) for v in stats.values())


def test_time_outs_are_bootstrapped_with_the_final_value():
    torch.manual_seed(0)
    actor = make_actor(3, 1, ActorConfig(kind="mlp", hidden_sizes=(4,)))
    critic = Critic(3, CriticConfig(hidden_sizes=(4,)))
    ppo = PPO(actor, critic, EmpiricalNormalizer(3), EmpiricalNormalizer(3), 2, PPOConfig(rollout_steps=1, gamma=0.9))
    ppo.begin_rollout()
    obs = torch.ones(2, 3)
    ppo.act(obs, obs)
    final = torch.full((2, 3), 2.0)
    ppo.process_step(torch.tensor([1.0, 1.0]), torch.tensor([False, False]), torch.tensor([True, False]), final)
    v_final = critic(ppo.critic_normalizer(final))[0]
    assert float(ppo.storage.rewards[0, 0]) == pytest.approx(1.0 + 0.9 * float(v_final.detach()), rel=1e-6)
    assert float(ppo.storage.rewards[0, 1]) == pytest.approx(1.0)


def test_evaluate_counts_falls_and_keeps_going():
    """A policy that throws the robot down: every episode is a fall, and evaluation still finishes."""
    from ogi.envs import WalkConfig
    from ogi.envs.config import SimConfig
    from ogi.training.evaluate import evaluate

    env_cfg = WalkConfig(num_envs=2, sim=SimConfig(sim_dt_s=0.002, nthread=1))
    actor = make_actor(45, 12, ActorConfig(kind="mlp", hidden_sizes=(8,)))
    last = (
        actor.mlp[-1] if hasattr(actor, "mlp") else [m for m in actor.modules() if isinstance(m, torch.nn.Linear)][-1]
    )
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([4.0, -4.0, 4.0] * 4))  # hips out, thighs back, calves open: collapse
    result = evaluate(actor, EmpiricalNormalizer(45), env_cfg, num_envs=3, episode_s=3.0, settle_s=0.5)
    assert result.episodes == 3
    assert result.fall_rate == 1.0
    assert result.mean_episode_length_s < 3.0


def _collect(ppo, n, obs_dim, steps, seed):
    rng = torch.Generator().manual_seed(seed)
    ppo.begin_rollout()
    for _ in range(steps):
        obs = torch.randn(n, obs_dim, generator=rng)
        ppo.act(obs, obs)
        ppo.process_step(
            torch.randn(n, generator=rng), torch.rand(n, generator=rng) < 0.2, torch.zeros(n, dtype=torch.bool)
        )
    ppo.compute_returns(torch.randn(n, obs_dim, generator=rng))


def test_reference_means_are_the_frozen_policys_own_recurrent_means():
    from ogi.training.ppo import FrozenPolicy

    torch.manual_seed(0)
    n, obs_dim, steps = 4, 5, 6
    cfg = ActorConfig(kind="gru", hidden_sizes=(8,), recurrent_size=8)
    reference_actor = make_actor(obs_dim, 2, cfg)
    normalizer = EmpiricalNormalizer(obs_dim)
    normalizer.update(torch.randn(50, obs_dim) * 3 + 1)
    actor = make_actor(obs_dim, 2, cfg)
    ppo = PPO(
        actor,
        Critic(obs_dim, CriticConfig(hidden_sizes=(8,))),
        EmpiricalNormalizer(obs_dim),
        EmpiricalNormalizer(obs_dim),
        n,
        PPOConfig(rollout_steps=steps, reference_kl_coef=0.5),
        reference=FrozenPolicy(reference_actor, normalizer, n),
    )
    rng = torch.Generator().manual_seed(2)
    raw = torch.randn(steps, n, obs_dim, generator=rng)
    dones = torch.rand(steps, n, generator=rng) < 0.3
    ppo.begin_rollout()
    for t in range(steps):
        ppo.act(raw[t], raw[t])
        ppo.process_step(torch.zeros(n), dones[t], torch.zeros(n, dtype=torch.bool))
    starts = torch.zeros(steps, n, dtype=torch.bool)
    starts[1:] = dones[:-1]
    with torch.no_grad():
        expected = reference_actor.forward_sequence(normalizer(raw), reference_actor.initial_state(n), starts)
    np.testing.assert_allclose(ppo.storage.reference_means.numpy(), expected.numpy(), atol=1e-5)


def test_reference_kl_pulls_the_policy_toward_the_reference():
    """With only the KL term (no advantage signal), updates shrink KL(pi || pi_ref); without it they do not."""
    from ogi.training.ppo import FrozenPolicy

    def run(coef):
        torch.manual_seed(0)
        n, obs_dim = 8, 4
        cfg = ActorConfig(kind="mlp", hidden_sizes=(16,))
        reference_actor = make_actor(obs_dim, 2, cfg)
        actor = make_actor(obs_dim, 2, cfg)  # other weights: far from the reference
        ppo = PPO(
            actor,
            Critic(obs_dim, CriticConfig(hidden_sizes=(8,))),
            EmpiricalNormalizer(obs_dim),
            EmpiricalNormalizer(obs_dim),
            n,
            PPOConfig(
                rollout_steps=8,
                epochs=4,
                minibatches=1,
                reference_kl_coef=coef,
                entropy_coef=0.0,
                adaptive_lr=False,
                learning_rate=3e-3,
            ),
            reference=FrozenPolicy(reference_actor, EmpiricalNormalizer(obs_dim), n),
        )
        kls = []
        for i in range(6):
            _collect(ppo, n, obs_dim, 8, seed=i)
            ppo.storage.advantages.zero_()
            kls.append(ppo.update()["policy/kl_reference"])
        return kls

    pulled, free = run(5.0), run(0.0)
    assert pulled[-1] < 0.5 * pulled[0]
    assert free[-1] > 0.8 * free[0]


def test_reference_coefficient_without_reference_is_an_error():
    torch.manual_seed(0)
    actor = make_actor(3, 1, ActorConfig(kind="mlp", hidden_sizes=(4,)))
    with pytest.raises(ValueError, match="reference"):
        PPO(
            actor,
            Critic(3, CriticConfig(hidden_sizes=(4,))),
            EmpiricalNormalizer(3),
            EmpiricalNormalizer(3),
            2,
            PPOConfig(reference_kl_coef=1.0),
        )


def test_held_actions_are_not_explored_and_the_entropy_bonus_leaves_them_alone():
    """With action 1 held, its samples are the mean, and entropy-only updates widen action 0 but not action 1."""
    torch.manual_seed(0)
    n, obs_dim = 8, 4
    actor = make_actor(obs_dim, 2, ActorConfig(kind="mlp", hidden_sizes=(8,)))
    ppo = PPO(
        actor,
        Critic(obs_dim, CriticConfig(hidden_sizes=(8,))),
        EmpiricalNormalizer(obs_dim),
        EmpiricalNormalizer(obs_dim),
        n,
        PPOConfig(rollout_steps=8, epochs=4, minibatches=1, entropy_coef=0.5, adaptive_lr=False, learning_rate=1e-2),
        active_actions=torch.tensor([True, False]),
    )
    log_std0 = actor.log_std.detach().clone()
    for i in range(4):
        _collect(ppo, n, obs_dim, 8, seed=i)
        np.testing.assert_array_equal(ppo.storage.actions[..., 1].numpy(), ppo.storage.means[..., 1].numpy())
        assert not torch.equal(ppo.storage.actions[..., 0], ppo.storage.means[..., 0])
        ppo.storage.advantages.zero_()
        ppo.update()
    assert float(actor.log_std[0]) > float(log_std0[0]) + 0.05
    assert float(actor.log_std[1]) == pytest.approx(float(log_std0[1]))
    with pytest.raises(ValueError, match="at least one action"):
        PPO(
            actor,
            Critic(obs_dim, CriticConfig(hidden_sizes=(8,))),
            EmpiricalNormalizer(obs_dim),
            EmpiricalNormalizer(obs_dim),
            n,
            PPOConfig(),
            active_actions=torch.tensor([False, False]),
        )

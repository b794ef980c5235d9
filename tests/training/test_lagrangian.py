import math

import pytest
import torch

from ogi.policies import gaussian_log_prob
from ogi.training.lagrangian import (
    DualState,
    SafetyConfig,
    clipped_cost_surrogate,
    combine_policy_losses,
    dual_update,
    episode_fall_probability,
)
from ogi.training.ppo import clipped_surrogate_loss
from ogi.validation import ConfigError


def test_dual_ascent_by_hand():
    cfg = SafetyConfig(enabled=True, fall_limit=0.02, lambda_lr=2.0)
    state = DualState.initial(cfg)
    # lambda <- max(0, lambda + 2 (J_c - 0.02))
    state = dual_update(state, 0.12, cfg)
    assert state.multiplier == pytest.approx(0.2)
    state = dual_update(state, 0.07, cfg)
    assert state.multiplier == pytest.approx(0.3)
    state = dual_update(state, 0.0, cfg)
    assert state.multiplier == pytest.approx(0.26)
    # clamp at zero: 0.26 + 2 (0 - 0.02) x 13 would be negative
    for _ in range(13):
        state = dual_update(state, 0.0, cfg)
    assert state.multiplier == 0.0 and state.integral == 0.0
    # and it rises from zero at once when the constraint is violated again
    state = dual_update(state, 0.52, cfg)
    assert state.multiplier == pytest.approx(1.0)
    assert state.updates == 17


def test_pid_multiplier_by_hand():
    cfg = SafetyConfig(enabled=True, fall_limit=0.1, lambda_lr=1.0, lambda_kp=2.0, lambda_kd=4.0)
    state = DualState.initial(cfg)
    # e = 0.2: I = 0.2, P = 0.4, D = 0 (no previous) -> 0.6
    state = dual_update(state, 0.3, cfg)
    assert (state.integral, state.multiplier) == pytest.approx((0.2, 0.6))
    # e = 0.4: I = 0.6, P = 0.8, D = 4 (0.5 - 0.3) = 0.8 -> 2.2
    state = dual_update(state, 0.5, cfg)
    assert (state.integral, state.multiplier) == pytest.approx((0.6, 2.2))
    # e = -0.1: I = 0.5, P = -0.2, D = 0 (falling cost is not damped) -> 0.3
    state = dual_update(state, 0.0, cfg)
    assert (state.integral, state.multiplier) == pytest.approx((0.5, 0.3))
    # e = -0.1: I = 0.4, P = -0.2 -> 0.2; a large negative P is clamped at zero
    big_p = SafetyConfig(enabled=True, fall_limit=0.1, lambda_lr=1.0, lambda_kp=10.0)
    assert dual_update(DualState(0.4, 0.4, 0.0), 0.0, big_p).multiplier == 0.0


def test_multiplier_is_capped_and_state_round_trips():
    cfg = SafetyConfig(enabled=True, fall_limit=0.0, lambda_lr=10.0, lambda_max=5.0)
    state = dual_update(DualState.initial(cfg), 1.0, cfg)
    assert state.multiplier == 5.0
    assert DualState.from_dict(state.to_dict()) == state
    with pytest.raises(ValueError, match="cost"):
        dual_update(state, float("nan"), cfg)


def test_episode_fall_probability():
    # 3 falls in 3000 steps: h = 0.001 per step; Pr over 300 steps = 1 - 0.999^300
    assert episode_fall_probability(3, 3000, 300) == pytest.approx(1 - 0.999**300)
    assert episode_fall_probability(0, 100, 1000) == 0.0
    with pytest.raises(ValueError, match="env_steps"):
        episode_fall_probability(1, 0, 10)


def test_cost_surrogate_is_pessimistic_and_losses_combine():
    old = torch.zeros(3)
    new = torch.log(torch.tensor([1.5, 0.5, 1.0]))
    adv = torch.tensor([1.0, -1.0, 2.0])
    # max(r A, clip(r) A): 1.5 vs 1.2 -> 1.5; -0.5 vs -0.8 -> -0.5; 2 -> 2; mean = 1.0
    assert float(clipped_cost_surrogate(new, old, adv, 0.2)) == pytest.approx(1.0)
    # (L_r + lambda L_c) / (1 + lambda)
    assert float(combine_policy_losses(torch.tensor(1.0), torch.tensor(4.0), 3.0)) == pytest.approx(13.0 / 4.0)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="safety.fall_limit"):
        SafetyConfig(fall_limit=1.5)
    with pytest.raises(ConfigError, match="safety.lambda_lr"):
        SafetyConfig(lambda_lr=-1.0)


def _bandit(constrained: bool, iterations: int = 150) -> tuple[float, float, list[float]]:
    """One-step task: a ~ N(mu, sigma), reward a, cost 1 if a > 1. Unconstrained, mu grows and Pr(a > 1) -> 1;
    constrained to Pr(a > 1) <= 0.1 the best policy sits near mu = 1 - 1.28 sigma."""
    torch.manual_seed(0)
    mu = torch.zeros(1, requires_grad=True)
    log_std = torch.full((1,), math.log(0.5), requires_grad=True)
    optimizer = torch.optim.Adam([mu, log_std], lr=0.05)
    cfg = SafetyConfig(enabled=True, fall_limit=0.1, lambda_lr=2.0)
    dual = DualState.initial(cfg)
    lambdas, cost_rates = [], []
    for _ in range(iterations):
        with torch.no_grad():
            actions = mu + log_std.exp() * torch.randn(512, 1)
            old_log_prob = gaussian_log_prob(mu.expand(512, 1), log_std, actions)
            rewards = actions[:, 0]
            costs = (actions[:, 0] > 1.0).float()
        adv_r = (rewards - rewards.mean()) / (rewards.std() + 1e-8)
        adv_c = costs - costs.mean()
        for _ in range(4):
            log_prob = gaussian_log_prob(mu.expand(512, 1), log_std, actions)
            reward_loss = clipped_surrogate_loss(log_prob, old_log_prob, adv_r, 0.2)
            if constrained:
                cost_loss = clipped_cost_surrogate(log_prob, old_log_prob, adv_c, 0.2)
                loss = combine_policy_losses(reward_loss, cost_loss, dual.multiplier)
            else:
                loss = reward_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                log_std.clamp_(math.log(0.05), math.log(1.0))
        if constrained:
            dual = dual_update(dual, float(costs.mean()), cfg)
        lambdas.append(dual.multiplier)
        cost_rates.append(float(costs.mean()))
    with torch.no_grad():
        final = mu + log_std.exp() * torch.randn(20000, 1)
    return float((final > 1.0).float().mean()), float(final.mean()), lambdas


def test_lagrangian_ppo_meets_the_constraint_on_a_bandit():
    free_cost, free_reward, free_lambdas = _bandit(constrained=False)
    cost, reward, lambdas = _bandit(constrained=True)
    assert free_cost > 0.5  # the unconstrained optimum violates Pr(cost) <= 0.1 badly
    assert max(lambdas) > 0.5  # the multiplier rose while the constraint was violated
    assert cost <= 0.2  # met within a factor 2 of delta = 0.1
    assert 0.0 < reward < free_reward  # still improves on the start (mean 0), at a lower reward
    assert free_lambdas == [0.0] * len(free_lambdas)

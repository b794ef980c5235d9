import copy
import math

import pytest
import torch

from ogi.lm.config import RLHFConfig
from ogi.lm.rlhf import (
    RLHFTrainer,
    clipped_surrogate_loss,
    gae_over_tokens,
    kl_penalty_rewards,
    safety_violations,
)
from ogi.validation import ConfigError


def test_kl_penalty_by_hand():
    log_probs = torch.tensor([[-1.0, -2.0, 0.0]])
    ref_log_probs = torch.tensor([[-1.5, -1.0, -3.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    # r_t = -beta (log pi - log pi_ref) = -0.1 * (0.5, -1.0), masked position 0
    torch.testing.assert_close(
        kl_penalty_rewards(log_probs, ref_log_probs, mask, 0.1), torch.tensor([[-0.05, 0.1, 0.0]])
    )


def test_safety_penalty_flags_disallowed_words_and_caller_rules():
    responses = ["forward 2 ; jump", "forward 2", "sprint", "jumping forward", "backward 1"]
    flags = safety_violations(responses, ("jump", "sprint"))
    assert flags.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]  # whole tokens only: "jumping" is not "jump"
    flags = safety_violations(responses, ("jump",), rule=lambda text: "backward" in text)
    assert flags.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_gae_over_tokens_by_hand():
    # Row: one prompt position (masked), three response tokens, one padding position (masked).
    rewards = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[9.0, 0.5, 0.5, 0.5, 9.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.0]])
    # gamma 1, lambda 0.5: delta = (0, 0, 0.5); A_3 = 0.5, A_2 = 0.25, A_1 = 0.125
    advantages = gae_over_tokens(rewards, values, mask, gamma=1.0, lam=0.5)
    torch.testing.assert_close(advantages, torch.tensor([[0.0, 0.125, 0.25, 0.5, 0.0]]))
    # gamma 0.5, lambda 1: delta_3 = 0.5, delta_2 = 0.25 - 0.5, delta_1 = 0.25 - 0.5; A = Monte Carlo - V
    advantages = gae_over_tokens(rewards, values, mask, gamma=0.5, lam=1.0)
    torch.testing.assert_close(advantages, torch.tensor([[0.0, 0.25 - 0.5, 0.5 - 0.5, 1.0 - 0.5, 0.0]]))


def test_clipped_surrogate_by_hand():
    log_probs = torch.tensor([[0.5, 0.5]])
    old = torch.zeros(1, 2)
    mask = torch.tensor([[1.0, 0.0]])
    # ratio e^0.5 = 1.6487 > 1 + eps: a positive advantage is clipped at 1.2, a negative one is not.
    assert float(clipped_surrogate_loss(log_probs, old, torch.tensor([[1.0, 7.0]]), mask, 0.2)) == pytest.approx(-1.2)
    assert float(clipped_surrogate_loss(log_probs, old, torch.tensor([[-1.0, 7.0]]), mask, 0.2)) == pytest.approx(
        math.exp(0.5)
    )


def test_adaptive_beta_moves_toward_target(tiny_pipeline):
    config = RLHFConfig(beta=0.1, target_kl=1.0, beta_gain=0.5)
    trainer = RLHFTrainer(
        tiny_pipeline.sft.model,
        tiny_pipeline.pretrained.tokenizer,
        config,
        reward_function=lambda prompt, response: 0.0,
    )
    trainer.adapt_beta(10.0)  # error clipped at +0.2
    assert trainer.beta == pytest.approx(0.1 * 1.1)
    trainer.adapt_beta(0.95)  # error -0.05
    assert trainer.beta == pytest.approx(0.1 * 1.1 * 0.975)


def test_score_lands_on_each_responses_last_token(tiny_pipeline):
    trainer = RLHFTrainer(
        tiny_pipeline.sft.model,
        tiny_pipeline.pretrained.tokenizer,
        RLHFConfig(
            samples_per_prompt=3, max_new_tokens=6, beta=0.0, gamma=1.0, gae_lambda=1.0, leave_one_out_baseline=False
        ),
        reward_function=lambda prompt, response: 2.0,
    )
    rollout = trainer.act(["walk forward 2 meters", "turn left then stop"])
    assert rollout.tokens.shape[0] == 6 and rollout.scores.tolist() == [2.0] * 6
    torch.testing.assert_close(rollout.log_probs, rollout.ref_log_probs)  # policy == reference before any update
    assert float(rollout.kl_per_response.abs().max()) == 0.0
    advantages, returns = trainer.compute_returns(rollout)
    # beta 0, gamma = lambda = 1: every response token's return is the score 2; V = 0 before training.
    torch.testing.assert_close(returns, 2.0 * rollout.mask)


def test_leave_one_out_baseline_by_hand(tiny_pipeline):
    trainer = RLHFTrainer(
        tiny_pipeline.sft.model,
        tiny_pipeline.pretrained.tokenizer,
        RLHFConfig(samples_per_prompt=3),
        reward_function=lambda prompt, response: 0.0,
    )
    # Prompt 1 scores (1, 2, 3): baselines (2.5, 2, 1.5). Prompt 2 scores (0, 0, 6): baselines (3, 3, 0).
    centered = trainer.centered_scores(torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 6.0]))
    torch.testing.assert_close(centered, torch.tensor([-1.5, 0.0, 1.5, -3.0, -3.0, 6.0]))


def test_a_reward_is_required(tiny_pipeline):
    with pytest.raises(ConfigError, match="needs a reward"):
        RLHFTrainer(tiny_pipeline.sft.model, tiny_pipeline.pretrained.tokenizer, RLHFConfig())


def test_rlhf_logs_reward_kl_and_penalty_rate(tiny_pipeline):
    history = tiny_pipeline.rlhf.history
    assert len(history) == 2
    for entry in history:
        assert {"reward", "kl", "penalty_rate", "beta", "reward_model", "programmatic"} <= entry.keys()
        assert 0.0 <= entry["penalty_rate"] <= 1.0 and math.isfinite(entry["kl"])
    assert history[0]["beta"] == 0.05 and history[1]["beta"] != history[0]["beta"]  # target_kl adapts beta


def test_normalize_advantages_keeps_zero_advantages_at_zero_unless_centered():
    from ogi.lm.rlhf import normalize_advantages

    advantages = torch.tensor([[9.0, 3.0, 0.0, 0.0], [9.0, -1.0, 0.0, 9.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    # masked values (3, 0, -1, 0): RMS sqrt(10 / 4)
    scale = math.sqrt(2.5)
    torch.testing.assert_close(
        normalize_advantages(advantages, mask, center=False),
        torch.tensor([[0.0, 3 / scale, 0.0, 0.0], [0.0, -1 / scale, 0.0, 0.0]]),
    )
    # centered: mean 0.5, deviations (2.5, -0.5, -1.5, -0.5), RMS sqrt(9 / 4) = 1.5
    torch.testing.assert_close(
        normalize_advantages(advantages, mask, center=True),
        torch.tensor([[0.0, 2.5 / 1.5, -0.5 / 1.5, 0.0], [0.0, -1.5 / 1.5, -0.5 / 1.5, 0.0]]),
    )


def test_a_reward_that_ranks_no_sample_above_another_leaves_the_policy_in_place(tiny_pipeline):
    # Leave-one-out advantages are exactly 0 (0.7 - mean of two 0.7s is 1e-8 in float arithmetic, which Adam would
    # make a full step of), the KL term is 0 (policy == reference) and V = 0 at the start: no token has a gradient.
    policy = copy.deepcopy(tiny_pipeline.sft.model)
    before = {name: tensor.clone() for name, tensor in policy.state_dict().items()}
    trainer = RLHFTrainer(
        policy,
        tiny_pipeline.pretrained.tokenizer,
        RLHFConfig(samples_per_prompt=3, max_new_tokens=6, minibatch_size=3, epochs=1),
        reward_function=lambda prompt, response: 0.7,
    )
    metrics = trainer.iteration(["walk forward 2 meters", "turn left then stop"])
    assert metrics["kl"] == 0.0
    for name, tensor in policy.state_dict().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0)
    assert trainer.centered_scores(torch.tensor([0.7, 0.7, 0.7, 1.0, 0.5, 0.0])).tolist() == pytest.approx(
        [0.0, 0.0, 0.0, 0.75, 0.0, -0.75]
    )

"""PPO over decisions: returns by hand, and on a one-step colour bandit the success rate rises above the SFT start
while the KL to the SFT planner stays finite; every iteration's checkpoint chains back to the SFT one."""

import copy
import dataclasses
import math

import pytest
import torch

from ogi.checkpoints import verify_checkpoint
from ogi.hierarchy.planner_data import EpisodeBatch
from ogi.hierarchy.planner_rl import DecisionPPO, PlannerRLConfig, rl_planner
from ogi.hierarchy.planner_training import PlannerSFTConfig, sft_planner
from ogi.lm.config import OptimizerConfig
from ogi.policies.planner import load_planner
from tests.hierarchy.planner_toys import ColourBandit, colour_dataset, tiny_planner

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_returns_by_hand():
    """One episode of three decisions: KL terms 0.1, 0, 0.2 (kl_coef 0.5), the second unsafe (0.2), success.

    r = (-0.05, -0.2, -0.1 + 1); V = 0 (the value head starts at zero); gamma 0.9, lambda 1:
    A_2 = 0.9, A_1 = -0.2 + 0.9 * 0.9 = 0.61, A_0 = -0.05 + 0.9 * 0.61 = 0.499.
    """
    planner = tiny_planner()
    bandit = ColourBandit(planner, seed=0)
    played = bandit(lambda *inputs: planner.act(*inputs), 3)
    reference_log_probs = planner.log_prob(*played.inputs(), played.stages, played.subgoals)[0].detach()
    batch = EpisodeBatch(
        **{name: getattr(played, name) for name in ("images", "states", "prev_stages", "prompt_ids", "prompt_lengths")},
        stages=played.stages,
        subgoals=played.subgoals,
        log_probs=reference_log_probs + torch.tensor([0.1, 0.0, 0.2]),
        episodes=torch.zeros(3, dtype=torch.long),
        decision_index=torch.tensor([0, 1, 2]),
        unsafe=torch.tensor([False, True, False]),
        success=torch.tensor([1.0]),
    )
    config = PlannerRLConfig(kl_coef=0.5, unsafe_penalty=0.2, gamma=0.9, gae_lambda=1.0)
    ppo = DecisionPPO(planner, copy.deepcopy(planner), config)
    advantages, returns, figures = ppo.compute_returns(batch)
    torch.testing.assert_close(advantages, torch.tensor([0.499, 0.61, 0.9]))
    torch.testing.assert_close(returns, advantages)
    assert figures["kl"] == pytest.approx(0.1) and figures["unsafe_rate"] == pytest.approx(1 / 3)
    assert figures["reward"] == pytest.approx(-0.05 - 0.2 + 0.9)


def _success_rate(planner, episodes=512, seed=99) -> float:
    bandit = ColourBandit(planner, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    return float(bandit(lambda *inputs: planner.act(*inputs, generator=generator), episodes).success.mean())


def test_ppo_raises_success_on_a_colour_bandit(tmp_path):
    planner = tiny_planner(seed=1)
    # a barely trained SFT start: 5 steps on random subgoals, so it knows nothing of the colours yet
    noise = colour_dataset(planner, 64, seed=3)
    noise = dataclasses.replace(noise, subgoals=torch.randint(0, 5, (64,), generator=torch.Generator().manual_seed(0)))
    sft = sft_planner(
        planner, noise, PlannerSFTConfig(steps=5, batch_size=16, heldout_fraction=0.25), tmp_path / "sft", None
    )
    reference = copy.deepcopy(planner)
    before = _success_rate(planner)
    config = PlannerRLConfig(
        iterations=16,
        episodes_per_iteration=64,
        minibatch_size=64,
        kl_coef=0.01,
        optimizer=OptimizerConfig(learning_rate=3e-3, eta_min=3e-3, warmup_fraction=0.0, weight_decay=0.0),
    )
    logged = []
    result = rl_planner(
        planner, reference, ColourBandit(planner, seed=1), config, tmp_path / "rl", sft.checkpoint,
        log=lambda i, n, figures: logged.append(i),
    )  # fmt: skip
    after = _success_rate(result.planner)
    assert before < 0.35 and after > before + 0.25, (before, after)
    assert all(math.isfinite(entry["kl"]) and entry["kl"] < 5.0 for entry in result.history)
    assert logged == list(range(1, config.iterations + 2)) and len(result.checkpoints) == config.iterations + 1
    # the best checkpoint is the one loaded, and the chain runs back through every iteration to the SFT planner
    assert result.best_success_rate == max(entry["success_rate"] for entry in result.history)
    assert result.best.eval_scores["success_rate"] == result.best_success_rate
    best = load_planner(result.best.path)
    for name, tensor in best.planner.state_dict().items():
        assert torch.equal(result.planner.state_dict()[name], tensor)
    chain = verify_checkpoint(result.checkpoints[-1].path)
    assert [c.config["stage"] for c in chain] == ["rl"] * (config.iterations + 1) + ["sft"]
    assert {"value.net.0.weight", "value.net.2.bias"} <= best.heads.keys()

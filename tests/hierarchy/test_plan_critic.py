"""The plan critic learns which candidate succeeds, vetoes back to the greedy decision when no candidate beats it,
self-play aggregates every round's plays and acts in each round with the critic trained after the round before,
and its checkpoints chain from the generator's."""

import dataclasses
import shutil

import pytest
import torch
import torch.nn.functional as F

from ogi.checkpoints import CheckpointError
from ogi.hierarchy.plan_critic import (
    CriticActor,
    CriticConfig,
    CriticData,
    concat_critic_data,
    fit_critic,
    load_critic,
    propose,
    self_play,
)
from ogi.hierarchy.planner_verifier import PlannerVerifier
from ogi.lm.config import OptimizerConfig
from ogi.policies.planner import save_planner
from ogi.validation import ConfigError
from tests.hierarchy.planner_toys import COLOURS, ColourBandit, stub_parent, tiny_planner

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bandit_rollout(planner, seed, seen):
    """Colour-bandit plays as critic data (no progress: one decision per episode); ``seen`` gets each act_fn."""
    bandit = ColourBandit(planner, seed=seed)

    def rollout(act_fn, count):
        seen.append(act_fn)
        batch = bandit(act_fn, count)
        return CriticData(batch=batch, progress=torch.zeros(batch.stages.shape[0]))

    return rollout


def _colours(batch):
    return torch.cdist(batch.images[..., :3].mean(dim=(1, 2)), COLOURS).argmin(dim=1)


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    planner = tiny_planner(seed=2)
    root = tmp_path_factory.mktemp("critic")
    parent = stub_parent(root / "generator")
    before = {name: tensor.clone() for name, tensor in planner.state_dict().items()}
    seen = []
    snapshots = []

    def rollout(act_fn, count):
        critic = act_fn.critic
        snapshots.append(None if critic is None else {k: v.clone() for k, v in critic.state_dict().items()})
        return inner(act_fn, count)

    inner = _bandit_rollout(planner, 0, seen)
    cfg = CriticConfig(rounds=3, episodes_per_round=300, steps_per_round=200, candidates=4, epsilon=0.2)
    result = self_play(planner, rollout, cfg, root / "critic", parent)
    return planner, before, result, parent, snapshots, cfg, root


def test_critic_loss_drops_and_it_ranks_the_right_subgoal_first():
    planner = tiny_planner(seed=3)
    generator = torch.Generator().manual_seed(0)
    batch = ColourBandit(planner, seed=1)(lambda *inputs: planner.act(*inputs, generator=generator), 800)
    data = CriticData(batch=batch, progress=torch.zeros(batch.stages.shape[0]))
    critic = PlannerVerifier(tiny_planner(seed=3))
    targets = data.targets(0.0)

    def loss():
        with torch.no_grad():
            critic.eval()
            return float(
                F.binary_cross_entropy_with_logits(critic(*batch.inputs(), batch.stages, batch.subgoals), targets)
            )

    start = loss()
    cfg = CriticConfig(steps_per_round=300, optimizer=OptimizerConfig(learning_rate=1e-3, eta_min=1e-4))
    fit = fit_critic(critic, data, cfg, torch.Generator().manual_seed(0))
    assert loss() < 0.6 * start
    # better calibrated on held-out episodes than always saying the base rate b, whose Brier score is b (1 - b)
    assert fit.heldout_brier < 0.75 * fit.base_rate * (1 - fit.base_rate)
    fresh = ColourBandit(planner, seed=9)(lambda *inputs: planner.act(*inputs), 64)
    scores = torch.stack(
        [
            critic.success_probability(*fresh.inputs(), fresh.stages, torch.full((64,), subgoal))
            for subgoal in range(planner.config.num_subgoals)
        ],
        dim=1,
    )
    assert (scores.argmax(dim=1) == _colours(fresh)).float().mean() > 0.9


def test_targets_are_outcome_plus_weighted_progress_of_failures():
    planner = tiny_planner()
    batch = ColourBandit(planner, seed=0)(lambda *inputs: planner.act(*inputs), 3)
    batch = type(batch)(**{**batch.__dict__, "success": torch.tensor([1.0, 0.0, 0.0])})
    data = CriticData(batch=batch, progress=torch.tensor([1.0, 0.5, 0.0]))
    torch.testing.assert_close(data.targets(0.5), torch.tensor([1.0, 0.25, 0.0]))
    torch.testing.assert_close(data.targets(0.0), torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="one per decision"):
        CriticData(batch=batch, progress=torch.zeros(2))


def test_concatenation_renumbers_episodes_and_repads_prompts():
    planner = tiny_planner()
    first = ColourBandit(planner, seed=0)(lambda *inputs: planner.act(*inputs), 5)
    second = ColourBandit(planner, seed=1)(lambda *inputs: planner.act(*inputs), 4)
    narrow = type(first)(**{**first.__dict__, "prompt_ids": first.prompt_ids[:, : int(first.prompt_lengths.max())]})
    parts = [CriticData(batch=narrow, progress=torch.zeros(5)), CriticData(batch=second, progress=torch.ones(4))]
    joined = concat_critic_data(parts, planner.tokenizer.pad_id)
    assert joined.batch.num_episodes == 9
    assert joined.batch.episodes.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert joined.progress.tolist() == [0.0] * 5 + [1.0] * 4
    assert joined.stop_success is None  # the first part has no stop verdicts
    labelled = [
        dataclasses.replace(part, stop_success=torch.full((len(part.progress),), float(i)))
        for i, part in enumerate(parts)
    ]
    assert concat_critic_data(labelled, planner.tokenizer.pad_id).stop_success.tolist() == [0.0] * 5 + [1.0] * 4
    width = joined.batch.prompt_ids.shape[1]
    assert width == max(narrow.prompt_ids.shape[1], second.prompt_ids.shape[1])
    for row in range(9):
        length = int(joined.batch.prompt_lengths[row])
        source = narrow if row < 5 else second
        assert torch.equal(
            joined.batch.prompt_ids[row, :length], source.prompt_ids[row % 5 if row < 5 else row - 5, :length]
        )


def test_proposals_hold_the_greedy_decision_first_with_true_log_probabilities():
    planner = tiny_planner(seed=4)
    batch = ColourBandit(planner, seed=2)(lambda *inputs: planner.act(*inputs), 12)
    stages, subgoals, log_probs = propose(planner, batch.inputs(), 5, torch.Generator().manual_seed(0))
    assert stages.shape == subgoals.shape == log_probs.shape == (12, 6)
    greedy = planner.act(*batch.inputs(), greedy=True)
    assert torch.equal(stages[:, 0], greedy[0]) and torch.equal(subgoals[:, 0], greedy[1])
    for column in range(6):
        with torch.no_grad():
            expected, _ = planner.log_prob(*batch.inputs(), stages[:, column], subgoals[:, column])
        torch.testing.assert_close(log_probs[:, column], expected)


def test_the_offered_stop_comes_with_the_greedy_stage_and_its_log_probability():
    planner = tiny_planner(seed=4)
    batch = ColourBandit(planner, seed=2)(lambda *inputs: planner.act(*inputs), 12)
    stages, subgoals, log_probs = propose(planner, batch.inputs(), 3, torch.Generator().manual_seed(0), stop=True)
    assert stages.shape == (12, 5)
    assert torch.equal(stages[:, -1], stages[:, 0])
    assert bool((subgoals[:, -1] == planner.config.stop_subgoal).all())
    with torch.no_grad():
        expected, _ = planner.log_prob(*batch.inputs(), stages[:, -1], subgoals[:, -1])
    torch.testing.assert_close(log_probs[:, -1], expected)


def test_stop_verdicts_teach_the_critic_where_stopping_succeeds():
    planner = tiny_planner(seed=6)
    generator = torch.Generator().manual_seed(0)
    batch = ColourBandit(planner, seed=4)(lambda *inputs: planner.act(*inputs, generator=generator), 500)
    stop_here = (_colours(batch) == 0).float()  # stopping succeeds on red images only
    data = CriticData(batch=batch, progress=torch.zeros(500), stop_success=stop_here)
    critic = PlannerVerifier(tiny_planner(seed=6))
    cfg = CriticConfig(steps_per_round=200, optimizer=OptimizerConfig(learning_rate=1e-3, eta_min=1e-4))
    fit = fit_critic(critic, data, cfg, torch.Generator().manual_seed(0))
    assert fit.heldout_stop_accuracy > 0.9 and 0.1 < fit.stop_base_rate < 0.4
    fresh = ColourBandit(planner, seed=8)(lambda *inputs: planner.act(*inputs), 64)
    stop = torch.full((64,), planner.config.stop_subgoal)
    scores = critic.success_probability(*fresh.inputs(), fresh.stages, stop)
    red = _colours(fresh) == 0
    assert scores[red].min() > scores[~red].max()
    without = fit_critic(PlannerVerifier(tiny_planner(seed=6)), data, dataclasses.replace(cfg, stop_candidate=False),
                         torch.Generator().manual_seed(0))  # fmt: skip
    assert without.heldout_stop_accuracy == -1.0


class _PrefersSubgoal:
    """A stand-in critic: p = 0.9 for one subgoal, 0.1 for every other."""

    def __init__(self, subgoal):
        self.subgoal = subgoal

    def success_probability(self, *inputs):
        return torch.where(inputs[-1] == self.subgoal, 0.9, 0.1)


def test_actor_takes_a_better_candidate_and_otherwise_keeps_the_greedy_one():
    planner = tiny_planner(seed=5)
    batch = ColourBandit(planner, seed=3)(lambda *inputs: planner.act(*inputs), 64)
    greedy = planner.act(*batch.inputs(), greedy=True)
    target = int((torch.arange(5)[:, None] != greedy[1][None]).sum(dim=1).argmax())  # mostly not the greedy one
    actor = CriticActor(
        planner, _PrefersSubgoal(target), candidates=4, epsilon=0.0, veto_margin=0.1,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    stages, subgoals, _ = actor(*batch.inputs())
    proposals = propose(planner, batch.inputs(), 4, torch.Generator().manual_seed(0))
    offered = (proposals[1][:, 1:] == target).any(dim=1) & (greedy[1] != target)
    assert offered.any() and (~offered).any()
    assert bool((subgoals[offered] == target).all())
    assert torch.equal(subgoals[~offered], greedy[1][~offered]) and torch.equal(stages[~offered], greedy[0][~offered])
    assert actor.overrides == int(offered.sum()) and actor.explored == 0 and actor.decisions == 64
    # a margin no score difference reaches: the veto keeps every greedy decision
    vetoing = CriticActor(
        planner, _PrefersSubgoal(target), candidates=4, epsilon=0.0, veto_margin=0.9,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert torch.equal(vetoing(*batch.inputs())[1], greedy[1]) and vetoing.overrides == 0
    exploring = CriticActor(
        planner, None, candidates=4, epsilon=0.0, veto_margin=0.0, generator=torch.Generator().manual_seed(0)
    )
    exploring(*batch.inputs())
    assert exploring.explored == exploring.decisions == 64
    # the offered stop: taken where the critic rates it best, never drawn by exploration
    stop = planner.config.stop_subgoal
    stopping = CriticActor(
        planner, _PrefersSubgoal(stop), candidates=4, epsilon=0.0, veto_margin=0.1,
        generator=torch.Generator().manual_seed(0), offer_stop=True,
    )  # fmt: skip
    _, subgoals, _ = stopping(*batch.inputs())
    assert bool((subgoals == stop).all()) and stopping.overrides == int((greedy[1] != stop).sum())
    drawing = CriticActor(
        planner, _PrefersSubgoal(stop), candidates=4, epsilon=1.0, veto_margin=0.1,
        generator=torch.Generator().manual_seed(0), offer_stop=True,
    )  # fmt: skip
    drawn = drawing(*batch.inputs())[1]
    offered = propose(planner, batch.inputs(), 4, torch.Generator().manual_seed(0), stop=True)[1]
    assert bool((offered[:, 1:-1] == drawn[:, None]).any(dim=1).all())
    assert drawing.explored == 64


def test_self_play_aggregates_rounds_and_acts_with_the_previous_rounds_critic(played):
    planner, before, result, _, snapshots, cfg, _ = played
    assert [r["trained_episodes"] for r in result.rounds] == [300, 600, 900]
    assert [r["episodes"] for r in result.rounds] == [300, 300, 300]
    decisions = [r["decisions"] for r in result.rounds]
    assert [r["trained_decisions"] for r in result.rounds] == [sum(decisions[: i + 1]) for i in range(3)]
    assert snapshots[0] is None and result.rounds[0]["explore_rate"] == 1.0
    for round_index in (1, 2):
        saved = load_critic(result.checkpoints[round_index - 1].path).state_dict()
        used = snapshots[round_index]
        assert used.keys() == saved.keys()
        assert all(torch.equal(used[k], saved[k]) for k in saved)
    assert not all(torch.equal(snapshots[1][k], snapshots[2][k]) for k in snapshots[1])
    # the critic's picks do better than the generator's samples did in round 1
    assert result.rounds[2]["success"] > result.rounds[0]["success"] + 0.15
    for name, tensor in planner.state_dict().items():
        assert torch.equal(before[name], tensor)


def test_critic_checkpoints_chain_from_the_generator_and_round_trip(played):
    _, _, result, parent, _, _, root = played
    first, *rest = result.checkpoints
    assert first.parent_sha256 == parent.checkpoint_sha256
    for earlier, later in zip(result.checkpoints, rest):
        assert later.parent_sha256 == earlier.checkpoint_sha256
    assert all(c.config["stage"] == "critic" for c in result.checkpoints)
    loaded = load_critic(root / "critic")  # the run's newest
    batch = ColourBandit(loaded.trunk, seed=5)(lambda *inputs: loaded.trunk.act(*inputs), 8)
    inputs = (*batch.inputs(), batch.stages, batch.subgoals)
    torch.testing.assert_close(loaded.success_probability(*inputs), result.critic.success_probability(*inputs))


def test_loading_a_wrong_stage_or_a_damaged_critic_fails_clearly(played, tmp_path):
    planner, _, result, _, _, _, _ = played
    sft = save_planner(
        tmp_path / "sft", planner, stage="sft", stage_config={}, step=1, iteration=1, data_manifest={},
        eval_scores={}, parent=None,
    )  # fmt: skip
    with pytest.raises(CheckpointError, match="expected one of"):
        load_critic(sft.path)
    damaged = tmp_path / "damaged"
    shutil.copytree(result.checkpoints[-1].path, damaged)
    weights = damaged / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_critic(damaged)


@pytest.mark.parametrize(
    "field,value",
    [
        ("rounds", 0),
        ("episodes_per_round", 1),
        ("candidates", 0),
        ("epsilon", 1.5),
        ("veto_margin", -0.1),
        ("progress_weight", 2.0),
        ("steps_per_round", 0),
        ("heldout_every", 1),
        ("train_trunk", "yes"),
    ],
)
def test_bad_config_values_raise(field, value):
    with pytest.raises(ConfigError, match=field):
        CriticConfig(**{field: value})


def test_bad_actor_values_raise():
    planner = tiny_planner()
    with pytest.raises(ConfigError, match="candidates"):
        CriticActor(planner, None, candidates=0, epsilon=0.0, veto_margin=0.0, generator=torch.Generator())
    with pytest.raises(ConfigError, match="epsilon"):
        CriticActor(planner, None, candidates=2, epsilon=-1.0, veto_margin=0.0, generator=torch.Generator())

"""The success verifier learns which subgoal succeeds for an image's colour, best-of-N with it beats one sample,
ties go to the likelier candidate, and its checkpoint is the SFT planner's child."""

import pytest
import torch

from ogi.hierarchy.planner_verifier import PlannerVerifier, VerifierConfig, best_of_n_act, load_verifier, train_verifier
from tests.hierarchy.planner_toys import COLOURS, ColourBandit, stub_parent, tiny_planner

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    planner = tiny_planner(seed=2)
    generator = torch.Generator().manual_seed(0)
    data = ColourBandit(planner, seed=0)(lambda *inputs: planner.act(*inputs, generator=generator), 800)
    root = tmp_path_factory.mktemp("verifier")
    parent = stub_parent(root / "sft")
    before = {name: tensor.clone() for name, tensor in planner.state_dict().items()}
    result = train_verifier(
        planner, data, VerifierConfig(steps=300, batch_size=64, heldout_fraction=0.2), root / "verifier", parent
    )
    return planner, result, parent, before


def test_verifier_learns_the_outcome_and_leaves_the_planner_alone(trained):
    planner, result, _, before = trained
    assert result.heldout_accuracy > max(result.base_rate, 1 - result.base_rate) + 0.05
    assert result.heldout_brier < 0.1
    for name, tensor in planner.state_dict().items():
        assert torch.equal(before[name], tensor)


def test_verifier_prefers_the_right_subgoal(trained):
    planner, result, _, _ = trained
    bandit = ColourBandit(planner, seed=7)
    batch = bandit(lambda *inputs: planner.act(*inputs), 64)
    # recover each image's colour from its mean RGB
    rgb = batch.images[..., :3].mean(dim=(1, 2))
    colours = torch.cdist(rgb, COLOURS).argmin(dim=1)
    scores = torch.stack(
        [
            result.verifier.success_probability(*batch.inputs(), batch.stages, torch.full((64,), subgoal))
            for subgoal in range(planner.config.num_subgoals)
        ],
        dim=1,
    )
    assert (scores.argmax(dim=1) == colours).float().mean() > 0.9


def test_best_of_n_beats_one_sample(trained):
    planner, result, _, _ = trained
    bandit = ColourBandit(planner, seed=11)
    generator = torch.Generator().manual_seed(1)
    single = bandit(lambda *inputs: planner.act(*inputs, generator=generator), 256).success.mean()
    chosen = bandit(lambda *inputs: best_of_n_act(planner, result.verifier, inputs, 8, generator=generator)[:3], 256)
    assert chosen.success.mean() > single + 0.3


def test_ties_go_to_the_likelier_candidate(trained):
    planner = trained[0]
    verifier = PlannerVerifier(planner)
    with torch.no_grad():
        verifier.head[2].weight.zero_()
        verifier.head[2].bias.zero_()
    batch = ColourBandit(planner, seed=3)(lambda *inputs: planner.act(*inputs), 16)
    generator = torch.Generator().manual_seed(4)
    stages, subgoals, log_probs, scores = best_of_n_act(planner, verifier, batch.inputs(), 6, generator=generator)
    generator = torch.Generator().manual_seed(4)
    candidates = planner.act(*batch.inputs(), generator=generator, n_candidates=6)
    assert torch.equal(scores, torch.full((16,), 0.5))
    torch.testing.assert_close(log_probs, candidates[2].max(dim=1).values)


def test_verifier_checkpoint_round_trip(trained):
    _, result, parent, _ = trained
    assert result.checkpoint.parent_sha256 == parent.checkpoint_sha256
    assert result.checkpoint.config["stage"] == "verifier"
    loaded = load_verifier(result.checkpoint.path)
    batch = ColourBandit(loaded.trunk, seed=5)(lambda *inputs: loaded.trunk.act(*inputs), 8)
    inputs = (*batch.inputs(), batch.stages, batch.subgoals)
    torch.testing.assert_close(loaded.success_probability(*inputs), result.verifier.success_probability(*inputs))

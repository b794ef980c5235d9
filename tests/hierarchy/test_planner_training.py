"""Pretraining -> SFT: the planner starts from the pretrained language model, fine-tunes on decisions, and its
checkpoints chain back; a seeing planner learns a subgoal set by the image's colour, a blind one cannot."""

import dataclasses

import numpy as np
import pytest
import torch

from ogi.checkpoints import verify_checkpoint
from ogi.envs.layout import MAX_STAGES, NUM_SUBGOALS, STOP
from ogi.hierarchy.planner_training import PlannerPretrainConfig, PlannerSFTConfig, pretrain_planner_lm, sft_planner
from ogi.lm.config import OptimizerConfig
from ogi.lm.store import load_language_model
from ogi.policies.planner import PlannerConfig, load_planner
from ogi.validation import ConfigError
from tests.hierarchy.planner_toys import COLOURS, INSTRUCTIONS, TINY, colour_dataset, tiny_planner

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SFT = PlannerSFTConfig(
    steps=150,
    batch_size=32,
    heldout_fraction=0.25,
    optimizer=OptimizerConfig(learning_rate=3e-3, eta_min=3e-4, weight_decay=0.0),
)


def test_planner_codebook_defaults_agree_with_the_arena_layout():
    config = PlannerConfig()
    assert config.num_subgoals == NUM_SUBGOALS and config.stop_subgoal == STOP and config.num_stages == MAX_STAGES


def test_planner_state_size_agrees_with_the_episode_runner():
    from ogi.hierarchy.episodes import planner_state

    one = np.zeros((1, 3))
    state = planner_state(one, one, np.zeros(1), one, np.zeros(1), 1.0)
    assert state.shape == (1, PlannerConfig().state_dim)


def test_pretrain_then_sft_chain_back_to_the_language_model(tmp_path):
    documents = [f"{text} , then {other} ." for text in INSTRUCTIONS for other in INSTRUCTIONS] * 3
    config = PlannerPretrainConfig(steps=4, batch_size=4, planner=TINY)
    pretrained = pretrain_planner_lm(documents, config, tmp_path / "pretrain")
    language_model = load_language_model(tmp_path / "pretrain" / "language_model", expect_stage=("pretrain",))
    assert language_model.tokenizer.num_action_tokens == TINY.num_action_tokens
    for name, tensor in language_model.model.state_dict().items():
        torch.testing.assert_close(pretrained.planner.transformer.state_dict()[name], tensor)
    assert pretrained.checkpoint.parent_sha256 == language_model.checkpoint.checkpoint_sha256

    planner = pretrained.planner
    sft = sft_planner(
        planner,
        colour_dataset(planner, 64, seed=0),
        dataclasses.replace(SFT, steps=3),
        tmp_path / "sft",
        pretrained.checkpoint,
    )
    chain = verify_checkpoint(sft.checkpoint.path)
    assert [c.config["stage"] for c in chain] == ["sft", "pretrain", "pretrain"]
    assert chain[1].config.get("kind") == "planner" and "kind" not in chain[2].config
    loaded = load_planner(tmp_path / "sft", expect_stage=("sft",))
    assert loaded.planner.tokenizer.to_dict() == planner.tokenizer.to_dict()
    assert sft.checkpoint.data_manifest["train_decisions"] == sft.train_decisions


def test_seeing_planner_learns_the_colour_and_a_blind_one_cannot(tmp_path):
    seen = []
    results = {}
    for vision in (True, False):
        planner = tiny_planner(vision=vision)
        dataset = colour_dataset(planner, 800, seed=0)
        progress = (lambda step, total, figures: seen.append(step)) if vision else None
        results[vision] = sft_planner(planner, dataset, SFT, tmp_path / str(vision), None, progress=progress)
    chance = 1.0 / len(COLOURS)
    assert results[True].heldout.subgoal > 0.9 and results[True].heldout.joint > 0.9
    assert results[False].heldout.subgoal <= chance + 0.15
    # the stage is the previous one, which the state token carries to both
    assert results[True].heldout.stage > 0.9 and results[False].heldout.stage > 0.9
    assert seen == list(range(1, SFT.steps + 1))
    assert results[True].checkpoint.eval_scores["heldout_subgoal_accuracy"] == results[True].heldout.subgoal


def test_a_seeing_planner_refuses_decisions_without_images(tmp_path):
    planner = tiny_planner(vision=True)
    dataset = colour_dataset(planner, 32, seed=0)
    blank = dataclasses.replace(dataset, images=torch.zeros_like(dataset.images))
    with pytest.raises(ConfigError, match="all 32 decisions carry blank images"):
        sft_planner(planner, blank, dataclasses.replace(SFT, steps=1), tmp_path / "sft", None)
    assert not (tmp_path / "sft").exists()
    blind = tiny_planner(vision=False)  # a blind planner never looks: blank images are what it expects
    result = sft_planner(blind, blank, dataclasses.replace(SFT, steps=1), tmp_path / "blind", None)
    assert result.steps == 1

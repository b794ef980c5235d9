"""The tiny pipeline end to end: every stage runs, checkpoints chain back to pretraining, seeds fix the results."""

import dataclasses
import math

import pytest
import torch

from ogi.checkpoints import verify_checkpoint
from ogi.lm.config import PretrainConfig, RLHFConfig
from ogi.lm.corpus import Demonstration, plan_score
from ogi.lm.data import ContextLengthError
from ogi.lm.pretrain import pretrain
from ogi.lm.reward_model import RewardModel, train_reward_model
from ogi.lm.rlhf import train_rlhf
from ogi.lm.sft import supervised_finetune
from ogi.lm.store import load_language_model
from tests.lm.conftest import TINY_PRETRAIN, TINY_REWARD, TINY_SFT


def test_every_stage_reports_finite_figures(tiny_pipeline):
    pre = tiny_pipeline.pretrained
    assert pre.tokens_trained == TINY_PRETRAIN.steps * TINY_PRETRAIN.batch_size * TINY_PRETRAIN.model.context_length
    assert pre.corpus_tokens > pre.tokens_trained / 10 and pre.heldout_tokens > 0
    assert 1.0 < pre.perplexity < pre.unigram_perplexity  # even 30 steps beat unigram frequencies
    assert 0.0 <= tiny_pipeline.sft.exact_match <= 1.0 and tiny_pipeline.sft.response_tokens_trained > 0
    assert 0.0 <= tiny_pipeline.reward.accuracy <= 1.0
    assert math.isfinite(tiny_pipeline.rlhf.reward_gain)


def test_checkpoints_chain_back_to_pretraining(tiny_pipeline):
    root = tiny_pipeline.run_root
    stages = {"pretrain": 1, "sft": 2, "reward": 3, "rlhf": 3}
    for stage, length in stages.items():
        loaded = load_language_model(root / stage)
        chain = verify_checkpoint(loaded.checkpoint.path)
        assert loaded.stage == stage and len(chain) == length
        assert chain[-1].config["stage"] == "pretrain"
    rlhf = load_language_model(root / "rlhf")
    assert [c.config["stage"] for c in verify_checkpoint(rlhf.checkpoint.path)] == ["rlhf", "sft", "pretrain"]
    assert {"value.net.0.weight", "value.net.2.bias"} <= rlhf.heads.keys()
    assert rlhf.checkpoint.reward_weights["kl_beta"] > 0


def test_loaded_models_reproduce_the_trained_ones(tiny_pipeline):
    root = tiny_pipeline.run_root
    tokens = torch.tensor([[1, 4, 7, 8, 5]])
    sft = load_language_model(root / "sft")
    reward = load_language_model(root / "reward", expect_stage=("reward",))
    scorer = RewardModel.from_parts(reward.model, reward.heads)
    lengths = torch.tensor([5])
    torch.testing.assert_close(scorer(tokens, lengths), tiny_pipeline.reward.reward_model(tokens, lengths))
    assert sft.tokenizer.to_dict() == tiny_pipeline.pretrained.tokenizer.to_dict()
    with pytest.raises(ValueError, match="expected one of"):
        load_language_model(root / "sft", expect_stage=("reward",))


def test_same_seed_same_weights_and_outputs():
    config = dataclasses.replace(TINY_PRETRAIN, steps=5)
    first, second = pretrain(config), pretrain(config)
    other = pretrain(dataclasses.replace(config, seed=1))
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name
    assert first.perplexity == second.perplexity
    assert not torch.equal(first.model.token_embedding.weight, other.model.token_embedding.weight)
    sft_config = dataclasses.replace(TINY_SFT, steps=3)
    sft_a = supervised_finetune(first.model, first.tokenizer, sft_config)
    sft_b = supervised_finetune(second.model, second.tokenizer, sft_config)
    assert torch.equal(sft_a.model.token_embedding.weight, sft_b.model.token_embedding.weight)
    rl_config = RLHFConfig(
        iterations=2,
        train_prompts=10,
        eval_prompts=3,
        prompts_per_iteration=2,
        samples_per_prompt=2,
        max_new_tokens=6,
        minibatch_size=4,
    )
    rl_a = train_rlhf(sft_a.model, first.tokenizer, rl_config, reward_function=plan_score)
    rl_b = train_rlhf(sft_b.model, second.tokenizer, rl_config, reward_function=plan_score)
    assert rl_a.history == rl_b.history and rl_a.after == rl_b.after


def test_empty_data_and_overlong_examples_are_clear_errors(tiny_pipeline):
    from ogi.validation import ConfigError

    with pytest.raises(ConfigError, match="pretraining corpus is empty"):
        pretrain(TINY_PRETRAIN, documents=[])
    with pytest.raises(ConfigError, match="pretraining corpus is empty"):
        pretrain(PretrainConfig(documents=0))
    model, tokenizer = tiny_pipeline.sft.model, tiny_pipeline.pretrained.tokenizer
    with pytest.raises(ConfigError, match="no SFT demonstrations"):
        supervised_finetune(model, tokenizer, TINY_SFT, demonstrations=[])
    with pytest.raises(ConfigError, match="no preference data"):
        train_reward_model(model, tokenizer, dataclasses.replace(TINY_REWARD, train_pairs=0))
    long_response = " ; ".join(["forward 2"] * 20)
    with pytest.raises(ContextLengthError, match="exceeds the model's context_length = 48"):
        supervised_finetune(
            model,
            tokenizer,
            TINY_SFT,
            demonstrations=[Demonstration(prompt="walk forward 2 meters", response=long_response)],
        )

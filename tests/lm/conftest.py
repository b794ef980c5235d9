"""Tiny configurations and a once-per-session tiny pipeline shared by the language-model tests."""

import copy
from dataclasses import dataclass

import pytest
import torch

from ogi.lm.config import ModelShape, OptimizerConfig, PretrainConfig, RewardConfig, RLHFConfig, SFTConfig
from ogi.lm.corpus import plan_score
from ogi.lm.pretrain import PretrainResult, pretrain
from ogi.lm.reward_model import RewardResult, train_reward_model
from ogi.lm.rlhf import RLHFResult, train_rlhf
from ogi.lm.sft import SFTResult, supervised_finetune

TINY_SHAPE = ModelShape(context_length=48, n_layers=1, width=32, n_heads=2)
TINY_PRETRAIN = PretrainConfig(steps=30, batch_size=8, documents=300, heldout_documents=30, model=TINY_SHAPE)
TINY_SFT = SFTConfig(steps=20, batch_size=8, train_examples=60, heldout_examples=6)
TINY_REWARD = RewardConfig(steps=10, batch_size=8, train_pairs=60, heldout_pairs=10, sampled_prompts=6)
TINY_RLHF = RLHFConfig(
    iterations=2,
    train_prompts=20,
    prompts_per_iteration=2,
    samples_per_prompt=3,
    eval_prompts=4,
    max_new_tokens=10,
    minibatch_size=4,
    target_kl=1.0,
    optimizer=OptimizerConfig(learning_rate=1e-3, eta_min=1e-3, warmup_fraction=0.0),
)

TINY_TOML = """
steps = 30
batch_size = 8
documents = 300
heldout_documents = 30
[model]
context_length = 48
n_layers = 1
width = 32
n_heads = 2
"""
TINY_SFT_TOML = "batch_size = 8\ntrain_examples = 60\nheldout_examples = 6\n"
TINY_REWARD_TOML = "batch_size = 8\ntrain_pairs = 60\nheldout_pairs = 10\nsampled_prompts = 6\n"
TINY_RLHF_TOML = (
    "train_prompts = 20\neval_prompts = 4\nprompts_per_iteration = 2\nsamples_per_prompt = 3\n"
    "max_new_tokens = 10\nminibatch_size = 4\n"
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Every language-model test module runs on one torch thread."""


@dataclass
class TinyPipeline:
    pretrained: PretrainResult
    sft: SFTResult
    reward: RewardResult
    rlhf: RLHFResult
    run_root: object


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> TinyPipeline:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lm_pipeline")
    pretrained = pretrain(TINY_PRETRAIN, run_dir=root / "pretrain")
    sft = supervised_finetune(
        pretrained.model, pretrained.tokenizer, TINY_SFT, run_dir=root / "sft", parent=pretrained.checkpoint
    )
    reward = train_reward_model(
        sft.model, pretrained.tokenizer, TINY_REWARD, run_dir=root / "reward", parent=sft.checkpoint
    )
    rlhf = train_rlhf(
        copy.deepcopy(sft.model),
        pretrained.tokenizer,
        TINY_RLHF,
        reward_model=reward.reward_model,
        reward_function=plan_score,
        run_dir=root / "rlhf",
        parent=sft.checkpoint,
    )
    return TinyPipeline(pretrained=pretrained, sft=sft, reward=reward, rlhf=rlhf, run_root=root)

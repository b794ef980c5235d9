"""Configs of the language-model stages: frozen dataclasses, checked on construction, readable from TOML.

A TOML file holds the fields of one stage at top level and nested tables for ``[model]`` and ``[optimizer]``,
e.g. ``steps = 200`` and ``[optimizer] learning_rate = 1e-3``. Unknown keys and bad values raise
:class:`ogi.validation.ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ogi.lm.corpus import DISALLOWED_WORDS
from ogi.validation import ConfigError, check_choice, check_int, check_range, config_from_toml


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """Transformer shape; the vocabulary size comes from the tokenizer."""

    context_length: int = 64
    n_layers: int = 2
    width: int = 64
    n_heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0
    prefix_dim: int = 0

    def __post_init__(self) -> None:
        check_int("model.context_length", self.context_length, 8, 1_000_000)
        check_int("model.n_layers", self.n_layers, 1, 1000)
        check_int("model.width", self.width, 1, 100_000)
        check_int("model.n_heads", self.n_heads, 1, 1000)
        check_int("model.mlp_ratio", self.mlp_ratio, 1, 64)
        check_range("model.dropout", self.dropout, 0.0, 0.9)
        check_int("model.prefix_dim", self.prefix_dim, 0, 100_000)
        if self.width % self.n_heads:
            raise ConfigError(f"model.width = {self.width} must be a multiple of model.n_heads = {self.n_heads}")


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """AdamW with linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to ``eta_min``."""

    learning_rate: float = 3e-3
    eta_min: float = 3e-4
    warmup_fraction: float = 0.02
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        check_range("optimizer.learning_rate", self.learning_rate, 1e-8, 1.0)
        check_range("optimizer.eta_min", self.eta_min, 0.0, self.learning_rate)
        check_range("optimizer.warmup_fraction", self.warmup_fraction, 0.0, 0.5)
        check_range("optimizer.weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("optimizer.beta1", self.beta1, 0.0, 0.9999)
        check_range("optimizer.beta2", self.beta2, 0.0, 0.99999)
        check_range("optimizer.grad_clip", self.grad_clip, 1e-6, 1e6)


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    seed: int = 0
    steps: int = 300
    batch_size: int = 16
    documents: int = 6000
    heldout_documents: int = 600
    tokenizer: str = "word"
    bpe_vocab_size: int = 256
    num_action_tokens: int = 8
    compute_budget_flops: float = 0.0
    """With a budget > 0, model width/depth and steps are chosen by the compute-optimal rule instead."""
    tokens_per_parameter: float = 20.0
    inference_shrink: float = 0.3
    """Fraction by which the compute-optimal model is made smaller (the seed's 20-40% for inference cost)."""
    model: ModelShape = field(default_factory=ModelShape)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("steps", self.steps, 1, 10_000_000)
        check_int("batch_size", self.batch_size, 1, 100_000)
        check_int("documents", self.documents, 0, 100_000_000)
        check_int("heldout_documents", self.heldout_documents, 1, 100_000_000)
        check_choice("tokenizer", self.tokenizer, ("word", "bpe"))
        check_int("bpe_vocab_size", self.bpe_vocab_size, 16, 1_000_000)
        check_int("num_action_tokens", self.num_action_tokens, 0, 10_000)
        check_range("compute_budget_flops", self.compute_budget_flops, 0.0, 1e30)
        check_range("tokens_per_parameter", self.tokens_per_parameter, 1.0, 1e4)
        check_range("inference_shrink", self.inference_shrink, 0.0, 0.9)


@dataclass(frozen=True, kw_only=True)
class SFTConfig:
    seed: int = 0
    steps: int = 600
    batch_size: int = 32
    train_examples: int = 3000
    heldout_examples: int = 200
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(learning_rate=3e-3, eta_min=3e-4, weight_decay=0.0)
    )

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("steps", self.steps, 1, 10_000_000)
        check_int("batch_size", self.batch_size, 1, 100_000)
        check_int("train_examples", self.train_examples, 0, 100_000_000)
        check_int("heldout_examples", self.heldout_examples, 1, 100_000_000)


@dataclass(frozen=True, kw_only=True)
class RewardConfig:
    seed: int = 0
    steps: int = 200
    batch_size: int = 32
    train_pairs: int = 3000
    heldout_pairs: int = 300
    sampled_prompts: int = 0
    """Prompts whose samples from the initial model the verifier labels; each wrong sample adds a training pair."""
    samples_per_prompt: int = 4
    likelihood_term: bool = True
    """Add alpha times the trunk's log-likelihood of the response to the head's score (see RewardModel)."""
    likelihood_weight: float = 0.1
    """Initial alpha; trained with the rest of the reward model."""
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(learning_rate=1e-3, eta_min=1e-4, weight_decay=0.0)
    )

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("steps", self.steps, 1, 10_000_000)
        check_int("batch_size", self.batch_size, 1, 100_000)
        check_int("train_pairs", self.train_pairs, 0, 100_000_000)
        check_int("heldout_pairs", self.heldout_pairs, 1, 100_000_000)
        check_int("sampled_prompts", self.sampled_prompts, 0, 100_000_000)
        check_int("samples_per_prompt", self.samples_per_prompt, 1, 100_000)
        if not isinstance(self.likelihood_term, bool):
            raise ConfigError(f"likelihood_term = {self.likelihood_term!r} must be true or false")
        check_range("likelihood_weight", self.likelihood_weight, 0.0, 100.0)


@dataclass(frozen=True, kw_only=True)
class RLHFConfig:
    seed: int = 0
    iterations: int = 30
    train_prompts: int = 2000
    eval_prompts: int = 64
    """Held-out prompts sampled before and after training (same seed) to measure the reward gain and KL."""
    prompts_per_iteration: int = 16
    """With samples_per_prompt, 128 samples per iteration: the policy gradient of 32 samples was mostly noise, which
    Adam's per-parameter normalization turns into steps of full size (at learning rate 1e-3 the reward fell)."""
    samples_per_prompt: int = 8
    max_new_tokens: int = 24
    temperature: float = 1.0
    top_k: int = 0
    epochs: int = 2
    minibatch_size: int = 64
    clip_epsilon: float = 0.2
    gamma: float = 1.0
    """Tokens of one response are one episode with a terminal score, so no discounting by default."""
    gae_lambda: float = 0.95
    value_coef: float = 0.5
    beta: float = 0.05
    """Initial weight of the per-token KL penalty to the frozen reference (SFT) policy."""
    target_kl: float = 0.0
    """Per-response KL the adaptive beta steers toward; 0 keeps beta fixed."""
    beta_gain: float = 0.1
    """Adaptive beta: beta <- beta (1 + beta_gain clip(KL / target_kl - 1, -0.2, 0.2)) each iteration."""
    center_advantages: bool = False
    """Subtract the batch mean from the advantages before scaling them to unit RMS. Off by default: the
    leave-one-out baseline already centers each prompt's scores, and the batch mean (set by response lengths and
    the KL terms) would push every token of an uninformative response (all samples scored alike) up or down."""
    advantage_floor: float = 1e-3
    """Advantages are divided by max(their RMS, this): a batch without signal is not scaled up to unit size."""
    leave_one_out_baseline: bool = True
    """Subtract from each score the mean score of the other samples for the same prompt (RLOO) before GAE, so
    prompt-dependent reward offsets do not reach the policy gradient; needs samples_per_prompt >= 2."""
    reward_model_weight: float = 0.2
    """Reward-model scores spread over several units on the generated corpus; 0.2 puts them on the scale of the
    programmatic plan score (0..1), so neither drowns the other."""
    programmatic_weight: float = 1.0
    safety_penalty: float = 1.0
    disallowed_words: tuple[str, ...] = DISALLOWED_WORDS
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(learning_rate=3e-4, eta_min=3e-4, warmup_fraction=0.0, weight_decay=0.0)
    )

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("iterations", self.iterations, 1, 10_000_000)
        check_int("train_prompts", self.train_prompts, 1, 100_000_000)
        check_int("eval_prompts", self.eval_prompts, 1, 100_000_000)
        check_int("prompts_per_iteration", self.prompts_per_iteration, 1, 100_000)
        check_int("samples_per_prompt", self.samples_per_prompt, 1, 100_000)
        check_int("max_new_tokens", self.max_new_tokens, 1, 100_000)
        check_range("temperature", self.temperature, 1e-3, 100.0)
        check_int("top_k", self.top_k, 0, 10_000_000)
        check_int("epochs", self.epochs, 1, 1000)
        check_int("minibatch_size", self.minibatch_size, 1, 100_000)
        check_range("clip_epsilon", self.clip_epsilon, 0.0, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("value_coef", self.value_coef, 0.0, 100.0)
        check_range("beta", self.beta, 0.0, 100.0)
        check_range("target_kl", self.target_kl, 0.0, 1000.0)
        check_range("beta_gain", self.beta_gain, 0.0, 10.0)
        check_range("advantage_floor", self.advantage_floor, 0.0, 1e6)
        if not isinstance(self.center_advantages, bool):
            raise ConfigError(f"center_advantages = {self.center_advantages!r} must be true or false")
        if not isinstance(self.leave_one_out_baseline, bool):
            raise ConfigError(f"leave_one_out_baseline = {self.leave_one_out_baseline!r} must be true or false")
        check_range("reward_model_weight", self.reward_model_weight, 0.0, 1000.0)
        check_range("programmatic_weight", self.programmatic_weight, 0.0, 1000.0)
        check_range("safety_penalty", self.safety_penalty, 0.0, 1000.0)
        if not all(isinstance(word, str) and word for word in self.disallowed_words):
            raise ConfigError(f"disallowed_words = {self.disallowed_words!r} must be non-empty strings")


StageConfig = TypeVar("StageConfig")


def load_config(cls: type[StageConfig], path: Path | None, **overrides: Any) -> StageConfig:
    """A stage config from a TOML file (or the defaults when ``path`` is None) with ``overrides`` on top.

    Overrides whose value is None are ignored, so CLI options that were not given keep the file's value.
    """
    base = config_from_toml(cls, path) if path is not None else cls()
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return dataclasses.replace(base, **given)  # type: ignore[type-var]
    except TypeError as error:
        raise ConfigError(str(error)) from None


def to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config (tuples become lists)."""
    return dataclasses.asdict(config)

"""The 5 Hz vision-language-action planner: an RGB-D image, odometry and an instruction in, a stage and a subgoal out.

Every decision is one pass of the `ogi.lm` causal transformer over

    [vision tokens (grid_h x grid_w)] [state token] <bos> <prompt> instruction words <response> <act_s> <act_{S+g}>

The vision tokens are a small stride-2 CNN's feature grid over the image ``(H, W, 4)`` (RGB + depth, all in [0, 1]);
the state token embeds the odometry vector (see :data:`STATE_DIM`) together with a one-hot of the stage said last
time. Both go in as the transformer's prefix embeddings. The response is two reserved action tokens: the stage
``<act_s>``, s in [0, S), then the subgoal ``<act_{S+g}>``, g in [0, K) with g = K - 1 the stop; S and K are the
config's ``num_stages`` and ``num_subgoals``. The subgoal is predicted after the stage token, so it is conditioned on
the stage. Sampling is restricted to the valid reserved tokens at each position: the heads' logits are the
transformer's logits at those token ids only.

A blind planner (``vision=False``) replaces the vision tokens with a learned constant and has no CNN; every other
parameter has the same name and shape as in the seeing planner.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ogi.checkpoints import Checkpoint, CheckpointError, load_checkpoint, resolve_checkpoint, save_checkpoint
from ogi.lm.config import ModelShape
from ogi.lm.data import ContextLengthError, pad_right, prompt_ids
from ogi.lm.model import CausalTransformer, TransformerConfig
from ogi.lm.tokenizer import SPECIAL_TOKENS, Tokenizer, normalize, train_tokenizer
from ogi.validation import ConfigError, check_int, config_from_dict

STATE_DIM = 10
"""Odometry since the instruction began, in its start frame: dx, dy (m), cos and sin of the heading change, walking
speed (m/s); then the same since the planner itself last changed stage, in the frame it had then: dx, dy (m), cos
and sin of the heading change, and seconds in the stage up to 2 s, over 2 s. The planner's own stage changes set
that second frame, so each stage's progress ("one meter", "ninety degrees") reads directly. No clock beyond that:
with one, imitation learned when to turn and walk by the clock and not by what the camera showed."""

IMAGE_CHANNELS = 4  # RGB + depth

PlannerInputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""What one batch of decisions sees, in the order the planner's methods take it: images ``(B, H, W, 4)`` (float in
[0, 1], or uint8), states ``(B, STATE_DIM)``, the stages said last time ``(B,)``, prompt ids ``(B, T)`` right-padded
and prompt lengths ``(B,)``."""


@dataclass(frozen=True, kw_only=True)
class PlannerConfig:
    """Planner shape. ``num_stages`` and ``num_subgoals`` (the subgoal codebook plus the stop, which is the last
    index) are given by the caller; the defaults are the arena's 4 stages and 60 + 1 subgoals."""

    image_height: int = 24
    image_width: int = 32
    conv_channels: tuple[int, ...] = (16, 32)
    """Channels of the hidden stride-2 convolutions; one more stride-2 convolution maps to ``model.prefix_dim``."""
    vision_grid: tuple[int, int] = (3, 4)
    """The CNN's output is average-pooled to this (rows, columns) grid; each cell is one vision token."""
    state_dim: int = STATE_DIM
    num_stages: int = 4
    num_subgoals: int = 61
    vision: bool = True
    model: ModelShape = field(
        default_factory=lambda: ModelShape(context_length=64, n_layers=3, width=96, n_heads=4, prefix_dim=64)
    )

    def __post_init__(self) -> None:
        check_int("planner.image_height", self.image_height, 1, 4096)
        check_int("planner.image_width", self.image_width, 1, 4096)
        if not self.conv_channels or not isinstance(self.conv_channels, tuple):
            raise ConfigError(f"planner.conv_channels = {self.conv_channels!r} must be a non-empty tuple of ints")
        for index, channels in enumerate(self.conv_channels):
            check_int(f"planner.conv_channels[{index}]", channels, 1, 4096)
        if not isinstance(self.vision_grid, tuple) or len(self.vision_grid) != 2:
            raise ConfigError(f"planner.vision_grid = {self.vision_grid!r} must be a (rows, columns) pair")
        check_int("planner.vision_grid[0]", self.vision_grid[0], 1, 64)
        check_int("planner.vision_grid[1]", self.vision_grid[1], 1, 64)
        check_int("planner.state_dim", self.state_dim, 1, 4096)
        check_int("planner.num_stages", self.num_stages, 1, 1024)
        check_int("planner.num_subgoals", self.num_subgoals, 2, 100_000)
        if not isinstance(self.vision, bool):
            raise ConfigError(f"planner.vision = {self.vision!r} must be true or false")
        if self.model.prefix_dim < 1:
            raise ConfigError(
                f"planner.model.prefix_dim = {self.model.prefix_dim} must be >= 1: the image and "
                "state enter the transformer as prefix embeddings"
            )
        if self.max_prompt_tokens < 3:
            raise ConfigError(
                f"planner.model.context_length = {self.model.context_length} leaves {self.max_prompt_tokens} prompt "
                f"tokens after {self.n_prefix} prefix tokens and 2 response tokens; at least 3 are needed"
            )

    @property
    def n_vision_tokens(self) -> int:
        return self.vision_grid[0] * self.vision_grid[1]

    @property
    def n_prefix(self) -> int:
        """Vision tokens plus the state token."""
        return self.n_vision_tokens + 1

    @property
    def num_action_tokens(self) -> int:
        """Reserved ``<act_i>`` tokens a planner tokenizer needs: stages first, then subgoals."""
        return self.num_stages + self.num_subgoals

    @property
    def stop_subgoal(self) -> int:
        return self.num_subgoals - 1

    @property
    def max_prompt_tokens(self) -> int:
        """Longest prompt (separators included) that leaves room for the stage and subgoal tokens."""
        return self.model.context_length - self.n_prefix - 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannerConfig:
        return config_from_dict(cls, data, "planner.")


def planner_tokenizer(texts: Sequence[str], *, num_action_tokens: int, base: Tokenizer | None = None) -> Tokenizer:
    """A word tokenizer with ``num_action_tokens`` reserved action tokens that knows every word of ``texts``.

    Without ``base`` it is trained on ``texts``. With ``base`` (a word tokenizer with enough action tokens, e.g. the
    pretrained language model's), words it lacks are appended after its vocabulary, so every id it had keeps its
    meaning and a model trained with it can be grown (see :func:`load_language_model_weights`).
    """
    if base is None:
        return train_tokenizer(texts, kind="word", num_action_tokens=num_action_tokens)
    if base.kind != "word":
        raise ConfigError(f"only a word tokenizer can be extended with new words, not a {base.kind!r} one")
    if base.num_action_tokens < num_action_tokens:
        raise ConfigError(
            f"the base tokenizer has {base.num_action_tokens} action tokens, fewer than the {num_action_tokens} the "
            "planner needs; pretrain the language model with num_action_tokens >= num_stages + num_subgoals"
        )
    known = set(base.vocabulary)
    new_words = list(dict.fromkeys(w for text in texts for w in normalize(text).split() if w not in known))
    return Tokenizer(kind="word", vocabulary=[*base.vocabulary, *new_words], num_action_tokens=base.num_action_tokens)


def encode_prompts(tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Instructions in the language model's prompt format, right-padded: ids ``(B, T)`` and lengths ``(B,)``.

    Raises ContextLengthError naming the instruction when one needs more than ``max_tokens`` tokens.
    """
    if not texts:
        raise ValueError("encode_prompts needs at least one instruction")
    rows = [prompt_ids(tokenizer, text) for text in texts]
    for text, row in zip(texts, rows, strict=True):
        if len(row) > max_tokens:
            raise ContextLengthError(
                f"instruction {text!r} is {len(row)} prompt tokens, more than the planner's {max_tokens} "
                "(context_length - prefix tokens - 2 response tokens)"
            )
    return pad_right(rows, tokenizer.pad_id), torch.tensor([len(row) for row in rows], dtype=torch.long)


class _VisionEncoder(nn.Module):
    """(B, H, W, 4) in [0, 1] -> (B, grid_h * grid_w, prefix_dim): stride-2 convolutions, then a pooled grid."""

    def __init__(self, config: PlannerConfig):
        super().__init__()
        channels = (IMAGE_CHANNELS, *config.conv_channels, config.model.prefix_dim)
        layers: list[nn.Module] = []
        for index in range(len(channels) - 1):
            layers += [nn.Conv2d(channels[index], channels[index + 1], 3, stride=2, padding=1), nn.GELU()]
        self.convolutions = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(config.vision_grid)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.convolutions(images.permute(0, 3, 1, 2) - 0.5))
        return features.flatten(2).transpose(1, 2)


class Planner(nn.Module):
    """The planner network; ``tokenizer`` must hold at least ``config.num_action_tokens`` action tokens."""

    def __init__(self, config: PlannerConfig, tokenizer: Tokenizer):
        super().__init__()
        if tokenizer.num_action_tokens < config.num_action_tokens:
            raise ConfigError(
                f"the tokenizer has {tokenizer.num_action_tokens} action tokens; the planner needs "
                f"num_stages + num_subgoals = {config.num_action_tokens}"
            )
        self.config = config
        self.tokenizer = tokenizer
        prefix_dim = config.model.prefix_dim
        self.transformer = CausalTransformer(TransformerConfig.from_shape(config.model, tokenizer.vocab_size))
        if config.vision:
            self.vision_encoder = _VisionEncoder(config)
        else:
            self.blind_tokens = nn.Parameter(0.02 * torch.randn(config.n_vision_tokens, prefix_dim))
        self.state_encoder = nn.Sequential(
            nn.Linear(config.state_dim + config.num_stages, prefix_dim), nn.GELU(), nn.Linear(prefix_dim, prefix_dim)
        )
        first = len(SPECIAL_TOKENS)
        self.register_buffer("stage_token_ids", torch.arange(first, first + config.num_stages), persistent=False)
        self.register_buffer(
            "subgoal_token_ids",
            torch.arange(first + config.num_stages, first + config.num_action_tokens),
            persistent=False,
        )

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt ids ``(B, T)`` and lengths ``(B,)`` of instruction texts."""
        return encode_prompts(self.tokenizer, texts, self.config.max_prompt_tokens)

    def prefix(self, images: torch.Tensor, states: torch.Tensor, prev_stages: torch.Tensor) -> torch.Tensor:
        """Prefix embeddings ``(B, n_prefix, prefix_dim)``: the vision tokens, then the state token."""
        batch = states.shape[0]
        if self.config.vision:
            if images.dtype == torch.uint8:
                images = images.float() / 255.0
            vision = self.vision_encoder(images)
        else:
            vision = self.blind_tokens.expand(batch, -1, -1)
        stage = F.one_hot(prev_stages.long(), self.config.num_stages)
        state = self.state_encoder(torch.cat([states.float(), stage.float()], dim=1))
        return torch.cat([vision, state[:, None]], dim=1)

    def hidden_after(
        self,
        images: torch.Tensor,
        states: torch.Tensor,
        prev_stages: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_lengths: torch.Tensor,
        appended: Sequence[torch.Tensor] = (),
    ) -> torch.Tensor:
        """Hidden states ``(B, 1 + len(appended), width)`` at the prompt's last token (``<response>``) and at each
        token of ``appended`` (each ``(B,)`` of token ids), written right after each row's prompt: one forward."""
        lengths = prompt_lengths.long()
        width = int(lengths.max()) + len(appended)
        tokens = torch.full((prompt_ids.shape[0], width), self.tokenizer.pad_id, dtype=torch.long)
        tokens[:, : min(width, prompt_ids.shape[1])] = prompt_ids[:, :width]
        rows = torch.arange(tokens.shape[0])
        for offset, token in enumerate(appended):
            tokens[rows, lengths + offset] = token.long()
        # positions past a row's own tokens hold padding; causal attention keeps them out of that row's answers
        hidden, _ = self.transformer.hidden_states(tokens, prefix=self.prefix(images, states, prev_stages))
        positions = lengths[:, None] - 1 + torch.arange(len(appended) + 1)
        return hidden[rows[:, None], positions]

    def decision_logits(
        self,
        images: torch.Tensor,
        states: torch.Tensor,
        prev_stages: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_lengths: torch.Tensor,
        stages: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage logits ``(B, S)`` and subgoal logits ``(B, K)`` given the stage token ``stages`` ``(B,)`` (teacher
        forcing: the subgoal head reads the position of the stage token)."""
        stage_logits, subgoal_logits, _ = self.decision_outputs(
            images, states, prev_stages, prompt_ids, prompt_lengths, stages
        )
        return stage_logits, subgoal_logits

    def decision_outputs(
        self,
        images: torch.Tensor,
        states: torch.Tensor,
        prev_stages: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_lengths: torch.Tensor,
        stages: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`decision_logits` plus the hidden state ``(B, width)`` the stage is read from (for value heads)."""
        hidden = self.hidden_after(
            images, states, prev_stages, prompt_ids, prompt_lengths, (self.stage_token_ids[stages.long()],)
        )
        logits = self.transformer.logits(hidden)
        return logits[:, 0, self.stage_token_ids], logits[:, 1, self.subgoal_token_ids], hidden[:, 0]

    def log_prob(
        self,
        images: torch.Tensor,
        states: torch.Tensor,
        prev_stages: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_lengths: torch.Tensor,
        stages: torch.Tensor,
        subgoals: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(stage, subgoal | inputs) = log pi(stage | .) + log pi(subgoal | ., stage), ``(B,)``, and the
        hidden state ``(B, width)`` of the decision."""
        stage_logits, subgoal_logits, hidden = self.decision_outputs(
            images, states, prev_stages, prompt_ids, prompt_lengths, stages
        )
        stage_log_probs = torch.log_softmax(stage_logits, dim=-1).gather(1, stages.long()[:, None])
        subgoal_log_probs = torch.log_softmax(subgoal_logits, dim=-1).gather(1, subgoals.long()[:, None])
        return (stage_log_probs + subgoal_log_probs).squeeze(1), hidden

    @torch.no_grad()
    def act(
        self,
        images: torch.Tensor,
        states: torch.Tensor,
        prev_stages: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_lengths: torch.Tensor,
        *,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        n_candidates: int | None = None,
        use_cache: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Choose (stage, subgoal) per row: stages in [0, S), subgoals in [0, K), and their joint log-probability.

        Shapes ``(B,)``, or ``(B, n)`` with ``n_candidates=n`` (n draws per row; greedy repeats one answer). When
        all prompts have one length the subgoal step reuses the KV cache of the first pass; otherwise (or with
        ``use_cache=False``) the prompt is run again with the stage token written after it.
        """
        count = 1 if n_candidates is None else n_candidates
        if count < 1:
            raise ValueError(f"n_candidates = {n_candidates} must be >= 1")
        was_training = self.training
        self.eval()
        lengths = prompt_lengths.long()
        batch = lengths.shape[0]
        prefix = self.prefix(images, states, prev_stages)
        same_length = bool((lengths == lengths[0]).all())
        if use_cache and same_length:
            hidden, cache = self.transformer.hidden_states(prompt_ids[:, : int(lengths[0])], prefix=prefix)
            stage_hidden = hidden[:, -1]
        else:
            stage_hidden = self.hidden_after(images, states, prev_stages, prompt_ids, prompt_lengths)[:, 0]
        stage_log_probs = torch.log_softmax(self.transformer.logits(stage_hidden)[:, self.stage_token_ids], dim=-1)
        stage_log_probs = stage_log_probs.repeat_interleave(count, dim=0)
        stages = _choose(stage_log_probs, greedy, generator)
        stage_tokens = self.stage_token_ids[stages]
        if use_cache and same_length:
            cache = [(keys.repeat_interleave(count, 0), values.repeat_interleave(count, 0)) for keys, values in cache]
            subgoal_hidden = self.transformer.hidden_states(stage_tokens[:, None], cache=cache)[0][:, -1]
        else:
            repeat = (images, states, prev_stages, prompt_ids, prompt_lengths)
            subgoal_hidden = self.hidden_after(
                *(tensor.repeat_interleave(count, dim=0) for tensor in repeat), (stage_tokens,)
            )[:, 1]
        subgoal_log_probs = torch.log_softmax(
            self.transformer.logits(subgoal_hidden)[:, self.subgoal_token_ids], dim=-1
        )
        subgoals = _choose(subgoal_log_probs, greedy, generator)
        log_probs = stage_log_probs.gather(1, stages[:, None]) + subgoal_log_probs.gather(1, subgoals[:, None])
        self.train(was_training)
        shape = (batch,) if n_candidates is None else (batch, count)
        return stages.view(shape), subgoals.view(shape), log_probs.view(shape)


def _choose(log_probs: torch.Tensor, greedy: bool, generator: torch.Generator | None) -> torch.Tensor:
    if greedy:
        return log_probs.argmax(dim=-1)
    return torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(-1)


def load_language_model_weights(planner: Planner, language_model: CausalTransformer) -> None:
    """Copy a text-only language model's weights into the planner's transformer, in place.

    The prefix projection stays as it is (the language model has none). A planner vocabulary that extends the
    language model's (see :func:`planner_tokenizer`) keeps its extra rows; every other shape must match.
    """
    target = planner.transformer.state_dict()
    source = language_model.state_dict()
    for name, tensor in source.items():
        if name not in target:
            raise ConfigError(f"language-model weight {name!r} has no counterpart in the planner's transformer")
        grown = tensor.shape[0] <= target[name].shape[0] and tensor.shape[1:] == target[name].shape[1:]
        if name == "token_embedding.weight" and grown:
            target[name][: tensor.shape[0]] = tensor
        elif tensor.shape != target[name].shape:
            raise ConfigError(
                f"language-model weight {name!r} has shape {tuple(tensor.shape)}, the planner's "
                f"{tuple(target[name].shape)}: build the planner with the language model's shape"
            )
        else:
            target[name] = tensor
    planner.transformer.load_state_dict(target)


PLANNER_KIND = "planner"


def save_planner(
    run_dir: Path,
    planner: Planner,
    *,
    stage: str,
    stage_config: Mapping[str, Any],
    step: int,
    iteration: int,
    data_manifest: Mapping[str, Any],
    eval_scores: Mapping[str, float],
    parent: Checkpoint | None,
    heads: Mapping[str, torch.Tensor] | None = None,
    reward_weights: Mapping[str, float] | None = None,
) -> Checkpoint:
    """One planner checkpoint under ``run_dir``: weights ``planner.*`` (and ``head.*``), the planner config, its
    transformer shape and its whole tokenizer in the manifest, and ``parent`` for lineage."""
    weights = {f"planner.{name}": tensor for name, tensor in planner.state_dict().items()}
    weights.update({f"head.{name}": tensor for name, tensor in (heads or {}).items()})
    config = {
        "kind": PLANNER_KIND,
        "stage": stage,
        "planner": planner.config.to_dict(),
        "model": planner.transformer.config.to_dict(),
        "tokenizer": planner.tokenizer.to_dict(),
        "train": dict(stage_config),
    }
    return save_checkpoint(
        run_dir,
        step=step,
        iteration=iteration,
        weights=weights,
        state={},
        config=config,
        reward_weights=reward_weights or {},
        data_manifest=data_manifest,
        eval_scores=eval_scores,
        parent=parent,
    )


@dataclass(frozen=True, kw_only=True)
class PlannerCheckpoint:
    stage: str
    planner: Planner
    heads: dict[str, torch.Tensor]
    checkpoint: Checkpoint


def load_planner(path: Path, *, expect_stage: tuple[str, ...] = ()) -> PlannerCheckpoint:
    """A planner checkpoint (or a run's newest valid one), every hash verified; only safetensors and JSON are read."""
    loaded = load_checkpoint(resolve_checkpoint(path))
    config = loaded.checkpoint.config
    if config.get("kind") != PLANNER_KIND or not {"stage", "planner", "tokenizer"} <= config.keys():
        raise CheckpointError(f"{loaded.path} is not a planner checkpoint (its config has no planner kind)")
    if expect_stage and config["stage"] not in expect_stage:
        raise CheckpointError(f"{loaded.path} is a '{config['stage']}' planner; expected one of {expect_stage}")
    planner = Planner(PlannerConfig.from_dict(config["planner"]), Tokenizer.from_dict(dict(config["tokenizer"])))
    weights = {k.removeprefix("planner."): v for k, v in loaded.weights.items() if k.startswith("planner.")}
    try:
        planner.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{loaded.path}: weights do not fit the planner config: {error}") from None
    heads = {k.removeprefix("head."): v for k, v in loaded.weights.items() if k.startswith("head.")}
    return PlannerCheckpoint(stage=config["stage"], planner=planner, heads=heads, checkpoint=loaded.checkpoint)


@dataclass(frozen=True, kw_only=True)
class LatencyReport:
    p50_ms: float
    p99_ms: float
    mean_ms: float
    decisions: int


def decision_latency(
    planner: Planner, *, prompt_tokens: int = 16, decisions: int = 200, warmup: int = 20, seed: int = 0
) -> LatencyReport:
    """Wall time of one greedy decision at batch 1 (image, state and a ``prompt_tokens``-long prompt of random
    words), measured ``decisions`` times after ``warmup`` untimed ones; p50 and p99 in milliseconds."""
    check_int("decisions", decisions, 1, 10_000_000)
    check_int("prompt_tokens", prompt_tokens, 3, planner.config.max_prompt_tokens)
    generator = torch.Generator().manual_seed(seed)
    config = planner.config
    images = torch.rand(1, config.image_height, config.image_width, IMAGE_CHANNELS, generator=generator)
    states = torch.randn(1, config.state_dim, generator=generator)
    prev_stages = torch.zeros(1, dtype=torch.long)
    words = torch.randint(0, planner.tokenizer.vocab_size, (prompt_tokens - 3,), generator=generator)
    tokenizer = planner.tokenizer
    ids = torch.tensor([[tokenizer.bos_id, tokenizer.prompt_id, *words.tolist(), tokenizer.response_id]])
    lengths = torch.tensor([ids.shape[1]])
    times = []
    for index in range(warmup + decisions):
        start = time.perf_counter()
        planner.act(images, states, prev_stages, ids, lengths, greedy=True)
        if index >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    times.sort()

    def quantile(q: float) -> float:
        return times[min(len(times) - 1, math.ceil(q * len(times)) - 1)]

    return LatencyReport(
        p50_ms=quantile(0.5), p99_ms=quantile(0.99), mean_ms=sum(times) / len(times), decisions=len(times)
    )

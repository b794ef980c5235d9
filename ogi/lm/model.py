"""A causal transformer language model with optional prefix embeddings and KV-cached sampling.

Pre-norm blocks (LayerNorm -> causal self-attention -> residual; LayerNorm -> GELU MLP -> residual), learned absolute
positions, output head tied to the token embedding. Prefix embeddings (e.g. the planner's vision tokens, shape
``(batch, n_prefix, prefix_dim)``) are projected to the model width and placed before the text tokens; they take
context positions but produce no token predictions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ogi.lm.config import ModelShape
from ogi.validation import check_int

KVCache = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, keys and values of shape (batch, heads, positions_so_far, head_dim)."""


@dataclass(frozen=True, kw_only=True)
class TransformerConfig(ModelShape):
    """A model shape plus the tokenizer's vocabulary size: everything needed to build the network.

    `prefix_dim` is the size of each prefix embedding vector; 0 means the model takes no prefix.
    """

    vocab_size: int

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("model.vocab_size", self.vocab_size, 2, 10_000_000)

    @classmethod
    def from_shape(cls, shape: ModelShape, vocab_size: int) -> TransformerConfig:
        return cls(vocab_size=vocab_size, **asdict(shape))

    @property
    def head_dim(self) -> int:
        return self.width // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parameter_count(config: TransformerConfig) -> int:
    """Exact trainable parameter count N of :class:`CausalTransformer` (embeddings included, head tied)."""
    d, hidden = config.width, config.width * config.mlp_ratio
    per_block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * hidden + hidden) + (hidden * d + d)
    prefix = config.prefix_dim * d + d if config.prefix_dim else 0
    return config.vocab_size * d + config.context_length * d + config.n_layers * per_block + 2 * d + prefix


class _Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.norm_attention = nn.LayerNorm(config.width)
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.out = nn.Linear(config.width, config.width)
        self.norm_mlp = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(
            nn.Linear(config.width, config.mlp_ratio * config.width),
            nn.GELU(),
            nn.Linear(config.mlp_ratio * config.width, config.width),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm_attention(x)).view(batch, length, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        past = k.shape[2] - length
        if past == 0:
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            # New query i sits at absolute position past + i and may see keys 0..past + i.
            keys = torch.arange(k.shape[2], device=x.device)
            mask = keys[None, :] <= (past + torch.arange(length, device=x.device))[:, None]
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.dropout(self.out(attended.transpose(1, 2).reshape(batch, length, width)))
        x = x + self.dropout(self.mlp(self.norm_mlp(x)))
        return x, (k, v)


class CausalTransformer(nn.Module):
    """Next-token model: ``forward(tokens (B, T)) -> logits (B, T, vocab)``, hidden states on request."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Embedding(config.context_length, config.width)
        self.prefix_projection = nn.Linear(config.prefix_dim, config.width) if config.prefix_dim else None
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.width)
        self.apply(self._initialize)
        for block in self.blocks:
            # GPT-2 scaling: residual projections shrink with depth so the residual stream keeps unit scale.
            nn.init.normal_(block.out.weight, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _initialize(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def hidden_states(
        self, tokens: torch.Tensor, *, prefix: torch.Tensor | None = None, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, KVCache]:
        """Final-norm hidden states of the text positions, ``(B, T, width)``, and the updated KV cache.

        ``prefix`` ``(B, P, prefix_dim)`` is only accepted on the first call (no cache); positions continue from the
        cache length otherwise.
        """
        past = 0 if cache is None else cache[0][0].shape[2]
        x = self.token_embedding(tokens)
        n_prefix = 0
        if prefix is not None:
            if self.prefix_projection is None:
                raise ValueError("this model was built with prefix_dim = 0 and takes no prefix embeddings")
            if cache is not None:
                raise ValueError("prefix embeddings go in the first call, before any cache exists")
            if prefix.shape[0] != tokens.shape[0] or prefix.shape[2] != self.config.prefix_dim:
                raise ValueError(
                    f"prefix shape {tuple(prefix.shape)} must be (batch={tokens.shape[0]}, n_prefix, "
                    f"prefix_dim={self.config.prefix_dim})"
                )
            n_prefix = prefix.shape[1]
            x = torch.cat([self.prefix_projection(prefix), x], dim=1)
        total = past + x.shape[1]
        if total > self.config.context_length:
            raise ValueError(f"sequence of {total} positions exceeds context_length = {self.config.context_length}")
        x = x + self.position_embedding(torch.arange(past, total, device=tokens.device))
        new_cache: KVCache = []
        for index, block in enumerate(self.blocks):
            x, layer_cache = block(x, None if cache is None else cache[index])
            new_cache.append(layer_cache)
        return self.norm(x[:, n_prefix:]), new_cache

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.token_embedding.weight.T

    def forward(self, tokens: torch.Tensor, *, prefix: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(self.hidden_states(tokens, prefix=prefix)[0])


def sequence_log_probs(
    model: CausalTransformer,
    tokens: torch.Tensor,
    *,
    prefix: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(tokens[:, t+1] | tokens[:, :t+1]) ``(B, T-1)`` and the hidden states ``(B, T, width)``."""
    hidden, _ = model.hidden_states(tokens, prefix=prefix)
    log_probs = torch.log_softmax(model.logits(hidden[:, :-1]), dim=-1)
    return log_probs.gather(-1, tokens[:, 1:, None]).squeeze(-1), hidden


@torch.no_grad()
def generate(
    model: CausalTransformer,
    prompt: torch.Tensor,
    *,
    max_new_tokens: int,
    eos_id: int,
    temperature: float = 1.0,
    top_k: int = 0,
    greedy: bool = False,
    generator: torch.Generator | None = None,
    prefix: torch.Tensor | None = None,
    use_cache: bool = True,
    banned_ids: tuple[int, ...] = (),
) -> torch.Tensor:
    """Continue every row of ``prompt`` ``(B, P)`` (rows share one prompt length) by up to ``max_new_tokens``.

    Returns the new tokens ``(B, n)`` with n <= max_new_tokens; after a row's ``eos_id`` the row is padded with
    ``eos_id``. Sampling draws from softmax(logits / temperature) restricted to the ``top_k`` largest logits
    (0: all), using ``generator`` so a seed fixes the output; ``greedy`` takes the argmax.
    ``use_cache=False`` recomputes the whole sequence each step (same result, used to check the cache).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens = {max_new_tokens} must be >= 1")
    if not greedy and not temperature > 0:
        raise ValueError(f"temperature = {temperature} must be > 0 when sampling")
    n_prefix = 0 if prefix is None else prefix.shape[1]
    room = model.config.context_length - n_prefix - prompt.shape[1]
    if room < 1:
        raise ValueError(
            f"prompt of {prompt.shape[1]} tokens (+{n_prefix} prefix) leaves no room in "
            f"context_length = {model.config.context_length}"
        )
    max_new_tokens = min(max_new_tokens, room)
    was_training = model.training
    model.eval()
    sequence = prompt
    finished = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    new_tokens = []
    hidden, cache = model.hidden_states(prompt, prefix=prefix)
    for _ in range(max_new_tokens):
        logits = model.logits(hidden[:, -1]).float()
        if banned_ids:
            logits[:, list(banned_ids)] = float("-inf")
        if greedy:
            token = logits.argmax(dim=-1)
        else:
            logits = logits / temperature
            if 0 < top_k < logits.shape[-1]:
                threshold = logits.topk(top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < threshold, float("-inf"))
            token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)
        token = torch.where(finished, torch.full_like(token, eos_id), token)
        new_tokens.append(token)
        finished |= token == eos_id
        if bool(finished.all()):
            break
        sequence = torch.cat([sequence, token[:, None]], dim=1)
        if use_cache:
            hidden, cache = model.hidden_states(token[:, None], cache=cache)
        else:
            hidden, _ = model.hidden_states(sequence, prefix=prefix)
    model.train(was_training)
    return torch.stack(new_tokens, dim=1)

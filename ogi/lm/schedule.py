"""The pretraining optimizer: AdamW, linear warm-up over the first 2% of steps, cosine decay to eta_min, clipping."""

from __future__ import annotations

import math

import torch
from torch import nn

from ogi.lm.config import OptimizerConfig


def learning_rate_at(step: int, total_steps: int, config: OptimizerConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``.

    Warm-up: eta_t = eta_max (t + 1) / W for t < W, W = ceil(warmup_fraction * total_steps).
    Cosine:  eta_t = eta_min + (eta_max - eta_min) (1 + cos(pi p)) / 2, p = (t - W) / max(1, total - 1 - W),
    so the last step runs at exactly eta_min.
    """
    if not 0 <= step < total_steps:
        raise ValueError(f"step = {step} must be in [0, {total_steps})")
    warmup = math.ceil(config.warmup_fraction * total_steps)
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - 1 - warmup)
    return config.eta_min + (config.learning_rate - config.eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices and embeddings, none on biases and LayerNorm gains."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
    )


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    *,
    step: int,
    total_steps: int,
    config: OptimizerConfig,
) -> float:
    """Backpropagate ``loss``, clip the global gradient norm to ``grad_clip``, step at the scheduled rate.

    Returns the gradient norm before clipping.
    """
    rate = learning_rate_at(step, total_steps, config)
    for group in optimizer.param_groups:
        group["lr"] = rate
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return float(norm)

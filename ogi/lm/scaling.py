"""Compute-optimal sizing: how many parameters N and training tokens D a FLOP budget C buys.

Training costs C ~ 6 N D FLOPs. At the compute-optimal point N* and D* both grow as C^0.5 with D* ~ k N*
(k ~ 20 tokens per parameter), so N* = sqrt(C / (6 k)) and D* = k N*. Because the model is then served for a long
time, the chosen model is ``inference_shrink`` (20-40%) smaller than N*, and the tokens grow to spend the same C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ogi.lm.model import TransformerConfig, parameter_count
from ogi.validation import ConfigError


@dataclass(frozen=True, kw_only=True)
class ComputePlan:
    compute_flops: float
    optimal_parameters: float
    """N* = sqrt(C / (6 k))."""
    optimal_tokens: float
    """D* = k N*."""
    target_parameters: float
    """(1 - inference_shrink) N*."""
    model: TransformerConfig
    parameters: int
    """Exact N of the chosen shape (closest to the target)."""
    tokens: int
    """D = C / (6 N) for the chosen N."""


def compute_optimal_plan(
    compute_flops: float,
    *,
    vocab_size: int,
    context_length: int,
    tokens_per_parameter: float = 20.0,
    inference_shrink: float = 0.3,
    prefix_dim: int = 0,
) -> ComputePlan:
    """Choose a transformer shape and token count for a budget of ``compute_flops``.

    Shapes searched: 1..12 layers, width a multiple of 16 with 16..128 width per layer (a usual aspect ratio),
    heads of width 16; the one whose exact parameter count is closest (in log) to the target wins.
    """
    if not compute_flops > 0:
        raise ConfigError(f"compute_budget_flops = {compute_flops} must be > 0")
    optimal_parameters = math.sqrt(compute_flops / (6.0 * tokens_per_parameter))
    target = (1.0 - inference_shrink) * optimal_parameters
    best: tuple[float, TransformerConfig] | None = None
    for n_layers in range(1, 13):
        for width in range(16, 128 * n_layers + 1, 16):
            if width < 16 * n_layers:
                continue
            config = TransformerConfig(
                vocab_size=vocab_size,
                context_length=context_length,
                n_layers=n_layers,
                width=width,
                n_heads=width // 16,
                prefix_dim=prefix_dim,
            )
            distance = abs(math.log(parameter_count(config) / target))
            if best is None or distance < best[0]:
                best = (distance, config)
    assert best is not None
    parameters = parameter_count(best[1])
    return ComputePlan(
        compute_flops=compute_flops,
        optimal_parameters=optimal_parameters,
        optimal_tokens=tokens_per_parameter * optimal_parameters,
        target_parameters=target,
        model=best[1],
        parameters=parameters,
        tokens=int(compute_flops / (6.0 * parameters)),
    )

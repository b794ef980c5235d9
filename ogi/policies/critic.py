"""The value network of the asymmetric actor-critic."""

from __future__ import annotations

import torch
from torch import nn

from ogi.policies.actors import build_mlp
from ogi.policies.config import CriticConfig

# unit output gain: values are on the scale of returns, not squashed towards zero like the action mean
CRITIC_OUTPUT_GAIN = 1.0


class Critic(nn.Module):
    """An MLP value function V(s).

    Asymmetric: the caller feeds the policy and privileged observations concatenated, so the critic sees
    the true base velocity, friction and terrain that the actor must infer.
    """

    def __init__(self, in_dim: int, cfg: CriticConfig) -> None:
        super().__init__()
        if in_dim < 1:
            raise ValueError(f"in_dim = {in_dim} must be positive")
        self.in_dim = in_dim
        self.net = build_mlp(in_dim, cfg.hidden_sizes, 1, cfg.activation, CRITIC_OUTPUT_GAIN)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs `(n, in_dim)` (or any leading shape `(..., in_dim)`) -> values `(n,)` (or `(...)`)."""
        return self.net(obs).squeeze(-1)

"""Closed-form diagonal Gaussian helpers on plain tensors (no `torch.distributions` objects in the hot loop).

`log_std` broadcasts against `mean`: a state-independent `(act_dim,)` parameter or a full `(..., act_dim)`.
"""

from __future__ import annotations

import math

import torch

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """log pi(a | s) of a diagonal Gaussian, summed over the action dimension: `(..., act_dim)` -> `(...)`.

    log N(a; m, s) = -(a - m)^2 / (2 s^2) - log s - log sqrt(2 pi), per dimension.
    """
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std - _LOG_SQRT_2PI).sum(-1)


def gaussian_entropy(log_std: torch.Tensor, batch_shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Entropy of a diagonal Gaussian, summed over the action dimension and broadcast to `batch_shape`.

    H = sum_i (1/2 + log sqrt(2 pi) + log s_i); it does not depend on the mean.
    """
    per_state = (0.5 + _LOG_SQRT_2PI + log_std).sum(-1)
    return per_state.expand(batch_shape)


def gaussian_kl(
    mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor, log_std_q: torch.Tensor
) -> torch.Tensor:
    """KL(p || q) of two diagonal Gaussians, summed over the action dimension: `(..., act_dim)` -> `(...)`.

    KL = sum_i log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2.
    Distillation takes p = teacher, q = student; PPO's adaptive learning rate takes p = old, q = new.
    """
    variance_ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    mean_term = (mean_p - mean_q).square() * torch.exp(-2.0 * log_std_q)
    return (log_std_q - log_std_p + 0.5 * (variance_ratio + mean_term) - 0.5).sum(-1)

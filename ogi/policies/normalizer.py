"""Running observation normalisation whose statistics travel with the weights."""

from __future__ import annotations

import math

import torch
from torch import nn


class EmpiricalNormalizer(nn.Module):
    """Normalise by the running mean and variance of every sample passed to `update`.

    The statistics are float64 buffers (`mean`, `var`, `count`), so they save and load with the
    `state_dict` and with safetensors, and are exported as constants. They change only when `update` is
    called, never as a side effect of `forward` or of train/eval mode.
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(
        self,
        dim: int,
        eps: float = 1e-8,
        clip: float = 5.0,
        until: int | None = None,
        std_floor: torch.Tensor | None = None,
    ) -> None:
        """dim: features per sample; eps: added to the variance; clip: bound on the normalised value in
        standard deviations; until: stop updating once this many samples have been seen (None: never);
        std_floor: (dim,) the smallest standard deviation a feature is divided by (default 0): a feature that
        barely varies in the data so far (a height scan over flat ground) is not blown up to unit variance."""
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim = {dim} must be positive")
        if not (math.isfinite(eps) and eps > 0.0):
            raise ValueError(f"eps = {eps} must be a positive number")
        if not clip > 0.0:
            raise ValueError(f"clip = {clip} must be positive")
        if until is not None and until < 1:
            raise ValueError(f"until = {until} must be positive or None")
        self.dim = dim
        self.eps = eps
        self.clip = clip
        self.until = until
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        floor = torch.zeros(dim, dtype=torch.float64) if std_floor is None else torch.as_tensor(std_floor).double()
        if floor.shape != (dim,) or not bool(torch.all(floor >= 0)):
            raise ValueError(f"std_floor must be (dim,) = ({dim},) non-negative values, got shape {tuple(floor.shape)}")
        self.register_buffer("std_floor", floor.clone())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the floor existed divide by the plain standard deviation
        state_dict.setdefault(prefix + "std_floor", torch.zeros(self.dim, dtype=torch.float64))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def std(self) -> torch.Tensor:
        """(dim,) float32 what each feature is divided by: max(sqrt(var + eps), std_floor)."""
        return torch.maximum(torch.sqrt(self.var + self.eps), self.std_floor).to(torch.float32)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge a batch x `(n, dim)` into the running statistics (Chan et al. 1979, parallel variance).

        With the running (mean m_a, variance v_a, count c_a) and the batch's (m_b, v_b, c_b),
        delta = m_b - m_a, c = c_a + c_b:
            m = m_a + delta c_b / c
            v = (v_a c_a + v_b c_b + delta^2 c_a c_b / c) / c
        Once `until` samples have been seen the statistics stay fixed; the batch that crosses the cap is
        still merged whole.
        """
        if self.until is not None and self.count.item() >= self.until:
            return
        x = x.detach().reshape(-1, self.dim).to(torch.float64)
        batch_count = x.shape[0]
        if batch_count == 0:
            return
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        count = self.count + batch_count
        delta = batch_mean - self.mean
        self.mean.add_(delta * (batch_count / count))
        m2 = self.var * self.count + batch_var * batch_count + delta.square() * (self.count * batch_count / count)
        self.var.copy_(m2 / count)
        self.count.copy_(count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x `(..., dim)` -> float32 `clip((x - mean) / max(sqrt(var + eps), std_floor), -clip, clip)`."""
        # the statistics are accumulated in float64 and applied in float32: the policy runs in float32
        normalised = (x.to(torch.float32) - self.mean.to(torch.float32)) / self.std()
        return normalised.clamp(-self.clip, self.clip)

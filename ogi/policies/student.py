"""The deployable student: a GRU over proprioception, IMU and a CNN encoding of the downward depth image.

It reads only the `policy` observation group, whose trailing block is the depth image when the camera is on,
and is distilled from a privileged teacher (`ogi.training.distill`). Every op (Linear, Conv2d, ELU, GRUCell,
reshape, slice, concat) exports to ONNX, so deployment runs it like any other `Actor`.
"""

from __future__ import annotations

import torch
from torch import nn

from ogi.policies.actors import (
    _ACTIVATION_MODULES,
    ACTOR_OUTPUT_GAIN,
    HIDDEN_GAIN,
    Actor,
    State,
    _init_linear,
    _init_recurrent_cell,
    build_mlp,
)
from ogi.policies.config import ActorConfig


class DepthEncoder(nn.Module):
    """A small CNN: depth image `(..., rows * cols)` -> features `(..., features)`.

    One 3x3 convolution of stride 2 per entry of `channels` (a 9 x 12 image becomes 5 x 6, then 3 x 3), then a
    linear layer on the flattened maps.
    """

    def __init__(self, rows: int, cols: int, channels: tuple[int, ...], features: int, activation: str) -> None:
        super().__init__()
        self.rows, self.cols = rows, cols
        layers: list[nn.Module] = []
        width = 1
        for out in channels:
            conv = nn.Conv2d(width, out, kernel_size=3, stride=2, padding=1)
            nn.init.orthogonal_(conv.weight, gain=HIDDEN_GAIN)
            nn.init.zeros_(conv.bias)
            layers += [conv, _ACTIVATION_MODULES[activation]()]
            width = out
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 1, rows, cols)).numel()
        linear = nn.Linear(flat, features)
        _init_linear(linear, HIDDEN_GAIN)
        self.project = nn.Sequential(linear, _ACTIVATION_MODULES[activation]())
        self.features = features

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        lead = image.shape[:-1]
        maps = self.convs(image.reshape(-1, 1, self.rows, self.cols))
        return self.project(maps.flatten(1)).reshape(*lead, self.features)


class StudentActor(Actor):
    """GRU on `[proprioception, DepthEncoder(depth image)]`, then the MLP head. State: `(h,)`, h `(n, recurrent_size)`.

    With `depth_height = depth_width = 0` there is no image and the student is a GRU on the whole observation.
    """

    def __init__(self, obs_dim: int, act_dim: int, cfg: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, cfg.init_std)
        pixels = cfg.depth_height * cfg.depth_width
        if pixels >= obs_dim:
            raise ValueError(
                f"actor.depth_height x actor.depth_width = {pixels} pixels leave no proprioception in the "
                f"{obs_dim} observations"
            )
        self.proprio_dim = obs_dim - pixels
        self.recurrent_size = cfg.recurrent_size
        self.depth_encoder = (
            DepthEncoder(cfg.depth_height, cfg.depth_width, cfg.depth_channels, cfg.depth_features, cfg.activation)
            if pixels
            else None
        )
        core_in = self.proprio_dim + (cfg.depth_features if pixels else 0)
        self.cell = nn.GRUCell(core_in, cfg.recurrent_size)
        _init_recurrent_cell(self.cell)
        self.head = build_mlp(cfg.recurrent_size, cfg.hidden_sizes, act_dim, cfg.activation, ACTOR_OUTPUT_GAIN)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.recurrent_size,),)

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        if self.depth_encoder is None:
            return obs
        proprio, image = obs[..., : self.proprio_dim], obs[..., self.proprio_dim :]
        return torch.cat([proprio, self.depth_encoder(image)], dim=-1)

    def _core(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        (hidden,) = state
        hidden = self.cell(x, hidden)
        return hidden, (hidden,)

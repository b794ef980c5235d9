"""Typed, frozen configuration of the actor and critic networks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ogi.validation import ConfigError, check_choice, check_int

ACTOR_KINDS = ("mlp", "gru", "lstm", "transformer", "student")
ACTIVATIONS = ("elu", "relu", "tanh", "silu", "gelu")


def _check_sizes(name: str, sizes: tuple[int, ...]) -> None:
    if not isinstance(sizes, tuple):
        raise ConfigError(f"{name} = {sizes!r} must be a tuple of layer widths")
    for index, width in enumerate(sizes):
        check_int(f"{name}[{index}]", width, 1, 65536)


@dataclass(frozen=True, kw_only=True)
class ActorConfig:
    """The policy network: a recurrent (or feed-forward) core, then an MLP head to the action mean.

    For `kind = "mlp"` the MLP is the whole network; for the recurrent kinds `hidden_sizes` is the head
    after the core. The action standard deviation is one learned, state-independent parameter per joint.
    """

    kind: str = "gru"
    hidden_sizes: tuple[int, ...] = (256, 128)
    recurrent_size: int = 128  # GRU / LSTM hidden units
    activation: str = "elu"
    init_std: float = 1.0  # initial action standard deviation, in action units
    # transformer: a sliding window of past observation embeddings plus one carried memory token
    window: int = 8
    model_dim: int = 64
    heads: int = 4
    layers: int = 1
    # student: a GRU over proprioception and, when depth_height x depth_width > 0, a CNN encoding of the
    # observation's trailing depth image (rows x cols, row-major); 0 x 0: no image
    depth_height: int = 0
    depth_width: int = 0
    depth_channels: tuple[int, ...] = (8, 16)  # one stride-2 3x3 convolution per entry
    depth_features: int = 32

    def __post_init__(self) -> None:
        check_choice("actor.kind", self.kind, ACTOR_KINDS)
        _check_sizes("actor.hidden_sizes", self.hidden_sizes)
        check_int("actor.recurrent_size", self.recurrent_size, 1, 65536)
        check_choice("actor.activation", self.activation, ACTIVATIONS)
        if not (
            isinstance(self.init_std, (int, float))
            and not isinstance(self.init_std, bool)
            and math.isfinite(self.init_std)
            and 0.0 < self.init_std <= 100.0
        ):
            raise ConfigError(f"actor.init_std = {self.init_std!r} must be a finite number in (0, 100]")
        check_int("actor.window", self.window, 1, 4096)
        check_int("actor.model_dim", self.model_dim, 1, 65536)
        check_int("actor.heads", self.heads, 1, 1024)
        check_int("actor.layers", self.layers, 1, 64)
        check_int("actor.depth_height", self.depth_height, 0, 1024)
        check_int("actor.depth_width", self.depth_width, 0, 1024)
        if (self.depth_height == 0) != (self.depth_width == 0):
            raise ConfigError(
                f"actor.depth_height = {self.depth_height} and actor.depth_width = {self.depth_width} must both be "
                "positive (a depth image) or both 0 (none)"
            )
        _check_sizes("actor.depth_channels", self.depth_channels)
        check_int("actor.depth_features", self.depth_features, 1, 65536)
        if self.model_dim % self.heads != 0:
            raise ConfigError(f"actor.model_dim = {self.model_dim} must be a multiple of actor.heads = {self.heads}")


@dataclass(frozen=True, kw_only=True)
class CriticConfig:
    """The value network: an MLP on the policy and privileged observations concatenated."""

    hidden_sizes: tuple[int, ...] = (256, 128)
    activation: str = "elu"

    def __post_init__(self) -> None:
        _check_sizes("critic.hidden_sizes", self.hidden_sizes)
        check_choice("critic.activation", self.activation, ACTIVATIONS)

"""Gaussian policy networks sharing one recurrent protocol: MLP, GRU, LSTM and a recurrent transformer.

Every actor maps observations to the mean of a diagonal Gaussian over actions; the log standard deviation
is one state-independent parameter per action dimension. Recurrent actors carry a `State` (a tuple of
tensors whose first dimension is the environment) that is zeroed per environment when its episode ends.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ogi.policies.config import ActorConfig

State = tuple[torch.Tensor, ...]

_ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}

# orthogonal initialisation as in common PPO practice (Engstrom et al. 2020, "Implementation Matters"):
# sqrt(2) keeps the activation scale through ReLU-like layers, a tiny output gain starts every action
# mean near zero so the initial policy is the Gaussian around the default pose
HIDDEN_GAIN = math.sqrt(2.0)
ACTOR_OUTPUT_GAIN = 0.01


def _init_linear(layer: nn.Linear, gain: float) -> None:
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)


def build_mlp(
    in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int, activation: str, output_gain: float
) -> nn.Sequential:
    """An orthogonally initialised MLP `(..., in_dim) -> (..., out_dim)` with no output activation."""
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_sizes:
        linear = nn.Linear(width, hidden)
        _init_linear(linear, HIDDEN_GAIN)
        layers += [linear, _ACTIVATION_MODULES[activation]()]
        width = hidden
    output = nn.Linear(width, out_dim)
    _init_linear(output, output_gain)
    layers.append(output)
    return nn.Sequential(*layers)


def _init_recurrent_cell(cell: nn.GRUCell | nn.LSTMCell) -> None:
    # gain 1 keeps the recurrent map norm-preserving at initialisation; zero biases (forget gate included)
    for name, parameter in cell.named_parameters():
        if name.startswith("weight"):
            nn.init.orthogonal_(parameter, gain=1.0)
        else:
            nn.init.zeros_(parameter)


class Actor(nn.Module):
    """The protocol every actor implements.

    A step is `encode -> core -> head`: `_encode` is per-time-step and stateless (so a whole sequence is
    encoded at once), `_core` carries the state, `head` is the MLP to the action mean.
    """

    is_recurrent: bool = True

    def __init__(self, obs_dim: int, act_dim: int, init_std: float) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim = {obs_dim} and act_dim = {act_dim} must both be positive")
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))
        self.head: nn.Module = nn.Identity()

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the state tensors without the leading environment dimension."""
        raise NotImplementedError

    def initial_state(self, n: int) -> State:
        """The state at the start of an episode: zeros, each tensor `(n, ...)`."""
        return tuple(self.log_std.new_zeros((n, *shape)) for shape in self.state_shapes())

    def reset_state(self, state: State, done: torch.Tensor) -> State:
        """Zero the state of the environments whose `done` `(n,)` is True; the input is not modified."""
        done = done.to(dtype=torch.bool, device=self.log_std.device)
        return tuple(s.masked_fill(done.view(-1, *([1] * (s.dim() - 1))), 0.0) for s in state)

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        return obs

    def _core(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def forward(self, obs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One policy step: obs `(n, obs_dim)` -> action mean `(n, act_dim)` and the next state."""
        features, new_state = self._core(self._encode(obs), state)
        return self.head(features), new_state

    def forward_sequence(self, obs: torch.Tensor, state0: State, starts: torch.Tensor) -> torch.Tensor:
        """Truncated back-propagation through time over a rollout.

        obs `(T, n, obs_dim)`, state0 the state before `obs[0]`, starts `(T, n)` bool: True where an
        environment began a new episode at step t, so its state is reset before `obs[t]`.
        Returns the action means `(T, n, act_dim)`, equal to `reset_state` then `forward` step by step.
        """
        if obs.dim() != 3 or starts.shape != obs.shape[:2]:
            raise ValueError(f"obs {tuple(obs.shape)} must be (T, n, obs_dim) and starts {tuple(starts.shape)} (T, n)")
        encoded = self._encode(obs)
        state = state0
        features = []
        for t in range(obs.shape[0]):
            state = self.reset_state(state, starts[t])
            feature, state = self._core(encoded[t], state)
            features.append(feature)
        return self.head(torch.stack(features))


class MLPActor(Actor):
    """A feed-forward actor; its state is the empty tuple."""

    is_recurrent = False

    def __init__(self, obs_dim: int, act_dim: int, cfg: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, cfg.init_std)
        self.head = build_mlp(obs_dim, cfg.hidden_sizes, act_dim, cfg.activation, ACTOR_OUTPUT_GAIN)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ()

    def _core(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return x, state

    def forward_sequence(self, obs: torch.Tensor, state0: State, starts: torch.Tensor) -> torch.Tensor:
        """obs `(T, n, obs_dim)` -> action means `(T, n, act_dim)`; state0 and starts are ignored."""
        return self.head(obs)


class GRUActor(Actor):
    """A GRU cell on the observation, then the MLP head. State: `(h,)` with h `(n, recurrent_size)`."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, cfg.init_std)
        self.recurrent_size = cfg.recurrent_size
        self.cell = nn.GRUCell(obs_dim, cfg.recurrent_size)
        _init_recurrent_cell(self.cell)
        self.head = build_mlp(cfg.recurrent_size, cfg.hidden_sizes, act_dim, cfg.activation, ACTOR_OUTPUT_GAIN)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.recurrent_size,),)

    def _core(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        (hidden,) = state
        hidden = self.cell(x, hidden)
        return hidden, (hidden,)


class LSTMActor(Actor):
    """An LSTM cell on the observation, then the MLP head. State: `(h, c)`, each `(n, recurrent_size)`."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, cfg.init_std)
        self.recurrent_size = cfg.recurrent_size
        self.cell = nn.LSTMCell(obs_dim, cfg.recurrent_size)
        _init_recurrent_cell(self.cell)
        self.head = build_mlp(cfg.recurrent_size, cfg.hidden_sizes, act_dim, cfg.activation, ACTOR_OUTPUT_GAIN)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.recurrent_size,), (self.recurrent_size,))

    def _core(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        hidden, cell = self.cell(x, state)
        return hidden, (hidden, cell)


class TransformerActor(Actor):
    """The seed's recurrent transformer: attention over a sliding window of observations plus a memory token.

    State: `(window (n, window, model_dim), valid (n, window), memory (n, model_dim))`. The window holds the
    embeddings of the last `window` observations, newest last; `valid` is 1 where a slot holds one from the
    current episode. Each step the new embedding is shifted in and `layers` pre-norm encoder layers run over
    `[memory, window...]` with empty slots masked out; the output at the newest slot feeds the head, and the
    output at the memory slot is the next memory, which carries information past the window's horizon.
    Every token is an observation at or before the current step, so the output is causal without a
    triangular mask.
    """

    def __init__(self, obs_dim: int, act_dim: int, cfg: ActorConfig) -> None:
        super().__init__(obs_dim, act_dim, cfg.init_std)
        self.window = cfg.window
        self.model_dim = cfg.model_dim
        self.embed = nn.Linear(obs_dim, cfg.model_dim)
        _init_linear(self.embed, 1.0)
        # learned positions: slot 0 is the memory token, slot k the (window - k)-th newest observation
        self.position = nn.Parameter(torch.randn(cfg.window + 1, cfg.model_dim) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=cfg.model_dim,
                nhead=cfg.heads,
                dim_feedforward=4 * cfg.model_dim,
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(cfg.layers)
        )
        # pre-norm layers leave the residual stream unnormalised; the final norm keeps the carried memory
        # from growing step after step over a long episode
        self.norm = nn.LayerNorm(cfg.model_dim)
        self.head = build_mlp(cfg.model_dim, cfg.hidden_sizes, act_dim, cfg.activation, ACTOR_OUTPUT_GAIN)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.window, self.model_dim), (self.window,), (self.model_dim,))

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.embed(obs)

    def _core(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        window, valid, memory = state
        window = torch.cat([window[:, 1:], x.unsqueeze(1)], dim=1)
        valid = torch.cat([valid[:, 1:], valid.new_ones(valid.shape[0], 1)], dim=1)
        tokens = torch.cat([memory.unsqueeze(1), window], dim=1) + self.position
        # True = ignore; the memory slot and the newest slot are always attended, so no row is all-masked
        padding = torch.cat([valid.new_zeros(valid.shape[0], 1), 1.0 - valid], dim=1).bool()
        for layer in self.layers:
            tokens = layer(tokens, src_key_padding_mask=padding)
        tokens = self.norm(tokens)
        return tokens[:, -1], (window, valid, tokens[:, 0])

"""A conditional flow-matching policy over action chunks: imitation's main signal for manipulation.

The policy maps an observation to a chunk of `horizon` future actions. It learns a velocity field v(x, t | obs)
that carries Gaussian noise (t = 0) to demonstrated chunks (t = 1) along straight lines: for a noise sample x0 and
a demonstrated (normalized) chunk x1, x_t = (1 - t) x0 + t x1 and the target velocity is x1 - x0, fitted by mean
squared error at uniformly drawn t (conditional flow matching with the linear path). Acting integrates
dx/dt = v(x, t | obs) from noise with a few Euler steps (`sample_steps`). Unlike a regressor, which averages the
modes of a multimodal demonstration set (grasp from the left or from the right) into an action between them, the
flow draws one of them.

Observations and actions are normalized by their dataset means and deviations, kept with the weights. Checkpoints
use the one format with lineage (`save_flow_policy`, `load_flow_policy`): the parent is whatever the
demonstrations came from, when that is a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ogi.validation import ConfigError, check_int, check_range

ARCHITECTURE = "flow_matching_chunk_v1"


@dataclass(frozen=True, kw_only=True)
class FlowConfig:
    obs_dim: int
    action_dim: int
    horizon: int = 8  # actions per chunk
    hidden: int = 256
    layers: int = 3
    time_features: int = 16  # sinusoidal features of t
    sample_steps: int = 4  # Euler steps from noise to a chunk

    def __post_init__(self) -> None:
        check_int("obs_dim", self.obs_dim, 1, 1 << 20)
        check_int("action_dim", self.action_dim, 1, 1 << 16)
        check_int("horizon", self.horizon, 1, 1024)
        check_int("hidden", self.hidden, 1, 1 << 16)
        check_int("layers", self.layers, 1, 64)
        check_int("time_features", self.time_features, 2, 1024)
        if self.time_features % 2:
            raise ConfigError(f"time_features = {self.time_features} must be even (sin and cos pairs)")
        check_int("sample_steps", self.sample_steps, 1, 1000)


@dataclass(frozen=True, kw_only=True)
class FlowTrainConfig:
    steps: int = 2000
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1, 10**8)
        check_int("batch_size", self.batch_size, 1, 1 << 20)
        check_range("learning_rate", self.learning_rate, 1e-7, 1.0)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)


class FlowPolicy(nn.Module):
    """v(x_t, t | obs) over flattened, normalized chunks; `act` draws a chunk in action units."""

    def __init__(self, cfg: FlowConfig):
        super().__init__()
        self.cfg = cfg
        chunk = cfg.horizon * cfg.action_dim
        sizes = [chunk + cfg.time_features + cfg.obs_dim] + [cfg.hidden] * cfg.layers
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.SiLU()]
        layers.append(nn.Linear(sizes[-1], chunk))
        self.net = nn.Sequential(*layers)
        self.register_buffer("obs_mean", torch.zeros(cfg.obs_dim))
        self.register_buffer("obs_std", torch.ones(cfg.obs_dim))
        self.register_buffer("action_mean", torch.zeros(cfg.action_dim))
        self.register_buffer("action_std", torch.ones(cfg.action_dim))
        # the demonstrated range: a drawn action never leaves it (an ODE started in the noise's far tail, or an
        # observation unlike the data, can extrapolate far past anything demonstrated)
        self.register_buffer("action_low", torch.full((cfg.action_dim,), -torch.inf))
        self.register_buffer("action_high", torch.full((cfg.action_dim,), torch.inf))
        half = cfg.time_features // 2
        self.register_buffer("frequencies", torch.exp(torch.linspace(0.0, math.log(100.0), half)))

    def _time(self, t: torch.Tensor) -> torch.Tensor:
        angle = t[:, None] * self.frequencies[None] * (2 * math.pi)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, obs_normalized: torch.Tensor) -> torch.Tensor:
        """(b, H * A) velocity at chunks x (b, H * A), times t (b,), normalized observations (b, O)."""
        return self.net(torch.cat([x, self._time(t), obs_normalized], dim=1))

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def loss(self, obs: torch.Tensor, chunks: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Flow-matching loss on observations (b, O) and demonstrated chunks (b, H, A) in action units."""
        x1 = ((chunks - self.action_mean) / self.action_std).flatten(1)
        x0 = torch.randn(x1.shape, generator=generator)
        t = torch.rand(x1.shape[0], generator=generator)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        return torch.mean(torch.square(self.velocity(xt, t, self.normalize_obs(obs)) - (x1 - x0)))

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, *, generator: torch.Generator | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(b, H, A) chunks in action units for observations (b, O): Euler steps from noise (drawn, or given)."""
        cfg = self.cfg
        b = obs.shape[0]
        x = torch.randn(b, cfg.horizon * cfg.action_dim, generator=generator) if noise is None else noise.clone()
        cond = self.normalize_obs(obs)
        dt = 1.0 / cfg.sample_steps
        for k in range(cfg.sample_steps):
            t = torch.full((b,), k * dt)
            x = x + dt * self.velocity(x, t, cond)
        chunk = x.view(b, cfg.horizon, cfg.action_dim) * self.action_std + self.action_mean
        return torch.maximum(torch.minimum(chunk, self.action_high), self.action_low)


def fit_normalization(policy: FlowPolicy, obs: torch.Tensor, chunks: torch.Tensor) -> None:
    """Dataset means and deviations into the policy's buffers (deviations floored, so constant inputs pass)."""
    policy.obs_mean.copy_(obs.mean(0))
    policy.obs_std.copy_(obs.std(0).clamp_min(1e-3))
    flat = chunks.reshape(-1, chunks.shape[-1])
    policy.action_mean.copy_(flat.mean(0))
    policy.action_std.copy_(flat.std(0).clamp_min(1e-3))
    policy.action_low.copy_(flat.min(0).values)
    policy.action_high.copy_(flat.max(0).values)


def train_flow_policy(
    obs: torch.Tensor,
    chunks: torch.Tensor,
    cfg: FlowConfig,
    train: FlowTrainConfig = FlowTrainConfig(),
    *,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[FlowPolicy, dict[str, float]]:
    """Fit a flow policy to demonstrations: observations (N, O), chunks (N, H, A); returns it with its losses."""
    obs = torch.as_tensor(obs, dtype=torch.float32)
    chunks = torch.as_tensor(chunks, dtype=torch.float32)
    if obs.ndim != 2 or obs.shape[1] != cfg.obs_dim:
        raise ValueError(f"observations must have shape (N, {cfg.obs_dim}), got {tuple(obs.shape)}")
    if chunks.shape[1:] != (cfg.horizon, cfg.action_dim) or chunks.shape[0] != obs.shape[0]:
        raise ValueError(
            f"chunks must have shape ({obs.shape[0]}, {cfg.horizon}, {cfg.action_dim}), got {tuple(chunks.shape)}"
        )
    if not (torch.isfinite(obs).all() and torch.isfinite(chunks).all()):
        raise ValueError("demonstrations hold NaN or inf values")
    torch.manual_seed(train.seed)
    generator = torch.Generator().manual_seed(train.seed)
    policy = FlowPolicy(cfg)
    fit_normalization(policy, obs, chunks)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, train.steps)
    n = obs.shape[0]
    first = last = float("nan")
    for step in range(train.steps):
        rows = torch.randint(0, n, (min(train.batch_size, n),), generator=generator)
        loss = policy.loss(obs[rows], chunks[rows], generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        last = float(loss.detach())
        first = last if step == 0 else first
        if on_step is not None:
            on_step(step, last)
    policy.eval()
    return policy, {"first_loss": first, "final_loss": last}


def save_flow_policy(
    run_dir: Path, policy: FlowPolicy, train: FlowTrainConfig, *, samples: int, data: dict, scores=None, parent=None
):
    """Write the policy as a checkpoint (weights with its normalization; config; what the data was)."""
    from ogi import checkpoints as ckpt

    weights = {f"flow/{k}": v.detach().contiguous() for k, v in policy.state_dict().items()}
    config = {"architecture": ARCHITECTURE, "flow": asdict(policy.cfg), "train": asdict(train)}
    return ckpt.save_checkpoint(
        run_dir,
        step=samples,
        iteration=train.steps,
        weights=weights,
        state={},
        config=config,
        reward_weights={},
        data_manifest=data,
        eval_scores=scores or {},
        parent=parent,
    )


def load_flow_policy(path: Path) -> tuple[FlowPolicy, Any]:
    """A flow policy from a checkpoint directory (verified), with its checkpoint."""
    from ogi import checkpoints as ckpt

    loaded = ckpt.load_checkpoint(Path(path))
    config = loaded.checkpoint.manifest["config"]
    if config.get("architecture") != ARCHITECTURE:
        raise ckpt.CheckpointError(f"{path} is not a flow policy (architecture {config.get('architecture')!r})")
    policy = FlowPolicy(FlowConfig(**config["flow"]))
    state = {k.removeprefix("flow/"): v for k, v in loaded.weights.items()}
    policy.load_state_dict(state)
    policy.eval()
    return policy, loaded.checkpoint

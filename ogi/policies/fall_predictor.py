"""`FallPredictor`: p(fall within H s | the last few policy observations), for the safety supervisor.

It reads only the `policy` observation group (what the robot itself measures), as a window of the last `window`
policy steps, zero-padded before an episode's first step, so it runs on the real robot beside the policy. A
small MLP over the normalized, flattened window gives the logit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ogi.validation import ConfigError, check_range

ARCHITECTURE = "fall_predictor_window_mlp"


@dataclass(frozen=True, kw_only=True)
class FallPredictorConfig:
    obs_dim: int  # size of the policy observation group
    window: int = 5  # policy steps of history
    hidden_sizes: tuple[int, ...] = (64, 64)
    horizon_s: float = 0.5  # H: a positive label means a fall within this many seconds
    ctrl_dt_s: float = 0.02  # the policy period the window is sampled at

    def __post_init__(self) -> None:
        check_range("fall_predictor.obs_dim", self.obs_dim, 1, 1_000_000)
        check_range("fall_predictor.window", self.window, 1, 1000)
        check_range("fall_predictor.horizon_s", self.horizon_s, 1e-3, 60.0)
        check_range("fall_predictor.ctrl_dt_s", self.ctrl_dt_s, 1e-4, 1.0)
        if not self.hidden_sizes or any(not isinstance(h, int) or h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"fall_predictor.hidden_sizes = {self.hidden_sizes!r} must be positive integers")

    @property
    def horizon_steps(self) -> int:
        return max(1, round(self.horizon_s / self.ctrl_dt_s))

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> FallPredictorConfig:
        known = set(FallPredictorConfig.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown fall predictor config field(s) {unknown}; known: {sorted(known)}")
        data = dict(data)
        if "hidden_sizes" in data:
            data["hidden_sizes"] = tuple(data["hidden_sizes"])
        return FallPredictorConfig(**data)


class FallPredictor(nn.Module):
    """logit(p(fall within H | o_{t-w+1..t})) from windows (n, window, obs_dim) of raw policy observations."""

    def __init__(self, cfg: FallPredictorConfig):
        super().__init__()
        self.cfg = cfg
        sizes = (cfg.window * cfg.obs_dim, *cfg.hidden_sizes)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ELU()]
        layers.append(nn.Linear(sizes[-1], 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("obs_mean", torch.zeros(cfg.obs_dim))
        self.register_buffer("obs_std", torch.ones(cfg.obs_dim))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.obs_mean.copy_(mean)
        self.obs_std.copy_(torch.clamp(std, min=1e-3))

    def forward(self, windows: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """(n,) logits; valid (n, window) bool marks real (not padding) steps, which stay zero after normalizing."""
        x = (windows - self.obs_mean) / self.obs_std
        if valid is not None:
            x = x * valid[..., None]
        return self.net(x.flatten(-2)).squeeze(-1)

    # ---- streaming use beside a policy -----------------------------------------------------------
    def new_window(self, num_envs: int) -> dict[str, np.ndarray]:
        """The rolling observation window of `num_envs` robots, all padding."""
        return {
            "obs": np.zeros((num_envs, self.cfg.window, self.cfg.obs_dim), dtype=np.float32),
            "valid": np.zeros((num_envs, self.cfg.window), dtype=bool),
        }

    @torch.no_grad()
    def step(self, window: dict[str, np.ndarray], policy_obs: np.ndarray) -> np.ndarray:
        """Append this step's policy observations (n, obs_dim); (n,) fall probabilities."""
        window["obs"][:, :-1] = window["obs"][:, 1:]
        window["valid"][:, :-1] = window["valid"][:, 1:]
        window["obs"][:, -1] = policy_obs
        window["valid"][:, -1] = True
        logits = self(torch.as_tensor(window["obs"]), torch.as_tensor(window["valid"]))
        return torch.sigmoid(logits).numpy().astype(np.float64)

    @staticmethod
    def reset_window(window: dict[str, np.ndarray], done: np.ndarray) -> None:
        """Forget the history of robots whose episode ended (the next observation starts a new one)."""
        window["obs"][done] = 0.0
        window["valid"][done] = False


def load_fall_predictor(path: Path) -> FallPredictor:
    """A predictor from its checkpoint directory (or a run directory: the newest valid checkpoint)."""
    from ogi import checkpoints as ckpt

    return predictor_from_checkpoint(ckpt.load_checkpoint(ckpt.resolve_checkpoint(path)))


def predictor_from_checkpoint(loaded) -> FallPredictor:
    """A predictor from a loaded checkpoint (`ogi.checkpoints.load_checkpoint`), in eval mode."""
    from ogi import checkpoints as ckpt

    config = loaded.checkpoint.config
    if config.get("architecture") != ARCHITECTURE:
        raise ckpt.CheckpointError(
            f"{loaded.checkpoint.path}: config.architecture is {config.get('architecture')!r}, not a fall predictor "
            f"({ARCHITECTURE})"
        )
    predictor = FallPredictor(FallPredictorConfig.from_dict(json.loads(json.dumps(config["predictor"]))))
    predictor.load_state_dict({k.removeprefix("predictor/"): v for k, v in loaded.weights.items()})
    predictor.eval()
    return predictor

"""The learned 1 kHz actuator residual: a bounded torque added to PD + feed-forward so that the robot's motors
deliver the torque the policy's model would have felt.

A policy is trained on a model of the motors (the reference: the robot's nominal model, or a calibrated one).
A real motor gives a different torque for the same command: weaker, with more friction and damping, with
rotor inertia the model lacks. The residual is an inverse actuator model learned from excitation logs
(`ogi.training.residual`): given the torque the reference wants delivered at a joint and the joint's recent
velocities, it says how much more (or less) to ask of the motor. One small MLP shared by all joints (a
one-hot says which joint), evaluated for every joint at once:

    features[j] = [tau_desired[j] / tau_limit[j], dq[j] at the last HISTORY ticks * DQ_SCALE, onehot(j)]
    residual[j] = bound[j] * tanh(mlp(features[j]))      bound = bound_fraction * tau_limit

The runtime adds it inside its 1 kHz loop while the policy drives, after clipping so that law + residual stays
within the torque limit, and drops it (zero) on any fallback or on a non-finite output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ogi import checkpoints as ckpt
from ogi.robots import get_robot
from ogi.validation import check_int, check_range

DQ_SCALE = 0.1
KIND = "actuator_residual"  # the checkpoint config's kind


@dataclass(frozen=True, kw_only=True)
class ResidualConfig:
    num_joints: int
    history: int = 4  # joint velocity samples the features carry (the newest first)
    hidden: int = 64
    bound_fraction: float = 0.3  # of each joint's torque limit

    def __post_init__(self) -> None:
        check_int("num_joints", self.num_joints, 1, 1000)
        check_int("history", self.history, 1, 50)
        check_int("hidden", self.hidden, 4, 1024)
        check_range("bound_fraction", self.bound_fraction, 1e-3, 1.0)

    @property
    def feature_dim(self) -> int:
        return 1 + self.history + self.num_joints

    def as_dict(self) -> dict:
        return asdict(self)


def features(cfg: ResidualConfig, tau_desired: np.ndarray, limit: np.ndarray, dq_history: np.ndarray) -> np.ndarray:
    """(..., J, F) features from desired torques (..., J), limits (J,), velocities (..., HISTORY, J) newest first."""
    tau = np.asarray(tau_desired) / np.asarray(limit)
    dq = np.swapaxes(np.asarray(dq_history), -1, -2) * DQ_SCALE  # (..., J, HISTORY)
    onehot = np.broadcast_to(np.eye(cfg.num_joints), (*tau.shape[:-1], cfg.num_joints, cfg.num_joints))
    return np.concatenate([tau[..., None], dq, onehot], axis=-1).astype(np.float32)


class ResidualNet(nn.Module):
    """features (..., J, F) -> residual torque (..., J), N m, within +-bound."""

    def __init__(self, cfg: ResidualConfig, limit: np.ndarray):
        super().__init__()
        self.cfg = cfg
        self.mlp = nn.Sequential(
            nn.Linear(cfg.feature_dim, cfg.hidden),
            nn.ELU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ELU(),
            nn.Linear(cfg.hidden, 1),
        )
        bound = cfg.bound_fraction * torch.as_tensor(np.asarray(limit), dtype=torch.float32)
        self.register_buffer("bound", bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bound * torch.tanh(self.mlp(x).squeeze(-1))


class ResidualRunner:
    """The residual in a 1 kHz loop: keeps the velocity history, runs the exported graph, clips to the limit."""

    def __init__(self, cfg: ResidualConfig, limit: np.ndarray, run_graph):
        self.cfg = cfg
        self.limit = np.asarray(limit, dtype=np.float64)
        self._run = run_graph  # features (J, F) float32 -> residual (J,)
        self._dq = np.zeros((cfg.history, cfg.num_joints))
        self._filled = 0

    def reset(self) -> None:
        self._dq[:] = 0.0
        self._filled = 0

    def observe(self, dq: np.ndarray) -> None:
        """Push this tick's joint velocities (call every tick, whether or not the residual is applied)."""
        self._dq = np.roll(self._dq, 1, axis=0)
        self._dq[0] = dq
        self._filled = min(self._filled + 1, self.cfg.history)

    def __call__(self, tau_law: np.ndarray) -> np.ndarray:
        """The residual for this tick, clipped so that law + residual stays within the limit; NaN if it failed."""
        if self._filled < self.cfg.history:
            return np.zeros(self.cfg.num_joints)
        r = np.asarray(self._run(features(self.cfg, tau_law, self.limit, self._dq)), dtype=np.float64)
        if r.shape != (self.cfg.num_joints,) or not np.all(np.isfinite(r)):
            return np.full(self.cfg.num_joints, np.nan)
        return np.clip(tau_law + r, -self.limit, self.limit) - tau_law


def residual_from_checkpoint(path: Path) -> tuple[ResidualNet, ckpt.LoadedCheckpoint]:
    loaded = ckpt.load_checkpoint(ckpt.resolve_checkpoint(Path(path)))
    config = loaded.checkpoint.config
    if config.get("kind") != KIND:
        raise ckpt.CheckpointError(f"{path}: a '{config.get('kind')}' checkpoint, not an actuator residual")
    robot = get_robot(config["robot"])
    net = ResidualNet(ResidualConfig(**config["residual"]), np.asarray(robot.torque_limit))
    net.load_state_dict(loaded.weights)
    return net.eval(), loaded

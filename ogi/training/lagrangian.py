"""PPO-Lagrangian: the fall constraint `max J(pi) s.t. Pr(fall | pi) <= delta` as a learned penalty.

The per-step cost is 1 on the step an episode ends in a fall. A separate cost critic V_c and GAE give cost
advantages A_c; the policy minimizes

    L = (L_clip(A_r) + lambda L_cost(A_c)) / (1 + lambda),

where L_cost = E[max(r_t A_c, clip(r_t, 1 - eps, 1 + eps) A_c)] is the pessimistic clipped surrogate of the cost.
After each iteration the multiplier follows dual ascent on the measured fall probability J_c,

    lambda <- max(0, lambda + lr_lambda (J_c - delta)),

optionally with proportional and derivative terms (PID Lagrangian, Stooke et al. 2020) that damp the
oscillation of plain dual ascent: lambda = max(0, I + K_p e + K_d max(0, J_c - J_c,prev)), I <- max(0, I + K_i e).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ogi.policies import Critic, CriticConfig
from ogi.validation import check_range


@dataclass(frozen=True, kw_only=True)
class SafetyConfig:
    """The fall constraint of a training run; off unless `enabled`."""

    enabled: bool = False
    fall_limit: float = 0.02  # delta: allowed probability that an episode ends in a fall
    lambda_init: float = 0.0
    lambda_lr: float = 0.5  # K_i: multiplier change per unit of constraint violation per iteration
    lambda_kp: float = 0.0  # K_p, PID damping (0: plain dual ascent)
    lambda_kd: float = 0.0  # K_d
    lambda_max: float = 100.0
    cost_gamma: float = 0.99
    cost_lam: float = 0.95
    cost_value_coef: float = 1.0

    def __post_init__(self) -> None:
        check_range("safety.fall_limit", self.fall_limit, 0.0, 1.0)
        check_range("safety.lambda_init", self.lambda_init, 0.0, 1e6)
        check_range("safety.lambda_lr", self.lambda_lr, 0.0, 1e3)
        check_range("safety.lambda_kp", self.lambda_kp, 0.0, 1e3)
        check_range("safety.lambda_kd", self.lambda_kd, 0.0, 1e3)
        check_range("safety.lambda_max", self.lambda_max, self.lambda_init, 1e6)
        check_range("safety.cost_gamma", self.cost_gamma, 0.0, 1.0)
        check_range("safety.cost_lam", self.cost_lam, 0.0, 1.0)
        check_range("safety.cost_value_coef", self.cost_value_coef, 0.0, 100.0)


@dataclass(frozen=True)
class DualState:
    """The multiplier and the controller memory behind it (JSON-able, kept in checkpoints)."""

    multiplier: float
    integral: float
    previous_cost: float | None = None
    updates: int = 0

    @staticmethod
    def initial(cfg: SafetyConfig) -> DualState:
        return DualState(multiplier=cfg.lambda_init, integral=cfg.lambda_init)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> DualState:
        prev = data.get("previous_cost")
        return DualState(
            multiplier=float(data["multiplier"]),
            integral=float(data["integral"]),
            previous_cost=None if prev is None else float(prev),
            updates=int(data.get("updates", 0)),
        )


def dual_update(state: DualState, cost: float, cfg: SafetyConfig) -> DualState:
    """One step of (PID) dual ascent on the multiplier from the measured constraint value J_c = `cost`."""
    if not 0.0 <= cost <= 1e6:
        raise ValueError(f"measured cost {cost!r} must be a finite number >= 0")
    # e = J_c - delta
    error = cost - cfg.fall_limit
    # I <- max(0, I + K_i e): with K_p = K_d = 0 this is lambda <- max(0, lambda + lr (J_c - delta))
    integral = min(max(0.0, state.integral + cfg.lambda_lr * error), cfg.lambda_max)
    rise = 0.0 if state.previous_cost is None else max(0.0, cost - state.previous_cost)
    multiplier = integral + cfg.lambda_kp * error + cfg.lambda_kd * rise
    multiplier = min(max(0.0, multiplier), cfg.lambda_max)
    return DualState(multiplier=multiplier, integral=integral, previous_cost=cost, updates=state.updates + 1)


def episode_fall_probability(falls: int, env_steps: int, episode_steps: int) -> float:
    """Pr(an episode of `episode_steps` ends in a fall) from a rollout's per-step fall hazard h = falls / steps.

    Pr = 1 - (1 - h)^L: every step of the rollout counts, not just the few episodes that ended in it.
    """
    if env_steps <= 0 or episode_steps <= 0:
        raise ValueError(f"env_steps ({env_steps}) and episode_steps ({episode_steps}) must be > 0")
    hazard = min(max(falls / env_steps, 0.0), 1.0)
    return 1.0 - (1.0 - hazard) ** episode_steps


def clipped_cost_surrogate(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, cost_advantages: torch.Tensor, clip: float
) -> torch.Tensor:
    """E[max(r_t A_c, clip(r_t, 1 - eps, 1 + eps) A_c)]: an upper bound on the cost change, to minimize."""
    ratio = torch.exp(log_prob - old_log_prob)
    return torch.max(ratio * cost_advantages, torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * cost_advantages).mean()


def combine_policy_losses(reward_loss: torch.Tensor, cost_loss: torch.Tensor, multiplier: float) -> torch.Tensor:
    """(L_r + lambda L_c) / (1 + lambda): the penalty's scale stays bounded as lambda grows."""
    return (reward_loss + multiplier * cost_loss) / (1.0 + multiplier)


class CostLagrangian:
    """The cost critic and the multiplier of one PPO learner."""

    def __init__(self, cfg: SafetyConfig, critic_dim: int, critic_cfg: CriticConfig):
        self.cfg = cfg
        self.cost_critic = Critic(critic_dim, critic_cfg)
        self.dual = DualState.initial(cfg)

    @property
    def multiplier(self) -> float:
        return self.dual.multiplier

    def update_multiplier(self, cost: float) -> float:
        self.dual = dual_update(self.dual, cost, self.cfg)
        return self.dual.multiplier

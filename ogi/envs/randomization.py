"""Domain randomization: pure sampling of per-simulation physical parameters, and pushes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ogi.envs.config import CommandConfig, RandomizationConfig


@dataclass(frozen=True, kw_only=True)
class DomainParams:
    """Physical parameters of n simulations; the nominal robot has friction 1, scales 1, offsets 0."""

    friction: np.ndarray  # (n,) sliding friction of ground and robot geoms
    added_base_mass_kg: np.ndarray  # (n,)
    com_offset_m: np.ndarray  # (n, 3) base centre of mass shift, base frame
    motor_strength: np.ndarray  # (n,) scales kp, kd, feed-forward and torque limit together
    kp_scale: np.ndarray  # (n,)
    kd_scale: np.ndarray  # (n,)

    @staticmethod
    def nominal(n: int) -> DomainParams:
        ones = np.ones(n)
        return DomainParams(
            friction=ones.copy(),
            added_base_mass_kg=np.zeros(n),
            com_offset_m=np.zeros((n, 3)),
            motor_strength=ones.copy(),
            kp_scale=ones.copy(),
            kd_scale=ones.copy(),
        )

    def as_features(self) -> np.ndarray:
        """(n, 8): the parameters as privileged observation features."""
        return np.column_stack(
            [
                self.friction,
                self.added_base_mass_kg,
                self.com_offset_m,
                self.motor_strength,
                self.kp_scale,
                self.kd_scale,
            ]
        )


def replace_friction(params: DomainParams, friction: np.ndarray) -> DomainParams:
    """The same parameters with the friction of the ground the robots stand on."""
    return DomainParams(
        friction=np.asarray(friction, dtype=np.float64),
        added_base_mass_kg=params.added_base_mass_kg,
        com_offset_m=params.com_offset_m,
        motor_strength=params.motor_strength,
        kp_scale=params.kp_scale,
        kd_scale=params.kd_scale,
    )


def sample_domain_params(cfg: RandomizationConfig, n: int, rng: np.random.Generator) -> DomainParams:
    """Draw n simulations' parameters uniformly within the configured ranges (nominal if disabled)."""
    if not cfg.enabled:
        return DomainParams.nominal(n)
    return DomainParams(
        friction=rng.uniform(*cfg.friction, size=n),
        added_base_mass_kg=rng.uniform(*cfg.added_base_mass_kg, size=n),
        com_offset_m=rng.uniform(-cfg.com_offset_m, cfg.com_offset_m, size=(n, 3)),
        motor_strength=rng.uniform(*cfg.motor_strength, size=n),
        kp_scale=rng.uniform(*cfg.kp_scale, size=n),
        kd_scale=rng.uniform(*cfg.kd_scale, size=n),
    )


def sample_push_delay_steps(cfg: RandomizationConfig, n: int, ctrl_dt_s: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) policy steps until each simulation's next push (never, if randomization is off)."""
    if not cfg.enabled or cfg.push_velocity_mps == 0.0:
        return np.full(n, np.iinfo(np.int64).max // 2, dtype=np.int64)
    return np.maximum(1, np.round(rng.uniform(*cfg.push_interval_s, size=n) / ctrl_dt_s)).astype(np.int64)


def sample_push_force(
    cfg: RandomizationConfig, n: int, robot_mass_kg: np.ndarray, ctrl_dt_s: float, rng: np.random.Generator
) -> np.ndarray:
    """(n, 3) horizontal forces, N, that change the base velocity by up to push_velocity_mps over one step."""
    # F = m dv / dt, applied for one policy period
    heading = rng.uniform(-np.pi, np.pi, size=n)
    dv = rng.uniform(0.0, cfg.push_velocity_mps, size=n)
    magnitude = robot_mass_kg * dv / ctrl_dt_s
    return np.column_stack([magnitude * np.cos(heading), magnitude * np.sin(heading), np.zeros(n)])


def sample_commands(cfg: CommandConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) velocity commands (vx m/s, vy m/s, yaw rate rad/s); a share of them exactly zero."""
    commands = np.column_stack(
        [
            rng.uniform(*cfg.lin_vel_x_mps, size=n),
            rng.uniform(*cfg.lin_vel_y_mps, size=n),
            rng.uniform(*cfg.yaw_rate_radps, size=n),
        ]
    )
    standing = rng.random(n) < cfg.standing_probability
    commands[standing] = 0.0
    return commands

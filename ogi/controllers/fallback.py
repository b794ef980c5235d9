"""Fallback joint commands for when the learned policy is switched off: crouch or damping.

Both modes feed the same 1 kHz PD law as the policy (`tau = kp (q_des - q) - kd qd`, clipped to the motors'
limits), only with their own targets and gains:

- crouch: the targets move smoothly from the joint angles at the switch to a low, wide posture with stiff
  gains for `stiff_s`, then the gains soften so the robot settles and rests without fighting contacts;
- damping: kp = 0 and kd > 0, the joints only resist motion (the robot sinks down slowly).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike

from ogi.controllers.pd import pd_torque
from ogi.robots.spec import RobotSpec
from ogi.validation import ConfigError, check_range


class ControlMode(str, Enum):
    POLICY = "policy"
    CROUCH = "crouch"
    DAMPING = "damping"


@dataclass(frozen=True, kw_only=True)
class FallbackConfig:
    """Targets and gains of the fallback modes; gains are scales of the robot's own PD gains.

    The crouch posture is `crouch_pose` (rad, action order) when given, else the robot's default pose
    times `crouch_pose_scale` (folding every bent joint further: lower base, same stance), clipped to
    the joint limits. Torque limits always come from the `RobotSpec`.
    """

    crouch_pose_scale: float = 1.25
    crouch_pose: tuple[float, ...] | None = None  # rad per joint, overrides crouch_pose_scale
    crouch_duration_s: float = 0.4  # time to move from the switch pose to the crouch pose
    stiff_kp_scale: float = 1.5
    stiff_kd_scale: float = 2.5
    stiff_s: float = 1.0  # stiff gains for this long after the switch, then soft ones
    soft_kp_scale: float = 1.0
    soft_kd_scale: float = 2.0
    damping_kd_scale: float = 3.0

    def __post_init__(self) -> None:
        check_range("fallback.crouch_pose_scale", self.crouch_pose_scale, 0.0, 3.0)
        check_range("fallback.crouch_duration_s", self.crouch_duration_s, 0.0, 10.0)
        check_range("fallback.stiff_s", self.stiff_s, 0.0, 1e6)
        if self.stiff_s < self.crouch_duration_s:
            raise ConfigError(
                f"fallback.stiff_s = {self.stiff_s} must be >= fallback.crouch_duration_s = {self.crouch_duration_s}"
                " (the crouch motion needs the stiff gains)"
            )
        for name in ("stiff_kp_scale", "stiff_kd_scale", "soft_kp_scale", "soft_kd_scale"):
            check_range(f"fallback.{name}", getattr(self, name), 0.0, 100.0)
        check_range("fallback.damping_kd_scale", self.damping_kd_scale, 1e-6, 100.0)
        if self.crouch_pose is not None:
            for i, value in enumerate(self.crouch_pose):
                check_range(f"fallback.crouch_pose[{i}]", value, -10.0, 10.0)


def crouch_pose(spec: RobotSpec, cfg: FallbackConfig) -> np.ndarray:
    """(n_joints,) rad: the crouch targets, inside the joint limits."""
    if cfg.crouch_pose is not None:
        if len(cfg.crouch_pose) != spec.num_joints:
            raise ConfigError(
                f"fallback.crouch_pose has {len(cfg.crouch_pose)} entries, robot '{spec.name}' has "
                f"{spec.num_joints} joints"
            )
        pose = np.asarray(cfg.crouch_pose, dtype=np.float64)
    else:
        pose = np.asarray(spec.default_pose, dtype=np.float64) * cfg.crouch_pose_scale
    low, high = np.asarray(spec.joint_limits, dtype=np.float64).T
    return np.clip(pose, low, high)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    # s(x) = 3x^2 - 2x^3 on [0, 1]: zero velocity at both ends of the crouch motion
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def fallback_command(
    mode: ControlMode,
    spec: RobotSpec,
    cfg: FallbackConfig,
    *,
    q: np.ndarray,
    q_at_switch: np.ndarray,
    t_in_mode_s: float | ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q_des, kp, kd) per joint for the 1 kHz PD law `tau = kp (q_des - q) - kd qd`, clipped to the limits.

    q, q_at_switch: (n_joints,) rad for one robot, or (n, n_joints) for a batch with t_in_mode_s (n,).
    crouch: q_des = q_switch + s(t / T) (q_crouch - q_switch) with smoothstep s, stiff gains until stiff_s,
    soft gains after; damping: q_des = q (no spring), kp = 0, kd = damping_kd_scale * kd_robot.
    """
    mode = ControlMode(mode)
    q = np.asarray(q, dtype=np.float64)
    q_at_switch = np.asarray(q_at_switch, dtype=np.float64)
    nj = spec.num_joints
    if q.shape[-1] != nj or q_at_switch.shape != q.shape:
        raise ValueError(
            f"q {q.shape} and q_at_switch {q_at_switch.shape} must both be (..., {nj}) for robot '{spec.name}'"
        )
    t = np.asarray(t_in_mode_s, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"t_in_mode_s must be finite and >= 0, got {t_in_mode_s!r}")
    t = t[..., None] if t.ndim else t
    kp_robot = np.asarray(spec.kp, dtype=np.float64)
    kd_robot = np.asarray(spec.kd, dtype=np.float64)
    if mode is ControlMode.DAMPING:
        return q.copy(), np.zeros_like(q), np.broadcast_to(cfg.damping_kd_scale * kd_robot, q.shape).copy()
    if mode is ControlMode.CROUCH:
        low, high = np.asarray(spec.joint_limits, dtype=np.float64).T
        start = np.clip(np.where(np.isfinite(q_at_switch), q_at_switch, spec.default_pose), low, high)
        target = crouch_pose(spec, cfg)
        blend = _smoothstep(t / cfg.crouch_duration_s) if cfg.crouch_duration_s > 0 else np.ones_like(t)
        q_des = start + blend * (target - start)
        stiff = t < cfg.stiff_s
        kp = np.where(stiff, cfg.stiff_kp_scale, cfg.soft_kp_scale) * kp_robot
        kd = np.where(stiff, cfg.stiff_kd_scale, cfg.soft_kd_scale) * kd_robot
        return q_des, np.broadcast_to(kp, q.shape).copy(), np.broadcast_to(kd, q.shape).copy()
    raise ValueError(f"mode '{mode.value}' has no fallback command (the policy drives the joints)")


def fallback_torque(
    spec: RobotSpec, q: np.ndarray, qd: np.ndarray, q_des: np.ndarray, kp: np.ndarray, kd: np.ndarray
) -> np.ndarray:
    """Joint torques, N*m, of a fallback command through the shared PD law, within the robot's limits."""
    return pd_torque(q, qd, q_des, kp, kd, 0.0, np.asarray(spec.torque_limit))

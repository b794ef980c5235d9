"""The low-level joint control law, written once."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def pd_torque(
    q: ArrayLike,
    qd: ArrayLike,
    q_des: ArrayLike,
    kp: ArrayLike,
    kd: ArrayLike,
    tau_ff: ArrayLike,
    limit: ArrayLike,
    qd_des: ArrayLike = 0.0,
) -> np.ndarray:
    """Joint torques of a PD law with feed-forward, clamped to the motors' limits.

    All arguments broadcast against each other, e.g. (n_envs, n_joints) states with (n_joints,)
    gains. Units: rad, rad/s, N*m/rad, N*m*s/rad, N*m.
    """
    # tau = clip(kp (q_des - q) + kd (qd_des - qd) + tau_ff, -tau_max, tau_max)
    q, qd, q_des, kp, kd, tau_ff, limit, qd_des = (
        np.asarray(x, dtype=np.float64) for x in (q, qd, q_des, kp, kd, tau_ff, limit, qd_des)
    )
    tau = kp * (q_des - q) + kd * (qd_des - qd) + tau_ff
    return np.clip(tau, -limit, limit)

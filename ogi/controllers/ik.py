"""Inverse kinematics for a hand: damped least squares on MuJoCo's site Jacobian, over a chosen set of joints.

`solve_site_ik` finds joint angles (of, e.g., one arm) that bring a site (a hand's grasp point) to a world
position, the rest of the body held where it is: each iteration moves the joints by
dq = J^T (J J^T + lambda^2 I)^-1 e (e the position error, J the site's 3 x k Jacobian over those joints), each step
at most `max_step_rad`, clipped to the joints' limits. A target out of reach ends at the nearest pose the
iterations find, and the returned error says how far it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class IKResult:
    joint_pos: np.ndarray  # (k,) rad (m for a slide joint), in the order of the joints asked for
    error_m: float  # distance left between the site and the target
    iterations: int


def solve_site_ik(
    model: mujoco.MjModel,
    qpos: np.ndarray,
    site: str,
    target_world: np.ndarray,
    joints: Sequence[str],
    *,
    damping: float = 0.05,
    max_step_rad: float = 0.2,
    tolerance_m: float = 1e-3,
    max_iterations: int = 100,
) -> IKResult:
    """Joint angles of `joints` that put `site` at `target_world`, starting from the configuration `qpos`."""
    target = np.asarray(target_world, dtype=np.float64)
    if target.shape != (3,) or not np.isfinite(target).all():
        raise ValueError(f"target must be a finite world position (3,), got {target_world!r}")
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    site_id = model.site(site).id
    joint_ids = np.array([model.joint(j).id for j in joints])
    qadr, dadr = model.jnt_qposadr[joint_ids], model.jnt_dofadr[joint_ids]
    low, high = model.jnt_range[joint_ids].T
    jac = np.zeros((3, model.nv))
    error = np.zeros(3)
    used = 0
    while used < max_iterations:
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        error = target - data.site_xpos[site_id]
        if np.linalg.norm(error) <= tolerance_m:
            break
        used += 1
        mujoco.mj_jacSite(model, data, jac, None, site_id)
        j = jac[:, dadr]
        step = j.T @ np.linalg.solve(j @ j.T + damping**2 * np.eye(3), error)
        step *= min(1.0, max_step_rad / max(np.abs(step).max(), 1e-12))
        data.qpos[qadr] = np.clip(data.qpos[qadr] + step, low, high)
    mujoco.mj_kinematics(model, data)
    error = target - data.site_xpos[site_id]
    return IKResult(joint_pos=data.qpos[qadr].copy(), error_m=float(np.linalg.norm(error)), iterations=used)

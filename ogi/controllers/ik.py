"""Inverse kinematics for a hand: damped least squares on MuJoCo's site Jacobian, over a chosen set of joints.

`solve_site_ik` finds joint angles (of, e.g., one arm) that bring a site (a hand's grasp point) to a world
position, the rest of the body held where it is: each iteration moves the joints by
dq = J^T (J J^T + lambda^2 I)^-1 e (e the position error, J the site's 3 x k Jacobian over those joints), each step
at most `max_step_rad`, clipped to the joints' limits. A target out of reach ends at the nearest pose the
iterations find, and the returned error says how far it is.

With `axis` the site's frame is turned as well: an axis fixed in the site (a gripper's closing direction) is
brought parallel to a world direction, either way round (a parallel jaw closes on either side). Each iteration then
solves for the position error and the rotation that takes that axis onto the direction, the rotation about the
axis itself left free: 5 equations, so a 4-joint arm meets them only in places, an arm and a waist in most of its
workspace; `axis_weight` trades radians against metres.
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
    axis_error_rad: float = 0.0  # angle left between the site's axis and the asked direction (with `axis`)


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
    axis: tuple[Sequence[float], Sequence[float]] | None = None,
    axis_weight: float = 1.0,
    axis_tolerance_rad: float = 0.01,
) -> IKResult:
    """Joint angles of `joints` that put `site` at `target_world`, starting from the configuration `qpos`; with
    `axis = (in the site's frame, in the world)` that site axis also parallel (or antiparallel) to the direction."""
    target = np.asarray(target_world, dtype=np.float64)
    if target.shape != (3,) or not np.isfinite(target).all():
        raise ValueError(f"target must be a finite world position (3,), got {target_world!r}")
    local = direction = None
    if axis is not None:
        local, direction = (_unit(v, name) for v, name in zip(axis, ("axis in the site frame", "axis direction")))
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    site_id = model.site(site).id
    joint_ids = np.array([model.joint(j).id for j in joints])
    qadr, dadr = model.jnt_qposadr[joint_ids], model.jnt_dofadr[joint_ids]
    low, high = model.jnt_range[joint_ids].T
    jac, jac_rot = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    rows = 3 if axis is None else 6
    used = 0

    def errors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position error, rotation taking the site axis onto the direction, the site axis in the world)"""
        position = target - data.site_xpos[site_id]
        if local is None:
            return position, np.zeros(3), np.zeros(3)
        now = data.site_xmat[site_id].reshape(3, 3) @ local
        return position, np.cross(now, direction if now @ direction >= 0 else -direction), now

    while used < max_iterations:
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        position, rotation, now = errors()
        if np.linalg.norm(position) <= tolerance_m and np.linalg.norm(rotation) <= np.sin(axis_tolerance_rad):
            break
        used += 1
        mujoco.mj_jacSite(model, data, jac, jac_rot, site_id)
        j, error = jac[:, dadr], position
        if local is not None:  # turning about the axis itself changes nothing asked: leave it free
            free = np.eye(3) - np.outer(now, now)
            j = np.vstack([j, axis_weight * free @ jac_rot[:, dadr]])
            error = np.concatenate([position, axis_weight * rotation])
        step = j.T @ np.linalg.solve(j @ j.T + damping**2 * np.eye(rows), error)
        step *= min(1.0, max_step_rad / max(np.abs(step).max(), 1e-12))
        data.qpos[qadr] = np.clip(data.qpos[qadr] + step, low, high)
    mujoco.mj_kinematics(model, data)
    position, rotation, now = errors()
    angle = 0.0 if local is None else float(np.arccos(np.clip(abs(now @ direction), 0.0, 1.0)))
    return IKResult(
        joint_pos=data.qpos[qadr].copy(), error_m=float(np.linalg.norm(position)), iterations=used, axis_error_rad=angle
    )


def _unit(vector: Sequence[float], name: str) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(v) if v.shape == (3,) else 0.0
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"{name} must be a finite, non-zero 3-vector, got {vector!r}")
    return v / norm

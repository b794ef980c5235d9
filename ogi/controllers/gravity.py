"""Gravity feed-forward for actuated joints, vectorized over a batch of simulations."""

from __future__ import annotations

import mujoco
import numpy as np


def subtree_mask(model: mujoco.MjModel, joint_ids: np.ndarray) -> np.ndarray:
    """(n_joints, n_bodies) bool: body b moves with joint j (b is in the subtree of j's body)."""
    mask = np.zeros((len(joint_ids), model.nbody), dtype=bool)
    for row, jid in enumerate(joint_ids):
        root = model.jnt_bodyid[jid]
        for body in range(model.nbody):
            b = body
            while b > 0 and b != root:
                b = model.body_parentid[b]
            mask[row, body] = b == root and body > 0
    return mask


def gravity_compensation_torque(
    joint_axis: np.ndarray,
    joint_anchor: np.ndarray,
    body_com: np.ndarray,
    body_mass: np.ndarray,
    mask: np.ndarray,
    gravity: np.ndarray,
) -> np.ndarray:
    """Torque each hinge joint needs to hold the bodies it carries against gravity, N*m.

    joint_axis, joint_anchor: (n, j, 3) world frame; body_com: (n, b, 3); body_mass: (b,) or (n, b);
    mask: (j, b) from `subtree_mask`; gravity: (3,) m/s^2. Returns (n, j).
    """
    # G_j = a_j . sum_b [ (c_b - x_j) x (m_b g) ] over bodies b carried by j; feed-forward = -G_j
    weighted = np.broadcast_to(body_mass, body_com.shape[:2])[..., None] * body_com  # (n, b, 3)
    first_moment = np.einsum("jb,nbk->njk", mask, weighted)  # sum m_b c_b, (n, j, 3)
    carried_mass = np.einsum("jb,nb->nj", mask, np.broadcast_to(body_mass, body_com.shape[:2]))
    lever = first_moment - carried_mass[..., None] * joint_anchor
    moment = np.cross(lever, gravity)
    return -np.einsum("njk,njk->nj", joint_axis, moment)

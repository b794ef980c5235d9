"""Observation groups of the `walk` task and the frame math they need, vectorized over envs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ogi.envs import gait

if TYPE_CHECKING:
    from ogi.envs.config import NoiseConfig

# scales that bring each policy observation to order one
ANG_VEL_SCALE = 0.25
JOINT_VEL_SCALE = 0.05
COMMAND_SCALE = np.array([2.0, 2.0, 0.25])
LIN_VEL_SCALE = 2.0


def quat_rotate_inverse(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate world-frame vectors into the body frame: R(q)^T v. quat (n, 4) w first, vec (n, 3)."""
    w = quat_wxyz[:, :1]
    u = quat_wxyz[:, 1:]
    # R^T v = v (2w^2 - 1) - 2w (u x v) + 2u (u . v)
    return vec * (2.0 * w * w - 1.0) - 2.0 * w * np.cross(u, vec) + 2.0 * u * np.sum(u * vec, axis=1, keepdims=True)


def projected_gravity(quat_wxyz: np.ndarray) -> np.ndarray:
    """(n, 3) unit gravity direction in the body frame; (0, 0, -1) when level."""
    down = np.zeros((quat_wxyz.shape[0], 3))
    down[:, 2] = -1.0
    return quat_rotate_inverse(quat_wxyz, down)


@dataclass(frozen=True)
class ObservationLayout:
    """Names and slices of one observation group, in order, for export and debugging."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, size in zip(self.names, self.sizes):
            out[name] = slice(start, start + size)
            start += size
        return out


def policy_layout(num_joints: int, depth_pixels: int = 0, gait_clock: bool = False) -> ObservationLayout:
    names = ("base_ang_vel", "projected_gravity", "command", "joint_pos", "joint_vel", "last_action")
    sizes = (3, 3, 3, num_joints, num_joints, num_joints)
    if gait_clock:
        names, sizes = names + ("gait_phase",), sizes + (2,)
    if depth_pixels:
        names, sizes = names + ("depth_image",), sizes + (depth_pixels,)
    return ObservationLayout(names=names, sizes=sizes)


def privileged_layout(num_feet: int, scan_points: int = 0) -> ObservationLayout:
    names = ("base_lin_vel", "base_height", "domain_params", "foot_contact", "push_force")
    sizes = (3, 1, 8, num_feet, 3)
    if scan_points:
        names, sizes = names + ("height_scan",), sizes + (scan_points,)
    return ObservationLayout(names=names, sizes=sizes)


def policy_observation(
    ang_vel_body: np.ndarray,
    gravity_body: np.ndarray,
    command: np.ndarray,
    joint_pos_rel: np.ndarray,
    joint_vel: np.ndarray,
    last_action: np.ndarray,
    noise: NoiseConfig,
    rng: np.random.Generator,
    depth: np.ndarray | None = None,
    gait_phase: np.ndarray | None = None,
) -> np.ndarray:
    """(n, 9 + 3 j [+ 2] [+ p]) float32: what a real robot measures, with uniform sensor noise, scaled.

    gait_phase: (n,) the gait clock's phase in [0, 1), read as (sin, cos) of 2 pi phase, or None.
    depth: (n, p) depth image in [0, 1] from the downward camera, already noisy, or None.
    """
    if noise.enabled:
        n, j = joint_pos_rel.shape
        ang_vel_body = ang_vel_body + rng.uniform(-noise.ang_vel_radps, noise.ang_vel_radps, (n, 3))
        gravity_body = gravity_body + rng.uniform(-noise.gravity, noise.gravity, (n, 3))
        joint_pos_rel = joint_pos_rel + rng.uniform(-noise.joint_pos_rad, noise.joint_pos_rad, (n, j))
        joint_vel = joint_vel + rng.uniform(-noise.joint_vel_radps, noise.joint_vel_radps, (n, j))
    return np.concatenate(
        [
            ang_vel_body * ANG_VEL_SCALE,
            gravity_body,
            command * COMMAND_SCALE,
            joint_pos_rel,
            joint_vel * JOINT_VEL_SCALE,
            last_action,
            *([gait.clock_features(gait_phase)] if gait_phase is not None else []),
            *([depth] if depth is not None else []),
        ],
        axis=1,
        dtype=np.float32,
    )


def privileged_observation(
    lin_vel_body: np.ndarray,
    base_height: np.ndarray,
    domain_features: np.ndarray,
    foot_contact: np.ndarray,
    push_force_over_weight: np.ndarray,
    height_scan: np.ndarray | None = None,
) -> np.ndarray:
    """(n, 15 + f [+ r]) float32: noise-free quantities only a simulator knows.

    height_scan: (n, r) base height above the ground at each scan point, m, or None.
    """
    extra = [np.clip(height_scan, -1.0, 2.0)] if height_scan is not None else []
    return np.concatenate(
        [
            lin_vel_body * LIN_VEL_SCALE,
            base_height[:, None],
            domain_features,
            foot_contact,
            push_force_over_weight,
            *extra,
        ],
        axis=1,
        dtype=np.float32,
    )

"""Gravity feed-forward on the robot side: the torque each joint needs to hold what it carries.

The policy was trained with this feed-forward added to its PD law (`ogi.envs.walk`), so the robot program
computes it the same way: the robot's kinematic model posed by the IMU orientation and the measured joint
angles, then `ogi.controllers.gravity.gravity_compensation_torque`.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ogi.controllers.gravity import gravity_compensation_torque, subtree_mask
from ogi.robots import RobotSpec, instrument


class GravityFeedforward:
    """`(quat_wxyz (4,), q (n_joints,)) -> tau_ff (n_joints,)` N*m, for one robot."""

    def __init__(self, robot: RobotSpec):
        self.model = m = instrument(robot.build(), robot).compile()
        self.data = mujoco.MjData(m)
        self.joint_ids = np.array([m.joint(j).id for j in robot.joint_names])
        self.qpos_adr = m.jnt_qposadr[self.joint_ids]
        base = m.body(robot.base_body).id
        free = next(
            j
            for j in range(m.body_jntadr[base], m.body_jntadr[base] + m.body_jntnum[base])
            if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE
        )
        self.base_qpos_adr = int(m.jnt_qposadr[free])
        self.mask = subtree_mask(m, self.joint_ids).astype(np.float64)

    def __call__(self, quat_wxyz: np.ndarray, q: np.ndarray) -> np.ndarray:
        m, d = self.model, self.data
        a = self.base_qpos_adr
        quat = np.asarray(quat_wxyz, dtype=np.float64)
        norm = float(np.linalg.norm(quat))
        if not np.isfinite(norm) or norm < 1e-6 or not np.all(np.isfinite(q)):
            return np.zeros(len(self.joint_ids))
        d.qpos[a : a + 3] = 0.0
        d.qpos[a + 3 : a + 7] = quat / norm
        d.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(m, d)
        return gravity_compensation_torque(
            d.xaxis[self.joint_ids][None],
            d.xanchor[self.joint_ids][None],
            d.xipos[None],
            m.body_mass,
            self.mask,
            m.opt.gravity,
        )[0]

"""Numbers that describe a robot, read off its compiled model (for `ogi robots`)."""

from __future__ import annotations

import mujoco
import numpy as np

from ogi.robots.instrument import STAND_KEY, instrument
from ogi.robots.registry import ROBOTS
from ogi.robots.spec import RobotSpec


def robot_summary(robot: RobotSpec) -> dict:
    """Name, DoF, total mass kg, standing height m (top of the robot), base height m, joint and foot names."""
    model = instrument(robot.build(), robot).compile()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key(STAND_KEY).id)
    mujoco.mj_forward(model, data)
    base = model.body(robot.base_body).id
    robot_geoms = np.flatnonzero(model.geom_bodyid != 0)
    # highest point of each geom's bounding box: centre z + sum_k |R_zk| half_k
    rot = data.geom_xmat[robot_geoms].reshape(-1, 3, 3)
    centre, half = model.geom_aabb[robot_geoms, :3], model.geom_aabb[robot_geoms, 3:]
    centre_z = data.geom_xpos[robot_geoms, 2] + np.einsum("gk,gk->g", rot[:, 2, :], centre)
    top = float(np.max(centre_z + np.einsum("gk,gk->g", np.abs(rot[:, 2, :]), half)))
    lowest_foot = min(float(data.site_xpos[model.site(s).id, 2]) for s in robot.foot_sites)
    return {
        "name": robot.name,
        "description": robot.description,
        "dof": robot.num_joints,
        "mass_kg": float(model.body_subtreemass[base]),
        "height_m": top,
        "base_height_m": float(data.xpos[base, 2]),
        "lowest_foot_site_m": lowest_foot,
        "joints": list(robot.joint_names),
        "feet": list(robot.foot_sites),
    }


def joint_rows(robot: RobotSpec) -> list[dict]:
    """One row per actuated joint, in action order: default angle, limits (rad), PD gains, torque limit (N*m)."""
    return [
        {
            "name": name,
            "default_rad": default,
            "low_rad": low,
            "high_rad": high,
            "kp": kp,
            "kd": kd,
            "torque_limit_nm": torque,
        }
        for name, default, (low, high), kp, kd, torque in zip(
            robot.joint_names, robot.default_pose, robot.joint_limits, robot.kp, robot.kd, robot.torque_limit
        )
    ]


def robot_summaries() -> list[dict]:
    return [robot_summary(robot) for robot in ROBOTS.values()]

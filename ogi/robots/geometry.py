"""Shared conventions for building robot geometry with `mujoco.MjSpec`."""

from __future__ import annotations

import mujoco

# robot geoms collide with the ground (contype 1) but not with each other
COLLIDE_ROBOT = {"contype": 2, "conaffinity": 1}
# ground and terrain geoms
COLLIDE_GROUND = {"contype": 1, "conaffinity": 2}


def new_robot_spec(
    name: str,
    *,
    armature: float = 0.01,
    damping_nms_per_rad: float = 0.1,
    frictionloss_nm: float = 0.2,
) -> mujoco.MjSpec:
    """An empty spec in radians with the joint dynamics every actuated joint of the robot shares."""
    spec = mujoco.MjSpec()
    spec.modelname = name
    spec.compiler.degree = False
    spec.compiler.autolimits = True
    spec.option.timestep = 0.001
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    joint = spec.default.joint
    joint.armature = armature
    joint.damping = [damping_nms_per_rad, 0.0, 0.0]  # linear damping only
    joint.frictionloss = frictionloss_nm
    return spec

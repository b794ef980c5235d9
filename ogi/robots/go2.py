"""A Go2-class 12-DoF quadruped, built from the public dimensions and masses of the Unitree Go2.

Action order is the SDK's motor order: FR, FL, RR, RL x (hip, thigh, calf). The body tree is
built FL, FR, RL, RR, so qpos order differs; everything downstream maps joints by name.
"""

from __future__ import annotations

import mujoco

from ogi.robots.geometry import COLLIDE_ROBOT, new_robot_spec
from ogi.robots.spec import RobotSpec

LEGS = ("FR", "FL", "RR", "RL")  # SDK motor order
_BODY_TREE_ORDER = ("FL", "FR", "RL", "RR")
_PARTS = ("hip", "thigh", "calf")

BASE_MASS_KG = 6.921
BASE_COM_M = (0.021, 0.0, -0.005)
BASE_HALF_SIZE_M = (0.188, 0.047, 0.057)
HIP_MASS_KG, THIGH_MASS_KG, CALF_MASS_KG = 0.678, 1.152, 0.241
HIP_OFFSET_M = (0.1934, 0.0465, 0.0)  # hip joint from base origin, signs per leg
THIGH_OFFSET_Y_M = 0.0955
THIGH_LENGTH_M = 0.213
CALF_LENGTH_M = 0.213
FOOT_RADIUS_M = 0.022
FOOT_MASS_KG = 0.04  # part of the calf's 0.241 kg
IMU_POS_M = (-0.026, 0.0, 0.042)

HIP_RANGE = (-1.047, 1.047)
FRONT_THIGH_RANGE = (-1.571, 3.491)
REAR_THIGH_RANGE = (-0.524, 4.538)
CALF_RANGE = (-2.723, -0.838)
TORQUE_LIMIT_NM = {"hip": 23.7, "thigh": 23.7, "calf": 45.43}


def _leg_signs(leg: str) -> tuple[float, float]:
    """(x sign, y sign) of a leg: front +x, left +y."""
    return (1.0 if leg[0] == "F" else -1.0), (1.0 if leg[1] == "L" else -1.0)


def build_go2_spec() -> mujoco.MjSpec:
    """The Go2-class quadruped's geometry, joints and sites (no actuators or sensors)."""
    spec = new_robot_spec("go2")
    base = spec.worldbody.add_body(name="base", pos=[0, 0, 0.4], mass=BASE_MASS_KG, ipos=list(BASE_COM_M))
    base.inertia = _box_inertia(BASE_MASS_KG, (0.376, 0.094, 0.114))
    base.explicitinertial = True
    base.add_freejoint(name="root")
    base.add_geom(
        name="base_box",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(BASE_HALF_SIZE_M),
        rgba=[0.2, 0.2, 0.25, 1],
        **COLLIDE_ROBOT,
    )
    base.add_geom(
        name="head",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.03, 0.045, 0.04],
        pos=[0.22, 0, 0.01],
        rgba=[0.15, 0.15, 0.2, 1],
        **COLLIDE_ROBOT,
    )
    base.add_site(name="imu", pos=list(IMU_POS_M), size=[0.01, 0, 0])

    for leg in _BODY_TREE_ORDER:
        sx, sy = _leg_signs(leg)
        hip = base.add_body(
            name=f"{leg}_hip",
            pos=[sx * HIP_OFFSET_M[0], sy * HIP_OFFSET_M[1], 0.0],
            mass=HIP_MASS_KG,
            ipos=[0, sy * 0.01, 0],
        )
        hip.inertia = [0.0005, 0.0008, 0.0006]
        hip.explicitinertial = True
        hip.add_joint(name=f"{leg}_hip_joint", axis=[1, 0, 0], range=list(HIP_RANGE))
        hip.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[0.046, 0.02, 0],
            quat=[0.7071068, 0.7071068, 0, 0],
            rgba=[0.6, 0.6, 0.65, 1],
            contype=0,
            conaffinity=0,
        )

        thigh = hip.add_body(
            name=f"{leg}_thigh", pos=[0, sy * THIGH_OFFSET_Y_M, 0], mass=THIGH_MASS_KG, ipos=[-0.004, -sy * 0.02, -0.03]
        )
        thigh.inertia = [0.0058, 0.0058, 0.0011]
        thigh.explicitinertial = True
        thigh_range = FRONT_THIGH_RANGE if sx > 0 else REAR_THIGH_RANGE
        thigh.add_joint(name=f"{leg}_thigh_joint", axis=[0, 1, 0], range=list(thigh_range))
        thigh.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0, 0, 0, 0, 0, -THIGH_LENGTH_M + 0.03],
            size=[0.022, 0, 0],
            rgba=[0.6, 0.6, 0.65, 1],
            **COLLIDE_ROBOT,
        )

        calf = thigh.add_body(
            name=f"{leg}_calf", pos=[0, 0, -THIGH_LENGTH_M], mass=CALF_MASS_KG - FOOT_MASS_KG, ipos=[0.006, 0, -0.11]
        )
        calf.inertia = [0.0016, 0.0016, 0.00004]
        calf.explicitinertial = True
        calf.add_joint(name=f"{leg}_calf_joint", axis=[0, 1, 0], range=list(CALF_RANGE))
        calf.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0, 0, -0.02, 0, 0, -CALF_LENGTH_M + 0.03],
            size=[0.013, 0, 0],
            rgba=[0.3, 0.3, 0.35, 1],
            **COLLIDE_ROBOT,
        )
        # the foot is its own (welded) body so that shin contacts and foot contacts are told apart
        foot = calf.add_body(
            name=f"{leg}_foot", pos=[0, 0, -CALF_LENGTH_M], mass=FOOT_MASS_KG, inertia=[1e-5, 1e-5, 1e-5]
        )
        foot.explicitinertial = True
        foot.add_geom(
            name=f"{leg}_foot",
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[FOOT_RADIUS_M, 0, 0],
            rgba=[0.1, 0.1, 0.1, 1],
            friction=[0.8, 0.02, 0.01],
            **COLLIDE_ROBOT,
        )
        foot.add_site(name=f"{leg}_foot", size=[0.005, 0, 0])
    return spec


def _box_inertia(mass: float, full_size: tuple[float, float, float]) -> list[float]:
    x, y, z = full_size
    return [mass * (y * y + z * z) / 12, mass * (x * x + z * z) / 12, mass * (x * x + y * y) / 12]


def _per_leg(values: dict[str, float]) -> tuple[float, ...]:
    return tuple(values[part] for _ in LEGS for part in _PARTS)


def _default_pose() -> tuple[float, ...]:
    pose = []
    for leg in LEGS:
        sx, sy = _leg_signs(leg)
        pose += [0.1 * sy, 0.8 if sx > 0 else 1.0, -1.5]
    return tuple(pose)


def _joint_limits() -> tuple[tuple[float, float], ...]:
    limits = []
    for leg in LEGS:
        sx, _ = _leg_signs(leg)
        limits += [HIP_RANGE, FRONT_THIGH_RANGE if sx > 0 else REAR_THIGH_RANGE, CALF_RANGE]
    return tuple(limits)


GO2 = RobotSpec(
    name="go2",
    description="Go2-class 12-DoF quadruped (~15.2 kg, thigh and calf 0.213 m)",
    joint_names=tuple(f"{leg}_{part}_joint" for leg in LEGS for part in _PARTS),
    default_pose=_default_pose(),
    kp=_per_leg({"hip": 40.0, "thigh": 40.0, "calf": 40.0}),
    kd=_per_leg({"hip": 1.0, "thigh": 1.0, "calf": 1.0}),
    torque_limit=_per_leg(TORQUE_LIMIT_NM),
    joint_limits=_joint_limits(),
    foot_sites=tuple(f"{leg}_foot" for leg in LEGS),
    imu_site="imu",
    base_body="base",
    nominal_base_height=0.32,
    termination_contact_bodies=("base", *(f"{leg}_thigh" for leg in LEGS)),
    undesired_contact_bodies=tuple(f"{leg}_calf" for leg in LEGS),
    build=build_go2_spec,
)

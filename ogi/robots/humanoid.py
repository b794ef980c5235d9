"""A G1-class humanoid for loco-manipulation: the biped's legs, a torso on a waist-yaw joint, two 4-DoF arms and
one-joint parallel grippers, from the public dimensions and masses of the Unitree G1 (its 23-DoF version's waist yaw
and arms, without the wrist).

Action order: left leg, right leg (as the biped), waist yaw, then per side (left first) shoulder pitch, shoulder roll,
shoulder yaw, elbow, gripper. The body tree is built in the same order.

In the zero pose the arms hang straight down; a negative shoulder pitch raises the arm forward and a negative elbow
angle bends the forearm forward (both turn about +y, like the legs' pitch joints). Each gripper is one slide joint
whose position is the jaw opening (m): a finger plate moving against a plate fixed to the palm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import mujoco

from ogi.robots.biped import (
    DARK_RGBA,
    FOOT_SITES,
    LEG_DEFAULT_POSE_RAD,
    LEG_KD,
    LEG_KP,
    LEG_TORQUE_LIMIT_NM,
    LINK_RGBA,
    SHIN_BODIES,
    SIDES,
    THIGH_BODIES,
    add_capsule,
    add_link,
    build_legged_pelvis,
    leg_joint_limits,
    leg_joint_names,
    per_leg_joint,
    side_sign,
)
from ogi.robots.geometry import COLLIDE_ROBOT
from ogi.robots.spec import RobotSpec

ARM_JOINTS = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "gripper")

# the G1's 6.8 kg torso plus its head and the waist and wrist motors this model leaves out: ~35 kg in all
TORSO_MASS_KG = 9.5
# over the pelvis, as the biped's upper body: the PD-only stand tolerates about +-1 cm of whole-body COM
TORSO_COM_M = (0.0, 0.0, 0.20)
TORSO_BOX_SIZE_M = (0.14, 0.2, 0.3)
# per-arm link masses of the G1, named by the joint that moves the link; the forearm takes in the wrist
ARM_LINK_MASS_KG = {"shoulder_pitch": 0.713, "shoulder_roll": 0.642, "shoulder_yaw": 0.713, "elbow": 0.90}
PALM_MASS_KG = 0.40  # palm and fixed jaw
FINGER_MASS_KG = 0.08

SHOULDER_OFFSET_M = (0.0, 0.10, 0.26)  # shoulder-pitch joint from the waist joint, y sign per side
SHOULDER_ROLL_OFFSET_Y_M = 0.052
UPPER_ARM_YAW_OFFSET_Z_M = 0.10  # shoulder roll to shoulder yaw
ELBOW_OFFSET_Z_M = 0.09  # shoulder yaw to elbow
FOREARM_LENGTH_M = 0.20  # elbow to palm
PALM_HALF_SIZE_M = (0.035, 0.03, 0.02)
JAW_HALF_SIZE_M = (0.005, 0.025, 0.035)
JAW_CENTER_Z_M = -0.075  # below the palm origin
JAW_CLOSED_X_M = -0.025  # where the jaws meet, fixed jaw behind it (-x) and finger ahead
GRIPPER_OPENING_MAX_M = 0.04

WAIST_RANGE = (-2.618, 2.618)
ARM_JOINT_RANGE = {
    "shoulder_pitch": (-3.09, 2.67),
    "shoulder_roll": (-1.59, 2.25),  # left arm
    "shoulder_yaw": (-2.62, 2.62),
    "elbow": (-2.6, 0.1),
    "gripper": (0.0, GRIPPER_OPENING_MAX_M),
}
WAIST_TORQUE_LIMIT_NM = 88.0
ARM_TORQUE_LIMIT = {
    "shoulder_pitch": 25.0,
    "shoulder_roll": 25.0,
    "shoulder_yaw": 25.0,
    "elbow": 25.0,
    "gripper": 20.0,
}  # N*m; N
# arms hang slightly out from the thighs with the elbows a little bent; the jaws half open
ARM_DEFAULT_POSE = {"shoulder_pitch": 0.0, "shoulder_roll": 0.15, "shoulder_yaw": 0.0, "elbow": -0.3, "gripper": 0.02}
WAIST_KP, WAIST_KD = 100.0, 2.0
ARM_KP = {
    "shoulder_pitch": 40.0,
    "shoulder_roll": 40.0,
    "shoulder_yaw": 40.0,
    "elbow": 40.0,
    "gripper": 50.0,
}  # N*m/rad; N/m
ARM_KD = {"shoulder_pitch": 1.0, "shoulder_roll": 1.0, "shoulder_yaw": 1.0, "elbow": 1.0, "gripper": 1.0}


def arm_joint_range(side: str, joint: str) -> tuple[float, float]:
    """Joint range (rad, or m for the gripper); the right shoulder roll's is the left's mirrored."""
    low, high = ARM_JOINT_RANGE[joint]
    return (-high, -low) if side == "right" and joint == "shoulder_roll" else (low, high)


def arm_default(side: str, joint: str) -> float:
    """Default position; the roll mirrors so both arms hang outward."""
    return side_sign(side) * ARM_DEFAULT_POSE[joint] if joint == "shoulder_roll" else ARM_DEFAULT_POSE[joint]


def _add_gripper(forearm: mujoco.MjsBody, side: str) -> None:
    palm = add_link(
        forearm,
        f"{side}_hand",
        pos_m=[0, 0, -FOREARM_LENGTH_M],
        mass_kg=PALM_MASS_KG,
        com_m=[0, 0, -0.03],
        size_m=(0.07, 0.06, 0.08),
    )
    palm.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(PALM_HALF_SIZE_M),
        pos=[0, 0, -PALM_HALF_SIZE_M[2]],
        rgba=DARK_RGBA,
        **COLLIDE_ROBOT,
    )
    palm.add_geom(
        name=f"{side}_jaw",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(JAW_HALF_SIZE_M),
        pos=[JAW_CLOSED_X_M - JAW_HALF_SIZE_M[0], 0, JAW_CENTER_Z_M],
        rgba=LINK_RGBA,
        **COLLIDE_ROBOT,
    )
    palm.add_site(
        name=f"{side}_grasp", pos=[JAW_CLOSED_X_M + GRIPPER_OPENING_MAX_M / 2, 0, JAW_CENTER_Z_M], size=[0.005, 0, 0]
    )

    # closed (joint at 0) the finger plate lies against the fixed jaw; opening slides it forward (+x)
    finger = add_link(
        palm,
        f"{side}_finger",
        pos_m=[JAW_CLOSED_X_M + JAW_HALF_SIZE_M[0], 0, JAW_CENTER_Z_M],
        mass_kg=FINGER_MASS_KG,
        com_m=[0, 0, 0],
        size_m=(2 * JAW_HALF_SIZE_M[0], 2 * JAW_HALF_SIZE_M[1], 2 * JAW_HALF_SIZE_M[2]),
    )
    finger.add_joint(
        name=f"{side}_gripper_joint",
        type=mujoco.mjtJoint.mjJNT_SLIDE,
        axis=[1, 0, 0],
        range=list(ARM_JOINT_RANGE["gripper"]),
    )
    finger.add_geom(
        name=f"{side}_finger",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(JAW_HALF_SIZE_M),
        rgba=LINK_RGBA,
        **COLLIDE_ROBOT,
    )


def add_arm(torso: mujoco.MjsBody, side: str) -> None:
    """One arm, shoulder to gripper; bodies are named `<side>_<joint>` after the joint moving them."""
    sy = side_sign(side)
    mass = ARM_LINK_MASS_KG

    def link(
        parent: mujoco.MjsBody,
        joint: str,
        axis: list[float],
        *,
        pos_m: list[float],
        com_m: list[float],
        size_m: tuple[float, float, float],
    ) -> mujoco.MjsBody:
        body = add_link(parent, f"{side}_{joint}", pos_m=pos_m, mass_kg=mass[joint], com_m=com_m, size_m=size_m)
        body.add_joint(name=f"{side}_{joint}_joint", axis=axis, range=list(arm_joint_range(side, joint)))
        return body

    shoulder_pos_m = [SHOULDER_OFFSET_M[0], sy * SHOULDER_OFFSET_M[1], SHOULDER_OFFSET_M[2]]
    shoulder_pitch = link(
        torso, "shoulder_pitch", [0, 1, 0], pos_m=shoulder_pos_m, com_m=[0, sy * 0.03, 0], size_m=(0.07, 0.06, 0.07)
    )
    shoulder_pitch.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.035, 0.025, 0],
        pos=[0, sy * 0.025, 0],
        quat=[0.7071068, 0.7071068, 0, 0],  # cylinder axis along y
        rgba=DARK_RGBA,
        **COLLIDE_ROBOT,
    )

    shoulder_roll = link(
        shoulder_pitch,
        "shoulder_roll",
        [1, 0, 0],
        pos_m=[0, sy * SHOULDER_ROLL_OFFSET_Y_M, 0],
        com_m=[0, 0, -0.05],
        size_m=(0.06, 0.06, 0.1),
    )
    add_capsule(shoulder_roll, 0.0, -UPPER_ARM_YAW_OFFSET_Z_M + 0.02, 0.035, LINK_RGBA)

    upper_arm = link(
        shoulder_roll,
        "shoulder_yaw",
        [0, 0, 1],
        pos_m=[0, 0, -UPPER_ARM_YAW_OFFSET_Z_M],
        com_m=[0, 0, -0.05],
        size_m=(0.06, 0.06, 0.1),
    )
    add_capsule(upper_arm, 0.0, -ELBOW_OFFSET_Z_M + 0.02, 0.03, LINK_RGBA)

    forearm = link(
        upper_arm, "elbow", [0, 1, 0], pos_m=[0, 0, -ELBOW_OFFSET_Z_M], com_m=[0, 0, -0.09], size_m=(0.05, 0.05, 0.2)
    )
    add_capsule(forearm, -0.02, -FOREARM_LENGTH_M + 0.01, 0.028, LINK_RGBA)
    _add_gripper(forearm, side)


def build_humanoid_spec() -> mujoco.MjSpec:
    """The G1-class humanoid's geometry, joints and sites (no actuators or sensors)."""
    spec, pelvis = build_legged_pelvis("humanoid")
    torso = add_link(
        pelvis, "torso", pos_m=[0, 0, 0], mass_kg=TORSO_MASS_KG, com_m=list(TORSO_COM_M), size_m=TORSO_BOX_SIZE_M
    )
    torso.add_joint(name="waist_yaw_joint", axis=[0, 0, 1], range=list(WAIST_RANGE))
    torso.add_geom(
        name="torso",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[h / 2 for h in TORSO_BOX_SIZE_M],
        pos=[0, 0, 0.18],
        rgba=LINK_RGBA,
        **COLLIDE_ROBOT,
    )
    torso.add_geom(
        name="head",
        type=mujoco.mjtGeom.mjGEOM_SPHERE,
        size=[0.06, 0, 0],
        pos=[0, 0, 0.42],
        rgba=DARK_RGBA,
        **COLLIDE_ROBOT,
    )
    for side in SIDES:
        add_arm(torso, side)
    return spec


def _arm_joint_names() -> tuple[str, ...]:
    return tuple(f"{side}_{joint}_joint" for side in SIDES for joint in ARM_JOINTS)


_Value = TypeVar("_Value")


def _with_arms(
    leg_values: tuple[_Value, ...], waist_value: _Value, arm_value: Callable[[str, str], _Value]
) -> tuple[_Value, ...]:
    """Leg values, then the waist's, then `arm_value(side, joint)` per arm joint, in action order."""
    return (*leg_values, waist_value, *(arm_value(side, joint) for side in SIDES for joint in ARM_JOINTS))


HUMANOID = RobotSpec(
    name="humanoid",
    description="G1-class humanoid (~35 kg): 12-DoF legs, waist yaw, two 4-DoF arms with one-joint grippers",
    joint_names=(*leg_joint_names(), "waist_yaw_joint", *_arm_joint_names()),
    default_pose=_with_arms(per_leg_joint(LEG_DEFAULT_POSE_RAD), 0.0, arm_default),
    kp=_with_arms(per_leg_joint(LEG_KP), WAIST_KP, lambda _, joint: ARM_KP[joint]),
    kd=_with_arms(per_leg_joint(LEG_KD), WAIST_KD, lambda _, joint: ARM_KD[joint]),
    torque_limit=_with_arms(
        per_leg_joint(LEG_TORQUE_LIMIT_NM), WAIST_TORQUE_LIMIT_NM, lambda _, joint: ARM_TORQUE_LIMIT[joint]
    ),
    joint_limits=_with_arms(leg_joint_limits(), WAIST_RANGE, arm_joint_range),
    foot_sites=FOOT_SITES,
    imu_site="imu",
    base_body="pelvis",
    nominal_base_height=0.78,
    termination_contact_bodies=("pelvis", "torso", *THIGH_BODIES),
    undesired_contact_bodies=SHIN_BODIES,
    build=build_humanoid_spec,
)

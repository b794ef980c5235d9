"""A G1-class 12-DoF biped, built from the public dimensions and masses of the Unitree G1 legs.

Action order is the SDK's: left leg then right leg, each (hip pitch, hip roll, hip yaw, knee, ankle pitch, ankle roll);
the body tree is built in the same order. The upper body (torso, head, arms) is one body welded to the pelvis. The
pelvis and legs are shared with `ogi.robots.humanoid`, which puts a torso with arms on a waist joint instead.

All joint axes are world-aligned in the zero pose (the G1 tilts its hip-pitch frame and slants the thigh to make up
for it). Roll joints share one axis on both sides, so the right leg's hip-roll range is the left's mirrored.
"""

from __future__ import annotations

import mujoco

from ogi.robots.geometry import COLLIDE_ROBOT, new_robot_spec
from ogi.robots.spec import RobotSpec

SIDES = ("left", "right")  # SDK motor order
LEG_JOINTS = ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle_pitch", "ankle_roll")

PELVIS_MASS_KG = 3.8
PELVIS_HALF_SIZE_M = (0.07, 0.10, 0.06)
PELVIS_COM_M = (0.0, 0.0, -0.04)
# per-leg link masses of the G1, named by the joint that moves the link
LEG_LINK_MASS_KG = {
    "hip_pitch": 1.35,
    "hip_roll": 1.52,
    "hip_yaw": 1.70,
    "knee": 1.93,
    "ankle_pitch": 0.07,
    "ankle_roll": 0.61,
}
FOOT_MASS_KG = 0.45  # part of the ankle-roll link's 0.61 kg
# the G1's 6.8 kg torso plus its arms and head, fixed, bring the biped to ~32 kg
BIPED_UPPER_BODY_MASS_KG = 13.8
# over the pelvis: with this gains table the PD-only stand is stable for whole-body COM within about +-1 cm of here
BIPED_UPPER_BODY_COM_M = (0.0, 0.0, 0.20)

HIP_OFFSET_M = (0.0, 0.0645, -0.1027)  # hip-pitch joint from the pelvis origin, y sign per side
HIP_ROLL_OFFSET_Y_M = 0.0523
HIP_YAW_OFFSET_Z_M = 0.12
THIGH_LENGTH_M = 0.32  # hip roll to knee
SHIN_LENGTH_M = 0.30
ANKLE_ROLL_OFFSET_Z_M = 0.02
ANKLE_HEIGHT_M = 0.045  # ankle-roll axis above the sole
FOOT_HALF_SIZE_M = (0.095, 0.035, 0.015)
FOOT_CENTER_X_M = 0.035  # sole centre ahead of the ankle: the G1's sole spans -0.06..0.13 m
FOOT_FRICTION = (0.8, 0.02, 0.01)
IMU_POS_M = (-0.03, 0.0, -0.05)

LEG_JOINT_RANGE = {
    "hip_pitch": (-2.53, 2.88),
    "hip_roll": (-0.52, 2.97),  # left leg
    "hip_yaw": (-2.76, 2.76),
    "knee": (-0.087, 2.88),
    "ankle_pitch": (-0.87, 0.52),
    "ankle_roll": (-0.26, 0.26),
}
LEG_TORQUE_LIMIT_NM = {
    "hip_pitch": 88.0,
    "hip_roll": 139.0,
    "hip_yaw": 88.0,
    "knee": 139.0,
    "ankle_pitch": 50.0,
    "ankle_roll": 50.0,
}
LEG_DEFAULT_POSE_RAD = {
    "hip_pitch": -0.1,
    "hip_roll": 0.0,
    "hip_yaw": 0.0,
    "knee": 0.3,
    "ankle_pitch": -0.2,
    "ankle_roll": 0.0,
}
# the G1's gains, except ankle pitch (40 there): standing on PD alone needs the two ankles stiffer than the
# whole-body lean about them, M g h ~ 32 kg * 9.81 * 0.64 m ~ 200 N*m/rad, plus the knees' give under load
LEG_KP = {
    "hip_pitch": 100.0,
    "hip_roll": 100.0,
    "hip_yaw": 100.0,
    "knee": 150.0,
    "ankle_pitch": 300.0,
    "ankle_roll": 40.0,
}
LEG_KD = {"hip_pitch": 2.0, "hip_roll": 2.0, "hip_yaw": 2.0, "knee": 4.0, "ankle_pitch": 2.0, "ankle_roll": 2.0}

# G1-like joint dynamics (MuJoCo Menagerie's G1: armature 0.01, damping 0.5, frictionloss 0.1)
JOINT_ARMATURE = 0.02
JOINT_DAMPING_NMS_PER_RAD = 0.5
JOINT_FRICTIONLOSS_NM = 0.1

LINK_RGBA = [0.7, 0.7, 0.72, 1]
DARK_RGBA = [0.2, 0.2, 0.22, 1]

FOOT_SITES = tuple(f"{side}_foot" for side in SIDES)
THIGH_BODIES = tuple(f"{side}_{link}" for side in SIDES for link in ("hip_pitch", "hip_roll", "hip_yaw"))
SHIN_BODIES = tuple(f"{side}_knee" for side in SIDES)


def side_sign(side: str) -> float:
    """+1 for the left side (+y), -1 for the right."""
    return 1.0 if side == "left" else -1.0


def box_inertia(mass_kg: float, full_size_m: tuple[float, float, float]) -> list[float]:
    """Principal inertia (kg*m^2) of a solid box about its centre."""
    x, y, z = full_size_m
    return [mass_kg * (y * y + z * z) / 12, mass_kg * (x * x + z * z) / 12, mass_kg * (x * x + y * y) / 12]


def add_link(
    parent: mujoco.MjsBody,
    name: str,
    *,
    pos_m: list[float],
    mass_kg: float,
    com_m: list[float],
    size_m: tuple[float, float, float],
) -> mujoco.MjsBody:
    """A child body with the inertia of a solid box of full extents `size_m` centred on its centre of mass."""
    body = parent.add_body(name=name, pos=pos_m, mass=mass_kg, ipos=com_m)
    body.inertia = box_inertia(mass_kg, size_m)
    body.explicitinertial = True
    return body


def add_capsule(body: mujoco.MjsBody, top_z_m: float, bottom_z_m: float, radius_m: float, rgba: list[float]) -> None:
    """A colliding capsule along the body's z axis."""
    body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CAPSULE,
        fromto=[0, 0, top_z_m, 0, 0, bottom_z_m],
        size=[radius_m, 0, 0],
        rgba=rgba,
        **COLLIDE_ROBOT,
    )


def leg_joint_range(side: str, joint: str) -> tuple[float, float]:
    """Joint range (rad) of one leg joint; the right hip roll's is the left's mirrored."""
    low, high = LEG_JOINT_RANGE[joint]
    return (-high, -low) if side == "right" and joint == "hip_roll" else (low, high)


def add_leg(pelvis: mujoco.MjsBody, side: str) -> None:
    """One leg, hip pitch to foot; bodies are named `<side>_<joint>` after the joint moving them, and `<side>_foot`."""
    sy = side_sign(side)
    mass = LEG_LINK_MASS_KG

    def link(
        parent: mujoco.MjsBody,
        joint: str,
        axis: list[float],
        *,
        pos_m: list[float],
        com_m: list[float],
        size_m: tuple[float, float, float],
        mass_kg: float | None = None,
    ) -> mujoco.MjsBody:
        link_mass_kg = mass[joint] if mass_kg is None else mass_kg
        body = add_link(parent, f"{side}_{joint}", pos_m=pos_m, mass_kg=link_mass_kg, com_m=com_m, size_m=size_m)
        body.add_joint(name=f"{side}_{joint}_joint", axis=axis, range=list(leg_joint_range(side, joint)))
        return body

    hip_pos_m = [HIP_OFFSET_M[0], sy * HIP_OFFSET_M[1], HIP_OFFSET_M[2]]
    hip_pitch = link(
        pelvis, "hip_pitch", [0, 1, 0], pos_m=hip_pos_m, com_m=[0, sy * 0.03, 0], size_m=(0.09, 0.08, 0.09)
    )
    hip_pitch.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.045, 0.03, 0],
        pos=[0, sy * 0.02, 0],
        quat=[0.7071068, 0.7071068, 0, 0],  # cylinder axis along y
        rgba=DARK_RGBA,
        **COLLIDE_ROBOT,
    )

    hip_roll = link(
        hip_pitch,
        "hip_roll",
        [1, 0, 0],
        pos_m=[0, sy * HIP_ROLL_OFFSET_Y_M, 0],
        com_m=[0.01, 0, -0.06],
        size_m=(0.09, 0.08, 0.15),
    )
    add_capsule(hip_roll, 0.0, -HIP_YAW_OFFSET_Z_M + 0.02, 0.045, LINK_RGBA)

    # the hip-yaw link is the thigh, the knee link the shin
    thigh_below_yaw_m = THIGH_LENGTH_M - HIP_YAW_OFFSET_Z_M
    hip_yaw = link(
        hip_roll, "hip_yaw", [0, 0, 1], pos_m=[0, 0, -HIP_YAW_OFFSET_Z_M], com_m=[0, 0, -0.09], size_m=(0.09, 0.09, 0.2)
    )
    add_capsule(hip_yaw, 0.0, -thigh_below_yaw_m + 0.03, 0.045, LINK_RGBA)

    knee = link(
        hip_yaw, "knee", [0, 1, 0], pos_m=[0, 0, -thigh_below_yaw_m], com_m=[0, 0, -0.11], size_m=(0.07, 0.07, 0.3)
    )
    add_capsule(knee, -0.02, -SHIN_LENGTH_M + 0.05, 0.035, LINK_RGBA)

    ankle_pitch = link(
        knee, "ankle_pitch", [0, 1, 0], pos_m=[0, 0, -SHIN_LENGTH_M], com_m=[0, 0, 0], size_m=(0.03, 0.03, 0.03)
    )
    ankle_pitch.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.02, 0, 0], rgba=DARK_RGBA, contype=0, conaffinity=0)

    ankle_roll = link(
        ankle_pitch,
        "ankle_roll",
        [1, 0, 0],
        mass_kg=mass["ankle_roll"] - FOOT_MASS_KG,
        pos_m=[0, 0, -ANKLE_ROLL_OFFSET_Z_M],
        com_m=[0, 0, -0.01],
        size_m=(0.04, 0.04, 0.03),
    )

    # the foot is its own (welded) body so that shin contacts and foot contacts are told apart; its origin and
    # site are at the sole centre, so the stand keyframe puts the sole on the ground
    sole_height_m = 2 * FOOT_HALF_SIZE_M[2]
    foot = add_link(
        ankle_roll,
        f"{side}_foot",
        pos_m=[FOOT_CENTER_X_M, 0, -ANKLE_HEIGHT_M],
        mass_kg=FOOT_MASS_KG,
        com_m=[0, 0, FOOT_HALF_SIZE_M[2]],
        size_m=(2 * FOOT_HALF_SIZE_M[0], 2 * FOOT_HALF_SIZE_M[1], sole_height_m),
    )
    foot.add_geom(
        name=f"{side}_foot",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(FOOT_HALF_SIZE_M),
        pos=[0, 0, FOOT_HALF_SIZE_M[2]],
        rgba=DARK_RGBA,
        friction=list(FOOT_FRICTION),
        **COLLIDE_ROBOT,
    )
    ankle_post_half_height_m = (ANKLE_HEIGHT_M - sole_height_m) / 2
    foot.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.025, ankle_post_half_height_m, 0],
        pos=[-FOOT_CENTER_X_M, 0, sole_height_m + ankle_post_half_height_m],
        rgba=DARK_RGBA,
        contype=0,
        conaffinity=0,
    )
    foot.add_site(name=f"{side}_foot", size=[0.005, 0, 0])


def build_legged_pelvis(name: str) -> tuple[mujoco.MjSpec, mujoco.MjsBody]:
    """A spec with the floating pelvis (free joint `root`, IMU site `imu`) and both legs; returns (spec, pelvis)."""
    spec = new_robot_spec(
        name,
        armature=JOINT_ARMATURE,
        damping_nms_per_rad=JOINT_DAMPING_NMS_PER_RAD,
        frictionloss_nm=JOINT_FRICTIONLOSS_NM,
    )
    pelvis = spec.worldbody.add_body(name="pelvis", pos=[0, 0, 0.8], mass=PELVIS_MASS_KG, ipos=list(PELVIS_COM_M))
    pelvis.inertia = box_inertia(
        PELVIS_MASS_KG, (2 * PELVIS_HALF_SIZE_M[0], 2 * PELVIS_HALF_SIZE_M[1], 2 * PELVIS_HALF_SIZE_M[2])
    )
    pelvis.explicitinertial = True
    pelvis.add_freejoint(name="root")
    pelvis.add_geom(
        name="pelvis",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(PELVIS_HALF_SIZE_M),
        pos=list(PELVIS_COM_M),
        rgba=DARK_RGBA,
        **COLLIDE_ROBOT,
    )
    pelvis.add_site(name="imu", pos=list(IMU_POS_M), size=[0.01, 0, 0])
    for side in SIDES:
        add_leg(pelvis, side)
    return spec, pelvis


def build_biped_spec() -> mujoco.MjSpec:
    """The G1-class biped's geometry, joints and sites (no actuators or sensors)."""
    spec, pelvis = build_legged_pelvis("biped")
    torso = pelvis.add_body(name="torso", mass=BIPED_UPPER_BODY_MASS_KG, ipos=list(BIPED_UPPER_BODY_COM_M))
    # arms hanging at the sides widen the lumped inertia in roll and yaw
    torso.inertia = box_inertia(BIPED_UPPER_BODY_MASS_KG, (0.2, 0.36, 0.45))
    torso.explicitinertial = True
    torso.add_geom(
        name="torso",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.07, 0.1, 0.14],
        pos=[0, 0, 0.2],
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
        sy = side_sign(side)
        torso.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0, sy * 0.15, 0.30, 0, sy * 0.17, -0.08],
            size=[0.03, 0, 0],
            rgba=LINK_RGBA,
            **COLLIDE_ROBOT,
        )
    return spec


def leg_joint_names() -> tuple[str, ...]:
    return tuple(f"{side}_{joint}_joint" for side in SIDES for joint in LEG_JOINTS)


def per_leg_joint(values: dict[str, float]) -> tuple[float, ...]:
    """A per-joint table spread over both legs, in action order."""
    return tuple(values[joint] for _ in SIDES for joint in LEG_JOINTS)


def leg_joint_limits() -> tuple[tuple[float, float], ...]:
    return tuple(leg_joint_range(side, joint) for side in SIDES for joint in LEG_JOINTS)


BIPED = RobotSpec(
    name="biped",
    description="G1-class 12-DoF biped (~32 kg, thigh 0.32 m, shin 0.30 m, upper body welded to the pelvis)",
    joint_names=leg_joint_names(),
    default_pose=per_leg_joint(LEG_DEFAULT_POSE_RAD),
    kp=per_leg_joint(LEG_KP),
    kd=per_leg_joint(LEG_KD),
    torque_limit=per_leg_joint(LEG_TORQUE_LIMIT_NM),
    joint_limits=leg_joint_limits(),
    foot_sites=FOOT_SITES,
    imu_site="imu",
    base_body="pelvis",
    nominal_base_height=0.78,
    termination_contact_bodies=("pelvis", "torso", *THIGH_BODIES),
    undesired_contact_bodies=SHIN_BODIES,
    build=build_biped_spec,
)

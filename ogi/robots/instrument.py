"""Turn a robot's geometry (`MjSpec`) into a controllable, sensed robot from its `RobotSpec`.

The same step serves the built-in robots and any MJCF a user brings, so that every robot has the
same actuators, sensors and `stand` keyframe, named the same way:

- per joint, in action order: a position actuator `<joint>_pd` (kp, kd) and a torque actuator
  `<joint>_ff` (gravity feed-forward and learned residual, N*m); their sum is clamped to the torque
  limit by the joint's `actuatorfrcrange`, so the joint torque is
  `clip(kp (q_des - q) - kd qd + tau_ff, -tau_max, tau_max)`, the law of `ogi.controllers.pd`;
- IMU sensors `imu_gyro`, `imu_acc`, `imu_quat` on the IMU site;
- `<foot site>_touch` touch sensors on a contact zone around each foot;
- `<body>_contact` contact sensors (number of contacts) on termination and undesired-contact bodies.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from ogi.robots.spec import RobotSpec, RobotSpecError

STAND_KEY = "stand"
FOOT_ZONE_RADIUS_M = 0.035  # touch zone around a foot site without a sphere or box foot geom
FOOT_ZONE_MARGIN_M = 0.01  # a touch zone reaches this far beyond the foot geom
_STAND_CLEARANCE_M = 0.001


def actuator_names(robot: RobotSpec) -> tuple[list[str], list[str]]:
    """Names of the position (PD) and feed-forward actuators, in action order."""
    return [f"{j}_pd" for j in robot.joint_names], [f"{j}_ff" for j in robot.joint_names]


def _find(items, name: str):
    for item in items:
        if item.name == name:
            return item
    return None


def check_names(spec: mujoco.MjSpec, robot: RobotSpec) -> None:
    """Raise `RobotSpecError` for any joint, site or body the robot names that the MJCF lacks."""
    joints = {j.name: j for j in spec.joints}
    for joint in robot.joint_names:
        if joint not in joints:
            raise RobotSpecError(
                robot.source, "joint_names", f"joint '{joint}' is not in the model{_near(joint, joints)}"
            )
        if joints[joint].type not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
            raise RobotSpecError(robot.source, "joint_names", f"joint '{joint}' must be a hinge or slide joint")
    sites = {s.name for s in spec.sites}
    for site in (*robot.foot_sites, robot.imu_site):
        if site not in sites:
            field_name = "imu_site" if site == robot.imu_site else "foot_sites"
            raise RobotSpecError(robot.source, field_name, f"site '{site}' is not in the model{_near(site, sites)}")
    bodies = {b.name for b in spec.bodies}
    for body in (robot.base_body, *robot.termination_contact_bodies, *robot.undesired_contact_bodies):
        if body not in bodies:
            field_name = (
                "base_body"
                if body == robot.base_body
                else "termination_contact_bodies"
                if body in robot.termination_contact_bodies
                else "undesired_contact_bodies"
            )
            raise RobotSpecError(robot.source, field_name, f"body '{body}' is not in the model{_near(body, bodies)}")
    base = spec.body(robot.base_body)
    if not any(j.type == mujoco.mjtJoint.mjJNT_FREE for j in base.joints):
        raise RobotSpecError(robot.source, "base_body", f"body '{robot.base_body}' has no free joint (floating base)")


def _near(name: str, names) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(names), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def instrument(spec: mujoco.MjSpec, robot: RobotSpec) -> mujoco.MjSpec:
    """Add OGI's actuators, sensors and `stand` keyframe to `spec` in place; return it.

    Existing actuators, sensors and keyframes are removed: the robot is driven and sensed only
    through what `robot` declares.
    """
    check_names(spec, robot)
    for collection in (spec.actuators, spec.sensors, spec.keys):
        for item in list(collection):
            spec.delete(item)

    pd_names, ff_names = actuator_names(robot)
    for joint_name, lim, tau_max, kp, kd, pd_name, ff_name in zip(
        robot.joint_names, robot.joint_limits, robot.torque_limit, robot.kp, robot.kd, pd_names, ff_names
    ):
        joint = spec.joint(joint_name)
        # the spec stores hinge ranges in the MJCF's own angle unit, which is degrees by default
        in_degrees = spec.compiler.degree and joint.type == mujoco.mjtJoint.mjJNT_HINGE
        joint.range = [math.degrees(v) for v in lim] if in_degrees else list(lim)
        joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        joint.actfrclimited = mujoco.mjtLimited.mjLIMITED_TRUE
        joint.actfrcrange = [-tau_max, tau_max]
        pd = spec.add_actuator(name=pd_name, target=joint_name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        pd.set_to_position(kp=kp, kv=kd)
        pd.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        pd.forcelimited = mujoco.mjtLimited.mjLIMITED_FALSE
        ff = spec.add_actuator(name=ff_name, target=joint_name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        ff.set_to_motor()
        ff.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        ff.forcelimited = mujoco.mjtLimited.mjLIMITED_FALSE

    site_obj = mujoco.mjtObj.mjOBJ_SITE
    for sensor_name, sensor_type in (
        ("imu_gyro", mujoco.mjtSensor.mjSENS_GYRO),
        ("imu_acc", mujoco.mjtSensor.mjSENS_ACCELEROMETER),
        ("imu_quat", mujoco.mjtSensor.mjSENS_FRAMEQUAT),
    ):
        spec.add_sensor(name=sensor_name, type=sensor_type, objtype=site_obj, objname=robot.imu_site)

    for foot in robot.foot_sites:
        zone = _add_foot_zone(spec.site(foot))
        spec.add_sensor(name=f"{foot}_touch", type=mujoco.mjtSensor.mjSENS_TOUCH, objtype=site_obj, objname=zone.name)

    contact_bodies = dict.fromkeys((*robot.termination_contact_bodies, *robot.undesired_contact_bodies))
    for body in contact_bodies:
        # intprm: data = found (bit 0), reduce = none (0), num = 1 slot -> number of contacts
        spec.add_sensor(
            name=f"{body}_contact",
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=mujoco.mjtObj.mjOBJ_BODY,
            objname=body,
            intprm=[1, 0, 1],
        )

    _add_stand_key(spec, robot)
    return spec


def _add_foot_zone(site: mujoco.MjsSite) -> mujoco.MjsSite:
    """A site enclosing the foot's collision geom (a touch sensor counts contacts inside its site).

    The zone copies the sphere or box geom of the site's body nearest to the site, grown by a margin;
    without one, it is a sphere of `FOOT_ZONE_RADIUS_M` around the site.
    """
    body = site.parent
    candidates = [
        g
        for g in body.geoms
        if (g.contype or g.conaffinity) and g.type in (mujoco.mjtGeom.mjGEOM_SPHERE, mujoco.mjtGeom.mjGEOM_BOX)
    ]
    name = f"{site.name}_zone"
    if not candidates:
        return body.add_site(
            name=name, pos=list(site.pos), size=[FOOT_ZONE_RADIUS_M, 0, 0], type=mujoco.mjtGeom.mjGEOM_SPHERE, group=4
        )
    geom = min(candidates, key=lambda g: float(np.linalg.norm(np.asarray(g.pos) - np.asarray(site.pos))))
    if geom.type == mujoco.mjtGeom.mjGEOM_SPHERE:
        size = [geom.size[0] + FOOT_ZONE_MARGIN_M, 0, 0]
    else:
        size = [v + FOOT_ZONE_MARGIN_M for v in geom.size]
    return body.add_site(name=name, pos=list(geom.pos), quat=list(geom.quat), size=size, type=geom.type, group=4)


def _add_stand_key(spec: mujoco.MjSpec, robot: RobotSpec) -> None:
    """Keyframe `stand`: default pose with the lowest foot zone just touching z = 0."""
    model = spec.compile()
    data = mujoco.MjData(model)
    qpos = model.qpos0.copy()
    for joint_name, q0 in zip(robot.joint_names, robot.default_pose):
        qpos[model.jnt_qposadr[model.joint(joint_name).id]] = q0
    free = _free_joint_qposadr(model, robot)
    qpos[free : free + 3] = [0.0, 0.0, 0.0]
    qpos[free + 3 : free + 7] = [1.0, 0.0, 0.0, 0.0]
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    foot_bottoms = []
    for foot in robot.foot_sites:
        sid = model.site(foot).id
        foot_bottoms.append(data.site_xpos[sid, 2] - _foot_radius(model, sid))
    qpos[free + 2] = -min(foot_bottoms) + _STAND_CLEARANCE_M
    ctrl = np.zeros(model.nu)
    for joint_name, q0 in zip(robot.joint_names, robot.default_pose):
        ctrl[model.actuator(f"{joint_name}_pd").id] = q0
    spec.add_key(name=STAND_KEY, qpos=qpos.tolist(), ctrl=ctrl.tolist())


def _free_joint_qposadr(model: mujoco.MjModel, robot: RobotSpec) -> int:
    body = model.body(robot.base_body).id
    for j in range(model.body_jntadr[body], model.body_jntadr[body] + model.body_jntnum[body]):
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            return int(model.jnt_qposadr[j])
    raise RobotSpecError(robot.source, "base_body", f"body '{robot.base_body}' has no free joint")


def _foot_radius(model: mujoco.MjModel, site_id: int) -> float:
    """Radius of the collision sphere the foot site sits in (its body's smallest sphere geom), else 0."""
    body = model.site_bodyid[site_id]
    radii = [
        model.geom_size[g, 0]
        for g in range(model.body_geomadr[body], model.body_geomadr[body] + model.body_geomnum[body])
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE
        and np.linalg.norm(model.geom_pos[g] - model.site_pos[site_id]) < 1e-3
    ]
    return float(min(radii)) if radii else 0.0

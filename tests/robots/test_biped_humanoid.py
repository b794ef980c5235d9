"""The biped and the humanoid: they compile, weigh what a G1 weighs, are mirror-symmetric and stand on PD alone."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from ogi.robots import STAND_KEY, RobotSpec, get_robot, instrument

LEG = ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle_pitch", "ankle_roll")
ARM = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "gripper")
EXPECTED_JOINTS = {
    "biped": tuple(f"{side}_{j}_joint" for side in ("left", "right") for j in LEG),
    "humanoid": (
        *(f"{side}_{j}_joint" for side in ("left", "right") for j in LEG),
        "waist_yaw_joint",
        *(f"{side}_{j}_joint" for side in ("left", "right") for j in ARM),
    ),
}
MASS_RANGE_KG = {"biped": (30.0, 34.0), "humanoid": (33.0, 37.0)}
STAND_SECONDS = 2.0
MAX_HEIGHT_DRIFT_M = 0.1
MAX_TILT_DEG = 20.0

ROBOT_NAMES = sorted(EXPECTED_JOINTS)


def _model(robot: RobotSpec, *, ground: bool = False) -> mujoco.MjModel:
    spec = instrument(robot.build(), robot)
    if ground:
        spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], contype=1, conaffinity=2)
    return spec.compile()


def _stand(model: mujoco.MjModel) -> mujoco.MjData:
    data = mujoco.MjData(model)
    key = model.key(STAND_KEY).id
    mujoco.mj_resetDataKeyframe(model, data, key)
    data.ctrl[:] = model.key_ctrl[key]
    mujoco.mj_forward(model, data)
    return data


def _lowest_point_z(model: mujoco.MjModel, data: mujoco.MjData, body_name: str) -> float:
    """Lowest point (m) of the colliding box and sphere geoms of a body."""
    body = model.body(body_name).id
    lowest = math.inf
    for g in range(model.ngeom):
        if model.geom_bodyid[g] != body or model.geom_contype[g] == 0:
            continue
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE:
            lowest = min(lowest, data.geom_xpos[g, 2] - model.geom_size[g, 0])
        elif model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX:
            # box half-extent along world z: sum over its axes of |R_z,i| * half_size_i
            extent = np.abs(data.geom_xmat[g].reshape(3, 3)[2]) @ model.geom_size[g]
            lowest = min(lowest, data.geom_xpos[g, 2] - extent)
    return lowest


def _tilt_deg(data: mujoco.MjData, body: int) -> float:
    up_z = data.xmat[body].reshape(3, 3)[2, 2]
    return math.degrees(math.acos(np.clip(up_z, -1.0, 1.0)))


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_instrumented_model_compiles_with_expected_joints(name: str) -> None:
    robot = get_robot(name)
    model = _model(robot)
    assert robot.joint_names == EXPECTED_JOINTS[name]
    actuated = [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
    assert len(actuated) == {"biped": 12, "humanoid": 23}[name]
    assert set(actuated) == set(robot.joint_names)
    assert model.nu == 2 * robot.num_joints


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_total_mass(name: str) -> None:
    model = _model(get_robot(name))
    low, high = MASS_RANGE_KG[name]
    assert low <= model.body_subtreemass[0] <= high


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_left_right_mirror_symmetry(name: str) -> None:
    model = _model(get_robot(name))
    left = [model.body(b).name for b in range(model.nbody) if model.body(b).name.startswith("left_")]
    assert left
    for left_name in left:
        right = model.body("right_" + left_name.removeprefix("left_"))
        assert model.body_mass[right.id] == pytest.approx(model.body_mass[model.body(left_name).id])
        assert model.body_inertia[right.id] == pytest.approx(model.body_inertia[model.body(left_name).id])
        left_pos, right_pos = model.body_pos[model.body(left_name).id], model.body_pos[right.id]
        assert right_pos == pytest.approx(left_pos * np.array([1.0, -1.0, 1.0]))


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_stand_keyframe_puts_feet_on_the_ground(name: str) -> None:
    robot = get_robot(name)
    model = _model(robot)
    data = _stand(model)
    lowest = min(_lowest_point_z(model, data, foot) for foot in robot.foot_sites)
    assert abs(lowest) < 0.005
    base_z = data.xpos[model.body(robot.base_body).id, 2]
    assert base_z == pytest.approx(robot.nominal_base_height, abs=0.01)


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_stands_on_pd_alone(name: str) -> None:
    robot = get_robot(name)
    model = _model(robot, ground=True)
    assert model.opt.timestep == pytest.approx(0.001)
    data = _stand(model)
    base = model.body(robot.base_body).id
    z0 = data.xpos[base, 2]
    worst_drift_m, worst_tilt_deg = 0.0, 0.0
    while data.time < STAND_SECONDS:
        mujoco.mj_step(model, data)
        worst_drift_m = max(worst_drift_m, abs(data.xpos[base, 2] - z0))
        worst_tilt_deg = max(worst_tilt_deg, _tilt_deg(data, base))
    assert np.all(np.isfinite(data.qpos))
    assert worst_drift_m < MAX_HEIGHT_DRIFT_M
    assert worst_tilt_deg < MAX_TILT_DEG

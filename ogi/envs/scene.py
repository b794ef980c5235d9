"""The world a robot walks in: ground, light, and physics options around an instrumented robot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mujoco
import numpy as np

from ogi.envs.config import SimConfig
from ogi.envs.sensing import GROUND_GROUP
from ogi.robots import RobotSpec, instrument
from ogi.robots.geometry import COLLIDE_GROUND

if TYPE_CHECKING:
    from ogi.envs.terrain_grid import TerrainGrid

GROUND_GEOM = "ground"
TERRAIN_SOLMIX = 1000.0  # the ground's solref/solimp dominate a contact's mix, so soft ground stays soft
_HFIELD_BASE_M = 0.05  # solid depth under the lowest point; rays cost grows with the box height
# the ground's checker squares, RGB in [0, 1]
GROUND_CHECKER_RGB = ((0.25, 0.3, 0.35), (0.35, 0.4, 0.45))


def build_scene_spec(robot: RobotSpec, sim: SimConfig, terrain: TerrainGrid | None = None) -> mujoco.MjSpec:
    """The robot (with OGI's actuators and sensors) on a flat ground plane, or on a terrain grid."""
    spec = instrument(robot.build(), robot)
    # rays see only the ground group, so the robot's own geoms must not be in it
    for geom in spec.geoms:
        if geom.group == GROUND_GROUP:
            geom.group = GROUND_GROUP + 1
    spec.option.timestep = sim.sim_dt_s
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC if sim.elliptic_cone else mujoco.mjtCone.mjCONE_PYRAMIDAL
    spec.option.impratio = 10.0 if sim.elliptic_cone else 1.0
    spec.option.iterations = sim.solver_iterations
    spec.option.ls_iterations = sim.ls_iterations
    texture = spec.add_texture(
        name="grid",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=list(GROUND_CHECKER_RGB[0]),
        rgb2=list(GROUND_CHECKER_RGB[1]),
        width=512,
        height=512,
    )
    material = spec.add_material(name="grid", texrepeat=[8, 8], reflectance=0.1)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = texture.name
    if terrain is None:
        spec.worldbody.add_geom(
            name=GROUND_GEOM,
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[0, 0, 0.05],
            material="grid",
            friction=[1.0, 0.005, 0.0001],
            group=GROUND_GROUP,
            solmix=TERRAIN_SOLMIX,
            **COLLIDE_GROUND,
        )
    else:
        _add_terrain(spec, terrain)
    spec.worldbody.add_light(name="sun", pos=[0, 0, 4], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    return spec


def _add_terrain(spec: mujoco.MjSpec, terrain: TerrainGrid) -> None:
    heights = terrain.heights_m.astype(np.float64)
    low, high = float(heights.min()), float(heights.max())
    span = max(high - low, 1e-3)
    hx, hy = terrain.half_extent_m
    rows, cols = heights.shape
    field = spec.add_hfield(name="terrain", size=[hx, hy, span, _HFIELD_BASE_M], nrow=rows, ncol=cols)
    # world height = geom z + normalized elevation * size_z
    field.userdata = ((heights - low) / span).ravel().tolist()
    # one checker square per metre (the builtin checker texture holds 2 x 2 squares)
    material = spec.add_material(name="terrain_grid", texrepeat=[hx, hy], reflectance=0.05)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "grid"
    spec.worldbody.add_geom(
        name=GROUND_GEOM,
        type=mujoco.mjtGeom.mjGEOM_HFIELD,
        hfieldname="terrain",
        pos=[0, 0, low],
        material="terrain_grid",
        friction=[1.0, 0.005, 0.0001],
        group=GROUND_GROUP,
        solmix=TERRAIN_SOLMIX,
        **COLLIDE_GROUND,
    )


def build_scene_model(robot: RobotSpec, sim: SimConfig, terrain: TerrainGrid | None = None) -> mujoco.MjModel:
    return compile_scene(build_scene_spec(robot, sim, terrain), robot)


def compile_scene(spec: mujoco.MjSpec, robot: RobotSpec) -> mujoco.MjModel:
    try:
        return spec.compile()
    except ValueError as err:
        raise ValueError(f"robot '{robot.name}' ({robot.source}) failed to compile: {err}") from None


HUNG_CLEARANCE_M = 0.35  # how far above the stand height a hung robot's base is: no foot reaches the ground


def hang_base(spec: mujoco.MjSpec, robot: RobotSpec, pos: tuple[float, float, float]) -> mujoco.MjSpec:
    """Weld the robot's base upright to the world at `pos` (its free joint removed), as on a test gantry; in place.

    Keyframes keep their joint angles and lose the free joint's seven numbers. A robot whose base has no free
    joint is an error (nothing to hang).
    """
    base = spec.body(robot.base_body)
    free = [j for j in base.joints if j.type == mujoco.mjtJoint.mjJNT_FREE]
    if not free:
        raise ValueError(f"robot '{robot.name}': base body '{robot.base_body}' has no free joint to remove")
    model = spec.compile()
    adr = int(model.jnt_qposadr[model.joint(free[0].name).id])
    keys = []
    for key in list(spec.keys):
        qpos = np.asarray(key.qpos, dtype=float)
        qpos = np.concatenate([qpos[:adr], qpos[adr + 7 :]]) if qpos.size == model.nq else qpos
        keys.append({"name": key.name, "qpos": qpos.tolist(), "ctrl": list(key.ctrl), "time": key.time})
        spec.delete(key)
    spec.delete(free[0])
    for key in keys:
        spec.add_key(**key)
    base.pos = [float(v) for v in pos]
    base.quat = [1.0, 0.0, 0.0, 0.0]
    return spec

"""The world a robot walks in: ground, light, and physics options around an instrumented robot."""

from __future__ import annotations

import mujoco

from ogi.envs.config import SimConfig
from ogi.robots import RobotSpec, instrument
from ogi.robots.geometry import COLLIDE_GROUND

GROUND_GEOM = "ground"


def build_scene_spec(robot: RobotSpec, sim: SimConfig) -> mujoco.MjSpec:
    """The robot (with OGI's actuators and sensors) standing on a flat ground plane."""
    spec = instrument(robot.build(), robot)
    spec.option.timestep = sim.sim_dt_s
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC if sim.elliptic_cone else mujoco.mjtCone.mjCONE_PYRAMIDAL
    spec.option.impratio = 10.0 if sim.elliptic_cone else 1.0
    texture = spec.add_texture(
        name="grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.25, 0.3, 0.35], rgb2=[0.35, 0.4, 0.45], width=512, height=512,
    )
    material = spec.add_material(name="grid", texrepeat=[8, 8], reflectance=0.1)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = texture.name
    spec.worldbody.add_geom(
        name=GROUND_GEOM, type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], material="grid",
        friction=[1.0, 0.005, 0.0001], **COLLIDE_GROUND,
    )
    spec.worldbody.add_light(name="sun", pos=[0, 0, 4], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    return spec


def build_scene_model(robot: RobotSpec, sim: SimConfig) -> mujoco.MjModel:
    spec = build_scene_spec(robot, sim)
    try:
        return spec.compile()
    except ValueError as err:
        raise ValueError(f"robot '{robot.name}' ({robot.source}) failed to compile: {err}") from None

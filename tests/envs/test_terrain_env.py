"""The walk env on terrain: placement, curriculum at episode ends, and what the scan and camera see."""

import dataclasses

import numpy as np
import pytest

from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.config import SimConfig, TerrainConfig
from ogi.envs.curriculum import CurriculumConfig
from ogi.envs.sensing import DepthCameraConfig, HeightScanConfig, march_rays
from ogi.envs.terrain import TerrainKind, generate, terrain_spec
from ogi.envs.terrain_grid import TerrainGrid

STEP_HEIGHT_M = 0.2


def step_grid(num_levels: int = 2) -> TerrainGrid:
    """Two tiles of one kind: the ground is 0 for x < 1 m inside each tile's frame and 0.2 m beyond."""
    res, size = 0.1, 8.0
    tiles = [
        generate(terrain_spec(TerrainKind.FLAT, level / max(1, num_levels - 1), size_m=size, resolution_m=res))
        for level in range(num_levels)
    ]
    border = round(1.0 / res)
    stride = round(size / res)
    rows, cols = 2 * border + stride * num_levels + 1, 2 * border + stride + 1
    heights = np.zeros((rows, cols), dtype=np.float32)
    xs = (np.arange(cols) - (cols - 1) / 2) * res
    heights[:, xs >= 1.0 - 1e-9] = STEP_HEIGHT_M
    return TerrainGrid(
        heights_m=heights,
        resolution_m=res,
        tile_size_m=size,
        kinds=(TerrainKind.FLAT,),
        num_levels=num_levels,
        tiles=(tuple(tiles),),
    )


def sensing_config(**kw) -> WalkConfig:
    return WalkConfig(
        num_envs=2,
        sim=SimConfig(nthread=1),
        terrain=TerrainConfig(
            enabled=True,
            kinds=("flat",),
            resolution_m=0.1,
            curriculum=CurriculumConfig(num_levels=2, initial_max_level=1),
        ),
        height_scan=HeightScanConfig(enabled=True, length_m=1.0, width_m=0.0, spacing_m=0.1),
        depth_camera=DepthCameraConfig(enabled=True, noise_std_m=0.0, dropout_probability=0.0),
        **kw,
    )


def test_height_scan_sees_a_step_at_known_heights():
    env = WalkVecEnv(sensing_config(), terrain=step_grid())
    env.reset(seed=0)
    # put both robots at x = 0.5 facing +x: scan points x in [0, 1] cross the step at x = 1
    qpos = env.rig.qpos()
    a = env.rig.base_qpos_adr
    qpos[:, a : a + 3] = [0.5, 0.0, 0.45]
    qpos[:, a + 3 : a + 7] = [1.0, 0.0, 0.0, 0.0]
    env.batch.forward()
    obs = env._observe()
    scan = obs["privileged"][:, env.privileged_layout.slices()["height_scan"]]
    xs = 0.5 + env.scan_offsets[:, 0]
    expected = 0.45 - np.where(xs >= 1.0 + 1e-6, STEP_HEIGHT_M, 0.0)
    interior = np.abs(xs - 1.0) > 0.06  # the heightfield ramps over one cell at the edge
    np.testing.assert_allclose(scan[0, interior], expected[interior], atol=1e-4)
    np.testing.assert_allclose(scan[1], scan[0])


def test_march_rays_hits_plane_and_step_analytically():
    def ground(xy):
        return np.where(xy[..., 0] >= 1.0, STEP_HEIGHT_M, 0.0)

    origin = np.array([[0.0, 0.0, 0.5]])
    angles = np.array([0.3, 1.0, 1.4])  # below horizontal; at 0.3 rad the ray is at z = 0.19 when x = 1
    dirs = np.stack([np.cos(angles), np.zeros(3), -np.sin(angles)], axis=-1)[None]
    dist = march_rays(origin, dirs, ground, max_range_m=3.0, step_m=0.05, refinements=12)[0]
    # steep rays hit the floor before x = 1: t = 0.5 / sin(a)
    np.testing.assert_allclose(dist[1:], 0.5 / np.sin(angles[1:]), atol=1e-3)
    # the shallow ray meets the step's face at x = 1: t = 1 / cos(a)
    np.testing.assert_allclose(dist[0], 1.0 / np.cos(angles[0]), atol=2e-3)
    # a ray pointing up never hits
    up = np.array([[[0.0, 0.0, 1.0]]])
    assert march_rays(origin, up, ground, max_range_m=2.0, step_m=0.1)[0, 0] == 2.0


def test_depth_camera_excludes_the_robot_and_matches_flat_ground():
    env = WalkVecEnv(sensing_config(), terrain=step_grid())
    env.reset(seed=0)
    qpos = env.rig.qpos()
    a = env.rig.base_qpos_adr
    qpos[:, a : a + 3] = [-2.0, 0.0, 0.4]  # flat ground ahead for 3 m
    qpos[:, a + 3 : a + 7] = [1.0, 0.0, 0.0, 0.0]
    env.batch.forward()
    depth = env._observe()["policy"][:, env.policy_layout.slices()["depth_image"]] * env.cfg.depth_camera.max_range_m
    cam = env.cfg.depth_camera
    dirs = cam.ray_directions_body()
    origin_z = 0.4 + cam.mount_pos_m[2]
    expected = np.where(dirs[:, 2] < 0, origin_z / -np.minimum(dirs[:, 2], -1e-9), cam.max_range_m)
    expected = np.minimum(expected, cam.max_range_m)
    np.testing.assert_allclose(depth[0], expected, atol=0.01)


def test_rough_env_spawns_on_its_tiles_and_runs():
    cfg = WalkConfig.rough(num_envs=8, sim=SimConfig(nthread=1))
    env = WalkVecEnv(cfg)
    obs, _ = env.reset(seed=0)
    kind, level = env.curriculum.kind, env.curriculum.level
    origins = env.terrain.tile_origin(kind, level)
    base = env.rig.base_pose()
    assert (np.abs(base[:, :2] - origins).max(axis=1) <= 0.31).all()
    feet = env.rig.foot_pos()
    ground_under_feet = env.terrain.height_at(feet[..., :2])
    assert (feet[..., 2] >= ground_under_feet - 0.01).all()  # no foot starts inside the ground
    # friction follows the tile each simulation stands on
    expected_friction, _, _ = env.terrain.contact_params(kind, level)
    np.testing.assert_allclose(env.domain.friction, expected_friction)
    for _ in range(10):
        obs, reward, terminated, _, info = env.step(np.zeros((8, 12)))
        assert np.isfinite(reward).all() and not info["diverged"].any()
    assert obs["policy"].shape == (8, env.policy_layout.size)
    assert obs["privileged"].shape == (8, env.privileged_layout.size)
    assert np.isfinite(obs["policy"]).all() and np.isfinite(obs["privileged"]).all()


def test_curriculum_moves_levels_at_episode_ends_without_rebuilding():
    curriculum = CurriculumConfig(num_levels=2, initial_max_level=0, window=1, min_distance_fraction=0.0)
    cfg = dataclasses.replace(
        sensing_config(episode_length_s=0.1),
        terrain=TerrainConfig(enabled=True, kinds=("flat",), resolution_m=0.1, curriculum=curriculum),
    )
    env = WalkVecEnv(cfg, terrain=step_grid())
    env.reset(seed=0)
    model_before = env.model
    assert (env.curriculum.level == 0).all()
    for _ in range(5):  # one time-limited episode without a fall: success promotes with a window of 1
        _, _, terminated, truncated, info = env.step(np.zeros((2, 12)))
    assert truncated.all() and not terminated.any()
    assert info["terrain_success"].all()
    assert (env.curriculum.level == 1).all()
    assert env.model is model_before
    origin = env.terrain.tile_origin(env.curriculum.kind, env.curriculum.level)
    assert (np.abs(env.rig.base_pose()[:, :2] - origin).max(axis=1) <= 0.31).all()


def test_grid_and_curriculum_levels_must_agree():
    with pytest.raises(ValueError, match="levels"):
        WalkVecEnv(sensing_config(), terrain=step_grid(num_levels=3))


def test_the_commanded_displacement_follows_the_robots_heading():
    """Success compares how far the robot got with where tracking its commands along its own heading would have
    taken it: a forward command points along the heading, a sideways one 90 degrees to the left of it."""
    from ogi.envs.sensing import yaw_of

    env = WalkVecEnv(WalkConfig(num_envs=2, seed=3, sim=SimConfig(nthread=1)))
    env.reset(seed=3)
    env.set_commands(np.array([[0.5, 0.0, 0.0], [0.0, 0.3, 0.0]]))
    steps = 10
    heading = np.zeros(2)
    for _ in range(steps):
        env.step(np.zeros((2, 12)))
        heading += yaw_of(env.rig.base_pose()[:, 3:7]) / steps
    dt = env.cfg.sim.ctrl_dt_s
    forward = 0.5 * steps * dt * np.array([np.cos(heading[0]), np.sin(heading[0])])
    left = 0.3 * steps * dt * np.array([-np.sin(heading[1]), np.cos(heading[1])])
    np.testing.assert_allclose(env.commanded_displacement[0], forward, atol=0.01)
    np.testing.assert_allclose(env.commanded_displacement[1], left, atol=0.01)

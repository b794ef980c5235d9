import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import mujoco
import numpy as np
import pytest

from ogi.envs.arena import ARENA_GROUP, PARK_XYZ_M, ArenaConfig, ArenaVecEnv, obstacle_name, slot_name
from ogi.envs.camera import CameraConfig, RayCamera
from ogi.envs.config import SimConfig, WalkConfig
from ogi.envs.layout import COLOURS, SHAPES, Layout, Obstacle, SceneObject
from ogi.validation import ConfigError

WALK = WalkConfig(num_envs=2, sim=SimConfig(nthread=1))
ARENA_ONLY = np.array([1 if g == ARENA_GROUP else 0 for g in range(6)], dtype=np.uint8)
RED_BOX_AHEAD = Layout(objects=(SceneObject("red", "box", (1.5, 0.0)),))


@pytest.fixture(scope="module")
def env():
    return ArenaVecEnv(ArenaConfig(), WALK)


def reds(image: np.ndarray) -> np.ndarray:
    """(..., H, W) bool: pixels whose colour is the red of COLOURS under any shading."""
    return (image[..., 0] > 3 * image[..., 1]) & (image[..., 0] > 3 * image[..., 2])


def drop_ray(env: ArenaVecEnv, sim: int, xy: tuple[float, float]) -> tuple[float, int]:
    """(height of the first arena surface under xy, its geom), (-inf, -1) for none: a ray down from 5 m."""
    dist, geom = env.batch.ray(np.array([xy[0], xy[1], 5.0]), np.array([0.0, 0.0, -1.0]), geomgroup=ARENA_ONLY)
    return (5.0 - dist[sim, 0] if geom[sim, 0] >= 0 else -math.inf), int(geom[sim, 0])


def test_config_checks_its_fields():
    with pytest.raises(ConfigError, match="arena.slots_per_shape"):
        ArenaConfig(slots_per_shape=0)
    with pytest.raises(ConfigError, match="arena.episode_s"):
        ArenaConfig(episode_s=-1.0)
    with pytest.raises(ValueError, match="terrain"):
        ArenaVecEnv(ArenaConfig(), dataclasses.replace(WALK, terrain=dataclasses.replace(WALK.terrain, enabled=True)))


def test_every_slot_is_its_own_static_body_in_the_arena_group(env):
    m = env.model
    names = [slot_name(s, i) for s in SHAPES for i in range(2)] + [obstacle_name(i) for i in range(3)]
    for name in names:
        body, geom = m.body(name), m.geom(name)
        assert body.parentid == 0 and m.body_jntnum[body.id] == 0 and m.body_geomnum[body.id] == 1
        assert m.geom_group[geom.id] == ARENA_GROUP
    robot = env.walk.rig.robot_geoms
    assert len(robot) and (m.geom_group[robot] != ARENA_GROUP).all()
    assert not np.isin(robot, [m.geom(n).id for n in names]).any()
    assert m.geom(slot_name("cone", 0)).type == mujoco.mjtGeom.mjGEOM_MESH


def test_layouts_place_objects_per_simulation_and_park_the_rest(env):
    layout = Layout(
        objects=(
            SceneObject("green", "pillar", (2.0, -1.0)),
            SceneObject("blue", "cone", (-1.0, 2.0)),
            SceneObject("yellow", "ball", (0.5, 3.0)),
            SceneObject("purple", "ball", (-3.0, -3.0)),
        ),
        obstacles=(Obstacle((-2.0, -1.0), (0.5, 0.1), yaw=math.pi / 2),),
        start=(1.0, -2.0, 0.7),
    )
    env.set_layouts([0, 1], [layout, Layout(objects=())])
    m = env.model
    # the cone's mesh has 24 faces: 5 cm from the axis towards a face's middle, 0.45 (1 - 0.05 / (0.18 cos 7.5 deg))
    off_axis = (-1.0 + 0.05 * math.cos(math.radians(7.5)), 2.0 + 0.05 * math.sin(math.radians(7.5)))
    cone_height = 0.45 * (1 - 0.05 / (0.18 * math.cos(math.radians(7.5))))
    for xy, name, top in [
        ((2.0, -1.0), slot_name("pillar", 0), 0.7),
        (off_axis, slot_name("cone", 0), cone_height),
        ((0.5, 3.0), slot_name("ball", 0), 0.3),
        ((-3.0, -3.0), slot_name("ball", 1), 0.3),
    ]:
        height, geom = drop_ray(env, 0, xy)
        assert geom == m.geom(name).id and height == pytest.approx(top, abs=1e-3)
        assert drop_ray(env, 1, xy) == (-math.inf, -1)  # the other simulation's arena is empty there
    # the obstacle, turned a quarter: long along y, thin along x, as tall as the config says
    assert drop_ray(env, 0, (-2.0, -1.4))[0] == pytest.approx(0.5, abs=1e-6)
    assert drop_ray(env, 0, (-2.3, -1.0))[1] == -1
    # every unused slot waits below the ground far away
    data = env.batch.get_data(0)
    mujoco.mj_kinematics(env.batch.get_model(0), data)
    for name in [slot_name("box", 0), slot_name("cone", 1), obstacle_name(2)]:
        assert data.xpos[m.body(name).id][2] == PARK_XYZ_M[2]
        assert data.xpos[m.body(name).id][0] >= PARK_XYZ_M[0]
    # the robot stands at the layout's start
    pose = env.pose()
    np.testing.assert_allclose(pose[0], [1.0, -2.0, 0.7], atol=0.02)
    np.testing.assert_allclose(pose[1], [0.0, 0.0, 0.0], atol=0.02)
    assert not env.fell().any() and (env.speed() < 0.05).all()
    # colours: the ray camera's table and the rendered model's rgba agree
    geom = m.geom(slot_name("pillar", 0)).id
    np.testing.assert_allclose(env.colours[0, geom], COLOURS["green"], atol=1e-6)
    np.testing.assert_allclose(env.batch.get_model(0).geom_rgba[geom, :3], COLOURS["green"])


def test_set_layouts_rejects_what_the_slots_cannot_hold(env):
    three_boxes = Layout(objects=tuple(SceneObject(c, "box", (1.0, y)) for c, y in zip(COLOURS, (0, 1, 2))))
    with pytest.raises(ValueError, match=r"layout 1: 3 objects of shape 'box'.*slots_per_shape"):
        env.set_layouts([0, 1], [RED_BOX_AHEAD, three_boxes])
    cube = SimpleNamespace(colour="red", shape="cube", xy=(1.0, 0.0), name="red cube")
    with pytest.raises(ValueError, match="unknown shape 'cube'"):
        env.set_layouts([0], [Layout(objects=(cube,))])
    blocks = Layout(objects=(), obstacles=tuple(Obstacle((1.0, y), (0.2, 0.2)) for y in range(4)))
    with pytest.raises(ValueError, match="4 obstacles.*max_obstacles"):
        env.set_layouts([0], [blocks])
    with pytest.raises(ValueError, match="inside"):
        env.set_layouts([0], [Layout(objects=(SceneObject("red", "box", (9.0, 0.0)),))])
    with pytest.raises(ValueError, match="2 simulation ids but 1 layouts"):
        env.set_layouts([0, 1], [RED_BOX_AHEAD])
    with pytest.raises(ValueError, match="distinct"):
        env.set_layouts([1, 1], [RED_BOX_AHEAD, RED_BOX_AHEAD])


def test_camera_sees_a_red_box_ahead_at_the_centre_at_its_depth(env):
    env.set_layouts([0, 1], [RED_BOX_AHEAD, Layout(objects=())])
    image = env.camera()
    cfg = env.cfg.camera
    assert image.shape == (2, cfg.height, cfg.width, 4) and image.dtype == np.float32
    centre = image[0, 11:13, 15:17]
    assert reds(centre).all()
    # base x ~ 0, camera 0.30 ahead, front face at 1.35 m: depth along the axis = 1.05 m / cos(pitch)
    expected = (1.35 - env.pose()[0, 0] - cfg.mount_pos_m[0]) / math.cos(math.radians(cfg.pitch_down_deg))
    assert centre[..., 3].mean() * cfg.max_range_m == pytest.approx(expected, abs=0.03)
    assert not reds(image[1]).any()
    np.testing.assert_array_equal(env.camera([1]), image[[1]])


def test_camera_turns_with_the_robot(env):
    left = Layout(objects=(SceneObject("red", "box", (1.5, 0.8)),))
    turned_left = dataclasses.replace(RED_BOX_AHEAD, start=(0.0, 0.0, 0.5))
    env.set_layouts([0, 1], [left, turned_left])
    hits = reds(env.camera())
    width = env.cfg.camera.width
    assert hits[0].any() and not hits[0][:, width // 2 :].any()
    assert hits[1].any() and not hits[1][:, : width // 2].any()


def test_camera_sees_none_of_the_robot_and_nothing_of_parked_slots():
    # a camera behind and above the base looks down on the robot: what it sees must be the bare ground plane
    behind = CameraConfig(mount_pos_m=(-0.7, 0.0, 0.4), pitch_down_deg=35.0)
    env = ArenaVecEnv(ArenaConfig(camera=behind), WALK)
    image = env.camera()
    base = env.walk.rig.base_pose()
    rotation = np.zeros((2, 9))
    for quat, matrix in zip(base[:, 3:7], rotation):
        mujoco.mju_quat2Mat(matrix, quat)
    rotation = rotation.reshape(2, 3, 3)
    origin = base[:, :3] + rotation @ np.asarray(behind.mount_pos_m)
    directions = np.einsum("kij,pj->kpi", rotation, behind.ray_directions_body())
    forward = rotation @ behind.axes_body()[:, 0]
    down = directions[..., 2] < 0
    # the plane z = 0 is met after t = -z0 / d_z; depth along the axis is t (d . forward)
    t = np.where(down, -origin[:, None, 2] / np.where(down, directions[..., 2], -1.0), np.inf)
    depth = np.clip(t * np.einsum("kpi,ki->kp", directions, forward) / behind.max_range_m, 0.0, 1.0)
    np.testing.assert_allclose(image[..., 3].reshape(2, -1), np.where(down, depth, 1.0), atol=1e-5)
    # the same camera shown the robot's geom group does see it
    robot_group = int(env.model.geom_group[env.walk.rig.robot_geoms].max())
    seen = RayCamera(env.model, behind, (0, robot_group, ARENA_GROUP)).capture(
        env.batch, base[:, :3], base[:, 3:7], env.colours
    )
    assert (np.abs(seen[..., 3] - image[..., 3]) > 0.01).any()


def test_camera_frames_leave_the_walking_simulation_unchanged(env):
    env.set_layouts([0, 1], [RED_BOX_AHEAD, RED_BOX_AHEAD])
    actions = np.random.default_rng(0).normal(0.0, 0.5, (30, 2, 12))
    arrays, meta = env.walk.get_state()

    def states(with_camera: bool) -> np.ndarray:
        env.walk.set_state(arrays, meta)
        out = []
        for i, action in enumerate(actions):
            if with_camera and i % 3 == 0:
                env.camera()
            env.step(action)
            out.append(env.batch.state.copy())
        return np.array(out)

    np.testing.assert_array_equal(states(True), states(False))


@pytest.mark.usefixtures("one_torch_thread")
def test_a_walking_robot_collides_with_a_box_and_a_resized_obstacle():
    from ogi.training.policy_loading import policy_function

    walker, trained = policy_function(Path(__file__).parents[2] / "ogi/policies/pretrained/go2_walk_omni", 2)
    # nominal physics: a randomized reset recomputes the model's derived constants itself, which would hide a
    # layout that forgot to
    walk = dataclasses.replace(
        trained,
        num_envs=2,
        sim=dataclasses.replace(trained.sim, nthread=1),
        randomization=dataclasses.replace(trained.randomization, enabled=False),
    )
    env = ArenaVecEnv(ArenaConfig(), walk)
    box = Layout(objects=(SceneObject("red", "box", (1.2, 0.0)),))
    # the obstacle's compiled half width is 0.25 m: the robot meets only the part the layout grew
    wall = Layout(objects=(), obstacles=(Obstacle((1.2, 0.7), (0.2, 1.0)),))
    env.set_layouts([0, 1], [box, wall])
    obs = env.set_commands(np.tile([0.8, 0.0, 0.0], (2, 1)))
    arena_geoms = np.flatnonzero(env.model.geom_group == ARENA_GROUP)
    touched = np.zeros(2, dtype=bool)
    done = np.ones(2, dtype=bool)
    for _ in range(150):  # 3 s at 0.8 m/s would carry the robot 2.4 m, well past x = 1.2
        obs, *_ = env.step(walker(obs, done))
        done[:] = False
        for sim in range(2):
            model, data = env.batch.get_model(sim), env.batch.get_data(sim)
            mujoco.mj_kinematics(model, data)
            mujoco.mj_collision(model, data)
            geoms = np.array([c.geom for c in data.contact[: data.ncon]]).reshape(-1, 2)
            touched[sim] |= np.isin(geoms, arena_geoms).any()
    assert touched.all()
    # stopped in front of the near faces (x = 1.05 and 1.0), never through them
    assert (env.pose()[:, 0] < 1.0).all()


def test_set_layouts_takes_simulations_in_any_order(env):
    env.set_layouts([1, 0], [RED_BOX_AHEAD, Layout(objects=(), start=(0.5, 0.5, 1.0))])
    assert reds(env.camera([1])).any() and not reds(env.camera([0])).any()
    np.testing.assert_allclose(env.pose()[0], [0.5, 0.5, 1.0], atol=0.02)


def test_a_fallen_robot_lies_on_and_fell_remembers_it_until_the_next_layout(env):
    env.set_layouts([0, 1], [RED_BOX_AHEAD, RED_BOX_AHEAD])
    base = env.walk.rig.base_qpos_adr
    env.walk.rig.qpos()[0, base + 3 : base + 7] = (0.0, 1.0, 0.0, 0.0)  # upside down
    _, _, terminated, _, info = env.step(np.zeros((2, 12)))
    assert info["fell"].tolist() == [True, False] and terminated[0]
    for _ in range(5):  # no reset needed: the ended simulation steps on
        env.step(np.zeros((2, 12)))
    assert env.fell().tolist() == [True, False]
    env.set_layouts([0], [RED_BOX_AHEAD])
    assert not env.fell().any()
    env.step(np.zeros((2, 12)))
    assert not env.fell().any()

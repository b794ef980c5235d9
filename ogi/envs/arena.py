"""The arena: the walking task among nameable objects and obstacles, placed per simulation, seen by a head camera.

Every simulation's model holds the same slots: `slots_per_shape` of each shape in `SHAPES` and `max_obstacles` grey
blocks, each a static body of one geom in `ARENA_GROUP` (out of the ground's group, so height scans ignore them)
that the robot collides with. A layout moves the slots it uses into place (per-simulation `body_pos`, `body_quat`,
obstacle sizes and colours) and parks the rest under the ground, far away, then has MuJoCo recompute what it derives
from them (`set_const`: bounding spheres, boxes and trees, which collision tests read first). A slot is a body of its
own rather than a geom of the world body: the world body's geoms share one bounding-volume tree, which a moved geom
falls out of until `set_const` rebuilds it (the robot walks through), while a body's tree moves with the body.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np

from ogi.envs.camera import CameraConfig, RayCamera, RenderedCamera, add_head_camera
from ogi.envs.config import WalkConfig
from ogi.envs.layout import ARENA_HALF_M, COLOURS, OBSTACLE_RGB, SHAPES, Layout
from ogi.envs.scene import GROUND_CHECKER_RGB, GROUND_GEOM
from ogi.envs.sensing import GROUND_GROUP, yaw_of
from ogi.envs.walk import WalkVecEnv
from ogi.robots import RobotSpec, get_robot
from ogi.robots.geometry import COLLIDE_GROUND
from ogi.validation import check_int, check_range

ARENA_GROUP = 2  # geom group of the arena's objects and obstacles
CAMERA_GROUPS = (GROUND_GROUP, ARENA_GROUP)  # what the head camera sees: never the robot
BOX_HALF_M = 0.15  # a 0.3 m cube
BALL_RADIUS_M = 0.15
PILLAR_RADIUS_M, PILLAR_HEIGHT_M = 0.12, 0.7
CONE_RADIUS_M, CONE_HEIGHT_M, CONE_SEGMENTS = 0.18, 0.45, 24
# unused slots wait below the ground plane (which hides them from every ray above it), beyond any camera's range
PARK_XYZ_M = (100.0, 0.0, -50.0)
PARK_SPACING_M = 2.0
_FAR_S = 1e6  # "never" for the walk env's command resampling and pushes


@dataclass(frozen=True, kw_only=True)
class ArenaConfig:
    slots_per_shape: int = 2  # objects of one shape a layout may hold
    max_obstacles: int = 3
    obstacle_height_m: float = 0.5
    camera: CameraConfig = field(default_factory=CameraConfig)
    episode_s: float = 30.0  # the walk env's time-out; `step` reports it as truncated and the robot walks on
    pushes: bool = False  # the walk env's random pushes

    def __post_init__(self) -> None:
        check_int("arena.slots_per_shape", self.slots_per_shape, 1, 16)
        check_int("arena.max_obstacles", self.max_obstacles, 0, 32)
        check_range("arena.obstacle_height_m", self.obstacle_height_m, 0.05, 5.0)
        check_range("arena.episode_s", self.episode_s, 0.1, 1e5)


def slot_name(shape: str, index: int) -> str:
    return f"arena_{shape}_{index}"


def obstacle_name(index: int) -> str:
    return f"arena_obstacle_{index}"


def add_arena_geoms(spec: mujoco.MjSpec, cfg: ArenaConfig) -> None:
    """Add every object and obstacle slot to `spec`, parked: a static body with one geom each.

    A body's origin is the object's footprint centre on the ground; its geom stands on the ground above it (an
    obstacle's box is `obstacle_height_m` tall, its half sizes in x and y set by the layout).
    """
    # the robot must stay out of the arena's group, or the camera would see it
    for geom in spec.geoms:
        if geom.group == ARENA_GROUP:
            geom.group = ARENA_GROUP + 1
    spec.add_mesh(name="arena_cone", uservert=_cone_vertices().ravel().tolist())
    geoms = [(slot_name(shape, i), _shape_geom(shape)) for shape in SHAPES for i in range(cfg.slots_per_shape)]
    obstacle = dict(
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.25, 0.25, cfg.obstacle_height_m / 2],
        pos=[0.0, 0.0, cfg.obstacle_height_m / 2],
        rgba=[*OBSTACLE_RGB, 1.0],
    )
    geoms += [(obstacle_name(i), obstacle) for i in range(cfg.max_obstacles)]
    for slot, (name, geom) in enumerate(geoms):
        body = spec.worldbody.add_body(name=name, pos=_park_position(slot).tolist())
        body.add_geom(name=name, group=ARENA_GROUP, **COLLIDE_GROUND, **geom)


def _shape_geom(shape: str) -> dict:
    """The geom of an object slot, standing on the ground over its body's origin."""
    if shape == "box":
        return dict(type=mujoco.mjtGeom.mjGEOM_BOX, size=[BOX_HALF_M] * 3, pos=[0.0, 0.0, BOX_HALF_M])
    if shape == "ball":
        return dict(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[BALL_RADIUS_M, 0, 0], pos=[0.0, 0.0, BALL_RADIUS_M])
    if shape == "pillar":
        half = PILLAR_HEIGHT_M / 2
        return dict(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[PILLAR_RADIUS_M, half, 0], pos=[0.0, 0.0, half])
    if shape == "cone":
        # MuJoCo centres a mesh on its centroid and moves the geom to keep the vertices where they were
        return dict(type=mujoco.mjtGeom.mjGEOM_MESH, meshname="arena_cone")
    raise ValueError(f"no arena geometry for shape {shape!r}; known: {', '.join(SHAPES)}")


def _cone_vertices() -> np.ndarray:
    """(s + 1, 3) apex and base ring of a cone standing on z = 0."""
    angle = np.linspace(0.0, 2 * np.pi, CONE_SEGMENTS, endpoint=False)
    ring = np.column_stack([CONE_RADIUS_M * np.cos(angle), CONE_RADIUS_M * np.sin(angle), np.zeros_like(angle)])
    return np.vstack([[0.0, 0.0, CONE_HEIGHT_M], ring])


def _park_position(slot: int) -> np.ndarray:
    return np.asarray(PARK_XYZ_M) + np.array([slot * PARK_SPACING_M, 0.0, 0.0])


def arena_walk_config(walk: WalkConfig, cfg: ArenaConfig) -> WalkConfig:
    """The walk env's config inside an arena: commands held until set, pushes only if asked, the arena's time-out."""
    if walk.terrain.enabled:
        raise ValueError("the arena stands on the flat ground plane; turn walk.terrain off")
    randomization = walk.randomization
    if not cfg.pushes:
        randomization = dataclasses.replace(randomization, push_interval_s=(_FAR_S, _FAR_S))
    return dataclasses.replace(
        walk,
        episode_length_s=cfg.episode_s,
        commands=dataclasses.replace(walk.commands, resample_s=_FAR_S),
        randomization=randomization,
    )


def camera_colours(model: mujoco.MjModel) -> np.ndarray:
    """(ngeom, 3) float32 RGB of every geom as the ray camera sees it: its rgba, the ground its checker's mean."""
    colours = model.geom_rgba[:, :3].astype(np.float32)
    colours[model.geom(GROUND_GEOM).id] = np.mean(GROUND_CHECKER_RGB, axis=0)
    return colours


def check_layout(cfg: ArenaConfig, layout: Layout, where: str = "layout") -> None:
    """Raises ValueError, naming `where`, for a layout the arena's slots cannot hold."""
    counts = dict.fromkeys(SHAPES, 0)
    for obj in layout.objects:
        if obj.shape not in SHAPES:
            raise ValueError(f"{where}: unknown shape {obj.shape!r}; known: {', '.join(SHAPES)}")
        if obj.colour not in COLOURS:
            raise ValueError(f"{where}: unknown colour {obj.colour!r}; known: {', '.join(COLOURS)}")
        counts[obj.shape] += 1
        _check_xy(where, obj.name, obj.xy)
    for shape, count in counts.items():
        if count > cfg.slots_per_shape:
            raise ValueError(
                f"{where}: {count} objects of shape {shape!r}, the arena holds {cfg.slots_per_shape} "
                "(ArenaConfig.slots_per_shape)"
            )
    if len(layout.obstacles) > cfg.max_obstacles:
        raise ValueError(
            f"{where}: {len(layout.obstacles)} obstacles, the arena holds {cfg.max_obstacles} "
            "(ArenaConfig.max_obstacles)"
        )
    for k, obstacle in enumerate(layout.obstacles):
        _check_xy(where, f"obstacle {k}", obstacle.xy)
        half = np.asarray(obstacle.half_size, dtype=np.float64)
        if half.shape != (2,) or not (np.isfinite(half).all() and (half > 0).all() and (half <= ARENA_HALF_M).all()):
            raise ValueError(
                f"{where}: obstacle {k} half sizes {obstacle.half_size!r} must be 2 numbers in (0, {ARENA_HALF_M}]"
            )
        if not math.isfinite(obstacle.yaw):
            raise ValueError(f"{where}: obstacle {k} yaw {obstacle.yaw!r} must be finite")
    start = np.asarray(layout.start, dtype=np.float64)
    if start.shape != (3,) or not np.isfinite(start).all():
        raise ValueError(f"{where}: start {layout.start!r} must be a finite (x, y, yaw)")


class ArenaSlots:
    """The slot bodies and geoms `add_arena_geoms` put in a model, and how a layout fills them."""

    def __init__(self, model: mujoco.MjModel, cfg: ArenaConfig):
        self.cfg = cfg
        m = model
        self.slot_bodies = {
            s: np.array([m.body(slot_name(s, i)).id for i in range(cfg.slots_per_shape)]) for s in SHAPES
        }
        self.slot_geoms = {
            s: np.array([m.geom(slot_name(s, i)).id for i in range(cfg.slots_per_shape)]) for s in SHAPES
        }
        self.obstacle_bodies = np.array([m.body(obstacle_name(i)).id for i in range(cfg.max_obstacles)], dtype=np.int64)
        self.obstacle_geoms = np.array([m.geom(obstacle_name(i)).id for i in range(cfg.max_obstacles)], dtype=np.int64)
        self._all_bodies = np.concatenate([*self.slot_bodies.values(), self.obstacle_bodies])
        self._park = np.array([m.body_pos[b] for b in self._all_bodies])

    def write(
        self,
        layout: Layout,
        body_pos: np.ndarray,
        body_quat: np.ndarray,
        rgba: np.ndarray,
        geom_size: np.ndarray,
        colours: np.ndarray,
    ) -> None:
        """Write one model's fields (one simulation's rows, or an `MjModel`'s own arrays) for `layout`: used slots
        in place and painted, the rest parked; `colours` (ngeom, 3) the ray camera's. The caller then has MuJoCo
        recompute what it derives from them (`set_const`)."""
        body_pos[self._all_bodies] = self._park
        body_quat[self._all_bodies] = (1.0, 0.0, 0.0, 0.0)
        used = dict.fromkeys(SHAPES, 0)

        def paint(geom: int, rgb: tuple[float, float, float]) -> None:
            colours[geom] = rgb
            rgba[geom, :3] = rgb

        for obj in layout.objects:
            slot = used[obj.shape]
            used[obj.shape] += 1
            body, geom = self.slot_bodies[obj.shape][slot], self.slot_geoms[obj.shape][slot]
            body_pos[body] = (obj.xy[0], obj.xy[1], 0.0)
            paint(geom, COLOURS[obj.colour])
        for k, obstacle in enumerate(layout.obstacles):
            body, geom = self.obstacle_bodies[k], self.obstacle_geoms[k]
            body_pos[body] = (obstacle.xy[0], obstacle.xy[1], 0.0)
            body_quat[body] = (math.cos(obstacle.yaw / 2), 0.0, 0.0, math.sin(obstacle.yaw / 2))
            geom_size[geom] = (*obstacle.half_size, self.cfg.obstacle_height_m / 2)
            paint(geom, OBSTACLE_RGB)


class ArenaVecEnv:
    """n walking simulations, each in its own arena layout, with a head camera.

    The walking policy sees the walk env's observations unchanged (`step`, `set_commands`); a planner reads
    `camera`, `pose` and `speed` and sets commands. The walk env does not reset by itself here: a robot that falls
    (or whose episode times out) lies on or walks on until `set_layouts` starts that simulation afresh; `fell()`
    remembers a fall since then.
    """

    def __init__(
        self, config: ArenaConfig | None = None, walk: WalkConfig | None = None, *, robot: RobotSpec | None = None
    ):
        self.cfg = cfg = config or ArenaConfig()
        walk_cfg = arena_walk_config(walk or WalkConfig(), cfg)
        self.robot = robot or get_robot(walk_cfg.robot)

        def add_to_scene(spec: mujoco.MjSpec) -> None:
            add_arena_geoms(spec, cfg)
            add_head_camera(spec, self.robot.base_body, cfg.camera)

        self.walk = WalkVecEnv(walk_cfg, robot=self.robot, autoreset=False, add_to_scene=add_to_scene)
        self.num_envs = n = self.walk.num_envs
        self.model, self.batch = self.walk.model, self.walk.batch
        self.single_observation_space = self.walk.single_observation_space
        self.single_action_space = self.walk.single_action_space
        self.observation_space, self.action_space = self.walk.observation_space, self.walk.action_space
        m = self.model
        self.slots = ArenaSlots(m, cfg)

        self._body_pos, self._body_quat = self.batch.expand("body_pos"), self.batch.expand("body_quat")
        self._rgba = self.batch.expand("geom_rgba")
        self._geom_size = self.batch.expand("geom_size")
        # RGB of every geom in every simulation as the ray camera sees it
        self.colours = np.broadcast_to(camera_colours(m), (n, m.ngeom, 3)).copy()
        self.ray_camera = RayCamera(m, cfg.camera, CAMERA_GROUPS)
        self._fell = np.zeros(n, dtype=bool)
        self.walk.reset(seed=walk_cfg.seed)
        self.set_layouts(np.arange(n), [Layout(objects=())] * n)

    # ---- layouts -----------------------------------------------------------------------------
    def set_layouts(self, ids: Sequence[int], layouts: Sequence[Layout]) -> dict[str, np.ndarray]:
        """Put simulations `ids` into `layouts` (one each): objects and obstacles in place, the others parked, and
        the robot standing at `layout.start` as the walk env's reset stands it. Returns every simulation's
        observations. Raises ValueError, naming the layout, for one the slots cannot hold."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(layouts):
            raise ValueError(f"{len(ids)} simulation ids but {len(layouts)} layouts")
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_envs or len(set(ids.tolist())) != len(ids)):
            raise ValueError(f"simulation ids must be distinct and lie in 0..{self.num_envs - 1}, got {ids.tolist()}")
        for index, layout in enumerate(layouts):
            check_layout(self.cfg, layout, f"layout {index}")
        for sim, layout in zip(ids, layouts):
            self._place(int(sim), layout)
        self.batch.set_const(np.sort(ids))
        starts = np.array([layout.start for layout in layouts], dtype=np.float64).reshape(len(ids), 3)
        self._fell[ids] = False
        return self.walk.reset_at(ids, starts)

    def _place(self, sim: int, layout: Layout) -> None:
        self.slots.write(
            layout, self._body_pos[sim], self._body_quat[sim], self._rgba[sim], self._geom_size[sim], self.colours[sim]
        )

    # ---- the walk env ------------------------------------------------------------------------
    def step(self, actions: np.ndarray):
        """The walk env's step: (observations, reward, terminated, truncated, info); an ended simulation steps on."""
        obs, reward, terminated, truncated, info = self.walk.step(actions)
        self._fell |= info["fell"] | info["diverged"]
        ended = np.flatnonzero(terminated | truncated)
        if len(ended):
            self.walk.resume(ended)
        return obs, reward, terminated, truncated, info

    def set_commands(self, commands: np.ndarray) -> dict[str, np.ndarray]:
        """Every simulation's body-frame command (n, 3) (vx m/s, vy m/s, yaw rate rad/s); returns the observations."""
        return self.walk.set_commands(commands)

    # ---- what a planner reads -----------------------------------------------------------------
    def pose(self) -> np.ndarray:
        """(n, 3) x m, y m, yaw rad of each robot's base."""
        base = self.walk.rig.base_pose()
        return np.column_stack([base[:, 0], base[:, 1], yaw_of(base[:, 3:7])])

    def speed(self) -> np.ndarray:
        """(n,) planar speed of each base, m/s."""
        return np.linalg.norm(self.walk.rig.base_lin_vel_world()[:, :2], axis=1)

    def fell(self) -> np.ndarray:
        """(n,) bool: the walk env ended the simulation as fallen (or diverged) since its layout was set. A fall
        includes a termination body (go2: base, thighs) touching anything, an arena object too."""
        return self._fell.copy()

    def camera(self, ids: Sequence[int] | None = None) -> np.ndarray:
        """(k, H, W, 4) float32 RGB-D from the head cameras of simulations `ids` (all if None): `ogi.envs.camera`."""
        ids = np.arange(self.num_envs) if ids is None else np.asarray(ids, dtype=np.int64).reshape(-1)
        base = self.walk.rig.base_pose()[ids]
        return self.ray_camera.capture(self.batch, base[:, :3], base[:, 3:7], self.colours[ids], ids)

    def rendered_camera(self) -> RenderedCamera:
        """An OpenGL camera giving the images `camera` gives (`RenderedCamera.capture(env.batch, ids)`)."""
        return RenderedCamera(self.model, self.cfg.camera, CAMERA_GROUPS)

    def close(self) -> None:
        self.walk.close()


def _check_xy(where: str, what: str, xy: tuple[float, float]) -> None:
    point = np.asarray(xy, dtype=np.float64)
    if point.shape != (2,) or not np.isfinite(point).all() or (np.abs(point) > ARENA_HALF_M).any():
        raise ValueError(f"{where}: {what} at {xy!r} must lie inside [-{ARENA_HALF_M}, {ARENA_HALF_M}] m on both axes")

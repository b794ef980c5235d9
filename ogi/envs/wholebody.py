"""Whole-body tasks for the humanoid: walking and arms together on one body, objects placed at random.

- `reach`: touch a target beyond arm's reach. A small target 1-2.5 m from where the robot stands, in any
  direction, at 0.7-1.1 m. Success: either hand's grasp point (the `{side}_grasp` site between the jaws) within
  `touch_radius_m` of the target's centre.
- `pick_place`: walk to a table, pick the box on it, carry it to a second table 2-3.5 m further and put it down.
  The box is 3 cm thick across (what the 4 cm jaws can close on), 6-8 cm wide, 8-12 cm tall, 0.1-0.4 kg; tables
  are 0.6-0.8 m high. The box stands `EDGE_INSET_M` inside the edge of the first table that faces the robot's
  start, its thin side along that edge; it is to be set down as far inside the second table's edge that faces
  the first. Success: the box rests on the second table's top (within it, at its height), upright, slow, and
  touched by nothing but the table: set down and let go.
- `push`: push a crate standing on the floor 1-1.5 m away into a goal disk of radius 0.25 m, 1-2 m beyond it.
  The crate is 0.5-0.7 m across, 0.8-1 m tall (its near face at the height of the hands reaching forward), 2-8 kg,
  and slides with friction 0.3 (a crate on sliders): pushed at the hands' height, a box with friction 1 tips
  over rather than slides unless it is wider than it is high. Success: the crate's centre inside the disk.

A grasp is contact-based, never a weld: a box is `held` by a hand when both that hand's jaws touch it (the fixed
jaw and the finger) and nothing else does. A fall ends an episode as a failure, the time-out as one too.

The tasks run on the walk env's simulations (`WalkVecEnv`: its physics, randomization and resets), with pushes off
and no velocity commands: what walks and what grasps is up to the policies above. Actions are the humanoid's 23
joint targets, as for walking. Observations: the walk env's groups plus `task` (n, 20), in the robot's base frame:
the goal (3: the reach target, the disk's centre, the point above the second table's centre where the box
should rest), the box's position (3), yaw (sin, cos) and half sizes (3) (zeros for `reach`), each grasp point
(3 + 3), whether each hand holds the box (2), and the task's remaining distance (1, `progress_distance`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import mujoco
import numpy as np

from ogi.envs.config import WalkConfig
from ogi.envs.observations import quat_rotate_inverse
from ogi.envs.sensing import yaw_of
from ogi.envs.walk import WalkVecEnv
from ogi.validation import ConfigError, check_choice, check_int, check_interval, check_range

TASKS = ("reach", "pick_place", "push")
SIDES = ("left", "right")
TASK_OBS_SIZE = 20
SUCCESS_REWARD = 10.0
_FAR_S = 1e6  # "never" for the walk env's command resampling and pushes
_PARK_XYZ = (100.0, 0.0, 0.5)  # where the box is built; every reset moves it into place
TABLE_HALF_XY_M = (0.3, 0.4)
# the box stands this far inside the edge a robot comes from, and is to be set down as far inside the second
# table's edge facing the first: at the centre it would be 0.44-0.57 m from the shoulder of a humanoid standing
# at the edge, past its arm's 0.51 m reach
EDGE_INSET_M = 0.06
BOX_YAW_NOISE_RAD = 0.15
TABLE_RGBA = (0.55, 0.4, 0.25, 1.0)
BOX_RGBA = (0.85, 0.3, 0.2, 1.0)


@dataclass(frozen=True, kw_only=True)
class WholeBodyConfig:
    task: str = "reach"
    robot: str = "humanoid"
    num_envs: int = 16
    episode_s: float = 20.0
    seed: int = 0
    # reach
    target_distance_m: tuple[float, float] = (1.0, 2.5)  # horizontal, from the robot's start: beyond arm's reach
    target_height_m: tuple[float, float] = (0.7, 1.1)
    # the target's bearing from the robot's start heading; (-pi, pi): any direction. A narrow, near band (e.g.
    # distance (0.25, 0.45), bearing (-0.7, 0.7)) makes the manipulation-only version of the task.
    target_bearing_rad: tuple[float, float] = (-np.pi, np.pi)
    touch_radius_m: float = 0.05  # grasp point to target centre for a touch
    # pick_place
    table_height_m: tuple[float, float] = (0.6, 0.8)
    first_table_distance_m: tuple[float, float] = (1.0, 1.5)
    second_table_distance_m: tuple[float, float] = (2.0, 3.5)  # from the first table
    small_box_half_m: tuple[float, float, float, float] = (0.03, 0.04, 0.04, 0.06)  # (y lo, y hi, z lo, z hi)
    small_box_mass_kg: tuple[float, float] = (0.1, 0.4)
    # push
    push_box_half_m: tuple[float, float] = (0.25, 0.35)  # half its sides on the floor
    push_box_half_height_m: tuple[float, float] = (0.4, 0.5)
    push_box_mass_kg: tuple[float, float] = (2.0, 8.0)
    push_box_friction: float = 0.3  # with the floor and everything else (it takes precedence)
    push_box_distance_m: tuple[float, float] = (1.0, 1.5)  # its centre from the robot's start
    push_box_bearing_rad: tuple[float, float] = (-np.pi, np.pi)  # from the robot's start heading
    goal_distance_m: tuple[float, float] = (1.0, 2.0)  # from the box
    # the goal's bearing from the box, relative to the line from the robot's start to the box: near 0, the box is
    # pushed straight on (the manipulation-only version of the task)
    goal_bearing_rad: tuple[float, float] = (-np.pi, np.pi)
    goal_radius_m: float = 0.25
    walk: WalkConfig = field(default_factory=WalkConfig)  # physics, noise and randomization of the walk env

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        check_int("num_envs", self.num_envs, 1, 1 << 16)
        check_range("episode_s", self.episode_s, 0.1, 1e5)
        for name in (
            "target_distance_m",
            "target_height_m",
            "table_height_m",
            "first_table_distance_m",
            "second_table_distance_m",
            "small_box_mass_kg",
            "push_box_half_m",
            "push_box_half_height_m",
            "push_box_mass_kg",
            "push_box_distance_m",
            "goal_distance_m",
        ):
            check_interval(name, getattr(self, name), 0.0, 50.0)
        for name in ("target_bearing_rad", "push_box_bearing_rad", "goal_bearing_rad"):
            check_interval(name, getattr(self, name), -np.pi, np.pi)
        check_range("push_box_friction", self.push_box_friction, 0.01, 2.0)
        lo_y, hi_y, lo_z, hi_z = self.small_box_half_m
        check_interval("small_box_half_m (y)", (lo_y, hi_y), 0.005, 0.5)
        check_interval("small_box_half_m (z)", (lo_z, hi_z), 0.005, 0.5)
        check_range("touch_radius_m", self.touch_radius_m, 1e-3, 1.0)
        check_range("goal_radius_m", self.goal_radius_m, 1e-3, 5.0)


SMALL_BOX_HALF_X_M = 0.015  # 3 cm across: the side the jaws close on


def _add_box(spec: mujoco.MjSpec, friction: float | None = None) -> None:
    """The box, and the contact sensors that tell a grasp; `friction` (sliding) takes precedence over that of
    whatever it touches (a higher contact priority), None: MuJoCo's default rule."""
    body = spec.worldbody.add_body(name="box", pos=list(_PARK_XYZ))
    body.add_freejoint(name="box_free")
    geom = body.add_geom(name="box_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.1, 0.1, 0.1], mass=1.0, rgba=BOX_RGBA)
    if friction is not None:
        geom.friction = [friction, 0.005, 0.0001]
        geom.priority = 1
    found = [1, 0, 1]  # intprm: data = found, no reduction, one slot: the number of contacts
    box = {"reftype": mujoco.mjtObj.mjOBJ_BODY, "refname": "box", "intprm": found}
    spec.add_sensor(
        name="box_contacts",
        type=mujoco.mjtSensor.mjSENS_CONTACT,
        objtype=mujoco.mjtObj.mjOBJ_BODY,
        objname="box",
        intprm=found,
    )
    for side in SIDES:
        for geom in (f"{side}_jaw", f"{side}_finger"):
            spec.add_sensor(
                name=f"{geom}_box",
                type=mujoco.mjtSensor.mjSENS_CONTACT,
                objtype=mujoco.mjtObj.mjOBJ_GEOM,
                objname=geom,
                **box,
            )


def _add_tables(spec: mujoco.MjSpec) -> None:
    for name in ("table_a", "table_b"):
        body = spec.worldbody.add_body(name=name, pos=[_PARK_XYZ[0], 5.0 if name == "table_b" else -5.0, 0.35])
        body.add_geom(
            name=f"{name}_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[*TABLE_HALF_XY_M, 0.35], rgba=TABLE_RGBA
        )
    spec.add_sensor(
        name="box_table_b",
        type=mujoco.mjtSensor.mjSENS_CONTACT,
        objtype=mujoco.mjtObj.mjOBJ_BODY,
        objname="box",
        reftype=mujoco.mjtObj.mjOBJ_BODY,
        refname="table_b",
        intprm=[1, 0, 1],
    )


def near_edge(center: np.ndarray, toward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((k, 2) the point `EDGE_INSET_M` inside the edge of the tables at `center` that faces `toward`, on the
    table's centre line; (k,) that edge's outward normal as a yaw). Tables are axis-aligned."""
    d = np.asarray(toward, float) - center
    half = np.asarray(TABLE_HALF_XY_M)
    across_x = np.abs(d[:, 0]) / half[0] >= np.abs(d[:, 1]) / half[1]  # leaves through an x-facing edge
    point = np.array(center, dtype=float)
    sign_x, sign_y = np.where(d[:, 0] >= 0, 1.0, -1.0), np.where(d[:, 1] >= 0, 1.0, -1.0)
    point[across_x, 0] += sign_x[across_x] * (half[0] - EDGE_INSET_M)
    point[~across_x, 1] += sign_y[~across_x] * (half[1] - EDGE_INSET_M)
    yaw = np.where(across_x, np.where(sign_x > 0, 0.0, np.pi), sign_y * np.pi / 2)
    return point, yaw


class WholeBodyVecEnv:
    """Batched whole-body task; reset(), step(actions) -> (obs, reward, terminated, truncated, info).

    Episodes end on success, on a fall, or at the time-out; with `autoreset` (the default) ended simulations start
    a new episode in the same step and `info["final_success"]` says how the old ones ended. The reward pays each
    new low of `progress_distance` by how much it fell, and `SUCCESS_REWARD` for a success.
    """

    def __init__(self, config: WholeBodyConfig | None = None, *, autoreset: bool = True):
        self.cfg = cfg = config or WholeBodyConfig()
        walk_cfg = dataclasses.replace(
            cfg.walk,
            robot=cfg.robot,
            num_envs=cfg.num_envs,
            seed=cfg.seed,
            episode_length_s=cfg.episode_s,
            commands=dataclasses.replace(cfg.walk.commands, resample_s=_FAR_S, standing_probability=1.0),
            randomization=dataclasses.replace(cfg.walk.randomization, push_interval_s=(_FAR_S, _FAR_S)),
        )

        def add_to_scene(spec: mujoco.MjSpec) -> None:
            if cfg.task != "reach":
                _add_box(spec, cfg.push_box_friction if cfg.task == "push" else None)
            if cfg.task == "pick_place":
                _add_tables(spec)

        try:
            self.walk = WalkVecEnv(walk_cfg, autoreset=False, add_to_scene=add_to_scene)
        except ValueError as err:  # a robot without hands: the jaw geoms the sensors name are missing
            raise ConfigError(f"robot '{cfg.robot}' cannot do whole-body tasks: {err}") from None
        self.autoreset = autoreset
        self.num_envs = n = cfg.num_envs
        model = self.walk.model
        missing = [f"{s}_grasp" for s in SIDES if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, f"{s}_grasp") < 0]
        if missing:
            raise ConfigError(f"robot '{cfg.robot}' has no grasp sites {missing}: whole-body tasks need hands")
        self.grasp_ids = np.array([model.site(f"{s}_grasp").id for s in SIDES])
        self.rng = np.random.default_rng(cfg.seed)
        batch = self.walk.batch
        self._qpos, self._qvel = batch.bind("qpos"), batch.bind("qvel")
        self._sensordata = batch.bind("sensordata")
        self.has_box = cfg.task != "reach"
        if self.has_box:
            self.box_body = model.body("box").id
            self.box_geom = model.geom("box_geom").id
            joint = model.joint("box_free").id
            self.box_qpos_adr, self.box_dof_adr = int(model.jnt_qposadr[joint]), int(model.jnt_dofadr[joint])
            self.box_contacts_adr = model.sensor_adr[model.sensor("box_contacts").id]
            self.jaw_adr = np.array(
                [[model.sensor_adr[model.sensor(f"{s}_{g}_box").id] for g in ("jaw", "finger")] for s in SIDES]
            )
            self._geom_size = batch.expand("geom_size")
            self._body_mass = batch.expand("body_mass")
            self._body_inertia = batch.expand("body_inertia")
        if cfg.task == "pick_place":
            self.table_bodies = np.array([model.body("table_a").id, model.body("table_b").id])
            self.table_geoms = np.array([model.geom("table_a_geom").id, model.geom("table_b_geom").id])
            self._body_pos = batch.expand("body_pos")
            self.box_table_b_adr = model.sensor_adr[model.sensor("box_table_b").id]
            self.table_xy = np.zeros((n, 2, 2))
            self.table_height = np.zeros((n, 2))
        from gymnasium import spaces

        self.single_observation_space = spaces.Dict(
            {
                **self.walk.single_observation_space.spaces,
                "task": spaces.Box(-np.inf, np.inf, (TASK_OBS_SIZE,), np.float32),
            }
        )
        self.single_action_space = self.walk.single_action_space
        self.goal = np.zeros((n, 3))
        self.box_half = np.zeros((n, 3))
        self.best_distance = np.zeros(n)
        self.success = np.zeros(n, dtype=bool)
        # callables (ids, cause) told of new goals: at episode starts, on place_goal (ogi.replay.record_whole_body)
        self.goal_listeners: list = []

    # ---- what the task reads ------------------------------------------------------------------
    def grasp_points(self) -> np.ndarray:
        """(n, 2, 3) world positions of the left and right grasp points."""
        return self.walk.rig.site_pos(self.grasp_ids)

    def box_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position (n, 3), quaternion (n, 4) wxyz) of the box in the world."""
        q = self._qpos[:, self.box_qpos_adr : self.box_qpos_adr + 7]
        return q[:, :3], q[:, 3:7]

    def held(self) -> np.ndarray:
        """(n, 2) bool: the box is held by the left, the right hand: both its jaws touch it and nothing else does."""
        if not self.has_box:
            return np.zeros((self.num_envs, 2), dtype=bool)
        jaws = self._sensordata[:, self.jaw_adr]  # (n, 2 hands, 2 jaws) contact counts
        both = (jaws > 0).all(axis=2)
        only_hand = self._sensordata[:, self.box_contacts_adr][:, None] == jaws.sum(axis=2)
        return both & only_hand

    def progress_distance(self) -> np.ndarray:
        """(n,) how far the task has to go, m: reach: nearer hand to target; push: box to goal, plus half the
        nearer hand's distance to the box; pick_place: nearer hand to box plus box to its resting point."""
        grasp = self.grasp_points()
        if not self.has_box:
            return np.linalg.norm(grasp - self.goal[:, None], axis=2).min(axis=1)
        box, _ = self.box_pose()
        hand_box = np.linalg.norm(grasp - box[:, None], axis=2).min(axis=1)
        if self.cfg.task == "push":
            return np.linalg.norm(box[:, :2] - self.goal[:, :2], axis=1) + 0.5 * hand_box
        return hand_box + np.linalg.norm(box - self.goal, axis=1)

    def succeeded(self) -> np.ndarray:
        """(n,) bool: the task's success test on the current state."""
        task = self.cfg.task
        if task == "reach":
            return (
                np.linalg.norm(self.grasp_points() - self.goal[:, None], axis=2).min(axis=1) <= self.cfg.touch_radius_m
            )
        box, quat = self.box_pose()
        if task == "push":
            return np.linalg.norm(box[:, :2] - self.goal[:, :2], axis=1) <= self.cfg.goal_radius_m
        # pick_place: on the second table, upright, slow, touched by nothing but the table (let go)
        offset = box[:, :2] - self.table_xy[:, 1]
        inside = (np.abs(offset) <= np.asarray(TABLE_HALF_XY_M) - 0.02).all(axis=1)
        resting = np.abs(box[:, 2] - self.goal[:, 2]) <= 0.02
        upright = np.abs(1.0 - 2.0 * (quat[:, 1] ** 2 + quat[:, 2] ** 2)) >= np.cos(0.2)  # box z within ~11 deg
        slow = np.linalg.norm(self._qvel[:, self.box_dof_adr : self.box_dof_adr + 3], axis=1) <= 0.05
        released = self._sensordata[:, self.box_contacts_adr] == self._sensordata[:, self.box_table_b_adr]
        return inside & resting & upright & slow & released

    # ---- placing things -----------------------------------------------------------------------
    def _set_box(self, ids: np.ndarray, xyz: np.ndarray, yaw: np.ndarray, half: np.ndarray, mass: np.ndarray) -> None:
        rows = self._qpos[ids]
        a = self.box_qpos_adr
        rows[:, a : a + 3] = xyz
        rows[:, a + 3 : a + 7] = np.column_stack(
            [np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)]
        )
        self._qpos[ids] = rows
        velocities = self._qvel[ids]
        velocities[:, self.box_dof_adr : self.box_dof_adr + 6] = 0.0
        self._qvel[ids] = velocities
        self._geom_size[np.ix_(ids, [self.box_geom])] = half[:, None]
        self._body_mass[ids, self.box_body] = mass
        # a solid box's principal moments
        sq = np.square(2.0 * half)
        self._body_inertia[ids, self.box_body] = mass[:, None] / 12.0 * (sq[:, [1, 0, 0]] + sq[:, [2, 2, 1]])
        self.box_half[ids] = half

    def _place(self, ids: np.ndarray) -> None:
        """New objects and goal for simulations `ids` around where their robots now stand."""
        cfg, rng, k = self.cfg, self.rng, len(ids)
        start = self.walk.rig.base_pose()[ids, :2]

        def around(origin: np.ndarray, distance: tuple[float, float], angle: np.ndarray | None = None) -> np.ndarray:
            angle = rng.uniform(-np.pi, np.pi, k) if angle is None else angle
            r = rng.uniform(*distance, k)
            return origin + np.column_stack([r * np.cos(angle), r * np.sin(angle)])

        if cfg.task == "reach":
            heading = yaw_of(self.walk.rig.base_pose()[ids, 3:7])
            self.goal[ids, :2] = around(start, cfg.target_distance_m, heading + rng.uniform(*cfg.target_bearing_rad, k))
            self.goal[ids, 2] = rng.uniform(*cfg.target_height_m, k)
        elif cfg.task == "push":
            half = np.column_stack(
                [rng.uniform(*cfg.push_box_half_m, (k, 2)), rng.uniform(*cfg.push_box_half_height_m, k)]
            )
            heading = yaw_of(self.walk.rig.base_pose()[ids, 3:7])
            toward_box = heading + rng.uniform(*cfg.push_box_bearing_rad, k)
            box_xy = around(start, cfg.push_box_distance_m, toward_box)
            self._set_box(
                ids,
                np.column_stack([box_xy, half[:, 2]]),
                rng.uniform(-np.pi, np.pi, k),
                half,
                rng.uniform(*cfg.push_box_mass_kg, k),
            )
            self.goal[ids, :2] = around(box_xy, cfg.goal_distance_m, toward_box + rng.uniform(*cfg.goal_bearing_rad, k))
            self.goal[ids, 2] = 0.0
        else:
            height = rng.uniform(*cfg.table_height_m, (k, 2))
            first = around(start, cfg.first_table_distance_m)
            second = around(first, cfg.second_table_distance_m)
            for _ in range(20):  # the second table keeps clear of where the robot starts
                near = np.linalg.norm(second - start, axis=1) < 1.0
                if not near.any():
                    break
                second[near] = around(first, cfg.second_table_distance_m)[near]
            for t, xy in enumerate((first, second)):
                self._body_pos[ids, self.table_bodies[t]] = np.column_stack([xy, height[:, t] / 2])
                self._geom_size[ids, self.table_geoms[t]] = np.column_stack(
                    [np.full((k, 2), TABLE_HALF_XY_M), height[:, t] / 2]
                )
            self.table_xy[ids] = np.stack([first, second], axis=1)
            self.table_height[ids] = height
            lo_y, hi_y, lo_z, hi_z = cfg.small_box_half_m
            half = np.column_stack(
                [np.full(k, SMALL_BOX_HALF_X_M), rng.uniform(lo_y, hi_y, k), rng.uniform(lo_z, hi_z, k)]
            )
            box_xy, normal_yaw = near_edge(first, start)
            self._set_box(
                ids,
                np.column_stack([box_xy, height[:, 0] + half[:, 2]]),
                # its thin side (x) along the edge: a hand reaching over the edge from a robot facing it closes its
                # jaws across the robot's heading, which arm and waist can do for 77% of the box positions ahead at
                # table height against 32% with the thin side across the edge (benchmarks/grasp_workspace.py)
                normal_yaw + np.pi / 2 + rng.uniform(-BOX_YAW_NOISE_RAD, BOX_YAW_NOISE_RAD, k),
                half,
                rng.uniform(*cfg.small_box_mass_kg, k),
            )
            goal_xy, _ = near_edge(second, first)
            self.goal[ids] = np.column_stack([goal_xy, height[:, 1] + half[:, 2]])
        if self.has_box:
            self.walk.batch.set_const(ids)  # bounding volumes and the box's mass and inertia
            self.walk.batch.forward(ids)

    def _begin(self, ids: np.ndarray) -> None:
        self._place(ids)
        self.success[ids] = False
        self.best_distance[ids] = self.progress_distance()[ids]
        self._record_goals(ids, "episode start")

    def _record_goals(self, ids: np.ndarray, cause: str) -> None:
        """Tell the goal listeners (a recorder: the goal is not in the physics state) the goals of `ids`."""
        if not self.goal_listeners:
            return
        ids = np.asarray(ids).reshape(-1)
        for listener in list(self.goal_listeners):
            listener(ids, cause)

    def place_box(self, ids: np.ndarray, xyz: np.ndarray, quat_wxyz: np.ndarray) -> dict[str, np.ndarray]:
        """Move the box of simulations `ids` to world poses (k, 3), (k, 4), at rest; returns the observations."""
        if not self.has_box:
            raise ValueError(f"task '{self.cfg.task}' has no box")
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        pose = np.concatenate([np.asarray(xyz, np.float64), np.asarray(quat_wxyz, np.float64)], axis=1)
        if pose.shape != (len(ids), 7) or not np.isfinite(pose).all():
            raise ValueError(f"box poses must be finite with shapes ({len(ids)}, 3) and ({len(ids)}, 4)")
        rows, velocities = self._qpos[ids], self._qvel[ids]
        rows[:, self.box_qpos_adr : self.box_qpos_adr + 7] = pose
        velocities[:, self.box_dof_adr : self.box_dof_adr + 6] = 0.0
        self._qpos[ids], self._qvel[ids] = rows, velocities
        self.walk.batch.forward(ids)
        self.best_distance[ids] = self.progress_distance()[ids]
        return self._observe(self.walk.observe())

    def place_goal(self, ids: np.ndarray, goal_world: np.ndarray) -> dict[str, np.ndarray]:
        """Move the goal of simulations `ids` to world positions (k, 3); returns the observations."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        goal_world = np.asarray(goal_world, dtype=np.float64)
        if goal_world.shape != (len(ids), 3) or not np.isfinite(goal_world).all():
            raise ValueError(f"goals must be finite with shape ({len(ids)}, 3), got {goal_world.shape}")
        self.goal[ids] = goal_world
        self.success[ids] = False
        self.best_distance[ids] = self.progress_distance()[ids]
        self._record_goals(ids, "goal moved")
        return self._observe(self.walk.observe())

    # ---- episodes -----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self.walk.rng = np.random.default_rng([seed, 1])  # the walk env's draws: domain, noise, start poses
        ids = np.arange(self.num_envs)
        obs = self.walk.reset_at(
            ids, np.column_stack([np.zeros((len(ids), 2)), self.rng.uniform(-np.pi, np.pi, len(ids))])
        )
        self._begin(ids)
        return self._observe(self.walk.observe() if self.has_box else obs), {}

    def step(self, actions):
        obs, _, fell, timed_out, info = self.walk.step(actions)
        distance = self.progress_distance()
        reward = np.clip(self.best_distance - distance, 0.0, None)
        self.best_distance = np.minimum(self.best_distance, distance)
        done_well = self.succeeded() & ~fell
        reward = reward + SUCCESS_REWARD * done_well
        self.success |= done_well
        terminated = fell | done_well
        truncated = timed_out & ~terminated
        info = {**info, "success": done_well, "progress_distance_m": distance, "held": self.held()}
        done = terminated | truncated
        if done.any() and self.autoreset:
            ids = np.flatnonzero(done)
            info["final_success"] = self.success.copy()
            poses = np.column_stack([np.zeros((len(ids), 2)), self.rng.uniform(-np.pi, np.pi, len(ids))])
            self.walk.reset_at(ids, poses)
            self._begin(ids)
            obs = self.walk.observe()
        elif done.any():
            self.walk.resume(np.flatnonzero(done))
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        base = self.walk.rig.base_pose()
        origin, quat = base[:, :3], base[:, 3:7]

        def local(world: np.ndarray) -> np.ndarray:
            return quat_rotate_inverse(quat, world - origin)

        n = self.num_envs
        grasp = self.grasp_points()
        if self.has_box:
            box, box_quat = self.box_pose()
            yaw = yaw_of(box_quat) - yaw_of(quat)
            box_fields = [local(box), np.column_stack([np.sin(yaw), np.cos(yaw)]), self.box_half]
        else:
            box_fields = [np.zeros((n, 3)), np.zeros((n, 2)), np.zeros((n, 3))]
        task = np.concatenate(
            [
                local(self.goal),
                *box_fields,
                local(grasp[:, 0]),
                local(grasp[:, 1]),
                self.held(),
                self.progress_distance()[:, None],
            ],
            axis=1,
        ).astype(np.float32)
        np.nan_to_num(task, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return {**obs, "task": task}

    def close(self) -> None:
        self.walk.close()

"""`walk`: n simulations of one robot on `mujoco.batch.Batch`, tracking commanded base velocities.

One policy step sets the PD targets (and gravity feed-forward) of every simulation, runs
`ctrl_dt / sim_dt` physics steps on the batch's thread pool in one call (two with a command delay: the
previous targets act for the delay's substeps), then computes observations, rewards and terminations with
numpy over the whole batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from mujoco import batch as mjbatch

from ogi.envs import gait, sensing
from ogi.envs import randomization as dr
from ogi.envs.config import RandomizationConfig, SimConfig, WalkConfig, held_joint_mask
from ogi.envs.curriculum import (
    command_scale,
    curriculum_summary,
    episode_success,
    initial_curriculum,
    update_curriculum,
)
from ogi.envs.observations import (
    policy_layout,
    policy_observation,
    privileged_layout,
    privileged_observation,
    projected_gravity,
    quat_rotate_inverse,
)
from ogi.envs.rewards import RewardComposer, Signals
from ogi.envs.rig import Rig
from ogi.robots import RobotSpec, get_robot
from ogi.validation import ConfigError

if TYPE_CHECKING:
    import mujoco

    from ogi.envs.terrain_grid import TerrainGrid
    from ogi.robots.dynamics import DynamicsProfile

CONTACT_FORCE_THRESHOLD_N = 1.0

HELD_MOTION_MOVE_S = 1.0  # a held joint in motion goes from one random target to the next in this long (linear)


class WalkVecEnv(VectorEnv):
    """Batched velocity-tracking task; Gymnasium vector API with same-step autoreset.

    Observations are a dict of two groups: `policy` (noisy, what a robot measures) and `privileged`
    (true base velocity, physical parameters, contacts, pushes). When an env ends, its next episode
    starts in the same call; the ended episode's last observation is in `info["final_obs"]` with the
    mask `info["_final_obs"]`. A diverged simulation (MuJoCo's bad-state warnings or non-finite
    state) ends with `terminated`, `info["diverged"]` set and zero reward, never silently.

    A calibrated robot (`config.dynamics`, a `DynamicsProfile`): its armature, damping and friction loss per joint
    class and its base mass offset are written into the model every simulation is built from (randomized added
    mass comes on top of the offset); the randomized motor strength interval is multiplied by its `strength`, so
    training is centred on the calibrated motors (without randomization every simulation has that strength); its
    `delay_ms` becomes the command delay (`sim.command_delay_s`, which must then be left at 0). The profile's
    torque-speed curve is not modelled: a motor gives its (scaled) torque limit at any speed. `self.sim` and
    `self.randomization` are the settings in force; `self.cfg` stays as given.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        config: WalkConfig | None = None,
        *,
        robot: RobotSpec | None = None,
        autoreset: bool = True,
        terrain: TerrainGrid | None = None,
        add_to_scene: Callable[[mujoco.MjSpec], None] | None = None,
    ):
        """`terrain` overrides the grid `config.terrain` would generate (e.g. a hand-made test terrain);
        `add_to_scene` edits the scene's spec before it compiles (e.g. an arena's static objects)."""
        self.cfg = cfg = config or WalkConfig()
        self.robot = robot or get_robot(cfg.robot)
        self.autoreset = autoreset
        self.metadata = dict(
            self.metadata, autoreset_mode=AutoresetMode.SAME_STEP if autoreset else AutoresetMode.DISABLED
        )
        self.num_envs = n = cfg.num_envs
        self.terrain = terrain
        if terrain is None and cfg.terrain.enabled:
            from ogi.envs.terrain_grid import build_terrain_grid

            t = cfg.terrain
            self.terrain = build_terrain_grid(t.kinds, t.curriculum.num_levels, t.tile_size_m, t.resolution_m, t.seed)
        if self.terrain is not None and self.terrain.num_levels != cfg.terrain.curriculum.num_levels:
            raise ValueError(
                f"terrain grid has {self.terrain.num_levels} levels but terrain.curriculum.num_levels is "
                f"{cfg.terrain.curriculum.num_levels}"
            )
        self.dynamics = cfg.dynamics.load()
        self.sim, self.randomization = calibrated_settings(cfg, self.dynamics)
        self.rig = Rig(
            self.robot,
            cfg.sim,
            randomize=cfg.randomization.enabled,
            terrain=self.terrain,
            add_to_scene=add_to_scene,
            dynamics=self.dynamics,
        )
        self.model = self.rig.model
        self.batch = mjbatch.Batch(self.model, n, nthread=cfg.sim.nthread)
        self.rig.bind(self.batch)
        self.rewards = RewardComposer(cfg.rewards, cfg.sim.ctrl_dt_s)
        self.rng = np.random.default_rng(cfg.seed)

        nj, nf = self.robot.num_joints, len(self.robot.foot_sites)
        self.scan_offsets = cfg.height_scan.offsets() if cfg.height_scan.enabled else None
        self.depth_directions = cfg.depth_camera.ray_directions_body() if cfg.depth_camera.enabled else None
        self.policy_layout = policy_layout(
            nj, depth_pixels=cfg.depth_camera.pixels if cfg.depth_camera.enabled else 0, gait_clock=cfg.gait.enabled
        )
        self.privileged_layout = privileged_layout(
            nf, scan_points=len(self.scan_offsets) if self.scan_offsets is not None else 0
        )
        # march depth rays at the heightfield's resolution (the plane needs no finer steps)
        self._depth_step_m = self.terrain.resolution_m if self.terrain is not None else 0.1
        self.curriculum = None
        if self.terrain is not None:
            self.curriculum = initial_curriculum(n, self.terrain.num_kinds, cfg.terrain.curriculum, self.rng)
        self.single_observation_space = spaces.Dict(
            {
                "policy": spaces.Box(-np.inf, np.inf, (self.policy_layout.size,), np.float32),
                "privileged": spaces.Box(-np.inf, np.inf, (self.privileged_layout.size,), np.float32),
            }
        )
        self.single_action_space = spaces.Box(-cfg.action_clip, cfg.action_clip, (nj,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

        self.default_pose = np.asarray(self.robot.default_pose)
        lo, hi = np.asarray(self.robot.joint_limits).T
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * cfg.rewards.soft_joint_limit_fraction
        self.soft_joint_low, self.soft_joint_high = mid - half, mid + half
        self.pose_weights = self._pose_weights()
        self.gait_pairs = gait_pairs(self.robot.foot_sites)
        if cfg.gait.enabled and nf != 2:
            raise ValueError(
                f"gait.enabled: the gait clock is for two-footed robots; '{self.robot.name}' has {nf} feet"
            )
        self.held = held_joint_mask(self.robot.joint_names, cfg.held_joints)
        self._init_held_motion()
        self.swing_offsets = gait.swing_offset_matrix(cfg.gait, self.robot.joint_names, self.robot.foot_sites)

        self.domain = dr.DomainParams.nominal(n)
        self.command = np.zeros((n, 3))
        self.action = np.zeros((n, nj))
        self.last_action = np.zeros((n, nj))
        self.last_joint_vel = np.zeros((n, nj))
        self.episode_step = np.zeros(n, dtype=np.int64)
        self.episode_return = np.zeros(n)
        self.push_countdown = np.zeros(n, dtype=np.int64)
        self.push_force = np.zeros((n, 3))
        self._external_push: tuple[np.ndarray, np.ndarray] | None = None  # see push_next
        self.foot_air_time = np.zeros((n, nf))
        self.foot_swing_peak = np.zeros((n, nf))
        # gravity feed-forward for the next step, from the state the last step ended in
        self.tau_ff = np.zeros((n, nj))
        self.last_foot_contact = np.zeros((n, nf), dtype=bool)
        self.last_foot_pos = np.zeros((n, nf, 3))
        self.bad_warnings = np.zeros(n, dtype=np.int64)
        self.spawn_xy = np.zeros((n, 2))
        # where perfect tracking would have taken each robot since its spawn, world xy: the commanded body-frame
        # velocity turned by the robot's heading and integrated (a curved or reversed path nets out, as it should)
        self.commanded_displacement = np.zeros((n, 2))
        self.diverged_total = 0
        self._needs_reset = np.ones(n, dtype=bool)

    def _pose_weights(self) -> np.ndarray:
        # the pose reward cares less about the joints that swing the legs fore and aft (knees, calves, a biped's
        # hip and ankle pitch), which must move to walk
        swinging = ("calf", "knee", "hip_pitch", "ankle_pitch")
        return np.array([0.1 if any(k in j for k in swinging) else 1.0 for j in self.robot.joint_names])

    # ---- reset -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            if self.terrain is not None:
                self.curriculum = initial_curriculum(
                    self.num_envs, self.terrain.num_kinds, self.cfg.terrain.curriculum, self.rng
                )
        self._reset_envs(np.arange(self.num_envs))
        return self._observe(), {}

    def reset_at(self, ids: np.ndarray, poses: np.ndarray) -> dict[str, np.ndarray]:
        """Reset simulations `ids` as `reset` does, but standing at poses (k, 3) (x m, y m, yaw rad) on the ground;
        returns every simulation's observations."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        poses = np.asarray(poses, dtype=np.float64)
        if poses.shape != (len(ids), 3) or not np.isfinite(poses).all():
            raise ValueError(f"poses must be finite with shape ({len(ids)}, 3), got {poses.shape}")
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_envs or len(np.unique(ids)) != len(ids)):
            raise ValueError(f"simulation ids must be distinct and lie in 0..{self.num_envs - 1}, got {ids.tolist()}")
        order = np.argsort(ids)  # the batch takes its simulations in increasing order
        self._reset_envs(ids[order], poses[order])
        return self._observe()

    def resume(self, ids: np.ndarray) -> None:
        """Let simulations that ended (with autoreset off) step on from where they are, without a reset: e.g. a
        fallen robot that lies on until a caller's episode ends. Their episode counters carry on."""
        self._needs_reset[np.asarray(ids, dtype=np.int64)] = False

    def _reset_envs(self, ids: np.ndarray, poses: np.ndarray | None = None) -> None:
        """poses: (k, 3) (x, y, yaw) to stand at instead of a drawn heading and spawn point."""
        k = len(ids)
        if k == 0:
            return
        rig, cfg = self.rig, self.cfg
        params = dr.sample_domain_params(self.randomization, k, self.rng)
        if self.dynamics is not None and not self.randomization.enabled:
            # the rig's model carries the profile's strength; the feed-forward and the critic's features follow it
            params = dataclasses.replace(params, motor_strength=np.full(k, self.dynamics.strength))
        yaw = self.rng.uniform(-np.pi, np.pi, k)
        base_xyz = None
        if self.terrain is not None:
            kind, level = self.curriculum.kind[ids], self.curriculum.level[ids]
            friction, solref, solimp = self.terrain.contact_params(kind, level)
            params = dr.replace_friction(params, friction)
            if poses is None:
                base_xyz = self._spawn_position(kind, level, yaw)
        if poses is not None:
            yaw = poses[:, 2]
            base_xyz = self._stand_position(poses[:, :2], yaw)
        self.domain = _assign_rows(self.domain, ids, params)
        rig.reset_to_stand(ids)
        rig.apply_domain(ids, params)
        if self.terrain is not None:
            rig.apply_ground(ids, solref, solimp)
        offsets = self.rng.uniform(-1, 1, (k, self.robot.num_joints)) * cfg.randomization.initial_joint_offset_rad
        rig.set_initial_state(ids, self.default_pose + offsets, yaw, base_xyz)
        self.spawn_xy[ids] = rig.base_pose()[ids, :2]
        self.commanded_displacement[ids] = 0.0
        self.bad_warnings[ids] = rig.bad_warning_count(ids)

        self.command[ids] = self._sample_commands(k)
        self.action[ids] = 0.0
        self.last_action[ids] = 0.0
        if cfg.held_motion > 0:
            self._held_from[ids] = self._held_to[ids] = 0.0
            self._held_age[ids] = 0
            self._held_countdown[ids] = self._held_period_steps(k)
        self.last_joint_vel[ids] = rig.joint_vel()[ids]
        self.episode_step[ids] = 0
        self.episode_return[ids] = 0.0
        self.push_countdown[ids] = dr.sample_push_delay_steps(cfg.randomization, k, cfg.sim.ctrl_dt_s, self.rng)
        self.push_force[ids] = 0.0
        self.foot_air_time[ids] = 0.0
        self.foot_swing_peak[ids] = 0.0
        self.last_foot_contact[ids] = False
        self.last_foot_pos[ids] = rig.foot_pos()[ids]
        self._needs_reset[ids] = False
        self._update_feedforward(ids)
        if self.sim.delay_substeps:
            # the targets the first step's delay runs on: a zero action's, not the ended episode's last
            rig.set_targets(self.default_pose + self.gait_reference()[ids], self.tau_ff[ids], ids)

    def actor_std_floor(self, actor_obs: str = "policy") -> np.ndarray:
        """(actor input size,) the smallest standard deviation the actor's normalizer divides each feature by:
        HEIGHT_SCAN_STD_FLOOR_M for the height scan, 0 elsewhere. Over flat ground every ray reads the base
        height, whose centimetre jitter the normalizer would otherwise blow up to unit variance in each of the
        rays: a teacher reading such a scan stood still after 1.2 M steps where one without it walked."""
        floor = np.zeros(self.policy_layout.size)
        if actor_obs == "policy":
            return floor
        privileged = np.zeros(self.privileged_layout.size)
        slices = self.privileged_layout.slices()
        if "height_scan" in slices:
            privileged[slices["height_scan"]] = HEIGHT_SCAN_STD_FLOOR_M
        return np.concatenate([floor, privileged])

    def mirrors(self, actor_obs: str = "policy"):
        """(actor-observation mirror, action mirror): the left-right reflections of `symmetry`, for this robot;
        actor_obs "privileged" mirrors the policy group followed by the privileged group (a teacher's input)."""
        import mujoco

        from ogi.envs.symmetry import joint_mirror, layout_mirror, privileged_mirror

        data = mujoco.MjData(self.model)
        mujoco.mj_resetDataKeyframe(self.model, data, self.rig.stand_key)
        mujoco.mj_kinematics(self.model, data)
        base = data.xmat[self.rig.base_id].reshape(3, 3)
        axes = data.xaxis[self.rig.joint_ids] @ base  # world -> base frame
        slides = self.model.jnt_type[self.rig.joint_ids] == mujoco.mjtJoint.mjJNT_SLIDE
        joints = joint_mirror(self.robot.joint_names, axes, slides.tolist())
        observation = layout_mirror(self.policy_layout, joints)
        if actor_obs != "policy":
            privileged = privileged_mirror(self.privileged_layout, self.robot.foot_sites, self.scan_offsets)
            observation = observation.then(privileged)
        return observation, joints

    def gait_phase(self) -> np.ndarray:
        """(n,) the gait clock's phase in [0, 1): it starts at 0 with each episode."""
        return gait.phase(self.episode_step, self.cfg.sim.ctrl_dt_s, self.cfg.gait.period_s)

    def gait_stance(self) -> np.ndarray:
        """(n, f) bool: which feet the gait clock wants down now; all of them while the command is (near) zero."""
        return gait.stance(self.gait_phase(), self.command, self.cfg.gait, len(self.robot.foot_sites))

    def gait_foot_height(self) -> np.ndarray:
        """(n, f) m: the foot height the gait clock asks for now: 0 in stance, a half-sine arch over the swing."""
        return gait.foot_height(self.gait_phase(), self.command, self.cfg.gait, len(self.robot.foot_sites))

    def gait_reference(self) -> np.ndarray:
        """(n, j) rad: the swing-leg offsets the clock adds to the joint targets now (zero without a clock)."""
        if not self.cfg.gait.enabled:
            return np.zeros((self.num_envs, self.robot.num_joints))
        return gait.reference_offsets(self.gait_phase(), self.command, self.cfg.gait, self.swing_offsets)

    def observe(self) -> dict[str, np.ndarray]:
        """Every simulation's observations of its current state, e.g. after a task moved objects in the scene."""
        return self._observe()

    def set_commands(self, command: np.ndarray) -> dict[str, np.ndarray]:
        """Replace every simulation's velocity command (n, 3) (vx m/s, vy m/s, yaw rate rad/s); returns the
        observations with the new command, for a judge that drives chosen commands."""
        command = np.asarray(command, dtype=np.float64)
        if command.shape != self.command.shape or not np.isfinite(command).all():
            raise ValueError(f"commands must be finite with shape {self.command.shape}, got {command.shape}")
        self.command[:] = command
        return self._observe()

    def _update_feedforward(self, ids: np.ndarray | None = None) -> None:
        # kept as a buffer (not recomputed before a step) so a restored env continues bit for bit
        if self.cfg.sim.gravity_feedforward:
            rows = slice(None) if ids is None else ids
            self.tau_ff[rows] = self.rig.gravity_torque(ids) * self.domain.motor_strength[rows, None]

    def _sample_commands(self, k: int) -> np.ndarray:
        scale = 1.0
        if self.curriculum is not None:
            scale = command_scale(self.curriculum, self.cfg.terrain.curriculum)
        return dr.sample_commands(self.cfg.commands, k, self.rng) * scale

    def _spawn_position(self, kind: np.ndarray, level: np.ndarray, yaw: np.ndarray) -> np.ndarray:
        """(k, 3) base positions near the tile centres, high enough that no foot starts in the ground."""
        xy = self.terrain.tile_origin(kind, level) + self.rng.uniform(-0.3, 0.3, (len(kind), 2))
        return self._stand_position(xy, yaw)

    def _stand_position(self, xy: np.ndarray, yaw: np.ndarray) -> np.ndarray:
        """(k, 3) base positions over xy (k, 2), high enough that no foot of the stand pose starts in the ground."""
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        feet = self.rig.stand_foot_xy[None]  # (1, f, 2)
        foot_world = np.stack([c * feet[..., 0] - s * feet[..., 1], s * feet[..., 0] + c * feet[..., 1]], axis=-1)
        points = np.concatenate([xy[:, None, :], xy[:, None, :] + foot_world], axis=1)
        ground = self.ground_height(points).max(axis=1)
        return np.column_stack([xy, ground + self.rig.stand_height_m])

    def ground_height(self, xy: np.ndarray) -> np.ndarray:
        """Ground height, m, under world points (..., 2); 0 on the flat plane."""
        if self.terrain is None:
            return np.zeros(xy.shape[:-1])
        return self.terrain.height_at(xy)

    def push_next(self, force_world: np.ndarray, torque_world: np.ndarray | None = None) -> None:
        """Push the bases during the next step only (one policy period), on top of any random push: forces (n, 3)
        N and torques (n, 3) N*m about each base's centre of mass, world frame; a zero row leaves its simulation
        alone. The privileged observation sees the force as it sees a random push's."""
        n = self.num_envs
        force = np.asarray(force_world, dtype=np.float64)
        torque = np.zeros((n, 3)) if torque_world is None else np.asarray(torque_world, dtype=np.float64)
        if force.shape != (n, 3) or torque.shape != (n, 3):
            raise ValueError(f"push_next needs forces and torques of shape ({n}, 3), got {force.shape}, {torque.shape}")
        if not (np.isfinite(force).all() and np.isfinite(torque).all()):
            raise ValueError("push_next got a non-finite force or torque")
        self._external_push = (force.copy(), torque.copy())

    # ---- held joints in motion ---------------------------------------------------------------
    def _init_held_motion(self) -> None:
        """Per simulation, the held joints' last and next targets (as actions) and the steps to the next draw.
        Its own random stream, so that a run without held motion draws exactly what it drew before."""
        cfg, n = self.cfg, self.num_envs
        if cfg.held_motion == 0:
            return
        if not self.held.any():  # checked here, not in the config: a TOML table may set held_motion on its own
            raise ConfigError("held_motion moves the held joints, but held_joints names none")
        self._held_rng = np.random.default_rng([cfg.seed, 7])
        lo, hi = np.asarray(self.robot.joint_limits).T[:, self.held]
        default = self.default_pose[self.held]
        scale = self.robot.action_scale
        # actions of the targets at the fraction of the way to each limit, inside the action clip
        self._held_low = np.maximum((cfg.held_motion * (lo - default)) / scale, -cfg.action_clip)
        self._held_high = np.minimum((cfg.held_motion * (hi - default)) / scale, cfg.action_clip)
        self._held_from = np.zeros((n, int(self.held.sum())))
        self._held_to = np.zeros_like(self._held_from)
        self._held_countdown = np.zeros(n, dtype=np.int64)
        self._held_age = np.zeros(n, dtype=np.int64)  # steps since the last draw
        self._held_move_steps = max(1, round(HELD_MOTION_MOVE_S / cfg.sim.ctrl_dt_s))

    def _held_period_steps(self, k: int) -> np.ndarray:
        period = self._held_rng.uniform(*self.cfg.held_motion_period_s, k)
        return np.maximum(1, np.round(period / self.cfg.sim.ctrl_dt_s)).astype(np.int64)

    def _held_motion_step(self) -> np.ndarray:
        """(n, held) this step's actions of the held joints: on the line from the last target to the next."""
        self._held_countdown -= 1
        due = np.flatnonzero(self._held_countdown <= 0)
        if len(due):
            self._held_from[due] = self._held_now(due)
            self._held_to[due] = self._held_rng.uniform(
                self._held_low, self._held_high, (len(due), len(self._held_low))
            )
            self._held_age[due] = 0
            self._held_countdown[due] = self._held_period_steps(len(due))
        self._held_age += 1
        return self._held_now(np.arange(self.num_envs))

    def _held_now(self, ids: np.ndarray) -> np.ndarray:
        along = np.minimum(1.0, self._held_age[ids] / self._held_move_steps)[:, None]
        return self._held_from[ids] + along * (self._held_to[ids] - self._held_from[ids])

    # ---- step --------------------------------------------------------------------------------
    def step(self, actions):
        cfg, rig, n = self.cfg, self.rig, self.num_envs
        if self._needs_reset.any():
            raise RuntimeError("step() called on envs that ended without reset(); call reset() first")
        action = np.array(actions, dtype=np.float64).reshape(n, self.robot.num_joints)
        nonfinite_action = ~np.isfinite(action).all(axis=1)
        action[nonfinite_action] = 0.0  # hold the default pose rather than feed NaN to the PD
        np.clip(action, -cfg.action_clip, cfg.action_clip, out=action)
        action[:, self.held] = 0.0 if cfg.held_motion == 0 else self._held_motion_step()
        self.last_action, self.action = self.action, action

        self.push_countdown -= 1
        pushed = self.push_countdown <= 0
        self.push_force[:] = 0.0
        if pushed.any():
            ids = np.flatnonzero(pushed)
            self.push_force[ids] = dr.sample_push_force(
                cfg.randomization, len(ids), rig.robot_mass(ids), cfg.sim.ctrl_dt_s, self.rng
            )
            self.push_countdown[ids] = dr.sample_push_delay_steps(
                cfg.randomization, len(ids), cfg.sim.ctrl_dt_s, self.rng
            )
        push_torque = None
        if self._external_push is not None:  # an adversary's or an evaluation's push, on top of the random ones
            force, push_torque = self._external_push
            self._external_push = None
            self.push_force += force
            pushed = pushed | (force != 0.0).any(axis=1) | (push_torque != 0.0).any(axis=1)
        rig.set_push(self.push_force, push_torque)
        # the clock's phase as the policy saw it when it chose this action
        targets = self.default_pose + self.robot.action_scale * action + self.gait_reference()
        delayed = self.sim.delay_substeps
        if delayed == 0:
            rig.set_targets(targets, self.tau_ff)
            failed = rig.step(cfg.sim.substeps)
        else:
            # the previous step's targets, still in ctrl, act for the first command_delay_s
            failed = rig.step(delayed)
            rig.set_targets(targets, self.tau_ff)
            if delayed < cfg.sim.substeps:
                failed |= rig.step(cfg.sim.substeps - delayed)
        self.episode_step += 1
        if pushed.any():
            rig.set_push(np.zeros((n, 3)))

        # ---- read the new state once
        qpos_base = rig.base_pose()
        quat = qpos_base[:, 3:7]
        gravity_body = projected_gravity(quat)
        lin_vel_body = quat_rotate_inverse(quat, rig.base_lin_vel_world())
        ang_vel_body = rig.base_ang_vel_body()
        joint_pos, joint_vel = rig.joint_pos(), rig.joint_vel()
        foot_pos = rig.foot_pos()
        foot_contact = rig.foot_force() > CONTACT_FORCE_THRESHOLD_N
        torque = rig.joint_torque()
        dt = cfg.sim.ctrl_dt_s

        # feet: air time ends at touchdown; contact filtered over two steps against sensor flicker
        contact_filtered = foot_contact | self.last_foot_contact
        first_contact = (self.foot_air_time > 0.0) & contact_filtered
        self.foot_air_time += dt
        air_at_touchdown = self.foot_air_time * first_contact
        self.foot_air_time *= ~contact_filtered
        foot_height = foot_pos[:, :, 2] - self.ground_height(foot_pos[:, :, :2])
        swing_peak = np.maximum(self.foot_swing_peak, foot_height)
        peak_at_touchdown = swing_peak * first_contact
        self.foot_swing_peak = np.where(contact_filtered, 0.0, swing_peak)
        self.last_foot_contact = foot_contact
        foot_vel_xy = (foot_pos[:, :, :2] - self.last_foot_pos[:, :, :2]) / dt
        self.last_foot_pos = foot_pos

        # ---- terminations
        bad = rig.bad_warning_count()
        diverged = (
            (bad > self.bad_warnings)
            | failed
            | ~np.isfinite(rig.qpos()).all(axis=1)
            | ~np.isfinite(rig.qvel()).all(axis=1)
            | (np.abs(joint_vel).max(axis=1) > cfg.termination.max_joint_vel_radps)
        )
        self.bad_warnings = bad
        base_height = qpos_base[:, 2] - self.ground_height(qpos_base[:, :2])
        tilted = gravity_body[:, 2] > -np.cos(cfg.termination.max_tilt_rad)
        too_low = base_height < cfg.termination.min_base_height_fraction * self.robot.nominal_base_height
        fell = (rig.termination_contact() | tilted | too_low) & ~diverged
        terminated = fell | diverged
        truncated = (self.episode_step >= cfg.max_episode_steps) & ~terminated

        signals = Signals(
            command=self.command,
            lin_vel_body=lin_vel_body,
            ang_vel_body=ang_vel_body,
            projected_gravity=gravity_body,
            base_height=base_height,
            base_height_target=self.robot.nominal_base_height,
            joint_pos_rel=joint_pos - self.default_pose,
            joint_pos=joint_pos,
            joint_vel=joint_vel,
            joint_acc=(joint_vel - self.last_joint_vel) / dt,
            torque=torque,
            action=self.action,
            last_action=self.last_action,
            soft_joint_low=self.soft_joint_low,
            soft_joint_high=self.soft_joint_high,
            pose_weights=self.pose_weights,
            foot_contact=foot_contact,
            foot_first_contact=first_contact,
            foot_air_time_s=air_at_touchdown,
            foot_vel_xy=foot_vel_xy,
            foot_height=foot_height,
            foot_swing_peak=peak_at_touchdown,
            joint_power=torque * joint_vel,
            undesired_contacts=rig.undesired_contact_count(),
            fell=fell,
            gait_pairs=self.gait_pairs,
            gait_stance=self.gait_stance() if cfg.gait.enabled else None,
            gait_foot_height=self.gait_foot_height() if cfg.gait.enabled else None,
        )
        with np.errstate(all="ignore"):
            reward, terms = self.rewards(signals)
        if diverged.any():
            reward[diverged] = 0.0
            for value in terms.values():
                value[diverged] = 0.0
            self.diverged_total += int(diverged.sum())
        self.last_joint_vel = joint_vel
        self.episode_return += reward

        resample = (self.episode_step % max(1, round(cfg.commands.resample_s / dt))) == 0
        if resample.any():
            self.command[resample] = self._sample_commands(int(resample.sum()))
        heading = sensing.yaw_of(quat)
        cos, sin = np.cos(heading), np.sin(heading)
        vx, vy = self.command[:, 0], self.command[:, 1]
        self.commanded_displacement += np.column_stack([cos * vx - sin * vy, sin * vx + cos * vy]) * dt

        info: dict = dict(terms)
        info["fell"] = fell
        info["diverged"] = diverged
        info["nonfinite_action"] = nonfinite_action
        info["pushed"] = pushed
        obs = self._observe(
            proprio=(lin_vel_body, ang_vel_body, gravity_body, joint_pos, joint_vel, foot_contact, base_height)
        )
        done = terminated | truncated
        if done.any():
            ids = np.flatnonzero(done)
            info["episode_return"] = self.episode_return.copy()
            info["episode_length"] = self.episode_step.copy()
            info["_episode"] = done
            if self.curriculum is not None:
                distance = np.linalg.norm(rig.base_pose()[ids, :2] - self.spawn_xy[ids], axis=1)
                commanded = np.linalg.norm(self.commanded_displacement[ids], axis=1)
                success = episode_success(fell[ids], distance, commanded, cfg.terrain.curriculum)
                info["terrain_success"] = np.zeros(n, dtype=bool)
                info["terrain_success"][ids] = success
                info["terrain_level"] = self.curriculum.level.copy()
                self.curriculum = update_curriculum(self.curriculum, ids, success, cfg.terrain.curriculum, self.rng)
            if self.autoreset:
                info["final_obs"] = {key: value.copy() for key, value in obs.items()}
                info["_final_obs"] = done
                # the ended envs' rows were already computed (final_obs); the rest keep going
                self._update_feedforward(np.flatnonzero(~done))
                self._reset_envs(ids)
                fresh = self._observe(ids)
                for key in obs:
                    obs[key][ids] = fresh[key]
                return obs, reward, terminated, truncated, info
            self._needs_reset[ids] = True
        self._update_feedforward()
        return obs, reward, terminated, truncated, info

    def _observe(self, ids: np.ndarray | None = None, proprio: tuple | None = None) -> dict[str, np.ndarray]:
        """Both observation groups for simulations `ids` (all if None), rows in that order.

        proprio: the step's already-read (lin_vel_body, ang_vel_body, gravity_body, joint_pos, joint_vel,
        foot_contact, base_height) for all simulations, so they are not read twice.
        """
        rig = self.rig
        rows = slice(None) if ids is None else ids
        base = rig.base_pose()[rows]
        if proprio is None:
            quat = base[:, 3:7]
            gravity_body = projected_gravity(quat)
            lin_vel_body = quat_rotate_inverse(quat, rig.base_lin_vel_world()[rows])
            ang_vel_body = rig.base_ang_vel_body()[rows]
            joint_pos, joint_vel = rig.joint_pos()[rows], rig.joint_vel()[rows]
            foot_contact = rig.foot_force()[rows] > CONTACT_FORCE_THRESHOLD_N
            base_height = base[:, 2] - self.ground_height(base[:, :2])
        else:
            lin_vel_body, ang_vel_body, gravity_body, joint_pos, joint_vel, foot_contact, base_height = proprio
        with np.errstate(all="ignore"):
            depth = scan = None
            if self.depth_directions is not None:
                depth = sensing.depth_image(
                    base[:, :3],
                    base[:, 3:7],
                    self.cfg.depth_camera,
                    self.depth_directions,
                    self.ground_height,
                    self._depth_step_m,
                    self.rng,
                )
            if self.scan_offsets is not None:
                scan = sensing.height_scan(
                    self.batch, base[:, :3], base[:, 3:7], self.cfg.height_scan, self.scan_offsets, ids=ids
                )
            policy = policy_observation(
                ang_vel_body,
                gravity_body,
                self.command[rows],
                joint_pos - self.default_pose,
                joint_vel,
                self.action[rows],
                self.cfg.noise,
                self.rng,
                depth=depth,
                gait_phase=self.gait_phase()[rows] if self.cfg.gait.enabled else None,
            )
            weight = rig.robot_mass()[rows] * 9.81
            privileged = privileged_observation(
                lin_vel_body,
                base_height,
                self.domain.as_features()[rows],
                foot_contact,
                self.push_force[rows] / weight[:, None],
                height_scan=scan,
            )
        # a diverged simulation's garbage must not reach a learner as NaN or inf
        np.nan_to_num(policy, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        np.nan_to_num(privileged, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return {"policy": policy, "privileged": privileged}

    # ---- exact save and restore -----------------------------------------------------------------
    _BUFFERS = (
        "command",
        "action",
        "last_action",
        "last_joint_vel",
        "episode_step",
        "episode_return",
        "push_countdown",
        "push_force",
        "foot_air_time",
        "foot_swing_peak",
        "last_foot_contact",
        "last_foot_pos",
        "spawn_xy",
        "commanded_displacement",
        "tau_ff",
    )

    def get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Everything needed to continue bit for bit: (arrays, JSON-able metadata).

        Arrays: every simulation's integration state, the per-simulation model fields, the task's buffers and
        domain parameters. Metadata: the RNG state, the curriculum, counters.
        """
        arrays = {"sim/state": self.batch.state.copy()}
        for name in mjbatch.MODEL_FIELDS:
            values = self.batch.expanded(name)
            if values is not None:
                arrays[f"model/{name}"] = np.array(values)
        for name in self._BUFFERS:
            arrays[f"task/{name}"] = np.array(getattr(self, name))
        for name in self.domain.__dataclass_fields__:
            arrays[f"domain/{name}"] = np.array(getattr(self.domain, name))
        meta = {
            "rng": self.rng.bit_generator.state,
            "curriculum": self.curriculum.to_dict() if self.curriculum is not None else None,
            "diverged_total": self.diverged_total,
            "needs_reset": self._needs_reset.tolist(),
        }
        return arrays, meta

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Restore what `get_state` saved, into an env built from the same config."""
        state = arrays["sim/state"]
        if state.shape != self.batch.state.shape:
            raise ValueError(f"saved simulation state has shape {state.shape}, this env {self.batch.state.shape}")
        for key, values in arrays.items():
            if key.startswith("model/"):
                self.batch.expand(key.removeprefix("model/"))[:] = values
        if any(key.startswith("model/") for key in arrays):
            self.batch.set_const()
        self.batch.state[:] = state
        for name in self._BUFFERS:
            if name == "commanded_displacement" and f"task/{name}" not in arrays:
                # a state saved before the displacement was tracked: its episodes count it from here
                self.commanded_displacement = np.zeros((self.num_envs, 2))
                continue
            setattr(self, name, np.array(arrays[f"task/{name}"]))
        self.domain = dr.DomainParams(**{n: np.array(arrays[f"domain/{n}"]) for n in self.domain.__dataclass_fields__})
        self.rig._added_mass[:] = self.domain.added_base_mass_kg if self.rig.randomize else 0.0
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = meta["rng"]
        if meta["curriculum"] is not None:
            from ogi.envs.curriculum import CurriculumState

            self.curriculum = CurriculumState.from_dict(meta["curriculum"])
        self.diverged_total = int(meta["diverged_total"])
        self._needs_reset = np.array(meta["needs_reset"], dtype=bool)
        # warning counters restart with the batch; divergence is judged against the current count
        self.bad_warnings = self.rig.bad_warning_count()

    def curriculum_summary(self) -> dict:
        """Mean terrain level overall and per kind, share at the top level, command level; {} without terrain."""
        if self.curriculum is None:
            return {}
        return curriculum_summary(self.curriculum, self.terrain.num_kinds)

    def close(self, **kwargs) -> None:
        self.batch = None


HEIGHT_SCAN_STD_FLOOR_M = 0.1  # a terrain feature smaller than this is not what the scan is for


def gait_pairs(foot_sites: tuple[str, ...]) -> np.ndarray:
    """(2, 2) foot indices of the two groups that alternate in the gait the `trot` term asks for: a quadruped's
    diagonal pairs (front-right with rear-left, front-left with rear-right, from the sites' leg prefixes FR, FL,
    RR, RL), or each foot of a biped on its own ([[0, 0], [1, 1]]: one foot down while the other swings);
    (0, 2) for other robots."""
    if len(foot_sites) == 2:
        return np.array([[0, 0], [1, 1]])
    legs = {site[:2].upper(): i for i, site in enumerate(foot_sites)}
    if len(foot_sites) != 4 or set(legs) != {"FR", "FL", "RR", "RL"}:
        return np.zeros((0, 2), dtype=np.int64)
    return np.array([[legs["FR"], legs["RL"]], [legs["FL"], legs["RR"]]])


def calibrated_settings(cfg: WalkConfig, profile: DynamicsProfile | None) -> tuple[SimConfig, RandomizationConfig]:
    """(sim, randomization) of `cfg` with a dynamics profile's command delay and motor strength (as given
    without a profile); a delay that is not below the control period, or one set twice, is a `ConfigError`."""
    if profile is None:
        return cfg.sim, cfg.randomization
    ctrl_dt_s = cfg.sim.ctrl_dt_s
    if cfg.sim.command_delay_s:
        raise ConfigError(
            f"sim.command_delay_s = {cfg.sim.command_delay_s!r} and the dynamics profile {profile.source} "
            f"(motors.delay_ms = {profile.delay_ms!r}) both set the command delay: leave sim.command_delay_s at 0"
        )
    if profile.delay_s >= ctrl_dt_s:
        raise ConfigError(
            f"{profile.source}: motors.delay_ms = {profile.delay_ms!r} must be below the control period "
            f"sim.ctrl_dt_s = {ctrl_dt_s!r} s ({ctrl_dt_s * 1e3:g} ms): a command must act within the step that sent it"
        )
    low, high = cfg.randomization.motor_strength
    try:
        randomization = dataclasses.replace(
            cfg.randomization, motor_strength=(low * profile.strength, high * profile.strength)
        )
    except ConfigError as err:
        raise ConfigError(f"{profile.source}: motors.strength = {profile.strength!r} scales {err}") from None
    return dataclasses.replace(cfg.sim, command_delay_s=profile.delay_s), randomization


def _assign_rows(current: dr.DomainParams, ids: np.ndarray, new: dr.DomainParams) -> dr.DomainParams:
    values = {}
    for name in current.__dataclass_fields__:
        array = getattr(current, name).copy()
        array[ids] = getattr(new, name)
        values[name] = array
    return dr.DomainParams(**values)

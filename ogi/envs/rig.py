"""`Rig`: a robot's named MuJoCo objects resolved once, and typed access to a batch of them.

Task code reads and writes the simulation only through a Rig, by meaning (joint positions in action
order, foot positions, base pose), never by literal ids or qpos slices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from ogi.controllers.gravity import gravity_compensation_torque, subtree_mask
from ogi.envs.config import SimConfig
from ogi.envs.randomization import DomainParams
from ogi.envs.scene import GROUND_GEOM, build_scene_spec, compile_scene
from ogi.robots import STAND_KEY, RobotSpec, actuator_names

if TYPE_CHECKING:
    from ogi.envs.terrain_grid import TerrainGrid
    from ogi.robots.dynamics import DynamicsProfile

# the IMU sensors serve the robot side (ogi.deploy.sim_robot); task code reads base motion from the free joint.
# MuJoCo computes every sensor at every physics step, and the accelerometer alone makes it run the
# post-constraint dynamics pass: dropped here, physics runs ~10-15% faster with the same trajectories
UNREAD_SENSORS = ("imu_acc", "imu_gyro", "imu_quat")

_BAD_STATE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
    mujoco.mjtWarning.mjWARN_BADCTRL,
)


class Rig:
    def __init__(
        self,
        robot: RobotSpec,
        sim: SimConfig,
        *,
        randomize: bool,
        terrain: TerrainGrid | None = None,
        add_to_scene: Callable[[mujoco.MjSpec], None] | None = None,
        dynamics: DynamicsProfile | None = None,
    ):
        """`add_to_scene` edits the scene's spec before it compiles (e.g. an arena's static objects).

        `dynamics`: a calibrated robot's joint dynamics and base mass offset, written into the model before anything
        reads it (the nominal masses below include the offset). Its motor strength scales the model's PD gains and
        torque limits only without randomization; with it, `apply_domain` writes the strength it is given.
        """
        self.robot = robot
        self.sim = sim
        self.randomize = randomize
        self.terrain = terrain
        self.spec = build_scene_spec(robot, sim, terrain)
        for sensor in [s for s in self.spec.sensors if s.name in UNREAD_SENSORS]:
            self.spec.delete(sensor)
        if add_to_scene is not None:
            add_to_scene(self.spec)
        self.model = m = compile_scene(self.spec, robot)
        if dynamics is not None:
            dynamics.apply_to_model(m, robot)
        self.joint_ids = np.array([m.joint(j).id for j in robot.joint_names])
        self.qpos_adr = m.jnt_qposadr[self.joint_ids]
        self.dof_adr = m.jnt_dofadr[self.joint_ids]
        pd_names, ff_names = actuator_names(robot)
        self.pd_ids = np.array([m.actuator(a).id for a in pd_names])
        self.ff_ids = np.array([m.actuator(a).id for a in ff_names])
        if dynamics is not None and not randomize:
            # no reset rewrites these; position actuator: force = kp ctrl - kp q - kd qd
            m.actuator_gainprm[self.pd_ids, 0] *= dynamics.strength
            m.actuator_biasprm[self.pd_ids, 1:3] *= dynamics.strength
            m.jnt_actfrcrange[self.joint_ids] *= dynamics.strength
        self.foot_site_ids = np.array([m.site(s).id for s in robot.foot_sites])
        self.touch_adr = np.array([m.sensor_adr[m.sensor(f"{s}_touch").id] for s in robot.foot_sites])
        self.termination_adr = np.array(
            [m.sensor_adr[m.sensor(f"{b}_contact").id] for b in robot.termination_contact_bodies], dtype=np.int64
        )
        self.undesired_adr = np.array(
            [m.sensor_adr[m.sensor(f"{b}_contact").id] for b in robot.undesired_contact_bodies], dtype=np.int64
        )
        self.base_id = m.body(robot.base_body).id
        free = next(
            j
            for j in range(m.body_jntadr[self.base_id], m.body_jntadr[self.base_id] + m.body_jntnum[self.base_id])
            if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE
        )
        self.base_qpos_adr = int(m.jnt_qposadr[free])
        self.base_dof_adr = int(m.jnt_dofadr[free])
        self.stand_key = m.key(STAND_KEY).id
        self.kp = np.asarray(robot.kp)
        self.kd = np.asarray(robot.kd)
        self.torque_limit = np.asarray(robot.torque_limit)
        self.joint_low, self.joint_high = np.asarray(robot.joint_limits).T
        self.gravity_mask = subtree_mask(m, self.joint_ids).astype(np.float64)
        self.nominal_body_mass = m.body_mass.copy()
        self.nominal_body_ipos = m.body_ipos.copy()
        self.nominal_robot_mass = float(m.body_subtreemass[self.base_id])
        # the geoms of the robot's tree (not those of static bodies a scene may add beside it)
        self.robot_geoms = np.flatnonzero(m.body_rootid[m.geom_bodyid] == m.body_rootid[self.base_id])
        self.ground_geom = m.geom(GROUND_GEOM).id
        self._bad_warning_idx = np.array([int(w) for w in _BAD_STATE_WARNINGS])
        self._added_mass = None
        stand_qpos = m.key_qpos[self.stand_key]
        self.stand_height_m = float(stand_qpos[self.base_qpos_adr + 2])
        self.stand_joint_pos = stand_qpos[self.qpos_adr].copy()
        data = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, data, self.stand_key)
        mujoco.mj_kinematics(m, data)
        # feet relative to the base in the stand pose (heading frame): where spawning must find ground
        self.stand_foot_xy = (
            data.site_xpos[self.foot_site_ids, :2] - stand_qpos[self.base_qpos_adr : self.base_qpos_adr + 2]
        )

    def bind(self, batch) -> None:
        """Bind the batch's fields this rig reads and writes."""
        self.batch = batch
        self._qpos, self._qvel = batch.bind("qpos"), batch.bind("qvel")
        self._ctrl, self._xfrc = batch.bind("ctrl"), batch.bind("xfrc_applied")
        self._site_xpos, self._sensordata = batch.bind("site_xpos"), batch.bind("sensordata")
        self._qfrc_actuator = batch.bind("qfrc_actuator")
        self._xanchor, self._xaxis, self._xipos = batch.bind("xanchor"), batch.bind("xaxis"), batch.bind("xipos")
        self._added_mass = np.zeros(batch.nsim)
        if self.randomize:
            self._body_mass = batch.expand("body_mass")
            self._body_ipos = batch.expand("body_ipos")
            self._gainprm = batch.expand("actuator_gainprm")
            self._biasprm = batch.expand("actuator_biasprm")
            self._actfrcrange = batch.expand("jnt_actfrcrange")
        if self.randomize or self.terrain is not None:
            self._friction = batch.expand("geom_friction")
        if self.terrain is not None:
            self._solref = batch.expand("geom_solref")
            self._solimp = batch.expand("geom_solimp")

    # ---- writes ------------------------------------------------------------------------------
    def reset_to_stand(self, ids: np.ndarray) -> None:
        self.batch.reset(ids, keyframe=self.stand_key, stage=mujoco.mjtStage.mjSTAGE_NONE.value)

    def apply_domain(self, ids: np.ndarray, params: DomainParams) -> None:
        """Write per-simulation physical parameters (a no-op for a rig built without randomization)."""
        self._added_mass[ids] = params.added_base_mass_kg if self.randomize else 0.0
        if self.randomize or self.terrain is not None:
            # MuJoCo takes the larger friction of two geoms in contact, so robot and ground get the same
            self._friction[np.ix_(ids, np.r_[self.robot_geoms, self.ground_geom], [0])] = params.friction[:, None, None]
        if not self.randomize:
            return
        self._body_mass[ids, self.base_id] = self.nominal_body_mass[self.base_id] + params.added_base_mass_kg
        self._body_ipos[ids, self.base_id] = self.nominal_body_ipos[self.base_id] + params.com_offset_m
        kp = self.kp * (params.motor_strength * params.kp_scale)[:, None]
        kd = self.kd * (params.motor_strength * params.kd_scale)[:, None]
        # position actuator: force = kp ctrl - kp q - kd qd
        self._gainprm[np.ix_(ids, self.pd_ids, [0])] = kp[:, :, None]
        self._biasprm[np.ix_(ids, self.pd_ids, [1])] = -kp[:, :, None]
        self._biasprm[np.ix_(ids, self.pd_ids, [2])] = -kd[:, :, None]
        limit = self.torque_limit * params.motor_strength[:, None]
        self._actfrcrange[np.ix_(ids, self.joint_ids)] = np.stack([-limit, limit], axis=-1)
        self.batch.set_const(ids)

    def apply_ground(self, ids: np.ndarray, solref: np.ndarray, solimp: np.ndarray) -> None:
        """Per-simulation softness of the ground geom: solref (k, 2), solimp (k, 5)."""
        self._solref[ids, self.ground_geom] = solref
        self._solimp[ids, self.ground_geom] = solimp

    def set_initial_state(
        self, ids: np.ndarray, joint_pos: np.ndarray, yaw_rad: np.ndarray, base_xyz: np.ndarray | None = None
    ) -> None:
        """Joint angles (k, j) clipped to limits, a base heading and position; then recompute derived fields."""
        rows = self._qpos[ids]
        rows[:, self.qpos_adr] = np.clip(joint_pos, self.joint_low, self.joint_high)
        a = self.base_qpos_adr
        if base_xyz is not None:
            rows[:, a : a + 3] = base_xyz
        rows[:, a + 3 : a + 7] = np.column_stack(
            [np.cos(yaw_rad / 2), np.zeros_like(yaw_rad), np.zeros_like(yaw_rad), np.sin(yaw_rad / 2)]
        )
        self._qpos[ids] = rows
        self._xfrc[ids] = 0.0
        self.batch.forward(ids)

    def set_push(self, force_world: np.ndarray, torque_world: np.ndarray | None = None) -> None:
        """Forces (n, 3) N, and torques (n, 3) N*m (none if None), on each base, world frame, until set again."""
        self._xfrc[:, self.base_id, :3] = force_world
        self._xfrc[:, self.base_id, 3:6] = 0.0 if torque_world is None else torque_world

    def set_targets(self, q_des: np.ndarray, tau_ff: np.ndarray, ids: np.ndarray | None = None) -> None:
        """PD targets (k, j) rad and feed-forward torques (k, j) N*m of simulations `ids` (all n if None), held
        until set again."""
        if ids is None:
            self._ctrl[:, self.pd_ids] = q_des
            self._ctrl[:, self.ff_ids] = tau_ff
            return
        self._ctrl[np.ix_(ids, self.pd_ids)] = q_des
        self._ctrl[np.ix_(ids, self.ff_ids)] = tau_ff

    def pd_gains(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(kp, kd), each (k, j), of the PD actuators of simulations `ids` as the physics applies them."""
        gain, bias = self.batch.expanded("actuator_gainprm"), self.batch.expanded("actuator_biasprm")
        if gain is None:
            gain = np.broadcast_to(self.model.actuator_gainprm, (self.batch.nsim, *self.model.actuator_gainprm.shape))
        if bias is None:
            bias = np.broadcast_to(self.model.actuator_biasprm, (self.batch.nsim, *self.model.actuator_biasprm.shape))
        return gain[np.ix_(ids, self.pd_ids, [0])][..., 0].copy(), -bias[np.ix_(ids, self.pd_ids, [2])][..., 0]

    def set_pd_gains(self, ids: np.ndarray, kp: np.ndarray, kd: np.ndarray) -> None:
        """PD gains (k, j) N*m/rad and N*m*s/rad of simulations `ids` until changed again (a fallback controller's).

        A reset writes the nominal gains back only in a randomized rig (`apply_domain`); otherwise the caller does.
        """
        gain, bias = self.batch.expand("actuator_gainprm"), self.batch.expand("actuator_biasprm")
        # position actuator: force = kp ctrl - kp q - kd qd
        gain[np.ix_(ids, self.pd_ids, [0])] = np.asarray(kp)[:, :, None]
        bias[np.ix_(ids, self.pd_ids, [1])] = -np.asarray(kp)[:, :, None]
        bias[np.ix_(ids, self.pd_ids, [2])] = -np.asarray(kd)[:, :, None]

    def step(self, substeps: int) -> np.ndarray:
        """Advance every simulation by `substeps` physics steps; (n,) bool of simulations MuJoCo failed."""
        failed = np.zeros(self.batch.nsim, dtype=bool)
        try:
            # derived fields (sites, sensors, kinematics) then describe the state one physics step
            # before qpos/qvel, as after mj_step; recomputing them would cost 1/substeps more physics
            self.batch.step(nstep=substeps, stage=mujoco.mjtStage.mjSTAGE_NONE.value)
        except mujoco.batch.SimulationError as err:
            failed[err.ids] = True
        return failed

    # ---- reads -------------------------------------------------------------------------------
    def qpos(self) -> np.ndarray:
        return self._qpos

    def qvel(self) -> np.ndarray:
        return self._qvel

    def base_pose(self) -> np.ndarray:
        """(n, 7) position m and quaternion (w first) of the base."""
        return self._qpos[:, self.base_qpos_adr : self.base_qpos_adr + 7]

    def base_lin_vel_world(self) -> np.ndarray:
        return self._qvel[:, self.base_dof_adr : self.base_dof_adr + 3]

    def base_ang_vel_body(self) -> np.ndarray:
        # a free joint's angular velocity is expressed in the body frame
        return self._qvel[:, self.base_dof_adr + 3 : self.base_dof_adr + 6]

    def joint_pos(self) -> np.ndarray:
        return self._qpos[:, self.qpos_adr]

    def joint_vel(self) -> np.ndarray:
        return self._qvel[:, self.dof_adr]

    def joint_torque(self) -> np.ndarray:
        """(n, j) N*m of the last physics step: PD plus feed-forward, clamped."""
        return self._qfrc_actuator[:, self.dof_adr]

    def foot_pos(self) -> np.ndarray:
        return self._site_xpos[:, self.foot_site_ids]

    def site_pos(self, site_ids: np.ndarray) -> np.ndarray:
        """(n, k, 3) world positions of sites `site_ids` (e.g. a hand's grasp point)."""
        return self._site_xpos[:, site_ids]

    def foot_force(self) -> np.ndarray:
        return self._sensordata[:, self.touch_adr]

    def termination_contact(self) -> np.ndarray:
        if len(self.termination_adr) == 0:
            return np.zeros(self.batch.nsim, dtype=bool)
        return (self._sensordata[:, self.termination_adr] > 0).any(axis=1)

    def undesired_contact_count(self) -> np.ndarray:
        if len(self.undesired_adr) == 0:
            return np.zeros(self.batch.nsim)
        return (self._sensordata[:, self.undesired_adr] > 0).sum(axis=1)

    def bad_warning_count(self, ids: np.ndarray | None = None) -> np.ndarray:
        counts = self.batch.warning[:, self._bad_warning_idx, 1].sum(axis=1).astype(np.int64)
        return counts if ids is None else counts[ids]

    def robot_mass(self, ids: np.ndarray | None = None) -> np.ndarray:
        mass = self.nominal_robot_mass + self._added_mass
        return mass if ids is None else mass[ids]

    def gravity_torque(self, ids: np.ndarray | None = None) -> np.ndarray:
        """(k, j) N*m holding each joint's carried bodies against gravity, for simulations `ids` (all if None)."""
        rows = slice(None) if ids is None else ids
        mass = self._body_mass[rows] if self.randomize else self.model.body_mass
        return gravity_compensation_torque(
            self._xaxis[rows][:, self.joint_ids],
            self._xanchor[rows][:, self.joint_ids],
            self._xipos[rows],
            mass,
            self.gravity_mask,
            self.model.opt.gravity,
        )

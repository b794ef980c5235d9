"""`SupervisedWalk`: the walk env with one safety supervisor per simulation between the policy and the PD.

Each step the supervisor of every simulation judges the signals the robot measured (the `policy` observation
group: projected gravity, base angular velocity, joint velocities) and, optionally, a fall predictor's
probability. Simulations in a fallback mode get the fallback controller's targets as their action and its gains
on their PD actuators, the same law the deployment runtime feeds its 1 kHz loop; the gravity feed-forward stays
on. A fall is still the env's own event (termination contact, tilt or low base): a controlled crouch that keeps
the base up is not one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ogi.controllers.fallback import ControlMode, FallbackConfig, fallback_command
from ogi.controllers.supervisor import SafetySupervisor, SupervisorConfig
from ogi.envs.observations import ANG_VEL_SCALE, JOINT_VEL_SCALE
from ogi.envs.walk import WalkVecEnv


class SupervisedWalk:
    """Wraps a `WalkVecEnv`; `step` takes the policy's actions and per-simulation fall probabilities.

    rearm: hand the joints back to the policy once a supervisor's re-arm condition holds (else a tripped
    simulation stays in its fallback mode until its episode ends).
    step_fn: what steps the simulations (default `env.step`, which needs autoreset on); a layer that owns the walk
    env and restarts its simulations itself (the arena of the hierarchy) passes its own step and calls
    `restart(ids)` when it starts simulations afresh.
    """

    def __init__(
        self,
        env: WalkVecEnv,
        supervisor: SupervisorConfig,
        fallback: FallbackConfig,
        *,
        rearm: bool = False,
        step_fn: Callable[[np.ndarray], tuple] | None = None,
    ):
        if step_fn is None and not env.autoreset:
            raise ValueError("SupervisedWalk needs an env with autoreset=True, or a step_fn that restarts simulations")
        self.env = env
        self._step_fn = step_fn  # None: the env's own step, looked up at each step (a recorder may wrap it)
        self._own_clock = step_fn is not None
        self.fallback = fallback
        self.rearm = rearm
        n, nj = env.num_envs, env.robot.num_joints
        self.supervisors = [SafetySupervisor(supervisor, nj) for _ in range(n)]
        self.q_at_switch = np.zeros((n, nj))
        self.nominal_kp = np.zeros((n, nj))
        self.nominal_kd = np.zeros((n, nj))
        self.modes = np.full(n, ControlMode.POLICY.value, dtype=object)
        slices = env.policy_layout.slices()
        self._gravity, self._ang_vel, self._joint_vel = (
            slices["projected_gravity"],
            slices["base_ang_vel"],
            slices["joint_vel"],
        )
        self._obs: dict[str, np.ndarray] | None = None
        # with a step_fn the simulations step on past the walk env's own episode ends: the supervisors keep their
        # own clock, from each simulation's restart
        self._steps = np.zeros(n, dtype=np.int64)

    def reset(self, *, seed: int | None = None):
        obs, info = self.env.reset(seed=seed)
        self.restart(np.arange(self.env.num_envs), obs)
        return obs, info

    def restart(self, ids: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        """Simulations `ids` started afresh (by the caller): their supervisors back in POLICY with nominal gains;
        `obs` are every simulation's observations now."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        for i in ids:
            self.supervisors[i].reset()
        self._restore_gains(ids)
        self._steps[ids] = 0
        self._obs = obs

    def _restore_gains(self, ids: np.ndarray) -> None:
        rig = self.env.rig
        if not rig.randomize:
            rig.set_pd_gains(ids, np.tile(rig.kp, (len(ids), 1)), np.tile(rig.kd, (len(ids), 1)))
        # a randomized rig wrote its sampled gains at the reset; fallback gains scale with them
        self.nominal_kp[ids], self.nominal_kd[ids] = rig.pd_gains(ids)
        self.modes[ids] = ControlMode.POLICY.value

    def step(
        self,
        actions: np.ndarray,
        fall_probability: np.ndarray | None = None,
        *,
        obs: dict[str, np.ndarray] | None = None,
    ):
        """The env's step with fallback actions where a supervisor tripped; info adds `mode` (n,), `tripped` and
        `rearmed` (n,) bool. `obs`: the observations the policy acted on, when the caller changed them since the
        last step (e.g. a new command); the supervisor reads the measured signals in them."""
        if obs is not None:
            self._obs = obs
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        env, rig = self.env, self.env.rig
        n = env.num_envs
        policy = self._obs["policy"]
        gravity = policy[:, self._gravity]
        ang_vel = policy[:, self._ang_vel] / ANG_VEL_SCALE
        joint_vel = policy[:, self._joint_vel] / JOINT_VEL_SCALE
        own_clock = self._own_clock
        time_s = (self._steps if own_clock else env.episode_step) * env.cfg.sim.ctrl_dt_s
        actions = np.array(actions, dtype=np.float64).reshape(n, -1)
        tripped = np.zeros(n, dtype=bool)
        rearmed = np.zeros(n, dtype=bool)
        joint_pos = rig.joint_pos()
        for i, sup in enumerate(self.supervisors):
            before = sup.mode
            mode = sup.check(
                float(time_s[i]),
                gravity_body=gravity[i],
                ang_vel_body=ang_vel[i],
                joint_vel=joint_vel[i],
                action=actions[i],
                # the predictor judges the policy's own trajectory: while a fallback drives, it is not consulted
                fall_probability=None
                if fall_probability is None or before is not ControlMode.POLICY
                else float(fall_probability[i]),
            )
            if before is ControlMode.POLICY and mode is not ControlMode.POLICY:
                tripped[i] = True
                self.q_at_switch[i] = joint_pos[i]
            elif self.rearm and mode is not ControlMode.POLICY and sup.rearm(float(time_s[i])):
                rearmed[i] = True
            self.modes[i] = sup.mode.value
        if rearmed.any():
            ids = np.flatnonzero(rearmed)
            rig.set_pd_gains(ids, self.nominal_kp[ids], self.nominal_kd[ids])
        for mode in (ControlMode.CROUCH, ControlMode.DAMPING):
            ids = np.flatnonzero(self.modes == mode.value)
            if len(ids) == 0:
                continue
            t_in_mode = np.array([self.supervisors[i].time_in_mode(float(time_s[i])) for i in ids])
            q_des, kp, kd = fallback_command(
                mode,
                env.robot,
                self.fallback,
                q=joint_pos[ids],
                q_at_switch=self.q_at_switch[ids],
                t_in_mode_s=t_in_mode,
            )
            # the robot's motors as randomized: fallback gains are scales of the nominal ones
            strength_kp = self.nominal_kp[ids] / rig.kp
            strength_kd = self.nominal_kd[ids] / np.where(rig.kd > 0, rig.kd, 1.0)
            rig.set_pd_gains(ids, kp * strength_kp, kd * strength_kd)
            actions[ids] = (q_des - env.default_pose) / env.robot.action_scale
        step = self.env.step if self._step_fn is None else self._step_fn
        obs, reward, terminated, truncated, info = step(actions)
        info["mode"] = self.modes.copy()
        info["rearmed"] = rearmed  # handed back this step: a caller's fall-predictor window starts over

        info["tripped"] = tripped
        self._steps += 1
        # an autoreset env started the ended simulations afresh; with a step_fn they step on (the caller restarts)
        done = np.zeros(n, dtype=bool) if own_clock else terminated | truncated
        if done.any():
            ids = np.flatnonzero(done)
            for i in ids:
                self.supervisors[i].reset()

            self._restore_gains(ids)
        self._obs = obs
        return obs, reward, terminated, truncated, info

"""`SafetySupervisor`: the state machine that takes the joints away from the policy.

POLICY -> CROUCH or DAMPING when a checked signal leaves its limit, the fall predictor fires, the action is
not finite, or an external cause trips it (stale state, exception, bridge loss, loop overrun). It never
returns to POLICY by itself: `rearm` does, and only after the robot has been stable (every checked signal
within its limit) for `rearm_stable_s`. Every switch is kept as a `SafetyEvent` for recordings and plots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ogi.controllers.fallback import ControlMode
from ogi.validation import ConfigError, check_range

# causes the supervisor finds itself; external ones are free text
CAUSES = ("tilt", "ang_vel", "joint_vel", "non_finite_action", "non_finite_state", "fall_predicted")
REARM_CAUSE = "rearm"


@dataclass(frozen=True)
class SafetyEvent:
    time_s: float
    from_mode: str
    to_mode: str
    cause: str


@dataclass(frozen=True, kw_only=True)
class SupervisorConfig:
    """Limits, in the body frame, beyond which the policy is switched off, and where it goes."""

    max_tilt_rad: float = 0.7  # angle between base z and world z (the env ends an episode at 1.0)
    max_ang_vel_radps: float = 6.0  # norm of the base angular velocity
    max_joint_vel_radps: float = 30.0  # largest joint speed
    fall_probability_threshold: float = 0.5  # the predictor fires at or above this
    rearm_stable_s: float = 1.0
    limit_mode: ControlMode = ControlMode.CROUCH  # after a signal leaves its limit or the predictor fires
    non_finite_mode: ControlMode = ControlMode.DAMPING  # after a non-finite action or state

    def __post_init__(self) -> None:
        check_range("supervisor.max_tilt_rad", self.max_tilt_rad, 1e-3, np.pi)
        check_range("supervisor.max_ang_vel_radps", self.max_ang_vel_radps, 1e-3, 1e4)
        check_range("supervisor.max_joint_vel_radps", self.max_joint_vel_radps, 1e-3, 1e4)
        check_range("supervisor.fall_probability_threshold", self.fall_probability_threshold, 0.0, 1.0)
        check_range("supervisor.rearm_stable_s", self.rearm_stable_s, 0.0, 1e6)
        for name in ("limit_mode", "non_finite_mode"):
            mode = ControlMode(getattr(self, name))
            if mode is ControlMode.POLICY:
                raise ConfigError(f"supervisor.{name} must be 'crouch' or 'damping', got 'policy'")
            object.__setattr__(self, name, mode)


def tilt_rad(gravity_body: np.ndarray) -> float:
    """Angle between the base's z axis and world z from the body-frame gravity direction (3,)."""
    g = np.asarray(gravity_body, dtype=np.float64)
    norm = float(np.linalg.norm(g))
    if norm == 0.0:
        return float("nan")
    # the gravity direction is (0, 0, -1) in the body frame when level: cos(tilt) = -g_z / |g|
    return float(np.arccos(np.clip(-g[2] / norm, -1.0, 1.0)))


class SafetySupervisor:
    """One robot's safety state machine; arrays are 1-D (one robot)."""

    def __init__(self, cfg: SupervisorConfig, num_joints: int):
        if num_joints < 1:
            raise ValueError(f"num_joints = {num_joints} must be >= 1")
        self.cfg = cfg
        self.num_joints = num_joints
        self.mode = ControlMode.POLICY
        self.events: list[SafetyEvent] = []
        self.mode_since_s: float | None = None  # when the current mode began (None: since the start)
        self._stable_since_s: float | None = None

    def reset(self) -> None:
        """Start over in POLICY (a new episode); the event log is kept."""
        self.mode = ControlMode.POLICY
        self.mode_since_s = None
        self._stable_since_s = None

    def time_in_mode(self, time_s: float) -> float:
        """Seconds since the current mode began (0 if it began with the supervisor)."""
        return 0.0 if self.mode_since_s is None else max(0.0, time_s - self.mode_since_s)

    def _switch(self, time_s: float, mode: ControlMode, cause: str) -> None:
        self.events.append(SafetyEvent(float(time_s), self.mode.value, mode.value, cause))
        self.mode = mode
        self.mode_since_s = float(time_s)

    def _violation(
        self, gravity_body: np.ndarray, ang_vel_body: np.ndarray, joint_vel: np.ndarray, fall_probability: float | None
    ) -> str | None:
        """The first checked signal outside its limit, or None."""
        cfg = self.cfg
        signals = (gravity_body, ang_vel_body, joint_vel)
        if not all(np.all(np.isfinite(s)) for s in signals) or (
            fall_probability is not None and not np.isfinite(fall_probability)
        ):
            return "non_finite_state"
        tilt = tilt_rad(gravity_body)
        if not np.isfinite(tilt) or tilt > cfg.max_tilt_rad:
            return "tilt"
        if float(np.linalg.norm(ang_vel_body)) > cfg.max_ang_vel_radps:
            return "ang_vel"
        if float(np.max(np.abs(joint_vel))) > cfg.max_joint_vel_radps:
            return "joint_vel"
        if fall_probability is not None and fall_probability >= cfg.fall_probability_threshold:
            return "fall_predicted"
        return None

    def check(
        self,
        time_s: float,
        *,
        gravity_body: np.ndarray,
        ang_vel_body: np.ndarray,
        joint_vel: np.ndarray,
        action: np.ndarray | None,
        fall_probability: float | None = None,
    ) -> ControlMode:
        """The mode for the next control step: POLICY -> fallback on any violation; never back by itself.

        gravity_body (3,) unit gravity direction in the body frame, ang_vel_body (3,) rad/s,
        joint_vel (n_joints,) rad/s, action (n_joints,) or None when no action was computed this step.
        """
        gravity_body = np.asarray(gravity_body, dtype=np.float64).reshape(-1)
        ang_vel_body = np.asarray(ang_vel_body, dtype=np.float64).reshape(-1)
        joint_vel = np.asarray(joint_vel, dtype=np.float64).reshape(-1)
        if gravity_body.shape != (3,) or ang_vel_body.shape != (3,):
            raise ValueError(f"gravity_body {gravity_body.shape} and ang_vel_body {ang_vel_body.shape} must be (3,)")
        if joint_vel.shape != (self.num_joints,):
            raise ValueError(f"joint_vel has shape {joint_vel.shape}, expected ({self.num_joints},)")
        cause = self._violation(gravity_body, ang_vel_body, joint_vel, fall_probability)
        if cause is None:
            if self._stable_since_s is None:
                self._stable_since_s = float(time_s)
        else:
            self._stable_since_s = None
        if self.mode is not ControlMode.POLICY:
            return self.mode
        if action is not None and not np.all(np.isfinite(np.asarray(action, dtype=np.float64))):
            self._switch(time_s, self.cfg.non_finite_mode, "non_finite_action")
        elif cause == "non_finite_state":
            self._switch(time_s, self.cfg.non_finite_mode, cause)
        elif cause is not None:
            self._switch(time_s, self.cfg.limit_mode, cause)
        return self.mode

    def trip(self, time_s: float, cause: str, mode: ControlMode = ControlMode.DAMPING) -> None:
        """Switch off the policy for an external cause (stale state, exception, bridge loss, loop overrun).

        From a fallback mode this moves to `mode` if it differs (crouch -> damping is allowed, so is the reverse);
        the stable time restarts either way, so a re-arm needs `rearm_stable_s` of good signals after the trip.
        """
        mode = ControlMode(mode)
        if mode is ControlMode.POLICY:
            raise ValueError("trip() needs a fallback mode ('crouch' or 'damping'), got 'policy'")
        if not cause:
            raise ValueError("trip() needs a non-empty cause")
        self._stable_since_s = None
        if mode is not self.mode:
            self._switch(time_s, mode, cause)

    def stable_for(self, time_s: float) -> float:
        """Seconds the checked signals have been within their limits, as of the last `check`."""
        return 0.0 if self._stable_since_s is None else max(0.0, time_s - self._stable_since_s)

    def rearm(self, time_s: float) -> bool:
        """Back to POLICY if the robot has been stable for `rearm_stable_s`; True when the policy drives."""
        if self.mode is ControlMode.POLICY:
            return True
        if self._stable_since_s is None or self.stable_for(time_s) < self.cfg.rearm_stable_s:
            return False
        self._switch(time_s, ControlMode.POLICY, REARM_CAUSE)
        return True

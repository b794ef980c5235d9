"""Low-level control: the PD law, gravity feed-forward, the multi-rate clock, the safety supervisor and fallback."""

from ogi.controllers.clock import DEFAULT_RATES_HZ, ControlClock
from ogi.controllers.fallback import ControlMode, FallbackConfig, crouch_pose, fallback_command, fallback_torque
from ogi.controllers.gravity import gravity_compensation_torque, subtree_mask
from ogi.controllers.pd import pd_torque
from ogi.controllers.supervisor import SafetyEvent, SafetySupervisor, SupervisorConfig

__all__ = [
    "DEFAULT_RATES_HZ",
    "ControlClock",
    "ControlMode",
    "FallbackConfig",
    "SafetyEvent",
    "SafetySupervisor",
    "SupervisorConfig",
    "crouch_pose",
    "fallback_command",
    "fallback_torque",
    "gravity_compensation_torque",
    "pd_torque",
    "subtree_mask",
]

"""Low-level control: the PD law, gravity feed-forward, and the multi-rate clock."""

from ogi.controllers.clock import DEFAULT_RATES_HZ, ControlClock
from ogi.controllers.gravity import gravity_compensation_torque, subtree_mask
from ogi.controllers.pd import pd_torque

__all__ = ["DEFAULT_RATES_HZ", "ControlClock", "gravity_compensation_torque", "pd_torque", "subtree_mask"]

"""Reward terms of the `walk` task: small pure functions over one step's `Signals`, composed by weight.

`reward_<term>` returns a value to be maximized, `cost_<term>` a value >= 0; the weight in
`RewardConfig.weights` carries the sign. Each weighted term is multiplied by the policy period so that
returns do not depend on the control rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ogi.envs.config import RewardConfig
from ogi.envs.gait import STANDING_COMMAND


@dataclass(frozen=True, kw_only=True)
class Signals:
    """What the reward terms read after one policy step; shapes use n = number of envs."""

    command: np.ndarray  # (n, 3) vx m/s, vy m/s, yaw rate rad/s
    lin_vel_body: np.ndarray  # (n, 3) m/s, base frame
    ang_vel_body: np.ndarray  # (n, 3) rad/s, base frame
    projected_gravity: np.ndarray  # (n, 3) unit gravity in the base frame
    base_height: np.ndarray  # (n,) m above the ground under the base
    base_height_target: float  # m
    joint_pos_rel: np.ndarray  # (n, j) rad, q - q_default
    joint_pos: np.ndarray  # (n, j) rad
    joint_vel: np.ndarray  # (n, j) rad/s
    joint_acc: np.ndarray  # (n, j) rad/s^2, over the policy period
    torque: np.ndarray  # (n, j) N*m
    action: np.ndarray  # (n, j)
    last_action: np.ndarray  # (n, j)
    soft_joint_low: np.ndarray  # (j,) rad
    soft_joint_high: np.ndarray  # (j,) rad
    pose_weights: np.ndarray  # (j,)
    foot_contact: np.ndarray  # (n, f) bool
    foot_first_contact: np.ndarray  # (n, f) bool, touched down this step
    foot_air_time_s: np.ndarray  # (n, f) air time that ended at this touchdown (0 otherwise)
    foot_vel_xy: np.ndarray  # (n, f, 2) m/s, world frame
    foot_height: np.ndarray  # (n, f) m above the ground under the foot
    foot_swing_peak: np.ndarray  # (n, f) highest foot height of the swing that ended at this touchdown (0 otherwise)
    joint_power: np.ndarray  # (n, j) W, torque times joint velocity
    undesired_contacts: np.ndarray  # (n,) number of bodies in unwanted contact
    gait_pairs: np.ndarray  # (2, 2) foot groups that alternate (`ogi.envs.walk.gait_pairs`); (0, 2): none
    fell: np.ndarray  # (n,) bool, terminated by a fall (not a time-out)
    gait_stance: np.ndarray | None = None  # (n, f) bool, feet the gait clock wants down; None: no clock
    gait_foot_height: np.ndarray | None = None  # (n, f) m, the foot height the gait clock asks for now


def reward_tracking_lin_vel(s: Signals, sigma: float) -> np.ndarray:
    # exp(-|cmd_xy - v_xy|^2 / sigma)
    err = np.sum(np.square(s.command[:, :2] - s.lin_vel_body[:, :2]), axis=1)
    return np.exp(-err / sigma)


def reward_tracking_ang_vel(s: Signals, sigma: float) -> np.ndarray:
    # exp(-(cmd_yaw - w_z)^2 / sigma)
    return np.exp(-np.square(s.command[:, 2] - s.ang_vel_body[:, 2]) / sigma)


def cost_lin_vel_z(s: Signals) -> np.ndarray:
    return np.square(s.lin_vel_body[:, 2])


def cost_ang_vel_xy(s: Signals) -> np.ndarray:
    return np.sum(np.square(s.ang_vel_body[:, :2]), axis=1)


def cost_orientation(s: Signals) -> np.ndarray:
    # |g_xy|^2: zero when the base is level
    return np.sum(np.square(s.projected_gravity[:, :2]), axis=1)


def cost_base_height(s: Signals) -> np.ndarray:
    return np.square(s.base_height - s.base_height_target)


def cost_torques(s: Signals) -> np.ndarray:
    return np.sum(np.square(s.torque), axis=1)


def cost_joint_acc(s: Signals) -> np.ndarray:
    return np.sum(np.square(s.joint_acc), axis=1)


def cost_action_rate(s: Signals) -> np.ndarray:
    return np.sum(np.square(s.action - s.last_action), axis=1)


def reward_feet_air_time(s: Signals, target_s: float, max_s: float = 0.0) -> np.ndarray:
    # sum over feet touching down of (min(t_air, max) - target), only while asked to move (turning in place
    # included); max = 0: no cap. A cap stops long swings of one diagonal pair paying for short ones of the other
    moving = np.linalg.norm(s.command, axis=1) > STANDING_COMMAND
    air = np.minimum(s.foot_air_time_s, max_s) if max_s > 0 else s.foot_air_time_s
    gained = np.sum((air - target_s) * s.foot_first_contact, axis=1)
    return gained * moving


def reward_trot(s: Signals) -> np.ndarray:
    # [pairs in phase] x [pairs alternate], while asked to move: 1 in a trot's single-pair stance, 0 with four
    # feet down (a walk's overlap, a shuffle) or all up; so a trot with duty factor near 0.5 scores highest.
    # A biped's "pairs" are its single feet: 1 in single stance, 0 in double support or flight
    if len(s.gait_pairs) < 2:
        return np.zeros(s.foot_contact.shape[0])
    c = s.foot_contact
    (a1, a2), (b1, b2) = s.gait_pairs
    in_phase = 0.5 * ((c[:, a1] == c[:, a2]).astype(np.float64) + (c[:, b1] == c[:, b2]))
    alternate = c[:, a1] != c[:, b1]
    moving = np.linalg.norm(s.command, axis=1) > STANDING_COMMAND
    return in_phase * alternate * moving


def reward_gait_contact(s: Signals) -> np.ndarray:
    # share of feet where they should be by the gait clock: down in stance, up in swing (0 without a clock)
    if s.gait_stance is None:
        return np.zeros(s.foot_contact.shape[0])
    return np.mean(s.foot_contact == s.gait_stance, axis=1)


def reward_gait_swing(s: Signals) -> np.ndarray:
    # exp(-sum over feet (h - h_clock)^2 / 0.01 m^2): feet at the clock's height, lifted in swing, down in stance
    if s.gait_foot_height is None:
        return np.zeros(s.foot_contact.shape[0])
    return np.exp(-np.sum(np.square(s.foot_height - s.gait_foot_height), axis=1) / 0.01)


def cost_foot_slip(s: Signals) -> np.ndarray:
    # sum over feet in contact of |v_foot_xy|^2
    return np.sum(s.foot_contact * np.sum(np.square(s.foot_vel_xy), axis=2), axis=1)


def cost_feet_clearance(s: Signals, target_m: float) -> np.ndarray:
    # sum over feet of |h_foot - target| sqrt(|v_foot_xy|): a moving foot should be at the target height
    speed = np.sqrt(np.linalg.norm(s.foot_vel_xy, axis=2))
    return np.sum(np.abs(s.foot_height - target_m) * speed, axis=1)


def cost_feet_height(s: Signals, target_m: float) -> np.ndarray:
    # sum over feet touching down of (swing_peak / target - 1)^2
    return np.sum(np.square(s.foot_swing_peak / target_m - 1.0) * s.foot_first_contact, axis=1)


def cost_energy(s: Signals) -> np.ndarray:
    # sum |qd tau|, W
    return np.sum(np.abs(s.joint_power), axis=1)


def cost_undesired_contacts(s: Signals) -> np.ndarray:
    return s.undesired_contacts.astype(np.float64)


def cost_joint_limits(s: Signals) -> np.ndarray:
    # distance beyond the soft limits, rad
    below = np.clip(s.soft_joint_low - s.joint_pos, 0.0, None)
    above = np.clip(s.joint_pos - s.soft_joint_high, 0.0, None)
    return np.sum(below + above, axis=1)


def reward_pose(s: Signals) -> np.ndarray:
    # exp(-sum w (q - q0)^2)
    return np.exp(-np.sum(s.pose_weights * np.square(s.joint_pos_rel), axis=1))


def cost_stand_still(s: Signals) -> np.ndarray:
    # sum |q - q0| while the command is (near) zero
    still = np.linalg.norm(s.command, axis=1) < STANDING_COMMAND
    return np.sum(np.abs(s.joint_pos_rel), axis=1) * still


def cost_termination(s: Signals) -> np.ndarray:
    return s.fell.astype(np.float64)


RewardTerm = Callable[[Signals, RewardConfig], np.ndarray]

REWARD_TERMS: Mapping[str, RewardTerm] = {
    "tracking_lin_vel": lambda s, c: reward_tracking_lin_vel(s, c.tracking_sigma),
    "tracking_ang_vel": lambda s, c: reward_tracking_ang_vel(s, c.tracking_sigma),
    "lin_vel_z": lambda s, c: cost_lin_vel_z(s),
    "ang_vel_xy": lambda s, c: cost_ang_vel_xy(s),
    "orientation": lambda s, c: cost_orientation(s),
    "base_height": lambda s, c: cost_base_height(s),
    "torques": lambda s, c: cost_torques(s),
    "joint_acc": lambda s, c: cost_joint_acc(s),
    "action_rate": lambda s, c: cost_action_rate(s),
    "feet_air_time": lambda s, c: reward_feet_air_time(s, c.feet_air_time_target_s, c.feet_air_time_max_s),
    "foot_slip": lambda s, c: cost_foot_slip(s),
    "trot": lambda s, c: reward_trot(s),
    "gait_contact": lambda s, c: reward_gait_contact(s),
    "gait_swing": lambda s, c: reward_gait_swing(s),
    "feet_clearance": lambda s, c: cost_feet_clearance(s, c.foot_clearance_target_m),
    "feet_height": lambda s, c: cost_feet_height(s, c.foot_clearance_target_m),
    "energy": lambda s, c: cost_energy(s),
    "undesired_contacts": lambda s, c: cost_undesired_contacts(s),
    "joint_limits": lambda s, c: cost_joint_limits(s),
    "pose": lambda s, c: reward_pose(s),
    "stand_still": lambda s, c: cost_stand_still(s),
    "termination": lambda s, c: cost_termination(s),
}


class RewardComposer:
    """Weighted sum of named terms; an unknown term name raises at construction.

    With `only_positive`, the sum of the terms other than `termination` is clipped at zero (legged_gym's
    only_positive_rewards): early in training, per-step costs outweigh the rewards and a policy would
    otherwise learn to end episodes early. The clipped amount is logged as its own term, `reward/clip`,
    so the total still equals the sum of the logged terms; the termination penalty is added after it.
    """

    def __init__(self, cfg: RewardConfig, ctrl_dt_s: float):
        unknown = sorted(set(cfg.weights) - set(REWARD_TERMS))
        if unknown:
            raise ValueError(f"unknown reward terms {unknown}; known terms: {', '.join(REWARD_TERMS)}")
        self.cfg = cfg
        self.ctrl_dt_s = ctrl_dt_s
        self.active = {name: w for name, w in cfg.weights.items() if w != 0.0}

    def __call__(self, signals: Signals) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Total reward (n,) and each weighted term (n,) keyed `reward/<name>`; total == sum of terms."""
        terms = {
            f"reward/{name}": weight * self.ctrl_dt_s * REWARD_TERMS[name](signals, self.cfg)
            for name, weight in self.active.items()
        }
        n = signals.command.shape[0]
        total = np.zeros(n)
        for key, value in terms.items():
            if key != "reward/termination":
                total += value
        if self.cfg.only_positive:
            clip = np.maximum(-total, 0.0)
            terms["reward/clip"] = clip
            total = total + clip
        if "reward/termination" in terms:
            total = total + terms["reward/termination"]
        return total, terms

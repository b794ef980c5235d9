"""The gait clock of two-legged walkers: which foot should be down, how high a swinging foot should be, and the
swing-leg joint offsets added under the policy's action. One module for the walk env and the deployment runtime,
so that a robot is driven by the same clock it was trained with.

The clock's phase runs from 0 to 1 over `GaitConfig.period_s`, starting at 0 with each episode (or deployment);
foot k's phase is the clock's plus k / (number of feet). A foot is in stance for the first `stance_fraction` of its
cycle and swings for the rest. While the command is (near) zero every foot is asked to stay down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ogi.envs.config import GaitConfig

STANDING_COMMAND = 0.1  # |command| below this (m/s and rad/s together) asks the robot to stand


def phase(step: np.ndarray, ctrl_dt_s: float, period_s: float) -> np.ndarray:
    """The clock's phase in [0, 1) after `step` policy steps."""
    return np.mod(np.asarray(step, dtype=np.float64) * ctrl_dt_s / period_s, 1.0)


def clock_features(clock_phase: np.ndarray) -> np.ndarray:
    """(n, 2) sin and cos of 2 pi phase: the clock as the policy reads it."""
    angle = 2.0 * np.pi * np.asarray(clock_phase, dtype=np.float64)
    return np.stack([np.sin(angle), np.cos(angle)], axis=1)


def foot_phases(clock_phase: np.ndarray, num_feet: int) -> np.ndarray:
    """(n, f) each foot's phase: a biped's feet half a cycle apart."""
    return np.mod(np.asarray(clock_phase)[:, None] + np.arange(num_feet) / num_feet, 1.0)


def stance(clock_phase: np.ndarray, command: np.ndarray, cfg: GaitConfig, num_feet: int) -> np.ndarray:
    """(n, f) bool: which feet the clock wants down."""
    standing = np.linalg.norm(command, axis=1) < STANDING_COMMAND
    return (foot_phases(clock_phase, num_feet) < cfg.stance_fraction) | standing[:, None]


def swing_arch(clock_phase: np.ndarray, command: np.ndarray, cfg: GaitConfig, num_feet: int) -> np.ndarray:
    """(n, f) in [0, 1]: sin(pi s) over a foot's swing (s its progress through the swing), 0 in stance."""
    progress = (foot_phases(clock_phase, num_feet) - cfg.stance_fraction) / (1.0 - cfg.stance_fraction)
    arch = np.sin(np.pi * np.clip(progress, 0.0, 1.0))
    return arch * ~stance(clock_phase, command, cfg, num_feet)


def foot_height(clock_phase: np.ndarray, command: np.ndarray, cfg: GaitConfig, num_feet: int) -> np.ndarray:
    """(n, f) m: the foot height the clock asks for: 0 in stance, an arch of `swing_height_m` over the swing."""
    return cfg.swing_height_m * swing_arch(clock_phase, command, cfg, num_feet)


def swing_offset_matrix(cfg: GaitConfig, joint_names: tuple[str, ...], foot_sites: tuple[str, ...]) -> np.ndarray:
    """(f, j) rad: the joint offsets at the top of each foot's swing. A joint belongs to a foot when its name
    starts with the foot site's side ("left_" of "left_foot") and contains a key of `swing_joint_offsets_rad`."""
    out = np.zeros((len(foot_sites), len(joint_names)))
    for k, site in enumerate(foot_sites):
        side = site.split("_")[0] + "_"
        for j, joint in enumerate(joint_names):
            if joint.startswith(side):
                for fragment, offset in cfg.swing_joint_offsets_rad.items():
                    if fragment in joint:
                        out[k, j] = offset
    return out


def reference_offsets(clock_phase: np.ndarray, command: np.ndarray, cfg: GaitConfig, offsets: np.ndarray) -> np.ndarray:
    """(n, j) rad added to the joint targets under the policy's action: each swinging leg lifted along its arch
    (`offsets` from `swing_offset_matrix`); zero in stance and while standing."""
    return swing_arch(clock_phase, command, cfg, offsets.shape[0]) @ offsets

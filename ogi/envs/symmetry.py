"""Left-right mirror images of observations and actions, for a symmetry loss on walking policies.

Reflecting the world in the robot's sagittal plane (y -> -y in the base frame) maps a legal state to a legal
state: left and right legs swap, and every quantity changes as its kind dictates. A polar vector (gravity, a
velocity command) flips its y component; an axial one (angular velocity) flips x and z; a joint angle flips sign
when the joint turns about x or z (abduction, roll, yaw) and keeps it when it turns about y (pitch). A policy
that walks the same way to either side satisfies pi(mirror(s)) = mirror(pi(s)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ogi.envs.observations import ObservationLayout

# name fragments of a robot's two sides, in the order (right, left)
SIDE_PAIRS = (("FR", "FL"), ("RR", "RL"), ("right", "left"))

# base-frame vectors under y -> -y: polar vectors flip y, axial vectors (angular velocity) flip x and z
_POLAR = np.array([1.0, -1.0, 1.0])
_AXIAL = np.array([-1.0, 1.0, -1.0])
# (vx, vy, yaw rate): a command to the left becomes one to the right, a left turn a right one
_COMMAND = np.array([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Mirror:
    """x -> x[..., index] * sign over the last axis: the mirror image of a vector of some layout."""

    index: np.ndarray  # (d,) int: which input each output takes
    sign: np.ndarray  # (d,) +-1

    def __post_init__(self) -> None:
        d = len(self.index)
        if sorted(self.index.tolist()) != list(range(d)) or self.sign.shape != (d,):
            raise ValueError("a mirror must permute its d inputs and carry one sign per output")

    def then(self, other: Mirror) -> Mirror:
        """The mirror of the concatenation [x, y] of this mirror's layout and `other`'s."""
        return Mirror(
            np.concatenate([self.index, other.index + len(self.index)]), np.concatenate([self.sign, other.sign])
        )

    def __call__(self, x):
        """The mirror image of x (..., d): numpy arrays and torch tensors alike."""
        index = self.index.tolist()
        sign = self.sign
        if not isinstance(x, np.ndarray):  # a torch tensor
            import torch

            sign = torch.as_tensor(sign, dtype=x.dtype)
        return x[..., index] * sign


def mirror_partner(name: str) -> str:
    """The joint on the other side (FR_hip_joint <-> FL_hip_joint); a joint on the middle line is its own."""
    for right, left in SIDE_PAIRS:
        if right in name:
            return name.replace(right, left)
        if left in name:
            return name.replace(left, right)
    return name


def joint_mirror(joint_names: Sequence[str], joint_axes: np.ndarray, slides: Sequence[bool] | None = None) -> Mirror:
    """The mirror over joints in action order, from their names and their axes (j, 3) in the base frame of a
    left-right symmetric pose; `slides` marks the slide joints (a gripper's jaw), the others are hinges.

    A joint's coordinate maps to its partner's with the sign that lines its reflected axis up with the
    partner's: a hinge's axis is axial (x and z flip), a slide's polar (y flips). So a pitch joint keeps its
    angle, roll and yaw flip, and two jaws that open along mirror-image axes keep their opening. A partner
    whose axis is not the reflection of the joint's (up to sign) is an error.
    """
    names = list(joint_names)
    axes = np.asarray(joint_axes, dtype=np.float64)
    slides = [False] * len(names) if slides is None else list(slides)
    index, sign = [], []
    for name, axis, slide in zip(names, axes, slides):
        partner = mirror_partner(name)
        if partner not in names:
            raise ValueError(f"joint '{name}' has no mirror partner '{partner}' among the robot's joints")
        j = names.index(partner)
        reflected = axis * (_POLAR if slide else _AXIAL)
        alignment = float(np.dot(reflected, axes[j]))
        if abs(alignment) < 0.99:
            raise ValueError(
                f"joint '{name}' turns about {axis.tolist()}, whose reflection is not the axis of '{partner}' "
                f"{axes[j].tolist()}: cannot mirror it"
            )
        index.append(j)
        sign.append(1.0 if alignment > 0 else -1.0)
    return Mirror(np.array(index), np.array(sign))


def layout_mirror(layout: ObservationLayout, joints: Mirror) -> Mirror:
    """The mirror over a `policy` observation, field by field; a field it cannot reflect is an error."""
    index, sign = [], []
    for name, size in zip(layout.names, layout.sizes):
        start = len(index)
        if name == "base_ang_vel":
            field_index, field_sign = np.arange(3), _AXIAL
        elif name == "projected_gravity":
            field_index, field_sign = np.arange(3), _POLAR
        elif name == "command":
            field_index, field_sign = np.arange(3), _COMMAND
        elif name in ("joint_pos", "joint_vel", "last_action"):
            field_index, field_sign = joints.index, joints.sign
        elif name == "gait_phase":
            # swapping two feet half a cycle apart is the clock half a cycle on: sin and cos change sign
            field_index, field_sign = np.arange(2), -np.ones(2)
        else:
            raise ValueError(
                f"observation field '{name}' has no mirror image here; symmetry needs a policy that reads "
                "proprioception only"
            )
        if len(field_index) != size:
            raise ValueError(f"observation field '{name}' has {size} values, its mirror {len(field_index)}")
        index += (start + field_index).tolist()
        sign += list(field_sign)
    return Mirror(np.array(index), np.array(sign))


# the privileged group's domain features (ogi.envs.randomization.DomainParams.as_features): friction, added mass,
# the centre-of-mass offset (a polar vector), motor strength, kp and kd scales; only the offset's y flips
_DOMAIN_SIGN = np.array([1.0, 1.0, *_POLAR, 1.0, 1.0, 1.0])


def privileged_mirror(layout: ObservationLayout, foot_sites: Sequence[str], scan_offsets: np.ndarray | None) -> Mirror:
    """The mirror over the `privileged` group: velocities and the push flip y, the feet swap sides, and the
    height scan's grid reflects across the base's x axis (each point takes the reading of its (x, -y) twin)."""
    feet = list(foot_sites)
    index, sign = [], []
    for name, size in zip(layout.names, layout.sizes):
        start = len(index)
        if name in ("base_lin_vel", "push_force"):
            field_index, field_sign = np.arange(3), _POLAR
        elif name == "base_height":
            field_index, field_sign = np.arange(1), np.ones(1)
        elif name == "domain_params":
            field_index, field_sign = np.arange(len(_DOMAIN_SIGN)), _DOMAIN_SIGN
        elif name == "foot_contact":
            partners = [mirror_partner(f) for f in feet]
            missing = [p for p in partners if p not in feet]
            if missing:
                raise ValueError(f"feet {feet} have no mirror partners {missing}")
            field_index, field_sign = np.array([feet.index(p) for p in partners]), np.ones(len(feet))
        elif name == "height_scan":
            if scan_offsets is None:
                raise ValueError("the privileged group reads a height scan but no scan offsets were given")
            offsets = np.asarray(scan_offsets, dtype=np.float64)
            reflected = offsets * np.array([1.0, -1.0])
            distance = np.linalg.norm(offsets[None, :, :] - reflected[:, None, :], axis=-1)
            field_index = distance.argmin(axis=1)
            if distance[np.arange(len(offsets)), field_index].max() > 1e-6:
                raise ValueError("the height scan's grid is not symmetric about the base's x axis: cannot mirror it")
            field_sign = np.ones(len(offsets))
        else:
            raise ValueError(f"privileged field '{name}' has no mirror image here")
        if len(field_index) != size:
            raise ValueError(f"privileged field '{name}' has {size} values, its mirror {len(field_index)}")
        index += (start + np.asarray(field_index)).tolist()
        sign += list(field_sign)
    return Mirror(np.array(index), np.array(sign))

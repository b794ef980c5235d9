"""`DynamicsProfile`: how a robot's joints and motors behave, beside what its model says (TOML in, TOML out).

One schema serves three uses: the hidden profile that makes `ogi sim-robot` differ from the model (the stand-in
for hardware), the calibrated robot `ogi calibrate` writes, and the robot a policy is fine-tuned on. Every
field is optional; what a profile leaves out keeps the model's value.

    [joints.hip]              # a class: every joint whose name contains "hip"
    armature = 0.02           # kg m^2, reflected rotor inertia
    damping = 0.3             # N m s/rad, viscous
    frictionloss = 0.4        # N m, dry (Coulomb) friction
    [motors]
    strength = 0.85           # the torque a motor delivers per unit of torque its law asks for (limit included)
    delay_ms = 6.0            # a command acts this long after it was sent
    speed_knee_rad_s = 15.0   # torque-speed curve: full torque up to the knee ...
    max_speed_rad_s = 30.0    # ... falling linearly to none at this speed
    [body]
    base_mass_offset_kg = 1.0 # payload, battery, cabling the model does not carry
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from ogi.robots.spec import RobotSpec

JOINT_FIELDS = ("armature", "damping", "frictionloss")
MOTOR_FIELDS = ("strength", "delay_ms", "speed_knee_rad_s", "max_speed_rad_s")
BODY_FIELDS = ("base_mass_offset_kg",)
_JOINT_RANGES = {"armature": (0.0, 1.0), "damping": (0.0, 50.0), "frictionloss": (0.0, 50.0)}


class ProfileError(ValueError):
    """A dynamics profile is malformed or does not fit the robot; the message names the file and the field."""


@dataclass(frozen=True)
class JointDynamics:
    armature: float | None = None
    damping: float | None = None
    frictionloss: float | None = None


@dataclass(frozen=True, kw_only=True)
class DynamicsProfile:
    joints: dict[str, JointDynamics] = field(default_factory=dict)  # class name -> dynamics (in file order)
    strength: float = 1.0
    delay_ms: float = 0.0
    speed_knee_rad_s: float = math.inf
    max_speed_rad_s: float = math.inf
    base_mass_offset_kg: float = 0.0
    source: str = "<profile>"

    def __post_init__(self) -> None:
        src = self.source
        for cls, dyn in self.joints.items():
            for name in JOINT_FIELDS:
                value = getattr(dyn, name)
                low, high = _JOINT_RANGES[name]
                if value is not None and not (math.isfinite(value) and low <= value <= high):
                    raise ProfileError(f"{src}: joints.{cls}.{name} = {value} must be in [{low}, {high}]")
        if not (math.isfinite(self.strength) and 0.05 <= self.strength <= 5.0):
            raise ProfileError(f"{src}: motors.strength = {self.strength} must be in [0.05, 5]")
        if not (math.isfinite(self.delay_ms) and 0.0 <= self.delay_ms <= 100.0):
            raise ProfileError(f"{src}: motors.delay_ms = {self.delay_ms} must be in [0, 100]")
        if not (self.speed_knee_rad_s > 0 and self.max_speed_rad_s > 0):
            raise ProfileError(f"{src}: motors.speed_knee_rad_s and max_speed_rad_s must be > 0")
        if self.max_speed_rad_s < self.speed_knee_rad_s:
            raise ProfileError(
                f"{src}: motors.max_speed_rad_s = {self.max_speed_rad_s} is below speed_knee_rad_s = "
                f"{self.speed_knee_rad_s}"
            )
        if not (math.isfinite(self.base_mass_offset_kg) and -20.0 <= self.base_mass_offset_kg <= 50.0):
            raise ProfileError(f"{src}: body.base_mass_offset_kg = {self.base_mass_offset_kg} must be in [-20, 50]")

    # ---- per joint -----------------------------------------------------------------------------
    def joint_classes(self, robot: RobotSpec) -> list[str | None]:
        """The class each of the robot's joints (action order) belongs to: the first whose name it contains."""
        classes = [next((c for c in self.joints if c in joint), None) for joint in robot.joint_names]
        unused = [c for c in self.joints if c not in classes]
        if unused:
            raise ProfileError(
                f"{self.source}: joint class(es) {unused} match no joint of robot '{robot.name}' "
                f"(joints: {', '.join(robot.joint_names)})"
            )
        return classes

    def joint_values(self, robot: RobotSpec, name: str, nominal: np.ndarray) -> np.ndarray:
        """(num_joints,) values of one joint field: the profile's where it sets one, else `nominal`'s."""
        values = np.array(nominal, dtype=float)
        for i, cls in enumerate(self.joint_classes(robot)):
            if cls is not None and getattr(self.joints[cls], name) is not None:
                values[i] = getattr(self.joints[cls], name)
        return values

    @property
    def delay_s(self) -> float:
        return self.delay_ms / 1e3

    def torque_limit(self, limit: np.ndarray, dq: np.ndarray) -> np.ndarray:
        """The torque the motors can give at joint speeds dq: strength x limit, cut by the torque-speed curve."""
        speed = np.abs(dq)
        if math.isinf(self.speed_knee_rad_s):
            return self.strength * np.asarray(limit)
        span = max(self.max_speed_rad_s - self.speed_knee_rad_s, 1e-9)
        scale = np.clip((self.max_speed_rad_s - speed) / span, 0.0, 1.0)
        return self.strength * np.asarray(limit) * scale

    # ---- onto models ---------------------------------------------------------------------------
    def apply_to_model(self, model: mujoco.MjModel, robot: RobotSpec) -> None:
        """Write joint dynamics and the base's mass offset into a compiled model (in place).

        Strength, delay and the torque-speed curve are the motor's: whoever applies the motor law applies them.
        """
        dofs = np.array([model.jnt_dofadr[model.joint(j).id] for j in robot.joint_names])
        for name in JOINT_FIELDS:
            target = getattr(model, f"dof_{name}")
            target[dofs] = self.joint_values(robot, name, target[dofs])
        if self.base_mass_offset_kg:
            base = model.body(robot.base_body).id
            old = float(model.body_mass[base])
            new = old + self.base_mass_offset_kg
            if new <= 0.1:
                raise ProfileError(f"{self.source}: body.base_mass_offset_kg leaves the base {new:.2f} kg")
            model.body_mass[base] = new
            model.body_inertia[base] *= new / old
            mujoco.mj_setConst(model, mujoco.MjData(model))

    def apply_to_spec(self, spec: mujoco.MjSpec, robot: RobotSpec) -> None:
        """Write joint dynamics and the base's mass offset into a robot spec (before compiling)."""
        classes = self.joint_classes(robot)
        for joint, cls in zip(robot.joint_names, classes):
            if cls is None:
                continue
            dyn, target = self.joints[cls], spec.joint(joint)
            if dyn.armature is not None:
                target.armature = dyn.armature
            if dyn.damping is not None:
                target.damping = [dyn.damping, 0.0, 0.0]
            if dyn.frictionloss is not None:
                target.frictionloss = dyn.frictionloss
        if self.base_mass_offset_kg:
            base = spec.body(robot.base_body)
            base.mass += self.base_mass_offset_kg

    # ---- files ---------------------------------------------------------------------------------
    def to_toml(self, header: str = "") -> str:
        lines = [f"# {line}" for line in header.splitlines()]
        for cls, dyn in self.joints.items():
            lines.append(f"\n[joints.{cls}]")
            lines += [f"{n} = {_number(getattr(dyn, n))}" for n in JOINT_FIELDS if getattr(dyn, n) is not None]
        lines.append("\n[motors]")
        lines += [f"{n} = {_number(getattr(self, n))}" for n in MOTOR_FIELDS]
        lines.append("\n[body]")
        lines += [f"{n} = {_number(getattr(self, n))}" for n in BODY_FIELDS]
        return "\n".join(lines).lstrip("\n") + "\n"

    def with_values(self, **values: float) -> DynamicsProfile:
        """A copy with flat values set: 'hip.armature'-style keys for joints, field names for the rest."""
        joints = dict(self.joints)
        top = {}
        for key, value in values.items():
            if "." in key:
                cls, name = key.split(".", 1)
                joints[cls] = replace(joints.get(cls, JointDynamics()), **{name: float(value)})
            else:
                top[key] = float(value)
        return replace(self, joints=joints, **top)

    def flat(self) -> dict[str, float]:
        """Every set value under a flat key ('hip.armature', 'strength', ...)."""
        out = {
            f"{c}.{n}": getattr(d, n) for c, d in self.joints.items() for n in JOINT_FIELDS if getattr(d, n) is not None
        }
        out.update({n: getattr(self, n) for n in (*MOTOR_FIELDS, *BODY_FIELDS)})
        return out


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return repr(float(value))


def nominal_profile(robot: RobotSpec, classes: tuple[str, ...] = ("hip", "thigh", "calf")) -> DynamicsProfile:
    """The robot's own model values, per joint class (the first joint of each class stands for it)."""
    model = robot.build().compile()
    joints = {}
    for cls in classes:
        members = [j for j in robot.joint_names if cls in j]
        if not members:
            raise ProfileError(f"robot '{robot.name}' has no joint whose name contains '{cls}'")
        dof = model.jnt_dofadr[model.joint(members[0]).id]
        joints[cls] = JointDynamics(
            armature=float(model.dof_armature[dof]),
            damping=float(model.dof_damping[dof]),
            frictionloss=float(model.dof_frictionloss[dof]),
        )
    return DynamicsProfile(joints=joints, source=f"<nominal {robot.name}>")


def parse_profile(doc: dict[str, Any], source: str) -> DynamicsProfile:
    unknown = set(doc) - {"joints", "motors", "body"}
    if unknown:
        raise ProfileError(f"{source}: unknown table(s) {sorted(unknown)}; known: joints, motors, body")
    joints: dict[str, JointDynamics] = {}
    for cls, table in doc.get("joints", {}).items():
        if not isinstance(table, dict):
            raise ProfileError(f"{source}: joints.{cls} must be a table of {', '.join(JOINT_FIELDS)}")
        _check_keys(source, f"joints.{cls}", table, JOINT_FIELDS)
        joints[cls] = JointDynamics(**{k: _float(source, f"joints.{cls}.{k}", v) for k, v in table.items()})
    top = {}
    for table_name, names in (("motors", MOTOR_FIELDS), ("body", BODY_FIELDS)):
        table = doc.get(table_name, {})
        if not isinstance(table, dict):
            raise ProfileError(f"{source}: [{table_name}] must be a table")
        _check_keys(source, table_name, table, names)
        top.update({k: _float(source, f"{table_name}.{k}", v) for k, v in table.items()})
    return DynamicsProfile(joints=joints, source=source, **top)


def load_profile(path: str | Path) -> DynamicsProfile:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such dynamics profile") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ProfileError(f"{path}: not valid TOML: {err}") from None
    return parse_profile(doc, str(path))


def _check_keys(source: str, where: str, table: dict, allowed: tuple[str, ...]) -> None:
    unknown = set(table) - set(allowed)
    if unknown:
        raise ProfileError(f"{source}: {where}: unknown key(s) {sorted(unknown)}; known: {', '.join(allowed)}")


def _float(source: str, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{source}: {where} = {value!r} must be a number")
    return float(value)

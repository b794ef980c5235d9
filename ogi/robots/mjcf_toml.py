"""Load any MJCF a user already has as a `RobotSpec`, through a small TOML file naming its fields.

Layout, one `[[joints]]` table per actuated joint in action order::

    name = "my_go2"
    mjcf = "go2.xml"                # relative to this TOML's folder; must stay inside that folder
    base_body = "base"              # body with the free joint
    imu_site = "imu"
    foot_sites = ["FR_foot", "FL_foot", "RR_foot", "RL_foot"]
    nominal_base_height = 0.3       # m
    action_scale = 0.25             # optional, rad per unit action
    termination_contact_bodies = ["base"]   # optional
    undesired_contact_bodies = []           # optional
    description = "my Go2"                  # optional

    [[joints]]
    name = "FR_hip_joint"
    default = -0.1                  # rad (m for a slide joint)
    kp = 40.0                       # N*m/rad
    kd = 1.0                        # N*m*s/rad
    torque_limit = 23.7             # N*m, symmetric
    range = [-1.047, 1.047]         # optional, rad; if absent, the MJCF joint's range (it must be limited)

or the compact form with parallel arrays instead of `[[joints]]`: `joint_names`, `default_pose`,
`kp`, `kd`, `torque_limit` (each of the last three one number for all joints, or one per joint) and
optionally `joint_limits = [[low, high], ...]`.

TOML angles are radians whatever the MJCF's `<compiler angle>` (MJCF defaults to degrees): ranges
taken from the MJCF are read from the compiled model, which is always in radians. Every file the
MJCF makes MuJoCo read (includes, meshes, textures, ...) must resolve, symlinks followed, inside
the TOML's folder, so a robot folder cannot make the loader read files elsewhere. The MJCF is
parsed and compiled here, so a bad file fails at load time, not mid-training, with a
`RobotSpecError` naming the TOML file and the field.
"""

from __future__ import annotations

import difflib
import functools
import math
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco

from ogi.robots.instrument import check_names
from ogi.robots.spec import RobotSpec, RobotSpecError

_REQUIRED = ("name", "mjcf", "base_body", "imu_site", "foot_sites", "nominal_base_height")
_OPTIONAL = ("action_scale", "termination_contact_bodies", "undesired_contact_bodies", "description")
_COMPACT = ("joint_names", "default_pose", "kp", "kd", "torque_limit", "joint_limits")
_TOP_LEVEL = (*_REQUIRED, *_OPTIONAL, "joints", *_COMPACT)
_JOINT_REQUIRED = ("name", "default", "kp", "kd", "torque_limit")
_JOINT_KEYS = (*_JOINT_REQUIRED, "range")
# per-joint role -> compact-form field, so errors name the field the user actually wrote
_COMPACT_FIELD = {"name": "joint_names", "default": "default_pose", "range": "joint_limits"}
# MJCF elements whose file attributes MuJoCo resolves against <compiler meshdir>
_MESHDIR_ELEMENTS = frozenset({"mesh", "hfield", "skin", "flexcomp"})


@dataclass
class _Joint:
    name: str
    default: float
    kp: float
    kd: float
    torque_limit: float
    range: tuple[float, float] | None
    fields: dict[str, str]  # role ("kp", "range", ...) -> TOML field it came from


def load_robot_toml(path: Path) -> RobotSpec:
    """The `RobotSpec` a TOML file describes; raises `RobotSpecError` for any bad input."""
    path = Path(path)
    src = str(path)
    doc = _read_toml(path, src)
    _check_keys(src, doc, _TOP_LEVEL, "")
    for key in _REQUIRED:
        if key not in doc:
            raise RobotSpecError(src, key, "missing required field")
    joints = _read_joints(src, doc)

    fields: dict[str, Any] = {key: _string(src, key, doc[key]) for key in ("name", "imu_site", "base_body")}
    for key in ("foot_sites", "termination_contact_bodies", "undesired_contact_bodies"):
        fields[key] = _strings(src, key, doc.get(key, []))
    for key, default in (("nominal_base_height", None), ("action_scale", 0.25)):
        fields[key] = _number(src, key, doc.get(key, default))
    per_joint = {
        "joint_names": "name",
        "default_pose": "default",
        "kp": "kp",
        "kd": "kd",
        "torque_limit": "torque_limit",
    }
    fields |= {key: tuple(getattr(j, role) for j in joints) for key, role in per_joint.items()}
    fields["source"] = src
    root = path.parent.resolve()
    mjcf_path = _inside(src, root, root, _string(src, "mjcf", doc["mjcf"]), "mjcf")
    if not mjcf_path.is_file():
        raise RobotSpecError(src, "mjcf", f"MJCF file '{mjcf_path}' does not exist or is not a file")
    fields["description"] = _string(src, "description", doc.get("description", f"MJCF {mjcf_path}"))
    _check_asset_paths(src, root, mjcf_path)
    spec, model = _compile(src, mjcf_path)
    fields["build"] = functools.partial(mujoco.MjSpec.from_file, str(mjcf_path))

    # check_names needs a RobotSpec before the limits are known (some come from the model, which
    # needs the joints to exist); limits around the default pose cannot fail its validation
    provisional = RobotSpec(**fields, joint_limits=tuple((j.default - 1.0, j.default + 1.0) for j in joints))
    check_names(spec, provisional)
    limits = tuple(j.range if j.range is not None else _model_range(src, model, mjcf_path, j) for j in joints)
    for joint, (low, high) in zip(joints, limits):
        if not low <= joint.default <= high:
            raise RobotSpecError(
                src,
                joint.fields["default"],
                f"{joint.default} for joint '{joint.name}' lies outside its range [{low}, {high}]",
            )
    return RobotSpec(**fields, joint_limits=limits)


def _read_toml(path: Path, src: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise RobotSpecError(src, "(file)", "robot TOML file does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise RobotSpecError(src, "(syntax)", f"invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RobotSpecError(src, "(file)", f"cannot read robot TOML file: {exc}") from None


def _check_keys(src: str, table: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; known fields: {', '.join(allowed)}"
            raise RobotSpecError(src, f"{prefix}{key}", f"unknown field{hint}")


def _read_joints(src: str, doc: dict[str, Any]) -> list[_Joint]:
    compact = [key for key in _COMPACT if key in doc]
    if "joints" in doc:
        if compact:
            raise RobotSpecError(src, compact[0], "cannot be combined with [[joints]] tables; use one form")
        return _read_joint_tables(src, doc["joints"])
    if not compact:
        raise RobotSpecError(src, "joints", "missing required field: one [[joints]] table per actuated joint")
    for key in ("joint_names", "default_pose", "kp", "kd", "torque_limit"):
        if key not in doc:
            raise RobotSpecError(src, key, "missing required field (compact form)")
    names = _strings(src, "joint_names", doc["joint_names"])
    n = len(names)
    defaults = _vector(src, "default_pose", doc["default_pose"], n, scalar_ok=False)
    kp, kd, tau = (_vector(src, key, doc[key], n, scalar_ok=True) for key in ("kp", "kd", "torque_limit"))
    ranges: list[tuple[float, float] | None] = [None] * n
    if "joint_limits" in doc:
        value = doc["joint_limits"]
        if not isinstance(value, list):
            raise RobotSpecError(src, "joint_limits", f"must be an array of [low, high] pairs, got {_kind(value)}")
        _check_length(src, "joint_limits", value, n)
        ranges = [_range(src, f"joint_limits[{i}]", v) for i, v in enumerate(value)]
    fields = {role: _COMPACT_FIELD.get(role, role) for role in _JOINT_KEYS}
    joints = [_Joint(*values, fields=fields) for values in zip(names, defaults, kp, kd, tau, ranges)]
    _check_joints(src, joints)
    return joints


def _read_joint_tables(src: str, tables: Any) -> list[_Joint]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RobotSpecError(src, "joints", f"must be [[joints]] tables (an array of tables), got {_kind(tables)}")
    joints = []
    for i, table in enumerate(tables):
        prefix = f"joints[{i}]."
        _check_keys(src, table, _JOINT_KEYS, prefix)
        for key in _JOINT_REQUIRED:
            if key not in table:
                raise RobotSpecError(src, prefix + key, "missing required field")
        fields = {role: prefix + role for role in _JOINT_KEYS}
        readers = {
            "name": _string,
            "default": _number,
            "kp": _number,
            "kd": _number,
            "torque_limit": _number,
            "range": _range,
        }
        values = {role: read(src, fields[role], table[role]) for role, read in readers.items() if role in table}
        joints.append(_Joint(**{"range": None, **values}, fields=fields))
    _check_joints(src, joints)
    return joints


def _check_joints(src: str, joints: list[_Joint]) -> None:
    """Per-joint checks `RobotSpec` also makes, here so the error names the TOML's own field."""
    if not joints:
        raise RobotSpecError(src, "joints", "must name at least one actuated joint")
    seen: set[str] = set()
    for joint in joints:
        if joint.name in seen:
            raise RobotSpecError(src, joint.fields["name"], f"joint '{joint.name}' is listed twice")
        seen.add(joint.name)
        for role, gain in (("kp", joint.kp), ("kd", joint.kd)):
            if gain < 0:
                raise RobotSpecError(
                    src, joint.fields[role], f"negative gain {gain} for joint '{joint.name}' (must be >= 0)"
                )
        if joint.torque_limit <= 0:
            raise RobotSpecError(
                src, joint.fields["torque_limit"], f"{joint.torque_limit} for joint '{joint.name}' must be > 0"
            )


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _number(src: str, field_name: str, value: Any) -> float:
    # bool is an int in Python, but `kp = true` is a mistake, not 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RobotSpecError(src, field_name, f"must be a number, got {_kind(value)}")
    if not math.isfinite(value):
        raise RobotSpecError(src, field_name, f"non-finite value {value}")
    return float(value)


def _string(src: str, field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise RobotSpecError(src, field_name, f"must be a non-empty string, got {_kind(value)}")
    return value


def _strings(src: str, field_name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RobotSpecError(src, field_name, f"must be an array of strings, got {_kind(value)}")
    return tuple(_string(src, f"{field_name}[{i}]", v) for i, v in enumerate(value))


def _check_length(src: str, field_name: str, value: list[Any], n: int) -> None:
    if len(value) != n:
        raise RobotSpecError(src, field_name, f"has {len(value)} entries, expected {n} (one per joint in joint_names)")


def _vector(src: str, field_name: str, value: Any, n: int, *, scalar_ok: bool) -> list[float]:
    if scalar_ok and not isinstance(value, list):
        return [_number(src, field_name, value)] * n
    if not isinstance(value, list):
        raise RobotSpecError(src, field_name, f"must be an array of numbers, got {_kind(value)}")
    _check_length(src, field_name, value, n)
    return [_number(src, f"{field_name}[{i}]", v) for i, v in enumerate(value)]


def _range(src: str, field_name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise RobotSpecError(src, field_name, f"must be [low, high], got {_kind(value)}")
    low, high = (_number(src, f"{field_name}[{i}]", v) for i, v in enumerate(value))
    if not low < high:
        raise RobotSpecError(src, field_name, f"[{low}, {high}] must have low < high")
    return low, high


def _inside(src: str, root: Path, base: Path, value: str, what: str) -> Path:
    """`base / value` with symlinks resolved; an error unless it lies inside `root`."""
    if Path(value).is_absolute():
        raise RobotSpecError(src, "mjcf", f"{what} = '{value}' is an absolute path; paths must be relative to {root}")
    try:
        resolved = (base / value).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise RobotSpecError(src, "mjcf", f"{what} = '{value}' cannot be resolved: {exc}") from exc
    if not resolved.is_relative_to(root):
        raise RobotSpecError(
            src,
            "mjcf",
            f"{what} = '{value}' resolves to {resolved}, outside the TOML's folder {root} ('..' or a symlink)",
        )
    return resolved


def _candidates(src: str, root: Path, base: Path, value: str, what: str, included_from: Path | None) -> list[Path]:
    """Every path MuJoCo may open for `value`: `base / value` and, for a value met in an included
    file, next to that file, where MuJoCo looks when the first is missing; all must stay inside."""
    paths = [_inside(src, root, base, value, what)]
    if included_from is not None:
        paths.append(_inside(src, root, included_from.parent, value, what))
    return paths


def _check_asset_paths(src: str, root: Path, mjcf_path: Path) -> None:
    """Check every file path the MJCF names before MuJoCo reads any of them."""
    model_dir = mjcf_path.parent
    elements = _mjcf_elements(src, root, mjcf_path, mjcf_path, set())
    # MjSpec has one meshdir and one texturedir; the last <compiler> setting wins, assetdir sets both
    dirs = {"meshdir": model_dir, "texturedir": model_dir}
    for element, xml_path in elements:
        if element.tag != "compiler":
            continue
        for key in ("assetdir", "meshdir", "texturedir"):
            value = element.get(key)
            if value is not None:
                what, included_from = f"<compiler {key}> in {xml_path}", _included(xml_path, mjcf_path)
                folder = _candidates(src, root, model_dir, value, what, included_from)[0]
                for target in ("meshdir", "texturedir") if key == "assetdir" else (key,):
                    dirs[target] = folder
    for element, xml_path in elements:
        if element.tag == "texture":
            base = dirs["texturedir"]
        elif element.tag in _MESHDIR_ELEMENTS:
            base = dirs["meshdir"]
        else:
            base = model_dir
        for attr, value in element.attrib.items():
            if attr.startswith("file"):  # file, and a cube texture's fileright, fileup, ...
                what = f"<{element.tag} {attr}> in {xml_path}"
                _candidates(src, root, base, value, what, _included(xml_path, mjcf_path))


def _included(xml_path: Path, mjcf_path: Path) -> Path | None:
    return None if xml_path == mjcf_path else xml_path


def _mjcf_elements(
    src: str, root: Path, mjcf_path: Path, xml_path: Path, seen: set[Path]
) -> list[tuple[ET.Element, Path]]:
    """All elements of an MJCF and, recursively, of the files it includes, with their file."""
    if xml_path in seen:  # MuJoCo rejects include cycles itself; this only keeps the scan finite
        return []
    seen.add(xml_path)
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, OSError) as exc:
        raise RobotSpecError(src, "mjcf", f"cannot read MJCF file '{xml_path}': {exc}") from exc
    elements = []
    for element in tree.getroot().iter():
        elements.append((element, xml_path))
        file = element.get("file")
        if element.tag == "include" and file is not None:
            what = f"<include file> in {xml_path}"
            for included in _candidates(src, root, mjcf_path.parent, file, what, _included(xml_path, mjcf_path)):
                if included.is_file():
                    elements += _mjcf_elements(src, root, mjcf_path, included, seen)
    return elements


def _compile(src: str, mjcf_path: Path) -> tuple[mujoco.MjSpec, mujoco.MjModel]:
    try:
        spec = mujoco.MjSpec.from_file(str(mjcf_path))
        model = spec.compile()
    except (ValueError, mujoco.FatalError, mujoco.UnexpectedError) as exc:
        raise RobotSpecError(src, "mjcf", f"MuJoCo cannot load MJCF file '{mjcf_path}': {exc}") from exc
    return spec, model


def _model_range(src: str, model: mujoco.MjModel, mjcf_path: Path, joint: _Joint) -> tuple[float, float]:
    """The joint's range from the compiled model, which is in radians even for a degree MJCF."""
    jid = model.joint(joint.name).id
    if not model.jnt_limited[jid]:
        problem = (
            f"absent, and joint '{joint.name}' in '{mjcf_path}' has no range; give one here or limit it in the MJCF"
        )
        raise RobotSpecError(src, joint.fields["range"], problem)
    low, high = (float(v) for v in model.jnt_range[jid])
    return low, high

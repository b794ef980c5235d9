"""Loading a user's MJCF as a `RobotSpec` through a TOML file, and every way such a file can be wrong."""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest

from ogi.robots import RobotSpecError, get_robot, instrument
from ogi.robots.go2 import GO2, build_go2_spec
from ogi.robots.mjcf_toml import load_robot_toml

EXAMPLE_TOML = Path(__file__).resolve().parents[2] / "docs" / "examples" / "go2_user.toml"
TETRAHEDRON_OBJ = "v 0 0 0\nv 0.05 0 0\nv 0 0.05 0\nv 0 0 0.05\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def _user_xml(*, extras: bool = False) -> str:
    """The built-in Go2 as a user's MJCF; `extras` adds an actuator and a sensor of the user's own."""
    spec = build_go2_spec()
    if extras:
        spec.add_actuator(name="user_motor", target="FR_hip_joint", trntype=mujoco.mjtTrn.mjTRN_JOINT).set_to_motor()
        spec.add_sensor(
            name="user_pos",
            type=mujoco.mjtSensor.mjSENS_JOINTPOS,
            objtype=mujoco.mjtObj.mjOBJ_JOINT,
            objname="FR_hip_joint",
        )
    return spec.to_xml()


def _doc(*, ranges: bool = False) -> dict[str, Any]:
    joints = [
        {"name": name, "default": q0, "kp": kp, "kd": kd, "torque_limit": tau}
        for name, q0, kp, kd, tau in zip(GO2.joint_names, GO2.default_pose, GO2.kp, GO2.kd, GO2.torque_limit)
    ]
    if ranges:
        for joint, lim in zip(joints, GO2.joint_limits):
            joint["range"] = list(lim)
    return {
        "name": "my_go2",
        "mjcf": "go2.xml",
        "base_body": GO2.base_body,
        "imu_site": GO2.imu_site,
        "foot_sites": list(GO2.foot_sites),
        "nominal_base_height": GO2.nominal_base_height,
        "action_scale": GO2.action_scale,
        "termination_contact_bodies": list(GO2.termination_contact_bodies),
        "undesired_contact_bodies": list(GO2.undesired_contact_bodies),
        "joints": joints,
    }


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)  # also 'nan' and 'inf', which are TOML
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(v)


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _to_toml(doc: dict[str, Any]) -> str:
    lines = [f"{k} = {_value(v)}" for k, v in doc.items() if not _is_tables(v)]
    for joint in doc["joints"] if _is_tables(doc.get("joints")) else []:
        lines += ["", "[[joints]]", *(f"{k} = {_value(v)}" for k, v in joint.items())]
    return "\n".join(lines) + "\n"


def _write(folder: Path, doc: dict[str, Any], xml: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "go2.xml").write_text(_user_xml() if xml is None else xml)
    path = folder / "robot.toml"
    path.write_text(_to_toml(doc))
    return path


def _fails(path: Path, field_name: str, *words: str) -> RobotSpecError:
    with pytest.raises(RobotSpecError) as info:
        load_robot_toml(path)
    message = str(info.value)
    assert path.name in message and field_name in message, message
    for word in words:
        assert word in message, message
    return info.value


def test_user_mjcf_loads_as_the_builtin_go2(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc(), _user_xml(extras=True))
    robot = load_robot_toml(path)
    assert robot.name == "my_go2" and robot.source == str(path)
    for name in (
        "joint_names",
        "default_pose",
        "kp",
        "kd",
        "torque_limit",
        "foot_sites",
        "imu_site",
        "base_body",
        "nominal_base_height",
        "termination_contact_bodies",
        "undesired_contact_bodies",
        "action_scale",
    ):
        assert getattr(robot, name) == getattr(GO2, name), name
    np.testing.assert_allclose(robot.joint_limits, GO2.joint_limits)  # read from the MJCF file

    first, second = robot.build(), robot.build()
    assert isinstance(first, mujoco.MjSpec) and first is not second
    model = instrument(first, robot).compile()
    assert model.nu == 24
    names = {model.actuator(i).name for i in range(model.nu)} | {model.sensor(i).name for i in range(model.nsensor)}
    assert "user_motor" not in names and "user_pos" not in names


def test_get_robot_loads_a_toml_path(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc(ranges=True))
    assert get_robot(str(path)).joint_limits == GO2.joint_limits


def test_compact_form_equals_the_table_form(tmp_path: Path) -> None:
    doc = _doc()
    joints = doc.pop("joints")
    doc |= {
        "joint_names": [j["name"] for j in joints],
        "default_pose": [j["default"] for j in joints],
        "kp": 40.0,  # one value for all joints
        "kd": [j["kd"] for j in joints],
        "torque_limit": [j["torque_limit"] for j in joints],
        "joint_limits": [list(lim) for lim in GO2.joint_limits],
    }
    compact = load_robot_toml(_write(tmp_path / "compact", doc))
    tables = load_robot_toml(_write(tmp_path / "tables", _doc()))
    assert replace(compact, source=tables.source, description=tables.description) == tables


def test_example_toml_loads_next_to_a_go2_mjcf(tmp_path: Path) -> None:
    (tmp_path / "go2.xml").write_text(_user_xml())
    shutil.copy(EXAMPLE_TOML, tmp_path / EXAMPLE_TOML.name)
    robot = load_robot_toml(tmp_path / EXAMPLE_TOML.name)
    assert robot.joint_names == GO2.joint_names and robot.default_pose == GO2.default_pose


def _degree_xml() -> str:
    """The user Go2 with `<compiler angle="degree"/>` and its joint ranges in degrees."""
    xml = _user_xml().replace('angle="radian"', 'angle="degree"')
    assert "euler" not in xml and "axisangle" not in xml  # nothing else to convert

    def to_degrees(match: re.Match[str]) -> str:
        low, high = (math.degrees(float(v)) for v in match.group(1).split())
        return f'range="{low!r} {high!r}"'

    return re.sub(r'range="([^"]+)"', to_degrees, xml)


def test_degree_mjcf_limits_are_loaded_in_radians(tmp_path: Path) -> None:
    robot = load_robot_toml(_write(tmp_path, _doc(), _degree_xml()))
    np.testing.assert_allclose(robot.joint_limits, GO2.joint_limits)


def test_degree_mjcf_instrumented_limits_are_radians(tmp_path: Path) -> None:
    robot = load_robot_toml(_write(tmp_path, _doc(), _degree_xml()))
    model = instrument(robot.build(), robot).compile()
    ranges = [tuple(model.jnt_range[model.joint(j).id]) for j in robot.joint_names]
    np.testing.assert_allclose(ranges, robot.joint_limits)


# --- the TOML file itself


def test_missing_file(tmp_path: Path) -> None:
    _fails(tmp_path / "nowhere.toml", "(file)", "does not exist")


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc())
    path.write_text(path.read_text() + "kp = = 3\n")
    _fails(path, "(syntax)", "line")


@pytest.mark.parametrize(
    "key", ["name", "mjcf", "base_body", "imu_site", "foot_sites", "nominal_base_height", "joints"]
)
def test_missing_required_field(tmp_path: Path, key: str) -> None:
    doc = _doc()
    del doc[key]
    _fails(_write(tmp_path, doc), key, "missing")


def test_missing_joint_field(tmp_path: Path) -> None:
    doc = _doc()
    del doc["joints"][2]["kd"]
    _fails(_write(tmp_path, doc), "joints[2].kd", "missing")


@pytest.mark.parametrize(
    ("where", "typo", "meant"), [("top", "foot_site", "foot_sites"), ("joint", "defualt", "default")]
)
def test_unknown_field_suggests_the_near_name(tmp_path: Path, where: str, typo: str, meant: str) -> None:
    doc = _doc()
    (doc if where == "top" else doc["joints"][0])[typo] = doc["foot_sites"] if where == "top" else 0.0
    _fails(_write(tmp_path, doc), typo, "unknown", f"did you mean '{meant}'")


def test_both_joint_forms_at_once(tmp_path: Path) -> None:
    doc = _doc() | {"default_pose": list(GO2.default_pose)}
    _fails(_write(tmp_path, doc), "default_pose", "[[joints]]")


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        (lambda d: d.update(foot_sites="FR_foot"), "foot_sites"),
        (lambda d: d.update(nominal_base_height="0.3"), "nominal_base_height"),
        (lambda d: d.update(name=3), "name"),
        (lambda d: d.update(action_scale=True), "action_scale"),
        (lambda d: d["joints"][1].update(kp="40"), "joints[1].kp"),
        (lambda d: d["joints"][0].update(range=[-1.0, 1.0, 2.0]), "joints[0].range"),
        (lambda d: d.update(joints=[1, 2]), "joints"),
    ],
)
def test_wrong_type(tmp_path: Path, change, field_name: str) -> None:
    doc = _doc()
    change(doc)
    _fails(_write(tmp_path, doc), field_name)


@pytest.mark.parametrize("key", ["default_pose", "kd", "torque_limit", "joint_limits"])
def test_wrong_vector_length(tmp_path: Path, key: str) -> None:
    doc = _doc()
    joints = doc.pop("joints")
    doc |= {
        "joint_names": [j["name"] for j in joints],
        "default_pose": [j["default"] for j in joints],
        "kp": 40.0,
        "kd": 1.0,
        "torque_limit": 30.0,
        "joint_limits": [list(lim) for lim in GO2.joint_limits],
    }
    doc[key] = [doc[key][0]] * 11 if isinstance(doc[key], list) else [doc[key]] * 11
    _fails(_write(tmp_path, doc), key, "11 entries, expected 12")


@pytest.mark.parametrize("key", ["kp", "kd"])
def test_negative_gain(tmp_path: Path, key: str) -> None:
    doc = _doc()
    doc["joints"][4][key] = -1.0
    _fails(_write(tmp_path, doc), f"joints[4].{key}", "negative gain", "FL_thigh_joint")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_number(tmp_path: Path, bad: float) -> None:
    doc = _doc()
    doc["joints"][0]["default"] = bad
    _fails(_write(tmp_path, doc), "joints[0].default", "non-finite")


def test_default_outside_the_toml_range(tmp_path: Path) -> None:
    doc = _doc(ranges=True)
    doc["joints"][2]["default"] = 0.5  # calf range is [-2.723, -0.838]
    _fails(_write(tmp_path, doc), "joints[2].default", "outside", "FR_calf_joint")


def test_default_outside_the_mjcf_range(tmp_path: Path) -> None:
    doc = _doc()
    doc["joints"][0]["default"] = 2.0  # hip range is [-1.047, 1.047]
    _fails(_write(tmp_path, doc), "joints[0].default", "outside", "FR_hip_joint")


def test_range_absent_and_mjcf_joint_unlimited(tmp_path: Path) -> None:
    xml = _user_xml().replace('range="-2.723 -0.838" ', "", 1)
    assert xml != _user_xml()
    _fails(_write(tmp_path, _doc(), xml), "joints[", "has no range")


# --- paths that leave the TOML's folder


def test_mjcf_path_with_dotdot(tmp_path: Path) -> None:
    (tmp_path / "go2.xml").write_text(_user_xml())
    _fails(_write(tmp_path / "robot", _doc() | {"mjcf": "../go2.xml"}), "mjcf", "outside")


def test_mjcf_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "go2.xml").write_text(_user_xml())
    _fails(_write(tmp_path / "robot", _doc() | {"mjcf": str(tmp_path / "go2.xml")}), "mjcf", "absolute")


def test_mjcf_symlink_out_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "go2.xml").write_text(_user_xml())
    path = _write(tmp_path / "robot", _doc() | {"mjcf": "link.xml"})
    (tmp_path / "robot" / "link.xml").symlink_to(tmp_path / "go2.xml")
    _fails(path, "mjcf", "outside", "symlink")


def test_mjcf_file_missing(tmp_path: Path) -> None:
    _fails(_write(tmp_path, _doc() | {"mjcf": "other.xml"}), "mjcf", "does not exist")


@pytest.mark.parametrize(
    ("snippet", "words"),
    [
        ('<compiler meshdir="../meshes"/>', ("meshdir", "outside")),
        ('<compiler assetdir="/tmp"/>', ("assetdir", "absolute")),
        ('<asset><mesh name="m" file="../../m.stl"/></asset>', ("<mesh file>", "outside")),
        ('<asset><texture name="t" type="cube" fileup="/etc/t.png"/></asset>', ("fileup", "absolute")),
        ('<asset><hfield name="h" file="../h.png"/></asset>', ("<hfield file>", "outside")),
        ('<include file="../other.xml"/>', ("<include file>", "outside")),
    ],
)
def test_asset_path_out_of_the_folder(tmp_path: Path, snippet: str, words: tuple[str, ...]) -> None:
    xml = _user_xml().replace("<worldbody>", snippet + "\n  <worldbody>", 1)
    _fails(_write(tmp_path / "robot", _doc(), xml), "mjcf", "go2.xml", *words)


def test_asset_path_out_of_the_folder_in_an_included_file(tmp_path: Path) -> None:
    xml = _user_xml().replace("<worldbody>", '<include file="parts/assets.xml"/>\n  <worldbody>', 1)
    path = _write(tmp_path / "robot", _doc(), xml)
    (tmp_path / "robot" / "parts").mkdir()
    (tmp_path / "robot" / "parts" / "assets.xml").write_text(
        '<mujoco><asset><mesh file="../../m.stl"/></asset></mujoco>'
    )
    _fails(path, "mjcf", "assets.xml", "outside")


def test_asset_path_that_leaves_only_from_the_included_files_folder(tmp_path: Path) -> None:
    """MuJoCo also looks for an included file's assets next to that file; that path is checked too."""
    xml = _user_xml().replace("<worldbody>", '<include file="../../inc.xml"/>\n  <worldbody>', 1)
    path = _write(tmp_path / "robot", _doc() | {"mjcf": "a/b/go2.xml"})
    (tmp_path / "robot" / "a" / "b").mkdir(parents=True)
    (tmp_path / "robot" / "a" / "b" / "go2.xml").write_text(xml)
    (tmp_path / "robot" / "inc.xml").write_text('<mujoco><asset><mesh file="../x/m.obj"/></asset></mujoco>')
    _fails(path, "mjcf", "inc.xml", "outside")


def test_assets_and_includes_inside_the_folder_load(tmp_path: Path) -> None:
    xml = _user_xml().replace('<compiler angle="radian"/>', '<compiler angle="radian" meshdir="assets"/>', 1)
    xml = xml.replace("<worldbody>", '<include file="parts/extra.xml"/>\n  <worldbody>', 1)
    xml = xml.replace(
        '<site name="imu"', '<geom type="mesh" mesh="tetra" contype="0" conaffinity="0"/>\n<site name="imu"', 1
    )
    path = _write(tmp_path, _doc(), xml)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "tetra.obj").write_text(TETRAHEDRON_OBJ)
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "extra.xml").write_text('<mujoco><asset><mesh file="tetra.obj"/></asset></mujoco>')
    robot = load_robot_toml(path)
    assert instrument(robot.build(), robot).compile().nmesh == 1


# --- MJCFs MuJoCo rejects, and names it lacks


@pytest.mark.parametrize(
    "xml",
    [
        "<mujoco><worldbody>",  # not XML
        "<mujoco><worldbody><bogus/></worldbody></mujoco>",  # XML, but not MJCF
        '<mujoco><worldbody><geom type="mesh" mesh="nope"/></worldbody></mujoco>',  # does not compile
        '<mujoco><asset><mesh file="missing.stl"/></asset></mujoco>',  # asset file missing
    ],
)
def test_mjcf_mujoco_rejects(tmp_path: Path, xml: str) -> None:
    _fails(_write(tmp_path, _doc(), xml), "mjcf", "MJCF file", "go2.xml")


@pytest.mark.parametrize(
    ("change", "field_name", "near"),
    [
        (lambda d: d["joints"][0].update(name="FR_hip_jont"), "joint_names", "FR_hip_joint"),
        (lambda d: d.update(imu_site="imuu"), "imu_site", "imu"),
        (lambda d: d.update(foot_sites=["FR_foot", "FL_foot", "RR_foot", "RL_fot"]), "foot_sites", "RL_foot"),
        (lambda d: d.update(base_body="bse"), "base_body", "base"),
        (lambda d: d.update(undesired_contact_bodies=["FR_calff"]), "undesired_contact_bodies", "FR_calf"),
    ],
)
def test_name_missing_from_the_mjcf_suggests_near_names(tmp_path: Path, change, field_name: str, near: str) -> None:
    doc = _doc()
    change(doc)
    _fails(_write(tmp_path, doc), field_name, "not in the model", f"did you mean '{near}'")

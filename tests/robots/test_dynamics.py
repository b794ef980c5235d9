"""Dynamics profiles: TOML in and out, clear errors, and what they write into models."""

import math
import tomllib

import mujoco
import numpy as np
import pytest

from ogi.robots import get_robot
from ogi.robots.dynamics import ProfileError, load_profile, nominal_profile, parse_profile


@pytest.fixture(scope="module")
def go2():
    return get_robot("go2")


def test_nominal_profile_reads_the_model(go2):
    model = go2.build().compile()
    profile = nominal_profile(go2)
    dof = model.jnt_dofadr[model.joint(go2.joint_names[2]).id]  # a calf
    assert profile.joints["calf"].armature == pytest.approx(model.dof_armature[dof])
    assert profile.joints["calf"].frictionloss == pytest.approx(model.dof_frictionloss[dof])
    assert profile.strength == 1.0 and profile.delay_ms == 0.0


def test_toml_round_trip_keeps_every_value(go2):
    profile = nominal_profile(go2).with_values(
        **{"hip.armature": 0.031, "calf.damping": 0.77, "strength": 0.8, "delay_ms": 7.5, "speed_knee_rad_s": 15.0}
    )
    profile = profile.with_values(max_speed_rad_s=30.0)
    again = parse_profile(tomllib.loads(profile.to_toml("a header")), "again")
    assert again.flat() == profile.flat()


def test_apply_to_model_sets_joint_dynamics_and_base_mass(go2):
    model = go2.build().compile()
    base = model.body(go2.base_body).id
    mass = float(model.body_mass[base])
    profile = nominal_profile(go2).with_values(**{"thigh.armature": 0.05, "base_mass_offset_kg": 1.5})
    profile.apply_to_model(model, go2)
    thighs = [model.jnt_dofadr[model.joint(j).id] for j in go2.joint_names if "thigh" in j]
    hips = [model.jnt_dofadr[model.joint(j).id] for j in go2.joint_names if "hip" in j]
    assert np.allclose(model.dof_armature[thighs], 0.05)
    assert np.allclose(model.dof_armature[hips], 0.01)
    assert model.body_mass[base] == pytest.approx(mass + 1.5)


def test_torque_speed_curve(go2):
    profile = nominal_profile(go2).with_values(strength=0.5, speed_knee_rad_s=10.0, max_speed_rad_s=20.0)
    limit = np.array([10.0, 10.0, 10.0])
    assert np.allclose(profile.torque_limit(limit, np.array([0.0, 15.0, -25.0])), [5.0, 2.5, 0.0])
    assert np.allclose(nominal_profile(go2).torque_limit(limit, np.array([1e3, 0, 0])), limit)  # no curve: inf


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[joints.hip]\narmature = -1.0\n", "joints.hip.armature = -1.0 must be in [0.0, 1.0]"),
        ("[motors]\nstrength = 0.0\n", "motors.strength = 0.0 must be in [0.05, 5]"),
        ("[motors]\ndelay = 3\n", "motors: unknown key(s) ['delay']"),
        ("[joints.hip]\narmature = 'a'\n", "joints.hip.armature = 'a' must be a number"),
        ("[gains]\nkp = 1\n", "unknown table(s) ['gains']"),
        ("[motors]\nspeed_knee_rad_s = 20.0\nmax_speed_rad_s = 10.0\n", "is below speed_knee_rad_s"),
        ("[joints\n", "not valid TOML"),
    ],
)
def test_bad_profiles_name_file_and_field(tmp_path, text, message):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_class_matching_no_joint_is_an_error(go2, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[joints.elbow]\narmature = 0.02\n")
    with pytest.raises(ProfileError, match="joint class\\(es\\) \\['elbow'\\] match no joint of robot 'go2'"):
        load_profile(path).apply_to_model(go2.build().compile(), go2)


def test_inf_survives_the_file(go2, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(nominal_profile(go2).to_toml())
    assert math.isinf(load_profile(path).max_speed_rad_s)
    assert isinstance(mujoco.MjModel, type)

import dataclasses

import pytest

from ogi.envs import ConfigError, SimConfig, WalkConfig, load_walk_config
from ogi.envs.config import CommandConfig, RandomizationConfig


def test_substeps_must_be_whole():
    assert SimConfig(sim_dt_s=0.001, ctrl_dt_s=0.02).substeps == 20
    assert SimConfig(sim_dt_s=0.002, ctrl_dt_s=0.02).substeps == 10
    with pytest.raises(ConfigError, match="whole number"):
        SimConfig(sim_dt_s=0.003, ctrl_dt_s=0.02)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: WalkConfig(num_envs=0), "num_envs"),
        (lambda: SimConfig(sim_dt_s=-1.0), "sim.sim_dt_s"),
        (lambda: CommandConfig(lin_vel_x_mps=(1.0, -1.0)), "commands.lin_vel_x_mps"),
        (lambda: RandomizationConfig(friction=(0.5, float("nan"))), "randomization.friction"),
        (lambda: WalkConfig(action_clip=0.0), "action_clip"),
    ],
)
def test_bad_values_name_the_field(make, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        make()


def test_replace_does_not_mutate_the_original():
    base = WalkConfig()
    changed = dataclasses.replace(base, num_envs=8)
    assert base.num_envs == 64 and changed.num_envs == 8


def test_toml_round_trip_and_errors(tmp_path):
    good = tmp_path / "walk.toml"
    good.write_text(
        'robot = "go2"\nnum_envs = 8\n[sim]\nsim_dt_s = 0.002\n[commands]\nlin_vel_x_mps = [0.0, 1.0]\n'
        "[rewards.weights]\ntracking_lin_vel = 2.0\n"
    )
    cfg = load_walk_config(good)
    assert cfg.num_envs == 8 and cfg.sim.substeps == 10 and cfg.commands.lin_vel_x_mps == (0.0, 1.0)
    assert dict(cfg.rewards.weights) == {"tracking_lin_vel": 2.0}

    typo = tmp_path / "typo.toml"
    typo.write_text("[sim]\nsim_dt = 0.002\n")
    with pytest.raises(ConfigError, match=r"typo\.toml.*sim\.sim_dt.*did you mean 'sim\.sim_dt_s'"):
        load_walk_config(typo)

    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text('num_envs = "many"\n')
    with pytest.raises(ConfigError, match="num_envs"):
        load_walk_config(wrong_type)

    broken = tmp_path / "broken.toml"
    broken.write_text("num_envs = = 3\n")
    with pytest.raises(ConfigError, match="broken.toml: invalid TOML"):
        load_walk_config(broken)

    with pytest.raises(ConfigError, match="no such config file"):
        load_walk_config(tmp_path / "missing.toml")

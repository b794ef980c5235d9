"""The config toolkit: range checks and the TOML -> nested frozen dataclass loader, with hand-picked values."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pytest

from ogi.validation import (
    ConfigError,
    check_choice,
    check_int,
    check_interval,
    check_range,
    config_from_dict,
    config_from_toml,
    unknown_field,
)


def test_check_int_bounds_are_inclusive_and_bool_or_float_is_not_an_integer():
    for value in (1, 3, 5, np.int64(4)):
        check_int("steps", value, 1, 5)
    for value, shown in ((0, "0"), (6, "6"), (True, "True"), (2.0, "2.0"), ("3", "'3'")):
        with pytest.raises(ConfigError, match=rf"^steps = {shown} must be an integer in \[1, 5\]$"):
            check_int("steps", value, 1, 5)


def test_check_range_takes_finite_numbers_not_bools():
    for value in (0.0, 0.5, 1, np.float32(0.25)):
        check_range("rate", value, 0.0, 1.0)
    for value in (-0.001, 1.5, float("nan"), float("inf"), True, "0.5", None):
        with pytest.raises(ConfigError, match=r"^rate = .* must be a finite number in \[0.0, 1.0\]$"):
            check_range("rate", value, 0.0, 1.0)


def test_check_interval_names_the_end_that_is_out_of_range():
    check_interval("friction", (0.4, 1.25), 0.0, 5.0)
    check_interval("friction", [1.0, 1.0], 0.0, 5.0)  # a single value is a valid interval
    with pytest.raises(ConfigError, match=r"^friction\[1\] = 6 must be"):
        check_interval("friction", (0.4, 6), 0.0, 5.0)
    with pytest.raises(ConfigError, match="min must not exceed max"):
        check_interval("friction", (1.25, 0.4), 0.0, 5.0)
    with pytest.raises(ConfigError, match=r"must be a \(min, max\) pair"):
        check_interval("friction", (0.4,), 0.0, 5.0)
    with pytest.raises(ConfigError, match=r"must be a \(min, max\) pair"):
        check_interval("friction", 0.4, 0.0, 5.0)


def test_check_choice_lists_what_is_allowed():
    check_choice("actor.kind", "gru", ("mlp", "gru"))
    with pytest.raises(ConfigError, match=r"^actor.kind = 'rnn' must be one of mlp, gru$"):
        check_choice("actor.kind", "rnn", ("mlp", "gru"))


def test_unknown_field_hints_the_closest_name_with_its_table():
    assert str(unknown_field("sim_dt", ["sim_dt_s", "ctrl_dt_s"], "sim.")) == (
        "unknown config field 'sim.sim_dt' (did you mean 'sim.sim_dt_s'?); known: sim_dt_s, ctrl_dt_s"
    )
    assert "did you mean" not in str(unknown_field("zzz", ["sim_dt_s"]))


@dataclass(frozen=True, kw_only=True)
class Motor:
    rate_hz: float = 50.0
    steps: int = 10
    enabled: bool = True
    name: str = "hip"

    def __post_init__(self) -> None:
        check_range("motor.rate_hz", self.rate_hz, 1.0, 1000.0)


@dataclass(frozen=True, kw_only=True)
class Robot:
    motor: Motor = field(default_factory=Motor)
    widths: tuple[int, ...] = (8, 8)
    interval: tuple[float, float] = (0.0, 1.0)
    weights: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0


def test_loader_builds_nested_dataclasses_and_keeps_the_defaults_it_is_not_given():
    robot = config_from_dict(
        Robot, {"motor": {"rate_hz": 100}, "widths": [4, 2], "interval": [0, 0.5], "weights": {"a": 1, "b": -0.5}}
    )
    assert robot.motor == Motor(rate_hz=100.0)
    assert type(robot.motor.rate_hz) is float  # an integer is accepted for a float field, as a float
    assert robot.widths == (4, 2) and robot.interval == (0.0, 0.5)  # arrays become tuples
    assert robot.weights == {"a": 1.0, "b": -0.5} and robot.seed == 0
    assert config_from_dict(Robot, {}) == Robot()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"seed": True}, r"^seed = True must be an integer$"),
        ({"seed": 2.0}, r"^seed = 2.0 must be an integer$"),
        ({"motor": {"enabled": 1}}, r"^motor.enabled = 1 must be true or false$"),
        ({"motor": {"rate_hz": "fast"}}, r"^motor.rate_hz = 'fast' must be a number$"),
        ({"motor": {"rate_hz": False}}, r"^motor.rate_hz = False must be a number$"),
        ({"motor": {"name": 3}}, r"^motor.name = 3 must be a string$"),
        ({"motor": 3}, r"^motor must be a table, got 3$"),
        ({"widths": 4}, r"^widths = 4 must be an array$"),
        ({"widths": [4, 2.5]}, r"^widths\[1\] = 2.5 must be an integer$"),
        ({"interval": [0, 1, 2]}, r"^interval = \[0, 1, 2\] must be an array of 2 items$"),
        ({"weights": {"a": "x"}}, r"^weights.a = 'x' must be a number$"),
        ({"weights": 1.0}, r"^weights must be a table, got 1.0$"),
        ({"motor": {"rate": 3}}, r"^unknown config field 'motor.rate' \(did you mean 'motor.rate_hz'\?\)"),
        # the dataclass's own checks run on the loaded values
        ({"motor": {"rate_hz": 0}}, r"^motor.rate_hz = 0.0 must be a finite number in \[1.0, 1000.0\]$"),
    ],
)
def test_loader_errors_name_the_dotted_field_and_the_type(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(Robot, data)


def test_toml_file_errors_name_the_file_too(tmp_path):
    path = tmp_path / "robot.toml"
    path.write_text("seed = 3\nwidths = [16]\n[motor]\nsteps = 4\nenabled = false\n")
    assert config_from_toml(Robot, path) == Robot(seed=3, widths=(16,), motor=Motor(steps=4, enabled=False))
    path.write_text("[motor]\nsteps = 4.0\n")
    with pytest.raises(ConfigError, match=r"robot.toml: motor.steps = 4.0 must be an integer$"):
        config_from_toml(Robot, path)
    with pytest.raises(ConfigError, match="no such config file"):
        config_from_toml(Robot, tmp_path / "missing.toml")


def test_every_config_file_reader_applies_the_same_rules(tmp_path):
    """The walk task, the language-model stages and training runs read TOML through the one loader."""
    from ogi.envs.config import load_walk_config
    from ogi.lm.config import PretrainConfig, load_config
    from ogi.training.config import TrainConfig, load_train_config

    path = tmp_path / "bad.toml"
    path.write_text("num_envs = true\n")
    with pytest.raises(ConfigError, match=r"num_envs = True must be an integer$"):
        load_walk_config(path)
    path.write_text("steps = true\n")
    with pytest.raises(ConfigError, match=r"steps = True must be an integer$"):
        load_config(PretrainConfig, path)
    path.write_text("[actor]\nrecurrent_size = true\n")
    with pytest.raises(ConfigError, match=r"actor.recurrent_size = True must be an integer$"):
        load_train_config(path, TrainConfig())
    path.write_text("[env.terrain.curriculum]\nnum_levels = 2.0\n")
    with pytest.raises(ConfigError, match=r"env.terrain.curriculum.num_levels = 2.0 must be an integer$"):
        load_train_config(path, TrainConfig())

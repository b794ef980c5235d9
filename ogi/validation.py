"""Config checks shared by every config dataclass, and the one loader from TOML tables to nested frozen dataclasses.

Errors are `ConfigError`s that name the dotted field and what it allows: `actor.recurrent_size = 0 must be an
integer in [1, 65536]`, `unknown config field 'sim.sim_dt' (did you mean 'sim.sim_dt_s'?)`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

Config = TypeVar("Config")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the allowed range."""


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but `steps = true` in a TOML file is a mistake, not 1
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_range(name: str, value: float, low: float, high: float) -> None:
    """`value` is a finite number (not a bool) in [low, high]."""
    if not (_is_number(value) and math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name} = {value!r} must be a finite number in [{low}, {high}]")


def check_int(name: str, value: int, low: int, high: int) -> None:
    """`value` is an integer (not a bool, not a float such as 2.0) in [low, high]."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high):
        raise ConfigError(f"{name} = {value!r} must be an integer in [{low}, {high}]")


def check_interval(name: str, interval: tuple[float, float], low: float, high: float) -> None:
    """`interval` is a (min, max) pair, both in [low, high], min <= max."""
    if not isinstance(interval, (tuple, list)) or len(interval) != 2:
        raise ConfigError(f"{name} = {interval!r} must be a (min, max) pair")
    check_range(f"{name}[0]", interval[0], low, high)
    check_range(f"{name}[1]", interval[1], low, high)
    if interval[0] > interval[1]:
        raise ConfigError(f"{name} = {interval!r}: min must not exceed max")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """`value` is one of `allowed`."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r} must be one of {', '.join(map(str, allowed))}")


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML config file's tables; a missing file or bad syntax is a `ConfigError` naming the file."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def unknown_field(key: str, known: Iterable[str], prefix: str = "") -> ConfigError:
    """The error for a config key no field has, with the closest field name as a hint."""
    known = list(known)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config field '{prefix}{key}'{hint}; known: {', '.join(known)}")


def config_from_dict(cls: type[Config], data: Mapping[str, Any], prefix: str = "") -> Config:
    """Build the frozen dataclass `cls` from plain (TOML) data; fields `data` leaves out keep their defaults.

    Type rules, by the field's annotation: a nested dataclass takes a table; `tuple[...]` takes an array (a list
    becomes a tuple, items checked); `Mapping[str, X]` takes a table of X; `float` takes an integer too (as a float);
    `int` takes only an integer (not `true`, not `2.0`); `bool` only true or false; `str` only a string. A key no
    field has is `unknown_field`; a value of the wrong type names the dotted field and the type expected. The
    dataclass's own `__post_init__` checks ranges and invariants.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a table, got {data!r}")
    fields = {item.name: item for item in dataclasses.fields(cls) if item.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise unknown_field(key, fields, prefix)
        kwargs[key] = _typed(f"{prefix}{key}", hints[key], value)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {err}") from None


def config_from_toml(cls: type[Config], path: Path) -> Config:
    """A `cls` from a TOML file; errors name the file and the field."""
    data = read_toml(path)
    try:
        return config_from_dict(cls, data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _typed(name: str, hint: Any, value: Any) -> Any:
    """`value` checked against the annotation `hint` (and converted: list -> tuple, int -> float)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value, f"{name}.")
    if origin in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) == 1:
            return _typed(name, options[0], value)
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} = {value!r} must be an array")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [args[0]] * len(value)
        elif args and len(args) != len(value):
            raise ConfigError(f"{name} = {value!r} must be an array of {len(args)} items")
        else:
            items = list(args) or [Any] * len(value)
        return tuple(_typed(f"{name}[{index}]", item, entry) for index, (item, entry) in enumerate(zip(items, value)))
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a table, got {value!r}")
        value_hint = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        return {key: _typed(f"{name}.{key}", value_hint, entry) for key, entry in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} = {value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} = {value!r} must be an integer")
        return value
    if hint is float:
        if not _is_number(value):
            raise ConfigError(f"{name} = {value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} = {value!r} must be a string")
        return value
    return value

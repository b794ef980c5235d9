"""Config validation shared by every config dataclass: errors name the field and the allowed range."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
import tomllib
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the allowed range."""


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name} = {value!r} must be a finite number in [{low}, {high}]")


def check_interval(name: str, interval: tuple[float, float], low: float, high: float) -> None:
    if len(interval) != 2:
        raise ConfigError(f"{name} = {interval!r} must be a (min, max) pair")
    check_range(f"{name}[0]", interval[0], low, high)
    check_range(f"{name}[1]", interval[1], low, high)
    if interval[0] > interval[1]:
        raise ConfigError(f"{name} = {interval!r}: min must not exceed max")


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

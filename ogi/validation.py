"""Config validation shared by every config dataclass: errors name the field and the allowed range."""

from __future__ import annotations

import math


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

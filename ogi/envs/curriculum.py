"""Terrain and command curriculum by success rate: pure updates of each simulation's (kind, level) tile.

Terrain tiles form a grid: `num_kinds` terrain kinds (columns) by `num_levels` difficulty levels (rows).
Each simulation keeps a window of its last episodes' outcomes; a full window with a high success rate moves it one
level up, a low one moves it one level down. A global command level widens the velocity-command ranges the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ogi.validation import ConfigError, check_int, check_range

EMPTY = -1  # outcome slot not yet filled; 0 is a failure, 1 a success
STANDING_DISTANCE_M = 0.1  # below this commanded distance an episode succeeds by not falling


@dataclass(frozen=True, kw_only=True)
class CurriculumConfig:
    enabled: bool = True  # off: levels and command level never change
    num_levels: int = 10  # difficulty rows; level l has difficulty l / (num_levels - 1)
    initial_max_level: int = 3  # simulations start uniformly in levels [0, initial_max_level]
    window: int = 4  # recent episodes per simulation that decide a level change
    promote_above: float = 0.8  # success rate of a full window strictly above this: one level up
    demote_below: float = 0.5  # strictly below this: one level down; in between: stay
    min_distance_fraction: float = 0.5  # success needs this fraction of the commanded distance covered
    command_levels: int = 5  # command level c scales the command ranges by (c + 1) / command_levels
    command_promote_above: float = 0.8  # batch success rate above which the command level rises

    def __post_init__(self) -> None:
        check_int("curriculum.num_levels", self.num_levels, 1, 100_000)
        check_int("curriculum.initial_max_level", self.initial_max_level, 0, self.num_levels - 1)
        check_int("curriculum.window", self.window, 1, 100_000)
        check_range("curriculum.promote_above", self.promote_above, 0, 1)
        check_range("curriculum.demote_below", self.demote_below, 0, 1)
        if not self.demote_below < self.promote_above:
            raise ConfigError(
                f"curriculum.demote_below = {self.demote_below!r} must be below curriculum.promote_above = "
                f"{self.promote_above!r} (0 <= demote_below < promote_above <= 1)"
            )
        check_range("curriculum.min_distance_fraction", self.min_distance_fraction, 0, 1)
        check_int("curriculum.command_levels", self.command_levels, 1, 100_000)
        check_range("curriculum.command_promote_above", self.command_promote_above, 0, 1)

    @property
    def top_level(self) -> int:
        return self.num_levels - 1


def _frozen_array(value: Any, dtype: type, ndim: int, name: str) -> np.ndarray:
    array = np.array(value, dtype=dtype)  # a private copy: the caller's array stays theirs
    if array.ndim != ndim:
        raise ValueError(f"CurriculumState.{name} must have {ndim} dimension(s), got shape {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False, kw_only=True)
class CurriculumState:
    """Curriculum of n simulations. Arrays are read-only copies; updates return a new state."""

    level: np.ndarray  # (n,) int64 difficulty row of each simulation's tile, in [0, num_levels - 1]
    kind: np.ndarray  # (n,) int64 terrain column of each simulation's tile
    outcomes: np.ndarray  # (n, window) int8 last outcomes, oldest first: -1 empty, 0 failure, 1 success
    num_levels: int  # kept so a summary and a resumed run know the top level
    command_level: int = 0
    episodes_since_command_change: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", _frozen_array(self.level, np.int64, 1, "level"))
        object.__setattr__(self, "kind", _frozen_array(self.kind, np.int64, 1, "kind"))
        object.__setattr__(self, "outcomes", _frozen_array(self.outcomes, np.int8, 2, "outcomes"))
        n = self.level.shape[0]
        if self.kind.shape != (n,) or self.outcomes.shape[0] != n:
            raise ValueError(
                f"CurriculumState: level {self.level.shape}, kind {self.kind.shape} and outcomes "
                f"{self.outcomes.shape} must agree on the number of simulations"
            )
        if n and (self.level.min() < 0 or self.level.max() >= self.num_levels):
            raise ValueError(f"CurriculumState.level must lie in [0, {self.num_levels - 1}]")
        if not np.isin(self.outcomes, (EMPTY, 0, 1)).all():
            raise ValueError("CurriculumState.outcomes may only hold -1 (empty), 0 (failure) or 1 (success)")

    @property
    def num_envs(self) -> int:
        return self.level.shape[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able plain lists and ints, for a checkpoint; `from_dict` restores the state exactly."""
        return {
            "level": self.level.tolist(),
            "kind": self.kind.tolist(),
            "outcomes": self.outcomes.tolist(),
            "window": int(self.outcomes.shape[1]),
            "num_levels": int(self.num_levels),
            "command_level": int(self.command_level),
            "episodes_since_command_change": int(self.episodes_since_command_change),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CurriculumState:
        level = np.array(data["level"], dtype=np.int64)
        # reshape keeps the (0, window) shape of an empty batch, which a nested list cannot carry
        outcomes = np.array(data["outcomes"], dtype=np.int8).reshape(level.shape[0], int(data["window"]))
        return CurriculumState(
            level=level,
            kind=data["kind"],
            outcomes=outcomes,
            num_levels=int(data["num_levels"]),
            command_level=int(data["command_level"]),
            episodes_since_command_change=int(data["episodes_since_command_change"]),
        )


def held_curriculum(level: int, kind: np.ndarray, cfg: CurriculumConfig) -> CurriculumState:
    """Every simulation on terrain `level`, on its `kind` (n,), commands at their full range: a state for judging
    a policy at one difficulty (with `cfg.enabled` off, nothing moves it)."""
    n = len(kind)
    return CurriculumState(
        level=np.full(n, level),
        kind=np.asarray(kind),
        outcomes=np.full((n, cfg.window), EMPTY, dtype=np.int8),
        num_levels=cfg.num_levels,
        command_level=cfg.command_levels - 1,
    )


def initial_curriculum(
    num_envs: int, num_kinds: int, cfg: CurriculumConfig, rng: np.random.Generator
) -> CurriculumState:
    """Kinds round-robin (`arange(n) % num_kinds`, so every kind is covered), levels uniform in
    [0, initial_max_level]. With the curriculum off, levels span every row and commands their full range,
    since nothing would ever move them there."""
    if num_envs < 0 or num_kinds < 1:
        raise ValueError(f"need num_envs >= 0 and num_kinds >= 1, got {num_envs} and {num_kinds}")
    highest_start = cfg.initial_max_level if cfg.enabled else cfg.top_level
    return CurriculumState(
        level=rng.integers(0, highest_start + 1, size=num_envs),
        kind=np.arange(num_envs) % num_kinds,
        outcomes=np.full((num_envs, cfg.window), EMPTY, dtype=np.int8),
        num_levels=cfg.num_levels,
        command_level=0 if cfg.enabled else cfg.command_levels - 1,
    )


def episode_success(
    fell: np.ndarray, distance_m: np.ndarray, commanded_distance_m: np.ndarray, cfg: CurriculumConfig
) -> np.ndarray:
    """(n,) bool: did not fall, and covered at least min_distance_fraction of the commanded distance.

    Distances are non-negative, (n,): how far the robot got from its spawn, and how far perfect tracking of its
    commands would have taken it (the commanded velocity turned by the robot's heading, integrated: a circle or a
    reversal nets out). A commanded distance under STANDING_DISTANCE_M (standing still) asks only not to fall.
    """
    fell = np.asarray(fell, dtype=bool)
    distance_m = np.asarray(distance_m, dtype=np.float64)
    commanded_distance_m = np.asarray(commanded_distance_m, dtype=np.float64)
    standing = commanded_distance_m < STANDING_DISTANCE_M
    far_enough = distance_m >= cfg.min_distance_fraction * commanded_distance_m
    return ~fell & (standing | far_enough)


def _check_state_matches(state: CurriculumState, cfg: CurriculumConfig) -> None:
    if state.outcomes.shape[1] != cfg.window or state.num_levels != cfg.num_levels:
        raise ValueError(
            f"curriculum state (window {state.outcomes.shape[1]}, num_levels {state.num_levels}) does not match "
            f"the config (window {cfg.window}, num_levels {cfg.num_levels})"
        )


def update_curriculum(
    state: CurriculumState,
    env_ids: np.ndarray,
    success: np.ndarray,
    cfg: CurriculumConfig,
    rng: np.random.Generator,
) -> CurriculumState:
    """New state after the episodes of `env_ids` (m,) ended with `success` (m,) bool; `state` is untouched.

    A simulation whose window is full moves up a level if its success rate > promote_above, down one (not below 0)
    if < demote_below, and its window is then cleared. One promoted past the top level goes to a uniformly random
    level, so the top terrain keeps being revisited without the rest being forgotten. The command level rises by one
    (never falls) when the batch's success rate > command_promote_above and at least `window` episodes have ended
    since its last change. `rng` is drawn from only when a simulation passes the top level.
    """
    _check_state_matches(state, cfg)
    ids = np.asarray(env_ids, dtype=np.int64).reshape(-1)
    won = np.asarray(success, dtype=bool).reshape(-1)
    if ids.shape != won.shape:
        raise ValueError(f"env_ids {ids.shape} and success {won.shape} must have the same length")
    if np.unique(ids).size != ids.size:
        raise ValueError("env_ids must not repeat: each simulation ends at most one episode per update")
    if ids.size and (ids.min() < 0 or ids.max() >= state.num_envs):
        raise ValueError(f"env_ids must lie in [0, {state.num_envs - 1}]")

    level = state.level.copy()
    outcomes = state.outcomes.copy()
    # slide each ended simulation's window by one: the oldest outcome drops out, the newest enters last
    outcomes[ids] = np.concatenate([outcomes[ids, 1:], won[:, None].astype(np.int8)], axis=1)

    command_level = state.command_level
    episodes_since_command_change = state.episodes_since_command_change + int(ids.size)
    if cfg.enabled and ids.size:
        window = outcomes[ids]
        full = (window != EMPTY).all(axis=1)
        success_rate = window.mean(axis=1, dtype=np.float64)
        promote = full & (success_rate > cfg.promote_above)
        demote = full & (success_rate < cfg.demote_below)
        down = ids[demote]
        level[down] = np.maximum(level[down] - 1, 0)
        up = ids[promote]
        level[up] += 1
        past_top = up[level[up] > cfg.top_level]
        if past_top.size:
            level[past_top] = rng.integers(0, cfg.num_levels, size=past_top.size)
        outcomes[ids[promote | demote]] = EMPTY

        if (
            command_level < cfg.command_levels - 1
            and episodes_since_command_change >= cfg.window
            and won.mean() > cfg.command_promote_above
        ):
            command_level += 1
            episodes_since_command_change = 0

    return CurriculumState(
        level=level,
        kind=state.kind,
        outcomes=outcomes,
        num_levels=state.num_levels,
        command_level=command_level,
        episodes_since_command_change=episodes_since_command_change,
    )


def level_difficulty(level: np.ndarray, cfg: CurriculumConfig) -> np.ndarray:
    """Difficulty in [0, 1] of each level, l / (num_levels - 1); a single level is difficulty 0."""
    level = np.asarray(level, dtype=np.float64)
    if cfg.num_levels == 1:
        return np.zeros_like(level)
    return level / cfg.top_level


def command_scale(state: CurriculumState, cfg: CurriculumConfig) -> float:
    """Factor in (0, 1] on the configured command ranges: (command_level + 1) / command_levels."""
    return (state.command_level + 1) / cfg.command_levels


def curriculum_summary(state: CurriculumState, num_kinds: int) -> dict[str, Any]:
    """Progress numbers for bars and logs; a kind with no simulations has mean level nan."""
    level = state.level.astype(np.float64)
    per_kind = [
        float(level[state.kind == k].mean()) if (state.kind == k).any() else float("nan") for k in range(num_kinds)
    ]
    return {
        "mean_level": float(level.mean()) if level.size else float("nan"),
        "mean_level_per_kind": per_kind,
        "fraction_at_top": float((state.level == state.num_levels - 1).mean()) if level.size else 0.0,
        "command_level": int(state.command_level),
    }

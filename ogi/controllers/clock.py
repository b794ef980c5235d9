"""One simulated clock for the three rates of the control hierarchy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_RATES_HZ: Mapping[str, float] = {"planner": 5.0, "policy": 50.0, "pd": 1000.0}


@dataclass
class ControlClock:
    """Counts physics ticks of `sim_dt_s` and says which loops run at each tick.

    Time is kept as an integer tick count, so the rates stay exact over any horizon: a loop of rate
    r runs at ticks that are multiples of 1 / (r * sim_dt_s), which must be a whole number.
    """

    sim_dt_s: float = 0.001
    rates_hz: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES_HZ))
    tick: int = 0

    def __post_init__(self) -> None:
        if not self.sim_dt_s > 0:
            raise ValueError(f"sim_dt_s = {self.sim_dt_s} must be > 0")
        self._period_ticks: dict[str, int] = {}
        for name, rate in self.rates_hz.items():
            if not rate > 0:
                raise ValueError(f"rate of '{name}' = {rate} Hz must be > 0")
            ticks = 1.0 / (rate * self.sim_dt_s)
            if abs(ticks - round(ticks)) > 1e-6 or round(ticks) < 1:
                raise ValueError(
                    f"rate of '{name}' = {rate} Hz is not a whole number of {self.sim_dt_s} s physics steps"
                )
            self._period_ticks[name] = round(ticks)

    @property
    def time_s(self) -> float:
        return self.tick * self.sim_dt_s

    def period_ticks(self, name: str) -> int:
        return self._period_ticks[name]

    def due(self) -> tuple[str, ...]:
        """Loops that run at the current tick, slowest first."""
        names = sorted(self._period_ticks, key=lambda n: -self._period_ticks[n])
        return tuple(n for n in names if self.tick % self._period_ticks[n] == 0)

    def advance(self) -> None:
        self.tick += 1

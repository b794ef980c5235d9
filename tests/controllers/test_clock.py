import pytest

from ogi.controllers import ControlClock


def test_three_rates_count_exactly_per_simulated_second():
    clock = ControlClock(sim_dt_s=0.001)
    calls = {"planner": 0, "policy": 0, "pd": 0}
    for _ in range(3):  # three simulated seconds, counted one by one
        per_second = dict.fromkeys(calls, 0)
        for _ in range(1000):
            for name in clock.due():
                per_second[name] += 1
            clock.advance()
        assert per_second == {"planner": 5, "policy": 50, "pd": 1000}
        for name in calls:
            calls[name] += per_second[name]
    assert clock.time_s == pytest.approx(3.0)
    assert calls == {"planner": 15, "policy": 150, "pd": 3000}


def test_slowest_loop_runs_first_and_all_start_together():
    clock = ControlClock(sim_dt_s=0.001)
    assert clock.due() == ("planner", "policy", "pd")
    clock.advance()
    assert clock.due() == ("pd",)


def test_rate_that_is_not_a_whole_number_of_steps_is_refused():
    with pytest.raises(ValueError, match="policy"):
        ControlClock(sim_dt_s=0.001, rates_hz={"policy": 300.0})
    with pytest.raises(ValueError, match="> 0"):
        ControlClock(sim_dt_s=0.001, rates_hz={"pd": 0.0})

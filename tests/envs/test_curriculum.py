import dataclasses
import json

import numpy as np
import pytest

from ogi.envs.curriculum import (
    EMPTY,
    CurriculumConfig,
    CurriculumState,
    command_scale,
    curriculum_summary,
    episode_success,
    initial_curriculum,
    level_difficulty,
    update_curriculum,
)
from ogi.validation import ConfigError

CFG = CurriculumConfig()  # window 4, promote > 0.8, demote < 0.5, 10 levels


def _state(levels, outcomes, kinds=None, command_level=0, episodes=0, num_levels=10):
    levels = np.asarray(levels)
    return CurriculumState(
        level=levels,
        kind=np.zeros_like(levels) if kinds is None else kinds,
        outcomes=np.asarray(outcomes, dtype=np.int8).reshape(len(levels), -1),
        num_levels=num_levels,
        command_level=command_level,
        episodes_since_command_change=episodes,
    )


def _end_one(levels, outcomes, last_success, cfg=CFG, rng=None):
    """Simulation 0 had `outcomes` and ends one more episode with `last_success`."""
    state = _state(levels, outcomes)
    return update_curriculum(state, np.array([0]), np.array([last_success]), cfg, rng or np.random.default_rng(0))


@pytest.mark.parametrize(
    "before, last, expected_level",
    [
        ([-1, 1, 1, 1], True, 3),  # [1,1,1,1]: rate 1 > 0.8 -> promote
        ([-1, 1, 1, 0], False, 2),  # [1,1,0,0]: rate 0.5 is not < 0.5 -> stay
        ([-1, 1, 1, 1], False, 2),  # [1,1,1,0]: rate 0.75 is not > 0.8 -> stay
        ([-1, 1, 0, 0], False, 1),  # [1,0,0,0]: rate 0.25 < 0.5 -> demote
        ([-1, -1, 1, 1], True, 2),  # [1,1,1] not yet a full window -> no change
    ],
)
def test_window_of_four_decides_the_level(before, last, expected_level):
    after = _end_one([2], before, last)
    assert after.level.tolist() == [expected_level]


def test_change_clears_the_window_and_band_keeps_it():
    promoted = _end_one([2], [-1, 1, 1, 1], True)
    assert promoted.outcomes.tolist() == [[EMPTY] * 4]
    demoted = _end_one([2], [-1, 0, 0, 0], False)
    assert demoted.outcomes.tolist() == [[EMPTY] * 4]
    stayed = _end_one([2], [-1, 1, 1, 0], False)
    assert stayed.outcomes.tolist() == [[1, 1, 0, 0]]


def test_full_window_slides_until_the_rate_leaves_the_band():
    state = _state([5], [1, 1, 0, 0])
    rng = np.random.default_rng(0)
    # [1,0,0,1] 0.5, [0,0,1,1] 0.5, [0,1,1,1] 0.75: all in the band; then [1,1,1,1] promotes
    for expected in ([1, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 1]):
        state = update_curriculum(state, np.array([0]), np.array([True]), CFG, rng)
        assert state.level.tolist() == [5] and state.outcomes.tolist() == [expected]
    state = update_curriculum(state, np.array([0]), np.array([True]), CFG, rng)
    assert state.level.tolist() == [6] and state.outcomes.tolist() == [[EMPTY] * 4]


def test_demotion_at_level_zero_stays_at_zero():
    after = _end_one([0], [-1, 0, 0, 0], False)
    assert after.level.tolist() == [0]
    assert after.outcomes.tolist() == [[EMPTY] * 4]


def test_promotion_past_the_top_goes_to_a_seeded_random_level():
    after = _end_one([9], [-1, 1, 1, 1], True, rng=np.random.default_rng(1))
    # np.random.default_rng(1).integers(0, 10) == 4
    assert after.level.tolist() == [4]
    assert after.outcomes.tolist() == [[EMPTY] * 4]


def test_promotion_below_the_top_does_not_draw_from_rng():
    rng = np.random.default_rng(7)
    before = rng.bit_generator.state
    _end_one([3], [-1, 1, 1, 1], True, rng=rng)
    assert rng.bit_generator.state == before


def test_only_ended_simulations_change():
    state = _state([1, 2, 3], [[-1, 1, 1, 1], [-1, 1, 1, 1], [-1, 0, 0, 0]])
    after = update_curriculum(state, np.array([1, 2]), np.array([True, False]), CFG, np.random.default_rng(0))
    assert after.level.tolist() == [1, 3, 2]
    assert after.outcomes[0].tolist() == [-1, 1, 1, 1]


def test_update_is_pure():
    state = _state([2, 9], [[-1, 1, 1, 1], [-1, 1, 1, 1]], kinds=np.array([0, 1]))
    level, kind, outcomes = state.level.copy(), state.kind.copy(), state.outcomes.copy()
    after = update_curriculum(state, np.array([0, 1]), np.array([True, True]), CFG, np.random.default_rng(0))
    assert after is not state
    np.testing.assert_array_equal(state.level, level)
    np.testing.assert_array_equal(state.kind, kind)
    np.testing.assert_array_equal(state.outcomes, outcomes)
    assert state.command_level == 0 and state.episodes_since_command_change == 0
    with pytest.raises(ValueError):
        after.level[0] = 7  # read-only: a caller cannot mutate a state in place


def test_state_copies_the_callers_arrays():
    levels = np.array([1, 2])
    state = _state(levels, [[-1] * 4, [-1] * 4])
    levels[0] = 5
    assert state.level.tolist() == [1, 2]


def test_disabled_curriculum_never_changes_levels():
    cfg = dataclasses.replace(CFG, enabled=False)
    state = _state([2, 2], [[-1, 1, 1, 1], [-1, 0, 0, 0]], command_level=4, episodes=100)
    after = update_curriculum(state, np.array([0, 1]), np.array([True, False]), cfg, np.random.default_rng(0))
    assert after.level.tolist() == [2, 2]
    assert after.command_level == 4


def test_command_level_rises_after_a_window_of_successes_and_never_falls():
    cfg = dataclasses.replace(CFG, command_levels=3)
    state = _state([0] * 5, [[-1] * 4] * 5)
    rng = np.random.default_rng(0)
    state = update_curriculum(state, np.arange(3), np.ones(3, bool), cfg, rng)
    assert (state.command_level, state.episodes_since_command_change) == (0, 3)  # 3 < window episodes
    state = update_curriculum(state, np.arange(3, 5), np.ones(2, bool), cfg, rng)
    assert (state.command_level, state.episodes_since_command_change) == (1, 0)  # 5 episodes, rate 1 > 0.8
    state = update_curriculum(state, np.arange(5), np.array([1, 1, 1, 1, 0], bool), cfg, rng)
    assert state.command_level == 1  # rate 0.8 is not > 0.8
    state = update_curriculum(state, np.arange(5), np.zeros(5, bool), cfg, rng)
    assert state.command_level == 1  # failures never lower it
    state = update_curriculum(state, np.arange(5), np.ones(5, bool), cfg, rng)
    assert state.command_level == 2
    state = update_curriculum(state, np.arange(5), np.ones(5, bool), cfg, rng)
    assert state.command_level == 2  # the top, command_levels - 1
    assert command_scale(state, cfg) == 1.0
    assert command_scale(_state([0], [-1] * 4), CFG) == pytest.approx(1 / 5)


def test_empty_update_changes_nothing():
    state = _state([3], [-1, 1, 1, 1], episodes=9)
    after = update_curriculum(state, np.array([], np.int64), np.array([], bool), CFG, np.random.default_rng(0))
    assert after.to_dict() == state.to_dict()


@pytest.mark.parametrize(
    "ids, success, match",
    [([0, 0], [True, True], "repeat"), ([0], [True, False], "same length"), ([3], [True], r"\[0, 1\]")],
)
def test_bad_update_arguments_raise(ids, success, match):
    state = _state([0, 0], [[-1] * 4] * 2)
    with pytest.raises(ValueError, match=match):
        update_curriculum(state, np.array(ids), np.array(success), CFG, np.random.default_rng(0))


def test_state_from_another_config_is_refused():
    state = _state([0], [-1] * 4)
    other = dataclasses.replace(CFG, window=5)
    with pytest.raises(ValueError, match="window"):
        update_curriculum(state, np.array([0]), np.array([True]), other, np.random.default_rng(0))


def test_episode_success():
    fell = np.array([False, True, False, False, False, False, True])
    distance_m = np.array([6.0, 10.0, 4.0, 5.0, 0.0, 0.3, 0.0])
    commanded_m = np.array([10.0, 10.0, 10.0, 10.0, 0.05, 0.0, 0.05])
    # covered 60%; fell; 40% < 50%; exactly 50%; standing command; standing, moved; standing, fell
    expected = [True, False, False, True, True, True, False]
    assert episode_success(fell, distance_m, commanded_m, CFG).tolist() == expected


def test_level_difficulty():
    np.testing.assert_allclose(level_difficulty(np.array([0, 9, 3]), CFG), [0.0, 1.0, 3 / 9])
    single = CurriculumConfig(num_levels=1, initial_max_level=0)
    np.testing.assert_array_equal(level_difficulty(np.array([0, 0]), single), [0.0, 0.0])


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"num_levels": 0}, "curriculum.num_levels"),
        ({"num_levels": 2.5}, "curriculum.num_levels"),
        ({"initial_max_level": 10}, "curriculum.initial_max_level"),
        ({"window": 0}, "curriculum.window"),
        ({"promote_above": 1.5}, "curriculum.promote_above"),
        ({"demote_below": -0.1}, "curriculum.demote_below"),
        ({"demote_below": 0.8, "promote_above": 0.8}, "curriculum.demote_below"),
        ({"min_distance_fraction": float("nan")}, "curriculum.min_distance_fraction"),
        ({"command_levels": 0}, "curriculum.command_levels"),
        ({"command_promote_above": 2.0}, "curriculum.command_promote_above"),
    ],
)
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        CurriculumConfig(**overrides)


def test_initial_curriculum_covers_every_kind_and_starting_level():
    state = initial_curriculum(100, 7, CFG, np.random.default_rng(0))
    counts = np.bincount(state.kind, minlength=7)
    assert counts.min() >= 14 and counts.max() <= 15  # round-robin: 100 = 7 * 14 + 2
    assert set(state.level.tolist()) == {0, 1, 2, 3}  # uniform in [0, initial_max_level]
    assert (state.outcomes == EMPTY).all() and state.outcomes.shape == (100, 4)
    assert state.command_level == 0


def test_initial_curriculum_when_disabled_spans_all_levels_and_commands():
    cfg = dataclasses.replace(CFG, enabled=False)
    state = initial_curriculum(500, 3, cfg, np.random.default_rng(0))
    assert set(state.level.tolist()) == set(range(10))
    assert state.command_level == cfg.command_levels - 1


def _random_run(state, cfg, rng, steps):
    history = []
    for _ in range(steps):
        ids = np.flatnonzero(rng.random(state.num_envs) < 0.5)
        state = update_curriculum(state, ids, rng.random(ids.size) < 0.7, cfg, rng)
        history.append(state.to_dict())
    return state, history


def test_json_round_trip_and_exact_resume():
    cfg = dataclasses.replace(CFG, num_levels=4, initial_max_level=1)
    state, _ = _random_run(initial_curriculum(32, 3, cfg, np.random.default_rng(0)), cfg, np.random.default_rng(1), 20)
    restored = CurriculumState.from_dict(json.loads(json.dumps(state.to_dict())))
    for name in ("level", "kind", "outcomes"):
        original, copy = getattr(state, name), getattr(restored, name)
        assert copy.dtype == original.dtype
        np.testing.assert_array_equal(copy, original)
    assert restored.command_level == state.command_level
    assert restored.episodes_since_command_change == state.episodes_since_command_change
    assert restored.num_levels == state.num_levels
    _, expected = _random_run(state, cfg, np.random.default_rng(2), 50)
    _, resumed = _random_run(restored, cfg, np.random.default_rng(2), 50)
    assert resumed == expected
    assert len({json.dumps(h["level"]) for h in expected}) > 1  # the levels did move


def test_round_trip_of_an_empty_batch_keeps_the_window():
    state = initial_curriculum(0, 2, CFG, np.random.default_rng(0))
    assert CurriculumState.from_dict(state.to_dict()).outcomes.shape == (0, 4)


def test_summary():
    state = _state([0, 9, 4, 9], [[-1] * 4] * 4, kinds=np.array([0, 1, 0, 1]), command_level=2)
    summary = curriculum_summary(state, num_kinds=3)
    assert summary["mean_level"] == pytest.approx(5.5)
    assert summary["mean_level_per_kind"][:2] == [2.0, 9.0]
    assert np.isnan(summary["mean_level_per_kind"][2])  # no simulation on kind 2
    assert summary["fraction_at_top"] == 0.5
    assert summary["command_level"] == 2
    json.dumps(summary)

import math

import pytest

from ogi.lm.model import parameter_count
from ogi.lm.scaling import compute_optimal_plan
from ogi.validation import ConfigError


def test_compute_optimal_point_and_smaller_model():
    # C = 6 N D with D = 20 N: C = 1.2e12 FLOPs gives N* = sqrt(1.2e12 / 120) = 1e5 and D* = 2e6.
    plan = compute_optimal_plan(1.2e12, vocab_size=80, context_length=64)
    assert plan.optimal_parameters == pytest.approx(1e5)
    assert plan.optimal_tokens == pytest.approx(2e6)
    assert plan.target_parameters == pytest.approx(7e4)
    assert plan.parameters == parameter_count(plan.model)
    assert abs(math.log(plan.parameters / 7e4)) < math.log(1.25)
    assert plan.tokens == int(1.2e12 / (6 * plan.parameters))
    assert plan.tokens > plan.optimal_tokens  # the smaller model spends the same compute on more tokens


def test_model_and_tokens_grow_as_square_root_of_compute():
    small = compute_optimal_plan(1e12, vocab_size=80, context_length=64, inference_shrink=0.0)
    large = compute_optimal_plan(1e14, vocab_size=80, context_length=64, inference_shrink=0.0)
    assert large.optimal_parameters / small.optimal_parameters == pytest.approx(10.0)
    assert large.optimal_tokens / small.optimal_tokens == pytest.approx(10.0)
    assert large.parameters > small.parameters


def test_budget_must_be_positive():
    with pytest.raises(ConfigError, match="compute_budget_flops"):
        compute_optimal_plan(0.0, vocab_size=80, context_length=64)

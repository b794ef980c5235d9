import math

import pytest
import torch

from ogi.lm.config import OptimizerConfig
from ogi.lm.schedule import learning_rate_at, make_optimizer, optimizer_step

CONFIG = OptimizerConfig(learning_rate=1e-3, eta_min=1e-4, warmup_fraction=0.02)


def test_warmup_then_cosine_at_hand_computed_steps():
    # 151 steps: warm-up W = ceil(0.02 * 151) = 4 steps, cosine over steps 4..150 (146 intervals).
    assert learning_rate_at(0, 151, CONFIG) == pytest.approx(2.5e-4)
    assert learning_rate_at(1, 151, CONFIG) == pytest.approx(5.0e-4)
    assert learning_rate_at(3, 151, CONFIG) == pytest.approx(1.0e-3)
    assert learning_rate_at(4, 151, CONFIG) == pytest.approx(1.0e-3)
    assert learning_rate_at(77, 151, CONFIG) == pytest.approx(5.5e-4)  # halfway: (eta_max + eta_min) / 2
    assert learning_rate_at(150, 151, CONFIG) == pytest.approx(1.0e-4)
    quarter = 1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 36.5 / 146))
    assert learning_rate_at(40, 151, CONFIG) == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 36 / 146)))
    assert learning_rate_at(40, 151, CONFIG) > quarter


def test_schedule_is_monotone_after_warmup_and_rejects_bad_steps():
    rates = [learning_rate_at(step, 500, CONFIG) for step in range(500)]
    assert max(rates) == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    with pytest.raises(ValueError, match="step"):
        learning_rate_at(500, 500, CONFIG)


def test_optimizer_step_sets_rate_and_clips_gradient_norm():
    model = torch.nn.Linear(4, 1)
    optimizer = make_optimizer(model, CONFIG)
    loss = 1000.0 * model(torch.ones(1, 4)).sum()
    before = model.weight.detach().clone()
    norm = optimizer_step(model, optimizer, loss, step=0, total_steps=151, config=CONFIG)
    assert norm > 1.0
    assert all(group["lr"] == pytest.approx(2.5e-4) for group in optimizer.param_groups)
    clipped = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert float(clipped) == pytest.approx(1.0, rel=1e-4)
    assert not torch.equal(before, model.weight)
    assert optimizer.param_groups[0]["weight_decay"] == CONFIG.weight_decay
    assert optimizer.param_groups[1]["weight_decay"] == 0.0

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ogi.policies import EmpiricalNormalizer


def test_two_updates_match_numpy_over_the_concatenation():
    rng = np.random.default_rng(0)
    first = rng.normal(3.0, 2.0, size=(7, 3))
    second = rng.normal(-1.0, 0.5, size=(11, 3))
    normalizer = EmpiricalNormalizer(3)
    normalizer.update(torch.from_numpy(first))
    normalizer.update(torch.from_numpy(second).float())
    both = np.concatenate([first, second])
    np.testing.assert_allclose(normalizer.mean.numpy(), both.mean(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(normalizer.var.numpy(), both.var(0), rtol=1e-6, atol=1e-6)
    assert normalizer.count.item() == 18


def test_hand_computed_statistics_and_output():
    normalizer = EmpiricalNormalizer(1, eps=1e-12)
    normalizer.update(torch.tensor([[1.0], [3.0]]))  # mean 2, var 1
    normalizer.update(torch.tensor([[5.0]]))  # all: {1, 3, 5} -> mean 3, var 8/3
    assert normalizer.mean.item() == pytest.approx(3.0)
    assert normalizer.var.item() == pytest.approx(8.0 / 3.0)
    out = normalizer(torch.tensor([[3.0 + (8.0 / 3.0) ** 0.5]]))
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(1.0, abs=1e-6)


def test_output_is_clipped():
    normalizer = EmpiricalNormalizer(2, clip=5.0)
    normalizer.update(torch.tensor([[0.0, 0.0], [2.0, 2.0]]))  # mean 1, std 1
    out = normalizer(torch.tensor([[100.0, -100.0], [1.5, 0.5]]))
    torch.testing.assert_close(out, torch.tensor([[5.0, -5.0], [0.5, -0.5]]), atol=1e-6, rtol=0)


def test_untouched_before_the_first_update_and_frozen_after_until():
    normalizer = EmpiricalNormalizer(2, until=4)
    x = torch.tensor([[0.3, -2.0]])
    torch.testing.assert_close(normalizer(x), x, atol=1e-6, rtol=0)
    normalizer.update(torch.randn(4, 2))
    mean, var = normalizer.mean.clone(), normalizer.var.clone()
    normalizer.update(torch.randn(8, 2) + 10.0)
    assert torch.equal(normalizer.mean, mean) and torch.equal(normalizer.var, var)
    assert normalizer.count.item() == 4


def test_forward_and_eval_do_not_update():
    normalizer = EmpiricalNormalizer(2)
    normalizer.eval()
    normalizer(torch.randn(5, 2))
    normalizer.train()
    normalizer(torch.randn(5, 2))
    assert normalizer.count.item() == 0


def test_statistics_round_trip_through_safetensors(tmp_path):
    normalizer = EmpiricalNormalizer(3)
    normalizer.update(torch.randn(10, 3))
    path = tmp_path / "normalizer.safetensors"
    save_file(normalizer.state_dict(), str(path))
    loaded = EmpiricalNormalizer(3)
    loaded.load_state_dict(load_file(str(path)))
    for name in ("mean", "var", "count"):
        assert getattr(loaded, name).dtype == torch.float64
        assert torch.equal(getattr(loaded, name), getattr(normalizer, name))

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


def test_a_std_floor_keeps_a_barely_varying_feature_quiet_and_old_checkpoints_load():
    floor = torch.tensor([0.0, 0.1])
    norm = EmpiricalNormalizer(2, std_floor=floor)
    x = torch.stack([torch.randn(1000), 0.3 + 0.01 * torch.randn(1000)], dim=1).double()
    norm.update(x)
    out = norm(x)
    assert 0.9 < float(out[:, 0].std()) < 1.1  # unfloored: unit variance
    assert 0.05 < float(out[:, 1].std()) < 0.15  # 1 cm of jitter over a 10 cm floor, not blown up to 1
    state = norm.state_dict()
    old = {k: v for k, v in state.items() if k != "std_floor"}  # a checkpoint from before the floor
    plain = EmpiricalNormalizer(2)
    plain.load_state_dict(old)
    assert float(plain(x)[:, 1].std()) > 0.9
    again = EmpiricalNormalizer(2)
    again.load_state_dict(state)
    torch.testing.assert_close(again(x), out)
    with pytest.raises(ValueError, match="std_floor"):
        EmpiricalNormalizer(2, std_floor=torch.tensor([-1.0, 0.0]))


def test_a_teachers_normalizer_floors_the_height_scan_only():
    from ogi.envs import WalkConfig, WalkVecEnv
    from ogi.envs.sensing import HeightScanConfig
    from ogi.envs.walk import HEIGHT_SCAN_STD_FLOOR_M

    env = WalkVecEnv(WalkConfig(num_envs=1, height_scan=HeightScanConfig(enabled=True, spacing_m=0.2)))
    floor = env.actor_std_floor("privileged")
    scan = env.privileged_layout.slices()["height_scan"]
    offset = env.policy_layout.size
    assert floor.shape == (offset + env.privileged_layout.size,)
    assert (floor[offset + scan.start : offset + scan.stop] == HEIGHT_SCAN_STD_FLOOR_M).all()
    assert np.count_nonzero(floor) == scan.stop - scan.start
    assert not env.actor_std_floor("policy").any()

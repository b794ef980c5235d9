import numpy as np
import pytest
import torch

from ogi.policies.fall_predictor import FallPredictor, FallPredictorConfig
from ogi.validation import ConfigError


def test_streaming_window_matches_batch_and_resets_per_env():
    torch.manual_seed(0)
    predictor = FallPredictor(FallPredictorConfig(obs_dim=3, window=3, hidden_sizes=(8,)))
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(4, 2, 3)).astype(np.float32)  # 4 steps, 2 envs
    window = predictor.new_window(2)
    for t in range(4):
        p = predictor.step(window, obs[t])
        if t == 1:
            FallPredictor.reset_window(window, np.array([True, False]))
    # env 1 never reset: its window holds steps 1..3
    expected = torch.sigmoid(predictor(torch.as_tensor(obs[1:4, 1][None]), torch.ones(1, 3, dtype=torch.bool)))
    assert p[1] == pytest.approx(float(expected[0].detach()), rel=1e-6)
    # env 0 was reset after step 1: steps 2, 3 and one padding slot in front
    padded = np.zeros((1, 3, 3), dtype=np.float32)
    padded[0, 1:] = obs[2:4, 0]
    valid = torch.tensor([[False, True, True]])
    expected0 = torch.sigmoid(predictor(torch.as_tensor(padded), valid))
    assert p[0] == pytest.approx(float(expected0[0].detach()), rel=1e-6)
    assert np.all((p > 0) & (p < 1))


def test_padding_is_zero_after_normalization():
    predictor = FallPredictor(FallPredictorConfig(obs_dim=2, window=2, hidden_sizes=(4,)))
    predictor.set_normalization(torch.tensor([5.0, -5.0]), torch.tensor([2.0, 2.0]))
    a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    b = torch.tensor([[[100.0, -7.0], [3.0, 4.0]]])
    valid = torch.tensor([[False, True]])
    assert torch.equal(predictor(a, valid), predictor(b, valid))


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="fall_predictor.window"):
        FallPredictorConfig(obs_dim=3, window=0)
    with pytest.raises(ConfigError, match="hidden_sizes"):
        FallPredictorConfig(obs_dim=3, hidden_sizes=())
    with pytest.raises(ConfigError, match="unknown"):
        FallPredictorConfig.from_dict({"obs_dim": 3, "windw": 4})
    assert FallPredictorConfig(obs_dim=3, horizon_s=0.5, ctrl_dt_s=0.02).horizon_steps == 25

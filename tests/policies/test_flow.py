"""The flow-matching chunk policy: it draws one mode of a bimodal demonstration set, not their average."""

import pytest
import torch

from ogi.policies.flow import (
    FlowConfig,
    FlowTrainConfig,
    load_flow_policy,
    save_flow_policy,
    train_flow_policy,
)
from ogi.validation import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bimodal(n: int, seed: int = 0):
    # a chunk of 4 two-dimensional actions: go left or right (the mode) by one unit, offset by the observation
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(n, 2, generator=g) * 2 - 1
    mode = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1
    step = torch.stack([mode, 0.5 * mode], dim=1)[:, None, :].expand(n, 4, 2)
    chunks = step + obs[:, None, :1] + 0.03 * torch.randn(n, 4, 2, generator=g)
    return obs, chunks


@pytest.fixture(scope="module")
def trained():
    obs, chunks = _bimodal(4096)
    cfg = FlowConfig(obs_dim=2, action_dim=2, horizon=4, hidden=128, layers=3, sample_steps=8)
    policy, losses = train_flow_policy(obs, chunks, cfg, FlowTrainConfig(steps=3000, batch_size=256))
    return policy, losses


def test_the_flow_draws_one_mode_or_the_other_conditioned_on_the_observation(trained):
    policy, losses = trained
    assert losses["final_loss"] < 0.5 * losses["first_loss"]
    obs = torch.tensor([[0.3, -0.2]]).repeat(400, 1)
    chunks = policy.act(obs, generator=torch.Generator().manual_seed(1))
    first = chunks[:, 0, 0] - 0.3  # the mode, with the observation's offset taken away
    near_a_mode = ((first.abs() - 1.0).abs() < 0.25).float().mean()
    assert near_a_mode > 0.85  # a regressor would answer ~0.3, between the modes
    left, right = (first < 0).float().mean(), (first > 0).float().mean()
    assert left > 0.25 and right > 0.25
    # the whole chunk keeps its mode: the second action dimension follows at half the step
    agree = torch.sign(chunks[:, :, 1] - 0.3) == torch.sign(first)[:, None]
    assert agree.float().mean() > 0.9


def test_a_saved_policy_loads_and_acts_the_same(trained, tmp_path):
    policy, _ = trained
    saved = save_flow_policy(tmp_path, policy, FlowTrainConfig(steps=3000), samples=4096, data={"demos": "toy"})
    loaded, checkpoint = load_flow_policy(saved.path)
    noise = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    obs = torch.rand(5, 2)
    torch.testing.assert_close(loaded.act(obs, noise=noise), policy.act(obs, noise=noise))
    assert checkpoint.manifest["config"]["flow"]["horizon"] == 4


def test_bad_demonstrations_and_settings_are_refused():
    cfg = FlowConfig(obs_dim=2, action_dim=2, horizon=4)
    with pytest.raises(ValueError, match="chunks must have shape"):
        train_flow_policy(torch.zeros(8, 2), torch.zeros(8, 3, 2), cfg, FlowTrainConfig(steps=1))
    with pytest.raises(ValueError, match="NaN or inf"):
        train_flow_policy(torch.full((8, 2), float("nan")), torch.zeros(8, 4, 2), cfg, FlowTrainConfig(steps=1))
    with pytest.raises(ConfigError, match="time_features"):
        FlowConfig(obs_dim=2, action_dim=2, time_features=7)

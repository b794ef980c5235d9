import math

import pytest
import torch

from ogi.policies import gaussian_entropy, gaussian_kl, gaussian_log_prob


def test_log_prob_of_a_2d_gaussian_by_hand():
    mean = torch.tensor([0.0, 1.0])
    log_std = torch.log(torch.tensor([1.0, 2.0]))
    action = torch.tensor([1.0, 0.0])
    # dim 0: -1/2 - 0 - log sqrt(2 pi); dim 1: -(1/2)(1/2)^2 - log 2 - log sqrt(2 pi)
    expected = -0.5 - 0.125 - math.log(2.0) - math.log(2.0 * math.pi)
    assert gaussian_log_prob(mean, log_std, action).item() == pytest.approx(expected, abs=1e-6)


def test_log_prob_and_entropy_match_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 5, 3, generator=generator)
    log_std = torch.randn(3, generator=generator) * 0.5
    action = torch.randn(4, 5, 3, generator=generator)
    reference = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(gaussian_log_prob(mean, log_std, action), reference.log_prob(action).sum(-1))
    entropy = gaussian_entropy(log_std, (4, 5))
    assert entropy.shape == (4, 5)
    torch.testing.assert_close(entropy, reference.entropy().sum(-1))


def test_entropy_by_hand():
    # a unit Gaussian in 2 dimensions: 2 * (1/2 + log sqrt(2 pi)) = 1 + log(2 pi)
    entropy = gaussian_entropy(torch.zeros(2), (3,))
    torch.testing.assert_close(entropy, torch.full((3,), 1.0 + math.log(2.0 * math.pi)))


def test_kl_of_a_distribution_with_itself_is_zero():
    mean = torch.randn(6, 4)
    log_std = torch.randn(4)
    torch.testing.assert_close(gaussian_kl(mean, log_std, mean, log_std), torch.zeros(6), atol=1e-6, rtol=0)


def test_kl_by_hand_in_1d():
    m_p, s_p, m_q, s_q = 0.5, 0.8, -0.3, 1.7
    expected = math.log(s_q / s_p) + (s_p**2 + (m_p - m_q) ** 2) / (2 * s_q**2) - 0.5
    kl = gaussian_kl(
        torch.tensor([m_p]), torch.tensor([math.log(s_p)]), torch.tensor([m_q]), torch.tensor([math.log(s_q)])
    )
    assert kl.item() == pytest.approx(expected, abs=1e-6)
    assert kl.item() > 0


def test_kl_matches_torch_distributions_and_is_not_symmetric():
    generator = torch.Generator().manual_seed(1)
    mean_p, mean_q = torch.randn(2, 8, 3, generator=generator)
    log_std_p, log_std_q = torch.randn(2, 8, 3, generator=generator) * 0.3
    p = torch.distributions.Normal(mean_p, log_std_p.exp())
    q = torch.distributions.Normal(mean_q, log_std_q.exp())
    kl = gaussian_kl(mean_p, log_std_p, mean_q, log_std_q)
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(p, q).sum(-1))
    assert not torch.allclose(kl, gaussian_kl(mean_q, log_std_q, mean_p, log_std_p))

import pytest
import torch

from ogi.lm.model import CausalTransformer, TransformerConfig, generate, parameter_count, sequence_log_probs
from ogi.validation import ConfigError


def make_model(prefix_dim: int = 0, seed: int = 0) -> CausalTransformer:
    torch.manual_seed(seed)
    return CausalTransformer(
        TransformerConfig(vocab_size=40, context_length=24, n_layers=2, width=32, n_heads=4, prefix_dim=prefix_dim)
    )


def test_parameter_count_is_exact():
    for prefix_dim in (0, 7):
        model = make_model(prefix_dim)
        assert parameter_count(model.config) == sum(p.numel() for p in model.parameters())


def test_width_must_divide_into_heads():
    with pytest.raises(ConfigError, match="model.width"):
        TransformerConfig(vocab_size=10, width=30, n_heads=4)


def test_cached_greedy_equals_uncached_greedy():
    model = make_model()
    prompt = torch.randint(4, 40, (3, 5), generator=torch.Generator().manual_seed(1))
    cached = generate(model, prompt, max_new_tokens=12, eos_id=2, greedy=True)
    uncached = generate(model, prompt, max_new_tokens=12, eos_id=2, greedy=True, use_cache=False)
    assert cached.shape[1] >= 1
    assert torch.equal(cached, uncached)


def test_cached_greedy_equals_uncached_with_prefix_embeddings():
    model = make_model(prefix_dim=6)
    prompt = torch.randint(4, 40, (2, 4), generator=torch.Generator().manual_seed(2))
    prefix = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(3))
    cached = generate(model, prompt, max_new_tokens=10, eos_id=2, greedy=True, prefix=prefix)
    uncached = generate(model, prompt, max_new_tokens=10, eos_id=2, greedy=True, prefix=prefix, use_cache=False)
    assert torch.equal(cached, uncached)
    assert not torch.equal(model(prompt, prefix=prefix), model(prompt, prefix=torch.zeros_like(prefix)))


def test_incremental_hidden_states_match_full_pass():
    model = make_model()
    tokens = torch.randint(0, 40, (2, 9))
    full, _ = model.hidden_states(tokens)
    head, cache = model.hidden_states(tokens[:, :4])
    tail, _ = model.hidden_states(tokens[:, 4:], cache=cache)
    torch.testing.assert_close(torch.cat([head, tail], dim=1), full, rtol=1e-5, atol=1e-5)


def test_causality_later_tokens_do_not_change_earlier_logits():
    model = make_model()
    tokens = torch.randint(0, 40, (1, 8))
    changed = tokens.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 40
    torch.testing.assert_close(model(tokens)[:, :6], model(changed)[:, :6])


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    model = make_model()
    prompt = torch.randint(4, 40, (4, 3), generator=torch.Generator().manual_seed(5))
    first = generate(model, prompt, max_new_tokens=8, eos_id=2, generator=torch.Generator().manual_seed(9))
    second = generate(model, prompt, max_new_tokens=8, eos_id=2, generator=torch.Generator().manual_seed(9))
    assert torch.equal(first, second)
    top1 = generate(model, prompt, max_new_tokens=8, eos_id=2, top_k=1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(top1, generate(model, prompt, max_new_tokens=8, eos_id=2, greedy=True))


def test_generation_stops_when_every_row_emits_eos():
    model = make_model()
    with torch.no_grad():
        # Final hidden state = e_0 and eos's embedding = 50 e_0: eos has the largest logit everywhere.
        model.norm.weight.zero_()
        model.norm.bias.zero_()
        model.norm.bias[0] = 1.0
        model.token_embedding.weight[2] = 0.0
        model.token_embedding.weight[2, 0] = 50.0
    new = generate(model, torch.randint(4, 40, (2, 3)), max_new_tokens=6, eos_id=2, greedy=True)
    assert new.shape == (2, 1) and bool((new == 2).all())


def test_rows_are_padded_with_eos_after_finishing():
    model = make_model()
    new = generate(
        model,
        torch.randint(3, 40, (64, 2)),
        max_new_tokens=20,
        eos_id=5,
        temperature=3.0,
        generator=torch.Generator().manual_seed(0),
    )
    finished_rows = 0
    for row in new.tolist():
        if 5 in row:
            finished_rows += 1
            assert set(row[row.index(5) :]) == {5}
    assert finished_rows > 0


def test_context_overflow_and_bad_prefix_are_clear_errors():
    model = make_model()
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ValueError, match="no room"):
        generate(model, torch.zeros(1, 24, dtype=torch.long), max_new_tokens=1, eos_id=2)
    with pytest.raises(ValueError, match="prefix_dim = 0"):
        model(torch.zeros(1, 3, dtype=torch.long), prefix=torch.zeros(1, 2, 4))


def test_sequence_log_probs_match_softmax_of_logits():
    model = make_model()
    tokens = torch.randint(0, 40, (2, 6))
    log_probs, hidden = sequence_log_probs(model, tokens)
    expected = torch.log_softmax(model(tokens), -1)[0, 2, tokens[0, 3]]
    assert hidden.shape == (2, 6, 32)
    torch.testing.assert_close(log_probs[0, 2], expected)

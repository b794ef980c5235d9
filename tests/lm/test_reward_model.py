import math

import pytest
import torch

from ogi.lm.config import RewardConfig
from ogi.lm.corpus import PreferencePair
from ogi.lm.model import CausalTransformer, TransformerConfig
from ogi.lm.reward_model import RewardModel, bradley_terry_loss, pairwise_accuracy, score_responses, train_reward_model
from ogi.lm.tokenizer import train_tokenizer
from ogi.validation import ConfigError


def test_bradley_terry_loss_by_hand():
    chosen = torch.tensor([2.0, 0.0])
    rejected = torch.tensor([1.0, 1.0])
    # -log sigmoid(1) = log(1 + e^-1); -log sigmoid(-1) = log(1 + e)
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 2
    assert float(bradley_terry_loss(chosen, rejected)) == pytest.approx(expected)
    assert float(bradley_terry_loss(torch.tensor([0.0]), torch.tensor([0.0]))) == pytest.approx(math.log(2))


def test_bradley_terry_gradient_pushes_chosen_up():
    chosen = torch.tensor([0.5], requires_grad=True)
    rejected = torch.tensor([0.5], requires_grad=True)
    bradley_terry_loss(chosen, rejected).backward()
    assert float(chosen.grad) == pytest.approx(-0.5) and float(rejected.grad) == pytest.approx(0.5)


def _tiny():
    tokenizer = train_tokenizer(["walk forward 2 meters then turn left", "forward 2 ; left 90 ; right stop"])
    torch.manual_seed(0)
    trunk = CausalTransformer(
        TransformerConfig(vocab_size=tokenizer.vocab_size, context_length=32, n_layers=1, width=16, n_heads=2)
    )
    return tokenizer, trunk


def test_score_is_read_at_the_last_token_and_ignores_padding():
    tokenizer, trunk = _tiny()
    model = RewardModel(trunk)
    torch.nn.init.normal_(model.head.weight)
    prompts = ["walk forward 2 meters", "walk forward 2 meters then turn left"]
    responses = ["forward 2", "forward 2 ; left 90"]
    batched = score_responses(model, tokenizer, prompts, responses)
    alone = score_responses(model, tokenizer, prompts[:1], responses[:1])
    torch.testing.assert_close(batched[:1], alone)
    assert batched[0] != batched[1]


def test_training_separates_pairs_and_missing_data_is_a_clear_error():
    tokenizer, trunk = _tiny()
    pairs = [PreferencePair(prompt="walk forward 2 meters", chosen="forward 2", rejected="left 90")] * 4
    config = RewardConfig(steps=30, batch_size=4)
    result = train_reward_model(trunk, tokenizer, config, pairs=pairs, heldout=pairs)
    assert result.accuracy == 1.0 and result.final_loss < math.log(2)
    assert pairwise_accuracy(result.reward_model, tokenizer, pairs) == 1.0
    assert result.reward_model.trunk is not trunk  # the initial model is left untouched
    with pytest.raises(ConfigError, match="no preference data"):
        train_reward_model(trunk, tokenizer, config, pairs=[], heldout=pairs)


def test_likelihood_term_adds_the_trunks_response_log_probability():
    from ogi.lm.data import pair_ids
    from ogi.lm.model import sequence_log_probs

    tokenizer, trunk = _tiny()
    model = RewardModel(trunk, response_id=tokenizer.response_id, likelihood_weight=0.5)
    head_only = RewardModel(trunk)
    prompts = ["walk forward 2 meters", "walk forward 2 meters then turn left"]
    responses = ["forward 2", "forward 2 ; left 90"]
    scores = score_responses(model, tokenizer, prompts, responses)  # batched, so the short row is padded
    for index, (prompt, response) in enumerate(zip(prompts, responses)):
        ids, start = pair_ids(tokenizer, prompt, response, 32)
        with torch.no_grad():
            log_probs, _ = sequence_log_probs(trunk, torch.tensor([ids]))
        expected = 0.5 * float(log_probs[0, start - 1 :].sum())  # response tokens and eos
        expected += float(score_responses(head_only, tokenizer, [prompt], [response])[0])
        assert float(scores[index]) == pytest.approx(expected, abs=1e-5)
    restored = RewardModel.from_parts(trunk, {name: t.detach().clone() for name, t in model.head_tensors().items()})
    torch.testing.assert_close(score_responses(restored, tokenizer, prompts, responses), scores)
    # The head alone (no response_id) has no likelihood term, as checkpoints written without one load.
    assert "reward.likelihood_weight" not in head_only.head_tensors()

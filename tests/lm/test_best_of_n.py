import pytest
import torch

from ogi.lm.best_of_n import (
    best_of_n,
    best_of_n_success,
    function_verifier,
    pick_best,
    reward_model_verifier,
    sample_candidates,
)
from ogi.lm.corpus import is_correct, plan_score
from ogi.validation import ConfigError


def test_pick_best_takes_the_highest_score_first_among_ties():
    verifier = function_verifier(lambda prompt, response: float(len(response)))
    best, scores = pick_best("p", ["ab", "abcd", "wxyz", "a"], verifier)
    assert best == "abcd" and scores == [2.0, 4.0, 4.0, 1.0]
    with pytest.raises(ConfigError, match="at least one candidate"):
        pick_best("p", [], verifier)


def test_candidates_are_seeded(tiny_pipeline):
    model, tokenizer = tiny_pipeline.sft.model, tiny_pipeline.pretrained.tokenizer
    first = sample_candidates(model, tokenizer, "turn left", 5, generator=torch.Generator().manual_seed(4))
    second = sample_candidates(model, tokenizer, "turn left", 5, generator=torch.Generator().manual_seed(4))
    assert first == second and len(first) == 5
    assert best_of_n(model, tokenizer, "turn left", 5, function_verifier(plan_score), seed=4) in first


def test_success_is_monotone_in_n_with_an_exact_verifier(tiny_pipeline):
    model, tokenizer = tiny_pipeline.sft.model, tiny_pipeline.pretrained.tokenizer
    prompts = ["walk forward 2 meters then turn left", "sit down", "turn right then stop", "step backward 3 meters"]
    report = best_of_n_success(
        model, tokenizer, prompts, (1, 4, 16), function_verifier(plan_score), is_correct, temperature=2.0
    )
    # An exact verifier picks a correct candidate whenever one exists, so success equals pass@N.
    assert report.success == report.oracle
    assert report.success[1] <= report.success[4] <= report.success[16]


def test_reward_model_verifier_scores_every_candidate(tiny_pipeline):
    verifier = reward_model_verifier(tiny_pipeline.reward.reward_model, tiny_pipeline.pretrained.tokenizer)
    scores = verifier(["turn left", "turn left"], ["left 90", "right 90"])
    assert len(scores) == 2 and scores[0] != scores[1]


def test_bad_arguments_are_clear_errors(tiny_pipeline):
    model, tokenizer = tiny_pipeline.sft.model, tiny_pipeline.pretrained.tokenizer
    verifier = function_verifier(plan_score)
    with pytest.raises(ConfigError, match="at least one prompt"):
        best_of_n_success(model, tokenizer, [], (1,), verifier, is_correct)
    with pytest.raises(ConfigError, match="ns"):
        best_of_n_success(model, tokenizer, ["sit down"], (0, 4), verifier, is_correct)

"""The planner's instructions said again in training wording by its own pretrained language model."""

from __future__ import annotations

import numpy as np
import pytest

from ogi.envs.instructions import clause_split, content_words, sample_instruction, sample_layout, split_clauses
from ogi.hierarchy.rewrite import InstructionRewriter, pretrained_rewriter
from ogi.hierarchy.run import SHIPPED_PLANNER


@pytest.fixture(scope="module")
def rewriter() -> InstructionRewriter:
    return pretrained_rewriter(SHIPPED_PLANNER)


def test_paraphrases_the_planner_was_not_trained_on_come_back_in_training_words(rewriter):
    assert rewriter("approach the cone") == "go to the cone"
    assert rewriter("Halt.") == "stop"
    said = rewriter("rotate right 90 degrees then slide left 2 meters")
    assert said == "turn right 90 degrees then sidestep left 2 meters"
    # training wording, the connectives and words no template has are kept as they are
    assert rewriter("go to the red box and then turn left") == "go to the red box and then turn left"
    assert rewriter("dance a little jig") == "dance a little jig"


def test_a_paraphrase_never_names_what_the_clause_does_not(rewriter):
    rng = np.random.default_rng(5)
    rewritten = 0
    for _ in range(40):
        instruction = sample_instruction(rng, sample_layout(rng), "heldout")
        clauses, _ = split_clauses(instruction.text)
        for clause in clauses:
            if clause_split(clause) == "train":
                continue
            said = rewriter.paraphrase(clause)
            assert set(content_words(said)) <= set(content_words(clause)), (clause, said)
        out, _ = split_clauses(rewriter(instruction.text))
        assert len(out) == len(clauses)
        for before, after in zip(clauses, out):
            if after != before:
                rewritten += 1
                assert clause_split(after) == "train" and content_words(after) == content_words(before)
    assert rewritten >= 5


def test_a_paraphrase_that_changes_what_is_named_is_not_taken(rewriter):
    class Garbling(InstructionRewriter):
        def paraphrase(self, clause: str) -> str:
            return "go to the blue box"  # a training clause, but not the one asked for

    garbling = Garbling(rewriter.model, rewriter.tokenizer)
    assert garbling("approach the red cone") == "approach the red cone"
    assert garbling("approach the blue box") == "go to the blue box"


def test_a_planner_without_a_pretrained_language_model_in_its_lineage_has_no_rewriter(tmp_path):
    from ogi.policies.planner import save_planner
    from tests.hierarchy.planner_toys import tiny_planner

    checkpoint = save_planner(
        tmp_path / "sft",
        tiny_planner(),
        stage="sft",
        stage_config={},
        step=1,
        iteration=1,
        data_manifest={},
        eval_scores={},
        parent=None,
    )
    with pytest.raises(ValueError, match="no pretrained language model"):
        pretrained_rewriter(checkpoint.path)

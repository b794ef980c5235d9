import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ogi.lm.corpus import (
    DISALLOWED_WORDS,
    corrupt_plan,
    demonstrations,
    is_correct,
    parse_plan,
    plan_for,
    plan_score,
    plan_text,
    preference_pairs,
    pretraining_documents,
    split_demonstrations,
)


def test_example_instruction_maps_to_its_plan():
    assert plan_for("walk forward 2 meters then turn left") == (("forward", 2), ("left", 90))
    assert plan_for("go backward two meters, then turn around to the right and sit down") == (
        ("backward", 2),
        ("right", 180),
        ("sit", 0),
    )
    assert plan_for("sidestep left one meter after that turn right forty-five degrees and halt") == (
        ("side_left", 1),
        ("right", 45),
        ("stop", 0),
    )
    assert plan_text((("forward", 2), ("left", 90), ("stop", 0))) == "forward 2 ; left 90 ; stop"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_every_generated_instruction_parses_back_to_its_plan(seed):
    for demo in demonstrations(20, seed):
        assert plan_for(demo.prompt) == parse_plan(demo.response)
        assert is_correct(demo.prompt, demo.response)
        assert plan_score(demo.prompt, demo.response) == 1.0


def test_generation_is_deterministic_per_seed():
    assert demonstrations(50, 3) == demonstrations(50, 3)
    assert demonstrations(50, 3) != demonstrations(50, 4)
    assert pretraining_documents(30, 1) == pretraining_documents(30, 1)


def test_heldout_prompts_are_unseen_in_training():
    train, heldout = split_demonstrations(300, 50, seed=0)
    assert len(heldout) == 50
    assert not {demo.prompt for demo in heldout} & {demo.prompt for demo in train}


def test_corrupted_plans_differ_and_score_lower():
    rng = random.Random(0)
    for demo in demonstrations(200, 5):
        plan = parse_plan(demo.response)
        wrong = corrupt_plan(plan, rng)
        assert wrong != plan
        assert not is_correct(demo.prompt, plan_text(wrong))
        assert plan_score(demo.prompt, plan_text(wrong)) < 1.0
    pairs = preference_pairs(demonstrations(10, 2), seed=0)
    assert all(pair.chosen != pair.rejected for pair in pairs)


def test_partial_credit_by_hand():
    prompt = "walk forward 2 meters then turn left"
    assert plan_score(prompt, "forward 3 ; left 90") == 0.75  # (0.5 + 1.0) / 2
    assert plan_score(prompt, "forward 2") == 0.5  # one of two steps
    assert plan_score(prompt, "forward 2 ; left 90 ; stop") == 2 / 3
    assert plan_score(prompt, "forward two meters") == 0.0  # not a well-formed plan
    assert plan_score("dance a little", "stop") == 0.0  # not an instruction of the grammar


def test_pretraining_corpus_mentions_disallowed_words_only_as_prohibitions():
    documents = pretraining_documents(2000, 0)
    mentions = [doc for doc in documents if any(word in doc.split() for word in DISALLOWED_WORDS)]
    assert mentions and all("never" in doc for doc in mentions)

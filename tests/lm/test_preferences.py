from ogi.lm.corpus import is_correct, split_demonstrations
from ogi.lm.preferences import sampled_preference_pairs


def test_sampled_pairs_prefer_the_reference_over_wrong_samples(tiny_pipeline):
    model, tokenizer = tiny_pipeline.sft.model, tiny_pipeline.pretrained.tokenizer
    demos, _ = split_demonstrations(8, 1, seed=3)
    pairs = sampled_preference_pairs(
        model, tokenizer, demos, samples_per_prompt=4, seed=0, temperature=2.0, is_correct=is_correct
    )
    assert pairs, "a barely trained model sampled at temperature 2 gets some prompts wrong"
    references = {demo.prompt: demo.response for demo in demos}
    for pair in pairs:
        assert pair.chosen == references[pair.prompt]
        assert is_correct(pair.prompt, pair.chosen) and not is_correct(pair.prompt, pair.rejected)
    assert len({(p.prompt, p.rejected) for p in pairs}) == len(pairs)  # duplicates of one sample count once
    again = sampled_preference_pairs(
        model, tokenizer, demos, samples_per_prompt=4, seed=0, temperature=2.0, is_correct=is_correct
    )
    assert again == pairs


def test_a_verifier_that_accepts_everything_yields_no_pairs(tiny_pipeline):
    demos, _ = split_demonstrations(3, 1, seed=4)
    pairs = sampled_preference_pairs(
        tiny_pipeline.sft.model,
        tiny_pipeline.pretrained.tokenizer,
        demos,
        samples_per_prompt=2,
        seed=0,
        is_correct=lambda prompt, response: True,
    )
    assert pairs == []

"""Preference pairs from a model's own samples: the verifier labels each sample, and every wrong one becomes a
pair (reference response preferred over the sample). Comparisons of the policy's outputs teach a reward model the
mistakes the policy actually makes, which grammar corruptions alone do not cover."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ogi.lm.corpus import Demonstration, PreferencePair
from ogi.lm.data import ContextLengthError, pair_ids, prompt_ids
from ogi.lm.model import CausalTransformer, generate
from ogi.lm.tokenizer import Tokenizer


def sampled_preference_pairs(
    model: CausalTransformer,
    tokenizer: Tokenizer,
    demos: Sequence[Demonstration],
    *,
    samples_per_prompt: int,
    seed: int,
    temperature: float = 1.0,
    is_correct: Callable[[str, str], bool],
) -> list[PreferencePair]:
    """For each demonstration, ``samples_per_prompt`` samples; each distinct wrong one gives
    (prompt, reference, sample).

    Samples that do not fit the context with their prompt are skipped.
    """
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for demo in demos:
        head = prompt_ids(tokenizer, demo.prompt)
        new = generate(
            model,
            torch.tensor([head] * samples_per_prompt),
            max_new_tokens=model.config.context_length,
            eos_id=tokenizer.eos_id,
            temperature=temperature,
            generator=generator,
        )
        for response in dict.fromkeys(tokenizer.decode(row) for row in new.tolist()):
            if not response or is_correct(demo.prompt, response):
                continue
            try:
                pair_ids(tokenizer, demo.prompt, response, model.config.context_length)
            except ContextLengthError:
                continue
            pairs.append(PreferencePair(prompt=demo.prompt, chosen=demo.response, rejected=response))
    return pairs

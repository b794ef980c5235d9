"""Best-of-N with a verifier: sample N candidates, keep the one the verifier scores highest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ogi.lm.data import prompt_ids
from ogi.lm.model import CausalTransformer, generate
from ogi.lm.reward_model import RewardModel, score_responses
from ogi.lm.tokenizer import Tokenizer
from ogi.validation import ConfigError

Verifier = Callable[[Sequence[str], Sequence[str]], Sequence[float]]
"""verifier(prompts, responses) -> one score per pair, higher is better."""


def reward_model_verifier(reward_model: RewardModel, tokenizer: Tokenizer) -> Verifier:
    """A verifier that scores with R(x, y)."""

    def verify(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return score_responses(reward_model, tokenizer, prompts, responses).tolist()

    return verify


def function_verifier(function: Callable[[str, str], float]) -> Verifier:
    """A verifier from a per-pair function f(prompt, response) -> score (e.g. a simulator outcome)."""

    def verify(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [float(function(prompt, response)) for prompt, response in zip(prompts, responses, strict=True)]

    return verify


def sample_candidates(
    model: CausalTransformer,
    tokenizer: Tokenizer,
    prompt: str,
    n: int,
    *,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int = 0,
    max_new_tokens: int = 32,
) -> list[str]:
    """``n`` sampled responses to ``prompt`` (decoded, special tokens removed)."""
    if n < 1:
        raise ConfigError(f"n = {n} must be >= 1")
    head = torch.tensor([prompt_ids(tokenizer, prompt)] * n)
    new = generate(
        model,
        head,
        max_new_tokens=max_new_tokens,
        eos_id=tokenizer.eos_id,
        temperature=temperature,
        top_k=top_k,
        generator=generator,
    )
    return [tokenizer.decode(row) for row in new.tolist()]


def pick_best(prompt: str, candidates: Sequence[str], verifier: Verifier) -> tuple[str, list[float]]:
    """The highest-scoring candidate (the first among ties) and every candidate's score."""
    if not candidates:
        raise ConfigError("best-of-N needs at least one candidate")
    scores = [float(score) for score in verifier([prompt] * len(candidates), candidates)]
    return candidates[max(range(len(scores)), key=scores.__getitem__)], scores


def best_of_n(
    model: CausalTransformer,
    tokenizer: Tokenizer,
    prompt: str,
    n: int,
    verifier: Verifier,
    *,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int = 0,
    max_new_tokens: int = 32,
) -> str:
    """Sample ``n`` responses with ``seed`` and return the one ``verifier`` prefers."""
    candidates = sample_candidates(
        model,
        tokenizer,
        prompt,
        n,
        generator=torch.Generator().manual_seed(seed),
        temperature=temperature,
        top_k=top_k,
        max_new_tokens=max_new_tokens,
    )
    return pick_best(prompt, candidates, verifier)[0]


@dataclass(frozen=True, kw_only=True)
class BestOfNReport:
    success: dict[int, float]
    """N -> fraction of prompts whose picked response succeeds."""
    oracle: dict[int, float]
    """N -> fraction of prompts with at least one successful candidate among the first N (pass@N)."""


def best_of_n_success(
    model: CausalTransformer,
    tokenizer: Tokenizer,
    prompts: Sequence[str],
    ns: Sequence[int],
    verifier: Verifier,
    success: Callable[[str, str], bool],
    *,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int = 0,
    max_new_tokens: int = 32,
) -> BestOfNReport:
    """Success of best-of-N for each N in ``ns``; the first N of one max(ns)-sample draw per prompt are used, so the
    candidate sets are nested and differences between N come from N alone."""
    if not prompts:
        raise ConfigError("best-of-N evaluation needs at least one prompt")
    if not ns or min(ns) < 1:
        raise ConfigError(f"ns = {list(ns)} must be a non-empty list of counts >= 1")
    generator = torch.Generator().manual_seed(seed)
    wins = {n: 0 for n in ns}
    covered = {n: 0 for n in ns}
    for prompt in prompts:
        candidates = sample_candidates(
            model,
            tokenizer,
            prompt,
            max(ns),
            generator=generator,
            temperature=temperature,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
        )
        scores = [float(score) for score in verifier([prompt] * len(candidates), candidates)]
        correct = [success(prompt, candidate) for candidate in candidates]
        for n in ns:
            best = max(range(n), key=scores.__getitem__)
            wins[n] += correct[best]
            covered[n] += any(correct[:n])
    return BestOfNReport(
        success={n: wins[n] / len(prompts) for n in ns}, oracle={n: covered[n] / len(prompts) for n in ns}
    )

"""Pretraining: next-token cross-entropy on the packed corpus with the warm-up+cosine AdamW schedule."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ogi.checkpoints import Checkpoint, json_sha256
from ogi.lm.config import PretrainConfig, to_dict
from ogi.lm.corpus import pretraining_documents
from ogi.lm.data import pack_documents, random_windows
from ogi.lm.model import CausalTransformer, TransformerConfig, parameter_count
from ogi.lm.scaling import ComputePlan, compute_optimal_plan
from ogi.lm.schedule import make_optimizer, optimizer_step
from ogi.lm.store import save_language_model
from ogi.lm.tokenizer import Tokenizer, train_tokenizer
from ogi.validation import ConfigError

Progress = Callable[[int, int, dict[str, float]], None]
"""Called as progress(step, total_steps, metrics) after each optimizer step."""


@dataclass(frozen=True, kw_only=True)
class PretrainResult:
    model: CausalTransformer
    tokenizer: Tokenizer
    perplexity: float
    """exp(mean next-token cross-entropy) on the held-out documents."""
    unigram_perplexity: float
    """The same targets scored by add-one-smoothed unigram frequencies of the training stream."""
    corpus_tokens: int
    tokens_trained: int
    """Exactly steps * batch_size * context_length target tokens were trained on."""
    heldout_tokens: int
    parameters: int
    steps: int
    final_loss: float
    compute_plan: ComputePlan | None
    checkpoint: Checkpoint | None


def evaluation_windows(stream: torch.Tensor, length: int) -> list[torch.Tensor]:
    """Consecutive windows of ``length + 1`` tokens covering every target of ``stream`` once (the last may be short)."""
    return [stream[start : start + length + 1] for start in range(0, stream.numel() - 1, length)]


@torch.no_grad()
def perplexity(model: CausalTransformer, stream: torch.Tensor) -> float:
    """exp of the mean cross-entropy over every next-token target of ``stream``."""
    model.eval()
    total, count = 0.0, 0
    for window in evaluation_windows(stream, model.config.context_length):
        logits = model(window[None, :-1])
        total += float(F.cross_entropy(logits[0], window[1:], reduction="sum"))
        count += window.numel() - 1
    model.train()
    return math.exp(total / count)


def unigram_perplexity(train_stream: torch.Tensor, heldout_stream: torch.Tensor, vocab_size: int) -> float:
    """Perplexity of heldout targets under p(w) = (count(w) + 1) / (n + V) from the training stream."""
    counts = Counter(train_stream[1:].tolist())
    total = train_stream.numel() - 1
    log_prob = sum(math.log((counts[token] + 1) / (total + vocab_size)) for token in heldout_stream[1:].tolist())
    return math.exp(-log_prob / (heldout_stream.numel() - 1))


def pretrain(
    config: PretrainConfig,
    *,
    documents: Sequence[str] | None = None,
    heldout_documents: Sequence[str] | None = None,
    run_dir: Path | None = None,
    progress: Progress | None = None,
) -> PretrainResult:
    """Train a tokenizer and a causal transformer from scratch; save a checkpoint under ``run_dir`` if given.

    Without ``documents`` the corpus is generated from the grammar (``config.documents`` documents, seed
    ``config.seed``; held-out ones from another seed). With ``config.compute_budget_flops`` > 0 the model shape and
    the number of steps come from :func:`compute_optimal_plan`.
    """
    train_texts = list(documents) if documents is not None else pretraining_documents(config.documents, config.seed)
    heldout_texts = (
        list(heldout_documents)
        if heldout_documents is not None
        else pretraining_documents(config.heldout_documents, config.seed + 7_919)
    )
    if not train_texts or not any(text.strip() for text in train_texts):
        raise ConfigError("the pretraining corpus is empty: give documents or set documents > 0")
    if not heldout_texts:
        raise ConfigError("the held-out corpus is empty: set heldout_documents > 0")
    tokenizer = train_tokenizer(
        train_texts,
        kind=config.tokenizer,
        num_action_tokens=config.num_action_tokens,
        bpe_vocab_size=config.bpe_vocab_size,
    )
    stream = pack_documents(tokenizer, train_texts)
    heldout = pack_documents(tokenizer, heldout_texts)
    shape = config.model
    model_config = TransformerConfig.from_shape(shape, tokenizer.vocab_size)
    steps, plan = config.steps, None
    if config.compute_budget_flops > 0:
        plan = compute_optimal_plan(
            config.compute_budget_flops,
            vocab_size=tokenizer.vocab_size,
            context_length=shape.context_length,
            tokens_per_parameter=config.tokens_per_parameter,
            inference_shrink=config.inference_shrink,
            prefix_dim=shape.prefix_dim,
        )
        model_config = replace(plan.model, dropout=shape.dropout)
        steps = max(1, math.ceil(plan.tokens / (config.batch_size * shape.context_length)))
    if stream.numel() < shape.context_length + 1:
        raise ConfigError(
            f"the pretraining corpus has {stream.numel()} tokens, fewer than one context window "
            f"({shape.context_length + 1}); add documents or lower model.context_length"
        )
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = CausalTransformer(model_config)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config.optimizer)
    loss_value = float("nan")
    model.train()
    for step in range(steps):
        batch = random_windows(stream, config.batch_size, shape.context_length, generator)
        logits = model(batch[:, :-1])
        # L = -(1 / BT) sum_{b,t} log p(x_{b,t+1} | x_{b,<=t})
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        optimizer_step(model, optimizer, loss, step=step, total_steps=steps, config=config.optimizer)
        loss_value = float(loss.detach())
        if progress is not None:
            progress(step + 1, steps, {"loss": loss_value})
    result = PretrainResult(
        model=model,
        tokenizer=tokenizer,
        perplexity=perplexity(model, heldout),
        unigram_perplexity=unigram_perplexity(stream, heldout, tokenizer.vocab_size),
        corpus_tokens=stream.numel(),
        tokens_trained=steps * config.batch_size * shape.context_length,
        heldout_tokens=heldout.numel() - 1,
        parameters=parameter_count(model_config),
        steps=steps,
        final_loss=loss_value,
        compute_plan=plan,
        checkpoint=None,
    )
    if run_dir is None:
        return result
    checkpoint = save_language_model(
        run_dir,
        stage="pretrain",
        model=model,
        tokenizer=tokenizer,
        stage_config=to_dict(config),
        step=steps,
        iteration=steps,
        parent=None,
        data_manifest={
            "source": "given" if documents is not None else "generated",
            "documents": len(train_texts),
            "corpus_tokens": stream.numel(),
            "tokens_trained": result.tokens_trained,
            "corpus_sha256": json_sha256(train_texts),
        },
        eval_scores={"perplexity": result.perplexity, "unigram_perplexity": result.unigram_perplexity},
    )
    return replace(result, checkpoint=checkpoint)

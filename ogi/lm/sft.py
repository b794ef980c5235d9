"""Supervised fine-tuning on (prompt, response) demonstrations; the loss counts response tokens (and eos) only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ogi.checkpoints import Checkpoint, json_sha256
from ogi.lm.config import SFTConfig, to_dict
from ogi.lm.corpus import Demonstration, is_correct, split_demonstrations
from ogi.lm.data import pad_right, pair_ids, prompt_ids
from ogi.lm.model import CausalTransformer, generate
from ogi.lm.pretrain import Progress
from ogi.lm.schedule import make_optimizer, optimizer_step
from ogi.lm.store import save_language_model
from ogi.lm.tokenizer import Tokenizer
from ogi.validation import ConfigError

IGNORE_INDEX = -100


@dataclass(frozen=True, kw_only=True)
class SFTResult:
    model: CausalTransformer
    exact_match: float
    """Fraction of held-out prompts whose greedy response equals the reference response."""
    verified: float
    """Fraction of held-out greedy responses the programmatic verifier accepts."""
    response_tokens_trained: int
    steps: int
    final_loss: float
    checkpoint: Checkpoint | None


def encode_demonstrations(
    tokenizer: Tokenizer,
    demos: Sequence[Demonstration],
    context_length: int,
) -> list[tuple[list[int], int]]:
    """Each demonstration as (token ids, index of the first response token); over-long ones raise."""
    return [pair_ids(tokenizer, demo.prompt, demo.response, context_length) for demo in demos]


def response_targets(rows: Sequence[tuple[list[int], int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``(B, T-1)`` and next-token targets ``(B, T-1)`` where prompt and padding targets are IGNORE_INDEX."""
    tokens = pad_right([ids for ids, _ in rows], pad_id)
    targets = torch.full_like(tokens, IGNORE_INDEX)
    for row, (ids, start) in enumerate(rows):
        targets[row, start : len(ids)] = tokens[row, start : len(ids)]
    return tokens[:, :-1], targets[:, 1:]


def sft_loss(model: CausalTransformer, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L = -(1 / |R|) sum_{t in R} log p(y_t | x, y_<t), R the response positions."""
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)


@torch.no_grad()
def greedy_response(model: CausalTransformer, tokenizer: Tokenizer, prompt: str, max_new_tokens: int = 32) -> str:
    head = torch.tensor([prompt_ids(tokenizer, prompt)])
    new = generate(model, head, max_new_tokens=max_new_tokens, eos_id=tokenizer.eos_id, greedy=True)
    return tokenizer.decode(new[0].tolist())


def evaluate_demonstrations(
    model: CausalTransformer,
    tokenizer: Tokenizer,
    demos: Sequence[Demonstration],
) -> tuple[float, float]:
    """(exact match, verifier acceptance) of greedy responses over ``demos``."""
    exact = verified = 0
    for demo in demos:
        response = greedy_response(model, tokenizer, demo.prompt)
        exact += response == tokenizer.decode(tokenizer.encode(demo.response))
        verified += is_correct(demo.prompt, response)
    return exact / len(demos), verified / len(demos)


def supervised_finetune(
    model: CausalTransformer,
    tokenizer: Tokenizer,
    config: SFTConfig,
    *,
    demonstrations: Sequence[Demonstration] | None = None,
    heldout: Sequence[Demonstration] | None = None,
    run_dir: Path | None = None,
    parent: Checkpoint | None = None,
    progress: Progress | None = None,
) -> SFTResult:
    """Fine-tune ``model`` in place on demonstrations (generated from the grammar unless given)."""
    if demonstrations is None or heldout is None:
        generated_train, generated_heldout = split_demonstrations(
            config.train_examples, config.heldout_examples, config.seed
        )
        demonstrations = generated_train if demonstrations is None else demonstrations
        heldout = generated_heldout if heldout is None else heldout
    if not demonstrations:
        raise ConfigError("no SFT demonstrations: give (prompt, response) pairs or set train_examples > 0")
    if not heldout:
        raise ConfigError("no held-out demonstrations: set heldout_examples > 0")
    rows = encode_demonstrations(tokenizer, demonstrations, model.config.context_length)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config.optimizer)
    model.train()
    loss_value, response_tokens = float("nan"), 0
    for step in range(config.steps):
        picks = torch.randint(0, len(rows), (config.batch_size,), generator=generator).tolist()
        inputs, targets = response_targets([rows[i] for i in picks], tokenizer.pad_id)
        loss = sft_loss(model, inputs, targets)
        optimizer_step(model, optimizer, loss, step=step, total_steps=config.steps, config=config.optimizer)
        loss_value = float(loss.detach())
        response_tokens += int((targets != IGNORE_INDEX).sum())
        if progress is not None:
            progress(step + 1, config.steps, {"loss": loss_value})
    exact, verified = evaluate_demonstrations(model, tokenizer, heldout)
    result = SFTResult(
        model=model,
        exact_match=exact,
        verified=verified,
        response_tokens_trained=response_tokens,
        steps=config.steps,
        final_loss=loss_value,
        checkpoint=None,
    )
    if run_dir is None:
        return result
    checkpoint = save_language_model(
        run_dir,
        stage="sft",
        model=model,
        tokenizer=tokenizer,
        stage_config=to_dict(config),
        step=config.steps,
        iteration=config.steps,
        parent=parent,
        data_manifest={
            "demonstrations": len(demonstrations),
            "heldout": len(heldout),
            "response_tokens_trained": response_tokens,
            "demonstrations_sha256": json_sha256([[d.prompt, d.response] for d in demonstrations]),
        },
        eval_scores={"exact_match": exact, "verified": verified},
    )
    return replace(result, checkpoint=checkpoint)

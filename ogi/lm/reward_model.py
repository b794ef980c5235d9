"""Reward model R(x, y): a transformer trunk with a scalar head read at the response's last token (eos).

Trained on preference pairs with the Bradley-Terry loss L = -log sigmoid(R(x, y_w) - R(x, y_l)).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ogi.checkpoints import Checkpoint, json_sha256
from ogi.lm.config import RewardConfig, to_dict
from ogi.lm.corpus import PreferencePair, is_correct, preference_pairs, split_demonstrations
from ogi.lm.data import pad_right, pair_ids
from ogi.lm.model import CausalTransformer
from ogi.lm.preferences import sampled_preference_pairs
from ogi.lm.pretrain import Progress
from ogi.lm.schedule import make_optimizer, optimizer_step
from ogi.lm.store import save_language_model
from ogi.lm.tokenizer import Tokenizer
from ogi.validation import ConfigError


class RewardModel(nn.Module):
    """``forward(tokens (B, T), lengths (B,)) -> scores (B,)``:

        R(x, y) = w . h_last + b + alpha sum_{t in y} log p_trunk(y_t | x, y_<t)

    the head read at position ``lengths - 1`` (eos) plus ``alpha`` times the trunk's own log-likelihood of the
    response (the tokens after ``response_id``; the trunk keeps its tied language-model head). Started from the SFT
    model, the likelihood term already knows which plan an instruction asks for, including its numbers, which a
    head on one position does not learn from a few thousand pairs. ``alpha`` is trained with the rest; a model
    without ``response_id`` (or with alpha = 0) is the head alone.
    """

    def __init__(self, trunk: CausalTransformer, *, response_id: int | None = None, likelihood_weight: float = 0.0):
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(trunk.config.width, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.response_id = response_id
        self.likelihood_weight = nn.Parameter(
            torch.tensor(float(likelihood_weight)), requires_grad=response_id is not None
        )

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.trunk.hidden_states(tokens)
        rows = torch.arange(tokens.shape[0])
        score = self.head(hidden[rows, lengths - 1]).squeeze(-1)
        if self.response_id is None:
            return score
        log_probs = torch.log_softmax(self.trunk.logits(hidden[:, :-1]), dim=-1)
        log_probs = log_probs.gather(-1, tokens[:, 1:, None]).squeeze(-1)
        position = torch.arange(1, tokens.shape[1])[None, :]
        start = (tokens == self.response_id).float().argmax(dim=1, keepdim=True) + 1
        in_response = (position >= start) & (position < lengths[:, None])
        return score + self.likelihood_weight * (log_probs * in_response).sum(dim=1)

    def head_tensors(self) -> dict[str, torch.Tensor]:
        heads = {"reward.weight": self.head.weight, "reward.bias": self.head.bias}
        if self.response_id is not None:
            heads["reward.likelihood_weight"] = self.likelihood_weight.detach().reshape(1)
            heads["reward.response_id"] = torch.tensor([self.response_id])
        return heads

    @classmethod
    def from_parts(cls, trunk: CausalTransformer, heads: dict[str, torch.Tensor]) -> RewardModel:
        if "reward.weight" not in heads or "reward.bias" not in heads:
            raise ValueError("the checkpoint has no reward head (head.reward.weight / head.reward.bias)")
        response_id = int(heads["reward.response_id"][0]) if "reward.response_id" in heads else None
        weight = float(heads["reward.likelihood_weight"][0]) if "reward.likelihood_weight" in heads else 0.0
        model = cls(trunk, response_id=response_id, likelihood_weight=weight)
        model.head.load_state_dict({"weight": heads["reward.weight"], "bias": heads["reward.bias"]})
        return model


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """L = mean(-log sigmoid(R(x, y_w) - R(x, y_l))), computed stably as softplus(R_l - R_w)."""
    return F.softplus(rejected - chosen).mean()


def score_responses(
    reward_model: RewardModel, tokenizer: Tokenizer, prompts: Sequence[str], responses: Sequence[str]
) -> torch.Tensor:
    """R(x, y) for each (prompt, response) pair, ``(len(prompts),)``; no gradient."""
    rows = [
        pair_ids(tokenizer, prompt, response, reward_model.trunk.config.context_length)[0]
        for prompt, response in zip(prompts, responses, strict=True)
    ]
    with torch.no_grad():
        return reward_model(pad_right(rows, tokenizer.pad_id), torch.tensor([len(row) for row in rows]))


def _pair_batch(
    tokenizer: Tokenizer,
    pairs: Sequence[PreferencePair],
    context_length: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen rows then rejected rows, padded together: tokens ``(2B, T)`` and lengths ``(2B,)``."""
    rows = [
        pair_ids(tokenizer, pair.prompt, response, context_length)[0]
        for responses in ([p.chosen for p in pairs], [p.rejected for p in pairs])
        for pair, response in zip(pairs, responses)
    ]
    return pad_right(rows, tokenizer.pad_id), torch.tensor([len(row) for row in rows])


@torch.no_grad()
def pairwise_accuracy(reward_model: RewardModel, tokenizer: Tokenizer, pairs: Sequence[PreferencePair]) -> float:
    """Fraction of pairs with R(x, y_w) > R(x, y_l)."""
    reward_model.eval()
    tokens, lengths = _pair_batch(tokenizer, pairs, reward_model.trunk.config.context_length)
    scores = reward_model(tokens, lengths)
    reward_model.train()
    return float((scores[: len(pairs)] > scores[len(pairs) :]).float().mean())


@dataclass(frozen=True, kw_only=True)
class RewardResult:
    reward_model: RewardModel
    accuracy: float
    """Held-out pairwise accuracy."""
    train_accuracy: float
    steps: int
    final_loss: float
    checkpoint: Checkpoint | None


def train_reward_model(
    init: CausalTransformer,
    tokenizer: Tokenizer,
    config: RewardConfig,
    *,
    pairs: Sequence[PreferencePair] | None = None,
    heldout: Sequence[PreferencePair] | None = None,
    run_dir: Path | None = None,
    parent: Checkpoint | None = None,
    progress: Progress | None = None,
) -> RewardResult:
    """Train a reward model whose trunk starts as a copy of ``init`` (usually the SFT model; ``init`` is untouched).

    Without ``pairs``: grammar pairs (canonical > corrupted) for ``train_pairs`` demonstrations, plus pairs
    (canonical > wrong sample) from ``init``'s own samples on the first ``sampled_prompts`` of them.
    """
    if pairs is None or heldout is None:
        train_demos, heldout_demos = split_demonstrations(config.train_pairs, config.heldout_pairs, config.seed + 17)
        if pairs is None:
            sampled = sampled_preference_pairs(
                init,
                tokenizer,
                train_demos[: config.sampled_prompts],
                samples_per_prompt=config.samples_per_prompt,
                seed=config.seed,
                is_correct=is_correct,
            )
            pairs = preference_pairs(train_demos, config.seed) + sampled
        heldout = preference_pairs(heldout_demos, config.seed + 1) if heldout is None else heldout
    if not pairs:
        raise ConfigError("no preference data: give (prompt, chosen, rejected) pairs or set train_pairs > 0")
    if not heldout:
        raise ConfigError("no held-out preference pairs: set heldout_pairs > 0")
    context = init.config.context_length
    for pair in list(pairs) + list(heldout):
        pair_ids(tokenizer, pair.prompt, pair.chosen, context)
        pair_ids(tokenizer, pair.prompt, pair.rejected, context)
    reward_model = RewardModel(
        copy.deepcopy(init),
        response_id=tokenizer.response_id if config.likelihood_term else None,
        likelihood_weight=config.likelihood_weight,
    )
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(reward_model, config.optimizer)
    reward_model.train()
    loss_value = float("nan")
    for step in range(config.steps):
        picks = torch.randint(0, len(pairs), (config.batch_size,), generator=generator).tolist()
        tokens, lengths = _pair_batch(tokenizer, [pairs[i] for i in picks], context)
        scores = reward_model(tokens, lengths)
        loss = bradley_terry_loss(scores[: len(picks)], scores[len(picks) :])
        optimizer_step(reward_model, optimizer, loss, step=step, total_steps=config.steps, config=config.optimizer)
        loss_value = float(loss.detach())
        if progress is not None:
            progress(step + 1, config.steps, {"loss": loss_value})
    accuracy = pairwise_accuracy(reward_model, tokenizer, heldout)
    train_accuracy = pairwise_accuracy(reward_model, tokenizer, list(pairs)[: len(heldout)])
    result = RewardResult(
        reward_model=reward_model,
        accuracy=accuracy,
        train_accuracy=train_accuracy,
        steps=config.steps,
        final_loss=loss_value,
        checkpoint=None,
    )
    if run_dir is None:
        return result
    checkpoint = save_language_model(
        run_dir,
        stage="reward",
        model=reward_model.trunk,
        tokenizer=tokenizer,
        stage_config=to_dict(config),
        step=config.steps,
        iteration=config.steps,
        parent=parent,
        heads=reward_model.head_tensors(),
        data_manifest={
            "pairs": len(pairs),
            "heldout_pairs": len(heldout),
            "pairs_sha256": json_sha256([[p.prompt, p.chosen, p.rejected] for p in pairs]),
        },
        eval_scores={"pairwise_accuracy": accuracy, "train_pairwise_accuracy": train_accuracy},
    )
    return replace(result, checkpoint=checkpoint)

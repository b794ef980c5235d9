"""A learned success verifier V(decision inputs, candidate (stage, subgoal)) -> P(episode succeeds), trained with
binary cross-entropy on played episodes' outcomes, and best-of-N decisions that keep the candidate it rates best.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ogi.checkpoints import Checkpoint, CheckpointError
from ogi.hierarchy.planner_data import EpisodeBatch
from ogi.lm.config import OptimizerConfig
from ogi.lm.pretrain import Progress
from ogi.lm.schedule import make_optimizer, optimizer_step
from ogi.policies.planner import Planner, PlannerInputs, load_planner, save_planner
from ogi.validation import ConfigError, check_int, check_range


class PlannerVerifier(nn.Module):
    """P(the episode succeeds | decision inputs, candidate (stage, subgoal)) = sigmoid(head(h)), with h the hidden
    state at the candidate's subgoal token in the verifier's own planner trunk (a copy of the SFT planner)."""

    def __init__(self, trunk: Planner):
        super().__init__()
        self.trunk = trunk
        width = trunk.config.model.width
        self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def forward(
        self,
        images: torch.Tensor,
        states: torch.Tensor,
        prev_stages: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_lengths: torch.Tensor,
        stages: torch.Tensor,
        subgoals: torch.Tensor,
    ) -> torch.Tensor:
        """Success logits ``(B,)``."""
        tokens = (self.trunk.stage_token_ids[stages.long()], self.trunk.subgoal_token_ids[subgoals.long()])
        hidden = self.trunk.hidden_after(images, states, prev_stages, prompt_ids, prompt_lengths, tokens)
        return self.head(hidden[:, 2]).squeeze(-1)

    @torch.no_grad()
    def success_probability(self, *inputs: torch.Tensor) -> torch.Tensor:
        """sigmoid of :meth:`forward`, in eval mode, ``(B,)``."""
        was_training = self.training
        self.eval()
        probability = torch.sigmoid(self(*inputs))
        self.train(was_training)
        return probability


@dataclass(frozen=True, kw_only=True)
class VerifierConfig:
    seed: int = 0
    steps: int = 400
    batch_size: int = 64
    heldout_fraction: float = 0.1
    """Held-out decisions are those of whole episodes."""
    train_trunk: bool = True
    """Fine-tune the trunk with the head; False trains the head on the frozen SFT features."""
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(learning_rate=1e-3, eta_min=1e-4, weight_decay=0.0)
    )

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("steps", self.steps, 1, 10_000_000)
        check_int("batch_size", self.batch_size, 1, 100_000)
        check_range("heldout_fraction", self.heldout_fraction, 0.01, 0.9)
        if not isinstance(self.train_trunk, bool):
            raise ConfigError(f"train_trunk = {self.train_trunk!r} must be true or false")


@dataclass(frozen=True, kw_only=True)
class VerifierResult:
    verifier: PlannerVerifier
    heldout_accuracy: float
    """Held-out decisions whose episode outcome the verifier's p > 0.5 calls right."""
    heldout_brier: float
    """mean (p - success)^2 over held-out decisions."""
    base_rate: float
    """Success rate of the held-out decisions' episodes (0.5 means a coin; accuracy should beat max(b, 1 - b))."""
    final_loss: float
    checkpoint: Checkpoint


def train_verifier(
    planner: Planner,
    data: EpisodeBatch,
    cfg: VerifierConfig,
    out_dir: Path,
    parent: Checkpoint | None,
    *,
    progress: Progress | None = None,
) -> VerifierResult:
    """Train a verifier on a copy of ``planner`` (the SFT planner, left untouched): every decision of ``data`` with
    its chosen (stage, subgoal) is labelled with its episode's success; loss
    L = -[y log sigma(z) + (1 - y) log(1 - sigma(z))]. Saves a stage "verifier" checkpoint whose parent is ``parent``.
    """
    verifier = PlannerVerifier(copy.deepcopy(planner))
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        verifier.head = PlannerVerifier(planner).head
    verifier.trunk.requires_grad_(cfg.train_trunk)
    labels = data.success.float()[data.episodes.long()]
    generator = torch.Generator().manual_seed(cfg.seed)
    episode_order = torch.randperm(data.num_episodes, generator=generator)
    heldout_count = min(data.num_episodes - 1, max(1, round(cfg.heldout_fraction * data.num_episodes)))
    if heldout_count < 1:
        raise ConfigError(f"the verifier needs at least 2 episodes (one held out), got {data.num_episodes}")
    heldout_episodes = torch.zeros(data.num_episodes, dtype=torch.bool)
    heldout_episodes[episode_order[:heldout_count]] = True
    is_heldout = heldout_episodes[data.episodes.long()]
    train_rows, heldout_rows = torch.nonzero(~is_heldout).squeeze(1), torch.nonzero(is_heldout).squeeze(1)
    optimizer = make_optimizer(verifier, cfg.optimizer)
    verifier.train()
    loss_value = float("nan")
    for step in range(cfg.steps):
        pick = train_rows[torch.randint(0, train_rows.numel(), (cfg.batch_size,), generator=generator)]
        logits = verifier(*data.inputs(pick), data.stages[pick], data.subgoals[pick])
        loss = F.binary_cross_entropy_with_logits(logits, labels[pick])
        optimizer_step(verifier, optimizer, loss, step=step, total_steps=cfg.steps, config=cfg.optimizer)
        loss_value = float(loss.detach())
        if progress is not None:
            progress(step + 1, cfg.steps, {"loss": loss_value})
    probability = torch.cat(
        [
            verifier.success_probability(*data.inputs(rows), data.stages[rows], data.subgoals[rows])
            for rows in heldout_rows.split(512)
        ]
    )
    truth = labels[heldout_rows]
    accuracy = float(((probability > 0.5).float() == truth).float().mean())
    brier = float(((probability - truth) ** 2).mean())
    base_rate = float(truth.mean())
    checkpoint = save_planner(
        out_dir,
        verifier.trunk,
        stage="verifier",
        stage_config=dataclasses.asdict(cfg),
        step=cfg.steps,
        iteration=cfg.steps,
        data_manifest={"episodes": data.num_episodes, "decisions": data.stages.shape[0]},
        eval_scores={"heldout_accuracy": accuracy, "heldout_brier": brier, "base_rate": base_rate},
        parent=parent,
        heads={f"verifier.{name}": tensor for name, tensor in verifier.head.state_dict().items()},
    )
    return VerifierResult(
        verifier=verifier,
        heldout_accuracy=accuracy,
        heldout_brier=brier,
        base_rate=base_rate,
        final_loss=loss_value,
        checkpoint=checkpoint,
    )


def load_verifier(path: Path) -> PlannerVerifier:
    """A verifier saved by :func:`train_verifier` (or the newest valid one of its run directory)."""
    loaded = load_planner(path, expect_stage=("verifier",))
    verifier = PlannerVerifier(loaded.planner)
    head = {k.removeprefix("verifier."): v for k, v in loaded.heads.items() if k.startswith("verifier.")}
    try:
        verifier.head.load_state_dict(head)
    except RuntimeError as error:
        raise CheckpointError(f"{loaded.checkpoint.path}: verifier head does not fit: {error}") from None
    return verifier


@torch.no_grad()
def best_of_n_act(
    planner: Planner,
    verifier: PlannerVerifier,
    inputs: PlannerInputs,
    n: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample ``n`` (stage, subgoal) candidates per row from ``planner`` and keep the one the verifier scores
    highest; among equal scores the one with the highest log-probability. Returns stages, subgoals, their
    log-probabilities and verifier scores, each ``(B,)``."""
    check_int("n", n, 1, 100_000)
    stages, subgoals, log_probs = planner.act(*inputs, generator=generator, n_candidates=n)
    repeated = [tensor.repeat_interleave(n, dim=0) for tensor in inputs]
    scores = verifier.success_probability(*repeated, stages.flatten(), subgoals.flatten()).view_as(log_probs)
    best = scores.max(dim=1, keepdim=True).values
    pick = log_probs.masked_fill(scores < best, float("-inf")).argmax(dim=1, keepdim=True)
    return (
        stages.gather(1, pick).squeeze(1),
        subgoals.gather(1, pick).squeeze(1),
        log_probs.gather(1, pick).squeeze(1),
        scores.gather(1, pick).squeeze(1),
    )

"""Training the planner, first stages: pretraining its language model, then supervised fine-tuning on expert
decisions. Each stage saves a checkpoint whose parent is the one it started from (language model -> planner ->
SFT); `planner_rl` and `planner_verifier` continue from the SFT checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ogi.checkpoints import Checkpoint
from ogi.hierarchy.planner_data import DecisionDataset
from ogi.lm.config import OptimizerConfig, PretrainConfig
from ogi.lm.pretrain import PretrainResult, Progress, pretrain
from ogi.lm.schedule import make_optimizer, optimizer_step
from ogi.policies.planner import Planner, PlannerConfig, load_language_model_weights, save_planner
from ogi.validation import ConfigError, check_choice, check_int, check_range


@dataclass(frozen=True, kw_only=True)
class PlannerPretrainConfig:
    """The language model is pretrained with the planner's transformer shape (no prefix) and its action tokens."""

    seed: int = 0
    steps: int = 300
    batch_size: int = 16
    heldout_fraction: float = 0.1
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_range("heldout_fraction", self.heldout_fraction, 0.01, 0.9)

    @property
    def language_model(self) -> PretrainConfig:
        return PretrainConfig(
            seed=self.seed,
            steps=self.steps,
            batch_size=self.batch_size,
            tokenizer="word",
            num_action_tokens=self.planner.num_action_tokens,
            model=dataclasses.replace(self.planner.model, prefix_dim=0),
            optimizer=self.optimizer,
        )


@dataclass(frozen=True, kw_only=True)
class PlannerPretrainResult:
    planner: Planner
    language_model: PretrainResult
    checkpoint: Checkpoint


def pretrain_planner_lm(
    documents: Sequence[str], cfg: PlannerPretrainConfig, out_dir: Path, *, progress: Progress | None = None
) -> PlannerPretrainResult:
    """Pretrain the language model on ``documents`` (text only; include the instructions so the word tokenizer knows
    their words) with :func:`ogi.lm.pretrain.pretrain`, then build the planner around its transformer.

    Checkpoints: ``out_dir/language_model`` (stage "pretrain") and ``out_dir/planner`` (its child, stage
    "pretrain"); the planner's CNN, state encoder and prefix projection start fresh.
    """
    documents = list(documents)
    if len(documents) < 2:
        raise ConfigError(f"pretraining needs at least 2 documents (one held out), got {len(documents)}")
    order = torch.randperm(len(documents), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    heldout_count = min(len(documents) - 1, max(1, round(cfg.heldout_fraction * len(documents))))
    heldout = [documents[i] for i in order[:heldout_count]]
    train = [documents[i] for i in order[heldout_count:]]
    language_model = pretrain(
        cfg.language_model,
        documents=train,
        heldout_documents=heldout,
        run_dir=Path(out_dir) / "language_model",
        progress=progress,
    )
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        planner = Planner(cfg.planner, language_model.tokenizer)
    load_language_model_weights(planner, language_model.model)
    checkpoint = save_planner(
        Path(out_dir) / "planner",
        planner,
        stage="pretrain",
        stage_config=dataclasses.asdict(cfg),
        step=language_model.steps,
        iteration=language_model.steps,
        data_manifest={"documents": len(train), "heldout_documents": len(heldout)},
        eval_scores={"perplexity": language_model.perplexity},
        parent=language_model.checkpoint,
    )
    return PlannerPretrainResult(planner=planner, language_model=language_model, checkpoint=checkpoint)


@dataclass(frozen=True, kw_only=True)
class PlannerSFTConfig:
    seed: int = 0
    steps: int = 600
    batch_size: int = 64
    heldout_fraction: float = 0.1
    split_by: str = "episode"
    """Held-out decisions are whole "episode"s or whole "instruction"s the training split never saw."""
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(learning_rate=1e-3, eta_min=1e-4, weight_decay=0.0)
    )

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("steps", self.steps, 1, 10_000_000)
        check_int("batch_size", self.batch_size, 1, 100_000)
        check_range("heldout_fraction", self.heldout_fraction, 0.01, 0.9)
        check_choice("split_by", self.split_by, ("episode", "instruction"))


@dataclass(frozen=True, kw_only=True)
class DecisionAccuracy:
    stage: float
    """argmax of the stage head equals the target stage."""
    subgoal: float
    """argmax of the subgoal head, given the target stage, equals the target subgoal."""
    joint: float
    """The greedy decision (stage, then subgoal after it) equals both targets."""


@dataclass(frozen=True, kw_only=True)
class PlannerSFTResult:
    planner: Planner
    heldout: DecisionAccuracy
    train_decisions: int
    heldout_decisions: int
    final_loss: float
    steps: int
    checkpoint: Checkpoint


def decision_loss(planner: Planner, dataset: DecisionDataset, index: torch.Tensor) -> torch.Tensor:
    """L = CE(stage head, s*) + CE(subgoal head | s*, g*), the subgoal head teacher-forced on the target stage."""
    stage_logits, subgoal_logits = planner.decision_logits(*dataset.inputs(index), dataset.stages[index])
    return F.cross_entropy(stage_logits, dataset.stages[index]) + F.cross_entropy(
        subgoal_logits, dataset.subgoals[index]
    )


@torch.no_grad()
def decision_accuracy(planner: Planner, dataset: DecisionDataset, batch_size: int = 512) -> DecisionAccuracy:
    was_training = planner.training
    planner.eval()
    stage = subgoal = joint = 0
    for first in range(0, len(dataset), batch_size):
        index = torch.arange(first, min(first + batch_size, len(dataset)))
        inputs = dataset.inputs(index)
        stages, subgoals = dataset.stages[index], dataset.subgoals[index]
        stage_logits, subgoal_logits = planner.decision_logits(*inputs, stages)
        stage += int((stage_logits.argmax(1) == stages).sum())
        subgoal += int((subgoal_logits.argmax(1) == subgoals).sum())
        chosen_stages, chosen_subgoals, _ = planner.act(*inputs, greedy=True)
        joint += int(((chosen_stages == stages) & (chosen_subgoals == subgoals)).sum())
    planner.train(was_training)
    count = max(1, len(dataset))
    return DecisionAccuracy(stage=stage / count, subgoal=subgoal / count, joint=joint / count)


def sft_planner(
    planner: Planner,
    dataset: DecisionDataset,
    cfg: PlannerSFTConfig,
    out_dir: Path,
    parent: Checkpoint | None,
    *,
    progress: Progress | None = None,
) -> PlannerSFTResult:
    """Fine-tune ``planner`` in place on ``dataset`` (cross-entropy on the stage and subgoal tokens), report the
    held-out accuracy and save a stage "sft" checkpoint under ``out_dir`` whose parent is ``parent``."""
    if planner.config.vision and not bool((dataset.images != 0).any()):
        raise ConfigError(
            f"all {len(dataset)} decisions carry blank images: a seeing planner would learn to act blind; record the "
            "demonstrations with the camera on (play_episodes keeps the image of every kept decision)"
        )
    train, heldout = dataset.split(cfg.heldout_fraction, seed=cfg.seed, by=cfg.split_by)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = make_optimizer(planner, cfg.optimizer)
    planner.train()
    loss_value = float("nan")
    for step in range(cfg.steps):
        index = torch.randint(0, len(train), (cfg.batch_size,), generator=generator)
        loss = decision_loss(planner, train, index)
        optimizer_step(planner, optimizer, loss, step=step, total_steps=cfg.steps, config=cfg.optimizer)
        loss_value = float(loss.detach())
        if progress is not None:
            progress(step + 1, cfg.steps, {"loss": loss_value})
    accuracy = decision_accuracy(planner, heldout)
    checkpoint = save_planner(
        out_dir,
        planner,
        stage="sft",
        stage_config=dataclasses.asdict(cfg),
        step=cfg.steps,
        iteration=cfg.steps,
        data_manifest={
            "decisions": len(dataset),
            "train_decisions": len(train),
            "heldout_decisions": len(heldout),
            "dataset_sha256": dataset.sha256(),
        },
        eval_scores={f"heldout_{name}_accuracy": value for name, value in dataclasses.asdict(accuracy).items()},
        parent=parent,
    )
    return PlannerSFTResult(
        planner=planner,
        heldout=accuracy,
        train_decisions=len(train),
        heldout_decisions=len(heldout),
        final_loss=loss_value,
        steps=cfg.steps,
        checkpoint=checkpoint,
    )

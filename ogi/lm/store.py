"""Language-model checkpoints on the project's content-hashed checkpoint format, with lineage across stages.

The config stored in the manifest holds the stage name, the model shape, the whole tokenizer (so a checkpoint is
self-contained) and the stage's training config. Weights are the transformer's tensors under ``model.`` and any
head (value, reward) under ``head.``. Loading reads only safetensors and JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ogi.checkpoints import Checkpoint, CheckpointError, load_checkpoint, resolve_checkpoint, save_checkpoint
from ogi.lm.model import CausalTransformer, TransformerConfig
from ogi.lm.tokenizer import Tokenizer


@dataclass(frozen=True, kw_only=True)
class LanguageModelCheckpoint:
    stage: str
    model: CausalTransformer
    tokenizer: Tokenizer
    heads: dict[str, torch.Tensor]
    checkpoint: Checkpoint


def save_language_model(
    run_dir: Path,
    *,
    stage: str,
    model: CausalTransformer,
    tokenizer: Tokenizer,
    stage_config: Mapping[str, Any],
    step: int,
    iteration: int,
    data_manifest: Mapping[str, Any],
    eval_scores: Mapping[str, float],
    parent: Checkpoint | None,
    heads: Mapping[str, torch.Tensor] | None = None,
    reward_weights: Mapping[str, float] | None = None,
) -> Checkpoint:
    """Write one checkpoint of ``stage`` under ``run_dir``; ``parent`` is the checkpoint this stage started from."""
    weights = {f"model.{name}": tensor for name, tensor in model.state_dict().items()}
    weights.update({f"head.{name}": tensor for name, tensor in (heads or {}).items()})
    config = {
        "stage": stage,
        "model": model.config.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "train": dict(stage_config),
    }
    return save_checkpoint(
        run_dir,
        step=step,
        iteration=iteration,
        weights=weights,
        state={},
        config=config,
        reward_weights=reward_weights or {},
        data_manifest=data_manifest,
        eval_scores=eval_scores,
        parent=parent,
    )


def load_language_model(path: Path, *, expect_stage: tuple[str, ...] = ()) -> LanguageModelCheckpoint:
    """Load a language-model checkpoint (or a run's newest one); ``expect_stage`` restricts the stages accepted."""
    loaded = load_checkpoint(resolve_checkpoint(path))
    config = loaded.checkpoint.config
    if "stage" not in config or "model" not in config or "tokenizer" not in config:
        raise CheckpointError(f"{loaded.path} is not a language-model checkpoint (no stage/model/tokenizer config)")
    if expect_stage and config["stage"] not in expect_stage:
        raise CheckpointError(f"{loaded.path} is a '{config['stage']}' checkpoint; expected one of {expect_stage}")
    model = CausalTransformer(TransformerConfig(**config["model"]))
    model.load_state_dict(
        {name.removeprefix("model."): tensor for name, tensor in loaded.weights.items() if name.startswith("model.")}
    )
    heads = {name.removeprefix("head."): tensor for name, tensor in loaded.weights.items() if name.startswith("head.")}
    return LanguageModelCheckpoint(
        stage=config["stage"],
        model=model,
        tokenizer=Tokenizer.from_dict(dict(config["tokenizer"])),
        heads=heads,
        checkpoint=loaded.checkpoint,
    )

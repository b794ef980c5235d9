"""What the planner learns from: expert decisions for supervised fine-tuning (:class:`DecisionDataset`, saved as
safetensors + JSON) and played episodes for RL and the verifier (:class:`EpisodeBatch`, what a caller's
``rollout_fn(act_fn, episodes)`` returns after asking ``act_fn`` at every decision).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ogi.checkpoints import json_sha256
from ogi.policies.planner import PlannerInputs
from ogi.validation import ConfigError, check_choice, check_range

_DATASET_FORMAT = "ogi-planner-decisions"
_DATASET_TENSORS = "decisions.safetensors"
_DATASET_META = "decisions.json"
_DATASET_FIELDS = ("images", "states", "prev_stages", "prompt_ids", "prompt_lengths", "stages", "subgoals", "episodes")


@dataclass(frozen=True, kw_only=True)
class DecisionDataset:
    """N decisions with their targets: images ``(N, H, W, 4)`` (float32 in [0, 1], or uint8), states
    ``(N, STATE_DIM)``, prev_stages, stages, subgoals, episodes ``(N,)`` int64, prompt_ids ``(N, T)`` right-padded,
    prompt_lengths ``(N,)``, and texts: the instruction of each decision, for splitting by instruction."""

    images: torch.Tensor
    states: torch.Tensor
    prev_stages: torch.Tensor
    prompt_ids: torch.Tensor
    prompt_lengths: torch.Tensor
    stages: torch.Tensor
    subgoals: torch.Tensor
    episodes: torch.Tensor
    texts: tuple[str, ...]

    def __post_init__(self) -> None:
        count = len(self.texts)
        for name in _DATASET_FIELDS:
            tensor = getattr(self, name)
            if not isinstance(tensor, torch.Tensor) or tensor.shape[0] != count:
                raise ValueError(f"DecisionDataset.{name} must be a tensor with {count} rows (one per text)")
        if self.images.dim() != 4 or self.images.shape[-1] != 4:
            raise ValueError(f"DecisionDataset.images has shape {tuple(self.images.shape)}, not (N, H, W, 4)")

    def __len__(self) -> int:
        return len(self.texts)

    def inputs(self, index: torch.Tensor | slice = slice(None)) -> PlannerInputs:
        """The planner's inputs of the rows ``index``."""
        return (
            self.images[index],
            self.states[index],
            self.prev_stages[index],
            self.prompt_ids[index],
            self.prompt_lengths[index],
        )

    def subset(self, index: torch.Tensor) -> DecisionDataset:
        rows = index.tolist()
        tensors = {name: getattr(self, name)[index] for name in _DATASET_FIELDS}
        return DecisionDataset(**tensors, texts=tuple(self.texts[i] for i in rows))

    def split(
        self, heldout_fraction: float, *, seed: int, by: str = "episode"
    ) -> tuple[DecisionDataset, DecisionDataset]:
        """(train, held-out) with whole episodes (``by="episode"``) or whole instructions (``by="instruction"``) on
        one side, so no held-out decision has a twin in training; at least one group on each side."""
        check_range("heldout_fraction", heldout_fraction, 0.0, 1.0)
        check_choice("split_by", by, ("episode", "instruction"))
        keys = self.episodes.tolist() if by == "episode" else list(self.texts)
        groups = list(dict.fromkeys(keys))
        if len(groups) < 2:
            raise ConfigError(f"splitting by {by} needs at least 2 distinct {by}s; the dataset has {len(groups)}")
        order = torch.randperm(len(groups), generator=torch.Generator().manual_seed(seed)).tolist()
        count = min(len(groups) - 1, max(1, round(heldout_fraction * len(groups))))
        heldout = {groups[i] for i in order[:count]}
        is_heldout = torch.tensor([key in heldout for key in keys])
        return self.subset(torch.nonzero(~is_heldout).squeeze(1)), self.subset(torch.nonzero(is_heldout).squeeze(1))

    def _tensor_bytes(self) -> bytes:
        return save_safetensors({name: getattr(self, name).contiguous() for name in _DATASET_FIELDS})

    def sha256(self) -> str:
        """Hash of the tensors and texts, for a checkpoint's data manifest."""
        return json_sha256([hashlib.sha256(self._tensor_bytes()).hexdigest(), list(self.texts)])

    def save(self, directory: Path) -> None:
        """``decisions.safetensors`` (the tensors) and ``decisions.json`` (texts and the tensors' sha256)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = self._tensor_bytes()
        (directory / _DATASET_TENSORS).write_bytes(data)
        meta = {
            "format": _DATASET_FORMAT,
            "tensors_sha256": hashlib.sha256(data).hexdigest(),
            "texts": list(self.texts),
        }
        (directory / _DATASET_META).write_text(json.dumps(meta) + "\n")

    @classmethod
    def load(cls, directory: Path) -> DecisionDataset:
        """Read a saved dataset (safetensors and JSON only); a damaged or foreign file raises ValueError."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / _DATASET_META).read_text())
            data = (directory / _DATASET_TENSORS).read_bytes()
        except FileNotFoundError as error:
            raise ValueError(f"{directory}: not a decision dataset ({error.filename} is missing)") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{directory / _DATASET_META} is not valid JSON: {error}") from None
        if not isinstance(meta, dict) or meta.get("format") != _DATASET_FORMAT:
            raise ValueError(f"{directory / _DATASET_META} is not a {_DATASET_FORMAT!r} file")
        if hashlib.sha256(data).hexdigest() != meta.get("tensors_sha256"):
            raise ValueError(f"{directory / _DATASET_TENSORS} does not match the sha256 its JSON records")
        try:
            tensors = load_safetensors(data)
        except SafetensorError as error:
            raise ValueError(f"{directory / _DATASET_TENSORS} is not readable safetensors: {error}") from None
        missing = [name for name in _DATASET_FIELDS if name not in tensors]
        if missing:
            raise ValueError(f"{directory / _DATASET_TENSORS} lacks the tensors {missing}")
        return cls(**{name: tensors[name] for name in _DATASET_FIELDS}, texts=tuple(meta["texts"]))


ActFn = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    tuple[torch.Tensor, torch.Tensor, torch.Tensor],
]
"""act_fn(images, states, prev_stages, prompt_ids, prompt_lengths) -> (stages, subgoals, log_probs), each ``(B,)``;
array-likes are accepted, tensors returned."""


@dataclass(frozen=True, kw_only=True)
class EpisodeBatch:
    """D decisions of E played episodes. Per decision: the planner's inputs (as in :data:`PlannerInputs`), the
    chosen stages and subgoals, their log-probabilities under the acting planner, the episode (in [0, E)), the
    decision's number within its episode (0, 1, ... without gaps), and whether the subgoal was unsafe (into an
    obstacle or outside the trained range). Per episode: success, 0 or 1."""

    images: torch.Tensor
    states: torch.Tensor
    prev_stages: torch.Tensor
    prompt_ids: torch.Tensor
    prompt_lengths: torch.Tensor
    stages: torch.Tensor
    subgoals: torch.Tensor
    log_probs: torch.Tensor
    episodes: torch.Tensor
    decision_index: torch.Tensor
    unsafe: torch.Tensor
    success: torch.Tensor

    def __post_init__(self) -> None:
        count = self.stages.shape[0]
        for name in ("images", "states", "prev_stages", "prompt_ids", "prompt_lengths", "subgoals", "log_probs",
                     "episodes", "decision_index", "unsafe"):  # fmt: skip
            if getattr(self, name).shape[0] != count:
                raise ValueError(f"EpisodeBatch.{name} has {getattr(self, name).shape[0]} rows, stages has {count}")
        if count == 0:
            raise ValueError("EpisodeBatch holds no decisions")
        episodes = self.success.shape[0]
        if int(self.episodes.min()) < 0 or int(self.episodes.max()) >= episodes:
            raise ValueError(f"EpisodeBatch.episodes must index the {episodes} entries of success")
        lengths = torch.bincount(self.episodes.long(), minlength=episodes)
        if bool((lengths == 0).any()):
            raise ValueError(f"episodes {torch.nonzero(lengths == 0).squeeze(1).tolist()} have no decisions")
        cells = self.episodes.long() * int(lengths.max()) + self.decision_index.long()
        if bool((self.decision_index >= lengths[self.episodes.long()]).any()) or cells.unique().numel() != count:
            raise ValueError("each episode's decision_index must number its decisions 0, 1, ... once each")

    @property
    def num_episodes(self) -> int:
        return self.success.shape[0]

    def inputs(self, index: torch.Tensor | slice = slice(None)) -> PlannerInputs:
        return (
            self.images[index],
            self.states[index],
            self.prev_stages[index],
            self.prompt_ids[index],
            self.prompt_lengths[index],
        )

    def episode_grid(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-decision ``values`` ``(D,)`` laid out as ``(E, T_max)`` by (episode, decision_index), and the mask
        ``(E, T_max)`` of cells that hold a decision."""
        length = int(self.decision_index.max()) + 1
        grid = torch.zeros(self.num_episodes, length, dtype=values.dtype)
        mask = torch.zeros(self.num_episodes, length)
        grid[self.episodes.long(), self.decision_index.long()] = values
        mask[self.episodes.long(), self.decision_index.long()] = 1.0
        return grid, mask

    def ungrid(self, grid: torch.Tensor) -> torch.Tensor:
        return grid[self.episodes.long(), self.decision_index.long()]


RolloutFn = Callable[[ActFn, int], EpisodeBatch]
"""rollout_fn(act_fn, episodes) plays ``episodes`` episodes, calling ``act_fn`` at every decision."""

"""The planner as a decider in played episodes, and what played episodes become for its training stages.

`PlannerDecider` wraps any act function (the planner's `act`, the RL trainer's sampling `act`, best-of-N with the
verifier) so that `play_episodes` can run it; `decision_dataset` turns kept decisions into SFT data (the expert's
labels where the episodes were relabelled), `episode_batch` into what RL and the verifier read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ogi.hierarchy.episodes import Choice, Decider, DecisionInputs, Decisions, Episode, Outcomes
from ogi.hierarchy.planner_data import ActFn, DecisionDataset, EpisodeBatch
from ogi.hierarchy.planner_verifier import PlannerVerifier, best_of_n_act
from ogi.policies.planner import IMAGE_CHANNELS, Planner

Encode = Callable[[Sequence[str]], tuple[torch.Tensor, torch.Tensor]]
"""texts -> (prompt ids (B, T) right-padded, lengths (B,)), as `Planner.encode`."""


class PlannerDecider(Decider):
    """Decides with `act_fn(images, states, prev_stages, prompt_ids, prompt_lengths) -> (stages, subgoals,
    log_probs)`. A blind planner (`needs_images=False`) is handed zero images of `image_shape` (H, W). With
    `rewrite` (e.g. `ogi.hierarchy.rewrite.InstructionRewriter`) each instruction is said again before the planner
    reads it; `read_texts` holds what it read, by episode."""

    def __init__(
        self,
        act_fn: ActFn,
        encode: Encode,
        *,
        needs_images: bool = True,
        image_shape: tuple[int, int] = (24, 32),
        rewrite: Callable[[str], str] | None = None,
    ):
        self.act_fn, self.encode = act_fn, encode
        self.needs_images = needs_images
        self.image_shape = image_shape
        self.rewrite = rewrite
        self.read_texts: dict[int, str] = {}
        self._prompts: dict[int, tuple[torch.Tensor, int]] = {}

    @classmethod
    def of(cls, planner: Planner, act_fn: ActFn, *, rewrite: Callable[[str], str] | None = None) -> PlannerDecider:
        """A decider that asks `act_fn` with `planner`'s prompts and its image shape (zeros for a blind one)."""
        config = planner.config
        shape = (config.image_height, config.image_width)
        return cls(act_fn, planner.encode, needs_images=config.vision, image_shape=shape, rewrite=rewrite)

    @classmethod
    def greedy(cls, planner: Planner, *, rewrite: Callable[[str], str] | None = None) -> PlannerDecider:
        """The planner's most likely (stage, subgoal) at every decision."""
        return cls.of(planner, functools.partial(planner.act, greedy=True), rewrite=rewrite)

    @classmethod
    def sampling(cls, planner: Planner, generator: torch.Generator) -> PlannerDecider:
        """A (stage, subgoal) drawn from the planner at every decision."""
        return cls.of(planner, functools.partial(planner.act, generator=generator))

    @classmethod
    def best_of_n(
        cls,
        planner: Planner,
        verifier: PlannerVerifier,
        n: int,
        generator: torch.Generator,
        *,
        rewrite: Callable[[str], str] | None = None,
    ) -> PlannerDecider:
        """`n` drawn candidates per decision, the one `verifier` scores highest taken."""

        def act(*inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            stages, subgoals, log_probs, _ = best_of_n_act(planner, verifier, inputs, n, generator=generator)
            return stages, subgoals, log_probs

        return cls.of(planner, act, rewrite=rewrite)

    def begin(self, episodes: Sequence[Episode], indices: np.ndarray) -> None:
        texts = [e.instruction.text for e in episodes]
        if self.rewrite is not None:
            texts = [self.rewrite(text) for text in texts]
        self.read_texts.update({int(i): text for i, text in zip(indices, texts)})
        ids, lengths = self.encode(texts)
        self._prompts = {int(i): (ids[row], int(lengths[row])) for row, i in enumerate(indices)}

    def __call__(self, inputs: DecisionInputs) -> Choice:
        rows = [self._prompts[int(e)] for e in inputs.episodes]
        lengths = torch.tensor([length for _, length in rows])
        ids = torch.stack([prompt[: int(lengths.max())] for prompt, _ in rows])
        count = len(rows)
        if inputs.images is not None:
            images = torch.as_tensor(inputs.images, dtype=torch.float32)
        else:
            images = torch.zeros(count, *self.image_shape, IMAGE_CHANNELS)
        stages, subgoals, log_probs = self.act_fn(
            images, torch.as_tensor(inputs.states), torch.as_tensor(inputs.prev_stages), ids, lengths
        )
        return Choice(
            stages=torch.as_tensor(stages).numpy().astype(np.int64),
            subgoals=torch.as_tensor(subgoals).numpy().astype(np.int64),
            log_probs=torch.as_tensor(log_probs, dtype=torch.float32).numpy(),
        )


def _prompts(encode: Encode, episodes: Sequence[Episode], rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt ids and lengths of each decision's instruction, encoded once per episode."""
    unique, inverse = np.unique(rows, return_inverse=True)
    ids, lengths = encode([episodes[int(i)].instruction.text for i in unique])
    inverse = torch.as_tensor(inverse)
    return ids[inverse], lengths[inverse]


def _inputs(
    arrays: dict[str, np.ndarray], episodes: Sequence[Episode], encode: Encode, image_shape: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """The planner's inputs of every kept decision (zero images where a blind decider kept none)."""
    if "stages" not in arrays:
        raise ValueError("no decisions were kept")
    count = len(arrays["stages"])
    ids, lengths = _prompts(encode, episodes, arrays["episode"])
    images = arrays.get("images")
    return {
        "images": torch.zeros(count, *image_shape, IMAGE_CHANNELS, dtype=torch.uint8)
        if images is None
        else torch.as_tensor(images),
        "states": torch.as_tensor(arrays["states"]),
        "prev_stages": torch.as_tensor(arrays["prev_stages"]),
        "prompt_ids": ids,
        "prompt_lengths": lengths,
    }


def decision_dataset(
    decisions: Decisions,
    episodes: Sequence[Episode],
    encode: Encode,
    *,
    image_shape: tuple[int, int] = (24, 32),
    episode_offset: int = 0,
) -> DecisionDataset:
    """SFT data: every kept decision with its target, the expert's label where there is one (relabelled episodes),
    else what was chosen. Episode ids are shifted by `episode_offset` (to concatenate datasets of several plays)."""
    arrays = decisions.arrays()
    relabelled = "label_stages" in arrays
    return DecisionDataset(
        **_inputs(arrays, episodes, encode, image_shape),
        stages=torch.as_tensor(arrays["label_stages" if relabelled else "stages"]),
        subgoals=torch.as_tensor(arrays["label_subgoals" if relabelled else "subgoals"]),
        episodes=torch.as_tensor(arrays["episode"] + episode_offset),
        texts=tuple(episodes[int(e)].instruction.text for e in arrays["episode"]),
    )


def concat_datasets(parts: Sequence[DecisionDataset], pad_id: int) -> DecisionDataset:
    """One dataset of several, prompts re-padded with `pad_id` (the tokenizer's) to the longest."""
    width = max(part.prompt_ids.shape[1] for part in parts)

    def pad(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
        return torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad_id)

    fields = ("images", "states", "prev_stages", "prompt_lengths", "stages", "subgoals", "episodes")
    return DecisionDataset(
        **{name: torch.cat([getattr(part, name) for part in parts]) for name in fields},
        prompt_ids=torch.cat([pad(part.prompt_ids, pad_id) for part in parts]),
        texts=tuple(text for part in parts for text in part.texts),
    )


def episode_batch(
    decisions: Decisions,
    outcomes: Outcomes,
    episodes: Sequence[Episode],
    encode: Encode,
    *,
    image_shape: tuple[int, int] = (24, 32),
) -> EpisodeBatch:
    """RL and verifier data: every decision as chosen, with its episode's success."""
    arrays = decisions.arrays()
    return EpisodeBatch(
        **_inputs(arrays, episodes, encode, image_shape),
        stages=torch.as_tensor(arrays["stages"]),
        subgoals=torch.as_tensor(arrays["subgoals"]),
        log_probs=torch.as_tensor(arrays["log_probs"]),
        episodes=torch.as_tensor(arrays["episode"]),
        decision_index=torch.as_tensor(arrays["index"]),
        unsafe=torch.as_tensor(arrays["unsafe"]),
        success=torch.as_tensor(outcomes.success.astype(np.float32)),
    )

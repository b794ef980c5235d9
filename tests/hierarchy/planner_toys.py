"""Toy problems for the planner's training stages: the colour of a flat image decides the right subgoal.

A tiny planner (8 x 8 images, 2 stages, 5 subgoals with the stop last) keeps every stage to a few seconds.
"""

from __future__ import annotations

import torch

from ogi.hierarchy.planner_data import ActFn, DecisionDataset, EpisodeBatch
from ogi.lm.config import ModelShape
from ogi.policies.planner import Planner, PlannerConfig, planner_tokenizer

TINY = PlannerConfig(
    image_height=8,
    image_width=8,
    conv_channels=(8,),
    vision_grid=(2, 2),
    num_stages=2,
    num_subgoals=5,
    model=ModelShape(context_length=24, n_layers=1, width=32, n_heads=2, prefix_dim=16),
)
INSTRUCTIONS = ("go to the thing of that colour", "walk to it", "find the colour and go there now")
COLOURS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.1, 0.3, 0.9], [0.9, 0.8, 0.1]])


def tiny_planner(*, vision: bool = True, seed: int = 0, config: PlannerConfig = TINY) -> Planner:
    tokenizer = planner_tokenizer(INSTRUCTIONS, num_action_tokens=config.num_action_tokens)
    torch.manual_seed(seed)
    return Planner(config if vision else PlannerConfig(**{**config.__dict__, "vision": False}), tokenizer)


def colour_images(colours: torch.Tensor, generator: torch.Generator, size: int = 8) -> torch.Tensor:
    """(n, size, size, 4): each image one colour plus noise, depth random."""
    count = colours.shape[0]
    rgb = COLOURS[colours][:, None, None, :] + 0.05 * torch.randn(count, size, size, 3, generator=generator)
    depth = torch.rand(count, size, size, 1, generator=generator)
    return torch.cat([rgb.clamp(0, 1), depth], dim=-1)


def colour_dataset(planner: Planner, count: int, seed: int, *, per_episode: int = 4) -> DecisionDataset:
    """Target subgoal = the image's colour (0..3); target stage = the stage said last time."""
    generator = torch.Generator().manual_seed(seed)
    colours = torch.randint(0, len(COLOURS), (count,), generator=generator)
    prev_stages = torch.randint(0, planner.config.num_stages, (count,), generator=generator)
    picks = torch.randint(0, len(INSTRUCTIONS), (count,), generator=generator).tolist()
    texts = tuple(INSTRUCTIONS[i] for i in picks)
    ids, lengths = planner.encode(texts)
    return DecisionDataset(
        images=colour_images(colours, generator),
        states=0.1 * torch.randn(count, planner.config.state_dim, generator=generator),
        prev_stages=prev_stages,
        prompt_ids=ids,
        prompt_lengths=lengths,
        stages=prev_stages.clone(),
        subgoals=colours,
        episodes=torch.arange(count) // per_episode,
        texts=texts,
    )


class ColourBandit:
    """One decision per episode; success when the subgoal is the image's colour; the stop is flagged unsafe."""

    def __init__(self, planner: Planner, seed: int):
        self.planner = planner
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, act_fn: ActFn, episodes: int) -> EpisodeBatch:
        colours = torch.randint(0, len(COLOURS), (episodes,), generator=self.generator)
        picks = torch.randint(0, len(INSTRUCTIONS), (episodes,), generator=self.generator).tolist()
        ids, lengths = self.planner.encode([INSTRUCTIONS[i] for i in picks])
        images = colour_images(colours, self.generator)
        states = torch.zeros(episodes, self.planner.config.state_dim)
        prev_stages = torch.zeros(episodes, dtype=torch.long)
        stages, subgoals, log_probs = act_fn(images, states, prev_stages, ids, lengths)
        return EpisodeBatch(
            images=images,
            states=states,
            prev_stages=prev_stages,
            prompt_ids=ids,
            prompt_lengths=lengths,
            stages=stages,
            subgoals=subgoals,
            log_probs=log_probs,
            episodes=torch.arange(episodes),
            decision_index=torch.zeros(episodes, dtype=torch.long),
            unsafe=subgoals == self.planner.config.stop_subgoal,
            success=(subgoals == colours).float(),
        )


def stub_parent(directory, stage: str = "sft"):
    """A minimal checkpoint standing in for a trained stage: the parent a tested stage's lineage points to."""
    from ogi.checkpoints import save_checkpoint

    return save_checkpoint(
        directory,
        step=1,
        iteration=1,
        weights={"w": torch.zeros(1)},
        state={},
        config={"stage": stage},
        reward_weights={},
        data_manifest={},
    )

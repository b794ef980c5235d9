"""Start a run's actor from a trained policy whose observations are a prefix of the new run's.

The common case is a teacher: its actor reads the policy group followed by the privileged group, so a walker
trained on the policy group alone gives it a gait from the first iteration. The first layer's weights for the
policy group are copied and those for the added inputs start at zero (the new actor acts exactly like the old
one until training uses them); every other tensor must match in shape. The normalizer keeps the source's
statistics for the shared inputs, starts the added ones at mean 0 and variance 1, and counts as one rollout's
worth of samples so that the new inputs' statistics settle within a few iterations.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ogi.checkpoints import Checkpoint
from ogi.training.policy_loading import load_policy
from ogi.validation import ConfigError


@torch.no_grad()
def warm_start(runner, source: Path) -> Checkpoint:
    """Load the actor and normalizer of `source` (a run or checkpoint directory) into `runner`; returns its checkpoint.

    The run's first checkpoint then names the source's as its parent, so `ogi verify` walks back into it.
    """
    actor, normalizer, cfg, checkpoint = load_policy(Path(source))
    if cfg.env.robot != runner.cfg.env.robot:
        raise ConfigError(
            f"--init-from {source}: trained for robot {cfg.env.robot!r}, this run is for {runner.cfg.env.robot!r}"
        )
    if type(actor) is not type(runner.actor):
        raise ConfigError(
            f"--init-from {source}: its actor is {cfg.actor.kind!r}, this run's is {runner.cfg.actor.kind!r}"
        )
    old_dim, new_dim = actor.obs_dim, runner.actor.obs_dim
    if old_dim > new_dim:
        raise ConfigError(f"--init-from {source}: it reads {old_dim} observations, more than this run's {new_dim}")
    target = runner.actor.state_dict()
    source_state = actor.state_dict()
    if set(source_state) != set(target):
        raise ConfigError(f"--init-from {source}: its actor's tensors differ from this run's (other sizes?)")
    for name, tensor in source_state.items():
        destination = target[name]
        if tensor.shape == destination.shape:
            destination.copy_(tensor)
        elif (
            tensor.dim() == 2
            and tensor.shape[0] == destination.shape[0]
            and tensor.shape[1] == old_dim
            and destination.shape[1] == new_dim
        ):
            destination.zero_()
            destination[:, :old_dim] = tensor  # the input layer: added observations start with no influence
        else:
            raise ConfigError(
                f"--init-from {source}: {name} is {tuple(tensor.shape)} there and {tuple(destination.shape)} here"
            )
    runner.actor.load_state_dict(target)
    target_norm = runner.actor_normalizer
    target_norm.mean.zero_()
    target_norm.var.fill_(1.0)
    target_norm.mean[:old_dim] = normalizer.mean
    target_norm.var[:old_dim] = normalizer.var
    rollout_samples = runner.cfg.env.num_envs * runner.cfg.ppo.rollout_steps
    target_norm.count.fill_(min(float(normalizer.count), float(rollout_samples)))
    runner.last_checkpoint = checkpoint
    return checkpoint

"""What takes part in a training rollout besides the walker: the base class of `Runner.hooks`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ogi.training.runner import Runner


class RolloutHook:
    """Something that takes part in every rollout step of `Runner.collect`: an adversary that pushes the robot, a
    learned reward that adds to the env's. Hooks run in the order of `Runner.hooks`; every method has a do-nothing
    default.

    A hook with a `name` also rides in the run's checkpoints: `checkpoint_state` gives tensors (stored under
    `<name>/`) and JSON data (under the manifest's `hooks.<name>`), and `load_checkpoint_state` takes them back
    when a run resumes, so a resumed run goes on with the hook where it was.
    """

    name: str = ""

    def before_rollout(self, runner: Runner) -> None:
        """Called at the start of every rollout, before the walker acts."""

    def before_step(self, runner: Runner) -> None:
        """Called with `runner.obs` the observation the walker acts on, just before `env.step`."""

    def after_step(
        self,
        runner: Runner,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        info: dict,
    ) -> np.ndarray:
        """Called right after `env.step` (before `runner.obs` moves on); returns the reward PPO learns from."""
        return reward

    def after_rollout(self, runner: Runner) -> dict[str, float]:
        """Called once the rollout is stored, before the update; its figures join the iteration's stats."""
        return {}

    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {}, {}

    def load_checkpoint_state(self, tensors: dict[str, torch.Tensor], data: dict) -> None:
        """Inverse of `checkpoint_state`."""

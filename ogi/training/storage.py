"""Rollout storage: T steps of n envs as (T, n, ...) tensors, plus the actor state at the rollout's start."""

from __future__ import annotations

import torch

from ogi.policies import State


class RolloutStorage:
    """Preallocated buffers the PPO update reads whole, sliced by env for recurrent minibatches."""

    def __init__(self, steps: int, num_envs: int, policy_dim: int, critic_dim: int, act_dim: int):
        self.steps = steps
        self.num_envs = num_envs
        shape = (steps, num_envs)
        self.policy_obs = torch.zeros(*shape, policy_dim)  # normalized, as the actor saw them
        self.critic_obs = torch.zeros(*shape, critic_dim)
        self.actions = torch.zeros(*shape, act_dim)
        self.means = torch.zeros(*shape, act_dim)
        self.log_probs = torch.zeros(shape)
        self.values = torch.zeros(shape)
        self.rewards = torch.zeros(shape)
        self.dones = torch.zeros(shape, dtype=torch.bool)
        # starts[t]: the env began a new episode at step t, so the actor state was reset before it
        self.starts = torch.zeros(shape, dtype=torch.bool)
        self.advantages = torch.zeros(shape)
        self.returns = torch.zeros(shape)
        self.state0: State = ()
        self.log_std_at_collection = torch.zeros(act_dim)
        self.reference_means = torch.zeros(*shape, act_dim)  # a frozen reference policy's means, when fine-tuning
        # the fall constraint's per-step costs and their critic, advantages and returns (PPO-Lagrangian)
        self.costs = torch.zeros(shape)
        self.cost_values = torch.zeros(shape)
        self.cost_advantages = torch.zeros(shape)
        self.cost_returns = torch.zeros(shape)

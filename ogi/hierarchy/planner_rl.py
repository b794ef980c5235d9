"""PPO over the planner's decisions with a KL penalty to the frozen SFT planner, on episodes a caller's
``rollout_fn`` plays; the GAE, advantage scaling and clipped surrogate are `ogi.lm.rlhf`'s, applied with one
(stage, subgoal) action per decision and the episodes as rows.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ogi.checkpoints import Checkpoint
from ogi.hierarchy.planner_data import EpisodeBatch, RolloutFn
from ogi.lm.config import OptimizerConfig
from ogi.lm.rlhf import ValueHead, clipped_surrogate_loss, gae_over_tokens, kl_penalty_rewards, normalize_advantages
from ogi.lm.schedule import make_optimizer, optimizer_step
from ogi.policies.planner import Planner, load_planner, save_planner
from ogi.validation import ConfigError, check_int, check_range


@dataclass(frozen=True, kw_only=True)
class PlannerRLConfig:
    seed: int = 0
    iterations: int = 50
    episodes_per_iteration: int = 64
    epochs: int = 4
    minibatch_size: int = 256
    clip_epsilon: float = 0.2
    gamma: float = 0.99
    gae_lambda: float = 0.95
    value_coef: float = 0.5
    success_reward: float = 1.0
    unsafe_penalty: float = 0.2
    kl_coef: float = 0.05
    """Weight of the per-decision KL penalty log pi(a|s) - log pi_ref(a|s) to the frozen SFT planner."""
    center_advantages: bool = True
    advantage_floor: float = 1e-3
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(learning_rate=3e-4, eta_min=3e-4, warmup_fraction=0.0, weight_decay=0.0)
    )

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("iterations", self.iterations, 1, 10_000_000)
        check_int("episodes_per_iteration", self.episodes_per_iteration, 1, 10_000_000)
        check_int("epochs", self.epochs, 1, 1000)
        check_int("minibatch_size", self.minibatch_size, 1, 10_000_000)
        check_range("clip_epsilon", self.clip_epsilon, 0.0, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("value_coef", self.value_coef, 0.0, 100.0)
        check_range("success_reward", self.success_reward, 0.0, 1000.0)
        check_range("unsafe_penalty", self.unsafe_penalty, 0.0, 1000.0)
        check_range("kl_coef", self.kl_coef, 0.0, 100.0)
        check_range("advantage_floor", self.advantage_floor, 0.0, 1e6)
        if not isinstance(self.center_advantages, bool):
            raise ConfigError(f"center_advantages = {self.center_advantages!r} must be true or false")


@dataclass(frozen=True, kw_only=True)
class PlannerRLResult:
    planner: Planner
    """The planner with the weights of the best checkpoint loaded."""
    history: list[dict[str, float]]
    """Per iteration (and a last entry for the final policy): success_rate, kl, unsafe_rate, reward, losses."""
    checkpoints: list[Checkpoint]
    best: Checkpoint
    best_success_rate: float


@torch.no_grad()
def _batch_log_probs(planner: Planner, batch: EpisodeBatch, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(a|s) ``(D,)`` of the batch's decisions and their hidden states ``(D, width)``, ``chunk`` rows a pass."""
    was_training = planner.training
    planner.eval()
    parts = [
        planner.log_prob(*batch.inputs(rows), batch.stages[rows], batch.subgoals[rows])
        for rows in (slice(first, first + chunk) for first in range(0, batch.stages.shape[0], chunk))
    ]
    planner.train(was_training)
    return torch.cat([log_probs for log_probs, _ in parts]), torch.cat([hidden for _, hidden in parts])


class DecisionPPO:
    """PPO on the planner's joint decision (stage, subgoal): one action per decision, episodes laid out as rows.

    r_t = -kl_coef (log pi(a_t|s_t) - log pi_ref(a_t|s_t)) - unsafe_penalty [a_t unsafe]
          + success_reward [success] [t = T - 1];
    an episode's end (stop, fall or time limit) is terminal: the elapsed share of the time limit is in the state.
    """

    def __init__(self, planner: Planner, reference: Planner, cfg: PlannerRLConfig):
        self.planner = planner
        self.reference = reference.eval().requires_grad_(False)
        self.cfg = cfg
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            self.value_head = ValueHead(planner.config.model.width)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self._trainable = nn.ModuleList([planner, self.value_head])
        self.optimizer = make_optimizer(self._trainable, cfg.optimizer)
        self._updates_done = 0

    def act(
        self,
        images: torch.Tensor,
        states: torch.Tensor,
        prev_stages: torch.Tensor,
        prompt_ids: torch.Tensor,
        prompt_lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sampling ``act_fn`` handed to the rollout."""
        tensors = (torch.as_tensor(x) for x in (images, states, prev_stages, prompt_ids, prompt_lengths))
        return self.planner.act(*tensors, generator=self.generator)

    @torch.no_grad()
    def compute_returns(self, batch: EpisodeBatch) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(advantages, returns) per decision ``(D,)`` by GAE along each episode, and the batch's figures."""
        cfg = self.cfg
        old = batch.log_probs.float()
        ref, _ = _batch_log_probs(self.reference, batch, cfg.minibatch_size)
        values = self.value_head(_batch_log_probs(self.planner, batch, cfg.minibatch_size)[1])
        old_grid, mask = batch.episode_grid(old)
        ref_grid, _ = batch.episode_grid(ref)
        unsafe_grid, _ = batch.episode_grid(batch.unsafe.float())
        value_grid, _ = batch.episode_grid(values)
        rewards = kl_penalty_rewards(old_grid, ref_grid, mask, cfg.kl_coef) - cfg.unsafe_penalty * unsafe_grid * mask
        lengths = mask.sum(1).long()
        episodes = torch.arange(batch.num_episodes)
        rewards[episodes, lengths - 1] += cfg.success_reward * batch.success.float()
        advantages = gae_over_tokens(rewards, value_grid * mask, mask, gamma=cfg.gamma, lam=cfg.gae_lambda)
        returns = advantages + value_grid * mask
        figures = {
            "success_rate": float(batch.success.float().mean()),
            "kl": float((old - ref).mean()),
            "unsafe_rate": float(batch.unsafe.float().mean()),
            "reward": float(rewards.sum() / batch.num_episodes),
            "decisions": float(batch.stages.shape[0]),
        }
        return batch.ungrid(advantages), batch.ungrid(returns), figures

    def update(self, batch: EpisodeBatch, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        """``epochs`` passes of clipped-surrogate + value-loss minibatch steps; the mean losses."""
        cfg = self.cfg
        count = batch.stages.shape[0]
        ones = torch.ones(count)
        normalized = normalize_advantages(advantages, ones, center=cfg.center_advantages, floor=cfg.advantage_floor)
        old = batch.log_probs.float()
        per_epoch = math.ceil(count / cfg.minibatch_size)
        total_updates = cfg.iterations * cfg.epochs * per_epoch
        policy_losses, value_losses = [], []
        self.planner.train()
        for _ in range(cfg.epochs):
            order = torch.randperm(count, generator=self.generator)
            for first in range(0, count, cfg.minibatch_size):
                pick = order[first : first + cfg.minibatch_size]
                log_probs, hidden = self.planner.log_prob(*batch.inputs(pick), batch.stages[pick], batch.subgoals[pick])
                policy_loss = clipped_surrogate_loss(
                    log_probs, old[pick], normalized[pick], ones[pick], cfg.clip_epsilon
                )
                value_loss = F.mse_loss(self.value_head(hidden), returns[pick])
                optimizer_step(
                    self._trainable,
                    self.optimizer,
                    policy_loss + cfg.value_coef * value_loss,
                    step=min(self._updates_done, total_updates - 1),
                    total_steps=total_updates,
                    config=cfg.optimizer,
                )
                self._updates_done += 1
                policy_losses.append(float(policy_loss.detach()))
                value_losses.append(float(value_loss.detach()))
        return {
            "policy_loss": sum(policy_losses) / len(policy_losses),
            "value_loss": sum(value_losses) / len(value_losses),
        }


IterationLog = Callable[[int, int, dict[str, float]], None]
"""log(iteration, iterations, figures) after each iteration."""


def rl_planner(
    planner: Planner,
    reference: Planner | None,
    rollout_fn: RolloutFn,
    cfg: PlannerRLConfig,
    out_dir: Path,
    parent: Checkpoint | None,
    *,
    log: IterationLog | None = None,
) -> PlannerRLResult:
    """PPO on ``planner`` in place with a KL penalty to ``reference`` (the frozen SFT planner; a copy of
    ``planner`` when None). Each iteration plays ``episodes_per_iteration`` episodes and saves a stage "rl"
    checkpoint of the policy that played them (its success rate, KL and unsafe rate as eval scores), each the child
    of the one before and the first the child of ``parent``; after the last update the final policy plays once more
    and is saved too. The best checkpoint by success rate (the earliest among ties) is loaded back into ``planner``.
    """
    reference = copy.deepcopy(planner) if reference is None else reference
    ppo = DecisionPPO(planner, reference, cfg)
    history: list[dict[str, float]] = []
    checkpoints: list[Checkpoint] = []
    decisions_trained = 0
    previous = parent
    for iteration in range(cfg.iterations + 1):
        batch = rollout_fn(ppo.act, cfg.episodes_per_iteration)
        advantages, returns, figures = ppo.compute_returns(batch)
        previous = save_planner(
            out_dir,
            planner,
            stage="rl",
            stage_config=dataclasses.asdict(cfg),
            step=decisions_trained,
            iteration=iteration,
            data_manifest={"episodes": batch.num_episodes, "decisions": batch.stages.shape[0]},
            eval_scores={name: figures[name] for name in ("success_rate", "kl", "unsafe_rate", "reward")},
            parent=previous,
            heads={f"value.{name}": tensor for name, tensor in ppo.value_head.state_dict().items()},
            reward_weights={
                "success": cfg.success_reward,
                "unsafe": -cfg.unsafe_penalty,
                "kl": -cfg.kl_coef,
            },
        )
        checkpoints.append(previous)
        if iteration < cfg.iterations:
            figures.update(ppo.update(batch, advantages, returns))
            decisions_trained += batch.stages.shape[0]
        history.append(figures)
        if log is not None:
            log(iteration + 1, cfg.iterations + 1, figures)
    best_index = max(range(len(history)), key=lambda i: (history[i]["success_rate"], -i))
    best = checkpoints[best_index]
    planner.load_state_dict(load_planner(best.path).planner.state_dict())
    return PlannerRLResult(
        planner=planner,
        history=history,
        checkpoints=checkpoints,
        best=best,
        best_success_rate=history[best_index]["success_rate"],
    )

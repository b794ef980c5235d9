"""PPO-RLHF: max_pi E[score(x, y)] - beta KL(pi || pi_ref), with a value head and GAE over response tokens.

Each response token t is an action. Its reward is the per-token KL penalty r_t = -beta (log pi(y_t) - log pi_ref(y_t)),
and the response's last token also receives the sequence score
    score = w_rm R(x, y) + w_fn f(x, y) - c [y violates a safety rule],
with R the reward model, f a programmatic reward the caller passes (e.g. a simulator outcome) and the rule-based
safety penalty c for disallowed words. The policy is updated with the clipped surrogate on GAE advantages.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from ogi.checkpoints import Checkpoint, json_sha256
from ogi.lm.config import RLHFConfig, to_dict
from ogi.lm.corpus import split_demonstrations
from ogi.lm.data import pad_right, prompt_ids
from ogi.lm.model import CausalTransformer, generate, sequence_log_probs
from ogi.lm.reward_model import RewardModel, score_responses
from ogi.lm.schedule import make_optimizer, optimizer_step
from ogi.lm.store import save_language_model
from ogi.lm.tokenizer import Tokenizer
from ogi.validation import ConfigError

RewardFunction = Callable[[str, str], float]
"""f(prompt, response) -> reward, e.g. how well the plan did in simulation."""
SafetyRule = Callable[[str], bool]
"""rule(response) -> True when the response must be penalized."""
IterationLog = Callable[[int, int, dict[str, float]], None]


class ValueHead(nn.Module):
    """V(s_t) from the policy's hidden state; fed detached hidden states so the value loss cannot pull the language
    model away from the reference (a drift the KL penalty would then charge for)."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden.detach()).squeeze(-1)


def kl_penalty_rewards(
    log_probs: torch.Tensor, ref_log_probs: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """r_t = -beta (log pi(y_t | .) - log pi_ref(y_t | .)) on response tokens, 0 elsewhere; shapes ``(B, T)``."""
    return -beta * (log_probs - ref_log_probs) * mask


def safety_violations(
    responses: Sequence[str], disallowed_words: Sequence[str], rule: SafetyRule | None = None
) -> torch.Tensor:
    """1.0 where a response contains a disallowed word (whole token) or breaks the caller's rule, else 0.0."""
    banned = set(disallowed_words)
    return torch.tensor(
        [float(bool(banned.intersection(text.split())) or (rule is not None and rule(text))) for text in responses]
    )


def gae_over_tokens(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, *, gamma: float, lam: float
) -> torch.Tensor:
    """GAE along each row's masked (contiguous) response tokens, ``(B, T)``; V after the last token is 0.

    delta_t = r_t + gamma V(s_{t+1}) - V(s_t);  A_t = sum_l (gamma lambda)^l delta_{t+l}.
    """
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(rewards.shape[0])
    next_advantage = torch.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * mask[:, t]
        next_value = torch.where(mask[:, t] > 0, values[:, t], torch.zeros_like(next_value))
        next_advantage = advantages[:, t]
    return advantages


def normalize_advantages(
    advantages: torch.Tensor, mask: torch.Tensor, *, center: bool, floor: float = 1e-3
) -> torch.Tensor:
    """Advantages over masked tokens divided by max(RMS, ``floor``), minus their mean first when ``center``; 0 off
    the mask.

    Without centering a token whose advantage is 0 (e.g. every sample of its prompt scored alike) stays 0, so it adds
    no gradient; the batch mean would turn it into a push up or down set by the other responses. The floor keeps a
    batch without signal from being blown up to unit scale: leave-one-out scores of equal samples differ from 0 by
    float rounding (1e-8), which a bare division by the RMS turns into full-size updates.
    """
    valid = mask > 0
    mean = advantages[valid].mean() if center else advantages.new_zeros(())
    scale = (advantages[valid] - mean).pow(2).mean().sqrt().clamp_min(floor)
    return (advantages - mean) / scale * mask


def clipped_surrogate_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """-E_t[min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)], r_t = pi(a_t) / pi_old(a_t), over masked tokens."""
    ratio = torch.exp(log_probs - old_log_probs)
    surrogate = torch.minimum(ratio * advantages, ratio.clamp(1 - epsilon, 1 + epsilon) * advantages)
    return -(surrogate * mask).sum() / mask.sum()


@dataclass(frozen=True, kw_only=True)
class Rollout:
    """Sampled responses laid out for training: ``tokens (B, T)``; the other tensors are ``(B, T-1)`` and index
    the prediction of token t+1."""

    prompts: list[str]
    responses: list[str]
    tokens: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor
    ref_log_probs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor
    violations: torch.Tensor
    reward_model_scores: torch.Tensor
    programmatic_scores: torch.Tensor

    @property
    def kl_per_response(self) -> torch.Tensor:
        """Sampled estimate of KL(pi || pi_ref) per response: sum_t log pi(y_t) - log pi_ref(y_t)."""
        return ((self.log_probs - self.ref_log_probs) * self.mask).sum(dim=1)


class RLHFTrainer:
    """PPO on a language model with a KL penalty to a frozen copy of its starting point (the SFT model)."""

    def __init__(
        self,
        policy: CausalTransformer,
        tokenizer: Tokenizer,
        config: RLHFConfig,
        *,
        reward_model: RewardModel | None = None,
        reward_function: RewardFunction | None = None,
        safety_rule: SafetyRule | None = None,
    ):
        if reward_model is None and reward_function is None:
            raise ConfigError("RLHF needs a reward: pass a reward model, a reward function, or both")
        if reward_model is None:
            config = replace(config, reward_model_weight=0.0)  # recorded in the checkpoint as the weight used
        self.policy = policy
        self.reference = copy.deepcopy(policy).eval().requires_grad_(False)
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.value_head = ValueHead(policy.config.width)
        self.tokenizer = tokenizer
        self.config = config
        self.reward_model = None if reward_model is None else reward_model.eval().requires_grad_(False)
        self.reward_function = reward_function
        self.safety_rule = safety_rule
        self.beta = config.beta
        self.generator = torch.Generator().manual_seed(config.seed)
        self._trainable = nn.ModuleList([policy, self.value_head])
        self.optimizer = make_optimizer(self._trainable, config.optimizer)
        self._updates_done = 0

    def sequence_scores(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(score, R(x, y), f(x, y), violation) per response, each ``(B,)``."""
        count = len(prompts)
        reward_model_scores = (
            score_responses(self.reward_model, self.tokenizer, prompts, responses)
            if self.reward_model is not None
            else torch.zeros(count)
        )
        programmatic = (
            torch.tensor([float(self.reward_function(p, r)) for p, r in zip(prompts, responses)])
            if self.reward_function is not None
            else torch.zeros(count)
        )
        violations = safety_violations(responses, self.config.disallowed_words, self.safety_rule)
        score = (
            self.config.reward_model_weight * reward_model_scores
            + self.config.programmatic_weight * programmatic
            - self.config.safety_penalty * violations
        )
        return score, reward_model_scores, programmatic, violations

    @torch.no_grad()
    def act(self, prompts: Sequence[str]) -> Rollout:
        """Sample ``samples_per_prompt`` responses per prompt and score them."""
        config = self.config
        rows, starts, batch_prompts, responses = [], [], [], []
        self.policy.eval()
        for prompt in prompts:
            head = prompt_ids(self.tokenizer, prompt)
            room = self.policy.config.context_length - len(head)
            if room < 2:
                raise ConfigError(
                    f"prompt {prompt!r} ({len(head)} tokens) leaves no room for a response in "
                    f"context_length = {self.policy.config.context_length}"
                )
            new = generate(
                self.policy,
                torch.tensor([head] * config.samples_per_prompt),
                max_new_tokens=min(config.max_new_tokens, room),
                eos_id=self.tokenizer.eos_id,
                temperature=config.temperature,
                top_k=config.top_k,
                generator=self.generator,
            )
            for sample in new.tolist():
                response = (
                    sample[: sample.index(self.tokenizer.eos_id) + 1] if self.tokenizer.eos_id in sample else sample
                )
                rows.append(head + response)
                starts.append(len(head))
                batch_prompts.append(prompt)
                responses.append(self.tokenizer.decode(response))
        self.policy.train()
        tokens = pad_right(rows, self.tokenizer.pad_id)
        mask = torch.zeros(tokens.shape[0], tokens.shape[1] - 1)
        for row, (ids, start) in enumerate(zip(rows, starts)):
            mask[row, start - 1 : len(ids) - 1] = 1.0
        log_probs, hidden = sequence_log_probs(self.policy, tokens)
        ref_log_probs, _ = sequence_log_probs(self.reference, tokens)
        values = self.value_head(hidden[:, :-1])
        score, reward_model_scores, programmatic, violations = self.sequence_scores(batch_prompts, responses)
        return Rollout(
            prompts=batch_prompts,
            responses=responses,
            tokens=tokens,
            mask=mask,
            log_probs=log_probs,
            ref_log_probs=ref_log_probs,
            values=values * mask,
            scores=score,
            violations=violations,
            reward_model_scores=reward_model_scores,
            programmatic_scores=programmatic,
        )

    def centered_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """With the leave-one-out baseline: s_i - (sum_j s_j - s_i) / (k - 1) over the k samples of s_i's prompt
        (exactly 0 where all k scored alike)."""
        k = self.config.samples_per_prompt
        if not self.config.leave_one_out_baseline or k < 2:
            return scores
        grouped = scores.view(-1, k).double()
        centered = grouped - (grouped.sum(dim=1, keepdim=True) - grouped) / (k - 1)
        # Samples that all scored alike carry no signal: exactly 0, not float rounding that Adam would make a step of.
        spread = grouped.amax(dim=1, keepdim=True) - grouped.amin(dim=1, keepdim=True)
        alike = spread <= 1e-6 * (1 + grouped.abs().amax(dim=1, keepdim=True))  # float32 scores of one text
        return centered.masked_fill(alike, 0.0).to(scores.dtype).flatten()

    def compute_returns(self, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token rewards (KL penalty, plus the score on each response's last token) -> (advantages, returns)."""
        rewards = kl_penalty_rewards(rollout.log_probs, rollout.ref_log_probs, rollout.mask, self.beta)
        last = rollout.mask.shape[1] - 1 - rollout.mask.flip(1).argmax(dim=1)
        rewards[torch.arange(rewards.shape[0]), last] += self.centered_scores(rollout.scores)
        advantages = gae_over_tokens(
            rewards, rollout.values, rollout.mask, gamma=self.config.gamma, lam=self.config.gae_lambda
        )
        return advantages, advantages + rollout.values

    def update(self, rollout: Rollout, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        """``epochs`` passes of clipped-surrogate + value-loss minibatch steps; returns the mean losses."""
        config = self.config
        normalized = normalize_advantages(
            advantages, rollout.mask, center=config.center_advantages, floor=config.advantage_floor
        )
        count = rollout.tokens.shape[0]
        per_epoch = math.ceil(count / config.minibatch_size)
        total_updates = config.iterations * config.epochs * per_epoch
        policy_losses, value_losses = [], []
        for _ in range(config.epochs):
            order = torch.randperm(count, generator=self.generator)
            for first in range(0, count, config.minibatch_size):
                pick = order[first : first + config.minibatch_size]
                mask = rollout.mask[pick]
                log_probs, hidden = sequence_log_probs(self.policy, rollout.tokens[pick])
                values = self.value_head(hidden[:, :-1])
                policy_loss = clipped_surrogate_loss(
                    log_probs, rollout.log_probs[pick], normalized[pick], mask, config.clip_epsilon
                )
                value_loss = (((values - returns[pick]) ** 2) * mask).sum() / mask.sum()
                loss = policy_loss + config.value_coef * value_loss
                optimizer_step(
                    self._trainable,
                    self.optimizer,
                    loss,
                    step=min(self._updates_done, total_updates - 1),
                    total_steps=total_updates,
                    config=config.optimizer,
                )
                self._updates_done += 1
                policy_losses.append(float(policy_loss.detach()))
                value_losses.append(float(value_loss.detach()))
        return {
            "policy_loss": sum(policy_losses) / len(policy_losses),
            "value_loss": sum(value_losses) / len(value_losses),
        }

    def adapt_beta(self, kl: float) -> None:
        """beta <- beta (1 + K clip(KL / KL_target - 1, -0.2, 0.2)), only when a target KL is set."""
        if self.config.target_kl > 0:
            error = max(-0.2, min(0.2, kl / self.config.target_kl - 1.0))
            self.beta *= 1.0 + self.config.beta_gain * error

    def iteration(self, prompts: Sequence[str]) -> dict[str, float]:
        rollout = self.act(prompts)
        advantages, returns = self.compute_returns(rollout)
        losses = self.update(rollout, advantages, returns)
        kl = float(rollout.kl_per_response.mean())
        log = {
            "reward": float(rollout.scores.mean()),
            "reward_model": float(rollout.reward_model_scores.mean()),
            "programmatic": float(rollout.programmatic_scores.mean()),
            "kl": kl,
            "penalty_rate": float(rollout.violations.mean()),
            "beta": self.beta,
            "response_tokens": float(rollout.mask.sum()),
            **losses,
        }
        self.adapt_beta(kl)
        return log

    @torch.no_grad()
    def evaluate(self, prompts: Sequence[str]) -> dict[str, float]:
        """Mean score, KL to the reference and penalty rate of fresh samples for ``prompts`` (a fixed seed, so
        before/after comparisons draw comparable samples)."""
        saved = self.generator.get_state()
        self.generator.manual_seed(self.config.seed + 1_000_000_007)
        rollout = self.act(prompts)
        self.generator.set_state(saved)
        return {
            "reward": float(rollout.scores.mean()),
            "kl": float(rollout.kl_per_response.mean()),
            "penalty_rate": float(rollout.violations.mean()),
            "programmatic": float(rollout.programmatic_scores.mean()),
        }


@dataclass(frozen=True, kw_only=True)
class RLHFResult:
    policy: CausalTransformer
    history: list[dict[str, float]]
    before: dict[str, float]
    after: dict[str, float]
    checkpoint: Checkpoint | None

    @property
    def reward_gain(self) -> float:
        return self.after["reward"] - self.before["reward"]


def train_rlhf(
    policy: CausalTransformer,
    tokenizer: Tokenizer,
    config: RLHFConfig,
    *,
    reward_model: RewardModel | None = None,
    reward_function: RewardFunction | None = None,
    safety_rule: SafetyRule | None = None,
    prompts: Sequence[str] | None = None,
    eval_prompts: Sequence[str] | None = None,
    run_dir: Path | None = None,
    parent: Checkpoint | None = None,
    log: IterationLog | None = None,
) -> RLHFResult:
    """Run ``config.iterations`` PPO iterations on ``policy`` in place; prompts are generated unless given.

    ``log(iteration, iterations, metrics)`` receives reward, KL, penalty rate and beta after each iteration.
    """
    if prompts is None or eval_prompts is None:
        train_demos, eval_demos = split_demonstrations(config.train_prompts, config.eval_prompts, config.seed + 31)
        prompts = [demo.prompt for demo in train_demos] if prompts is None else prompts
        eval_prompts = [demo.prompt for demo in eval_demos] if eval_prompts is None else eval_prompts
    if not prompts:
        raise ConfigError("no RLHF prompts: give prompts or set train_prompts > 0")
    if not eval_prompts:
        raise ConfigError("no RLHF evaluation prompts given")
    trainer = RLHFTrainer(
        policy, tokenizer, config, reward_model=reward_model, reward_function=reward_function, safety_rule=safety_rule
    )
    before = trainer.evaluate(eval_prompts)
    order = torch.Generator().manual_seed(config.seed + 3)
    history = []
    for index in range(config.iterations):
        picks = torch.randint(0, len(prompts), (config.prompts_per_iteration,), generator=order).tolist()
        metrics = trainer.iteration([prompts[i] for i in picks])
        history.append(metrics)
        if log is not None:
            log(index + 1, config.iterations, metrics)
    after = trainer.evaluate(eval_prompts)
    result = RLHFResult(policy=policy, history=history, before=before, after=after, checkpoint=None)
    if run_dir is None:
        return result
    checkpoint = save_language_model(
        run_dir,
        stage="rlhf",
        model=policy,
        tokenizer=tokenizer,
        stage_config=to_dict(config),
        step=config.iterations,
        iteration=config.iterations,
        parent=parent,
        heads={f"value.{name}": tensor for name, tensor in trainer.value_head.state_dict().items()},
        reward_weights={
            "reward_model": trainer.config.reward_model_weight,
            "programmatic": trainer.config.programmatic_weight,
            "safety": -config.safety_penalty,
            "kl_beta": trainer.beta,
        },
        data_manifest={
            "prompts": len(prompts),
            "eval_prompts": len(eval_prompts),
            "prompts_sha256": json_sha256(list(prompts)),
        },
        eval_scores={
            "reward_before": before["reward"],
            "reward_after": after["reward"],
            "kl": after["kl"],
            "penalty_rate": after["penalty_rate"],
        },
    )
    return replace(result, checkpoint=checkpoint)

"""Proximal policy optimization with GAE, recurrent actors trained by truncated BPTT, and an asymmetric critic.

The algorithm takes its collaborators as arguments and splits its work into `act`, `process_step`,
`compute_returns` and `update`; it never touches the environment.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ogi.policies import Actor, Critic, EmpiricalNormalizer, State, gaussian_entropy, gaussian_kl, gaussian_log_prob
from ogi.training.lagrangian import CostLagrangian, clipped_cost_surrogate, combine_policy_losses
from ogi.training.storage import RolloutStorage
from ogi.validation import ConfigError, check_range


@dataclass(frozen=True, kw_only=True)
class PPOConfig:
    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2  # eps of the clipped surrogate and of the clipped value loss
    value_coef: float = 1.0
    entropy_coef: float = 0.01
    learning_rate: float = 1e-3
    adaptive_lr: bool = True  # scale the learning rate to keep the policy KL near desired_kl
    desired_kl: float = 0.01
    min_learning_rate: float = 1e-5
    max_learning_rate: float = 1e-2
    max_grad_norm: float = 1.0
    epochs: int = 5
    minibatches: int = 4
    rollout_steps: int = 24
    # fine-tuning: max J - beta KL(pi || pi_ref) against a frozen reference policy (PPO.reference); 0: none
    reference_kl_coef: float = 0.0
    # left-right symmetry: + c E[|pi(mirror(s)) - mirror(pi(s))|^2] on the action means (PPO.mirrors); 0: none
    symmetry_coef: float = 0.0

    def __post_init__(self) -> None:
        check_range("ppo.gamma", self.gamma, 0.0, 1.0)
        check_range("ppo.lam", self.lam, 0.0, 1.0)
        check_range("ppo.clip", self.clip, 1e-3, 1.0)
        check_range("ppo.value_coef", self.value_coef, 0.0, 100.0)
        check_range("ppo.entropy_coef", self.entropy_coef, 0.0, 1.0)
        check_range("ppo.learning_rate", self.learning_rate, 1e-7, 1.0)
        check_range("ppo.desired_kl", self.desired_kl, 1e-5, 1.0)
        check_range("ppo.min_learning_rate", self.min_learning_rate, 1e-8, self.learning_rate)
        check_range("ppo.max_learning_rate", self.max_learning_rate, self.learning_rate, 1.0)
        check_range("ppo.max_grad_norm", self.max_grad_norm, 1e-3, 1e3)
        check_range("ppo.epochs", self.epochs, 1, 100)
        check_range("ppo.minibatches", self.minibatches, 1, 4096)
        check_range("ppo.rollout_steps", self.rollout_steps, 1, 10_000)
        check_range("ppo.reference_kl_coef", self.reference_kl_coef, 0.0, 1e3)
        check_range("ppo.symmetry_coef", self.symmetry_coef, 0.0, 1e3)
        for name in ("epochs", "minibatches", "rollout_steps"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"ppo.{name} = {getattr(self, name)!r} must be an integer")


SYMMETRY_WARMUP_STEPS = 4  # policy steps for a recurrent state to forget that it saw the unmirrored past


def symmetry_loss(mean_mirrored: torch.Tensor, target: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """E[|pi(mirror(s)) - mirror(pi(s))|^2] over sequences (T, n, a), `target` = mirror(pi(s)) held fixed.

    The mirrored sequence starts from the unmirrored recurrent state, which a reflection does not map, so its
    first `SYMMETRY_WARMUP_STEPS` steps count only where an episode began within them (`starts` (T, n)).
    """
    steps = torch.arange(starts.shape[0]).unsqueeze(1)
    began = torch.cummax(starts.long(), dim=0).values.bool()
    counted = ((steps >= SYMMETRY_WARMUP_STEPS) | began).unsqueeze(-1).to(target.dtype)
    squared = (mean_mirrored - target).square() * counted
    return squared.sum() / (counted.sum() * target.shape[-1]).clamp(min=1.0)


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns, (T, n) each, by generalized advantage estimation.

    dones[t] marks that the episode ended at step t (terminated or truncated); a time-out's bootstrap value
    is already in its reward. last_values (n,) is V of the state after the last step.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    gae = torch.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(steps)):
        not_done = 1.0 - dones[t].float()
        # delta_t = r_t + gamma V(s_{t+1}) - V(s_t)
        delta = rewards[t] + gamma * next_values * not_done - values[t]
        # A_t = delta_t + gamma lambda A_{t+1}
        gae = delta + gamma * lam * not_done * gae
        advantages[t] = gae
        next_values = values[t]
    return advantages, advantages + values


def clipped_surrogate_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip: float
) -> torch.Tensor:
    """-E[min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)] with r_t = pi(a|s) / pi_old(a|s)."""
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -torch.min(unclipped, clipped).mean()


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float
) -> torch.Tensor:
    """E[max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)]."""
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return torch.max((values - returns).square(), (clipped - returns).square()).mean()


def adapt_learning_rate(lr: float, kl: float, cfg: PPOConfig) -> float:
    """Shrink the step when the update moved the policy too far (KL > 2 target), grow it when too little."""
    if kl > 2.0 * cfg.desired_kl:
        lr = lr / 1.5
    elif kl < 0.5 * cfg.desired_kl:
        lr = lr * 1.5
    return min(max(lr, cfg.min_learning_rate), cfg.max_learning_rate)


class FrozenPolicy:
    """A fixed actor with its own fixed normalizer, stepped beside the learner: the anchor of `reference_kl_coef`.

    It reads the same raw observations as the learner and keeps its own recurrent state, so its action means are
    exact for the states the learner visits.
    """

    def __init__(self, actor: Actor, normalizer: EmpiricalNormalizer, num_envs: int):
        self.actor, self.normalizer = copy.deepcopy(actor).eval(), copy.deepcopy(normalizer)
        for p in self.actor.parameters():
            p.requires_grad_(False)
        self.state: State = self.actor.initial_state(num_envs)

    @torch.no_grad()
    def mean(self, raw_obs: torch.Tensor) -> torch.Tensor:
        mean, self.state = self.actor(self.normalizer(raw_obs), self.state)
        return mean

    def reset(self, done: torch.Tensor) -> None:
        self.state = self.actor.reset_state(self.state, done)

    @property
    def log_std(self) -> torch.Tensor:
        return self.actor.log_std


class PPO:
    """PPO over a rollout of T steps of n envs; the actor may be recurrent, the critic reads privileged obs."""

    def __init__(
        self,
        actor: Actor,
        critic: Critic,
        actor_normalizer: EmpiricalNormalizer,
        critic_normalizer: EmpiricalNormalizer,
        num_envs: int,
        cfg: PPOConfig,
        reference: FrozenPolicy | None = None,
        lagrangian: CostLagrangian | None = None,
        mirrors=None,
        active_actions: torch.Tensor | None = None,
    ):
        """lagrangian: the fall constraint's cost critic and multiplier (PPO-Lagrangian), or None.
        mirrors: (observation mirror, action mirror) for `symmetry_coef` (ogi.envs.symmetry), or None.
        active_actions: (a,) bool, the action dims the env acts on (None: all). The others (held joints) are not
        explored and are left out of the likelihood, entropy and KL: their noise would reach no reward, and the
        entropy bonus alone would widen them without bound."""
        if active_actions is not None:
            active_actions = torch.as_tensor(active_actions, dtype=torch.bool)
            if active_actions.shape != (actor.act_dim,) or not bool(active_actions.any()):
                raise ValueError(
                    f"active_actions must be a ({actor.act_dim},) mask with at least one action on, "
                    f"got shape {tuple(active_actions.shape)}"
                )
            active_actions = None if bool(active_actions.all()) else active_actions
        self.active = active_actions
        if cfg.symmetry_coef > 0 and mirrors is None:
            raise ValueError("ppo.symmetry_coef > 0 needs the observation and action mirrors of the robot")
        self.mirrors = mirrors
        self.lagrangian = lagrangian
        if cfg.reference_kl_coef > 0 and reference is None:
            raise ValueError("ppo.reference_kl_coef > 0 needs a reference policy to stay close to")
        self.reference = reference
        self.actor, self.critic = actor, critic
        self.actor_normalizer, self.critic_normalizer = actor_normalizer, critic_normalizer
        self.cfg = cfg
        self.num_envs = num_envs
        self.learning_rate = cfg.learning_rate
        self.collective = None  # set by a data-parallel replica (ogi.training.distributed)
        self.optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=cfg.learning_rate)
        if lagrangian is not None:
            self.optimizer.add_param_group({"params": list(lagrangian.cost_critic.parameters())})
        self.storage = RolloutStorage(
            cfg.rollout_steps, num_envs, actor.obs_dim, critic_normalizer.mean.shape[0], actor.act_dim
        )
        self.state: State = actor.initial_state(num_envs)
        self._step = 0

    # ---- collection --------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, policy_obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """Sample actions (n, a) for raw observations, recording what the update needs."""
        if self._step == 0:
            self.storage.state0 = tuple(s.clone() for s in self.state)
        self.actor_normalizer.update(policy_obs)
        self.critic_normalizer.update(critic_obs)
        obs = self.actor_normalizer(policy_obs)
        cobs = self.critic_normalizer(critic_obs)
        mean, self.state = self.actor(obs, self.state)
        std = self.actor.log_std.exp()
        noise = std * torch.randn_like(mean)
        action = mean + (noise if self.active is None else noise * self.active)
        t = self._step
        st = self.storage
        st.policy_obs[t] = obs
        st.critic_obs[t] = cobs
        st.actions[t] = action
        st.means[t] = mean
        st.log_probs[t] = gaussian_log_prob(*self._on(mean, self.actor.log_std, action))
        st.values[t] = self.critic(cobs)
        if self.reference is not None:
            st.reference_means[t] = self.reference.mean(policy_obs)
        if self.lagrangian is not None:
            st.cost_values[t] = self.lagrangian.cost_critic(cobs)
        return action

    @torch.no_grad()
    def process_step(
        self,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        final_critic_obs: torch.Tensor | None = None,
        costs: torch.Tensor | None = None,
    ) -> None:
        """Record one step's outcome; time-outs are bootstrapped with V of their final observation.

        costs (n,): the fall constraint's per-step cost (1 on a fall), needed when a lagrangian is set.
        """
        t = self._step
        st = self.storage
        rewards = rewards.clone()
        if final_critic_obs is not None and truncated.any():
            final_values = self.critic(self.critic_normalizer(final_critic_obs[truncated]))
            rewards[truncated] += self.cfg.gamma * final_values
        if self.lagrangian is not None:
            if costs is None:
                raise ValueError("process_step needs costs when PPO runs with a fall constraint")
            costs = costs.clone().float()
            if final_critic_obs is not None and truncated.any():
                final_costs = self.lagrangian.cost_critic(self.critic_normalizer(final_critic_obs[truncated]))
                costs[truncated] += self.lagrangian.cfg.cost_gamma * final_costs
            st.costs[t] = costs
        done = terminated | truncated
        st.rewards[t] = rewards
        st.dones[t] = done
        if t + 1 < st.steps:
            st.starts[t + 1] = done
        self.state = self.actor.reset_state(self.state, done)
        if self.reference is not None:
            self.reference.reset(done)
        self._step += 1

    @torch.no_grad()
    def compute_returns(self, last_critic_obs: torch.Tensor) -> None:
        last_values = self.critic(self.critic_normalizer(last_critic_obs))
        st = self.storage
        st.advantages, st.returns = compute_gae(
            st.rewards, st.values, st.dones, last_values, self.cfg.gamma, self.cfg.lam
        )
        if self.lagrangian is not None:
            safety = self.lagrangian.cfg
            last_costs = self.lagrangian.cost_critic(self.critic_normalizer(last_critic_obs))
            st.cost_advantages, st.cost_returns = compute_gae(
                st.costs, st.cost_values, st.dones, last_costs, safety.cost_gamma, safety.cost_lam
            )

    # ---- update ------------------------------------------------------------------------------
    def update(self) -> dict[str, float]:
        """Epochs of minibatch updates over envs (whole sequences, for BPTT); returns mean losses and stats."""
        cfg = self.cfg
        n = self.num_envs
        minibatches = min(cfg.minibatches, n)
        sums = {
            "loss/surrogate": 0.0,
            "loss/value": 0.0,
            "loss/entropy": 0.0,
            "policy/kl": 0.0,
            "policy/kl_reference": 0.0,
            "loss/symmetry": 0.0,
        }
        if self.lagrangian is not None:
            sums.update({"loss/cost_surrogate": 0.0, "loss/cost_value": 0.0})
        count = 0
        last_epoch_kl = 0.0
        for _ in range(cfg.epochs):
            last_epoch_kl = 0.0
            for env_ids in torch.randperm(n).chunk(minibatches):
                stats = self._update_minibatch(env_ids)
                for key in sums:
                    sums[key] += stats[key]
                last_epoch_kl += stats["policy/kl"] / minibatches
                count += 1
        # once per iteration, from how far the last epoch had moved the policy: adapting per minibatch
        # compounds (Adam moves every weight by ~lr, so KL stays high while the rate is cut 1.5x per
        # minibatch) and collapsed the rate to its floor within one iteration
        if self.collective is not None:  # one learning rate for every replica, from the KL over the global batch
            last_epoch_kl = self.collective.mean_scalar(last_epoch_kl)
        if cfg.adaptive_lr:
            self.learning_rate = adapt_learning_rate(self.learning_rate, last_epoch_kl, cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate
        self._step = 0
        out = {key: value / count for key, value in sums.items()}
        out["policy/kl_last_epoch"] = last_epoch_kl
        out["policy/learning_rate"] = self.learning_rate
        out["policy/std"] = float(self._on(self.actor.log_std.detach())[0].exp().mean())
        if self.lagrangian is not None:
            out["safety/lambda"] = self.lagrangian.multiplier
        return out

    def _update_minibatch(self, env_ids: torch.Tensor) -> dict[str, float]:
        cfg, st = self.cfg, self.storage
        state0 = tuple(s[env_ids] for s in st.state0)
        obs = st.policy_obs[:, env_ids]
        starts = st.starts[:, env_ids]
        mean_mirrored = None
        if cfg.symmetry_coef > 0:
            # the mirrored sequences ride along as more envs of the same pass: a recurrent pass costs per time
            # step far more than per env, so this is much cheaper than a second pass
            both = self.actor.forward_sequence(
                torch.cat([obs, self._mirror_obs(obs)], dim=1),
                tuple(torch.cat([s, s]) for s in state0),
                torch.cat([starts, starts], dim=1),
            )
            mean, mean_mirrored = both.chunk(2, dim=1)
        else:
            mean = self.actor.forward_sequence(obs, state0, starts)
        log_std = self.actor.log_std
        actions = st.actions[:, env_ids]
        log_prob = gaussian_log_prob(*self._on(mean, log_std, actions))
        advantages = st.advantages[:, env_ids]
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        with torch.no_grad():
            # KL(pi_old || pi) between the collecting policy and the current one
            kl = gaussian_kl(
                *self._on(st.means[:, env_ids], st.log_std_at_collection, mean.detach(), log_std.detach())
            ).mean()
        surrogate = clipped_surrogate_loss(log_prob, st.log_probs[:, env_ids], advantages, cfg.clip)
        values = self.critic(st.critic_obs[:, env_ids])
        value_loss = clipped_value_loss(values, st.values[:, env_ids], st.returns[:, env_ids], cfg.clip)
        entropy = gaussian_entropy(*self._on(log_std), mean.shape[:-1]).mean()
        # L = L_clip + c_v L_value - c_e H
        loss = surrogate + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
        extra: dict[str, float] = {}
        if self.lagrangian is not None:
            cost_advantages = st.cost_advantages[:, env_ids]
            # scaled by the whole rollout's spread, floored: a minibatch without a fall has only critic noise,
            # which per-minibatch standardization would blow up to unit size
            cost_advantages = (cost_advantages - cost_advantages.mean()) / max(float(st.cost_advantages.std()), 1e-2)
            cost_surrogate = clipped_cost_surrogate(log_prob, st.log_probs[:, env_ids], cost_advantages, cfg.clip)
            cost_values = self.lagrangian.cost_critic(st.critic_obs[:, env_ids])
            cost_value_loss = clipped_value_loss(
                cost_values, st.cost_values[:, env_ids], st.cost_returns[:, env_ids], cfg.clip
            )
            # L = (L_r + lambda L_c) / (1 + lambda) + value, cost-value and entropy terms
            loss = (
                combine_policy_losses(surrogate, cost_surrogate, self.lagrangian.multiplier)
                + cfg.value_coef * value_loss
                + self.lagrangian.cfg.cost_value_coef * cost_value_loss
                - cfg.entropy_coef * entropy
            )
            extra = {
                "loss/cost_surrogate": float(cost_surrogate.detach()),
                "loss/cost_value": float(cost_value_loss.detach()),
            }
        reference_kl = torch.zeros(())
        if self.reference is not None:
            # + beta KL(pi || pi_ref): fine-tuning stays near the policy it started from
            reference_kl = gaussian_kl(
                *self._on(mean, log_std, st.reference_means[:, env_ids], self.reference.log_std)
            ).mean()
            loss = loss + cfg.reference_kl_coef * reference_kl

        symmetry = torch.zeros(())
        if cfg.symmetry_coef > 0:
            symmetry = symmetry_loss(mean_mirrored, self.mirrors[1](mean.detach()), starts)
            loss = loss + cfg.symmetry_coef * symmetry

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.collective is not None:  # data-parallel replicas: every one steps with the mean gradient
            self.collective.mean_grads([p for group in self.optimizer.param_groups for p in group["params"]])
        nn.utils.clip_grad_norm_(
            [p for group in self.optimizer.param_groups for p in group["params"]], cfg.max_grad_norm
        )
        self.optimizer.step()
        return extra | {
            "loss/surrogate": float(surrogate.detach()),
            "loss/value": float(value_loss.detach()),
            "loss/entropy": float(entropy.detach()),
            "policy/kl": float(kl),
            "policy/kl_reference": float(reference_kl.detach()),
            "loss/symmetry": float(symmetry.detach()),
        }

    def _on(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The tensors' last dim cut to the active actions (all of them when none is held)."""
        if self.active is None:
            return tensors
        return tuple(x[..., self.active] for x in tensors)

    def _mirror_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Stored (normalized) policy observations mirrored: back to raw units, reflected, normalized again."""
        norm = self.actor_normalizer
        return norm(self.mirrors[0](obs * norm.std() + norm.mean.to(torch.float32)))

    def begin_rollout(self) -> None:
        """Remember the std the rollout is collected with, for the KL of the update."""
        self.storage.log_std_at_collection = self.actor.log_std.detach().clone()

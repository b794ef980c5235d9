"""Adversarial self-play: a push adversary that learns where, when and how to push the walker.

The adversary is a small MLP policy trained with the same PPO as the walker. It reads what the walker's critic
reads (the policy observation and the privileged state: true velocity, contacts, friction) plus what is left of
its budget, and each policy step outputs five numbers: fire (> 0 pushes, when the budget allows), the push's
horizontal direction and size in the robot's heading frame (a vector clipped to unit length, scaled to
`max_push_velocity_mps` of base velocity change over one step), and where on the base it lands (body x, y within
`point_offset_m`; off the centre a push also twists the base). Its reward is the walker's loss: a fall, and minus
the walker's reward.

Training alternates (`AdversaryConfig`): the walker learns for `walker_iterations` with the adversary pushing,
then the adversary learns for `adversary_iterations` rollouts with the walker frozen: the current walker, or a
snapshot from the league of earlier walkers, so that the adversary keeps the pushes that beat any recent walker
rather than chasing the newest one. The walker's recurrent state is carried through the adversary's rollouts, so
its next rollout starts exactly where the simulations are.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch

from ogi import checkpoints as ckpt
from ogi.envs.config import WalkConfig
from ogi.policies import ActorConfig, Critic, CriticConfig, EmpiricalNormalizer, make_actor
from ogi.training.config import AdversaryConfig, actor_observation
from ogi.training.hooks import RolloutHook
from ogi.training.ppo import PPO, FrozenPolicy

if TYPE_CHECKING:
    from ogi.training.runner import Runner

ACTION_SIZE = 5  # fire, direction and size (x, y), point of application (x, y)


def without_random_pushes(env: WalkConfig) -> WalkConfig:
    """The env config with the randomization's random pushes off (the rest of the randomization kept)."""
    return dataclasses.replace(env, randomization=dataclasses.replace(env.randomization, push_velocity_mps=0.0))


def yaw_of(quat_wxyz: np.ndarray) -> np.ndarray:
    """(n,) heading angles, rad, of (n, 4) base orientations."""
    w, x, y, z = quat_wxyz.T
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def push_from_action(
    action: np.ndarray,
    allowed: np.ndarray,
    mass_kg: np.ndarray,
    yaw: np.ndarray,
    ctrl_dt_s: float,
    cfg: AdversaryConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pushes (forces (n, 3) N, torques (n, 3) N*m, world frame) and which simulations fire (n,) for
    adversary actions (n, 5) where `allowed`; a push changes the base velocity by at most
    `cfg.max_push_velocity_mps` over one step of `ctrl_dt_s`."""
    action = np.nan_to_num(np.asarray(action, dtype=np.float64))
    fired = allowed & (action[:, 0] > 0.0)
    direction = action[:, 1:3]
    norm = np.linalg.norm(direction, axis=1, keepdims=True)
    direction = direction / np.maximum(norm, 1.0)  # inside the unit disk: size and direction together
    c, s = np.cos(yaw), np.sin(yaw)
    dv = cfg.max_push_velocity_mps * np.column_stack(
        [c * direction[:, 0] - s * direction[:, 1], s * direction[:, 0] + c * direction[:, 1]]
    )
    force = np.zeros((len(action), 3))
    force[:, :2] = (mass_kg / ctrl_dt_s)[:, None] * dv
    offset = np.clip(action[:, 3:5], -1.0, 1.0) * np.asarray(cfg.point_offset_m)
    point = np.column_stack(
        [c * offset[:, 0] - s * offset[:, 1], s * offset[:, 0] + c * offset[:, 1], np.zeros(len(c))]
    )
    torque = np.cross(point, force)
    force[~fired] = 0.0
    torque[~fired] = 0.0
    return force, torque, fired


class League:
    """The newest `size` frozen walkers (actor and normalizer tensors), sampled for the adversary's rollouts."""

    def __init__(self, size: int):
        self.size = size
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def add(self, actor: torch.nn.Module, normalizer: EmpiricalNormalizer) -> None:
        if self.size == 0:
            return
        snapshot = {f"actor/{k}": v.detach().clone() for k, v in actor.state_dict().items()}
        snapshot.update({f"actor_normalizer/{k}": v.detach().clone() for k, v in normalizer.state_dict().items()})
        self.snapshots = [*self.snapshots, snapshot][-self.size :]

    def __len__(self) -> int:
        return len(self.snapshots)


class PushAdversary(RolloutHook):
    """The adversary as a rollout hook of the walker's runner (see the module's docstring)."""

    name = "adversary"

    def __init__(self, cfg: AdversaryConfig, runner: Runner):
        self.cfg = cfg
        env = runner.env
        self.num_envs = n = env.num_envs
        self.ctrl_dt_s = env.cfg.sim.ctrl_dt_s
        self.min_interval_steps = max(1, round(cfg.min_interval_s / self.ctrl_dt_s))
        self.obs_dim = env.policy_layout.size + env.privileged_layout.size + 2
        actor_cfg = ActorConfig(kind="mlp", hidden_sizes=cfg.hidden_sizes, init_std=0.5)
        self.actor = make_actor(self.obs_dim, ACTION_SIZE, actor_cfg)
        self.critic = Critic(self.obs_dim, CriticConfig(hidden_sizes=cfg.hidden_sizes))
        self.normalizer = EmpiricalNormalizer(self.obs_dim)
        self.ppo = PPO(self.actor, self.critic, self.normalizer, EmpiricalNormalizer(self.obs_dim), n, cfg.ppo)
        self.cooldown = np.full(n, self.min_interval_steps, dtype=np.int64)  # steps until the next push may come
        self.pushes_left = np.full(n, cfg.pushes_per_episode, dtype=np.int64)
        self.league = League(cfg.league_size)
        self.walker_iterations = 0  # walker updates since training began
        self.warmup_left = cfg.warmup_rounds
        self.env_steps = 0  # the adversary's own rollout steps (all simulations)
        self._pushes = 0
        self._push_velocity = 0.0
        self._falls = 0
        self._sim_steps = 0  # simulation steps (all simulations) behind the counts above

    # ---- what the adversary sees and does ----------------------------------------------------
    def observe(self, obs: dict[str, np.ndarray]) -> torch.Tensor:
        budget = np.column_stack(
            [
                np.maximum(self.cooldown, 0) / self.min_interval_steps,
                self.pushes_left / self.cfg.pushes_per_episode,
            ]
        )
        return torch.as_tensor(
            np.concatenate([actor_observation(obs, "privileged"), budget], axis=1), dtype=torch.float32
        )

    def push(self, runner: Runner, action: np.ndarray) -> np.ndarray:
        """Apply adversary actions (n, 5) to the next step; returns which simulations were pushed (n,)."""
        env = runner.env
        allowed = (self.cooldown <= 0) & (self.pushes_left > 0)
        force, torque, fired = push_from_action(
            action, allowed, env.rig.robot_mass(), yaw_of(env.rig.base_pose()[:, 3:7]), self.ctrl_dt_s, self.cfg
        )
        if fired.any():
            env.push_next(force, torque)
            self.cooldown[fired] = self.min_interval_steps
            self.pushes_left[fired] -= 1
            self._pushes += int(fired.sum())
            mass = env.rig.robot_mass()[fired]
            self._push_velocity += float((np.linalg.norm(force[fired], axis=1) * self.ctrl_dt_s / mass).sum())
        return fired

    def _tick(self, done: np.ndarray, fell: np.ndarray) -> None:
        self.cooldown -= 1
        self.cooldown[done] = self.min_interval_steps
        self.pushes_left[done] = self.cfg.pushes_per_episode
        self._sim_steps += len(done)
        self._falls += int(fell.sum())

    @torch.no_grad()
    def _sample(self, adversary_obs: torch.Tensor) -> np.ndarray:
        mean, _ = self.actor(self.normalizer(adversary_obs), ())
        return (mean + self.actor.log_std.exp() * torch.randn_like(mean)).numpy()

    # ---- the walker's rollouts: the adversary pushes, frozen -----------------------------------
    def before_rollout(self, runner: Runner) -> None:
        if self.warmup_left > 0:
            for _ in range(self.warmup_left):
                self.train_round(runner)
                self.warmup_left -= 1

    def before_step(self, runner: Runner) -> None:
        self.push(runner, self._sample(self.observe(runner.obs)))

    def after_step(self, runner, action, reward, terminated, truncated, info):
        self._tick(terminated | truncated, info["fell"])
        return reward

    def after_rollout(self, runner: Runner) -> dict[str, float]:
        stats = self._push_stats("adversary/walker_phase_")
        self.walker_iterations += 1
        if self.walker_iterations % self.cfg.snapshot_every == 0:
            self.league.add(runner.actor, runner.actor_normalizer)
        if self.walker_iterations % self.cfg.walker_iterations == 0:
            for _ in range(self.cfg.adversary_iterations):
                stats.update(self.train_round(runner))
        stats["adversary/league_size"] = float(len(self.league))
        return stats

    def _push_stats(self, prefix: str) -> dict[str, float]:
        """Pushes and falls per simulation-minute since the last call, and the mean push's velocity change."""
        minutes = max(self._sim_steps, 1) * self.ctrl_dt_s / 60.0
        stats = {
            f"{prefix}pushes_per_min": self._pushes / minutes,
            f"{prefix}mean_push_mps": self._push_velocity / max(self._pushes, 1),
            f"{prefix}falls_per_min": self._falls / minutes,
        }
        self._pushes = self._falls = self._sim_steps = 0
        self._push_velocity = 0.0
        return stats

    # ---- the adversary's rollouts: the walker frozen -----------------------------------------
    def _opponent(self, runner: Runner) -> tuple[FrozenPolicy, bool]:
        """The walker the adversary trains against this round, and whether it is a league snapshot."""
        opponent = FrozenPolicy(runner.actor, runner.actor_normalizer, self.num_envs)  # a frozen copy
        if len(self.league) and torch.rand(()).item() < self.cfg.league_probability:
            snapshot = self.league.snapshots[int(torch.randint(len(self.league), ()).item())]
            opponent.actor.load_state_dict(_under("actor/", snapshot))
            opponent.normalizer.load_state_dict(_under("actor_normalizer/", snapshot))
            return opponent, True
        return opponent, False

    def train_round(self, runner: Runner) -> dict[str, float]:
        """One adversary rollout of `ppo.rollout_steps` against a frozen walker, then one adversary update."""
        env, n = runner.env, self.num_envs
        torch.set_num_threads(runner.cfg.collect_threads)
        opponent, from_league = self._opponent(runner)
        # the learner's recurrent state goes on through these steps, so its next rollout starts in step
        learner = opponent if not from_league else FrozenPolicy(runner.actor, runner.actor_normalizer, n)
        learner.state = tuple(s.clone() for s in runner.ppo.state)
        if from_league:
            opponent.state = opponent.actor.initial_state(n)
        active = runner.ppo.active
        self._push_stats("")  # count this round's pushes and falls alone
        self.ppo.begin_rollout()
        for _ in range(self.cfg.ppo.rollout_steps):
            adversary_obs = self.observe(runner.obs)
            adversary_action = self.ppo.act(adversary_obs, adversary_obs)
            self.push(runner, adversary_action.numpy())
            walker_obs = torch.as_tensor(actor_observation(runner.obs, runner.cfg.actor_obs))
            mean = opponent.mean(walker_obs)
            if from_league:
                learner.mean(walker_obs)
            noise = opponent.log_std.exp() * torch.randn_like(mean)
            walker_action = mean + (noise if active is None else noise * active)
            obs, reward, terminated, truncated, info = env.step(walker_action.numpy())
            done = terminated | truncated
            done_t = torch.as_tensor(done)
            opponent.reset(done_t)
            if from_league:
                learner.reset(done_t)
            final = None
            if "final_obs" in info:
                final = self.observe(info["final_obs"])
            self._tick(done, info["fell"])
            runner.obs = obs
            adversary_reward = self.cfg.fall_reward * info["fell"] - self.cfg.walker_reward_coef * reward
            self.ppo.process_step(
                torch.as_tensor(adversary_reward, dtype=torch.float32),
                torch.as_tensor(terminated),
                torch.as_tensor(truncated),
                final,
            )
        self.ppo.compute_returns(self.observe(runner.obs))
        reward_mean = float(self.ppo.storage.rewards.mean())
        torch.set_num_threads(runner.cfg.update_threads)
        update = self.ppo.update()
        runner.ppo.state = learner.state
        self.env_steps += n * self.cfg.ppo.rollout_steps
        stats = {f"adversary/{k.removeprefix('policy/')}": v for k, v in update.items() if k.startswith("policy/")}
        stats["adversary/reward"] = reward_mean
        stats["adversary/against_league"] = float(from_league)
        stats.update(self._push_stats("adversary/"))
        return stats

    # ---- checkpoints -------------------------------------------------------------------------
    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {f"actor/{k}": v for k, v in self.actor.state_dict().items()}
        tensors.update({f"critic/{k}": v for k, v in self.critic.state_dict().items()})
        tensors.update({f"actor_normalizer/{k}": v for k, v in self.normalizer.state_dict().items()})
        tensors.update({f"critic_normalizer/{k}": v for k, v in self.ppo.critic_normalizer.state_dict().items()})
        optim_tensors, optim_structure = ckpt.optimizer_state_to_tensors(self.ppo.optimizer, prefix="optim")
        tensors.update(optim_tensors)
        tensors["cooldown"] = torch.from_numpy(self.cooldown.copy())
        tensors["pushes_left"] = torch.from_numpy(self.pushes_left.copy())
        for index, snapshot in enumerate(self.league.snapshots):
            tensors.update({f"league/{index}/{k}": v for k, v in snapshot.items()})
        data = {
            "optimizer": optim_structure,
            "learning_rate": self.ppo.learning_rate,
            "league": len(self.league),
            "walker_iterations": self.walker_iterations,
            "env_steps": self.env_steps,
            "warmup_left": self.warmup_left,
        }
        return tensors, data

    def load_checkpoint_state(self, tensors: dict[str, torch.Tensor], data: dict) -> None:
        self.actor.load_state_dict(_under("actor/", tensors))
        self.critic.load_state_dict(_under("critic/", tensors))
        self.normalizer.load_state_dict(_under("actor_normalizer/", tensors))
        self.ppo.critic_normalizer.load_state_dict(_under("critic_normalizer/", tensors))
        self.ppo.optimizer.load_state_dict(ckpt.optimizer_state_from_tensors(tensors, data["optimizer"]))
        self.ppo.learning_rate = float(data["learning_rate"])
        self.cooldown = tensors["cooldown"].numpy().copy()
        self.pushes_left = tensors["pushes_left"].numpy().copy()
        self.league.snapshots = [_under(f"league/{index}/", tensors) for index in range(int(data["league"]))]
        self.walker_iterations = int(data["walker_iterations"])
        self.env_steps = int(data["env_steps"])
        self.warmup_left = int(data.get("warmup_left", 0))


def _under(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}

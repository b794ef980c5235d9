"""Training the loco-manipulation layers: demonstrations for the arm, its flow policy, and three PPO learners
(the arm's residual, the coordinator, the flat whole-body baseline) on one small loop.

- `collect_arm_demos`: run a controller whose arm is the scripted IK expert and keep, for every step the arm is
  engaged, the arm observation and the next `horizon` arm actions (an episode's last action repeated past its
  end): the flow policy's (observation, chunk) pairs.
- `ppo_loop`: PPO (an MLP actor and critic on the same observation) for `minutes` of wall clock on a whole-body
  env, through two callables: `observe(obs) -> (n, o)` and `control(obs, action) -> the env's actions`. A decision
  may be held for `decision_every` env steps (rewards summed), for a learner above a 50 Hz skill.
- Each learner is saved in the one checkpoint format, with its parent (the walker, the flow policy) in its lineage;
  `load_mlp_policy` gives back the deterministic mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ogi import checkpoints as ckpt
from ogi.envs.wholebody import WholeBodyVecEnv
from ogi.hierarchy.locomanip import (
    WholeBodyController,
    arm_index,
    arm_observation,
)
from ogi.policies import ActorConfig, Critic, CriticConfig, EmpiricalNormalizer, make_actor
from ogi.training.ppo import PPO, PPOConfig

ARCHITECTURE = "mlp_ppo_v1"


def collect_arm_demos(
    env: WholeBodyVecEnv, controller: WholeBodyController, steps: int, *, horizon: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """(observations (N, 17), chunks (N, horizon, 8), stats) from `steps` env steps of `controller` (its arm the
    expert); only steps with the arm engaged are kept."""
    obs, _ = env.reset(seed=seed)
    controller.reset(np.ones(env.num_envs, dtype=bool))
    index = arm_index(env)
    n = env.num_envs
    episodes: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n)]
    finished: list[list[tuple[np.ndarray, np.ndarray]]] = []
    successes = ended = 0
    for _ in range(steps):
        _, engaged, target = controller.handoff.intents(env, update=False)  # act() below moves the joint on
        arm_obs = arm_observation(env, target)
        actions = controller.act(obs["task"])
        for i in np.flatnonzero(engaged):
            episodes[i].append((arm_obs[i], actions[i, index].copy()))
        obs, _, terminated, truncated, info = env.step(actions)
        done = terminated | truncated
        for i in np.flatnonzero(done):
            if episodes[i]:
                finished.append(episodes[i])
            episodes[i] = []
        successes += int(info.get("final_success", np.zeros(n, bool))[done].sum())
        ended += int(done.sum())
        controller.reset(done)
    finished += [e for e in episodes if e]
    observations, chunks = [], []
    for episode in finished:
        acts = np.stack([a for _, a in episode])
        padded = np.concatenate([acts, np.repeat(acts[-1:], horizon - 1, axis=0)])
        for t, (o, _) in enumerate(episode):
            observations.append(o)
            chunks.append(padded[t : t + horizon])
    if not observations:
        raise RuntimeError("the expert never engaged the arm: no demonstrations")
    stats = {"samples": len(observations), "episodes": ended, "expert_success": successes / max(ended, 1)}
    return np.stack(observations).astype(np.float32), np.stack(chunks).astype(np.float32), stats


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    minutes: float = 5.0
    decision_every: int = 1  # env steps a decision is held (rewards summed)
    hidden_sizes: tuple[int, ...] = (128, 64)
    init_std: float = 0.5
    seed: int = 0
    ppo: PPOConfig = PPOConfig(rollout_steps=32, learning_rate=3e-4, entropy_coef=0.003, minibatches=4)


def ppo_loop(
    env: WholeBodyVecEnv,
    observe: Callable[[dict[str, np.ndarray]], np.ndarray],
    control: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray],
    obs_size: int,
    act_size: int,
    cfg: LoopConfig,
    *,
    reset: Callable[[np.ndarray], None] | None = None,
    on_iteration: Callable[[dict[str, float]], None] | None = None,
) -> tuple[torch.nn.Module, EmpiricalNormalizer, dict[str, float]]:
    """Train for `cfg.minutes`; (actor, normalizer, stats: iterations, decisions, episodes, success_rate of the
    last quarter of the episodes)."""
    torch.manual_seed(cfg.seed)
    n = env.num_envs
    actor = make_actor(
        obs_size, act_size, ActorConfig(kind="mlp", hidden_sizes=cfg.hidden_sizes, init_std=cfg.init_std)
    )
    critic = Critic(obs_size, CriticConfig(hidden_sizes=cfg.hidden_sizes))
    normalizer, critic_normalizer = EmpiricalNormalizer(obs_size), EmpiricalNormalizer(obs_size)
    ppo = PPO(actor, critic, normalizer, critic_normalizer, n, cfg.ppo)
    obs, _ = env.reset(seed=cfg.seed)
    if reset is not None:
        reset(np.ones(n, dtype=bool))
    start = time.perf_counter()
    iterations = decisions = 0
    outcomes: list[bool] = []
    while time.perf_counter() - start < cfg.minutes * 60:
        ppo.begin_rollout()
        for _ in range(cfg.ppo.rollout_steps):
            x = torch.as_tensor(observe(obs))
            action = ppo.act(x, x).numpy().astype(np.float64)
            total = np.zeros(n)
            done = np.zeros(n, dtype=bool)
            terminated = np.zeros(n, dtype=bool)
            final = x.clone()
            for _ in range(cfg.decision_every):
                obs, reward, term, trunc, info = env.step(control(obs, action))
                total += reward * ~done
                ended = (term | trunc) & ~done
                if ended.any():
                    outcomes += info["final_success"][ended].tolist()
                    if reset is not None:
                        reset(ended)
                terminated |= term & ~done
                done |= ended
                if done.all():
                    break
            truncated = done & ~terminated
            # a time-out's final observation is gone (autoreset): the decision's own observation bootstraps it
            ppo.process_step(
                torch.as_tensor(total, dtype=torch.float32),
                torch.as_tensor(terminated),
                torch.as_tensor(truncated),
                final if truncated.any() else None,
            )
            decisions += n
        x = torch.as_tensor(observe(obs))
        ppo.compute_returns(x)
        stats = ppo.update()
        iterations += 1
        if on_iteration is not None:
            recent = outcomes[-max(len(outcomes) // 4, 1) :]
            on_iteration(
                stats
                | {
                    "iteration": iterations,
                    "minutes": (time.perf_counter() - start) / 60,
                    "episodes": len(outcomes),
                    "success_rate": float(np.mean(recent)) if recent else 0.0,
                }
            )
    recent = outcomes[-max(len(outcomes) // 4, 1) :]
    actor.eval()
    return (
        actor,
        normalizer,
        {
            "iterations": iterations,
            "decisions": decisions,
            "episodes": len(outcomes),
            "train_success_rate": float(np.mean(recent)) if recent else 0.0,
            "minutes": (time.perf_counter() - start) / 60,
        },
    )


def mean_function(actor: torch.nn.Module, normalizer: EmpiricalNormalizer) -> Callable[[np.ndarray], np.ndarray]:
    """The deterministic policy obs (n, o) -> mean action (n, a) of an MLP actor."""

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        mean, _ = actor(normalizer(torch.as_tensor(obs, dtype=torch.float32)), ())
        return mean.numpy().astype(np.float64)

    return act


def save_mlp_policy(
    run_dir: Path,
    actor: torch.nn.Module,
    normalizer: EmpiricalNormalizer,
    *,
    role: str,
    cfg: LoopConfig,
    obs_size: int,
    act_size: int,
    stats: dict,
    parent: ckpt.Checkpoint | None = None,
    extra: dict | None = None,
) -> ckpt.Checkpoint:
    weights = {f"actor/{k}": v.detach().contiguous() for k, v in actor.state_dict().items()}
    weights |= {f"actor_normalizer/{k}": v.detach().contiguous() for k, v in normalizer.state_dict().items()}
    config = {
        "architecture": ARCHITECTURE,
        "role": role,
        "obs_size": obs_size,
        "act_size": act_size,
        "hidden_sizes": list(cfg.hidden_sizes),
        "loop": {k: v for k, v in asdict(cfg).items() if k != "ppo"},
        "ppo": asdict(cfg.ppo),
        **(extra or {}),
    }
    return ckpt.save_checkpoint(
        run_dir,
        step=int(stats.get("decisions", 0)),
        iteration=int(stats.get("iterations", 0)),
        weights=weights,
        state={},
        config=config,
        reward_weights={},
        data_manifest={"role": role},
        eval_scores={k: float(v) for k, v in stats.items()},
        parent=parent,
    )


def load_mlp_policy(path: Path, role: str) -> tuple[Callable[[np.ndarray], np.ndarray], ckpt.Checkpoint]:
    """The deterministic policy of a checkpoint saved by `save_mlp_policy` for `role` (verified)."""
    loaded = ckpt.load_checkpoint(Path(path))
    config = loaded.checkpoint.manifest["config"]
    if config.get("architecture") != ARCHITECTURE or config.get("role") != role:
        raise ckpt.CheckpointError(
            f"{path} is not a {role} policy ({config.get('architecture')}, {config.get('role')})"
        )
    actor = make_actor(
        config["obs_size"], config["act_size"], ActorConfig(kind="mlp", hidden_sizes=tuple(config["hidden_sizes"]))
    )
    actor.load_state_dict({k.removeprefix("actor/"): v for k, v in loaded.weights.items() if k.startswith("actor/")})
    normalizer = EmpiricalNormalizer(config["obs_size"])
    prefix = "actor_normalizer/"
    normalizer.load_state_dict({k.removeprefix(prefix): v for k, v in loaded.weights.items() if k.startswith(prefix)})
    actor.eval()
    return mean_function(actor, normalizer), loaded.checkpoint

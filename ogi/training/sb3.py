"""Stable-Baselines3 as a client of the batched env: the baseline `ogi train --algo sb3-ppo` runs.

SB3's policies read one observation vector, so they see the `policy` group (no asymmetric critic). SB3's
own `.save` pickles; OGI keeps only the policy's tensors, as safetensors, so no load path unpickles.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from ogi.envs import WalkVecEnv
from ogi.training.config import TrainConfig, config_to_dict


class SB3VecEnv(VecEnv):
    """`WalkVecEnv` behind SB3's VecEnv interface (policy observations, SB3's info conventions)."""

    def __init__(self, env: WalkVecEnv):
        self.env = env
        observation_space = env.single_observation_space["policy"]
        super().__init__(env.num_envs, observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None

    def reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        return obs["policy"]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        done = terminated | truncated
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            infos[i]["terminal_observation"] = info["final_obs"]["policy"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs["policy"], reward.astype(np.float32), done, infos

    def close(self) -> None:
        self.env.close()

    def seed(self, seed: int | None = None):
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.env, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [getattr(self.env, method_name)(*method_args, **method_kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


def sb3_ppo_kwargs(cfg: TrainConfig) -> dict:
    """SB3 PPO settings matching OGI's run: same rollout, epochs, minibatches, gamma, lambda, clip, network."""
    import torch

    n, steps = cfg.env.num_envs, cfg.ppo.rollout_steps
    return dict(
        n_steps=steps,
        batch_size=max(1, n * steps // cfg.ppo.minibatches),
        n_epochs=cfg.ppo.epochs,
        learning_rate=cfg.ppo.learning_rate,
        gamma=cfg.ppo.gamma,
        gae_lambda=cfg.ppo.lam,
        clip_range=cfg.ppo.clip,
        clip_range_vf=cfg.ppo.clip,
        ent_coef=cfg.ppo.entropy_coef,
        vf_coef=cfg.ppo.value_coef,
        max_grad_norm=cfg.ppo.max_grad_norm,
        target_kl=2 * cfg.ppo.desired_kl,
        seed=cfg.seed,
        policy_kwargs=dict(
            net_arch=dict(pi=list(cfg.actor.hidden_sizes), vf=list(cfg.critic.hidden_sizes)),
            activation_fn=torch.nn.ELU,
            log_std_init=float(np.log(cfg.actor.init_std)),
        ),
    )


def train_sb3(cfg: TrainConfig, run_dir: Path, *, console=None) -> dict:
    """Train SB3 PPO on the same env for the config's iterations or minutes; save weights as safetensors."""
    import torch
    from safetensors.torch import save_file
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecMonitor

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"algo": "sb3-ppo", **config_to_dict(cfg)}, indent=2))
    torch.set_num_threads(cfg.update_threads)
    venv = VecMonitor(SB3VecEnv(WalkVecEnv(cfg.env)))
    model = PPO("MlpPolicy", venv, verbose=0, tensorboard_log=str(run_dir / "tb"), **sb3_ppo_kwargs(cfg))
    deadline = time.perf_counter() + 60 * cfg.max_minutes if cfg.max_minutes else None

    class StopAtDeadline(BaseCallback):
        def _on_step(self) -> bool:
            return deadline is None or time.perf_counter() < deadline

    total = cfg.iterations * cfg.env.num_envs * cfg.ppo.rollout_steps
    start = time.perf_counter()
    model.learn(total_timesteps=total, callback=StopAtDeadline(), progress_bar=False)
    wall = time.perf_counter() - start
    weights = {k: v.contiguous() for k, v in model.policy.state_dict().items()}
    save_file(weights, str(run_dir / "sb3_policy.safetensors"))
    summary = {
        "algo": "sb3-ppo",
        "env_steps": int(model.num_timesteps),
        "wall_s": wall,
        "env_steps_per_s": model.num_timesteps / wall,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary

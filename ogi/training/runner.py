"""The training loop: collect with the batched env, update with PPO, log, checkpoint, resume.

A run directory holds `config.json`, `checkpoints/<step>/` (safetensors + manifest, chained by hash; after each
save only the newest `keep_last` and the best by eval score keep their files), `tb/` (TensorBoard) and
`summary.json`. Resuming restores the policy, critic, normalizers, optimizer, the
env's simulations and buffers, the curriculum and every RNG from the newest checkpoint that verifies, so a
resumed run continues exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ogi import checkpoints as ckpt
from ogi.envs import WalkVecEnv
from ogi.policies import Critic, EmpiricalNormalizer, make_actor
from ogi.training.adversary import PushAdversary, without_random_pushes
from ogi.training.config import TrainConfig, actor_observation, actor_observation_size, config_to_dict
from ogi.training.hooks import RolloutHook
from ogi.training.lagrangian import CostLagrangian, DualState, episode_fall_probability
from ogi.training.ppo import PPO, FrozenPolicy

# retention keeps the checkpoint with the highest of this eval score besides the newest `keep_last`
BEST_EVAL_SCORE = "mean_return"


class Runner:
    def __init__(self, cfg: TrainConfig, run_dir: Path, *, resume: bool = False, reference: FrozenPolicy | None = None):
        """reference: the frozen policy that `ppo.reference_kl_coef` keeps the learner near (fine-tuning), or None."""
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        torch.manual_seed(cfg.seed)
        adversary = cfg.adversary
        # an adversary's pushes replace the random ones unless it is told to keep them
        self.env = WalkVecEnv(
            without_random_pushes(cfg.env) if adversary.enabled and not adversary.random_pushes else cfg.env
        )
        self.obs, _ = self.env.reset(seed=cfg.seed)
        policy_dim = actor_observation_size(self.env.policy_layout.size, self.env.privileged_layout.size, cfg.actor_obs)
        critic_dim = self.env.policy_layout.size + self.env.privileged_layout.size
        act_dim = self.env.robot.num_joints
        self.actor = make_actor(policy_dim, act_dim, cfg.actor)
        self.critic = Critic(critic_dim, cfg.critic)
        self.actor_normalizer = EmpiricalNormalizer(
            policy_dim, std_floor=torch.as_tensor(self.env.actor_std_floor(cfg.actor_obs))
        )
        self.critic_normalizer = EmpiricalNormalizer(critic_dim)
        self.ppo = PPO(
            self.actor,
            self.critic,
            self.actor_normalizer,
            self.critic_normalizer,
            cfg.env.num_envs,
            cfg.ppo,
            reference=reference,
            lagrangian=CostLagrangian(cfg.safety, critic_dim, cfg.critic) if cfg.safety.enabled else None,
            mirrors=self.env.mirrors(cfg.actor_obs) if cfg.ppo.symmetry_coef > 0 else None,
            active_actions=torch.as_tensor(~self.env.held),
        )
        self.rollout_fall_probability = 0.0  # J_c of the last rollout: Pr(an episode ends in a fall)
        self.iteration = 0
        self.env_steps = 0
        self.last_checkpoint: ckpt.Checkpoint | None = None
        self.episode_stats: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}
        self.last_stats: dict[str, float] = {}  # the last iteration's figures
        self.checkpoint_config: TrainConfig | None = None  # the config checkpoints record, when not this runner's
        self.hooks: list[RolloutHook] = []  # see RolloutHook
        if adversary.enabled:
            self.hooks.append(PushAdversary(adversary, self))
        if resume:
            self._resume()
        else:
            self._start_run_dir()

    # ---- run directory -----------------------------------------------------------------------
    def _start_run_dir(self) -> None:
        if ckpt.list_checkpoints(self.run_dir):
            raise FileExistsError(f"{self.run_dir} already holds checkpoints; pass --resume to continue it")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(config_to_dict(self.cfg), indent=2))

    def _resume(self) -> None:
        latest = ckpt.latest_valid_checkpoint(self.run_dir)
        if latest is None:
            raise FileNotFoundError(f"no checkpoint in {self.run_dir} verifies; nothing to resume")
        loaded = ckpt.load_checkpoint(latest.path)
        self.load_state(loaded)
        self.last_checkpoint = latest

    # ---- one iteration -----------------------------------------------------------------------
    def _critic_obs(self, obs: dict[str, np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(actor_observation(obs, "privileged"))  # the critic always sees both groups

    def collect(self) -> dict[str, float]:
        """One rollout of `rollout_steps` policy steps in every env."""
        for hook in self.hooks:
            hook.before_rollout(self)
        torch.set_num_threads(self.cfg.collect_threads)
        self.ppo.begin_rollout()
        term_sums: dict[str, float] = {}
        episodes = falls = step_falls = 0
        returns, lengths = [], []
        for _ in range(self.cfg.ppo.rollout_steps):
            critic_obs = self._critic_obs(self.obs)
            # a teacher's actor reads the critic's input; build it once
            actor_obs = critic_obs if self.cfg.actor_obs == "privileged" else torch.as_tensor(self.obs["policy"])
            action = self.ppo.act(actor_obs, critic_obs)
            for hook in self.hooks:
                hook.before_step(self)
            obs, reward, terminated, truncated, info = self.env.step(action.numpy())
            for hook in self.hooks:
                reward = hook.after_step(self, action.numpy(), reward, terminated, truncated, info)
            final = None
            if "final_obs" in info:
                final = self._critic_obs(info["final_obs"])
            self.ppo.process_step(
                torch.as_tensor(reward, dtype=torch.float32),
                torch.as_tensor(terminated),
                torch.as_tensor(truncated),
                final,
                costs=torch.as_tensor(info["fell"], dtype=torch.float32),
            )
            step_falls += int(info["fell"].sum())
            self.obs = obs
            for key, value in info.items():
                if key.startswith("reward/"):
                    term_sums[key] = term_sums.get(key, 0.0) + float(value.mean())
            if "_episode" in info:
                mask = info["_episode"]
                episodes += int(mask.sum())
                falls += int((info["fell"] & mask).sum())
                returns += info["episode_return"][mask].tolist()
                lengths += info["episode_length"][mask].tolist()
        self.ppo.compute_returns(self._critic_obs(self.obs))
        n, steps = self.cfg.env.num_envs, self.cfg.ppo.rollout_steps
        self.env_steps += n * steps
        stats = {key: value / steps for key, value in term_sums.items()}
        stats["reward/total"] = float(self.ppo.storage.rewards.mean())
        self.rollout_fall_probability = episode_fall_probability(step_falls, n * steps, self.cfg.env.max_episode_steps)
        stats["safety/fall_probability"] = self.rollout_fall_probability
        if episodes:
            self.episode_stats = {
                "episode/return": float(np.mean(returns)),
                "episode/length_s": float(np.mean(lengths)) * self.cfg.env.sim.ctrl_dt_s,
                "episode/fall_rate": falls / episodes,
            }
        stats.update(self.episode_stats)
        stats.update({f"terrain/{k}": v for k, v in self.env.curriculum_summary().items() if isinstance(v, float)})
        for hook in self.hooks:
            stats.update(hook.after_rollout(self))
        return stats

    def update(self) -> dict[str, float]:
        torch.set_num_threads(self.cfg.update_threads)
        stats = self.ppo.update()
        if self.ppo.lagrangian is not None:
            # dual ascent once per iteration: lambda <- max(0, lambda + lr (J_c - delta))
            stats["safety/lambda"] = self.ppo.lagrangian.update_multiplier(self.rollout_fall_probability)
        return stats

    # ---- the loop ----------------------------------------------------------------------------
    def train(
        self,
        *,
        iterations: int | None = None,
        progress: bool = True,
        log: bool = True,
        save_final: bool = True,
        stop_when: Callable[[Runner], bool] | None = None,
    ) -> dict:
        """Train until `iterations` (default: the config's) or `max_minutes`; checkpoint on the way and at the end.

        With save_final=False the caller saves the last state itself (e.g. with eval scores in the manifest).
        stop_when: asked after every iteration; True ends training there (e.g. a judge that finds the policy walks).
        """
        total = iterations if iterations is not None else self.cfg.iterations
        writer = _summary_writer(self.run_dir / "tb") if log else None
        start = time.perf_counter()
        start_steps = self.env_steps
        target = self.iteration + total
        bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            disable=not progress,
        )
        task = bar.add_task("train", total=total, rate="")
        table = Table.grid(padding=(0, 2))
        stats: dict[str, float] = {}
        console = Console(stderr=True)
        # a live display needs a terminal; into a log file, print a line every 30 s instead
        plain = progress and not console.is_terminal
        live = progress and not plain
        last_line = 0.0
        try:
            with Live(Group(bar, table), refresh_per_second=4, console=console, transient=False) if live else _Null():
                while self.iteration < target:
                    t0 = time.perf_counter()
                    stats = self.collect()
                    stats.update(self.update())
                    self.iteration += 1
                    elapsed = time.perf_counter() - start
                    rate = (self.env_steps - start_steps) / max(elapsed, 1e-9)
                    stats["perf/env_steps_per_s"] = rate
                    stats["perf/iteration_s"] = time.perf_counter() - t0
                    self.last_stats = stats
                    if writer is not None:
                        for key, value in stats.items():
                            writer.add_scalar(key, value, self.env_steps)
                    if live:
                        bar.update(task, completed=self.iteration - (target - total), rate=f"{rate:,.0f} steps/s")
                        _fill(table, self.iteration, self.env_steps, stats)
                    elif plain and (elapsed - last_line > 30 or self.iteration == target):
                        last_line = elapsed
                        console.print(
                            _line(self.iteration, self.env_steps, elapsed, stats), soft_wrap=True, markup=False
                        )
                    if self.iteration % self.cfg.checkpoint_every == 0:
                        self.save()
                    if self.cfg.max_minutes and elapsed > 60 * self.cfg.max_minutes:
                        break
                    if stop_when is not None and stop_when(self):
                        break
        except KeyboardInterrupt:
            self.save()
            raise
        finally:
            if writer is not None:
                writer.close()
        if save_final and not self.saved_now():
            self.save()
        summary = {
            "iterations": self.iteration,
            "env_steps": self.env_steps,
            "wall_s": time.perf_counter() - start,
            "env_steps_per_s": (self.env_steps - start_steps) / max(time.perf_counter() - start, 1e-9),
            **{k: v for k, v in stats.items() if k.startswith(("episode/", "reward/total", "terrain/"))},
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    # ---- checkpoints -------------------------------------------------------------------------
    def saved_now(self) -> bool:
        """Whether this run's newest checkpoint holds the current iteration: one of this run's own, not the one an
        `--init-from` run started from (whose iteration may be the same number)."""
        last = self.last_checkpoint
        return (
            last is not None
            and last.iteration == self.iteration
            and last.path.parent.resolve() == (self.run_dir / ckpt.CHECKPOINTS_DIRNAME).resolve()
        )

    def save(self, eval_scores: dict[str, float] | None = None) -> ckpt.Checkpoint:
        weights = {f"actor/{k}": v for k, v in self.actor.state_dict().items()}
        weights.update({f"actor_normalizer/{k}": v for k, v in self.actor_normalizer.state_dict().items()})
        optim_tensors, optim_structure = ckpt.optimizer_state_to_tensors(self.ppo.optimizer)
        state = {f"critic/{k}": v for k, v in self.critic.state_dict().items()}
        state.update({f"critic_normalizer/{k}": v for k, v in self.critic_normalizer.state_dict().items()})
        state.update(optim_tensors)
        state["rng/torch"] = torch.get_rng_state()
        state.update({f"actor_state/{i}": s.contiguous() for i, s in enumerate(self.ppo.state)})
        env_arrays, env_meta = self.env.get_state()
        state.update({f"env/{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in env_arrays.items()})
        state.update({f"obs/{k}": torch.from_numpy(v.copy()) for k, v in self.obs.items()})
        if self.ppo.lagrangian is not None:
            state.update({f"cost_critic/{k}": v for k, v in self.ppo.lagrangian.cost_critic.state_dict().items()})
        data = {
            "optimizer": optim_structure,
            "learning_rate": self.ppo.learning_rate,
            "env": env_meta,
            "curriculum": env_meta["curriculum"],
            "episode_stats": self.episode_stats,
        }
        if self.ppo.lagrangian is not None:
            data["lagrangian"] = self.ppo.lagrangian.dual.to_dict()
        for hook in self.hooks:
            if hook.name:
                tensors, hook_data = hook.checkpoint_state()
                state.update({f"{hook.name}/{k}": v for k, v in tensors.items()})
                data.setdefault("hooks", {})[hook.name] = hook_data
        self.last_checkpoint = ckpt.save_checkpoint(
            self.run_dir,
            step=self.env_steps,
            iteration=self.iteration,
            weights=weights,
            state=state,
            config=config_to_dict(self.checkpoint_config or self.cfg),
            reward_weights=dict(self.cfg.env.rewards.weights),
            data_manifest=data,
            eval_scores=eval_scores or self.last_eval,
            parent=self.last_checkpoint,
        )
        # the newest is always kept, so the next checkpoint's parent is never pruned
        ckpt.prune_checkpoints(self.run_dir, ckpt.Retention(keep_last=self.cfg.keep_last, best_by=BEST_EVAL_SCORE))
        return self.last_checkpoint

    def load_state(self, loaded: ckpt.LoadedCheckpoint) -> None:
        w, s, data = loaded.weights, loaded.state, loaded.data_manifest
        self.actor.load_state_dict({k.removeprefix("actor/"): v for k, v in w.items() if k.startswith("actor/")})
        self.actor_normalizer.load_state_dict(
            {k.removeprefix("actor_normalizer/"): v for k, v in w.items() if k.startswith("actor_normalizer/")}
        )
        self.critic.load_state_dict({k.removeprefix("critic/"): v for k, v in s.items() if k.startswith("critic/")})
        self.critic_normalizer.load_state_dict(
            {k.removeprefix("critic_normalizer/"): v for k, v in s.items() if k.startswith("critic_normalizer/")}
        )
        if self.ppo.lagrangian is not None and "lagrangian" in data:
            self.ppo.lagrangian.cost_critic.load_state_dict(
                {k.removeprefix("cost_critic/"): v for k, v in s.items() if k.startswith("cost_critic/")}
            )
            self.ppo.lagrangian.dual = DualState.from_dict(data["lagrangian"])
        self.ppo.optimizer.load_state_dict(ckpt.optimizer_state_from_tensors(s, data["optimizer"]))
        self.ppo.learning_rate = float(data["learning_rate"])
        torch.set_rng_state(s["rng/torch"])
        count = len([k for k in s if k.startswith("actor_state/")])
        self.ppo.state = tuple(s[f"actor_state/{i}"].clone() for i in range(count))
        env_arrays = {k.removeprefix("env/"): v.numpy() for k, v in s.items() if k.startswith("env/")}
        self.env.set_state(env_arrays, data["env"])
        self.obs = {k.removeprefix("obs/"): v.numpy().copy() for k, v in s.items() if k.startswith("obs/")}
        self.episode_stats = dict(data.get("episode_stats", {}))
        for hook in self.hooks:
            if hook.name and hook.name in data.get("hooks", {}):
                prefix = f"{hook.name}/"
                hook.load_checkpoint_state(
                    {k.removeprefix(prefix): v for k, v in s.items() if k.startswith(prefix)}, data["hooks"][hook.name]
                )
        self.iteration = loaded.checkpoint.iteration
        self.env_steps = loaded.checkpoint.step


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _summary_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def _line(iteration: int, env_steps: int, elapsed_s: float, stats: dict[str, float]) -> str:
    return (
        f"it {iteration} | {env_steps:,} steps | {elapsed_s / 60:.1f} min"
        f" | {stats.get('perf/env_steps_per_s', 0):,.0f} steps/s"
        f" | reward/step {stats.get('reward/total', 0):+.4f}"
        f" | ep len {stats.get('episode/length_s', float('nan')):.1f} s"
        f" | falls {stats.get('episode/fall_rate', float('nan')):.3f}"
        f" | tracking {stats.get('reward/tracking_lin_vel', 0):.4f}"
        f" | terrain {stats.get('terrain/mean_level', 0.0):.2f} | lr {stats.get('policy/learning_rate', 0):.1e}"
        f" | std {stats.get('policy/std', 0):.3f}"
        + (f" | lambda {stats['safety/lambda']:.3f}" if "safety/lambda" in stats else "")
    )


def _fill(table: Table, iteration: int, env_steps: int, stats: dict[str, float]) -> None:
    """Refresh the live table under the progress bar with this iteration's figures."""
    table.columns.clear()
    table.rows.clear()
    table.add_column(style="cyan")
    table.add_column(justify="right")
    table.add_column(style="cyan")
    table.add_column(justify="right")
    head = [
        ("iteration", f"{iteration}"),
        ("env steps", f"{env_steps:,}"),
        ("steps/s", f"{stats.get('perf/env_steps_per_s', 0):,.0f}"),
        ("reward/step", f"{stats.get('reward/total', 0):.4f}"),
        ("episode len s", f"{stats.get('episode/length_s', float('nan')):.1f}"),
        ("fall rate", f"{stats.get('episode/fall_rate', float('nan')):.3f}"),
        *([("lambda", f"{stats['safety/lambda']:.3f}")] if "safety/lambda" in stats else []),
        ("terrain level", f"{stats.get('terrain/mean_level', 0.0):.2f}"),
        ("lr", f"{stats.get('policy/learning_rate', 0):.2e}"),
        ("kl", f"{stats.get('policy/kl', 0):.4f}"),
        ("std", f"{stats.get('policy/std', 0):.3f}"),
    ]
    terms = [
        (k.removeprefix("reward/"), f"{v:+.4f}")
        for k, v in sorted(stats.items())
        if k.startswith("reward/") and k != "reward/total"
    ]
    cells = head + terms
    for i in range(0, len(cells), 2):
        left = cells[i]
        right = cells[i + 1] if i + 1 < len(cells) else ("", "")
        table.add_row(left[0], left[1], right[0], right[1])

"""Teacher -> student distillation on the student's own rollouts (DAgger), then optional PPO fine-tuning.

The teacher is a PPO run with `actor_obs = "privileged"`: it reads the policy group (without the depth image)
followed by the simulator's privileged group (true velocity, friction, height scan). The student reads the policy
group only (proprioception, IMU, command and, with the camera on, the depth image). It is trained on

    L = E_{s ~ rho_student}[ KL(pi_teacher(.|s_priv) || pi_student(.|s_obs)) ]

in closed form between the two diagonal Gaussians, over the states its own rollouts visit; early on, with
probability beta (decaying linearly to 0), an env executes the teacher's action instead, so the first rollouts
are not all falls. Recurrent students learn by truncated back-propagation through time over chunks of each rollout.
A student run directory holds checkpoints like a PPO run's (weights + normalizer, loadable by `load_policy`); its
first checkpoint names the teacher's as parent, so `ogi verify` walks student -> teacher.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from torch import nn

from ogi import checkpoints as ckpt
from ogi.envs import WalkVecEnv
from ogi.envs.observations import policy_layout
from ogi.policies import Actor, ActorConfig, EmpiricalNormalizer, State, gaussian_kl, make_actor
from ogi.robots import get_robot
from ogi.training.config import TrainConfig, config_to_dict
from ogi.training.policy_loading import load_policy
from ogi.training.ppo import FrozenPolicy
from ogi.validation import ConfigError, check_range


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    iterations: int = 10**9
    max_minutes: float = 0.0  # wall-clock limit, 0: none
    rollout_steps: int = 24  # policy steps per env per iteration
    chunk_steps: int = 24  # truncated BPTT length: the rollout is cut into chunks of this many steps
    epochs: int = 4  # passes over each rollout: the update is cheap next to the simulation
    minibatches: int = 4  # over envs: each minibatch holds whole sequences
    learning_rate: float = 1e-3
    max_grad_norm: float = 1.0
    teacher_action_probability: float = 0.5  # beta at the first iteration
    teacher_action_iterations: int = 20  # beta falls linearly to 0 over these iterations
    checkpoint_every: int = 25
    seed: int = 0
    collect_threads: int = 1
    update_threads: int = 2

    def __post_init__(self) -> None:
        check_range("distill.iterations", self.iterations, 1, 10**9)
        check_range("distill.max_minutes", self.max_minutes, 0.0, 1e6)
        check_range("distill.rollout_steps", self.rollout_steps, 1, 10_000)
        check_range("distill.chunk_steps", self.chunk_steps, 1, 10_000)
        check_range("distill.epochs", self.epochs, 1, 100)
        check_range("distill.minibatches", self.minibatches, 1, 4096)
        check_range("distill.learning_rate", self.learning_rate, 1e-7, 1.0)
        check_range("distill.max_grad_norm", self.max_grad_norm, 1e-3, 1e3)
        check_range("distill.teacher_action_probability", self.teacher_action_probability, 0.0, 1.0)
        check_range("distill.teacher_action_iterations", self.teacher_action_iterations, 0, 10**9)
        check_range("distill.checkpoint_every", self.checkpoint_every, 1, 10**9)
        check_range("distill.collect_threads", self.collect_threads, 1, 1024)
        check_range("distill.update_threads", self.update_threads, 1, 1024)
        for name in (
            "iterations",
            "rollout_steps",
            "chunk_steps",
            "epochs",
            "minibatches",
            "teacher_action_iterations",
        ):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"distill.{name} = {getattr(self, name)!r} must be an integer")

    def teacher_action_beta(self, iteration: int) -> float:
        """beta_k = beta_0 (1 - k / K), clipped at 0: the chance an env executes the teacher's action."""
        if self.teacher_action_iterations == 0:
            return 0.0
        return self.teacher_action_probability * max(0.0, 1.0 - iteration / self.teacher_action_iterations)


@dataclass(frozen=True)
class Teacher:
    """A privileged-observation policy loaded from a run, with the checkpoint it came from."""

    actor: Actor
    normalizer: EmpiricalNormalizer
    cfg: TrainConfig
    checkpoint: ckpt.Checkpoint = field(repr=False)


def load_teacher(path: Path) -> Teacher:
    """The newest valid checkpoint of a teacher run (or a checkpoint directory); refuses a non-privileged run."""
    actor, normalizer, cfg, checkpoint = load_policy(Path(path))
    if cfg.actor_obs != "privileged":
        raise ConfigError(
            f"{path}: actor_obs = {cfg.actor_obs!r}; a teacher must be a privileged-observation run "
            '(train it with actor_obs = "privileged")'
        )
    return Teacher(actor=actor, normalizer=normalizer, cfg=cfg, checkpoint=checkpoint)


def student_config(teacher_cfg: TrainConfig, *, depth: bool = True, num_envs: int | None = None) -> TrainConfig:
    """The student's run config: the teacher's env (with the depth camera on or off), a `student` actor on the
    policy group sized like the teacher's, and the teacher's PPO settings for fine-tuning."""
    env = teacher_cfg.env
    camera = dataclasses.replace(env.depth_camera, enabled=depth)
    env = dataclasses.replace(env, depth_camera=camera, num_envs=num_envs or env.num_envs)
    base = teacher_cfg.actor
    actor = ActorConfig(
        kind="student",
        hidden_sizes=base.hidden_sizes,
        recurrent_size=base.recurrent_size,
        activation=base.activation,
        init_std=base.init_std,
        depth_height=camera.height if depth else 0,
        depth_width=camera.width if depth else 0,
    )
    # the symmetry loss has no mirror image of the depth image (ogi.envs.symmetry): a depth student fine-tunes without
    ppo = dataclasses.replace(teacher_cfg.ppo, symmetry_coef=0.0) if depth else teacher_cfg.ppo
    return dataclasses.replace(teacher_cfg, env=env, actor=actor, actor_obs="policy", ppo=ppo)


def check_pairing(teacher_cfg: TrainConfig, student_cfg: TrainConfig) -> None:
    """Raise a `ConfigError` naming the field where the student cannot learn from this teacher."""
    if student_cfg.actor_obs != "policy":
        raise ConfigError(f"student actor_obs = {student_cfg.actor_obs!r}; a student reads the 'policy' group only")
    pairs = (
        ("env.robot", teacher_cfg.env.robot, student_cfg.env.robot),
        ("env.sim.ctrl_dt_s", teacher_cfg.env.sim.ctrl_dt_s, student_cfg.env.sim.ctrl_dt_s),
        ("env.height_scan", teacher_cfg.env.height_scan, student_cfg.env.height_scan),
        ("env.action_clip", teacher_cfg.env.action_clip, student_cfg.env.action_clip),
    )
    for name, teacher_value, student_value in pairs:
        if teacher_value != student_value:
            raise ConfigError(f"student {name} = {student_value!r} does not match the teacher's {teacher_value!r}")
    actor = student_cfg.actor
    camera = student_cfg.env.depth_camera
    image = (camera.height, camera.width) if camera.enabled else (0, 0)
    if actor.kind == "student" and (actor.depth_height, actor.depth_width) != image:
        raise ConfigError(
            f"student actor.depth_height x actor.depth_width = {actor.depth_height} x {actor.depth_width} must match "
            f"the depth camera's rows x cols {image[0]} x {image[1]} (0 x 0 with env.depth_camera.enabled = false)"
        )


def distillation_loss(
    teacher_mean: torch.Tensor, teacher_log_std: torch.Tensor, student_mean: torch.Tensor, student_log_std: torch.Tensor
) -> torch.Tensor:
    """E_s[KL(pi_teacher(.|s_priv) || pi_student(.|s_obs))]: means `(..., act_dim)`, log stds broadcasting -> scalar."""
    return gaussian_kl(teacher_mean, teacher_log_std, student_mean, student_log_std).mean()


class Distiller:
    """Collects with the student (beta-mixed with the teacher), labels every state with the teacher's action
    distribution and fits the student to it; `collect` and `update` are one iteration, `train` the loop."""

    def __init__(self, teacher: Teacher, cfg: TrainConfig, distill_cfg: DistillConfig, run_dir: Path) -> None:
        check_pairing(teacher.cfg, cfg)
        self.teacher_cfg, self.cfg, self.distill_cfg = teacher.cfg, cfg, distill_cfg
        self.teacher_checkpoint = teacher.checkpoint
        self.run_dir = Path(run_dir)
        if ckpt.list_checkpoints(self.run_dir):
            raise FileExistsError(f"{self.run_dir} already holds checkpoints; choose a new --out directory")
        torch.manual_seed(distill_cfg.seed)
        self.rng = np.random.default_rng(distill_cfg.seed)
        joints = get_robot(cfg.env.robot).num_joints
        teacher_camera = teacher.cfg.env.depth_camera
        self.teacher_policy_dim = policy_layout(
            joints, teacher_camera.pixels if teacher_camera.enabled else 0, teacher.cfg.env.gait.enabled
        ).size
        camera = cfg.env.depth_camera
        self.student_dim = policy_layout(joints, camera.pixels if camera.enabled else 0, cfg.env.gait.enabled).size
        # one env serves both: the camera is on when either policy reads it (a layout without the image is a prefix)
        env_camera = dataclasses.replace(camera, enabled=camera.enabled or teacher_camera.enabled)
        self.env = WalkVecEnv(dataclasses.replace(cfg.env, depth_camera=env_camera, seed=distill_cfg.seed))
        self.obs, _ = self.env.reset(seed=distill_cfg.seed)
        expected = teacher.actor.obs_dim
        if self.teacher_policy_dim + self.env.privileged_layout.size != expected:
            raise ConfigError(
                f"the teacher reads {expected} observations but this env gives it "
                f"{self.teacher_policy_dim + self.env.privileged_layout.size}; was it trained with another env config?"
            )
        self.student = make_actor(self.student_dim, joints, cfg.actor)
        self.normalizer = EmpiricalNormalizer(self.student_dim)
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=distill_cfg.learning_rate)
        n, steps = cfg.env.num_envs, distill_cfg.rollout_steps
        self.teacher = FrozenPolicy(teacher.actor, teacher.normalizer, n)
        self.state: State = self.student.initial_state(n)
        self.obs_buffer = torch.zeros(steps, n, self.student_dim)  # normalized, as the student saw them
        self.teacher_means = torch.zeros(steps, n, joints)
        self.starts = torch.zeros(steps, n, dtype=torch.bool)
        self.chunk_states: list[State] = []  # the student's state before each chunk, at collection
        self.iteration = 0
        self.env_steps = 0
        self.last_checkpoint: ckpt.Checkpoint | None = None
        self.last_eval: dict[str, float] = {}
        self.episode_stats: dict[str, float] = {}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))

    # ---- one iteration -----------------------------------------------------------------------
    def _inputs(self, obs: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(student raw obs, teacher raw obs) from one env observation dict."""
        student = torch.as_tensor(obs["policy"][:, : self.student_dim])
        teacher = torch.as_tensor(np.concatenate([obs["policy"][:, : self.teacher_policy_dim], obs["privileged"]], 1))
        return student, teacher

    @torch.no_grad()
    def collect(self) -> dict[str, float]:
        """One rollout of the student (teacher actions with probability beta), labelled by the teacher."""
        torch.set_num_threads(self.distill_cfg.collect_threads)
        beta = self.distill_cfg.teacher_action_beta(self.iteration)
        chunk = self.distill_cfg.chunk_steps
        self.chunk_states = []
        self.starts.zero_()
        kl_sum = 0.0
        returns, falls, episodes = [], 0, 0
        for t in range(self.distill_cfg.rollout_steps):
            if t % chunk == 0:
                self.chunk_states.append(tuple(s.clone() for s in self.state))
            student_raw, teacher_raw = self._inputs(self.obs)
            self.normalizer.update(student_raw)
            student_obs = self.normalizer(student_raw)
            student_mean, self.state = self.student(student_obs, self.state)
            teacher_mean = self.teacher.mean(teacher_raw)
            self.obs_buffer[t] = student_obs
            self.teacher_means[t] = teacher_mean
            kl_sum += float(distillation_loss(teacher_mean, self.teacher.log_std, student_mean, self.student.log_std))
            use_teacher = torch.as_tensor(self.rng.random(student_mean.shape[0]) < beta)
            action = torch.where(use_teacher[:, None], teacher_mean, student_mean)
            self.obs, _, terminated, truncated, info = self.env.step(action.numpy())
            done = torch.as_tensor(terminated | truncated)
            if t + 1 < self.distill_cfg.rollout_steps:
                self.starts[t + 1] = done
            self.state = self.student.reset_state(self.state, done)
            self.teacher.reset(done)
            if "_episode" in info:
                mask = info["_episode"]
                episodes += int(mask.sum())
                falls += int((info["fell"] & mask).sum())
                returns += info["episode_return"][mask].tolist()
        self.env_steps += self.cfg.env.num_envs * self.distill_cfg.rollout_steps
        if episodes:
            self.episode_stats = {"episode/return": float(np.mean(returns)), "episode/fall_rate": falls / episodes}
        return {
            "distill/kl_on_rollout": kl_sum / self.distill_cfg.rollout_steps,
            "distill/beta": beta,
            **self.episode_stats,
        }

    def update(self) -> dict[str, float]:
        """Epochs of Adam steps on the KL, one per (env minibatch, BPTT chunk)."""
        torch.set_num_threads(self.distill_cfg.update_threads)
        dcfg = self.distill_cfg
        n = self.cfg.env.num_envs
        total, count = 0.0, 0
        for _ in range(dcfg.epochs):
            for env_ids in torch.randperm(n).chunk(min(dcfg.minibatches, n)):
                for k, start in enumerate(range(0, dcfg.rollout_steps, dcfg.chunk_steps)):
                    stop = min(start + dcfg.chunk_steps, dcfg.rollout_steps)
                    state0 = tuple(s[env_ids] for s in self.chunk_states[k])
                    mean = self.student.forward_sequence(
                        self.obs_buffer[start:stop, env_ids], state0, self.starts[start:stop, env_ids]
                    )
                    loss = distillation_loss(
                        self.teacher_means[start:stop, env_ids], self.teacher.log_std, mean, self.student.log_std
                    )
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(self.student.parameters(), dcfg.max_grad_norm)
                    self.optimizer.step()
                    total += float(loss.detach())
                    count += 1
        return {"distill/kl_update": total / count, "policy/std": float(self.student.log_std.detach().exp().mean())}

    # ---- the loop ----------------------------------------------------------------------------
    def train(self, *, iterations: int | None = None, console: Console | None = None, save_final: bool = True) -> dict:
        """Iterate until `iterations` (default: the config's) or `max_minutes`; checkpoint on the way and at the end.

        With save_final=False the caller saves the last state itself (e.g. with eval scores in the manifest).
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = console or Console(stderr=True)
        total = iterations if iterations is not None else self.distill_cfg.iterations
        start = time.perf_counter()
        stats: dict[str, float] = {}
        history: list[float] = []
        bar = Progress(
            TextColumn("[bold]distill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        last_line = -1e9
        with bar:
            task = bar.add_task("distill", total=None if total >= 10**9 else total, line="")
            while self.iteration < total:
                stats = self.collect()
                stats.update(self.update())
                self.iteration += 1
                history.append(stats["distill/kl_on_rollout"])
                elapsed = time.perf_counter() - start
                line = _line(self.iteration, self.env_steps, elapsed, stats)
                bar.update(task, completed=self.iteration, line=line)
                if not console.is_terminal and elapsed - last_line > 30:
                    last_line = elapsed
                    console.print(line, soft_wrap=True, markup=False)
                if self.iteration % self.distill_cfg.checkpoint_every == 0:
                    self.save()
                if self.distill_cfg.max_minutes and elapsed > 60 * self.distill_cfg.max_minutes:
                    break
        if save_final and (self.last_checkpoint is None or self.last_checkpoint.iteration != self.iteration):
            self.save()
        summary = {
            "iterations": self.iteration,
            "env_steps": self.env_steps,
            "wall_s": time.perf_counter() - start,
            "kl_first": history[0] if history else float("nan"),
            "kl_last": history[-1] if history else float("nan"),
            **{k: v for k, v in stats.items() if k.startswith(("episode/", "policy/std"))},
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self, eval_scores: dict[str, float] | None = None) -> ckpt.Checkpoint:
        """A checkpoint `load_policy` reads like a PPO run's; the first one's parent is the teacher's checkpoint."""
        weights = {f"actor/{k}": v for k, v in self.student.state_dict().items()}
        weights.update({f"actor_normalizer/{k}": v for k, v in self.normalizer.state_dict().items()})
        optim_tensors, optim_structure = ckpt.optimizer_state_to_tensors(self.optimizer)
        state = {**optim_tensors, "rng/torch": torch.get_rng_state()}
        data = {
            "optimizer": optim_structure,
            "distill": config_to_dict(self.distill_cfg),
            "teacher_checkpoint": str(self.teacher_checkpoint.path),
            "teacher_checkpoint_sha256": self.teacher_checkpoint.checkpoint_sha256,
            "episode_stats": self.episode_stats,
        }
        if eval_scores is not None:
            self.last_eval = eval_scores
        self.last_checkpoint = ckpt.save_checkpoint(
            self.run_dir,
            step=self.env_steps,
            iteration=self.iteration,
            weights=weights,
            state=state,
            config=config_to_dict(self.cfg),
            reward_weights=dict(self.cfg.env.rewards.weights),
            data_manifest=data,
            eval_scores=self.last_eval,
            parent=self.last_checkpoint or self.teacher_checkpoint,
        )
        return self.last_checkpoint


def _line(iteration: int, env_steps: int, elapsed_s: float, stats: dict[str, float]) -> str:
    return (
        f"it {iteration} | {env_steps:,} steps | {elapsed_s / 60:.1f} min | KL(teacher||student) on rollout "
        f"{stats.get('distill/kl_on_rollout', float('nan')):.4f}"
        f" | update {stats.get('distill/kl_update', float('nan')):.4f}"
        f" | beta {stats.get('distill/beta', 0.0):.2f} | ep return {stats.get('episode/return', float('nan')):.2f}"
        f" | falls {stats.get('episode/fall_rate', float('nan')):.3f}"
    )

"""Judge a walking policy per command family (forward, backward, lateral, turning, mixed).

A policy "walks" when, over every family, the mean linear error is at most 0.10 m/s and the mean yaw-rate
error at most 0.15 rad/s, at most 2% of 20 s episodes end in a fall, and every foot's duty factor (time in
contact while walking) lies in [0.35, 0.65]: a trot, not a shuffle. Policies trained on a coarse physics
model are judged on the full-fidelity one (`full_fidelity`), which is what deployment runs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from ogi.envs import WalkConfig, WalkVecEnv
from ogi.envs.config import CommandConfig, SimConfig
from ogi.envs.observations import quat_rotate_inverse
from ogi.envs.walk import CONTACT_FORCE_THRESHOLD_N
from ogi.policies import Actor, EmpiricalNormalizer
from ogi.training.config import actor_observation

FAMILIES = ("forward", "backward", "lateral", "turning", "mixed")


@dataclass(frozen=True, kw_only=True)
class WalkCriterion:
    lin_error_mps: float = 0.10
    yaw_error_radps: float = 0.15
    fall_rate: float = 0.02
    duty_factor: tuple[float, float] = (0.35, 0.65)


@dataclass(frozen=True, kw_only=True)
class FamilyResult:
    episodes: int
    lin_error_mps: float  # mean |cmd_xy - v_xy| after the settling time, m/s
    yaw_error_radps: float  # mean |cmd_yaw - w_z| after the settling time, rad/s
    falls: float  # share of episodes that ended in a fall
    duty_factors: tuple[float, ...]  # per foot: share of walking time in contact


def family_commands(family: str, k: int, c: CommandConfig, rng: np.random.Generator) -> np.ndarray:
    """(k, 3) commands of one family, drawn inside the command ranges `c`; never near zero."""
    vx_hi, vx_lo = c.lin_vel_x_mps[1], c.lin_vel_x_mps[0]
    vy_hi = max(abs(c.lin_vel_y_mps[0]), abs(c.lin_vel_y_mps[1]))
    yaw_hi = max(abs(c.yaw_rate_radps[0]), abs(c.yaw_rate_radps[1]))
    sign = rng.choice([-1.0, 1.0], k)
    out = np.zeros((k, 3))
    if family == "forward":
        out[:, 0] = rng.uniform(0.3 * vx_hi, vx_hi, k)
    elif family == "backward":
        out[:, 0] = rng.uniform(vx_lo, 0.3 * vx_lo, k)
    elif family == "lateral":
        out[:, 1] = sign * rng.uniform(0.4 * vy_hi, vy_hi, k)
    elif family == "turning":
        out[:, 2] = sign * rng.uniform(0.4 * yaw_hi, yaw_hi, k)
    elif family == "mixed":
        out[:, 0] = rng.uniform(vx_lo, vx_hi, k)
        out[:, 1] = rng.uniform(*c.lin_vel_y_mps, k)
        out[:, 2] = rng.uniform(*c.yaw_rate_radps, k)
    else:
        raise ValueError(f"unknown command family '{family}'; known: {', '.join(FAMILIES)}")
    return out


def full_fidelity(env_cfg: WalkConfig) -> WalkConfig:
    """The task on the deployment physics: 1 kHz, MuJoCo's default solver effort, same robot and task."""
    sim = SimConfig(
        nthread=env_cfg.sim.nthread,
        elliptic_cone=env_cfg.sim.elliptic_cone,
        gravity_feedforward=env_cfg.sim.gravity_feedforward,
        ctrl_dt_s=env_cfg.sim.ctrl_dt_s,
        command_delay_s=env_cfg.sim.command_delay_s,  # the robot's latency is the robot's, at any physics rate
    )
    return dataclasses.replace(env_cfg, sim=sim)


@torch.no_grad()
def evaluate_families(
    actor: Actor,
    normalizer: EmpiricalNormalizer,
    env_cfg: WalkConfig,
    *,
    envs_per_family: int = 8,
    episode_s: float = 20.0,
    settle_s: float = 2.0,
    seed: int = 12345,
    actor_obs: str = "policy",
    families: tuple[str, ...] = FAMILIES,
    commands: CommandConfig | None = None,
) -> dict[str, FamilyResult]:
    """One fixed command per episode, `envs_per_family` episodes per family, all families in one batch.

    Commands come from `commands`, by default the robot's command space: its `walk` preset's (for go2 vx in
    [-1, 1] m/s, vy in [-0.5, 0.5] m/s, yaw rate in [-1, 1] rad/s; for two-legged robots vx in [-0.5, 0.8],
    vy in [-0.3, 0.3], yaw rate in [-0.8, 0.8]), whatever range the policy was trained on.

    Pushes are off (the judge measures walking, not push recovery); other randomization stays as trained.
    An env that falls stops counting there.
    """
    if commands is None:
        from ogi.training.config import preset

        commands = preset(env_cfg.robot).env.commands
    n = envs_per_family * len(families)
    cfg = dataclasses.replace(
        env_cfg,
        num_envs=n,
        episode_length_s=episode_s,
        seed=seed,
        commands=dataclasses.replace(env_cfg.commands, resample_s=episode_s + 1.0, standing_probability=0.0),
        randomization=dataclasses.replace(env_cfg.randomization, push_interval_s=(1e5, 1e5)),
    )
    env = WalkVecEnv(cfg)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    command = np.concatenate([family_commands(f, envs_per_family, commands, rng) for f in families])
    obs = env.set_commands(command)
    state = actor.initial_state(n)
    settle = round(settle_s / cfg.sim.ctrl_dt_s)
    alive = np.ones(n, dtype=bool)
    fell = np.zeros(n, dtype=bool)
    lin_sum, yaw_sum, counted_steps = np.zeros(n), np.zeros(n), np.zeros(n)
    contact = np.zeros((n, len(env.robot.foot_sites)))
    for step in range(cfg.max_episode_steps):
        mean, state = actor(normalizer(torch.as_tensor(actor_observation(obs, actor_obs))), state)
        obs, _, terminated, truncated, info = env.step(np.where(alive[:, None], mean.numpy(), 0.0))
        quat = env.rig.base_pose()[:, 3:7]
        v_body = quat_rotate_inverse(quat, env.rig.base_lin_vel_world())
        yaw_rate = env.rig.base_ang_vel_body()[:, 2]
        counted = alive & (step >= settle) & ~(terminated | truncated)
        lin_sum += np.linalg.norm(command[:, :2] - v_body[:, :2], axis=1) * counted
        yaw_sum += np.abs(command[:, 2] - yaw_rate) * counted
        counted_steps += counted
        contact += (env.rig.foot_force() > CONTACT_FORCE_THRESHOLD_N) * counted[:, None]
        fell |= info["fell"] & alive
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    env.close()
    results = {}
    for i, family in enumerate(families):
        rows = slice(i * envs_per_family, (i + 1) * envs_per_family)
        steps = counted_steps[rows]
        total = max(float(steps.sum()), 1.0)
        results[family] = FamilyResult(
            episodes=envs_per_family,
            lin_error_mps=float(lin_sum[rows].sum() / total),
            yaw_error_radps=float(yaw_sum[rows].sum() / total),
            falls=float(fell[rows].mean()),
            duty_factors=tuple(float(d) for d in contact[rows].sum(axis=0) / total),
        )
    return results


def walks(
    results: dict[str, FamilyResult], criterion: WalkCriterion = WalkCriterion(), *, averaged: bool = False
) -> bool:
    """Whether every family meets the walking criterion; with `averaged`, the linear and yaw-rate errors are
    averaged over the families first (falls and duty factors still count in every family)."""
    low, high = criterion.duty_factor
    gait = all(
        r.falls <= criterion.fall_rate and all(low <= d <= high for d in r.duty_factors) for r in results.values()
    )
    if averaged:
        count = len(results)
        lin = sum(r.lin_error_mps for r in results.values()) / count
        yaw = sum(r.yaw_error_radps for r in results.values()) / count
        return gait and lin <= criterion.lin_error_mps and yaw <= criterion.yaw_error_radps
    return gait and all(
        r.lin_error_mps <= criterion.lin_error_mps and r.yaw_error_radps <= criterion.yaw_error_radps
        for r in results.values()
    )


def summarize(results: dict[str, FamilyResult]) -> dict:
    """Plain JSON-able figures: per family, and the worst family's linear and yaw errors."""
    return {
        "families": {name: dataclasses.asdict(r) for name, r in results.items()},
        "worst_lin_error_mps": max(r.lin_error_mps for r in results.values()),
        "worst_yaw_error_radps": max(r.yaw_error_radps for r in results.values()),
        "worst_falls": max(r.falls for r in results.values()),
    }


class WalkJudge:
    """A `Runner.train(stop_when=...)` hook: every `every_s` of training, judge the policy per family on the
    full-fidelity model; True (stop) once it walks. Judging time is kept apart from training time.

    `on_judged(training_s, env_steps, results, walking)` is called after each judgement (progress lines).
    """

    def __init__(
        self,
        env_cfg: WalkConfig,
        *,
        every_s: float = 60.0,
        envs_per_family: int = 8,
        actor_obs: str = "policy",
        criterion: WalkCriterion = WalkCriterion(),
        on_judged=None,
    ):
        if not every_s > 0:
            raise ValueError(f"every_s = {every_s} must be positive")
        self.env_cfg = full_fidelity(env_cfg)
        self.every_s = every_s
        self.envs_per_family = envs_per_family
        self.actor_obs = actor_obs
        self.criterion = criterion
        self.on_judged = on_judged
        self.judging_s = 0.0
        self.history: list[dict] = []
        self.walked_at_s: float | None = None
        self._start = time.perf_counter()
        self._next_s = every_s

    @property
    def training_s(self) -> float:
        return time.perf_counter() - self._start - self.judging_s

    def __call__(self, runner) -> bool:
        training_s = self.training_s
        if training_s < self._next_s:
            return False
        self._next_s = training_s + self.every_s
        started = time.perf_counter()
        results = evaluate_families(
            runner.actor,
            runner.actor_normalizer,
            self.env_cfg,
            envs_per_family=self.envs_per_family,
            actor_obs=self.actor_obs,
        )
        walking = walks(results, self.criterion)
        self.judging_s += time.perf_counter() - started
        self.history.append(
            {"train_minutes": training_s / 60, "env_steps": runner.env_steps, "walks": walking, **summarize(results)}
        )
        if walking and self.walked_at_s is None:
            self.walked_at_s = training_s
        if self.on_judged is not None:
            self.on_judged(training_s, runner.env_steps, results, walking)
        return walking


def describe(results: dict[str, FamilyResult]) -> str:
    """One line per family: errors, falls, duty factor range."""
    lines = []
    for name, r in results.items():
        lines.append(
            f"  {name:<9} lin {r.lin_error_mps:.3f} m/s  yaw {r.yaw_error_radps:.3f} rad/s  "
            f"falls {r.falls:.2f}  duty {min(r.duty_factors):.2f}-{max(r.duty_factors):.2f}"
        )
    return "\n".join(lines)

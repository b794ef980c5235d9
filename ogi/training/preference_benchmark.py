"""Does a gait reward learned from preferences give a better-looking walk than the hand-tuned reward alone?

From the shipped walker (`go2_walk_omni`): clips of its own rollouts are labelled by the scripted training
labeller and fit the first reward model; then three arms fine-tune the walker for the same minutes: the preset's
reward only (`hand_tuned`), the preset's reward plus the model's with a KL anchor to the shipped walker and refits
on fresh labels (`preference`), and the same without refits (`preference_no_retraining`). Every walker is then
rolled out deterministically on the same simulations (same seed, commands fixed per simulation, flat ground) and
clips of the same window are compared by the held-out labeller, which no model was trained on.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ogi import checkpoints as ckpt
from ogi.training.preference import (
    PreferenceConfig,
    PreferenceRewardHook,
    save_gait_reward_model,
    train_gait_reward_model,
)
from ogi.training.preference_data import (
    FEATURE_NAMES,
    ClipRecorder,
    Clips,
    HeldOutStyleLabeller,
    LinearStyleLabeller,
    PreStep,
    gait_features,
)
from ogi.validation import ConfigError, check_int, check_range

SHIPPED_WALKER = Path(__file__).parents[1] / "policies" / "pretrained" / "go2_walk_omni"
# fine-tuning moves a walker that already walks: the learning rate of `ogi.training.distill_finetune`
FINETUNE_LEARNING_RATE = 3e-4
_TRACKING = FEATURE_NAMES.index("tracking_error_mps")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchmarkSizes:
    """Sizes of `preference_benchmark` besides the minutes per arm (defaults: about 2 minutes on 2 cores besides
    the arms: collecting and fitting the first model, then judging four walkers)."""

    collect_envs: int = 256
    collect_s: float = 20.0  # simulated seconds of the first model's clips
    noise_scales: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)  # times the walker's action std, one per env in turn
    eval_envs: int = 128
    eval_s: float = 8.0
    reference_kl_coef: float = 0.02
    # the hand-tuned arm keeps the same KL anchor, so that the learned reward is the arms' only difference
    anchor_hand_tuned: bool = True
    preference: PreferenceConfig = dataclasses.field(default_factory=PreferenceConfig)

    def __post_init__(self) -> None:
        check_int("collect_envs", self.collect_envs, 2, 100_000)
        check_range("collect_s", self.collect_s, 0.1, 1e5)
        check_int("eval_envs", self.eval_envs, 1, 100_000)
        check_range("eval_s", self.eval_s, 0.1, 1e5)
        check_range("reference_kl_coef", self.reference_kl_coef, 0.0, 1e3)
        if not self.noise_scales or any(not 0.0 <= s <= 10.0 for s in self.noise_scales):
            raise ConfigError(f"noise_scales = {self.noise_scales!r} must be numbers in [0, 10]")


@torch.no_grad()
def rollout_clips(
    actor,
    normalizer,
    env_cfg,
    cfg: PreferenceConfig,
    *,
    seconds: float,
    seed: int,
    noise_scales: tuple[float, ...] = (0.0,),
    actor_obs: str = "policy",
) -> tuple[Clips, dict[str, float]]:
    """Clips of `actor` walking `seconds` in `env_cfg`'s simulations; env i adds Gaussian noise of
    `noise_scales[i % len]` times the actor's std to its actions (0: the mean action).

    Returns the clips and the rollout's `tracking_error_mps` (mean over every step after the first `settle_s` of
    an episode) and `falls` (count) and `falls_per_env_minute`.
    """
    from ogi.envs import WalkVecEnv
    from ogi.training.config import actor_observation

    env = WalkVecEnv(env_cfg)
    obs, _ = env.reset(seed=seed)
    n, dt = env_cfg.num_envs, env_cfg.sim.ctrl_dt_s
    generator = torch.Generator().manual_seed(seed)
    noise = torch.as_tensor(np.resize(np.asarray(noise_scales, dtype=np.float32), n))[:, None]
    recorder = ClipRecorder(n, cfg.clip_steps(dt), cfg.settle_steps(dt), env.policy_layout.size, env.robot.num_joints)
    state = actor.initial_state(n)
    std = actor.log_std.exp()
    steps = max(1, round(seconds / dt))
    falls, error_sum, error_count = 0, 0.0, 0
    for _ in range(steps):
        mean, state = actor(normalizer(torch.as_tensor(actor_observation(obs, actor_obs))), state)
        action = (mean + noise * std * torch.randn(mean.shape, generator=generator)).numpy()
        before = PreStep.of(env)
        settled = recorder.episode_step >= recorder.settle_steps
        next_obs, _, terminated, truncated, info = env.step(action)
        ended = terminated | truncated
        features = gait_features(env, action, before)
        recorder.record(obs["policy"], action, features, before.command, ended)
        counted = settled & ~ended
        error_sum += float(features[counted, _TRACKING].sum())
        error_count += int(counted.sum())
        falls += int(info["fell"].sum())
        state = actor.reset_state(state, torch.as_tensor(ended))
        obs = next_obs
    env.close()
    return recorder.take(), {
        "tracking_error_mps": error_sum / max(error_count, 1),
        "falls": falls,
        "falls_per_env_minute": falls / (n * steps * dt / 60.0),
    }


def _eval_env(env_cfg, sizes: BenchmarkSizes, seed: int):
    from ogi.envs.config import TerrainConfig

    return dataclasses.replace(
        env_cfg,
        num_envs=sizes.eval_envs,
        seed=seed,
        episode_length_s=sizes.eval_s + 1.0,
        terrain=TerrainConfig(enabled=False),
        commands=dataclasses.replace(env_cfg.commands, resample_s=sizes.eval_s + 1.0, standing_probability=0.0),
        sim=dataclasses.replace(env_cfg.sim, nthread=0),
    )


def matched_win_rate(labeller, ours: Clips, theirs: Clips) -> tuple[float, int]:
    """Share of the clips of one window (same simulation, same start step, same command) for which `labeller`
    prefers `ours` over `theirs` (ties count half), and how many such pairs there were."""
    index = {(int(e), int(s)): i for i, (e, s) in enumerate(zip(theirs.env, theirs.start))}
    mine, other = [], []
    for i, key in enumerate(zip(ours.env.tolist(), ours.start.tolist())):
        j = index.get(key)
        if j is not None and np.allclose(ours.commands[i], theirs.commands[j]):
            mine.append(i)
            other.append(j)
    if not mine:
        return float("nan"), 0
    margin = labeller.score(ours.aggregates[mine]) - labeller.score(theirs.aggregates[other])
    return float(np.mean((margin > 0) + 0.5 * (margin == 0))), len(mine)


def first_reward_model(
    policy,
    pref: PreferenceConfig,
    labeller,
    out: Path,
    *,
    seconds: float,
    num_envs: int,
    seed: int,
    noise_scales: tuple[float, ...] = BenchmarkSizes.noise_scales,
):
    """Clips of `policy` (a `load_policy` result) over `seconds` in `num_envs` simulations, each env with its own
    share of action noise, labelled and fitted; the model saved in `out` with the policy as its parent.
    Returns the model, its training pairs, the fit's figures, the saved checkpoint and the number of clips."""
    actor, normalizer, train_cfg, checkpoint = policy
    collect_cfg = dataclasses.replace(
        train_cfg.env, num_envs=num_envs, seed=seed + 1, sim=dataclasses.replace(train_cfg.env.sim, nthread=0)
    )
    clips, _ = rollout_clips(
        actor, normalizer, collect_cfg, pref, seconds=seconds, seed=seed + 1, noise_scales=noise_scales
    )
    model, pairs, fit = train_gait_reward_model(clips, pref, labeller, seed=seed)
    saved = save_gait_reward_model(
        out, model, pref, parent=checkpoint, metrics=fit, pairs=len(pairs), labeller=type(labeller).__name__
    )
    return model, pairs, fit, saved, len(clips)


def finetune_from(
    name: str,
    shipped,
    out: Path,
    *,
    minutes: float,
    seed: int,
    hook: PreferenceRewardHook | None,
    reference_kl_coef: float,
    progress: bool,
    num_envs: int | None = None,
    iterations: int | None = None,
):
    """Fine-tune the walker `shipped` (a `load_policy` result) in `out / name` for `minutes` (or `iterations`):
    its critic too, its normalizer held, the learning rate at most FINETUNE_LEARNING_RATE, a KL penalty of
    `reference_kl_coef` to itself, `hook` (if any) among the runner's hooks. Returns the runner and its summary."""
    from ogi.training.ppo import FrozenPolicy
    from ogi.training.runner import Runner

    actor, normalizer, cfg, checkpoint = shipped
    ppo = dataclasses.replace(
        cfg.ppo,
        reference_kl_coef=reference_kl_coef,
        learning_rate=min(cfg.ppo.learning_rate, FINETUNE_LEARNING_RATE),
        min_learning_rate=min(cfg.ppo.min_learning_rate, FINETUNE_LEARNING_RATE),
    )
    env = dataclasses.replace(cfg.env, seed=seed, sim=dataclasses.replace(cfg.env.sim, nthread=0))
    if num_envs is not None:
        env = dataclasses.replace(env, num_envs=num_envs)
    cfg = dataclasses.replace(
        cfg, env=env, ppo=ppo, seed=seed, max_minutes=minutes, iterations=iterations or 10**9, checkpoint_every=50
    )
    reference = FrozenPolicy(actor, normalizer, cfg.env.num_envs) if reference_kl_coef > 0 else None
    runner = Runner(cfg, out / name, reference=reference)
    runner.actor.load_state_dict(actor.state_dict())
    runner.actor_normalizer.load_state_dict(normalizer.state_dict())
    # held fixed: learner and reference then read the same normalized inputs
    runner.actor_normalizer.until = max(1, int(runner.actor_normalizer.count.item()))
    # the walker's own critic: a fresh one's first advantages are noise, and they moved the walker off its gait
    state = ckpt.load_checkpoint(checkpoint.path).state
    for prefix, module in (("critic/", runner.critic), ("critic_normalizer/", runner.critic_normalizer)):
        module.load_state_dict({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)})
    runner.last_checkpoint = checkpoint
    if hook is not None:
        runner.hooks.append(hook)
    _say(progress, f"arm {name}: fine-tuning {minutes:g} min")
    summary = runner.train(progress=progress, log=False)
    _say(progress, f"arm {name}: {runner.iteration} iterations, {runner.env_steps:,} env steps")
    runner.actor.eval()
    return runner, summary


def preference_benchmark(
    *, seed: int, minutes_per_arm: float, out: Path, progress: bool = True, sizes: BenchmarkSizes | None = None
) -> dict:
    """Run the three arms from the shipped walker and judge their gaits; returns the figures (see the module doc).

    out: a fresh directory for the reward model's checkpoint, the arms' runs and `result.json`.
    sizes: everything but the minutes (None: `BenchmarkSizes()` with the preference config's seed set to `seed`).
    """
    from ogi.training.policy_loading import load_policy

    check_range("minutes_per_arm", minutes_per_arm, 0.0, 1e4)
    start = time.perf_counter()
    if sizes is None:
        sizes = BenchmarkSizes(preference=PreferenceConfig(seed=seed))
    pref = sizes.preference
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    shipped = load_policy(SHIPPED_WALKER)
    actor, normalizer, train_cfg, checkpoint = shipped
    labeller, judge = LinearStyleLabeller(), HeldOutStyleLabeller()

    model, pairs, fit, saved, clip_count = first_reward_model(
        shipped, pref, labeller, out / "reward_model", seconds=sizes.collect_s, num_envs=sizes.collect_envs, seed=seed
    )
    _say(progress, f"collected {clip_count} clips from the shipped walker ({time.perf_counter() - start:.0f} s)")
    initial_accuracy = fit["accuracy"]
    _say(
        progress,
        f"initial reward model: held-out accuracy {initial_accuracy:.3f} on {fit['test_pairs']} pairs, "
        f"{fit['train_pairs']} training pairs ({time.perf_counter() - start:.0f} s)",
    )

    dt = train_cfg.env.sim.ctrl_dt_s
    arms: dict[str, dict] = {}
    hooks: dict[str, PreferenceRewardHook] = {}
    policies = {"shipped": (actor, normalizer)}
    for name, retrain_every in (
        ("hand_tuned", None),
        ("preference", pref.retrain_every),
        ("preference_no_retraining", 0),
    ):
        hook = None
        if retrain_every is not None:
            arm_cfg = dataclasses.replace(pref, retrain_every=retrain_every)
            # each arm refits its own copy: the first model stays as it was trained
            hook = hooks[name] = PreferenceRewardHook(
                copy.deepcopy(model),
                arm_cfg,
                labeller,
                num_envs=train_cfg.env.num_envs,
                ctrl_dt_s=dt,
                initial_pairs=pairs,
            )
        runner, summary = finetune_from(
            name,
            shipped,
            out,
            minutes=minutes_per_arm,
            seed=seed,
            hook=hook,
            reference_kl_coef=sizes.reference_kl_coef if hook is not None or sizes.anchor_hand_tuned else 0.0,
            progress=progress,
        )
        policies[name] = (runner.actor, runner.actor_normalizer)
        arms[name] = {"iterations": runner.iteration, "env_steps": runner.env_steps, "train_wall_s": summary["wall_s"]}

    eval_cfg = _eval_env(train_cfg.env, sizes, seed + 2)
    evaluated: dict[str, Clips] = {}
    for name, (arm_actor, arm_normalizer) in policies.items():
        evaluated[name], walk = rollout_clips(
            arm_actor, arm_normalizer, eval_cfg, pref, seconds=sizes.eval_s, seed=seed + 2
        )
        scores = {
            "held_out_style_score": float(judge.score(evaluated[name].aggregates).mean()),
            "training_style_score": float(labeller.score(evaluated[name].aggregates).mean()),
            "eval_clips": len(evaluated[name]),
            **walk,
        }
        arms.setdefault(name, {}).update(scores)
        _say(progress, f"evaluated {name}: {json.dumps(scores)}")

    win: dict[str, dict] = {}
    for baseline in ("hand_tuned", "shipped"):
        for name in ("preference", "preference_no_retraining", "hand_tuned", "shipped"):
            if name == baseline:
                continue
            held, count = matched_win_rate(judge, evaluated[name], evaluated[baseline])
            trained, _ = matched_win_rate(labeller, evaluated[name], evaluated[baseline])
            win.setdefault(baseline, {})[name] = {"held_out": held, "training_labeller": trained, "pairs": count}
    against = win["hand_tuned"]

    def final_accuracy(hook: PreferenceRewardHook) -> float:
        # the mean of the last three measurements: one measurement of a few hundred pairs moves by a few points
        tail = [h["accuracy_fresh"] for h in hook.history[-3:]]
        return float(np.mean(tail)) if tail else float("nan")

    result = {
        "seed": seed,
        "minutes_per_arm": minutes_per_arm,
        "style_win_rate": against["preference"]["held_out"],
        "style_win_rate_training_labeller": against["preference"]["training_labeller"],
        "style_win_rate_no_retraining": against["preference_no_retraining"]["held_out"],
        "matched_pairs": against["preference"]["pairs"],
        "win_rates_against_hand_tuned": against,
        "win_rates_against_shipped": win["shipped"],
        "hand_tuned_reference_kl_coef": sizes.reference_kl_coef if sizes.anchor_hand_tuned else 0.0,
        "initial_rm_accuracy": initial_accuracy,
        "initial_rm": {k: v for k, v in fit.items()},
        "rm_accuracy_drift": {
            "with_retraining": final_accuracy(hooks["preference"]) - initial_accuracy,
            "without": final_accuracy(hooks["preference_no_retraining"]) - initial_accuracy,
        },
        "rm_accuracy_series": {name: hook.history for name, hook in hooks.items()},
        "tracking_error_mps": {name: arm["tracking_error_mps"] for name, arm in arms.items()},
        "falls": {name: arm["falls"] for name, arm in arms.items()},
        "arms": arms,
        "reward_model_checkpoint": str(saved.path),
        "wall_s": time.perf_counter() - start,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    _say(progress, f"done in {result['wall_s'] / 60:.1f} min: style_win_rate {result['style_win_rate']:.3f}")
    return result


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)

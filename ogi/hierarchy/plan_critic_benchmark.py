"""The plan critic measured: self-play rounds on training instructions, then the planner with and without the
critic on held-out instructions in held-out layouts (`critic_benchmark`, run by `benchmarks/selfplay.py`)."""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ogi.hierarchy.episodes import DecisionInputs, Episode, play_episodes
from ogi.hierarchy.plan_critic import (
    CriticActor,
    CriticConfig,
    CriticData,
    self_play,
)
from ogi.hierarchy.planner_data import ActFn
from ogi.hierarchy.planner_verifier import PlannerVerifier
from ogi.policies.planner import Planner, load_planner
from ogi.validation import check_int

SHIPPED_GENERATOR = Path(__file__).parents[1] / "policies" / "pretrained" / "go2_planner" / "dagger1"
# training layouts past those the shipped planner's pipeline drew (about 3000 with seed 0)
_FIRST_TRAINING_EPISODE = 8192


def training_episodes(seed: int, first: int, count: int) -> list[Episode]:
    """Episodes ``first .. first + count - 1`` of the training split's layouts and wording for ``seed`` (as
    :func:`ogi.hierarchy.pipeline.sample_episodes` draws them, without drawing the ones before)."""
    from ogi.envs.instructions import sample_instruction, sample_layout
    from ogi.hierarchy.pipeline import TRAIN_SEED_BASE

    episodes = []
    for index in range(first, first + count):
        rng = np.random.default_rng([TRAIN_SEED_BASE + seed, index])
        layout = sample_layout(rng)
        episodes.append(Episode(layout, sample_instruction(rng, layout, "train")))
    return episodes


def play_for_critic(env, walker, planner: Planner, episodes: Sequence[Episode], act_fn: ActFn) -> CriticData:
    """Play ``episodes`` deciding with ``act_fn``; every decision with its episode's outcome, the progress made
    after it and whether stopping there would have succeeded (read from the episode's judge)."""
    from ogi.hierarchy.planner_episodes import PlannerDecider, episode_batch

    stage_at: list[np.ndarray] = []
    stop_success: list[np.ndarray] = []
    judges: dict[int, Any] = {}

    def stopped_here(tracker, t_s: float) -> bool:
        verdict = copy.copy(tracker)  # `finish` only rebinds the judge's verdict fields: the episode's own is kept
        verdict.finish(t_s)
        return verdict.success

    def record(inputs: DecisionInputs, _choice) -> None:
        stage_at.append(np.array([tracker.stage for tracker in inputs.trackers], dtype=np.int64))
        stop_success.append(np.array([stopped_here(tr, float(t)) for tr, t in zip(inputs.trackers, inputs.times_s)]))
        judges.update({int(e): tracker for e, tracker in zip(inputs.episodes, inputs.trackers)})

    decider = PlannerDecider.of(planner, act_fn)
    outcomes, decisions = play_episodes(env, walker, episodes, decider, keep=True, on_decision=record)
    shape = (planner.config.image_height, planner.config.image_width)
    batch = episode_batch(decisions, outcomes, episodes, planner.encode, image_shape=shape)
    stages = np.array([len(e.instruction.stages) for e in episodes])
    # stages done at the end: all of them on success, else those before the one the judge stopped in
    done = np.array([stages[i] if judges[i].success else judges[i].stage for i in range(len(episodes))])
    rows = batch.episodes.numpy()
    now = np.concatenate(stage_at)
    progress = np.clip((done[rows] - now) / np.maximum(1, stages[rows] - now), 0.0, 1.0)
    return CriticData(
        batch=batch,
        progress=torch.as_tensor(progress, dtype=torch.float32),
        stop_success=torch.as_tensor(np.concatenate(stop_success), dtype=torch.float32),
    )


def compare_with_critic(
    planner: Planner,
    critic: PlannerVerifier,
    episodes: Sequence[Episode],
    cfg: CriticConfig,
    *,
    seed: int,
    num_envs: int = 64,
    rewrite=None,
) -> dict[str, Any]:
    """Play ``episodes`` with the planner alone (greedy) and with its candidates filtered by ``critic`` (no
    exploration), each arm on a fresh arena of one seed (the same layouts, instructions and simulator noise):
    both success rates, the gain, the paired counts and how often the critic overrode the greedy decision. With
    `rewrite` both arms read each instruction as it says it (`ogi.hierarchy.rewrite`)."""
    from ogi.hierarchy.pipeline import SHIPPED_WALKER, make_arena
    from ogi.hierarchy.planner_episodes import PlannerDecider

    actor = CriticActor(
        planner,
        critic,
        candidates=cfg.candidates,
        epsilon=0.0,
        veto_margin=cfg.veto_margin,
        generator=torch.Generator().manual_seed(seed + 1),
        offer_stop=cfg.stop_candidate,
    )
    outcomes = {}
    arms = (
        ("without", PlannerDecider.greedy(planner, rewrite=rewrite)),
        ("with", PlannerDecider.of(planner, actor, rewrite=rewrite)),
    )
    for arm, decider in arms:
        env, walker = make_arena(SHIPPED_WALKER, num_envs, 0.004, seed=seed + 1)
        outcomes[arm], _ = play_episodes(env, walker, episodes, decider, keep=False)
    alone, judged = outcomes["without"].success, outcomes["with"].success
    return {
        "success_without_critic": float(alone.mean()),
        "success_with_critic": float(judged.mean()),
        "critic_success_gain": float(judged.mean() - alone.mean()),
        "episodes": len(episodes),
        "paired": {
            "only_with_critic": int((judged & ~alone).sum()),
            "only_without_critic": int((alone & ~judged).sum()),
            "both": int((alone & judged).sum()),
        },
        "override_rate": actor.overrides / max(1, actor.decisions),
    }


def critic_benchmark(
    *,
    seed: int = 0,
    rounds: int = 3,
    episodes_per_round: int = 128,
    eval_episodes: int = 200,
    candidates: int = 4,
    out: Path,
    progress: bool = True,
    config: CriticConfig | None = None,
    generator: Path = SHIPPED_GENERATOR,
    num_envs: int = 64,
    seen_wording_episodes: int = 0,
    rewrite: bool = True,
) -> dict[str, Any]:
    """Self-play a critic for the planner at ``generator`` on training instructions and layouts, then play the
    same held-out instructions in held-out layouts (the protocol of ``benchmarks/planner.py``) with the planner
    alone (greedy) and with its ``candidates`` candidates filtered by the critic (:func:`compare_with_critic`);
    with ``seen_wording_episodes`` the same on training wording in fresh layouts. With ``rewrite`` the planner
    reads held-out wording as its pretrained language model says it in training words, in both arms (training
    instructions are in training words already). ``config`` (its rounds,
    episodes per round, candidates and seed are replaced by the arguments) sets the rest. Progress lines go to
    stderr."""
    from ogi.hierarchy.pipeline import SHIPPED_WALKER, make_arena, sample_episodes

    begin = time.perf_counter()
    cfg = dataclasses.replace(
        config or CriticConfig(),
        seed=seed,
        rounds=rounds,
        episodes_per_round=episodes_per_round,
        candidates=candidates,
    )
    check_int("eval_episodes", eval_episodes, 1, 10_000_000)
    check_int("seen_wording_episodes", seen_wording_episodes, 0, 10_000_000)

    def log(line: str) -> None:
        if progress:
            print(f"[{time.perf_counter() - begin:6.0f} s] {line}", file=sys.stderr, flush=True)

    loaded = load_planner(Path(generator))
    planner = loaded.planner.eval()
    env, walker = make_arena(SHIPPED_WALKER, num_envs, 0.004, seed=seed)
    drawn = 0

    def rollout(act_fn: ActFn, count: int) -> CriticData:
        nonlocal drawn
        episodes = training_episodes(seed, _FIRST_TRAINING_EPISODE + drawn, count)
        drawn += count
        return play_for_critic(env, walker, planner, episodes, act_fn)

    result = self_play(planner, rollout, cfg, Path(out) / "critic", loaded.checkpoint, log=log)
    heldout = sample_episodes(eval_episodes, "heldout", seed)
    rewriter = None
    if rewrite:
        from ogi.hierarchy.rewrite import pretrained_rewriter

        rewriter = pretrained_rewriter(Path(generator))
    compared = compare_with_critic(planner, result.critic, heldout, cfg, seed=seed, num_envs=num_envs, rewrite=rewriter)
    log(
        f"held-out: success {compared['success_without_critic']:.3f} alone, {compared['success_with_critic']:.3f} "
        f"with the critic (overrides {compared['override_rate']:.3f})"
    )
    report: dict[str, Any] = {
        "success_without_critic": compared["success_without_critic"],
        "success_with_critic": compared["success_with_critic"],
        "critic_success_gain": compared["critic_success_gain"],
        "eval_episodes": eval_episodes,
        "paired": compared["paired"],
        "eval_override_rate": compared["override_rate"],
        "rewrite": rewrite,
        "rounds": result.rounds,
    }
    if seen_wording_episodes:
        seen = sample_episodes(seen_wording_episodes, "train", seed, fresh_layouts=True)
        report["seen_wording"] = compare_with_critic(
            planner, result.critic, seen, cfg, seed=seed, num_envs=num_envs, rewrite=rewriter
        )
        log(f"seen wording in fresh layouts: gain {report['seen_wording']['critic_success_gain']:+.3f}")
    return {
        **report,
        "checkpoint": str(result.checkpoints[-1].path),
        "generator": str(loaded.checkpoint.path),
        "config": json.loads(json.dumps(dataclasses.asdict(cfg), default=str)),
        "minutes": round((time.perf_counter() - begin) / 60, 2),
    }

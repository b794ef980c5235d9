"""The planner's whole training, stage by stage, each stage a checkpoint whose parent is the one before:

    pretrain (instruction text) -> SFT on the oracle's demonstrations -> DAgger rounds (the planner walks, the
    oracle labels what it saw) -> RL (simulated success, KL to the SFT planner, unsafe-subgoal penalty)
    -> a success verifier for best-of-N

and a blind planner (no image) fine-tuned on the same data, to show what the image is worth. Episodes run in the
arena with the shipped omnidirectional walker at the training physics rate (250 Hz); instructions and layouts of the
held-out split are only ever used for evaluation.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ogi.policies
from ogi.envs.arena import ArenaConfig, ArenaVecEnv
from ogi.envs.instructions import pretraining_documents, sample_instruction, sample_layout
from ogi.hierarchy.episodes import Decider, Episode, OracleDecider, Outcomes, Rates, RelabelledDecider, play_episodes
from ogi.hierarchy.planner_data import ActFn, EpisodeBatch
from ogi.hierarchy.planner_episodes import PlannerDecider, concat_datasets, decision_dataset, episode_batch
from ogi.hierarchy.planner_rl import PlannerRLConfig, rl_planner
from ogi.hierarchy.planner_training import PlannerPretrainConfig, PlannerSFTConfig, pretrain_planner_lm, sft_planner
from ogi.hierarchy.planner_verifier import VerifierConfig, train_verifier
from ogi.hierarchy.rewrite import InstructionRewriter
from ogi.policies.planner import Planner
from ogi.training.policy_loading import policy_function
from ogi.validation import check_int, check_range

SHIPPED_WALKER = Path(ogi.policies.__file__).parent / "pretrained" / "go2_walk_omni"
# layouts of the two splits come from disjoint seed ranges
TRAIN_SEED_BASE, HELDOUT_SEED_BASE = 1_000_000, 2_000_000
SEEN_WORDING_SEED_OFFSET = 500_000  # training wording in held-out layouts: a range of its own

Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    seed: int = 0
    walker: Path = SHIPPED_WALKER
    num_envs: int = 64
    sim_dt_s: float = 0.004  # the walker's training physics; `ogi run` plays at 1 kHz
    documents: int = 6000
    pretrain: PlannerPretrainConfig = field(default_factory=lambda: PlannerPretrainConfig(steps=600, batch_size=32))
    # 768 -> 3072 demonstrations raised the held-out decision accuracy 0.83 -> 0.87 and success on training wording
    # in fresh layouts 0.44 -> 0.52
    demo_episodes: int = 2048
    # one round: the planner walks 384 training episodes greedily and the oracle labels what it saw (0.12 -> 0.16
    # held-out success with 3072 demonstrations)
    dagger_rounds: int = 1
    dagger_episodes: int = 384
    sft: PlannerSFTConfig = field(default_factory=lambda: PlannerSFTConfig(steps=5000, batch_size=128))
    dagger_sft_steps: int = 1500
    rl: PlannerRLConfig = field(default_factory=lambda: PlannerRLConfig(iterations=6, episodes_per_iteration=64))
    verifier_episodes: int = 192
    verifier: VerifierConfig = field(default_factory=lambda: VerifierConfig(steps=600))
    best_of_n: int = 4
    eval_episodes: int = 200
    # training wording in fresh layouts: what the planner does where only the scene is new (0: skip)
    seen_wording_episodes: int = 100
    stages: tuple[str, ...] = ("oracle", "sft", "sft_rl", "best_of_n", "blind", "sft_rl_literal")
    # the planners read each instruction as their pretrained language model says it in training wording
    # (`ogi.hierarchy.rewrite`); "sft_rl_literal" is the RL planner reading the words as given
    rewrite: bool = True
    max_episode_s: float | None = None  # caps every instruction's time limit (quick checks only)

    def __post_init__(self) -> None:
        check_int("num_envs", self.num_envs, 1, 4096)
        check_range("sim_dt_s", self.sim_dt_s, 1e-4, 0.02)
        for name in ("documents", "demo_episodes", "eval_episodes", "verifier_episodes"):
            check_int(name, getattr(self, name), 2, 10_000_000)
        check_int("seen_wording_episodes", self.seen_wording_episodes, 0, 10_000_000)
        check_int("dagger_rounds", self.dagger_rounds, 0, 100)
        check_int("best_of_n", self.best_of_n, 1, 64)


def sample_episodes(count: int, split: str, seed: int, *, fresh_layouts: bool = False) -> list[Episode]:
    """`count` episodes of `split`, each on its own random layout; the held-out split's layouts come from a seed
    range the training split never uses, and so do the layouts of training wording with `fresh_layouts`."""
    if fresh_layouts:
        base = HELDOUT_SEED_BASE + SEEN_WORDING_SEED_OFFSET
    else:
        base = TRAIN_SEED_BASE if split == "train" else HELDOUT_SEED_BASE
    episodes = []
    for index in range(count):
        rng = np.random.default_rng([base + seed, index])
        layout = sample_layout(rng)
        episodes.append(Episode(layout, sample_instruction(rng, layout, split)))
    return episodes


def make_arena(walker: Path, num_envs: int, sim_dt_s: float, *, seed: int = 0):
    """The arena with `num_envs` simulations at `sim_dt_s` physics, and the walking policy of `walker`."""
    act, walk = policy_function(Path(walker), num_envs)
    walk = dataclasses.replace(walk, num_envs=num_envs, seed=seed, sim=dataclasses.replace(walk.sim, sim_dt_s=sim_dt_s))
    return ArenaVecEnv(ArenaConfig(), walk), act


def _image_shape(planner: Planner) -> tuple[int, int]:
    return planner.config.image_height, planner.config.image_width


@dataclass
class PipelineResult:
    success: dict[str, float]
    detail: dict[str, Any]
    rates: Rates
    checkpoints: dict[str, Path]


class PlannerPipeline:
    """Runs the stages in order under `out_dir` (one run directory per stage) and evaluates what they made."""

    def __init__(self, cfg: PipelineConfig, out_dir: Path, log: Log = print):
        self.cfg, self.out_dir, self.log = cfg, Path(out_dir), log
        self.env, self.walker = make_arena(cfg.walker, cfg.num_envs, cfg.sim_dt_s, seed=cfg.seed)
        self.rates = Rates()
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self._drawn = 0  # training episodes drawn so far: each play gets fresh layouts

    def play(self, episodes: Sequence[Episode], decider: Decider, what: str, *, keep: bool = True):
        start = time.perf_counter()
        outcomes, decisions = play_episodes(
            self.env, self.walker, episodes, decider, keep=keep, rates=self.rates, max_seconds=self.cfg.max_episode_s
        )
        self.log(
            f"{what}: {len(episodes)} episodes, success {outcomes.success_rate:.3f}, "
            f"falls {outcomes.fell.mean():.3f}, {time.perf_counter() - start:.0f} s"
        )
        return outcomes, decisions

    def train_episodes(self, count: int) -> list[Episode]:
        episodes = sample_episodes(self._drawn + count, "train", self.cfg.seed)[self._drawn :]
        self._drawn += count
        return episodes

    def demonstrations(self, episodes: Sequence[Episode], decider: Decider, what: str, offset: int, planner):
        _, decisions = self.play(episodes, decider, what)
        return decision_dataset(
            decisions, episodes, planner.encode, image_shape=_image_shape(planner), episode_offset=offset
        )

    def rollout_fn(self, planner: Planner) -> Callable[[ActFn, int], EpisodeBatch]:
        def rollout(act_fn: ActFn, count: int) -> EpisodeBatch:
            episodes = self.train_episodes(count)
            decider = PlannerDecider.of(planner, act_fn)
            outcomes, decisions = self.play(episodes, decider, "rl rollout")
            return episode_batch(decisions, outcomes, episodes, planner.encode, image_shape=_image_shape(planner))

        return rollout

    def run(self) -> PipelineResult:
        cfg, out = self.cfg, self.out_dir
        timings: dict[str, float] = {}
        tick = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal tick
            now = time.perf_counter()
            timings[name] = round(now - tick, 1)
            tick = now

        documents = pretraining_documents(cfg.documents, cfg.seed)
        pre = pretrain_planner_lm(documents, cfg.pretrain, out / "pretrain")
        self.log(f"pretrain: perplexity {pre.language_model.perplexity:.2f}")
        lap("pretrain")
        planner = pre.planner
        tokenizer = planner.tokenizer
        # the pretrained language model, frozen before fine-tuning changes the planner's copy of it
        rewriter = InstructionRewriter(copy.deepcopy(planner.transformer), tokenizer) if cfg.rewrite else None

        demo_episodes = self.train_episodes(cfg.demo_episodes)
        data = self.demonstrations(demo_episodes, OracleDecider(), "oracle demonstrations", 0, planner)
        offset = cfg.demo_episodes
        lap("demonstrations")
        blind = Planner(dataclasses.replace(planner.config, vision=False), tokenizer)
        blind.load_state_dict(
            {k: v for k, v in planner.state_dict().items() if not k.startswith("vision_encoder.")}, strict=False
        )
        sft = sft_planner(planner, data, cfg.sft, out / "sft", pre.checkpoint)
        self.log(f"sft: held-out joint accuracy {sft.heldout.joint:.3f} on {sft.heldout_decisions} decisions")
        parent = sft.checkpoint
        datasets = [data]
        for round_index in range(cfg.dagger_rounds):
            episodes = self.train_episodes(cfg.dagger_episodes)
            # the planner as it will be judged (greedy) visits its own states; the oracle says what it should do
            relabel = RelabelledDecider(PlannerDecider.greedy(planner), OracleDecider())
            datasets.append(self.demonstrations(episodes, relabel, f"dagger round {round_index + 1}", offset, planner))
            offset += len(episodes)
            data = concat_datasets(datasets, tokenizer.pad_id)
            round_cfg = dataclasses.replace(cfg.sft, steps=cfg.dagger_sft_steps, seed=cfg.sft.seed + round_index + 1)
            sft = sft_planner(planner, data, round_cfg, out / f"dagger{round_index + 1}", parent)
            parent = sft.checkpoint
            self.log(f"dagger sft {round_index + 1}: held-out joint accuracy {sft.heldout.joint:.3f}")
        lap("sft")
        sft_planner_copy = Planner(planner.config, tokenizer)
        sft_planner_copy.load_state_dict(planner.state_dict())

        blind_cfg = dataclasses.replace(cfg.sft, steps=cfg.sft.steps + cfg.dagger_rounds * cfg.dagger_sft_steps)
        blind_sft = sft_planner(blind, data, blind_cfg, out / "blind", pre.checkpoint)
        self.log(f"blind sft: held-out joint accuracy {blind_sft.heldout.joint:.3f}")
        lap("blind_sft")

        rl = rl_planner(
            planner,
            sft_planner_copy,
            self.rollout_fn(planner),
            cfg.rl,
            out / "rl",
            parent,
            log=lambda i, n, f: self.log(f"rl {i}/{n}: success {f['success_rate']:.3f} kl {f['kl']:.4f}"),
        )
        lap("rl")

        episodes = self.train_episodes(cfg.verifier_episodes)
        outcomes, decisions = self.play(episodes, PlannerDecider.sampling(planner, self.generator), "verifier data")
        batch = episode_batch(decisions, outcomes, episodes, planner.encode, image_shape=_image_shape(planner))
        verifier = train_verifier(planner, batch, cfg.verifier, out / "verifier", rl.best)
        self.log(f"verifier: held-out accuracy {verifier.heldout_accuracy:.3f} (base rate {verifier.base_rate:.3f})")
        lap("verifier")

        heldout = sample_episodes(cfg.eval_episodes, "heldout", cfg.seed)
        deciders = {
            "oracle": lambda: OracleDecider(),
            "sft": lambda: PlannerDecider.greedy(sft_planner_copy, rewrite=rewriter),
            "sft_rl": lambda: PlannerDecider.greedy(planner, rewrite=rewriter),
            "best_of_n": lambda: PlannerDecider.best_of_n(
                planner, verifier.verifier, cfg.best_of_n, self.generator, rewrite=rewriter
            ),
            "blind": lambda: PlannerDecider.greedy(blind, rewrite=rewriter),
            "sft_rl_literal": lambda: PlannerDecider.greedy(planner),
        }
        success, detail = {}, {}
        for name in cfg.stages:
            outcomes, _ = self.play(heldout, deciders[name](), f"held-out {name}", keep=False)
            success[name] = outcomes.success_rate
            detail[name] = _summary(outcomes, heldout)
        if cfg.seen_wording_episodes:
            seen = sample_episodes(cfg.seen_wording_episodes, "train", cfg.seed, fresh_layouts=True)
            detail["seen_wording"] = {}
            for name in ("oracle", "sft", "sft_rl", "blind"):
                if name in cfg.stages:
                    outcomes, _ = self.play(seen, deciders[name](), f"seen wording {name}", keep=False)
                    detail["seen_wording"][name] = _summary(outcomes, seen)
        lap("evaluation")
        detail["timings_s"] = timings
        detail["sft_heldout_accuracy"] = dataclasses.asdict(sft.heldout)
        detail["rl_history"] = [{k: round(float(v), 4) for k, v in h.items()} for h in rl.history]
        detail["verifier"] = {"heldout_accuracy": verifier.heldout_accuracy, "base_rate": verifier.base_rate}
        checkpoints = {
            "pretrain": pre.checkpoint.path,
            "sft": sft.checkpoint.path,
            "sft_rl": rl.best.path,
            "verifier": verifier.checkpoint.path,
            "blind": blind_sft.checkpoint.path,
        }
        return PipelineResult(success=success, detail=detail, rates=self.rates, checkpoints=checkpoints)


def _summary(outcomes: Outcomes, episodes: Sequence[Episode]) -> dict[str, Any]:
    """Success per novelty and per kind, falls, and why episodes failed."""
    by_novelty: dict[str, list[bool]] = {}
    by_kind: dict[str, list[bool]] = {}
    for outcome, episode in zip(outcomes.success, episodes):
        by_novelty.setdefault(episode.instruction.novelty or "none", []).append(bool(outcome))
        by_kind.setdefault(episode.instruction.kind, []).append(bool(outcome))
    reasons: dict[str, int] = {}
    for reason in outcomes.reasons:
        reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "success": outcomes.success_rate,
        "falls": float(outcomes.fell.mean()),
        "mean_path_m": float(outcomes.path_m.mean()),
        "by_novelty": {k: round(float(np.mean(v)), 3) for k, v in sorted(by_novelty.items())},
        "by_kind": {k: round(float(np.mean(v)), 3) for k, v in sorted(by_kind.items())},
        "reasons": dict(sorted(reasons.items())),
    }

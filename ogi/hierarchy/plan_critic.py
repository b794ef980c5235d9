"""A plan critic trained by generator-critic self-play: the frozen planner (the generator) proposes candidate
(stage, subgoal) decisions, the critic picks one, the picked plans are played in simulation, and the critic learns
from what its own picks led to.

The critic is a :class:`PlannerVerifier` (its own copy of the planner's trunk and a success head), read as
Q(decision inputs, candidate) = P(the episode succeeds | the candidate is executed here). At every decision
:class:`CriticActor` asks the generator for its greedy decision g and ``candidates`` sampled ones c_1..c_N (with
``stop_candidate``, one more: the stop with g's stage) and

    executes c_i*, i* = argmax_i Q(c_i),  when Q(c_i*) > Q(g) + veto_margin,  else g (the veto),

so the critic can only move the planner off its most likely decision where it rates another one clearly better.
With probability ``epsilon`` per decision a uniformly drawn sampled c_i is executed instead (exploration: the
critic's own choices and their alternatives both get tested; the offered stop is never drawn, it would end the
episode). The first round has no trained critic and executes the generator's samples.

Self-play round r (1-based): episodes of training instructions in training layouts are played with the critic
of round r - 1; every executed decision is labelled with its episode's outcome, shaped by progress:

    target = y + (1 - y) * progress_weight * (stages done after the decision / stages left at it),

y the episode's success. With ``stop_candidate`` every played decision also labels the stop there with the
judge's verdict had the episode stopped at that moment: the one candidate whose outcome is known exactly without
playing it (the shipped planner's held-out failures are mostly stops in the wrong place and time-outs). The data of
rounds 1..r are aggregated (as DAgger aggregates) and the critic is trained further on them with binary
cross-entropy, then saved (stage "critic", parent: the previous round's critic, or the generator for round 1).
Round r + 1 plays with that critic.
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
import torch.nn.functional as F

from ogi.checkpoints import Checkpoint, CheckpointError
from ogi.hierarchy.planner_data import ActFn, EpisodeBatch
from ogi.hierarchy.planner_verifier import PlannerVerifier
from ogi.lm.config import OptimizerConfig
from ogi.lm.schedule import make_optimizer, optimizer_step
from ogi.policies.planner import Planner, PlannerInputs, load_planner, save_planner
from ogi.validation import ConfigError, check_int, check_range

CRITIC_STAGE = "critic"
_HEAD_PREFIX = "critic."

Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class CriticConfig:
    seed: int = 0
    rounds: int = 3
    episodes_per_round: int = 128
    candidates: int = 4
    """Sampled candidates per decision, besides the generator's greedy one."""
    epsilon: float = 0.2
    """Per decision: the chance of executing a uniformly drawn sampled candidate instead of the critic's pick."""
    veto_margin: float = 0.02
    """A sampled candidate replaces the greedy decision only when it scores this much higher (in probability)."""
    progress_weight: float = 0.5
    """Weight of a failed episode's progress after a decision in that decision's target (0: outcome only)."""
    steps_per_round: int = 200
    batch_size: int = 64
    heldout_every: int = 10
    """Every this many-th episode of the aggregated data is held out of training to measure the critic."""
    stop_candidate: bool = True
    """Offer the stop (with the greedy stage) as a candidate at every decision, and train on what stopping at every
    played decision would have scored (the judge's verdict had the episode stopped there: an exact label)."""
    train_trunk: bool = True
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(learning_rate=5e-4, eta_min=5e-5, weight_decay=0.0)
    )

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("rounds", self.rounds, 1, 1000)
        check_int("episodes_per_round", self.episodes_per_round, 2, 10_000_000)
        check_int("candidates", self.candidates, 1, 64)
        check_range("epsilon", self.epsilon, 0.0, 1.0)
        check_range("veto_margin", self.veto_margin, 0.0, 1.0)
        check_range("progress_weight", self.progress_weight, 0.0, 1.0)
        check_int("steps_per_round", self.steps_per_round, 1, 10_000_000)
        check_int("batch_size", self.batch_size, 1, 100_000)
        check_int("heldout_every", self.heldout_every, 2, 1_000_000)
        for name in ("stop_candidate", "train_trunk"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} = {getattr(self, name)!r} must be true or false")


@dataclass(frozen=True, kw_only=True)
class CriticData:
    """Played decisions with their episodes' outcomes (``batch``) and ``progress`` ``(D,)`` in [0, 1]: the share
    of the instruction's stages left at each decision that were done by its episode's end (1 on success);
    ``stop_success`` ``(D,)``, where known: 1 where stopping at the decision would have succeeded."""

    batch: EpisodeBatch
    progress: torch.Tensor
    stop_success: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for name in ("progress", "stop_success"):
            tensor = getattr(self, name)
            if tensor is not None and tensor.shape != self.batch.stages.shape:
                raise ValueError(f"CriticData.{name} has shape {tuple(tensor.shape)}, one per decision needed")

    def targets(self, progress_weight: float) -> torch.Tensor:
        """target = y + (1 - y) * progress_weight * progress, ``(D,)``."""
        success = self.batch.success.float()[self.batch.episodes.long()]
        return success + (1.0 - success) * progress_weight * self.progress.float()


CriticRollout = Callable[[ActFn, int], CriticData]
"""rollout(act_fn, episodes) plays ``episodes`` fresh training episodes, deciding with ``act_fn``."""


def concat_critic_data(parts: Sequence[CriticData], pad_id: int) -> CriticData:
    """One data set of several plays: episodes renumbered after one another, prompts re-padded with ``pad_id``."""
    if not parts:
        raise ValueError("concat_critic_data needs at least one part")
    width = max(part.batch.prompt_ids.shape[1] for part in parts)
    offsets = np.cumsum([0] + [part.batch.num_episodes for part in parts[:-1]])
    batches = [part.batch for part in parts]

    def cat(name: str) -> torch.Tensor:
        return torch.cat([getattr(batch, name) for batch in batches])

    names = ("images", "states", "prev_stages", "prompt_lengths", "stages", "subgoals", "log_probs")
    batch = EpisodeBatch(
        **{name: cat(name) for name in names},
        prompt_ids=torch.cat([F.pad(b.prompt_ids, (0, width - b.prompt_ids.shape[1]), value=pad_id) for b in batches]),
        episodes=torch.cat([b.episodes + int(offset) for b, offset in zip(batches, offsets)]),
        decision_index=cat("decision_index"),
        unsafe=cat("unsafe"),
        success=cat("success"),
    )
    stops = [part.stop_success for part in parts]
    return CriticData(
        batch=batch,
        progress=torch.cat([part.progress for part in parts]),
        stop_success=None if any(stop is None for stop in stops) else torch.cat(stops),
    )


@torch.no_grad()
def propose(
    planner: Planner, inputs: PlannerInputs, n: int, generator: torch.Generator, *, stop: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The planner's greedy (stage, subgoal) and ``n`` drawn ones per row: stages, subgoals and their joint
    log-probabilities ``(B, 1 + n)``, column 0 the greedy one; with ``stop`` a last column ``(B, 2 + n)``: the
    greedy stage and the stop. As ``planner.act`` draws them, with one pass for the stage and one per distinct
    (row, stage) for the subgoal."""
    was_training = planner.training
    planner.eval()
    num_stages = planner.config.num_stages
    hidden = planner.hidden_after(*inputs)[:, 0]
    stage_log_probs = torch.log_softmax(planner.transformer.logits(hidden)[:, planner.stage_token_ids], dim=-1)
    drawn = torch.multinomial(stage_log_probs.exp(), n, replacement=True, generator=generator)
    stages = torch.cat([stage_log_probs.argmax(dim=1, keepdim=True), drawn], dim=1)
    rows = torch.arange(stages.shape[0])[:, None].expand_as(stages)
    pairs, inverse = torch.unique(rows * num_stages + stages, return_inverse=True)
    pair_rows, pair_stages = pairs // num_stages, pairs % num_stages
    subgoal_hidden = planner.hidden_after(
        *(tensor[pair_rows] for tensor in inputs), (planner.stage_token_ids[pair_stages],)
    )[:, 1]
    pair_log_probs = torch.log_softmax(planner.transformer.logits(subgoal_hidden)[:, planner.subgoal_token_ids], -1)
    subgoal_log_probs = pair_log_probs[inverse]  # (B, 1 + n, K)
    subgoals = torch.cat(
        [
            subgoal_log_probs[:, 0].argmax(dim=1, keepdim=True),
            torch.multinomial(subgoal_log_probs[:, 1:].flatten(0, 1).exp(), 1, generator=generator).view(-1, n),
        ],
        dim=1,
    )
    if stop:
        stages = torch.cat([stages, stages[:, :1]], dim=1)
        subgoals = torch.cat([subgoals, torch.full_like(subgoals[:, :1], planner.config.stop_subgoal)], dim=1)
        subgoal_log_probs = torch.cat([subgoal_log_probs, subgoal_log_probs[:, :1]], dim=1)
    log_probs = stage_log_probs.gather(1, stages) + subgoal_log_probs.gather(2, subgoals[..., None]).squeeze(2)
    planner.train(was_training)
    return stages, subgoals, log_probs


class CriticActor:
    """An act function over the generator's candidates with the critic's veto and ``epsilon`` exploration (see the
    module docstring); ``critic=None`` executes a sampled candidate at every decision. With ``offer_stop`` the stop
    (with the greedy stage) is one more candidate for the critic, never an exploratory one. Counts what it did."""

    def __init__(
        self,
        planner: Planner,
        critic: PlannerVerifier | None,
        *,
        candidates: int,
        epsilon: float,
        veto_margin: float,
        generator: torch.Generator,
        offer_stop: bool = False,
    ):
        check_int("candidates", candidates, 1, 64)
        check_range("epsilon", epsilon, 0.0, 1.0)
        check_range("veto_margin", veto_margin, 0.0, 1.0)
        self.planner, self.critic = planner, critic
        self.candidates, self.epsilon, self.veto_margin = candidates, epsilon, veto_margin
        self.generator, self.offer_stop = generator, offer_stop
        self.decisions = self.overrides = self.explored = 0

    @torch.no_grad()
    def scores(self, inputs: PlannerInputs, stages: torch.Tensor, subgoals: torch.Tensor) -> torch.Tensor:
        """The critic's success probabilities of candidates ``(B, M)`` at ``inputs``: each distinct candidate of a
        row scored once; rows whose candidates are all column 0's, and every row without a critic, score 0."""
        scores = torch.zeros(stages.shape)
        if self.critic is None:
            return scores
        count = self.planner.config.num_subgoals
        rows = torch.arange(stages.shape[0])[:, None].expand_as(stages)
        keys = (rows * self.planner.config.num_stages + stages) * count + subgoals
        undecided = (keys != keys[:, :1]).any(dim=1)
        unique, inverse = torch.unique(keys[undecided], return_inverse=True)
        if unique.numel() == 0:
            return scores
        row, cell = unique // count, unique % count
        pick = row // self.planner.config.num_stages
        probability = self.critic.success_probability(
            *(tensor[pick] for tensor in inputs), row % self.planner.config.num_stages, cell
        )
        scores[undecided] = probability[inverse]
        return scores

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stages, subgoals, log_probs) ``(B,)`` executed at ``inputs`` (as :data:`PlannerInputs`)."""
        stages, subgoals, log_probs = propose(
            self.planner, inputs, self.candidates, self.generator, stop=self.offer_stop and self.critic is not None
        )
        batch = stages.shape[0]
        scores = self.scores(inputs, stages, subgoals)
        best = 1 + scores[:, 1:].argmax(dim=1)
        beats_greedy = scores.gather(1, best[:, None]).squeeze(1) > scores[:, 0] + self.veto_margin
        pick = torch.where(beats_greedy, best, torch.zeros_like(best))
        explore = torch.rand(batch, generator=self.generator) < (1.0 if self.critic is None else self.epsilon)
        drawn = 1 + torch.randint(0, self.candidates, (batch,), generator=self.generator)
        pick = torch.where(explore, drawn, pick)[:, None]
        chosen = [tensor.gather(1, pick).squeeze(1) for tensor in (stages, subgoals, log_probs)]
        differs = (chosen[0] != stages[:, 0]) | (chosen[1] != subgoals[:, 0])
        self.decisions += batch
        self.explored += int(explore.sum())
        self.overrides += int((differs & ~explore).sum())
        return chosen[0], chosen[1], chosen[2]


@dataclass(frozen=True, kw_only=True)
class CriticFit:
    final_loss: float
    heldout_accuracy: float
    """Held-out decisions whose episode outcome the critic's p > 0.5 calls right."""
    heldout_brier: float
    """mean (p - success)^2 over held-out decisions."""
    base_rate: float
    """Success rate of the held-out decisions' episodes."""
    heldout_stop_accuracy: float
    """Held-out decisions whose stop verdict the critic's p(stop) > 0.5 calls right (-1 without stop labels)."""
    stop_base_rate: float
    """Share of held-out decisions where stopping would have succeeded (-1 without stop labels)."""


def fit_critic(critic: PlannerVerifier, data: CriticData, cfg: CriticConfig, generator: torch.Generator) -> CriticFit:
    """``cfg.steps_per_round`` steps of L = -[t log sigma(z) + (1 - t) log(1 - sigma(z))] on ``data``'s training
    episodes (all but every ``heldout_every``-th), t the shaped targets of the executed candidates and, with
    ``cfg.stop_candidate`` and stop labels, as many rows of the stop at the same decisions with their verdicts; the
    critic is trained in place."""
    batch = data.batch
    targets = data.targets(cfg.progress_weight)
    with_stops = cfg.stop_candidate and data.stop_success is not None
    stop = critic.trunk.config.stop_subgoal
    is_heldout = batch.episodes.long() % cfg.heldout_every == 0
    train_rows, heldout_rows = torch.nonzero(~is_heldout).squeeze(1), torch.nonzero(is_heldout).squeeze(1)
    if train_rows.numel() == 0 or heldout_rows.numel() == 0:
        raise ConfigError(
            f"the critic needs more than {cfg.heldout_every} episodes: one in {cfg.heldout_every} is held out"
        )
    critic.trunk.requires_grad_(cfg.train_trunk)
    optimizer = make_optimizer(critic, cfg.optimizer)
    # every training row: (decision, subgoal, target); the stop rows keep the executed stage
    rows, subgoals, row_targets = train_rows, batch.subgoals[train_rows], targets[train_rows]
    if with_stops:
        rows = torch.cat([rows, train_rows])
        subgoals = torch.cat([subgoals, torch.full_like(subgoals, stop)])
        row_targets = torch.cat([row_targets, data.stop_success.float()[train_rows]])
    critic.train()
    loss_value = float("nan")
    for step in range(cfg.steps_per_round):
        draw = torch.randint(0, rows.numel(), (cfg.batch_size,), generator=generator)
        pick = rows[draw]
        logits = critic(*batch.inputs(pick), batch.stages[pick], subgoals[draw])
        loss = F.binary_cross_entropy_with_logits(logits, row_targets[draw])
        optimizer_step(critic, optimizer, loss, step=step, total_steps=cfg.steps_per_round, config=cfg.optimizer)
        loss_value = float(loss.detach())
    critic.eval()
    probability = torch.cat(
        [
            critic.success_probability(*batch.inputs(rows), batch.stages[rows], batch.subgoals[rows])
            for rows in heldout_rows.split(512)
        ]
    )
    truth = batch.success.float()[batch.episodes.long()][heldout_rows]
    stop_accuracy = stop_base_rate = -1.0
    if with_stops:
        stop_probability = torch.cat(
            [
                critic.success_probability(*batch.inputs(rows), batch.stages[rows], torch.full_like(rows, stop))
                for rows in heldout_rows.split(512)
            ]
        )
        stop_truth = data.stop_success.float()[heldout_rows]
        stop_accuracy = float(((stop_probability > 0.5).float() == stop_truth).float().mean())
        stop_base_rate = float(stop_truth.mean())
    return CriticFit(
        final_loss=loss_value,
        heldout_accuracy=float(((probability > 0.5).float() == truth).float().mean()),
        heldout_brier=float(((probability - truth) ** 2).mean()),
        base_rate=float(truth.mean()),
        heldout_stop_accuracy=stop_accuracy,
        stop_base_rate=stop_base_rate,
    )


@dataclass(frozen=True, kw_only=True)
class SelfPlayResult:
    critic: PlannerVerifier
    rounds: list[dict[str, Any]]
    """Per round: its episodes' success with the critic of the round before, what the actor did, the fit."""
    checkpoints: list[Checkpoint]
    """The critic saved after each round, each the previous one's child."""


def self_play(
    planner: Planner,
    rollout: CriticRollout,
    cfg: CriticConfig,
    out_dir: Path,
    parent: Checkpoint | None,
    *,
    log: Log | None = None,
) -> SelfPlayResult:
    """``cfg.rounds`` rounds of play (with the critic of the round before) and training on the aggregated plays;
    ``planner`` (the generator) is left untouched. Checkpoints go to ``out_dir`` (one run, step = training steps)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    critic = PlannerVerifier(copy.deepcopy(planner))
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        critic.head = PlannerVerifier(planner).head
    critic.eval()
    acting: PlannerVerifier | None = None
    parts: list[CriticData] = []
    rounds: list[dict[str, Any]] = []
    checkpoints: list[Checkpoint] = []
    for round_index in range(1, cfg.rounds + 1):
        start = time.perf_counter()
        actor = CriticActor(
            planner,
            acting,
            candidates=cfg.candidates,
            epsilon=cfg.epsilon,
            veto_margin=cfg.veto_margin,
            generator=generator,
            offer_stop=cfg.stop_candidate,
        )
        played = rollout(actor, cfg.episodes_per_round)
        parts.append(played)
        data = concat_critic_data(parts, planner.tokenizer.pad_id)
        fit = fit_critic(critic, data, cfg, generator)
        stats = {
            "round": round_index,
            "episodes": played.batch.num_episodes,
            "success": float(played.batch.success.float().mean()),
            "decisions": actor.decisions,
            "override_rate": actor.overrides / max(1, actor.decisions),
            "explore_rate": actor.explored / max(1, actor.decisions),
            "trained_episodes": data.batch.num_episodes,
            "trained_decisions": int(data.batch.stages.shape[0]),
            "stop_labels": data.stop_success is not None and cfg.stop_candidate,
            **dataclasses.asdict(fit),
            "seconds": round(time.perf_counter() - start, 1),
        }
        parent = save_planner(
            out_dir,
            critic.trunk,
            stage=CRITIC_STAGE,
            stage_config=dataclasses.asdict(cfg),
            step=round_index * cfg.steps_per_round,
            iteration=round_index,
            data_manifest={
                "rounds": round_index,
                "episodes": data.batch.num_episodes,
                "decisions": stats["trained_decisions"],
            },
            eval_scores={k: float(stats[k]) for k in ("success", "override_rate", "heldout_accuracy", "base_rate")},
            parent=parent,
            heads={f"{_HEAD_PREFIX}{name}": tensor for name, tensor in critic.head.state_dict().items()},
        )
        checkpoints.append(parent)
        rounds.append(stats)
        if log is not None:
            log(
                f"critic round {round_index}/{cfg.rounds}: success {stats['success']:.3f} "
                f"(overrides {stats['override_rate']:.3f}, explored {stats['explore_rate']:.3f}), "
                f"held-out accuracy {fit.heldout_accuracy:.3f} (base rate {fit.base_rate:.3f}), stop accuracy "
                f"{fit.heldout_stop_accuracy:.3f} (base rate {fit.stop_base_rate:.3f}), "
                f"{stats['seconds']:.0f} s"
            )
        # the next round plays with a frozen copy of the critic as it is now
        acting = copy.deepcopy(critic).eval()
    return SelfPlayResult(critic=critic, rounds=rounds, checkpoints=checkpoints)


def load_critic(path: Path) -> PlannerVerifier:
    """A critic saved by :func:`self_play` (or the newest valid one of its run directory)."""
    loaded = load_planner(path, expect_stage=(CRITIC_STAGE,))
    critic = PlannerVerifier(loaded.planner)
    head = {k.removeprefix(_HEAD_PREFIX): v for k, v in loaded.heads.items() if k.startswith(_HEAD_PREFIX)}
    try:
        critic.head.load_state_dict(head)
    except RuntimeError as error:
        raise CheckpointError(f"{loaded.checkpoint.path}: critic head does not fit: {error}") from None
    return critic.eval()

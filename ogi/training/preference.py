"""A gait-style reward model learned from preferences between clips of the walker's own rollouts.

r(o_t, a_t) is a small MLP over one step's policy observation and action; a clip's reward is its mean over the
clip's steps, R = (1/L) sum_t r(o_t, a_t), and the model is fitted to labelled pairs with the Bradley-Terry loss
L = -log sigmoid(R_w - R_l) (`ogi.lm.reward_model.bradley_terry_loss`). The clips and labellers are in
`ogi.training.preference_data`; `PreferenceRewardHook` adds the model's reward to the env's during PPO and keeps
the model current on the policy's fresh clips.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ogi import checkpoints as ckpt
from ogi.lm.reward_model import bradley_terry_loss
from ogi.training.hooks import RolloutHook
from ogi.training.preference_data import ClipRecorder, Clips, PreStep, gait_features, label_pairs, pair_by_command
from ogi.validation import ConfigError, check_int, check_range

ARCHITECTURE = "gait_reward_mlp"


@dataclass(frozen=True, kw_only=True)
class PreferenceConfig:
    """Clips, reward-model training and the fine-tuning hook's schedule."""

    clip_s: float = 1.0  # length of a clip
    settle_s: float = 0.5  # an episode's first seconds are never clipped
    hidden_sizes: tuple[int, ...] = (64, 64)
    epochs: int = 30  # of the first fit
    retrain_epochs: int = 4  # of each refit, warm-started from the current model
    batch_pairs: int = 128
    learning_rate: float = 1e-3
    holdout_fraction: float = 0.2  # of the first fit's pairs, kept out to measure its accuracy
    max_command_gap: float = 0.3  # paired clips' commands differ by at most this (m/s, rad/s)
    reward_weight: float = 0.02  # per policy step, times the normalized model reward
    measure_every: int = 10  # iterations between labelling fresh pairs and measuring accuracy on them (0: never)
    retrain_every: int = 10  # iterations between refits on all labelled pairs (0: never); a multiple of measure_every
    fresh_pairs: int = 256  # pairs labelled at each measurement
    max_pairs: int = 3072  # the refits' data: the newest labelled pairs
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("clip_s", self.clip_s, 0.04, 60.0)
        check_range("settle_s", self.settle_s, 0.0, 60.0)
        check_int("epochs", self.epochs, 1, 100_000)
        check_int("retrain_epochs", self.retrain_epochs, 1, 100_000)
        check_int("batch_pairs", self.batch_pairs, 1, 1 << 20)
        check_range("learning_rate", self.learning_rate, 1e-7, 1.0)
        check_range("holdout_fraction", self.holdout_fraction, 0.0, 0.9)
        check_range("max_command_gap", self.max_command_gap, 0.0, 100.0)
        check_range("reward_weight", self.reward_weight, 0.0, 100.0)
        check_int("measure_every", self.measure_every, 0, 1_000_000)
        check_int("retrain_every", self.retrain_every, 0, 1_000_000)
        check_int("fresh_pairs", self.fresh_pairs, 1, 1_000_000)
        check_int("max_pairs", self.max_pairs, 1, 1_000_000)
        check_int("seed", self.seed, 0, 2**63 - 1)
        if not self.hidden_sizes or any(
            not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in self.hidden_sizes
        ):
            raise ConfigError(f"hidden_sizes = {self.hidden_sizes!r} must be positive integers")
        if self.retrain_every and (not self.measure_every or self.retrain_every % self.measure_every):
            raise ConfigError(
                f"retrain_every = {self.retrain_every} must be 0 or a multiple of measure_every = {self.measure_every}"
                " (a refit learns from the pairs labelled at a measurement)"
            )

    def clip_steps(self, ctrl_dt_s: float) -> int:
        return max(1, round(self.clip_s / ctrl_dt_s))

    def settle_steps(self, ctrl_dt_s: float) -> int:
        return round(self.settle_s / ctrl_dt_s)


class GaitRewardModel(nn.Module):
    """r(o, a): ``forward(obs (..., d), action (..., j)) -> (...)``. Inputs are standardized with statistics fixed
    at the first fit; `normalized` also standardizes the output by its mean and spread over the last fit's steps,
    so a weight on it has the same meaning after every refit."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.obs_dim, self.action_dim, self.hidden_sizes = obs_dim, action_dim, tuple(hidden_sizes)
        layers: list[nn.Module] = []
        width = obs_dim + action_dim
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ELU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("input_mean", torch.zeros(obs_dim + action_dim))
        self.register_buffer("input_std", torch.ones(obs_dim + action_dim))
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = (torch.cat([obs, action], dim=-1) - self.input_mean) / self.input_std
        return self.net(x).squeeze(-1)

    def clip_reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """R = (1/L) sum_t r(o_t, a_t) of clips (N, L, d) and (N, L, j): (N,)."""
        return self(obs, action).mean(dim=-1)

    @torch.no_grad()
    def normalized(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """(r(o, a) - mean) / std, float64, for steps (n, d) and (n, j)."""
        r = self(torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(action, dtype=torch.float32))
        return ((r - self.reward_mean) / self.reward_std).double().numpy()

    def set_input_normalization(self, obs: np.ndarray, actions: np.ndarray) -> None:
        x = np.concatenate([obs, actions], axis=-1).reshape(-1, self.obs_dim + self.action_dim)
        self.input_mean.copy_(torch.as_tensor(x.mean(axis=0)))
        self.input_std.copy_(torch.as_tensor(np.maximum(x.std(axis=0), 1e-3)))


@dataclass(frozen=True)
class PairSet:
    """Labelled pairs of clips: the preferred clip's obs (P, L, d) and actions (P, L, j), then the other's."""

    preferred_obs: np.ndarray
    preferred_actions: np.ndarray
    other_obs: np.ndarray
    other_actions: np.ndarray

    def __len__(self) -> int:
        return len(self.preferred_obs)

    @classmethod
    def of(cls, clips: Clips, ordered: np.ndarray) -> PairSet:
        """From clips and (P, 2) indices ordered (preferred, other) (`label_pairs`)."""
        w, lo = ordered[:, 0], ordered[:, 1]
        return cls(clips.obs[w], clips.actions[w], clips.obs[lo], clips.actions[lo])

    def take(self, index) -> PairSet:
        return PairSet(
            self.preferred_obs[index], self.preferred_actions[index], self.other_obs[index], self.other_actions[index]
        )

    def __add__(self, other: PairSet) -> PairSet:
        return PairSet(
            *(np.concatenate([a, b]) for a, b in zip(self._arrays(), other._arrays(), strict=True)),
        )

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.preferred_obs, self.preferred_actions, self.other_obs, self.other_actions


@torch.no_grad()
def pairwise_accuracy(model: GaitRewardModel, pairs: PairSet) -> float:
    """Share of pairs with R(preferred) > R(other); NaN without pairs."""
    if len(pairs) == 0:
        return float("nan")
    won = []
    for batch in np.array_split(np.arange(len(pairs)), max(1, len(pairs) // 256)):
        p = pairs.take(batch)
        chosen = model.clip_reward(torch.as_tensor(p.preferred_obs), torch.as_tensor(p.preferred_actions))
        rejected = model.clip_reward(torch.as_tensor(p.other_obs), torch.as_tensor(p.other_actions))
        won.append((chosen > rejected).numpy())
    return float(np.concatenate(won).mean())


def fit_reward_model(
    model: GaitRewardModel, pairs: PairSet, *, epochs: int, batch_pairs: int, learning_rate: float, seed: int
) -> dict[str, float]:
    """Minimize mean -log sigmoid(R_w - R_l) over `pairs` with Adam, then reset the output normalization to the
    mean and spread of r over the pairs' steps; returns the first and last epoch's loss."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    tensors = [torch.as_tensor(a) for a in pairs._arrays()]
    losses = []
    model.train()
    for _ in range(epochs):
        total = 0.0
        for batch in torch.randperm(len(pairs), generator=generator).split(batch_pairs):
            w_obs, w_act, l_obs, l_act = (t[batch] for t in tensors)
            loss = bradley_terry_loss(model.clip_reward(w_obs, w_act), model.clip_reward(l_obs, l_act))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(pairs))
    model.eval()
    with torch.no_grad():
        r = torch.cat([model(tensors[0], tensors[1]).flatten(), model(tensors[2], tensors[3]).flatten()])
        model.reward_mean.copy_(r.mean())
        model.reward_std.copy_(r.std().clamp_min(1e-6))
    return {"loss_first_epoch": losses[0], "loss_last_epoch": losses[-1]}


def train_gait_reward_model(
    clips: Clips, cfg: PreferenceConfig, labeller, *, seed: int | None = None
) -> tuple[GaitRewardModel, PairSet, dict[str, float]]:
    """Pair clips of similar commands, label them, fit a model on all but `holdout_fraction` of the pairs.

    Returns the model, the training pairs (for later refits) and stats: `accuracy` on the held-out pairs,
    `train_accuracy`, pair counts and losses.
    """
    rng = np.random.default_rng(cfg.seed if seed is None else seed)
    ordered = label_pairs(labeller, clips, pair_by_command(clips.commands, rng, cfg.max_command_gap), rng)
    if len(ordered) < 2:
        raise ValueError(f"only {len(ordered)} pairs from {len(clips)} clips: collect more clips")
    held = max(1, round(cfg.holdout_fraction * len(ordered))) if cfg.holdout_fraction > 0 else 0
    train, test = PairSet.of(clips, ordered[held:]), PairSet.of(clips, ordered[:held])
    torch.manual_seed(int(rng.integers(2**31)))
    model = GaitRewardModel(clips.obs.shape[-1], clips.actions.shape[-1], cfg.hidden_sizes)
    model.set_input_normalization(clips.obs, clips.actions)
    stats = fit_reward_model(
        model,
        train,
        epochs=cfg.epochs,
        batch_pairs=cfg.batch_pairs,
        learning_rate=cfg.learning_rate,
        seed=int(rng.integers(2**31)),
    )
    stats.update(
        accuracy=pairwise_accuracy(model, test),
        train_accuracy=pairwise_accuracy(model, train),
        train_pairs=len(train),
        test_pairs=len(test),
    )
    return model, train, stats


def save_gait_reward_model(
    out: Path,
    model: GaitRewardModel,
    cfg: PreferenceConfig,
    *,
    parent: ckpt.Checkpoint | None,
    metrics: dict[str, float],
    pairs: int,
    labeller: str,
    step: int | None = None,
) -> ckpt.Checkpoint:
    """Write the model as a checkpoint under `out` whose lineage parent is the policy its clips came from."""
    from ogi.training.config import config_to_dict

    weights = {f"reward_model/{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    config = {
        "architecture": ARCHITECTURE,
        "model": {"obs_dim": model.obs_dim, "action_dim": model.action_dim, "hidden_sizes": list(model.hidden_sizes)},
        "train": config_to_dict(cfg),
    }
    scores = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    data = {"labeller": labeller, "pairs": pairs, "policy_checkpoint_sha256": parent and parent.checkpoint_sha256}
    return ckpt.save_checkpoint(
        out,
        step=pairs if step is None else step,
        iteration=cfg.epochs,
        weights=weights,
        state={},
        config=config,
        reward_weights={},
        data_manifest=data,
        eval_scores=scores,
        parent=parent,
    )


def load_gait_reward_model(path: Path) -> GaitRewardModel:
    """A model from its checkpoint directory (or a directory of checkpoints: the newest valid), in eval mode.

    Raises a CheckpointError if the files do not verify or hold another kind of model or other tensor shapes.
    """
    loaded = ckpt.load_checkpoint(ckpt.resolve_checkpoint(Path(path)))
    config, where = loaded.checkpoint.config, loaded.checkpoint.path
    if config.get("architecture") != ARCHITECTURE:
        raise ckpt.CheckpointError(
            f"{where}: config.architecture is {config.get('architecture')!r}, not a gait reward model ({ARCHITECTURE})"
        )
    shape = config["model"]
    model = GaitRewardModel(int(shape["obs_dim"]), int(shape["action_dim"]), tuple(shape["hidden_sizes"]))
    state = {k.removeprefix("reward_model/"): v for k, v in loaded.weights.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ckpt.CheckpointError(f"{where}: its tensors do not fit the model its config describes: {err}") from None
    return model.eval()


class PreferenceRewardHook(RolloutHook):
    """A `RolloutHook` adding w * (r(o_t, a_t) - mean) / std of a gait reward model to the env's reward.

    The env's hand-tuned terms all stay: they keep the walker tracking its command and upright, and the model
    only learns a style. None of the preset's style terms is dropped either (action rate, body rate, foot slip,
    torques): the model's reward is learned from clips of a policy already shaped by them, so it ranks what they
    leave open (swing clearance, slip, jerk, power together) rather than stands in for them.

    Every rollout's steps are cut into clips (`ClipRecorder`). Every `measure_every` iterations up to
    `fresh_pairs` pairs of the clips seen since the last measurement are labelled by `labeller`; the current model's
    accuracy on them, before any refit, is the drift figure (`preference/accuracy_fresh`), and the first model's
    (`initial_model`, frozen) accuracy on the same pairs is logged beside it. Every `retrain_every` iterations the
    model is refitted on the newest `max_pairs` labelled pairs (the first fit's included).

    `model` is refitted in place (`initial_model` is a frozen copy made here). Both models, the counters, the
    drift history and the labeller's random state ride in the run's checkpoints (`name`); the labelled pairs do not
    (they are large): a resumed run refits on the pairs it labels from then on.
    """

    name = "preference"

    def __init__(
        self,
        model: GaitRewardModel,
        cfg: PreferenceConfig,
        labeller,
        *,
        num_envs: int,
        ctrl_dt_s: float,
        initial_pairs: PairSet | None = None,
    ):
        self.model, self.cfg, self.labeller = model.eval(), cfg, labeller
        self.initial_model = copy.deepcopy(model).eval()
        for p in self.initial_model.parameters():
            p.requires_grad_(False)
        self.recorder = ClipRecorder(
            num_envs, cfg.clip_steps(ctrl_dt_s), cfg.settle_steps(ctrl_dt_s), model.obs_dim, model.action_dim
        )
        self.pairs = initial_pairs
        self.pending: list[Clips] = []
        self.rng = np.random.default_rng(cfg.seed)
        self.rollouts = 0
        self.refits = 0
        self.history: list[dict[str, float]] = []
        self._before = None
        self._reward_sum = 0.0
        self._reward_steps = 0

    def before_step(self, runner) -> None:
        self._before = PreStep.of(runner.env)

    def after_step(self, runner, action, reward, terminated, truncated, info) -> np.ndarray:
        obs = runner.obs["policy"]
        features = gait_features(runner.env, action, self._before)
        self.recorder.record(obs, action, features, self._before.command, terminated | truncated)
        bonus = self.cfg.reward_weight * self.model.normalized(obs, action)
        bonus[info["diverged"]] = 0.0  # a diverged step earns nothing
        self._reward_sum += float(bonus.mean())
        self._reward_steps += 1
        info["reward/preference"] = bonus
        return reward + bonus

    def after_rollout(self, runner) -> dict[str, float]:
        self.rollouts += 1
        self.pending.append(self.recorder.take())
        held, cap = sum(len(c) for c in self.pending), 8 * self.cfg.fresh_pairs
        if held > cap:  # only the newest clips wait for the next measurement
            self.pending = [Clips.concatenate(self.pending).take(slice(held - cap, None))]
        stats = {"preference/reward": self._reward_sum / max(self._reward_steps, 1)}
        self._reward_sum, self._reward_steps = 0.0, 0
        every = self.cfg.measure_every
        if every and self.rollouts % every == 0:
            self._measure(refit=bool(self.cfg.retrain_every) and self.rollouts % self.cfg.retrain_every == 0)
        if self.history:
            last = self.history[-1]
            stats.update({f"preference/{k}": v for k, v in last.items() if k != "iteration"})
        return stats

    def _measure(self, *, refit: bool) -> None:
        clips = Clips.concatenate(self.pending)
        self.pending = []
        pairs = pair_by_command(clips.commands, self.rng, self.cfg.max_command_gap)[: self.cfg.fresh_pairs]
        if len(pairs) == 0:
            return
        fresh = PairSet.of(clips, label_pairs(self.labeller, clips, pairs, self.rng))
        record = {
            "iteration": float(self.rollouts),
            "accuracy_fresh": pairwise_accuracy(self.model, fresh),
            "accuracy_initial_model": pairwise_accuracy(self.initial_model, fresh),
            "fresh_pairs": float(len(fresh)),
        }
        self.pairs = fresh if self.pairs is None else self.pairs + fresh
        if len(self.pairs) > self.cfg.max_pairs:
            self.pairs = self.pairs.take(slice(len(self.pairs) - self.cfg.max_pairs, None))
        if refit:
            self.refits += 1
            fit_reward_model(
                self.model,
                self.pairs,
                epochs=self.cfg.retrain_epochs,
                batch_pairs=self.cfg.batch_pairs,
                learning_rate=self.cfg.learning_rate,
                seed=int(self.rng.integers(2**31)),
            )
        record["refits"] = float(self.refits)
        self.history.append(record)

    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"initial_model/{k}": v for k, v in self.initial_model.state_dict().items()})
        data = {
            "rollouts": self.rollouts,
            "refits": self.refits,
            "history": self.history,
            "rng": self.rng.bit_generator.state,
        }
        return tensors, data

    def load_checkpoint_state(self, tensors: dict[str, torch.Tensor], data: dict) -> None:
        def under(prefix: str) -> dict[str, torch.Tensor]:
            return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}

        self.model.load_state_dict(under("model/"))
        self.initial_model.load_state_dict(under("initial_model/"))
        self.rollouts, self.refits = int(data["rollouts"]), int(data["refits"])
        self.history = [dict(record) for record in data["history"]]
        self.rng.bit_generator.state = data["rng"]
        self.pending, self.pairs = [], None
        self.recorder.take()
